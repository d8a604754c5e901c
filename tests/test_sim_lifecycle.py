"""Simulator VM lifecycle rules that need the simulator's own knobs.

The rules themselves are checked in test_sim_conformance.py (which can
also run on a real host); these tests set what a real host decides for
itself: the boot window, faults inside it, licences, IOMMU, guest
drivers, host driver versions.
"""

import threading
import time

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import failure
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu

NULL = 'OpaqueRef:NULL'


def host_profile(**host):
    pgpus = [{'address': '0000:86:00.0', 'model': 'tesla-m60',
              'numa_node': 0, 'group': 'M60'},
             {'address': '0000:3b:00.0', 'model': 'tesla-t4',
              'numa_node': 0, 'group': 'T4'}]
    return {'hosts': [dict({'name': 'h1', 'pgpus': pgpus}, **host)]}


def in_window(xapi, vgpu, timeout=10.0):
    """Wait until ``vgpu`` is scheduled onto a pGPU; return that pGPU."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pgpu = xapi.VGPU.get_scheduled_to_be_resident_on(vgpu)
        if pgpu != NULL:
            return pgpu
        time.sleep(0.01)
    raise AssertionError('the start never reserved a pGPU')


def background(call, *args):
    """Run ``call`` in a thread; returns (thread, outcome dict)."""
    outcome = {}

    def run():
        try:
            outcome['value'] = call(*args)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome['error'] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_the_boot_window_holds_capacity(m60_sim):
    m60_sim.start_delay_ms = 400
    xapi = login(m60_sim.url).xenapi
    m60, t8q = group_of(xapi, 'Tesla M60'), vgpu_type(xapi, 'GRID M60-8Q')
    first, vgpu = vm_with_vgpu(xapi, m60, t8q, 'first')
    thread, outcome = background(login(m60_sim.url).xenapi.VM.start, first,
                                 False, False)
    pgpu = in_window(xapi, vgpu)
    assert xapi.VM.get_power_state(first) == 'Halted'
    assert xapi.VGPU.get_resident_on(vgpu) == NULL
    assert xapi.PGPU.get_remaining_capacity(pgpu, t8q) == '0'
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == '1'
    second, other = vm_with_vgpu(xapi, m60, t8q, 'second')
    m60_sim.start_delay_ms = 0
    xapi.VM.start(second, False, False)
    assert xapi.VGPU.get_resident_on(other) not in (NULL, pgpu)
    third, _ = vm_with_vgpu(xapi, m60, t8q, 'third')
    assert failure(xapi.VM.start, third, False, False) == [
        'NO_HOSTS_AVAILABLE']
    thread.join(10)
    assert not thread.is_alive()
    assert 'error' not in outcome
    assert xapi.VGPU.get_resident_on(vgpu) == pgpu
    assert xapi.VM.get_power_state(first) == 'Running'


@pytest.mark.parametrize('method', ['VM.start', 'VM.start_on'])
def test_a_fault_in_the_window_releases_the_reservation(m60_sim, method):
    xapi = login(m60_sim.url).xenapi
    host = xapi.host.get_all()[0]
    m60 = group_of(xapi, 'Tesla M60')
    vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-4Q'))
    m60_sim.faults.fail_call(method + '@plug', 1, 'INTERNAL_ERROR',
                             'xenopsd: device model failed')
    args = (vm, False, False) if method == 'VM.start' else (
        vm, host, False, False)
    call = getattr(xapi.VM, method.split('.')[1])
    assert failure(call, *args) == ['INTERNAL_ERROR',
                                    'xenopsd: device model failed']
    record = xapi.VGPU.get_record(vgpu)
    assert (record['scheduled_to_be_resident_on'], record['resident_on'],
            record['PCI']) == (NULL, NULL, NULL)
    assert xapi.VM.get_record(vm)['current_operations'] == {}
    assert xapi.GPU_group.get_remaining_capacity(
        m60, vgpu_type(xapi, 'GRID M60-4Q')) == '4'
    call(*args)
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_an_unlicensed_pool():
    with server.Simulator(dict(host_profile(), licensed=False)) as sim:
        xapi = login(sim.url).xenapi
        vm = new_vm(xapi)
        assert failure(xapi.VGPU.create, vm, group_of(xapi, 'Tesla M60'),
                       '0', {}, vgpu_type(xapi, 'GRID M60-4Q')) == [
            'FEATURE_RESTRICTED']
        assert xapi.VGPU.get_all() == []


def test_a_licence_lost_before_the_start(m60_sim):
    xapi = login(m60_sim.url).xenapi
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-4Q'))
    with m60_sim.db.lock:
        m60_sim.db.set('pool', m60_sim.db.pool, 'restrictions',
                       {'restrict_vgpu': 'true'})
    assert failure(xapi.VM.start, vm, False, False) == [
        'LICENCE_RESTRICTION', 'VGPU']
    assert xapi.VGPU.get_scheduled_to_be_resident_on(vgpu) == NULL


def test_a_host_without_iommu():
    with server.Simulator(host_profile(iommu=False)) as sim:
        xapi = login(sim.url).xenapi
        host = xapi.host.get_all()[0]
        m60 = group_of(xapi, 'Tesla M60')
        passthrough, _ = vm_with_vgpu(xapi, m60,
                                      vgpu_type(xapi, 'passthrough'), 'pt')
        assert failure(xapi.VM.start_on, passthrough, host, False,
                       False) == ['VM_REQUIRES_IOMMU', host]
        assert failure(xapi.VM.start, passthrough, False, False) == [
            'NO_HOSTS_AVAILABLE']
        sriov, _ = vm_with_vgpu(xapi, group_of(xapi, 'Tesla T4'),
                                vgpu_type(xapi, 'GRID T4-4Q'), 'sriov')
        assert failure(xapi.VM.start_on, sriov, host, False, False) == [
            'VM_REQUIRES_IOMMU', host]
        virtual, _ = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-4Q'),
                                  'virtual')
        xapi.VM.start_on(virtual, host, False, False)


def test_profile_vms_without_pv_drivers():
    profile = dict(host_profile(), vms=[
        {'name': 'bare', 'vgpus': [{'type': 'GRID M60-4Q'}],
         'pv_drivers': False},
        {'name': 'tools', 'vgpus': [{'type': 'GRID M60-4Q'}]}])
    with server.Simulator(profile) as sim:
        xapi = login(sim.url).xenapi
        bare = xapi.VM.get_by_name_label('bare')[0]
        tools = xapi.VM.get_by_name_label('tools')[0]
        assert failure(xapi.VM.clean_shutdown, bare) == [
            'VM_LACKS_FEATURE', bare]
        assert failure(xapi.VM.suspend, bare) == ['VM_LACKS_FEATURE', bare]
        xapi.VM.clean_shutdown(tools)
        xapi.VM.hard_shutdown(bare)


def test_old_host_driver_means_one_vgpu_per_vm():
    with server.Simulator(host_profile(nvidia_driver='418.92')) as sim:
        xapi = login(sim.url).xenapi
        t4q = vgpu_type(xapi, 'GRID T4-4Q')
        assert xapi.VGPU_type.get_compatible_types_in_vm(t4q) == []
        vm, _ = vm_with_vgpu(xapi, group_of(xapi, 'Tesla T4'), t4q)
        assert failure(xapi.VGPU.create, vm, group_of(xapi, 'Tesla T4'),
                       '0', {}, t4q) == ['VGPU_TYPE_NOT_COMPATIBLE', t4q]


def test_suspend_frees_the_pgpu_and_resume_takes_one(m60_sim):
    xapi = login(m60_sim.url).xenapi
    m60, t8q = group_of(xapi, 'Tesla M60'), vgpu_type(xapi, 'GRID M60-8Q')
    vm, vgpu = vm_with_vgpu(xapi, m60, t8q)
    xapi.VM.start(vm, False, False)
    assert 'suspend' in xapi.VM.get_allowed_operations(vm)
    xapi.VM.suspend(vm)
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == '2'
    assert xapi.VGPU.get_compatibility_metadata(vgpu)
    assert failure(xapi.VM.start, vm, False, False) == [
        'VM_BAD_POWER_STATE', vm, 'halted', 'suspended']
    xapi.VM.resume(vm, False, False)
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == '1'
    xapi.VM.suspend(vm)
    xapi.VM.hard_shutdown(vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert xapi.VGPU.get_compatibility_metadata(vgpu) == {}


def test_copy_and_clone_need_a_halted_vm(m60_sim):
    xapi = login(m60_sim.url).xenapi
    vm, _ = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                         vgpu_type(xapi, 'GRID M60-4Q'))
    copy = xapi.VM.copy(vm, 'copied', NULL)
    assert len(xapi.VM.get_VGPUs(copy)) == 1
    xapi.VM.start(vm, False, False)
    for call in (xapi.VM.clone, lambda v, n: xapi.VM.copy(v, n, NULL)):
        assert failure(call, vm, 'again') == [
            'VM_BAD_POWER_STATE', vm, 'halted', 'running']


def test_sriov_virtual_functions_run_out_with_capacity(sim):
    xapi = login(sim.url).xenapi
    t4, t1q = group_of(xapi, 'Tesla T4'), vgpu_type(xapi, 'GRID T4-1Q')
    functions = set()
    for index in range(16):
        vm, vgpu = vm_with_vgpu(xapi, t4, t1q, 'vm%d' % index)
        xapi.VM.start(vm, False, False)
        functions.add(xapi.VGPU.get_PCI(vgpu))
    assert len(functions) == 16
    extra, _ = vm_with_vgpu(xapi, t4, t1q, 'extra')
    assert failure(xapi.VM.start, extra, False, False) == [
        'NO_HOSTS_AVAILABLE']


def test_a_claim_gives_way_to_the_vgpus_xapi_shows(m60_sim):
    from nova_xenapi_vgpu import tags
    from nova_xenapi_vgpu.host import identity
    from nova_xenapi_vgpu.host import reader
    from nova_xenapi_vgpu.pci import stats as statslib
    from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
    from nova_xenapi_vgpu.vgpu_types import requests as requestslib
    from nova_xenapi_vgpu.xapi import session as sessionlib
    aliases = aliaslib.parse_aliases(
        ['{"name": "4q", "vgpu_type": "GRID M60-4Q"}'])
    xapi = login(m60_sim.url).xenapi
    with sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot') as client:
        host = identity.resolve_host(client)
        inventory = reader.read_inventory(client, host)
        stats = statslib.VgpuStats(inventory)
        requests, _ = requestslib.requests_from_spec('4q:1', aliases)
        claim = stats.apply_requests(requests, instance='inst-1')
        (group, vgpu_type), = claim.demand
        vm = new_vm(xapi, 'inst-1')
        vgpu = xapi.VGPU.create(vm, group, '0', {
            tags.HOST: inventory.host_uuid, tags.INSTANCE: 'inst-1'},
            vgpu_type)
        # Halted and tagged: the claim gives way to the stopped VM's debt.
        stats.refresh(reader.refresh(client, inventory))
        assert stats.claims == {}
        assert len([s for s in stats.devices()
                    if s.status == 'allocated']) == 1
        xapi.VM.start_on(vm, host, False, False)
        stats.refresh(reader.refresh(client, stats.inventory))
        (slot,) = [s for s in stats.devices() if s.status == 'allocated']
    assert slot.pgpu_ref == xapi.VGPU.get_resident_on(vgpu)
    assert slot.claimed_by == 'inst-1'


def running_vm(sim, name):
    xapi = login(sim.url).xenapi
    vm = new_vm(xapi, name)
    xapi.VM.start(vm, False, False)
    return xapi, vm


def test_a_clean_shutdown_waits_for_the_guest(sim):
    xapi, vm = running_vm(sim, 'slow-guest')
    sim.guest_shutdown_ms = 300
    thread, outcome = background(login(sim.url).xenapi.VM.clean_shutdown,
                                 vm)
    deadline = time.monotonic() + 10
    while not xapi.VM.get_current_operations(vm):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert xapi.VM.get_power_state(vm) == 'Running'
    thread.join(10)
    assert outcome == {'value': ''}
    assert xapi.VM.get_power_state(vm) == 'Halted'


def test_a_guest_ignoring_a_clean_shutdown_runs_until_the_timeout(sim):
    xapi, vm = running_vm(sim, 'deaf-guest')
    sim.guest_shutdown_ms = None
    sim.db.shutdown_timeout_s = 0.2  # xapi's 1200 s, shortened
    assert failure(xapi.VM.clean_shutdown, vm) == [
        'VM_SHUTDOWN_TIMEOUT', vm, '0.2']
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.VM.get_current_operations(vm) == {}
    xapi.VM.hard_shutdown(vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'


def test_a_cancelled_clean_shutdown_leaves_the_vm_running(sim):
    xapi, vm = running_vm(sim, 'cancelled')
    sim.guest_shutdown_ms = None
    task = xapi.Async.VM.clean_shutdown(vm)
    xapi.task.cancel(task)
    deadline = time.monotonic() + 10
    while xapi.task.get_status(task) == 'pending':
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert xapi.task.get_status(task) == 'cancelled'
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.VM.get_current_operations(vm) == {}


def test_only_a_forced_start_skips_the_memory_constraints(sim):
    # xapi_vm.ml, start: "if not force then assert_memory_constraints"
    xapi = login(sim.url).xenapi
    vm = xapi.VM.create({
        'name_label': 'nested', 'memory_static_max': str(2 ** 30),
        'memory_dynamic_max': str(2 ** 30), 'memory_dynamic_min': '0',
        'HVM_boot_policy': 'BIOS order',
        'platform': {'nested-virt': 'true'}})
    assert failure(xapi.VM.start, vm, False, False) == [
        'MEMORY_CONSTRAINT_VIOLATION_MAXPIN', 'nested virt']
    assert xapi.VM.get_current_operations(vm) == {}
    xapi.VM.start(vm, False, True)
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_only_a_forced_resume_skips_the_cpu_check(sim):
    # xapi_vm.ml, resume: "if not force then assert_vm_is_compatible"
    xapi = login(sim.url).xenapi
    host = xapi.host.get_all()[0]
    vm = new_vm(xapi, 'moved-cpu')
    xapi.VM.start(vm, False, False)
    assert xapi.VM.get_last_boot_CPU_flags(vm)['vendor'] == 'GenuineIntel'
    xapi.VM.suspend(vm)
    sim.set_cpu_vendor(host, 'AuthenticAMD')
    assert failure(xapi.VM.resume_on, vm, host, False, False) == [
        'VM_INCOMPATIBLE_WITH_THIS_HOST', vm, host,
        'VM last booted on a host which had a CPU from a different vendor.']
    assert xapi.VM.get_power_state(vm) == 'Suspended'
    xapi.VM.resume_on(vm, host, False, True)
    assert xapi.VM.get_power_state(vm) == 'Running'
