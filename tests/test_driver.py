"""The driver surface, driven with Nova's own Instance and Flavor objects."""

import json
import warnings

import pytest
from nova import objects
from nova.compute import provider_tree
from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import driver
from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from tests.conftest import login
from tests.simhelpers import new_vm

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()


def make_conf(sim):
    conf = cfg.ConfigOpts()
    conflib.register_opts(conf)
    conf([], default_config_files=[])
    for name, value in (('connection_url', sim.url),
                        ('connection_password', sim.password)):
        conf.set_override(name, value, group='xenserver')
    conf.set_override('alias', [
        '{"name": "m60", "vgpu_type": "GRID M60-4Q", '
        '"numa_policy": "preferred"}',
        '{"name": "nic", "vendor_id": "8086", "product_id": "1572"}'],
        group='vgpu')
    return conf


class Driver(driver.VgpuDriverMixin):
    """What a XenAPI driver adds: VM refs and the instances it knows."""

    def __init__(self, vgpu_host, xapi):
        self.vgpu_host, self.xapi, self.vms = vgpu_host, xapi, {}

    def _vm_ref(self, instance):
        if instance.uuid not in self.vms:
            self.vms[instance.uuid] = new_vm(self.xapi, instance.uuid)
        return self.vms[instance.uuid]

    def _known_instance_uuids(self):
        return list(self.vms)


def instance(uuid, spec, cells=None):
    numa = objects.InstanceNUMATopology(cells=[
        objects.InstanceNUMACell(id=c, cpuset=set(), memory=1024)
        for c in cells]) if cells else None
    return objects.Instance(uuid=uuid, numa_topology=numa,
                            flavor=objects.Flavor(extra_specs=spec))


def test_a_driver_life_with_nova_objects(m60_sim):
    xapi = login(m60_sim.url).xenapi
    host = driver.VgpuHost.from_conf(make_conf(m60_sim))
    compute = Driver(host, xapi)
    # An orphan from a deleted instance, left on a halted VM, is reaped.
    ghost = new_vm(xapi, 'ghost')
    group = xapi.GPU_group.get_all()[0]
    t4q = [r for r, t in xapi.VGPU_type.get_all_records().items()
           if t['model_name'] == 'GRID M60-4Q'][0]
    xapi.VGPU.create(ghost, group, '0', {
        tags.HOST: host.builder.host_uuid, tags.INSTANCE: 'ghost'}, t4q)
    compute.init_host('xs-m60-01')
    assert xapi.VM.get_VGPUs(ghost) == []

    devices = json.loads(compute.get_available_resource('n')[
        'pci_passthrough_devices'])
    assert {d['status'] for d in devices} == {'available'}

    one = instance('11111111-1111-1111-1111-111111111111',
                   {'pci_passthrough:alias': 'm60:1,nic:1'}, cells=[1])
    compute.spawn(None, one, None, [], None, None)
    vm = compute.vms[one.uuid]
    assert xapi.VM.get_power_state(vm) == 'Running'
    devices = json.loads(compute.get_available_resource('n')[
        'pci_passthrough_devices'])
    assert [d['vgpu_type'] for d in devices
            if d['status'] == 'allocated'] == ['GRID M60-4Q']

    compute.power_off(one)
    compute.power_on(None, one, None)
    compute.suspend(None, one)
    compute.resume(None, one, None)
    assert xapi.VM.get_power_state(vm) == 'Running'

    compute.destroy(None, one, None)
    assert xapi.VM.get_VGPUs(vm) == []
    devices = json.loads(compute.get_available_resource('n')[
        'pci_passthrough_devices'])
    assert {d['status'] for d in devices} == {'available'}


def test_a_spawn_that_cannot_fit_leaves_nothing(m60_sim):
    xapi = login(m60_sim.url).xenapi
    compute = Driver(driver.VgpuHost.from_conf(make_conf(m60_sim)), xapi)
    for index in range(4):
        compute.spawn(None, instance('0000000%d-0000-0000-0000-000000000000'
                                     % index, {'pci_passthrough:alias':
                                               'm60:1'}), None, [], None,
                      None)
    extra = instance('99999999-0000-0000-0000-000000000000',
                     {'pci_passthrough:alias': 'm60:1'})
    with pytest.raises(exception.ClaimRefused):
        compute.spawn(None, extra, None, [], None, None)
    assert xapi.VM.get_VGPUs(compute.vms[extra.uuid]) == []
    assert extra.uuid not in compute.vgpu_host.stats.claims


def test_spawn_keeps_a_required_numa_policy_with_the_plugins_topology(sim):
    # mixed: the Tesla T4 (its own GPU group) sits on NUMA node 0 only.
    xapi = login(sim.url).xenapi
    conf = make_conf(sim)
    conf.set_override('alias', [
        '{"name": "t4", "vgpu_type": "GRID T4-4Q", '
        '"numa_policy": "required"}'], group='vgpu')
    compute = Driver(driver.VgpuHost.from_conf(conf), xapi)
    far = instance('11111111-0000-0000-0000-000000000000',
                   {'pci_passthrough:alias': 't4:1'}, cells=[1])
    with pytest.raises(exception.ClaimRefused):
        compute.spawn(None, far, None, [], None, None)
    near = instance('22222222-0000-0000-0000-000000000000',
                    {'pci_passthrough:alias': 't4:1'}, cells=[0])
    compute.spawn(None, near, None, [], None, None)
    assert xapi.VM.get_power_state(compute.vms[near.uuid]) == 'Running'


def test_update_provider_tree_reports_the_pgpus_under_the_node(m60_sim):
    conf = make_conf(m60_sim)
    conf.set_override('placement_standard_type', 'GRID M60-4Q',
                      group='vgpu')
    compute = Driver(driver.VgpuHost.from_conf(conf),
                     login(m60_sim.url).xenapi)
    providers = provider_tree.ProviderTree()
    providers.new_root('n', '00000000-0000-0000-0000-00000000000a')
    compute.update_provider_tree(providers, 'n', allocations={})
    children = [providers.data(u) for u in providers.get_provider_uuids(
        'n')[1:]]
    assert sorted(c.name for c in children) == [
        'n_pci_0000_86_00_0', 'n_pci_0000_87_00_0']
    classes = set(children[0].inventory)
    assert 'VGPU' in classes
    assert 'CUSTOM_VGPU_GRID_M60_8Q' in classes
    assert 'CUSTOM_VGPU_GRID_M60_4Q' not in classes
