"""Simulator GPU rules, as xapi applies them (plain XenAPI SDK only)."""

import threading
import time

import pytest

from tests.conftest import failure
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import resident_pgpu
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu

NULL = 'OpaqueRef:NULL'


@pytest.fixture
def m60(xapi):
    return group_of(xapi, 'Tesla M60')


def test_vm_create_takes_xapi_defaults(xapi):
    record = xapi.VM.get_record(new_vm(xapi))
    assert record['power_state'] == 'Halted'
    assert record['memory_static_max'] == str(2 ** 30)
    assert record['actions_after_crash'] == 'restart'
    assert record['VGPUs'] == []
    assert record['resident_on'] == NULL


def test_vgpu_create_needs_halted_vm(xapi, m60):
    vm, _ = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-4Q'))
    xapi.VM.start(vm, False, False)
    details = failure(xapi.VGPU.create, vm, m60, '0', {},
                      vgpu_type(xapi, 'GRID M60-4Q'))
    assert details == ['VM_BAD_POWER_STATE', vm, 'halted', 'running']


def test_vgpu_record_after_create(xapi, m60):
    t4q = vgpu_type(xapi, 'GRID M60-4Q')
    vm, vgpu = vm_with_vgpu(xapi, m60, t4q)
    record = xapi.VGPU.get_record(vgpu)
    assert (record['VM'], record['GPU_group'], record['type']) == (
        vm, m60, t4q)
    assert record['device'] == '0'
    assert record['currently_attached'] is False
    assert record['resident_on'] == NULL
    assert xapi.VM.get_VGPUs(vm) == [vgpu]
    assert vgpu in xapi.GPU_group.get_VGPUs(m60)
    assert vgpu in xapi.VGPU_type.get_VGPUs(t4q)


def test_one_vgpu_per_vm_for_plain_nvidia_types(xapi, m60):
    t4q = vgpu_type(xapi, 'GRID M60-4Q')
    vm, _ = vm_with_vgpu(xapi, m60, t4q)
    assert failure(xapi.VGPU.create, vm, m60, '1', {}, t4q) == [
        'VGPU_TYPE_NOT_COMPATIBLE', t4q]


def test_sriov_types_allow_several_vgpus_and_devices(xapi):
    t4 = group_of(xapi, 'Tesla T4')
    t2q = vgpu_type(xapi, 'GRID T4-2Q')
    vm = new_vm(xapi)
    devices = [xapi.VGPU.get_device(xapi.VGPU.create(vm, t4, '0', {}, t2q))
               for _ in range(3)]
    assert devices == ['0', '1', '2']
    assert xapi.VGPU.get_device(
        xapi.VGPU.create(vm, t4, '7', {}, t2q)) == '7'
    assert failure(xapi.VGPU.create, vm, t4, '7', {}, t2q) == [
        'DEVICE_ALREADY_EXISTS', '7']
    assert failure(xapi.VGPU.create, vm, t4, '21', {}, t2q) == [
        'INVALID_DEVICE', '21']
    for _ in range(17):
        xapi.VGPU.create(vm, t4, '0', {}, t2q)
    assert failure(xapi.VGPU.create, vm, t4, '0', {}, t2q) == [
        'VM_PCI_BUS_FULL', vm]


def test_several_vgpus_start_and_fill_the_pgpu(xapi):
    t4 = group_of(xapi, 'Tesla T4')
    t8q = vgpu_type(xapi, 'GRID T4-8Q')
    vm = new_vm(xapi)
    for _ in range(2):
        xapi.VGPU.create(vm, t4, '0', {}, t8q)
    assert xapi.GPU_group.get_remaining_capacity(t4, t8q) == '2'
    xapi.VM.start(vm, False, False)
    assert xapi.GPU_group.get_remaining_capacity(t4, t8q) == '0'
    other, _ = vm_with_vgpu(xapi, t4, t8q, 'other')
    assert failure(xapi.VM.start, other, False, False) == [
        'NO_HOSTS_AVAILABLE']


def test_create_checks_neither_capacity_nor_enabled(xapi, m60):
    t8q = vgpu_type(xapi, 'GRID M60-8Q')
    for pgpu in xapi.GPU_group.get_PGPUs(m60):
        xapi.PGPU.remove_enabled_VGPU_types(pgpu, t8q)
    vm, vgpu = vm_with_vgpu(xapi, m60, t8q)
    assert xapi.VGPU.get_type(vgpu) == t8q
    host = xapi.host.get_all()[0]
    assert failure(xapi.VM.start_on, vm, host, False, False) == [
        'VM_REQUIRES_VGPU', vm, m60, t8q]


def test_capacity_is_taken_at_start_and_freed_at_shutdown(xapi, m60):
    t4q = vgpu_type(xapi, 'GRID M60-4Q')
    assert xapi.GPU_group.get_remaining_capacity(m60, t4q) == '4'
    vm, vgpu = vm_with_vgpu(xapi, m60, t4q)
    assert xapi.GPU_group.get_remaining_capacity(m60, t4q) == '4'
    xapi.VM.start(vm, False, False)
    pgpu = resident_pgpu(xapi, vgpu)
    assert pgpu in xapi.GPU_group.get_PGPUs(m60)
    assert xapi.VGPU.get_currently_attached(vgpu) is True
    assert xapi.PGPU.get_resident_VGPUs(pgpu) == [vgpu]
    assert xapi.PGPU.get_remaining_capacity(pgpu, t4q) == '1'
    assert xapi.GPU_group.get_remaining_capacity(m60, t4q) == '3'
    xapi.VM.clean_shutdown(vm)
    assert resident_pgpu(xapi, vgpu) == NULL
    assert xapi.VGPU.get_currently_attached(vgpu) is False
    assert xapi.GPU_group.get_remaining_capacity(m60, t4q) == '4'


def _start_two(xapi, group, model):
    pgpus = []
    for name in ('a', 'b'):
        vm, vgpu = vm_with_vgpu(xapi, group, vgpu_type(xapi, model), name)
        xapi.VM.start(vm, False, False)
        pgpus.append(resident_pgpu(xapi, vgpu))
    return pgpus


def test_depth_first_fills_one_pgpu_first(xapi, m60):
    first, second = _start_two(xapi, m60, 'GRID M60-2Q')
    assert first == second


def test_breadth_first_spreads(xapi, m60):
    xapi.GPU_group.set_allocation_algorithm(m60, 'breadth_first')
    first, second = _start_two(xapi, m60, 'GRID M60-2Q')
    assert first != second


def test_one_type_per_pgpu(xapi, m60):
    host = xapi.host.get_all()[0]
    placed = []
    for name, model in (('a', 'GRID M60-4Q'), ('b', 'GRID M60-2Q'),
                        ('c', 'GRID M60-8Q')):
        vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, model), name)
        if name == 'c':
            assert failure(xapi.VM.start_on, vm, host, False, False) == [
                'VM_REQUIRES_VGPU', vm, m60, vgpu_type(xapi, model)]
        else:
            xapi.VM.start_on(vm, host, False, False)
            placed.append(resident_pgpu(xapi, vgpu))
    assert placed[0] != placed[1]
    t2q = vgpu_type(xapi, 'GRID M60-2Q')
    assert xapi.PGPU.get_remaining_capacity(placed[0], t2q) == '0'


def test_passthrough_is_exclusive(xapi, m60):
    passthrough = vgpu_type(xapi, 'passthrough')
    host = xapi.host.get_all()[0]
    vms = []
    for name in ('a', 'b', 'c'):
        vm, vgpu = vm_with_vgpu(xapi, m60, passthrough, name)
        vms.append((vm, vgpu))
    for vm, _ in vms[:2]:
        xapi.VM.start_on(vm, host, False, False)
    assert failure(xapi.VM.start_on, vms[2][0], host, False, False) == [
        'VM_REQUIRES_GPU', vms[2][0], m60]
    pgpu = resident_pgpu(xapi, vms[0][1])
    assert xapi.PGPU.get_remaining_capacity(
        pgpu, vgpu_type(xapi, 'GRID M60-1Q')) == '0'


def test_null_type_means_passthrough(xapi, m60):
    vm = new_vm(xapi)
    vgpu = xapi.VGPU.create(vm, m60, '0', {}, NULL)
    assert xapi.VGPU.get_type(vgpu) == vgpu_type(xapi, 'passthrough')


def test_vgpu_destroy_refused_while_running(xapi, m60):
    vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-1Q'))
    xapi.VM.start(vm, False, False)
    assert failure(xapi.VGPU.destroy, vgpu) == [
        'OPERATION_NOT_ALLOWED', 'vGPU currently attached to a running VM']
    xapi.VM.hard_shutdown(vm)
    xapi.VGPU.destroy(vgpu)
    assert failure(xapi.VGPU.get_record, vgpu) == [
        'HANDLE_INVALID', 'VGPU', vgpu]


def test_vm_destroy_removes_vgpus(xapi, m60):
    vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-1Q'))
    xapi.VM.start(vm, False, False)
    assert failure(xapi.VM.destroy, vm) == [
        'VM_BAD_POWER_STATE', vm, 'halted, suspended', 'running']
    xapi.VM.clean_shutdown(vm)
    xapi.VM.destroy(vm)
    assert vgpu not in xapi.VGPU.get_all()


def test_shutdown_of_halted_vm(xapi):
    vm = new_vm(xapi)
    assert failure(xapi.VM.clean_shutdown, vm) == [
        'VM_BAD_POWER_STATE', vm, 'running', 'halted']


def test_remaining_capacity_zero_for_disabled_or_unsupported(xapi, m60):
    pgpu = xapi.GPU_group.get_PGPUs(m60)[0]
    t4q = vgpu_type(xapi, 'GRID M60-4Q')
    xapi.PGPU.remove_enabled_VGPU_types(pgpu, t4q)
    assert xapi.PGPU.get_remaining_capacity(pgpu, t4q) == '0'
    gvt = vgpu_type(xapi, 'Intel GVT-g 128M')
    assert xapi.PGPU.get_remaining_capacity(pgpu, gvt) == '0'
    assert t4q not in xapi.PGPU.get_enabled_VGPU_types(pgpu)
    assert pgpu not in xapi.VGPU_type.get_enabled_on_PGPUs(t4q)
    assert pgpu in xapi.VGPU_type.get_supported_on_PGPUs(t4q)


def test_enabling_types(xapi, m60):
    pgpu = xapi.GPU_group.get_PGPUs(m60)[0]
    gvt = vgpu_type(xapi, 'Intel GVT-g 128M')
    supported = xapi.PGPU.get_supported_VGPU_types(pgpu)
    details = failure(xapi.PGPU.add_enabled_VGPU_types, pgpu, gvt)
    assert details[:2] == ['VGPU_TYPE_NOT_SUPPORTED', gvt]
    assert set(details[2:]) == set(supported)
    t1q = vgpu_type(xapi, 'GRID M60-1Q')
    xapi.PGPU.set_enabled_VGPU_types(pgpu, [t1q])
    assert xapi.PGPU.get_enabled_VGPU_types(pgpu) == [t1q]
    xapi.PGPU.add_enabled_VGPU_types(pgpu, vgpu_type(xapi, 'GRID M60-2Q'))
    assert len(xapi.PGPU.get_enabled_VGPU_types(pgpu)) == 2


def test_disabling_a_type_in_use(xapi, m60):
    t1q = vgpu_type(xapi, 'GRID M60-1Q')
    vm, vgpu = vm_with_vgpu(xapi, m60, t1q)
    xapi.VM.start(vm, False, False)
    pgpu = resident_pgpu(xapi, vgpu)
    assert failure(xapi.PGPU.remove_enabled_VGPU_types, pgpu, t1q) == [
        'PGPU_IN_USE_BY_VM', vm]
    assert failure(xapi.PGPU.set_enabled_VGPU_types, pgpu, []) == [
        'PGPU_IN_USE_BY_VM', vm]


def test_moving_pgpus_between_groups(xapi, m60):
    t1q = vgpu_type(xapi, 'GRID M60-1Q')
    vm, vgpu = vm_with_vgpu(xapi, m60, t1q)
    xapi.VM.start(vm, False, False)
    busy = resident_pgpu(xapi, vgpu)
    idle = [p for p in xapi.GPU_group.get_PGPUs(m60) if p != busy][0]
    empty = xapi.GPU_group.create('spare M60s', '', {})
    assert xapi.GPU_group.get_allocation_algorithm(empty) == 'depth_first'
    assert failure(xapi.PGPU.set_GPU_group, busy, empty) == [
        'PGPU_IN_USE_BY_VM', vm]
    xapi.PGPU.set_GPU_group(idle, empty)
    assert xapi.GPU_group.get_GPU_types(empty) == ['10de/13f2']
    assert xapi.GPU_group.get_PGPUs(empty) == [idle]
    t4 = xapi.GPU_group.get_PGPUs(group_of(xapi, 'Tesla T4'))[0]
    assert failure(xapi.PGPU.set_GPU_group, t4, empty) == [
        'PGPU_NOT_COMPATIBLE_WITH_GPU_GROUP', '10de/1eb8', '[10de/13f2]']


def test_gpu_group_destroy_rules(xapi, m60):
    assert failure(xapi.GPU_group.destroy, m60)[0] in (
        'GPU_GROUP_CONTAINS_PGPU',)
    group = xapi.GPU_group.create('empty', '', {})
    vm, vgpu = vm_with_vgpu(xapi, group, vgpu_type(xapi, 'GRID M60-1Q'))
    xapi.GPU_group.destroy(group)
    assert group not in xapi.GPU_group.get_all()
    assert vgpu not in xapi.VGPU.get_all()
    vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-1Q'))
    xapi.VM.start(vm, False, False)
    assert failure(xapi.GPU_group.destroy, m60) == [
        'GPU_GROUP_CONTAINS_VGPU', vgpu]


def test_set_and_map_accessors(xapi, m60):
    xapi.GPU_group.set_name_label(m60, 'renamed')
    assert xapi.GPU_group.get_name_label(m60) == 'renamed'
    xapi.GPU_group.add_to_other_config(m60, 'k', 'v')
    assert xapi.GPU_group.get_other_config(m60) == {'k': 'v'}
    assert failure(xapi.GPU_group.add_to_other_config, m60, 'k', 'w')[0] == (
        'MAP_DUPLICATE_KEY')
    xapi.GPU_group.remove_from_other_config(m60, 'k')
    assert xapi.GPU_group.get_other_config(m60) == {}
    pgpu = xapi.GPU_group.get_PGPUs(m60)[0]
    assert failure(xapi.PGPU.set_host, pgpu, NULL)[0] == (
        'MESSAGE_METHOD_UNKNOWN')


def test_events_follow_changes(xapi, m60):
    token = xapi.event_from(['vgpu', 'vm'], '', 1.0)['token']
    vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-1Q'))
    result = xapi.event_from(['vgpu'], token, 1.0)
    assert [(e['class'], e['operation'], e['ref'])
            for e in result['events']] == [('vgpu', 'add', vgpu)]
    assert result['events'][0]['snapshot']['VM'] == vm
    token = result['token']
    xapi.VGPU.destroy(vgpu)
    result = xapi.event_from(['vgpu'], token, 1.0)
    assert [(e['operation'], e['ref']) for e in result['events']] == [
        ('del', vgpu)]
    assert 'snapshot' not in result['events'][0]


def test_event_from_blocks_until_a_change(sim, xapi, m60):
    token = xapi.event_from(['vm'], '', 1.0)['token']
    result = {}

    def wait():
        from tests.conftest import login
        other = login(sim.url).xenapi
        result['value'] = other.event_from(['vm'], token, 30.0)

    waiter = threading.Thread(target=wait)
    waiter.start()
    # The second event.from is in flight before anything changes.
    deadline = time.monotonic() + 10
    while sim.faults.calls['event.from'] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    assert 'value' not in result
    vm = new_vm(xapi)
    waiter.join(10)
    assert not waiter.is_alive()
    assert [e['ref'] for e in result['value']['events']] == [vm]


def test_assert_can_boot_here_is_a_dry_run(xapi, m60):
    host = xapi.host.get_all()[0]
    t8q = vgpu_type(xapi, 'GRID M60-8Q')
    vms = [vm_with_vgpu(xapi, m60, t8q, name)[0] for name in 'abc']
    for vm in vms[:2]:
        xapi.VM.assert_can_boot_here(vm, host)
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == '2'
    for vm in vms[:2]:
        xapi.VM.start_on(vm, host, False, False)
    assert failure(xapi.VM.assert_can_boot_here, vms[2], host) == [
        'VM_REQUIRES_VGPU', vms[2], m60, t8q]
