"""Migration with disks inside the pool, through the real SDK.

xapi_vm_migrate.ml: check_vdi_map (VDI_NOT_IN_MAP), assert_can_migrate's
intra-pool vif_map refusal, the disks moving with migrate_send, and
vdi_pool_migrate with message_forwarding.ml's VDI_NEEDS_VM_FOR_MIGRATE.
"""

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import failure
from tests.conftest import login

GIB = 2 ** 30


@pytest.fixture
def pool():
    profile = {'hosts': [{'name': 'a', 'pgpus': []},
                         {'name': 'b', 'pgpus': []}]}
    with server.Simulator(profile) as sim:
        yield sim, login(sim.url).xenapi


def setup(xapi):
    """Hosts and local SRs by name, a VM with a disk on a's SR running
    on a, its disk, and a migrate_receive map for b."""
    hosts = {xapi.host.get_name_label(h): h for h in xapi.host.get_all()}
    srs = {name: xapi.PBD.get_SR(xapi.host.get_PBDs(h)[0])
           for name, h in hosts.items()}
    vm = xapi.VM.create({'name_label': 'mover', 'HVM_boot_policy': 'BIOS',
                         'memory_static_max': str(GIB),
                         'memory_dynamic_min': str(GIB),
                         'memory_dynamic_max': str(GIB)})
    vdi = xapi.VDI.create({
        'name_label': 'root', 'name_description': '', 'SR': srs['a'],
        'virtual_size': str(10 * GIB), 'type': 'system', 'sharable': False,
        'read_only': False, 'other_config': {}, 'xenstore_data': {},
        'sm_config': {}, 'tags': []})
    xapi.VBD.create({'VM': vm, 'VDI': vdi, 'userdevice': '0',
                     'bootable': True, 'mode': 'RW', 'type': 'Disk',
                     'unpluggable': False, 'empty': False,
                     'other_config': {}, 'qos_algorithm_type': '',
                     'qos_algorithm_params': {}})
    (network,) = xapi.network.get_all()
    dest = xapi.host.migrate_receive(hosts['b'], network, {})
    return hosts, srs, vm, vdi, dest


def test_every_disk_must_be_mapped(pool):
    _, xapi = pool
    hosts, srs, vm, vdi, dest = setup(xapi)
    xapi.VM.start_on(vm, hosts['a'], False, False)
    for call in (xapi.VM.assert_can_migrate, xapi.VM.migrate_send):
        assert failure(call, vm, dest, True, {}, {}, {}) == [
            'VDI_NOT_IN_MAP', vdi]
    assert xapi.VM.get_resident_on(vm) == hosts['a']


def test_a_vif_map_is_refused_inside_the_pool(pool):
    _, xapi = pool
    hosts, srs, vm, vdi, dest = setup(xapi)
    (network,) = xapi.network.get_all()
    vif = xapi.VIF.create({'VM': vm, 'network': network, 'device': '0',
                           'MAC': '', 'MTU': '1500', 'other_config': {},
                           'qos_algorithm_type': '',
                           'qos_algorithm_params': {}})
    xapi.VM.start_on(vm, hosts['a'], False, False)
    refusal = ['OPERATION_NOT_ALLOWED', 'VIF mapping is not allowed for '
               'intra-pool migration -all VIFs must be on the same network']
    for call in (xapi.VM.assert_can_migrate, xapi.VM.migrate_send):
        assert failure(call, vm, dest, True, {vdi: srs['b']},
                       {vif: network}, {}) == refusal


def test_the_vm_and_its_disk_move(pool):
    _, xapi = pool
    hosts, srs, vm, vdi, dest = setup(xapi)
    xapi.VM.start_on(vm, hosts['a'], False, False)
    assert failure(xapi.VM.start_on, vm, hosts['b'], False, False)[0] == (
        'VM_BAD_POWER_STATE')
    xapi.VM.assert_can_migrate(vm, dest, True, {vdi: srs['b']}, {}, {})
    xapi.VM.migrate_send(vm, dest, True, {vdi: srs['b']}, {}, {})
    assert xapi.VM.get_resident_on(vm) == hosts['b']
    (vbd,) = xapi.VM.get_VBDs(vm)
    moved = xapi.VBD.get_VDI(vbd)
    assert vdi not in xapi.VDI.get_all()
    assert (xapi.VDI.get_SR(moved), xapi.VDI.get_virtual_size(moved),
            xapi.VDI.get_name_label(moved)) == (srs['b'], str(10 * GIB),
                                                'root')
    assert xapi.SR.get_physical_utilisation(srs['a']) == '0'
    assert xapi.SR.get_physical_utilisation(srs['b']) == str(10 * GIB)


def test_a_halted_vms_disks_move_alone(pool):
    _, xapi = pool
    hosts, srs, vm, vdi, dest = setup(xapi)
    xapi.VM.migrate_send(vm, dest, True, {vdi: srs['b']}, {}, {})
    (vbd,) = xapi.VM.get_VBDs(vm)
    assert xapi.VDI.get_SR(xapi.VBD.get_VDI(vbd)) == srs['b']
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert failure(xapi.VM.start_on, vm, hosts['a'], False, False)[0] == (
        'VM_REQUIRES_SR')


def test_vdi_pool_migrate_moves_the_running_vm(pool):
    _, xapi = pool
    hosts, srs, vm, vdi, _ = setup(xapi)
    xapi.VM.start_on(vm, hosts['a'], False, False)
    moved = xapi.VDI.pool_migrate(vdi, srs['b'], {})
    assert xapi.VDI.get_SR(moved) == srs['b']
    (vbd,) = xapi.VM.get_VBDs(vm)
    assert xapi.VBD.get_VDI(vbd) == moved
    assert xapi.VM.get_resident_on(vm) == hosts['b']
    assert xapi.VBD.get_currently_attached(vbd) is True
    lonely = xapi.VDI.create({
        'name_label': 'lonely', 'name_description': '', 'SR': srs['a'],
        'virtual_size': str(GIB), 'type': 'user', 'sharable': False,
        'read_only': False, 'other_config': {}, 'xenstore_data': {},
        'sm_config': {}, 'tags': []})
    assert failure(xapi.VDI.pool_migrate, lonely, srs['b'], {}) == [
        'VDI_NEEDS_VM_FOR_MIGRATE', lonely]


def test_pool_migrate_needs_the_disks_seen_at_the_destination(pool):
    # VM.pool_migrate keeps the disks where they are: assert_can_boot_here
    # checks the destination sees their SRs (xapi_vm_helpers.ml).
    _, xapi = pool
    hosts, srs, vm, vdi, _ = setup(xapi)
    xapi.VM.start_on(vm, hosts['a'], False, False)
    assert failure(xapi.VM.pool_migrate, vm, hosts['b'], {}) == [
        'VM_REQUIRES_SR', vm, srs['a']]
    assert xapi.VM.get_resident_on(vm) == hosts['a']
