"""Issue 16, item 10: a reply lost during a start is settled by asking
XAPI before anything is rolled back; a starting VM keeps its vGPUs."""

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.vm import settle
from tests.conftest import login
from tests.simhelpers import new_vm
from tests.vm_path.helpers import ask
from tests.vm_path.helpers import client_of
from tests.vm_path.helpers import tagged


def test_a_lost_start_reply_keeps_the_vgpus_of_a_starting_vm(world):
    sim, xapi, build = world
    sim.start_delay_ms = 300  # the reply is lost inside the boot window
    vm = new_vm(xapi, 'lost')
    sim.faults.lose_reply('Async.VM.start_on')
    pgpus = build.build('lost', vm, ask('t4:1'))
    (vgpu,) = tagged(xapi, 'lost')
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.VGPU.get_resident_on(vgpu) in pgpus
    assert build.stats.claims == {}
    task = [t for t, r in xapi.task.get_all_records().items()
            if r['name_label'] == 'Async.VM.start_on']
    assert [xapi.task.get_status(t) for t in task] == ['success']


def test_a_start_that_did_not_happen_is_rolled_back_with_its_error(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'nostart')
    # The call never reaches XAPI: nothing started, so it is undone.
    sim.faults.drop_connection('Async.VM.start_on', times=10)
    with pytest.raises(exception.XapiConnectionError):
        build.build('nostart', vm, ask('t4:1'))
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert tagged(xapi, 'nostart') == [] and build.stats.claims == {}


def test_settle_waits_for_a_start_under_way_and_says_when_it_cannot(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'slow')
    build.attach('slow', vm, ask('t4:1'))
    sim.start_delay_ms = 1500
    xapi.Async.VM.start_on(vm, build.host_ref, False, False)
    with pytest.raises(exception.XapiOutcomeUnknown) as info:
        settle.settle(build.client, vm, settle.STARTS, timeout=0.2)
    # What is still under way, where, and on which VM: the operator's
    # next question to XAPI.
    assert info.value.method == 'VM.start_on'
    assert info.value.call_args == (vm,)
    assert str(info.value) == (
        'XAPI at %s did not answer VM.start_on(%r,) (still in progress on '
        'the VM after waiting); it may have taken effect' % (sim.url, vm))
    outcome = settle.settle(build.client, vm, settle.STARTS, timeout=30)
    assert outcome.runs and outcome.resident_on == build.host_ref
    assert outcome.host_uuid == build.host_uuid


@pytest.mark.parametrize('fault', ['refused', 'never_sent'])
def test_a_failed_start_destroys_only_what_its_build_made(world, fault):
    sim, xapi, build = world
    vm = new_vm(xapi, 'again')
    (earlier,) = build.attach('again', vm, ask('t4:1'))  # an attach before
    if fault == 'refused':
        sim.faults.fail_call('Async.VM.start_on', 1, 'INTERNAL_ERROR', 'x')
    else:
        sim.faults.drop_connection('Async.VM.start_on', times=10)
    with pytest.raises((exception.XapiError,
                        exception.XapiConnectionError)):
        build.build('again', vm, ask('t4:1'))  # it made nothing new
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert tagged(xapi, 'again') == [earlier]


def test_a_start_alone_that_never_happened_rolls_the_instance_back(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'alone')
    build.attach('alone', vm, ask('t4:1'))
    sim.faults.drop_connection('Async.VM.start_on', times=10)
    with pytest.raises(exception.XapiConnectionError):
        build.start('alone', vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert tagged(xapi, 'alone') == [] and build.stats.claims == {}


def test_a_build_keeps_the_instances_numa_cells(sim):
    # mixed: the Tesla T4 sits on NUMA node 0 only (the dom0 plugin says).
    xapi = login(sim.url).xenapi
    client = client_of(sim)
    build = lifecycle.Builder.for_host(client, identity.resolve_host(client))
    # Known from the first read, before any build refreshes the pools.
    assert {s.numa_node for s in build.stats.devices()
            if s.vgpu_type.model_name.startswith('GRID T4')} == {0}
    far, near = new_vm(xapi, 'far'), new_vm(xapi, 'near')
    with pytest.raises(exception.ClaimRefused):
        build.build('far', far, ask('t4:1'), numa_cells=[1])
    assert xapi.VM.get_VGPUs(far) == [] and build.stats.claims == {}
    build.build('near', near, ask('t4:1'), numa_cells=[0])
    assert xapi.VM.get_power_state(near) == 'Running'
    build.stop(near)  # a resize on this host: out, then in on cell 1
    build.move_out('near', near)
    with pytest.raises(exception.ClaimRefused):
        build.move_in('near', near, ask('t4:1'), numa_cells=[1])
    assert len(build.move_in('near', near, ask('t4:1'), numa_cells=[0])) == 1
    client.close()


def test_a_host_builds_only_the_vgpu_types_it_enables(sim):
    xapi = login(sim.url).xenapi
    client = client_of(sim)
    build = lifecycle.Builder.for_host(client, identity.resolve_host(client),
                                       enabled=['GRID T4-8Q'])
    other, enabled = new_vm(xapi, 'other'), new_vm(xapi, 'enabled')
    with pytest.raises(exception.ClaimRefused):
        build.build('other', other, ask('t4-4q:1'))
    build.build('enabled', enabled, ask('t4:1'))
    assert xapi.VM.get_power_state(enabled) == 'Running'
    client.close()


def test_detach_frees_a_claim_nova_made_before_any_vgpu(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'aborted')
    build.stats.consume_requests(ask('t4:1'), None, 'aborted')  # a claim
    assert build.detach('aborted', vm) == []  # spawn aborted: destroy
    assert build.stats.claims == {}


def test_a_refused_clean_shutdown_is_raised_not_forced(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'busy')
    build.build('busy', vm, ask('t4:1'))
    sim.faults.fail_call('Async.VM.clean_shutdown', 1,
                         'OTHER_OPERATION_IN_PROGRESS', 'VM', vm)
    with pytest.raises(exception.XapiError) as info:
        build.stop(vm)
    assert info.value.code == 'OTHER_OPERATION_IN_PROGRESS'
    assert xapi.VM.get_power_state(vm) == 'Running'  # never hard-stopped


def test_a_start_whose_vgpus_cannot_be_read_still_succeeds(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'unread')
    build.attach('unread', vm, ask('t4:1'))
    sim.faults.fail_call('VGPU.get_all_records_where', 1, 'INTERNAL_ERROR',
                         'read after the start')
    assert build.start('unread', vm) == []  # no pGPU known yet
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert len(tagged(xapi, 'unread')) == 1
