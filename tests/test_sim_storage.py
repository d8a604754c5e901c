"""SRs, VDIs and VBDs as xapi and its storage backends answer them.

xapi_vdi.ml (VDI_IN_USE, SR_NO_PBDS), sm's LVHD and EXT backends
(SR_BACKEND_FAILURE_44 and _79, rounding), xapi_vbd.ml and
device_number.ml (DEVICE_ALREADY_EXISTS by device number),
xapi_vbd_helpers.ml (plug, unplug, destroy), xapi_vm_helpers.ml
(assert_can_see_SRs: VM_REQUIRES_SR).
"""

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import failure
from tests.conftest import login

MIB = 2 ** 20
GIB = 2 ** 30
NULL = 'OpaqueRef:NULL'


def two_hosts(lvm_gib=100, ext_gib=50):
    return {'hosts': [
        {'name': 'thick', 'local_sr': {'type': 'lvm', 'size_gib': lvm_gib},
         'pgpus': []},
        {'name': 'thin', 'local_sr': {'type': 'ext', 'size_gib': ext_gib},
         'pgpus': []}]}


@pytest.fixture
def pool():
    with server.Simulator(two_hosts()) as sim:
        yield sim, login(sim.url).xenapi


def local_srs(xapi):
    """{host name: its local SR}."""
    result = {}
    for pbd in xapi.PBD.get_all_records().values():
        result[xapi.host.get_name_label(pbd['host'])] = pbd['SR']
    return result


def hosts(xapi):
    return {xapi.host.get_name_label(h): h for h in xapi.host.get_all()}


def new_vdi(xapi, sr, size, **fields):
    return xapi.VDI.create(dict({
        'name_label': 'disk', 'name_description': '', 'SR': sr,
        'virtual_size': str(size), 'type': 'user', 'sharable': False,
        'read_only': False, 'other_config': {}, 'xenstore_data': {},
        'sm_config': {}, 'tags': []}, **fields))


def new_vm(xapi, name='vm'):
    return xapi.VM.create({'name_label': name, 'HVM_boot_policy': 'BIOS '
                           'order', 'memory_static_max': str(GIB),
                           'memory_dynamic_max': str(GIB),
                           'memory_dynamic_min': str(GIB)})


def new_vbd(xapi, vm, vdi, userdevice, **fields):
    return xapi.VBD.create(dict({
        'VM': vm, 'VDI': vdi, 'userdevice': userdevice, 'bootable': True,
        'mode': 'RW', 'type': 'Disk', 'unpluggable': True, 'empty': False,
        'other_config': {}, 'qos_algorithm_type': '',
        'qos_algorithm_params': {}}, **fields))


def test_each_host_has_a_local_sr_and_the_pool_a_default(pool):
    _, xapi = pool
    srs = local_srs(xapi)
    assert len(set(srs.values())) == 2
    (pool_ref,) = xapi.pool.get_all()
    master = xapi.pool.get_master(pool_ref)
    assert xapi.pool.get_default_SR(pool_ref) == srs[
        xapi.host.get_name_label(master)]
    thick = xapi.SR.get_record(srs['thick'])
    assert (thick['type'], thick['shared'], thick['physical_size']) == (
        'lvm', False, str(100 * GIB))
    assert xapi.SR.get_type(srs['thin']) == 'ext'


def test_vdi_sizes_round_and_fill_a_thick_sr(pool):
    _, xapi = pool
    sr = local_srs(xapi)['thick']
    vdi = new_vdi(xapi, sr, 10 * GIB + 1)
    assert xapi.VDI.get_virtual_size(vdi) == str(10 * GIB + 4 * MIB)
    record = xapi.SR.get_record(sr)
    assert record['physical_utilisation'] == str(10 * GIB + 4 * MIB)
    assert record['virtual_allocation'] == str(10 * GIB + 4 * MIB)
    assert xapi.SR.get_VDIs(sr) == [vdi]
    assert failure(new_vdi, xapi, sr, 95 * GIB) == [
        'SR_BACKEND_FAILURE_44', '', 'There is insufficient space', '']
    assert failure(xapi.VDI.resize, vdi, str(120 * GIB))[0] == (
        'SR_BACKEND_FAILURE_44')
    xapi.VDI.resize(vdi, str(20 * GIB))
    assert xapi.VDI.get_virtual_size(vdi) == str(20 * GIB)
    assert failure(xapi.VDI.resize, vdi, str(GIB)) == [
        'SR_BACKEND_FAILURE_79', '',
        'VDI Invalid size [opterr=shrinking not allowed]', '']
    xapi.VDI.destroy(vdi)
    assert xapi.SR.get_physical_utilisation(sr) == '0'


def test_a_thin_sr_takes_up_to_the_vhd_limit(pool):
    _, xapi = pool
    sr = local_srs(xapi)['thin']
    vdi = new_vdi(xapi, sr, 500 * GIB + 1)
    assert xapi.VDI.get_virtual_size(vdi) == str(500 * GIB + 2 * MIB)
    assert xapi.SR.get_physical_utilisation(sr) == '0'
    assert xapi.SR.get_virtual_allocation(sr) == str(500 * GIB + 2 * MIB)
    assert failure(new_vdi, xapi, sr, 2093051 * MIB) == [
        'SR_BACKEND_FAILURE_79', '', 'VDI Invalid size [opterr=VDI size '
        'must be between 1 MB and 2093050 MB]', '']


def test_snapshot_and_copy(pool):
    _, xapi = pool
    srs = local_srs(xapi)
    vdi = new_vdi(xapi, srs['thick'], 40 * GIB, other_config={'o': 'me'})
    snap = xapi.VDI.snapshot(vdi, {})
    record = xapi.VDI.get_record(snap)
    assert (record['is_a_snapshot'], record['snapshot_of'],
            record['virtual_size'], record['SR']) == (
        True, vdi, str(40 * GIB), srs['thick'])
    assert xapi.VDI.get_snapshots(vdi) == [snap]
    assert failure(xapi.VDI.snapshot, vdi, {})[0] == 'SR_BACKEND_FAILURE_44'
    copy = xapi.VDI.copy(vdi, srs['thin'])
    record = xapi.VDI.get_record(copy)
    assert (record['SR'], record['virtual_size'], record['is_a_snapshot'],
            record['other_config']) == (srs['thin'], str(40 * GIB), False,
                                        {'o': 'me'})


def test_vbd_device_numbers_clash_across_names(pool):
    _, xapi = pool
    sr = local_srs(xapi)['thick']
    vm = new_vm(xapi)
    first = new_vbd(xapi, vm, new_vdi(xapi, sr, GIB), '0')
    other = new_vdi(xapi, sr, GIB)
    for name in ('0', 'xvda', 'hda'):
        assert failure(new_vbd, xapi, vm, other, name) == [
            'DEVICE_ALREADY_EXISTS', name]
    assert failure(new_vbd, xapi, vm, other, 'bogus') == [
        'INVALID_DEVICE', 'bogus']
    allowed = xapi.VM.get_allowed_VBD_devices(vm)
    assert allowed[:2] == ['1', '2'] and len(allowed) == 254
    second = new_vbd(xapi, vm, other, 'autodetect')
    assert xapi.VBD.get_userdevice(second) == '1'
    assert xapi.VM.get_VBDs(vm) == sorted([first, second])
    assert xapi.VDI.get_VBDs(other) == [second]
    # allowed_VBD_devices tries IDE numbers for an HVM guest's first four
    # disks, so a VBD named xvdc leaves 2 free and autodetect then picks
    # 2, which clashes with xvdc by number: xapi's own behaviour.
    new_vbd(xapi, vm, new_vdi(xapi, sr, GIB), 'xvdc')
    assert failure(new_vbd, xapi, vm, new_vdi(xapi, sr, GIB),
                   'autodetect') == ['DEVICE_ALREADY_EXISTS', '2']


def test_vbd_create_rules(pool):
    _, xapi = pool
    sr = local_srs(xapi)['thick']
    vm = new_vm(xapi)
    assert failure(lambda: new_vbd(xapi, vm, NULL, '3', type='CD',
                                   empty=True, mode='RW')) == [
        'VBD_CDS_MUST_BE_READONLY']
    assert failure(lambda: new_vbd(xapi, vm, NULL, '3', empty=True)) == [
        'VBD_NOT_REMOVABLE_MEDIA', 'in constructor']
    read_only = new_vdi(xapi, sr, GIB, read_only=True)
    assert failure(new_vbd, xapi, vm, read_only, '1') == [
        'VDI_READONLY', read_only]
    cd = new_vbd(xapi, vm, NULL, '3', type='CD', empty=True, mode='RO')
    assert xapi.VBD.get_record(cd)['empty'] is True


def test_plug_unplug_and_destroy(pool):
    sim, xapi = pool
    sr = local_srs(xapi)['thick']
    vm = new_vm(xapi)
    vdi = new_vdi(xapi, sr, GIB)
    boot = new_vbd(xapi, vm, vdi, '0')
    assert failure(xapi.VBD.plug, boot) == [
        'VM_BAD_POWER_STATE', vm, 'running', 'halted']
    xapi.VM.start(vm, False, False)
    assert xapi.VBD.get_currently_attached(boot) is True
    assert xapi.VBD.get_device(boot) == 'xvda'
    assert failure(xapi.VBD.plug, boot) == ['DEVICE_ALREADY_ATTACHED', boot]
    assert failure(xapi.VDI.destroy, vdi) == ['VDI_IN_USE', vdi, 'destroy']
    assert failure(xapi.VDI.resize, vdi, str(2 * GIB)) == [
        'VDI_IN_USE', vdi, 'resize']
    assert failure(xapi.VBD.destroy, boot)[0] == 'OPERATION_NOT_ALLOWED'
    extra = new_vbd(xapi, vm, new_vdi(xapi, sr, GIB), '1')
    assert failure(xapi.VBD.unplug, extra) == [
        'DEVICE_ALREADY_DETACHED', extra]
    xapi.VBD.plug(extra)
    assert xapi.VBD.get_currently_attached(extra) is True
    xapi.VBD.unplug(extra)
    xapi.VBD.destroy(extra)
    sim.set_guest(vm, pv_drivers=False)
    assert failure(xapi.VBD.unplug, boot) == ['VM_MISSING_PV_DRIVERS', vm]
    xapi.VM.hard_shutdown(vm)
    assert xapi.VBD.get_currently_attached(boot) is False
    xapi.VDI.destroy(vdi)
    assert boot not in xapi.VBD.get_all()


def test_a_vm_starts_only_where_its_srs_are_seen(pool):
    _, xapi = pool
    srs, by_name = local_srs(xapi), hosts(xapi)
    vm = new_vm(xapi)
    new_vbd(xapi, vm, new_vdi(xapi, srs['thin'], GIB), '0')
    assert failure(xapi.VM.start_on, vm, by_name['thick'], False,
                   False) == ['VM_REQUIRES_SR', vm, srs['thin']]
    assert failure(xapi.VM.assert_can_boot_here, vm, by_name['thick']) == [
        'VM_REQUIRES_SR', vm, srs['thin']]
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_resident_on(vm) == by_name['thin']
