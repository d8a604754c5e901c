"""Whole instance lives over the simulator, the way nova-compute drives
them: after every step each host's pools match what XAPI says."""

import logging

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import vgpu_type

ALIASES = aliaslib.parse_aliases([
    '{"name": "4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "8q", "vgpu_type": "GRID M60-8Q"}',
    '{"name": "gvt", "vgpu_type": "Intel GVT-g 128M"}',
    '{"name": "t4-8q", "vgpu_type": "GRID T4-8Q"}',
    '{"name": "t4-4q", "vgpu_type": "GRID T4-4Q"}',
    '{"name": "t4-1q", "vgpu_type": "GRID T4-1Q"}'])


def ask(spec):
    return requestslib.requests_from_spec(spec, ALIASES)[0]


class Compute:
    """One nova-compute: a host, its pools, its Builder."""

    def __init__(self, client, host_ref):
        self.client, self.host_ref = client, host_ref
        stats = statslib.VgpuStats(reader.read_inventory(client, host_ref))
        self.builder = lifecycle.Builder(client, stats, host_ref)

    def refresh(self):
        """The periodic task: the pools follow XAPI."""
        self.builder.stats.refresh(reader.refresh(
            self.client, self.builder.stats.inventory))
        return self.builder.stats

    def owed(self, instance):
        """This host's slots held for ``instance``."""
        return [s for s in self.refresh().devices()
                if s.claimed_by == instance]


@pytest.fixture
def pool(pool_sim):
    client = sessionlib.XapiClient(pool_sim.url, 'root', 'xenroot')
    xapi = login(pool_sim.url).xenapi
    computes = {name: Compute(client, xapi.host.get_by_name_label(name)[0])
                for name in ('xs-pool-01', 'xs-pool-02', 'xs-pool-03')}
    yield xapi, computes
    client.close()


@pytest.fixture
def single(sim):
    """(plain SDK API, the Compute of the simulator's one host)."""
    client = sessionlib.XapiClient(sim.url, 'root', 'xenroot')
    xapi = login(sim.url).xenapi
    yield xapi, Compute(client, xapi.host.get_all()[0])
    client.close()


def where(xapi, vm):
    """The hosts of the pGPUs the VM's vGPUs are resident on."""
    return {xapi.PGPU.get_host(xapi.VGPU.get_resident_on(v))
            for v in xapi.VM.get_VGPUs(vm)}


def only_on(computes, instance, name, count):
    for other, compute in computes.items():
        owed = compute.owed(instance)
        assert len(owed) == (count if other == name else 0), other


def test_a_whole_life_across_the_pool(pool):
    xapi, computes = pool
    a, b, c = (computes['xs-pool-0%d' % i] for i in (1, 2, 3))
    vm = new_vm(xapi, 'life')
    a.builder.build('life', vm, ask('4q:1'))
    assert where(xapi, vm) == {a.host_ref}
    only_on(computes, 'life', 'xs-pool-01', 1)

    a.builder.stop(vm)
    only_on(computes, 'life', 'xs-pool-01', 1)  # a stopped instance's
    a.builder.start_again(vm)
    a.builder.suspend('life', vm)
    assert xapi.VM.get_power_state(vm) == 'Suspended'
    only_on(computes, 'life', 'xs-pool-01', 1)
    a.builder.resume(vm)
    assert where(xapi, vm) == {a.host_ref}

    a.builder.live_migrate('life', vm, b.builder)
    assert where(xapi, vm) == {b.host_ref}
    only_on(computes, 'life', 'xs-pool-02', 1)

    b.builder.stop(vm)  # cold migration back to a, resized to an 8Q
    old = b.builder.move_out('life', vm)
    a.builder.move_in('life', vm, ask('8q:1'))
    a.builder.start('life', vm)
    assert where(xapi, vm) == {a.host_ref}
    assert xapi.VGPU_type.get_model_name(xapi.VGPU.get_type(
        xapi.VM.get_VGPUs(vm)[0])) == 'GRID M60-8Q'
    only_on(computes, 'life', 'xs-pool-01', 1)

    a.builder.stop(vm)  # revert: the 4Q back on b
    a.builder.move_out('life', vm)
    b.builder.restore('life', vm, old)
    b.builder.start_again(vm)
    assert where(xapi, vm) == {b.host_ref}
    assert xapi.VGPU_type.get_model_name(xapi.VGPU.get_type(
        xapi.VM.get_VGPUs(vm)[0])) == 'GRID M60-4Q'

    xapi.VM.hard_shutdown(vm)  # b fails: evacuate to c
    c.builder.move_in('life', vm, ask('4q:1'))
    c.builder.start('life', vm)
    assert where(xapi, vm) == {c.host_ref}
    only_on(computes, 'life', 'xs-pool-03', 1)

    c.builder.stop(vm)  # delete
    c.builder.detach('life', vm)
    xapi.VM.destroy(vm)
    only_on(computes, 'life', None, 0)


def test_a_failed_live_migration_leaves_both_hosts(pool, pool_sim):
    xapi, computes = pool
    a, b = computes['xs-pool-01'], computes['xs-pool-02']
    vm = new_vm(xapi, 'stay')
    a.builder.build('stay', vm, ask('8q:1'))
    pool_sim.faults.fail_call('VM.pool_migrate@plug', 1, 'VM_MIGRATE_FAILED',
                              vm, 'a', 'b', 'reset')
    with pytest.raises(exception.XapiError) as info:
        a.builder.live_migrate('stay', vm, b.builder)
    assert info.value.code == 'VM_MIGRATE_FAILED'
    assert where(xapi, vm) == {a.host_ref}
    only_on(computes, 'stay', 'xs-pool-01', 1)
    assert b.builder.stats.claims == {}


def test_a_full_destination_is_refused_before_anything_moves(pool):
    xapi, computes = pool
    a, b = computes['xs-pool-01'], computes['xs-pool-02']
    for index in range(len(b.builder.stats.inventory.pgpus)):
        b.builder.build('filler%d' % index, new_vm(xapi, 'f%d' % index),
                        ask('8q:1'))
    vm = new_vm(xapi, 'mover')
    a.builder.build('mover', vm, ask('8q:1'))
    with pytest.raises(exception.ClaimRefused):
        a.builder.live_migrate('mover', vm, b.builder)
    assert where(xapi, vm) == {a.host_ref}


def test_non_nvidia_vgpus_are_not_live_migrated(sim, single):
    xapi, compute = single
    vm = new_vm(xapi, 'igpu')
    compute.builder.build('igpu', vm, ask('gvt:1'))
    before = sim.faults.calls['Async.VM.pool_migrate']
    for call, refusal in (
            (lambda: compute.builder.live_migrate('igpu', vm,
                                                  compute.builder),
             'Cannot live-migrate VM %s: XAPI cannot live-migrate a VM with '
             'a Intel GVT-g 128M vGPU (gvt_g); use a cold migration'),
            (lambda: compute.builder.suspend('igpu', vm),
             'Cannot suspend VM %s: XAPI cannot suspend a VM with a Intel '
             'GVT-g 128M vGPU (gvt_g); stop it instead')):
        with pytest.raises(exception.OperationRefused) as info:
            call()
        assert str(info.value) == refusal % vm
    assert sim.faults.calls['Async.VM.pool_migrate'] == before
    assert xapi.VM.get_power_state(vm) == 'Running'


MIGRATE_FAULTS = ['VGPU.get_all_records_where', 'VM.assert_can_boot_here',
                  'Async.VM.pool_migrate', 'VM.pool_migrate',
                  'VM.pool_migrate@plug']


@pytest.mark.parametrize('method', MIGRATE_FAULTS)
def test_a_failure_at_any_call_of_a_move_changes_nothing(pool, pool_sim,
                                                         method):
    xapi, computes = pool
    a, b = computes['xs-pool-01'], computes['xs-pool-02']
    vm = new_vm(xapi, 'mv')
    a.builder.build('mv', vm, ask('4q:1'))
    pool_sim.faults.fail_call(method, 1, 'INTERNAL_ERROR', 'injected')
    before = pool_sim.faults.calls[method]
    with pytest.raises(exception.XapiError) as info:
        a.builder.live_migrate('mv', vm, b.builder)
    assert pool_sim.faults.calls[method] > before  # the fault was hit
    assert info.value.details == ['INTERNAL_ERROR', 'injected']
    assert where(xapi, vm) == {a.host_ref}
    only_on(computes, 'mv', 'xs-pool-01', 1)
    assert b.builder.stats.claims == {}
    a.builder.live_migrate('mv', vm, b.builder)  # and a retry works
    assert where(xapi, vm) == {b.host_ref}
    only_on(computes, 'mv', 'xs-pool-02', 1)


def test_a_single_host_life_on_the_mixed_profile(single):
    xapi, compute = single
    builder = compute.builder
    vm = new_vm(xapi, 'mixed')
    builder.build('mixed', vm, ask('t4-8q:1'))
    builder.suspend('mixed', vm)
    builder.resume(vm)
    builder.stop(vm)
    old = builder.move_out('mixed', vm)  # a resize on the same host
    # Until confirm the source's T4-8Q stays held, so the host's one T4
    # cannot take T4-4Qs as well (one type per pGPU) ...
    with pytest.raises(exception.ClaimRefused):
        builder.move_in('mixed', vm, ask('t4-4q:2'))
    builder.move_in('mixed', vm, ask('t4-8q:1'))  # ... a second T4-8Q fits
    builder.start('mixed', vm)
    assert len(compute.owed('mixed')) == 1
    builder.stop(vm)  # revert
    builder.restore('mixed', vm, old)
    builder.start_again(vm)
    assert [xapi.VGPU_type.get_model_name(xapi.VGPU.get_type(v))
            for v in xapi.VM.get_VGPUs(vm)] == ['GRID T4-8Q']
    assert len(compute.owed('mixed')) == 1
    builder.stop(vm)
    builder.detach('mixed', vm)
    assert compute.owed('mixed') == []


@pytest.mark.parametrize('method, nth', [('VGPU.destroy', 1),
                                         ('VGPU.create', 1),
                                         ('VGPU.get_all_records_where', 2)])
def test_a_failed_cold_migration_puts_the_vgpus_back(pool, pool_sim,
                                                     method, nth):
    xapi, computes = pool
    a, b = computes['xs-pool-01'], computes['xs-pool-02']
    vm = new_vm(xapi, 'cold')
    a.builder.build('cold', vm, ask('8q:1'))
    a.builder.stop(vm)
    pool_sim.faults.fail_call(method, nth, 'INTERNAL_ERROR', 'injected')
    with pytest.raises(exception.XapiError):
        a.builder.cold_migrate('cold', vm, b.builder)
    (vgpu,) = xapi.VM.get_VGPUs(vm)
    assert xapi.VGPU_type.get_model_name(xapi.VGPU.get_type(vgpu)) == (
        'GRID M60-8Q')
    only_on(computes, 'cold', 'xs-pool-01', 1)
    a.builder.cold_migrate('cold', vm, b.builder)
    only_on(computes, 'cold', 'xs-pool-02', 1)
    b.builder.start_again(vm)
    assert where(xapi, vm) == {b.host_ref}


def stopping(sim, name, guest_shutdown_ms):
    """A running VM whose guest takes ``guest_shutdown_ms`` to halt, and a
    Compute whose client gives a task 0.3 s."""
    client = sessionlib.XapiClient(sim.url, 'root', 'xenroot',
                                   task_timeout=0.3)
    xapi = login(sim.url).xenapi
    compute = Compute(client, xapi.host.get_all()[0])
    vm = new_vm(xapi, name)
    compute.builder.start_again(vm)
    sim.guest_shutdown_ms = guest_shutdown_ms
    return xapi, compute, vm


def test_a_clean_shutdown_the_guest_ignores_ends_in_a_hard_one(sim,
                                                               caplog):
    caplog.set_level(logging.WARNING)
    xapi, compute, vm = stopping(sim, 'deaf', None)  # xapi waits 1200 s
    compute.builder.stop(vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert 'Clean shutdown of %s failed (timeout): hard shutdown' % vm in (
        warnings)
    assert sim.faults.calls['Async.VM.hard_shutdown'] == 1
    assert xapi.task.get_all() == []
    compute.client.close()


def test_a_slow_clean_shutdown_within_the_timeout_forces_nothing(sim):
    xapi, compute, vm = stopping(sim, 'slow', 100)
    compute.builder.stop(vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert sim.faults.calls['Async.VM.clean_shutdown'] == 1
    assert sim.faults.calls['Async.VM.hard_shutdown'] == 0
    compute.client.close()


def unpinned_vm(xapi, name, platform):
    """A halted VM whose memory may balloon (dynamic_min < static_max)."""
    return xapi.VM.create({
        'name_label': name, 'memory_static_max': str(2 ** 30),
        'memory_dynamic_max': str(2 ** 30),
        'memory_dynamic_min': str(2 ** 29), 'VCPUs_max': '2',
        'VCPUs_at_startup': '2', 'HVM_boot_policy': 'BIOS order',
        'platform': platform, 'other_config': {'nova_uuid': name}})


def test_starts_keep_xapis_memory_checks(single):
    # The starts are never forced: xapi's assert_memory_constraints wants
    # an SR-IOV vGPU's or a nested-virt VM's memory pinned at static max.
    xapi, compute = single
    vm = unpinned_vm(xapi, 'sriov', {})
    t4 = ask('t4-8q:1')
    with pytest.raises(exception.XapiError) as info:
        compute.builder.build('sriov', vm, t4)
    assert (info.value.code, info.value.params) == (
        'MEMORY_CONSTRAINT_VIOLATION_MAXPIN', ['SRIOV vGPU'])
    nested = unpinned_vm(xapi, 'nested', {'nested-virt': 'true'})
    with pytest.raises(exception.XapiError) as info:
        compute.builder.start_again(nested)
    assert (info.value.code, info.value.params) == (
        'MEMORY_CONSTRAINT_VIOLATION_MAXPIN', ['nested virt'])
    assert {xapi.VM.get_power_state(v) for v in (vm, nested)} == {'Halted'}


def test_a_resume_keeps_xapis_cpu_check(sim, single):
    # Never forced: a VM suspended on another vendor's CPU stays suspended.
    xapi, compute = single
    vm = new_vm(xapi, 'suspended')
    compute.builder.start_again(vm)
    xapi.VM.suspend(vm)
    sim.set_cpu_vendor(compute.host_ref, 'AuthenticAMD')
    with pytest.raises(exception.XapiError) as info:
        compute.builder.resume(vm)
    assert info.value.code == 'VM_INCOMPATIBLE_WITH_THIS_HOST'
    assert xapi.VM.get_power_state(vm) == 'Suspended'


def test_more_vgpus_than_device_numbers_are_refused_before_any_call(single):
    xapi, compute = single
    vm = new_vm(xapi, 'many')
    t4 = vgpu_type(xapi, 'GRID T4-1Q')
    for device in range(20):  # devices 0..19 taken: one number is left
        xapi.VGPU.create(vm, group_of(xapi, 'T4'), str(device), {}, t4)
    two = ask('t4-1q:2')
    with pytest.raises(exception.VgpuAttachRefused) as info:
        compute.builder.attach('many', vm, two)
    assert 'vGPUs 0 to 20: 2 more do not fit beside 20' in str(info.value)
    assert len(xapi.VM.get_VGPUs(vm)) == 20
    assert compute.owed('many') == []
    compute.builder.attach('many', vm, ask('t4-1q:1'))  # device 20
    assert sorted(int(xapi.VGPU.get_device(v))
                  for v in xapi.VM.get_VGPUs(vm)) == list(range(21))
