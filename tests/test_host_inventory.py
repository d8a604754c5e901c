"""This host's inventory and the dom0 plugin client, against the simulator."""

import dataclasses
import logging
import types

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import plugin_files
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.simulator import boot
from nova_xenapi_vgpu.simulator import events
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.simulator import vm as simvm
from nova_xenapi_vgpu.simulator import world
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu

OLD_PLUGIN = '''import json
import XenAPIPlugin

def version(session, args):
    return json.dumps({"api_version": "0.9", "functions": []})

XenAPIPlugin.dispatch({"version": version})
'''


@pytest.fixture
def client(sim):
    with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as xapi_client:
        yield xapi_client


@pytest.mark.parametrize('profile', ['m60', 'mixed', 'pool'])
def test_a_full_read_is_one_call(profile):
    with server.Simulator(profile) as sim, sessionlib.XapiClient(
            sim.url, 'root', 'xenroot') as client:
        host = identity.resolve_host(client)
        sim.faults.calls.clear()
        inventory = reader.read_inventory(client, host)
        assert sum(sim.faults.calls.values()) == 1  # one event.from
        mine = sim.profile['hosts'][0]['pgpus']
        assert {inventory.address(p) for p in inventory.pgpus} == {
            p['address'] for p in mine}
        assert {c.host for c in inventory.pcis.values()} == {host}
        assert inventory.host.name_label == sim.profile['hosts'][0]['name']


def test_refresh_applies_what_changed(m60_sim):
    xapi = login(m60_sim.url).xenapi
    with sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot') as client:
        host = identity.resolve_host(client)
        before = reader.read_inventory(client, host)
        m60_sim.faults.calls.clear()
        same = reader.refresh(client, before)
        assert sum(m60_sim.faults.calls.values()) == 1
        assert (same.pgpus, same.vgpus) == (before.pgpus, before.vgpus)
        vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                                vgpu_type(xapi, 'GRID M60-8Q'))
        xapi.VM.start(vm, False, False)
        after = reader.refresh(client, same)
        fresh = reader.read_inventory(client, host)
    assert after.vgpus == fresh.vgpus and after.pgpus == fresh.pgpus
    assert after.vgpus[vgpu].resident_on in after.pgpus
    assert before.vgpus == {}
    pgpu = after.vgpus[vgpu].resident_on
    t8q = vgpu_type(xapi, 'GRID M60-8Q')
    assert after.usage(pgpu, after.types[t8q]).remaining == 0
    assert before.usage(pgpu, before.types[t8q]).remaining == 1


def test_a_pool_member_sees_only_its_own(pool_sim):
    xapi = login(pool_sim.url).xenapi
    member = xapi.host.get_by_name_label('xs-pool-02')[0]
    with sessionlib.XapiClient(pool_sim.urls[1], 'root',
                               'xenroot') as client:
        assert identity.resolve_host(client) == member
        inventory = reader.read_inventory(client, member)
        # Another member's VM and its VGPU, and a change to that member.
        master = xapi.host.get_by_name_label('xs-pool-01')[0]
        vm, vgpu = vm_with_vgpu(xapi, xapi.PGPU.get_GPU_group(
            xapi.host.get_PGPUs(master)[0]), vgpu_type(xapi, 'GRID M60-8Q'))
        xapi.VM.start_on(vm, master, False, False)
        xapi.host.set_name_label(master, 'renamed')
        after = reader.refresh(client, inventory)
    assert {p.host for p in inventory.pgpus.values()} == {member}
    assert len(inventory.pgpus) == len(pool_sim.profile['hosts'][1]['pgpus'])
    assert inventory.host.ref == member
    assert after.host == inventory.host
    assert vgpu not in after.vgpus and after.vgpus == inventory.vgpus


def test_usage_matches_xapi_remaining_capacity(sim, xapi, client):
    m60, t4 = group_of(xapi, 'Tesla M60'), group_of(xapi, 'Tesla T4')
    for name, group, model in (('a', m60, 'GRID M60-2Q'),
                               ('b', m60, 'GRID M60-2Q'),
                               ('c', m60, 'passthrough'),
                               ('d', t4, 'GRID T4-4Q')):
        vm, _ = vm_with_vgpu(xapi, group, vgpu_type(xapi, model), name)
        xapi.VM.start(vm, False, False)
    idle, _ = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-1Q'), 'e')
    inventory = reader.read_inventory(
        client, identity.resolve_host(client))
    compared = 0
    for pgpu in inventory.pgpus:
        for vgpu_type_record in inventory.enabled_types(pgpu):
            expected = int(xapi.PGPU.get_remaining_capacity(
                pgpu, vgpu_type_record.ref))
            usage = inventory.usage(pgpu, vgpu_type_record)
            assert usage.remaining == expected, (
                inventory.address(pgpu), vgpu_type_record.model_name)
            compared += 1
    # Every supported type of every pGPU is enabled in the mixed profile.
    assert compared == sum(
        len(hardware.supported_types(hardware.MODELS[p['model']],
                                     p.get('system_display')))
        for p in sim.profile['hosts'][0]['pgpus'])
    used = {(inventory.address(p), t.model_name): inventory.usage(p, t).used
            for p in inventory.pgpus for t in inventory.enabled_types(p)}
    assert sorted(k[1] for k, v in used.items() if v) == [
        'GRID M60-2Q', 'GRID T4-4Q', 'passthrough']


def test_enabled_types_filter(client):
    inventory = reader.read_inventory(
        client, identity.resolve_host(client))
    names = {t.model_name for p in inventory.pgpus
             for t in inventory.enabled_types(p, ['GRID M60-4Q', 'nope'])}
    assert names == {'GRID M60-4Q'}


def test_vendor_device_falls_back_to_group_types(sim, client):
    for pci in sim.db.objects['PCI'].values():
        pci['vendor_id'] = pci['device_id'] = ''
    inventory = reader.read_inventory(
        client, identity.resolve_host(client))
    assert {inventory.vendor_device(p) for p in inventory.pgpus} == {
        '10de:13f2', '10de:1eb8', '8086:3e92', '1002:6929'}


def test_dom0_topology_is_cached(sim, client):
    plugin = dom0.Dom0Plugin(client, identity.resolve_host(client))
    sim.faults.calls.clear()
    first = plugin.topology(['0000:86:00.0', '0000:87:00.0'])
    again = plugin.topology(['0000:87:00.0', '0000:86:00.0'])
    assert first is again
    assert sim.faults.calls['host.call_plugin'] == 2  # version + topology
    assert first.numa_node_of('0000:87:00.0') == 1
    assert [n.id for n in first.numa_nodes] == [0, 1]
    assert first.devices['0000:86:00.0'].local_cpulist == '0-15'
    assert first.devices['0000:86:00.0'].numa_source == 'xen'
    assert first.numa_source == 'xen'
    assert [n.sockets for n in first.numa_nodes] == [(0,), (1,)]


def test_inventory_with_numa_from_the_plugin(client):
    host = identity.resolve_host(client)
    inventory = reader.read_inventory(
        client, host, dom0=dom0.Dom0Plugin(client, host))
    nodes = {inventory.address(p): inventory.numa_node(p)
             for p in inventory.pgpus}
    assert nodes == {'0000:86:00.0': 0, '0000:87:00.0': 1,
                     '0000:00:02.0': 0, '0000:3b:00.0': 0,
                     '0000:d8:00.0': 1}


def test_missing_plugin_degrades_with_one_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with server.Simulator('m60', plugin_dir=str(tmp_path)) as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            host = identity.resolve_host(client)
            plugin = dom0.Dom0Plugin(client, host)
            assert plugin.topology(['0000:86:00.0']) is None
            assert plugin.vgpu_usage() is None
            assert plugin.version() is None
            inventory = reader.read_inventory(client, host,
                                                        dom0=plugin)
            assert inventory.numa_node(next(iter(inventory.pgpus))) is None
        assert sim.faults.calls['host.call_plugin'] == 1
    warnings = [r.getMessage() for r in caplog.records
                if 'not installed' in r.getMessage()]
    assert warnings == [
        'dom0 plugin xenapi_vgpu is not installed on host xs-m60-01: NUMA '
        'placement of vGPUs is unknown. Fix: copy %s to '
        '/etc/xapi.d/plugins/xenapi_vgpu (mode 0755) on the host'
        % plugin_files.plugin_path()]


def test_old_plugin_is_refused_clearly(tmp_path):
    path = tmp_path / 'xenapi_vgpu'
    path.write_text(OLD_PLUGIN)
    with server.Simulator('m60', plugin_dir=str(tmp_path)) as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            plugin = dom0.Dom0Plugin(client, identity.resolve_host(client))
            with pytest.raises(exception.PluginError) as info:
                plugin.topology(['0000:86:00.0'])
    assert str(info.value).startswith(
        'dom0 plugin xenapi_vgpu on host ')
    assert str(info.value).endswith(
        ': API version 0.9, this client needs 1.x: install the plugin '
        'shipped with this package (%s)' % plugin_files.plugin_path())


def test_plugin_refusal_keeps_its_code(client):
    plugin = dom0.Dom0Plugin(client, identity.resolve_host(client))
    with pytest.raises(exception.XapiError) as info:
        plugin.topology(['0000:01:00.0'])
    assert info.value.details == ['XENAPI_VGPU_NOT_A_GPU', '0000:01:00.0',
                                  '020000']


def test_nvidia_usage_through_the_client(xapi, client):
    vm, _ = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                         vgpu_type(xapi, 'GRID M60-8Q'), 'big')
    xapi.VM.start(vm, False, False)
    usage = dom0.Dom0Plugin(client, identity.resolve_host(client)
                            ).vgpu_usage()
    assert usage['available'] is True
    found = [(v['vm_name'], v['vm_uuid']) for g in usage['gpus'].values()
             for v in g['vgpus']]
    # The simulated driver names the VM by domain id, as on Xen; the
    # client finds its uuid through the VM records.
    assert found == [('big', xapi.VM.get_uuid(vm))]


MALFORMED_PLUGIN = '''import json
import XenAPIPlugin

def version(session, args):
    return json.dumps({"api_version": "1.1", "functions": []})

def get_gpu_topology(session, args):
    return json.dumps(%s)

def get_nvidia_vgpu_usage(session, args):
    return json.dumps(%s)

XenAPIPlugin.dispatch({"version": version,
                       "get_gpu_topology": get_gpu_topology,
                       "get_nvidia_vgpu_usage": get_nvidia_vgpu_usage})
'''


@pytest.mark.parametrize('topology, usage', [
    ({'devices': 5}, {'gpus': {'a': {'vgpus': [7]}}}),
    ({'devices': {'0000:86:00.0': {'numa_nod': 1}}}, {'gpus': []}),
    ({'devices': {}, 'numa_nodes': [{'cpulist': '0-3'}]},
     {'gpus': {'a': 'b'}}),
])
def test_malformed_plugin_answers_are_plugin_errors(tmp_path, topology,
                                                    usage):
    (tmp_path / 'xenapi_vgpu').write_text(MALFORMED_PLUGIN % (
        repr(topology), repr(usage)))
    with server.Simulator('m60', plugin_dir=str(tmp_path)) as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            plugin = dom0.Dom0Plugin(client, identity.resolve_host(client))
            with pytest.raises(exception.PluginError) as info:
                plugin.topology(['0000:86:00.0'])
            assert str(info.value).startswith(
                'dom0 plugin xenapi_vgpu on host xs-m60-01: get_gpu_topology '
                'answered an unexpected shape (')
            assert 'Error: ' in str(info.value)
            assert str(info.value).endswith(repr(topology)[:80])
            with pytest.raises(exception.PluginError) as info:
                plugin.vgpu_usage()
            assert ': get_nvidia_vgpu_usage answered an unexpected ' \
                'shape (' in str(info.value)
            assert str(info.value).endswith(repr(usage)[:80])
            assert 'Error: ' in str(info.value)


def test_refresh_applies_deletions(m60_sim):
    # A stopped instance's VGPU (kept by its host tag) destroyed: only
    # event.from's ``del`` says so.
    xapi = login(m60_sim.url).xenapi
    with sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot') as client:
        host = identity.resolve_host(client)
        vm = xapi.VM.create({'name_label': 'halted', 'HVM_boot_policy':
                             'BIOS order', 'other_config': {}})
        vgpu = xapi.VGPU.create(
            vm, group_of(xapi, 'Tesla M60'), '0', {
                tags.HOST: xapi.host.get_uuid(host), tags.INSTANCE: 'i'},
            vgpu_type(xapi, 'GRID M60-8Q'))
        before = reader.read_inventory(client, host)
        assert list(before.stopped().values()) == [[before.vgpus[vgpu]]]
        xapi.VGPU.destroy(vgpu)
        after = reader.refresh(client, before)
        fresh = reader.read_inventory(client, host)
    assert vgpu not in after.vgpus and after.stopped() == {}
    assert after.vgpus == fresh.vgpus == {}


def test_scheduled_vgpus_are_allocated():
    # In XAPI's boot window a VGPU is scheduled on a pGPU, not resident:
    # it belongs to this host and holds its pGPU all the same.
    db = world.build(profiles.load('m60'))
    host = next(iter(db.objects['host']))
    vm = simvm.create(db, {'name_label': 'booting',
                           'HVM_boot_policy': 'BIOS order'})
    t4q = next(r for r, t in db.objects['VGPU_type'].items()
               if t['model_name'] == 'GRID M60-4Q')
    vgpu = gpu.vgpu_create(db, vm, next(iter(db.objects['GPU_group'])),
                           '0', {}, t4q)
    boot._reserve(db, vm, host)
    model = reader.from_snapshot(host, events.event_from(
        types.SimpleNamespace(db=db), list(reader.ORDER), '', 0))
    record = model.vgpus[vgpu]
    assert record.resident_on is None
    pgpu = record.scheduled_to_be_resident_on
    assert model.allocated(pgpu) == [record]
    assert model.stopped() == {}
    assert model.usage(pgpu, model.types[t4q]).remaining == 1
    other = next(r for r, t in model.types.items()
                 if t.model_name == 'GRID M60-8Q')
    assert model.usage(pgpu, model.types[other]).blocked_by == 'GRID M60-4Q'


def test_the_whole_topology_as_the_plugin_gives_it(sim, client):
    plugin = dom0.Dom0Plugin(client, identity.resolve_host(client))
    assert plugin.version()['api_version'] == '1.1'
    topology = plugin.topology(['0000:87:00.0', '0000:3b:00.0'])
    assert topology.numa_nodes == (
        dom0.NumaNode(0, '0-15', 131072 * 1024, (0,)),
        dom0.NumaNode(1, '16-31', 131072 * 1024, (1,)))
    m60 = topology.devices['0000:87:00.0']
    assert dataclasses.replace(m60, iommu_group=None) == dom0.DeviceTopology(
        '0000:87:00.0', 1, '16-31', '10de', '13f2', '030000', 'nvidia',
        None, None, None, 'xen')
    t4 = topology.devices['0000:3b:00.0']
    assert (t4.numa_node, t4.sriov_totalvfs, t4.sriov_numvfs) == (0, 16, 0)
    assert topology.numa_node_of('0000:3b:00.0') == 0
    assert topology.numa_node_of('0000:99:00.0') is None
    assert plugin.topology([]) == dom0.Topology({}, ())


@pytest.mark.parametrize('answer, reason', [
    ('"nope"', 'answer is not an object'),
    ('not json', "answer is not JSON: 'not json'"),
])
def test_answers_that_are_not_objects(tmp_path, answer, reason):
    (tmp_path / 'xenapi_vgpu').write_text(
        'import XenAPIPlugin\n\ndef version(session, args):\n'
        '    return %r\n\nXenAPIPlugin.dispatch({"version": version})\n'
        % answer)
    with server.Simulator('m60', plugin_dir=str(tmp_path)) as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            host = identity.resolve_host(client)
            plugin = dom0.Dom0Plugin(client, host)
            with pytest.raises(exception.PluginError) as info:
                plugin.version()
    assert str(info.value) == (
        'dom0 plugin xenapi_vgpu on host xs-m60-01: %s' % reason)


def test_a_refresh_keeps_the_topology_while_the_pgpus_stay(sim, client):
    xapi = login(sim.url).xenapi
    host = identity.resolve_host(client)
    plugin = dom0.Dom0Plugin(client, host)
    before = reader.read_inventory(client, host, plugin)
    vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                 vgpu_type(xapi, 'GRID M60-8Q'))  # a change: one event
    sim.faults.calls.clear()
    # A plugin client with nothing cached: any question would be a call.
    after = reader.refresh(client, before, dom0.Dom0Plugin(client, host))
    assert after.topology is before.topology
    assert sim.faults.calls['host.call_plugin'] == 0
    assert after.token != before.token


def test_the_topology_decoder_fills_what_the_plugin_left_out():
    assert dom0._decode_topology({}) == dom0.Topology({}, ())
    topology = dom0._decode_topology({
        'devices': {'0000:86:00.0': {'address': '0000:86:00.0',
                                     'numa_node': 1, 'future_field': 2,
                                     'local_cpulist': None,
                                     'vendor_id': None, 'device_id': None,
                                     'class_id': None, 'driver': None,
                                     'iommu_group': None}},
        'numa_nodes': [{'id': 1}], 'numa_source': 'sysfs'})
    assert topology.numa_nodes == (dom0.NumaNode(1, '', None, ()),)
    assert topology.numa_node_of('0000:86:00.0') == 1
    assert topology.numa_source == 'sysfs'


def test_vgpu_entries_of_a_usage_answer():
    assert dom0._vgpu_entries({'gpus': {'a': {}, 'b': {'vgpus': [
        {'id': '1'}]}}}) == [{'id': '1'}]
    with pytest.raises(TypeError) as info:
        dom0._vgpu_entries({'gpus': {'a': {'vgpus': [7]}}})
    assert str(info.value) == 'a vGPU entry is a int'


def test_the_shipped_path_when_the_package_lacks_the_plugin(monkeypatch,
                                                            tmp_path):
    monkeypatch.setattr(plugin_files, 'plugin_dirs', lambda: [
        str(tmp_path)])
    assert dom0._shipped_path() == 'dom0_plugins/xenapi_vgpu'


VERSION_ONLY = (
    'import json\nimport XenAPIPlugin\n\ndef version(session, args):\n'
    '    return json.dumps(%r)\n\nXenAPIPlugin.dispatch('
    '{"version": version})\n')


@pytest.mark.parametrize('answer, refusal', [
    ({'api_version': '1.0'}, None),
    ({'api_version': '2.1'}, 'API version 2.1'),
    ({}, 'API version unknown'),
])
def test_the_api_major_version_decides(tmp_path, answer, refusal):
    (tmp_path / 'xenapi_vgpu').write_text(VERSION_ONLY % answer)
    with server.Simulator('m60', plugin_dir=str(tmp_path)) as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            plugin = dom0.Dom0Plugin(client, identity.resolve_host(client))
            if refusal is None:
                assert plugin.version() == answer
                return
            with pytest.raises(exception.PluginError) as info:
                plugin.version()
    assert str(info.value).startswith(
        'dom0 plugin xenapi_vgpu on host xs-m60-01: %s, this client needs '
        '1.x' % refusal)


def test_the_address_of_a_pgpu_without_its_pci_record(client):
    inventory = reader.read_inventory(client, identity.resolve_host(client))
    bare = dataclasses.replace(inventory, pcis={})
    assert {bare.address(p) for p in bare.pgpus} == {''}


@pytest.mark.parametrize('installed', [True, False])
def test_a_refresh_after_a_pgpu_leaves(tmp_path, installed):
    # A pGPU gone (unplugged, its record destroyed): the topology is asked
    # again for the pGPUs left, or stays unknown without the plugin.
    plugin_dir = None if installed else str(tmp_path)
    with server.Simulator('m60', plugin_dir=plugin_dir) as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            host = identity.resolve_host(client)
            plugin = dom0.Dom0Plugin(client, host)
            before = reader.read_inventory(client, host, plugin)
            gone = next(r for r in before.pgpus
                        if before.address(r) == '0000:87:00.0')
            with sim.db.lock:
                sim.db.destroy('PGPU', gone)
            after = reader.refresh(client, before, plugin)
            without = reader.refresh(client, before)
    assert set(after.pgpus) == set(before.pgpus) - {gone}
    assert set(without.pgpus) == set(after.pgpus)
    assert without.topology is before.topology
    if installed:
        assert sorted(after.topology.devices) == ['0000:86:00.0']
        assert sorted(before.topology.devices) == [
            '0000:86:00.0', '0000:87:00.0']
    else:
        assert after.topology is None
        assert sim.faults.calls['host.call_plugin'] == 1

