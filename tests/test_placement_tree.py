"""The provider tree, in Nova 34's own ProviderTree, from the simulator."""

import dataclasses
import uuid
import warnings

from nova.compute import provider_tree

from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.placement import tree
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.pcihelpers import HostBuilder
from tests.simhelpers import group_of
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu

warnings.filterwarnings('ignore', category=DeprecationWarning)
NODE = 'compute-01'


def read(sim):
    with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
        host = identity.resolve_host(client)
        return reader.read_inventory(client, host)


def fresh_tree():
    providers = provider_tree.ProviderTree()
    providers.new_root(NODE, str(uuid.uuid4()))
    return providers


def test_one_child_per_pgpu_with_a_class_per_type(sim):
    providers = tree.update_provider_tree(read(sim), fresh_tree(), NODE)
    name = 'compute-01_pci_0000_86_00_0'
    assert providers.exists(name)
    children = providers.get_provider_uuids(NODE)[1:]
    assert len(children) == len(sim.profile['hosts'][0]['pgpus'])
    m60 = providers.data(name).inventory
    assert m60['CUSTOM_VGPU_GRID_M60_4Q']['total'] == 2
    assert m60['CUSTOM_VGPU_GRID_M60_8Q']['total'] == 1
    assert m60['CUSTOM_VGPU_PASSTHROUGH']['total'] == 1
    assert all(i['reserved'] == 0 for i in m60.values())
    traits = providers.data(name).traits
    assert 'CUSTOM_VGPU_TYPE_GRID_M60_4Q' in traits
    assert any(t.startswith('CUSTOM_GPU_GROUP_') for t in traits)


def test_a_held_pgpu_offers_no_other_type(sim):
    xapi = login(sim.url).xenapi
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-4Q'))
    xapi.VM.start(vm, False, False)
    address = xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(
        xapi.VGPU.get_resident_on(vgpu)))
    providers = tree.update_provider_tree(read(sim), fresh_tree(), NODE)
    held = providers.data(tree.provider_name(NODE, address)).inventory
    assert held['CUSTOM_VGPU_GRID_M60_4Q']['reserved'] == 0
    assert held['CUSTOM_VGPU_GRID_M60_8Q']['reserved'] == 1
    assert held['CUSTOM_VGPU_PASSTHROUGH']['reserved'] == 1


def test_the_standard_class_and_stable_uuids(sim):
    inventory = read(sim)
    first = tree.update_provider_tree(inventory, fresh_tree(), NODE,
                                      standard_type='GRID M60-4Q')
    again = tree.update_provider_tree(inventory, fresh_tree(), NODE)
    name = tree.provider_name(NODE, '0000:86:00.0')
    assert 'VGPU' in first.data(name).inventory
    assert first.data(name).uuid == again.data(name).uuid


def test_gone_pgpus_leave_the_tree(sim):
    inventory = read(sim)
    providers = tree.update_provider_tree(inventory, fresh_tree(), NODE)
    fewer = dataclasses.replace(inventory, pgpus={
        r: p for r, p in inventory.pgpus.items()
        if inventory.address(r) != '0000:86:00.0'})
    tree.update_provider_tree(fewer, providers, NODE, allocations={})
    assert not providers.exists(tree.provider_name(NODE, '0000:86:00.0'))
    assert providers.exists(tree.provider_name(NODE, '0000:87:00.0'))


def test_the_tree_from_plain_records():
    host = HostBuilder()
    group = host.group('m60', 'depth_first')
    a = host.pgpu(group, '0000:86:00.0', 0)
    host.pgpu(group, '0000:87:00.0', 1)
    host.vgpu(group, 'GRID M60-8Q', pgpu=a, instance='i')
    providers = tree.update_provider_tree(host.inventory(), fresh_tree(),
                                          NODE, enabled=['GRID M60-4Q',
                                                         'GRID M60-8Q'])
    held = providers.data(tree.provider_name(NODE, '0000:86:00.0'))
    free = providers.data(tree.provider_name(NODE, '0000:87:00.0'))
    assert set(held.inventory) == {'CUSTOM_VGPU_GRID_M60_4Q',
                                   'CUSTOM_VGPU_GRID_M60_8Q'}
    assert held.inventory['CUSTOM_VGPU_GRID_M60_4Q']['reserved'] == 2
    assert held.inventory['CUSTOM_VGPU_GRID_M60_8Q']['reserved'] == 0
    assert all(i['reserved'] == 0 for i in free.inventory.values())
    assert 'CUSTOM_NUMA_NODE_1' in free.traits


def test_a_providers_whole_inventory_and_traits():
    host = HostBuilder()
    group = host.group('m60')
    host.pgpu(group, '0000:86:00.0', 1)
    providers = fresh_tree()
    providers.new_child('compute-01_other', NODE, uuid=str(uuid.uuid4()))
    tree.update_provider_tree(host.inventory(), providers, NODE,
                              enabled=['GRID M60-4Q'],
                              standard_type='GRID M60-4Q')
    data = providers.data(tree.provider_name(NODE, '0000:86:00.0'))
    assert data.inventory == {'VGPU': {
        'total': 2, 'reserved': 0, 'min_unit': 1, 'max_unit': 2,
        'step_size': 1, 'allocation_ratio': 1.0}}
    assert sorted(data.traits) == [
        'CUSTOM_GPU_GROUP_UUID_OPAQUEREF_GROUP_M60', 'CUSTOM_NUMA_NODE_1',
        'CUSTOM_VGPU_TYPE_GRID_M60_4Q']
    assert data.uuid == str(uuid.uuid5(
        tree.NAMESPACE, 'host-uuid/uuid-0000:86:00.0'))
    # A child another driver made, not named like ours, stays.
    assert providers.exists('compute-01_other')


def test_only_the_standard_type_is_vgpu_and_empty_types_are_skipped():
    host = HostBuilder()
    group = host.group('m60')
    ref = host.pgpu(group, '0000:86:00.0')
    record = host.pgpus[ref]
    host.pgpus[ref] = dataclasses.replace(
        record, supported_VGPU_max_capacities=dict(
            record.supported_VGPU_max_capacities, **{
                'OpaqueRef:type-GRID_M60-1Q': 0}))
    providers = tree.update_provider_tree(host.inventory(), fresh_tree(),
                                          NODE, standard_type='GRID M60-4Q')
    assert set(providers.data(tree.provider_name(
        NODE, '0000:86:00.0')).inventory) == {
        'VGPU', 'CUSTOM_VGPU_GRID_M60_8Q', 'CUSTOM_VGPU_PASSTHROUGH'}


def test_every_gone_pgpu_leaves_the_tree():
    host = HostBuilder()
    group = host.group('m60')
    for address in ('0000:86:00.0', '0000:87:00.0', '0000:88:00.0'):
        host.pgpu(group, address)
    providers = tree.update_provider_tree(host.inventory(), fresh_tree(),
                                          NODE)
    assert len(providers.get_provider_uuids(NODE)) == 4
    none = dataclasses.replace(host.inventory(), pgpus={})
    tree.update_provider_tree(none, providers, NODE)
    assert len(providers.get_provider_uuids(NODE)) == 1
