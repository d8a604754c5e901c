"""Memory and CPUs as xapi counts them, through the real SDK.

memory.ml (overheads), memory_check.ml (free memory, the start check),
xapi_vm_helpers.ml (assert_can_boot_here, choose_host's retry without
the memory check, assert_enough_pcpus), squeeze.ml (a domain that does not
fit, in KiB), xapi_vm.ml and xapi_vm_memory_constraints.ml (setters).
"""

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import failure
from tests.conftest import login

MIB = 2 ** 20
GIB = 2 ** 30
NULL = 'OpaqueRef:NULL'


def profile(small_mib=8192, **extra):
    """A small host (little memory, 16 CPUs) and a big one."""
    return dict({'hosts': [
        {'name': 'small', 'memory_mib': small_mib, 'pgpus': []},
        {'name': 'big', 'numa_nodes': [{'cpus': '0-31',
                                        'memory_mib': 262144}],
         'pgpus': []}]}, **extra)


@pytest.fixture
def pool():
    with server.Simulator(profile()) as sim:
        yield sim, login(sim.url).xenapi


def hosts(xapi):
    return {xapi.host.get_name_label(h): h for h in xapi.host.get_all()}


def vm(xapi, name='vm', gib=1, vcpus=2, **fields):
    """A halted HVM VM with pinned memory of ``gib`` GiB."""
    size = str(gib * GIB)
    return xapi.VM.create(dict({
        'name_label': name, 'HVM_boot_policy': 'BIOS order',
        'memory_static_min': size, 'memory_static_max': size,
        'memory_dynamic_min': size, 'memory_dynamic_max': size,
        'VCPUs_max': str(vcpus), 'VCPUs_at_startup': str(vcpus)}, **fields))


def expected_free(xapi, host):
    """memory_check.ml from the records a client can read."""
    metrics = xapi.host_metrics.get_record(xapi.host.get_metrics(host))
    total = int(metrics['memory_total']) - int(
        xapi.host.get_memory_overhead(host))
    for ref in xapi.host.get_resident_VMs(host):
        record = xapi.VM.get_record(ref)
        total -= int(record['memory_dynamic_min']) + int(
            record['memory_overhead'])
    return total


def test_host_memory_and_cpus(pool):
    _, xapi = pool
    small, big = hosts(xapi)['small'], hosts(xapi)['big']
    metrics = xapi.host_metrics.get_record(xapi.host.get_metrics(small))
    assert metrics['memory_total'] == str(8192 * MIB)
    assert int(metrics['memory_free']) < 8192 * MIB
    assert xapi.host.get_cpu_info(small)['cpu_count'] == '16'
    assert xapi.host.get_cpu_info(big)['cpu_count'] == '32'
    assert len(xapi.host.get_host_CPUs(big)) == 32
    cpu = xapi.host_CPU.get_record(xapi.host.get_host_CPUs(big)[0])
    assert cpu['host'] == big and cpu['vendor']
    dom0 = [v for v in xapi.host.get_resident_VMs(small)
            if xapi.VM.get_is_control_domain(v)]
    assert len(dom0) == 1 and int(xapi.VM.get_memory_overhead(dom0[0])) > 0
    assert int(xapi.host.compute_free_memory(small)) == expected_free(
        xapi, small)


def test_vm_memory_overhead_follows_memory_ml(pool):
    _, xapi = pool
    ref = vm(xapi)
    # HVM, 1 GiB, 2 vCPUs: 1 + 1 extra MiB, shadow ceil((512 + 2048) / 256)
    # = 10 MiB, Xen's 38 pages per vCPU round up to 1 MiB.
    assert xapi.VM.get_memory_overhead(ref) == str(13 * MIB)
    assert xapi.VM.compute_memory_overhead(ref) == str(13 * MIB)
    metrics = xapi.VM.get_metrics(ref)
    assert xapi.VM_metrics.get_memory_actual(metrics) == '0'


def test_start_on_a_host_short_of_memory(pool):
    _, xapi = pool
    small = hosts(xapi)['small']
    ref = vm(xapi, gib=16)
    available = xapi.host.compute_free_memory(small)
    # 16 GiB at dynamic_min plus the overhead: 2 extra MiB, shadow
    # (512 + 2 * 16384) / 256 = 130 MiB, 1 MiB of Xen's vCPU pages.
    needed = str((16 * 1024 + 133) * MIB)
    assert failure(xapi.VM.start_on, ref, small, False, False) == [
        'HOST_NOT_ENOUGH_FREE_MEMORY', needed, available]
    assert failure(xapi.VM.assert_can_boot_here, ref, small) == [
        'HOST_NOT_ENOUGH_FREE_MEMORY', needed, available]
    assert xapi.VM.get_power_state(ref) == 'Halted'
    assert xapi.VM.get_scheduled_to_be_resident_on(ref) == NULL


def test_running_vms_and_the_boot_window_count(pool):
    sim, xapi = pool
    small = hosts(xapi)['small']
    before = int(xapi.host.compute_free_memory(small))
    first = vm(xapi, 'first', gib=2)
    xapi.VM.start_on(first, small, False, False)
    used = 2 * GIB + int(xapi.VM.get_memory_overhead(first))
    assert int(xapi.host.compute_free_memory(small)) == before - used
    record = xapi.VM_metrics.get_record(xapi.VM.get_metrics(first))
    assert (record['memory_actual'], record['VCPUs_number']) == (
        str(2 * GIB), '2')
    xapi.VM.hard_shutdown(first)
    assert int(xapi.host.compute_free_memory(small)) == before


def test_start_picks_a_host_with_room(pool):
    _, xapi = pool
    small, big = hosts(xapi)['small'], hosts(xapi)['big']
    ref = vm(xapi, gib=16, affinity=small)
    xapi.VM.start(ref, False, False)
    assert xapi.VM.get_resident_on(ref) == big


def test_start_without_room_anywhere_fails_in_kib():
    # choose_host_for_vm_no_wlb retries without the memory check; the
    # domain build then fails in squeezed, whose figures are KiB.
    with server.Simulator({'hosts': [{'name': 'only', 'memory_mib': 4096,
                                      'pgpus': []}]}) as sim:
        xapi = login(sim.url).xenapi
        (host,) = xapi.host.get_all()
        ref = vm(xapi, gib=8)
        free = int(xapi.host.compute_free_memory(host))
        # 8 GiB plus 69 MiB of overhead (shadow (512 + 16384) / 256).
        assert failure(xapi.VM.start, ref, False, False) == [
            'HOST_NOT_ENOUGH_FREE_MEMORY', str((8192 + 69) * 1024),
            str(free // 1024)]
        assert xapi.VM.get_scheduled_to_be_resident_on(ref) == NULL


def test_resume_on_and_migration_check_memory(pool):
    _, xapi = pool
    small, big = hosts(xapi)['small'], hosts(xapi)['big']
    ref = vm(xapi, gib=3)
    xapi.VM.start_on(ref, small, False, False)
    xapi.VM.suspend(ref)
    filler = vm(xapi, 'filler', gib=3)
    xapi.VM.start_on(filler, small, False, False)
    error = failure(xapi.VM.resume_on, ref, small, False, False)
    assert error[0] == 'HOST_NOT_ENOUGH_FREE_MEMORY'
    xapi.VM.resume_on(ref, big, False, False)
    error = failure(xapi.VM.pool_migrate, ref, small, {})
    assert error[0] == 'HOST_NOT_ENOUGH_FREE_MEMORY'
    assert error[2] == xapi.host.compute_free_memory(small)
    assert xapi.VM.get_resident_on(ref) == big


def test_more_vcpus_than_the_host_has(pool):
    _, xapi = pool
    small = hosts(xapi)['small']
    ref = vm(xapi, vcpus=20)
    assert failure(xapi.VM.start_on, ref, small, False, False) == [
        'HOST_NOT_ENOUGH_PCPUS', '20', '16']
    unrestricted = vm(xapi, 'unrestricted', vcpus=20,
                      platform={'vcpu-unrestricted': 'true'})
    xapi.VM.start_on(unrestricted, small, False, False)
    assert xapi.VM.get_power_state(unrestricted) == 'Running'


def test_vcpu_setters(pool):
    _, xapi = pool
    ref = vm(xapi, vcpus=2)
    rule = 'VCPU values must satisfy: 0 < VCPUs_at_startup \u2264 VCPUs_max'
    assert failure(xapi.VM.set_VCPUs_max, ref, '1') == [
        'INVALID_VALUE', rule, '1']
    assert failure(xapi.VM.set_VCPUs_at_startup, ref, '3') == [
        'INVALID_VALUE', rule, '3']
    assert failure(xapi.VM.set_VCPUs_at_startup, ref, '0') == [
        'INVALID_VALUE', rule, '0']
    xapi.VM.set_VCPUs_max(ref, '4')
    # shadow (1024 + 2048) / 256 = 12 MiB, + 2 + 1
    assert xapi.VM.get_memory_overhead(ref) == str(15 * MIB)
    xapi.VM.start(ref, False, False)
    assert failure(xapi.VM.set_VCPUs_max, ref, '6') == [
        'VM_BAD_POWER_STATE', ref, 'halted', 'running']
    xapi.VM.set_VCPUs_at_startup(ref, '3')
    assert xapi.VM.get_VCPUs_at_startup(ref) == '3'


def test_memory_limits_without_dmc_must_be_pinned(pool):
    _, xapi = pool
    ref = vm(xapi)
    assert failure(xapi.VM.set_memory_limits, ref, str(GIB), str(2 * GIB),
                   str(GIB), str(2 * GIB)) == [
        'MEMORY_CONSTRAINT_VIOLATION_MAXPIN', 'DMC disabled']
    xapi.VM.set_memory_limits(ref, str(GIB), str(2 * GIB), str(2 * GIB),
                              str(2 * GIB))
    record = xapi.VM.get_record(ref)
    assert (record['memory_static_max'], record['memory_dynamic_min']) == (
        str(2 * GIB), str(2 * GIB))
    # shadow (512 + 4096) / 256 = 18 MiB, + 2 + 1
    assert record['memory_overhead'] == str(21 * MIB)
    xapi.VM.start(ref, False, False)
    assert failure(xapi.VM.set_memory_limits, ref, str(GIB), str(GIB),
                   str(GIB), str(GIB)) == [
        'VM_BAD_POWER_STATE', ref, 'halted', 'running']


def test_memory_limits_with_dmc_keep_their_order():
    with server.Simulator(profile(dmc=True)) as sim:
        xapi = login(sim.url).xenapi
        ref = vm(xapi)
        assert failure(xapi.VM.set_memory_limits, ref, str(GIB),
                       str(2 * GIB), str(3 * GIB), str(2 * GIB)) == [
            'MEMORY_CONSTRAINT_VIOLATION_ORDER']
        xapi.VM.set_memory_limits(ref, str(GIB), str(4 * GIB), str(GIB),
                                  str(2 * GIB))
        assert xapi.VM.get_memory_dynamic_min(ref) == str(GIB)
