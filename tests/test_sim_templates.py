"""Templates, provisioning and whole-VM copies, through the real SDK.

xapi_vm_lifecycle.ml (check_template), xapi_templates.ml and xapi_vm.ml
(provision), xapi_vm_clone.ml (clone, copy, snapshot), xapi_vif_helpers.ml
(new MACs from the new VM's seed).
"""

import re

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import failure
from tests.conftest import login

GIB = 2 ** 30
MAC = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')


@pytest.fixture
def xapi():
    with server.Simulator('m60') as sim:
        yield login(sim.url).xenapi


def template(xapi, name):
    (ref,) = xapi.VM.get_by_name_label(name)
    return ref


def local_sr(xapi):
    (pool,) = xapi.pool.get_all()
    return xapi.pool.get_default_SR(pool)


def install(xapi, name, new_name='guest'):
    """What ``xe vm-install`` does: clone, point the disks at an SR,
    provision."""
    vm = xapi.VM.clone(template(xapi, name), new_name)
    other = xapi.VM.get_other_config(vm)
    if 'disks' in other:
        uuid = xapi.SR.get_uuid(local_sr(xapi))
        xapi.VM.remove_from_other_config(vm, 'disks')
        xapi.VM.add_to_other_config(vm, 'disks', other['disks'].replace(
            'sr=""', 'sr="%s"' % uuid))
    xapi.VM.provision(vm)
    return vm


def test_shipped_templates(xapi):
    templates = {r['name_label']: r for r in xapi.VM.get_all_records(
        ).values() if r['is_a_template']}
    assert {'Other install media', 'Debian Bookworm 12'} <= set(templates)
    assert 'disks' not in templates['Other install media']['other_config']
    disks = templates['Debian Bookworm 12']['other_config']['disks']
    assert 'sr=""' in disks and 'bootable="true"' in disks
    assert all(r['is_default_template'] for r in templates.values())


def test_a_template_does_not_start_and_default_ones_stay(xapi):
    ref = template(xapi, 'Other install media')
    assert failure(xapi.VM.start, ref, False, False) == [
        'VM_IS_TEMPLATE', ref, 'start']
    assert failure(xapi.VM.destroy, ref) == ['VM_IS_TEMPLATE', ref,
                                              'destroy']
    assert 'start' not in xapi.VM.get_allowed_operations(ref)
    assert 'clone' in xapi.VM.get_allowed_operations(ref)


def test_a_custom_template_can_be_destroyed(xapi):
    vm = xapi.VM.clone(template(xapi, 'Other install media'), 'mine')
    assert xapi.VM.get_is_a_template(vm) is True
    assert 'default_template' not in xapi.VM.get_other_config(vm)
    assert xapi.VM.get_is_default_template(vm) is False
    xapi.VM.destroy(vm)
    assert vm not in xapi.VM.get_all()


def test_provision_needs_the_sr_rewritten(xapi):
    vm = xapi.VM.clone(template(xapi, 'Debian Bookworm 12'), 'raw-install')
    assert failure(xapi.VM.provision, vm) == ['UUID_INVALID', 'sr', '']
    # xapi_vm.ml clears is_a_template before it creates the disks
    assert xapi.VM.get_is_a_template(vm) is False
    assert xapi.VM.get_VBDs(vm) == []
    plain = xapi.VM.create({'name_label': 'plain'})
    assert failure(xapi.VM.provision, plain) == ['ONLY_PROVISION_TEMPLATE']


def test_provision_creates_the_disks(xapi):
    vm = install(xapi, 'Debian Bookworm 12')
    (vbd,) = xapi.VM.get_VBDs(vm)
    record = xapi.VBD.get_record(vbd)
    assert (record['userdevice'], record['bootable'], record['type'],
            record['mode'], record['unpluggable']) == (
        '0', True, 'Disk', 'RW', False)
    vdi = xapi.VDI.get_record(record['VDI'])
    assert (vdi['SR'], vdi['virtual_size'], vdi['type'], vdi['name_label'],
            vdi['name_description']) == (
        local_sr(xapi), str(10 * GIB), 'system', '0',
        'Created by template provisioner')
    assert 'disks' not in xapi.VM.get_other_config(vm)
    assert xapi.VM.get_is_a_template(vm) is False
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_clone_and_copy_take_the_disks_and_vifs(xapi):
    vm = install(xapi, 'Debian Bookworm 12')
    (network,) = xapi.network.get_all()
    vif = xapi.VIF.create({'VM': vm, 'network': network, 'device': '0',
                           'MAC': '', 'MTU': '1500', 'other_config': {},
                           'qos_algorithm_type': '',
                           'qos_algorithm_params': {}})
    (disk,) = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)]
    clone = xapi.VM.clone(vm, 'clone')
    copy = xapi.VM.copy(vm, 'copy', local_sr(xapi))
    for new in (clone, copy):
        (new_vbd,) = xapi.VM.get_VBDs(new)
        new_disk = xapi.VBD.get_VDI(new_vbd)
        assert new_disk != disk
        assert xapi.VDI.get_virtual_size(new_disk) == str(10 * GIB)
        (new_vif,) = xapi.VM.get_VIFs(new)
        mac = xapi.VIF.get_MAC(new_vif)
        assert MAC.match(mac) and mac != xapi.VIF.get_MAC(vif)
        assert xapi.VM.get_other_config(new)['mac_seed'] != (
            xapi.VM.get_other_config(vm)['mac_seed'])
    snapshot = xapi.VM.snapshot(vm, 'snap')
    (snap_vif,) = xapi.VM.get_VIFs(snapshot)
    assert xapi.VIF.get_MAC(snap_vif) == xapi.VIF.get_MAC(vif)
    assert xapi.VM.get_is_a_template(snapshot) is True
    (snap_vbd,) = xapi.VM.get_VBDs(snapshot)
    assert xapi.VDI.get_snapshot_of(xapi.VBD.get_VDI(snap_vbd)) == disk
    assert failure(xapi.VM.start, snapshot, False, False) == [
        'VM_IS_SNAPSHOT', snapshot, 'start']
