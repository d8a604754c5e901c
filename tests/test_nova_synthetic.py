"""Slots of pinned pGPUs as stock Nova's PCI devices; nova-conf's lines."""

import dataclasses
import json
import logging
import warnings

import jsonschema
import pytest
from nova import objects
from nova.objects import pci_device
from nova.pci import devspec
from nova.pci import request

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import nova_pci
from nova_xenapi_vgpu.vgpu_types import synthetic
from nova_xenapi_vgpu.virt import host as hostlib
from nova_xenapi_vgpu.xapi import session
from tests.pcihelpers import HostBuilder
from tests.pcihelpers import refs_reversed
from tests.pcihelpers import type_ref

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()
PINNED = 'tests/fixtures/pinned-pool.yaml'


def pinned(host, address, numa, *types, model='m60', group=None):
    """A pGPU alone in its group with only ``types`` enabled."""
    group = group or host.group('g-' + address)
    ref = host.pgpu(group, address, numa=numa, model=model)
    host.pgpus[ref] = dataclasses.replace(
        host.pgpus[ref], enabled_VGPU_types=tuple(type_ref(t)
                                                  for t in types))
    return ref


def test_addresses_round_trip_and_stay_in_the_f_domains():
    for domain, index in ((0, 0), (0, 255), (0xf, 7)):
        pgpu = '%04x:86:1f.7' % domain
        address = synthetic.synthetic_address(pgpu, index)
        assert address[0] == 'f' and len(address) == 12
        assert synthetic.parse_synthetic(address) == (pgpu, index)
    assert synthetic.synthetic_address('0000:86:00.0', 3) == 'f003:86:00.0'
    assert synthetic.parse_synthetic('0000:86:00.0') is None
    with pytest.raises(ValueError):
        synthetic.synthetic_address('0000:86:00.0', 256)
    with pytest.raises(ValueError):
        synthetic.synthetic_address('0010:86:00.0', 0)


def test_product_ids_are_fixed_by_the_model_name():
    # Stable across releases: the README documents this very value.
    assert synthetic.product_id('GRID M60-4Q') == '4031'
    assert len({synthetic.product_id('GRID M60-%s' % n)
                for n in ('1Q', '2Q', '4Q', '8Q')}) == 4


def test_pinned_one_type_pgpus_become_vfs_and_pfs():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q', 'passthrough')
    devices, skipped = synthetic.nova_devices(host.inventory())
    assert skipped == []
    by_address = {d['address']: d for d in devices}
    assert sorted(by_address) == ['0000:87:00.0', 'f000:86:00.0',
                                  'f000:87:00.0', 'f001:86:00.0']
    vf = by_address['f001:86:00.0']
    assert (vf['dev_type'], vf['parent_addr'], vf['numa_node'],
            vf['vendor_id'], vf['product_id']) == (
        'type-VF', '0000:86:00.0', 0, '10de',
        synthetic.product_id('GRID M60-4Q'))
    pf = by_address['0000:87:00.0']
    assert (pf['dev_type'], pf['parent_addr'], pf['product_id']) == (
        'type-PF', None, '13f2')


def test_unpinned_and_multi_type_pgpus_are_not_reported():
    host = HostBuilder()
    shared = host.group('shared')
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q', group=shared)
    pinned(host, '0000:87:00.0', 1, 'GRID M60-4Q', group=shared)
    pinned(host, '0000:88:00.0', 1, 'GRID M60-4Q', 'GRID M60-8Q')
    devices, skipped = synthetic.nova_devices(host.inventory())
    assert devices == []
    reasons = {s.address: s.reason for s in skipped}
    assert 'holds 2 pGPUs' in reasons['0000:86:00.0']
    assert 'offers 2 vGPU types' in reasons['0000:88:00.0']


def test_every_device_loads_into_novas_pci_device_and_matches_the_spec():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q', 'passthrough')
    inventory = host.inventory()
    aliases = aliaslib.parse_aliases([
        '{"name": "m60-4q", "vgpu_type": "GRID M60-4Q", '
        '"numa_policy": "required"}',
        '{"name": "whole", "vgpu_type": "passthrough"}'])
    conf = nova_pci.build(inventory, aliases)
    specs = [devspec.PciDeviceSpec(dict(s)) for s in conf.device_specs]
    devices, _ = synthetic.nova_devices(inventory)
    for device in devices:
        loaded = pci_device.PciDevice.create(None, dict(device))
        assert loaded.address == device['address']
        assert loaded.dev_type == device['dev_type']
        assert len([s for s in specs if s.match(device)]) == 1
    assert {a['name']: (a['device_type'], a['numa_policy'])
            for a in conf.aliases} == {
        'm60-4q': ('type-VF', 'required'), 'whole': ('type-PF', 'legacy')}


def test_placement_lines_carry_a_resource_class_per_type():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    aliases = aliaslib.parse_aliases(
        ['{"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}'])
    text = nova_pci.config_lines(nova_pci.build(host.inventory(), aliases,
                                                placement=True))
    assert '"resource_class": "CUSTOM_VGPU_GRID_M60_4Q"' in text
    assert 'report_in_placement = True' in text
    assert '[filter_scheduler]\npci_in_placement = True' in text
    [alias] = [json.loads(line.split(' = ', 1)[1])
               for line in text.splitlines() if line.startswith('alias')]
    # The ids too: Nova's claim on a move's destination matches pools by
    # them, not by resource class.
    assert (alias['vendor_id'], alias['product_id']) == (
        '10de', synthetic.product_id('GRID M60-4Q'))


def test_nova_accepts_the_printed_aliases():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    aliases = aliaslib.parse_aliases(
        ['{"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}'])
    for placement in (False, True):
        conf = nova_pci.build(host.inventory(), aliases, placement)
        for alias in conf.aliases:
            jsonschema.validate(alias, request._ALIAS_SCHEMA)


def test_an_unknown_type_names_the_alias():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    aliases = aliaslib.parse_aliases(
        ['{"name": "big", "vgpu_type": "GRID A100-40C"}'])
    with pytest.raises(exception.InvalidAlias, match='big'):
        nova_pci.build(host.inventory(), aliases)


def test_the_simulators_pinned_pool_and_the_member_named_by_nova_host(
        caplog):
    with server.Simulator(PINNED) as sim:
        client = session.XapiClient(sim.url, 'root', 'xenroot')
        ref = hostlib.resolve(client, None, 'xs-nova-02')
        xen = hostlib.XenHost(client, ref)
        assert xen.nodename == 'xs-nova-02'
        devices = xen.nova_devices()
        # 4Q x2, 8Q x1, T4-8Q x2, 2Q x4 and the PF of 0000:88:00.0
        assert len(devices) == 2 + 1 + 2 + 4 + 1
        assert xen.cpus_and_memory() == (16, 32768)
        # Unpinned: two types enabled on one pGPU -> not reported, once.
        pgpu = next(p for p, r in xen.inventory.pgpus.items()
                    if xen.inventory.address(p) == '0000:86:00.0')
        types = client.call('PGPU.get_supported_VGPU_types', pgpu)
        client.call('PGPU.set_enabled_VGPU_types', pgpu, types[:3])
        xen.refresh()
        with caplog.at_level(logging.WARNING):
            assert len(xen.nova_devices()) == 8
            assert len(xen.nova_devices()) == 8
        assert len([r for r in caplog.records
                    if '0000:86:00.0' in r.getMessage()]) == 1
        uuid_ref = hostlib.resolve(client, xen.uuid, 'elsewhere')
        assert uuid_ref == ref
        client.close()


def test_reader_sees_what_the_driver_sees():
    with server.Simulator(PINNED) as sim:
        client = session.XapiClient(sim.url, 'root', 'xenroot')
        ref = client.call('host.get_by_name_label', 'xs-nova-01')[0]
        inventory = reader.read_inventory(client, ref,
                                          dom0.Dom0Plugin(client, ref))
        devices, _ = synthetic.nova_devices(inventory)
        slot = synthetic.slot_of(inventory, devices[0]['address'], 'dev-1')
        assert inventory.pgpus[slot.pgpu_ref].GPU_group == slot.group_ref
        assert slot.vgpu_type.model_name == devices[0]['vgpu_type']
        client.close()


def test_device_specs_cover_what_the_host_reports_without_aliases():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q', 'passthrough')
    conf = nova_pci.build(host.inventory(), {})
    assert conf.aliases == []
    assert sorted(s['product_id'] for s in conf.device_specs) == sorted(
        ['13f2', synthetic.product_id('GRID M60-4Q'),
         synthetic.product_id('GRID M60-8Q')])


def test_placement_takes_one_type_per_alias():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:3b:00.0', 0, 'GRID T4-8Q', model='t4')
    aliases = aliaslib.parse_aliases(
        ['{"name": "big", "vgpu_type": ["GRID M60-8Q", "GRID T4-8Q"]}',
         '{"name": "whole", "vgpu_type": "passthrough"}'])
    assert len(nova_pci.build(host.inventory(), aliases).aliases) == 3
    with pytest.raises(exception.InvalidAlias, match='big'):
        nova_pci.build(host.inventory(), aliases, placement=True)
    conf = nova_pci.build(host.inventory(), {'whole': aliases['whole']},
                          placement=True)
    assert conf.aliases == [{'name': 'whole', 'device_type': 'type-PF',
                             'numa_policy': 'legacy',
                             'resource_class': 'CUSTOM_VGPU_PASSTHROUGH'}]


def test_with_pci_in_placement_a_carved_pgpu_reports_no_pf():
    host = HostBuilder()
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q', 'passthrough')
    pinned(host, '0000:88:00.0', 1, 'passthrough')
    devices, skipped = synthetic.nova_devices(host.inventory(),
                                              placement=True)
    assert sorted((d['address'], d['dev_type']) for d in devices) == [
        ('0000:88:00.0', 'type-PF'), ('f000:87:00.0', 'type-VF')]
    [item] = skipped
    assert item.address == '0000:87:00.0'
    assert 'PCI in Placement' in item.reason


def test_a_pool_pinned_by_gpu_groups_pin_is_reported_on_every_member():
    """gpu-groups pin shares a group between the pGPUs at one address on
    every member (so instances live-migrate); each member's slots are
    still Nova's, since the group holds one pGPU of each host."""
    with server.Simulator('pool') as sim:
        client = session.XapiClient(sim.url, 'root', 'xenroot')
        pool = pinning.read_pool(client)
        partition = {a: 'GRID M60-4Q' for a in (
            '0000:86:00.0', '0000:87:00.0', '0000:af:00.0', '0000:b0:00.0')}
        pinning.apply(client, pool, pinning.propose(pool, partition))
        for name in ('xs-pool-01', 'xs-pool-03'):
            xen = hostlib.XenHost(client, hostlib.resolve(client, None,
                                                          name))
            devices = xen.nova_devices()
            assert len(devices) == 4 * 2  # four pGPUs, two 4Q slots each
            assert {d['parent_addr'] for d in devices} == set(partition)
        client.close()


def two_pinned_m60s():
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q', 'passthrough')
    return host


NOVA_ALIASES = [
    '{"name": "m60-4q", "vgpu_type": "GRID M60-4Q", '
    '"numa_policy": "required"}',
    '{"name": "whole", "vgpu_type": "passthrough"}',
    '{"name": "nic", "vendor_id": "8086", "product_id": "1520", '
    '"device_type": "type-PF"}']
VF = '"address": {"domain": "f[0-9a-f]{3}"}, "live_migratable": "yes", '


def test_the_nova_conf_lines_exactly():
    # Every type the aliases name and every type the host reports, in
    # (vendor, product) order; an alias Nova owns written back as given.
    aliases = aliaslib.parse_aliases(NOVA_ALIASES)
    inventory = two_pinned_m60s().inventory()
    plain = nova_pci.config_lines(nova_pci.build(inventory, aliases))
    assert plain.splitlines() == [
        '[pci]',
        'device_spec = {%s"product_id": "0f3d", "vendor_id": "10de"}' % VF,
        'device_spec = {"product_id": "13f2", "vendor_id": "10de"}',
        'device_spec = {%s"product_id": "4031", "vendor_id": "10de"}' % VF,
        'alias = {"device_type": "type-VF", "name": "m60-4q", "numa_policy":'
        ' "required", "product_id": "4031", "vendor_id": "10de"}',
        'alias = {"device_type": "type-PF", "name": "nic", "numa_policy": '
        '"legacy", "product_id": "1520", "vendor_id": "8086"}',
        'alias = {"device_type": "type-PF", "name": "whole", "numa_policy": '
        '"legacy", "product_id": "13f2", "vendor_id": "10de"}']
    placed = nova_pci.config_lines(nova_pci.build(inventory, aliases, True))
    assert placed == '\n'.join([
        '[pci]',
        'device_spec = {%s"product_id": "0f3d", "resource_class": '
        '"CUSTOM_VGPU_GRID_M60_8Q", "vendor_id": "10de"}' % VF,
        'device_spec = {"product_id": "13f2", "resource_class": '
        '"CUSTOM_VGPU_PASSTHROUGH", "vendor_id": "10de"}',
        'device_spec = {%s"product_id": "4031", "resource_class": '
        '"CUSTOM_VGPU_GRID_M60_4Q", "vendor_id": "10de"}' % VF,
        'alias = {"device_type": "type-VF", "name": "m60-4q", "numa_policy":'
        ' "required", "product_id": "4031", "resource_class": '
        '"CUSTOM_VGPU_GRID_M60_4Q", "vendor_id": "10de"}',
        'alias = {"device_type": "type-PF", "name": "nic", "numa_policy": '
        '"legacy", "product_id": "1520", "vendor_id": "8086"}',
        'alias = {"device_type": "type-PF", "name": "whole", "numa_policy": '
        '"legacy", "resource_class": "CUSTOM_VGPU_PASSTHROUGH"}',
        'report_in_placement = True', '', '[filter_scheduler]',
        'pci_in_placement = True']) + '\n'


def clashing_m60s():
    """(two pinned M60s, the GRID M60-4Q's synthetic product id): the
    M60 at 87:00.0 has that id as its PCI device id."""
    host = two_pinned_m60s()
    pci = next(r for r, p in host.pcis.items()
               if p.pci_id == '0000:87:00.0')
    clash = synthetic.product_id('GRID M60-4Q')
    host.pcis[pci] = dataclasses.replace(host.pcis[pci], device_id=clash)
    return host, clash


def test_a_synthetic_product_id_equal_to_a_pgpus_is_refused():
    host, clash = clashing_m60s()
    aliases = aliaslib.parse_aliases(NOVA_ALIASES[:1])
    with pytest.raises(exception.InvalidAlias) as info:
        nova_pci.build(host.inventory(), aliases)
    assert str(info.value) == (
        "Invalid [vgpu] alias (all): vgpu_type: a vGPU type's synthetic "
        "product id 10de:%s equals a pGPU's" % clash)
    assert nova_pci.build(two_pinned_m60s().inventory(), aliases)


def test_with_placement_an_alias_names_one_type():
    aliases = aliaslib.parse_aliases([
        '{"name": "any", "vgpu_type": ["GRID M60-4Q", "GRID M60-8Q"]}'])
    inventory = two_pinned_m60s().inventory()
    assert len(nova_pci.build(inventory, aliases).aliases) == 2
    with pytest.raises(exception.InvalidAlias) as info:
        nova_pci.build(inventory, aliases, placement=True)
    assert str(info.value) == (
        'Invalid [vgpu] alias any: vgpu_type: with PCI in Placement an alias '
        'names one vGPU type (Nova takes one spec per alias); found 2')


def test_where_a_nova_device_puts_its_vgpu():
    host = two_pinned_m60s()
    inventory = host.inventory()
    vf = synthetic.synthetic_address('0000:86:00.0', 1)
    slot = synthetic.slot_of(inventory, vf, 'dev-vf')
    assert (slot.uuid, slot.group_ref, slot.vgpu_type.model_name,
            slot.pgpu_ref) == (
        'dev-vf', 'OpaqueRef:group-g-0000:86:00.0', 'GRID M60-4Q',
        'OpaqueRef:pgpu-0000:86:00.0')
    # The pGPU's own address: its passthrough (a PF), when enabled.
    whole = synthetic.slot_of(inventory, '0000:87:00.0', 'dev-pf')
    assert whole.vgpu_type.model_name == 'passthrough'
    assert synthetic.slot_of(inventory, '0000:86:00.0', 'x') is None
    assert synthetic.slot_of(inventory, '0000:99:00.0', 'x') is None
    # Limited to enabled_vgpu_types: a type left out has no slot.
    assert synthetic.slot_of(inventory, vf, 'x', ('GRID M60-8Q',)) is None


def test_the_devices_nova_is_given_exactly():
    devices, skipped = synthetic.nova_devices(two_pinned_m60s().inventory())
    assert skipped == []

    def device(address, dev_type, product, numa, parent, vgpu_type):
        return {'address': address, 'dev_type': dev_type,
                'vendor_id': '10de', 'product_id': product,
                'numa_node': numa, 'parent_addr': parent,
                'label': 'label_10de_%s' % product,
                'dev_id': 'pci_' + address.replace(':', '_').replace(
                    '.', '_'), 'vgpu_type': vgpu_type}
    assert devices == [
        device('f000:86:00.0', 'type-VF', '4031', 0, '0000:86:00.0',
               'GRID M60-4Q'),
        device('f001:86:00.0', 'type-VF', '4031', 0, '0000:86:00.0',
               'GRID M60-4Q'),
        device('0000:87:00.0', 'type-PF', '13f2', 1, None, 'passthrough'),
        device('f000:87:00.0', 'type-VF', '0f3d', 1, '0000:87:00.0',
               'GRID M60-8Q')]
    assert devices[0]['dev_id'] == 'pci_f000_86_00_0'


def test_what_nova_is_not_given_and_why():
    host = HostBuilder()
    shared = host.group('shared')
    for address in ('0000:87:00.0', '0000:86:00.0'):
        host.pgpu(shared, address)
    pinned(host, '0000:88:00.0', 0, 'GRID M60-4Q', 'GRID M60-8Q')
    pinned(host, '0010:89:00.0', 0, 'GRID M60-4Q')
    pinned(host, '000f:8a:00.0', 0, 'GRID M60-4Q')
    devices, skipped = synthetic.nova_devices(host.inventory())
    group = ('its GPU group holds 2 pGPUs of this host: XAPI, not Nova, '
             'would choose the pGPU (run gpu-groups pin)')
    assert skipped == [
        synthetic.Skipped('0000:86:00.0', group),
        synthetic.Skipped('0000:87:00.0', group),
        synthetic.Skipped('0000:88:00.0', 'it offers 2 vGPU types (GRID '
                          'M60-4Q, GRID M60-8Q): Nova cannot know a pGPU '
                          'runs one type at a time (enable one)'),
        synthetic.Skipped('0010:89:00.0', 'its PCI domain is above f')]
    assert {d['parent_addr'] for d in devices} == {'000f:8a:00.0'}
    # With PCI in Placement, a PF beside its VFs is left out.
    _, placed = synthetic.nova_devices(two_pinned_m60s().inventory(),
                                       placement=True)
    assert placed == [synthetic.Skipped(
        '0000:87:00.0', 'its passthrough is not reported beside GRID '
        'M60-8Q with PCI in Placement (Nova takes a PF or its VFs there, '
        'not both)')]
    # Limited to enabled_vgpu_types.
    limited, _ = synthetic.nova_devices(two_pinned_m60s().inventory(),
                                        ('GRID M60-8Q',))
    assert [d['vgpu_type'] for d in limited] == ['GRID M60-8Q']


def test_addresses_that_cannot_be_encoded_say_so():
    for pgpu, index in (('0000:86:00.0', 300), ('0010:86:00.0', 1)):
        with pytest.raises(ValueError) as info:
            synthetic.synthetic_address(pgpu, index)
        assert str(info.value) == 'cannot encode slot %d of %s' % (index,
                                                                   pgpu)
    with pytest.raises(ValueError) as info:
        synthetic.synthetic_address('nope', 0)
    assert str(info.value) == "not a PCI address: 'nope'"
    assert synthetic.parse_synthetic(None) is None


def test_devices_come_in_address_order_whatever_the_refs():
    inventory = two_pinned_m60s().inventory()
    inventory = refs_reversed(inventory)
    devices, _ = synthetic.nova_devices(inventory)
    assert [d['parent_addr'] or d['address'] for d in devices] == [
        '0000:86:00.0', '0000:86:00.0', '0000:87:00.0', '0000:87:00.0']


def test_live_migratable_and_unknown_types_in_the_nova_aliases():
    inventory = two_pinned_m60s().inventory()
    aliases = aliaslib.parse_aliases([
        '{"name": "mobile", "vgpu_type": "GRID M60-4Q", '
        '"live_migratable": "true"}'])
    [entry] = nova_pci.build(inventory, aliases).aliases
    assert entry['live_migratable'] == 'true'
    # Both alternatives of an alias Nova owns are written back.
    both = aliaslib.parse_aliases([
        '{"name": "nic", "device_type": "type-PF", "vendor_id": "8086", '
        '"product_id": "1520"}',
        '{"name": "nic", "device_type": "type-PF", "vendor_id": "8086", '
        '"product_id": "1521"}'])
    assert [a['product_id'] for a in nova_pci.build(inventory, both)
            .aliases] == ['1520', '1521']
    unknown = aliaslib.parse_aliases(
        ['{"name": "big", "vgpu_type": "GRID A100-40C"}'])
    with pytest.raises(exception.InvalidAlias) as info:
        nova_pci.build(inventory, unknown)
    assert str(info.value) == (
        'Invalid [vgpu] alias big: vgpu_type: GRID A100-40C: no pGPU of this '
        'host supports it')


def with_vendor(host, address, vendor):
    """The pGPU at ``address`` made by ``vendor`` (its PCI vendor id)."""
    pci = next(r for r, p in host.pcis.items() if p.pci_id == address)
    host.pcis[pci] = dataclasses.replace(host.pcis[pci], vendor_id=vendor)


def test_device_specs_of_two_vendors_in_vendor_then_product_order():
    # 1002's 4Q (4031) before 10de's 8Q (0f3d): vendor first, then
    # product, so the printed lines do not depend on the product alone.
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q')
    with_vendor(host, '0000:86:00.0', '1002')
    result = nova_pci.build(host.inventory(), {})
    assert [(s['vendor_id'], s['product_id'])
            for s in result.device_specs] == [
        ('1002', synthetic.product_id('GRID M60-4Q')),
        ('10de', synthetic.product_id('GRID M60-8Q'))]


def test_a_collision_is_refused_whichever_spec_comes_first():
    # The passthrough alias sorts first: its pGPU's id is seen before the
    # vGPU type's equal synthetic id.
    host, clash = clashing_m60s()
    aliases = aliaslib.parse_aliases([
        '{"name": "all-of-it", "vgpu_type": "passthrough"}',
        NOVA_ALIASES[0]])
    with pytest.raises(exception.InvalidAlias) as info:
        nova_pci.build(host.inventory(), aliases)
    assert "synthetic product id 10de:%s equals a pGPU's" % clash in str(
        info.value)


def test_an_enabled_type_without_a_maximum_gives_nova_no_slot():
    host = HostBuilder()
    ref = pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    pinned(host, '0000:87:00.0', 1, 'GRID M60-8Q')
    record = host.pgpus[ref]
    host.pgpus[ref] = dataclasses.replace(
        record, supported_VGPU_max_capacities={
            t: m for t, m in record.supported_VGPU_max_capacities.items()
            if t != type_ref('GRID M60-4Q')})
    devices, _ = synthetic.nova_devices(host.inventory())
    assert [d['address'] for d in devices] == ['f000:87:00.0']


def test_a_vgpu_type_named_like_passthrough_is_still_a_vgpu_type():
    # xapi names its one passthrough type 'passthrough'; a vendor's vGPU
    # type whose name ends so is reported as VFs, and specified as VFs.
    host = HostBuilder()
    pinned(host, '0000:86:00.0', 0, 'GRID M60-4Q')
    ref = type_ref('GRID M60-4Q')
    host.types[ref] = dataclasses.replace(
        host.types[ref], model_name='GRID M60-4Q passthrough')
    inventory = host.inventory()
    devices, _ = synthetic.nova_devices(inventory)
    aliases = aliaslib.parse_aliases([
        '{"name": "odd", "vgpu_type": "GRID M60-4Q passthrough"}'])
    result = nova_pci.build(inventory, aliases)
    product = synthetic.product_id('GRID M60-4Q passthrough')
    assert {(d['dev_type'], d['product_id']) for d in devices} == {
        ('type-VF', product)}
    assert [s['product_id'] for s in result.device_specs] == [product]
    assert [(a['device_type'], a['product_id'])
            for a in result.aliases] == [('type-VF', product)]
