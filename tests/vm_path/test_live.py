"""Issue 16, item 7: which host owes a VGPU is never half-written; a
lost VM.pool_migrate answer or a kill during the move is settled by
asking XAPI where the VM is."""

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from tests.simhelpers import new_vm
from tests.vm_path.helpers import ask
from tests.vm_path.helpers import tagged


def host_tag(xapi, instance):
    return {xapi.VGPU.get_other_config(v).get(tags.HOST)
            for v in tagged(xapi, instance)}


def owed(build, instance):
    build.sync()
    return [s for s in build.stats.devices() if s.claimed_by == instance]


def test_a_lost_pool_migrate_answer_is_settled_where_the_vm_is(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'lost-move')
    a.build('lost-move', vm, ask('8q:1'))
    sim.start_delay_ms = 300
    sim.faults.lose_reply('Async.VM.pool_migrate')
    a.live_migrate('lost-move', vm, b)  # it moved: no error
    assert xapi.VM.get_resident_on(vm) == b.host_ref
    assert host_tag(xapi, 'lost-move') == {b.host_uuid}
    assert owed(b, 'lost-move') and not owed(a, 'lost-move')
    assert a.stats.claims == {} and b.stats.claims == {}


def test_the_host_tag_is_never_half_written(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'half')
    a.build('half', vm, ask('8q:1'))
    for method in ('VGPU.add_to_other_config', 'VGPU.set_other_config'):
        sim.faults.fail_call(method, 1, 'INTERNAL_ERROR', 'injected')
    a.live_migrate('half', vm, b)
    assert xapi.VM.get_resident_on(vm) == b.host_ref
    # The retag failed: the tag still names one host, never none ...
    assert host_tag(xapi, 'half') in ({a.host_uuid}, {b.host_uuid})
    # ... and settling it from where the VM runs puts it right.
    vgpulib.follow_vm(a.client, vm, 'half')
    assert host_tag(xapi, 'half') == {b.host_uuid}


def test_a_move_killed_before_the_retag_is_settled_at_reconcile(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'killed')
    a.build('killed', vm, ask('8q:1'))
    xapi.VM.pool_migrate(vm, b.host_ref, {'live': 'true'})  # then killed
    assert host_tag(xapi, 'killed') == {a.host_uuid}
    assert vgpulib.follow_running(a.client) == tagged(xapi, 'killed')
    assert host_tag(xapi, 'killed') == {b.host_uuid}
    assert owed(b, 'killed') and not owed(a, 'killed')


def test_a_live_move_that_never_reached_xapi_frees_the_destination(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'unsent')
    a.build('unsent', vm, ask('8q:1'))
    sim.faults.drop_connection('Async.VM.pool_migrate', times=10)
    with pytest.raises(exception.XapiConnectionError):
        a.live_migrate('unsent', vm, b)
    assert xapi.VM.get_resident_on(vm) == a.host_ref
    assert host_tag(xapi, 'unsent') == {a.host_uuid}
    assert b.stats.claims == {} and not owed(b, 'unsent')


def test_a_lost_move_xapi_cannot_settle_keeps_the_destinations_claim(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'unsure')
    a.build('unsure', vm, ask('8q:1'))
    sim.faults.drop_connection('Async.VM.pool_migrate', times=10)
    sim.faults.drop_connection('VM.get_record', times=100)
    with pytest.raises(exception.XapiConnectionError):
        a.live_migrate('unsure', vm, b)
    # Nothing is undone on a guess: the destination keeps its claim.
    assert list(b.stats.claims) == ['unsure']


def test_a_retag_cut_short_is_finished_writing_only_what_is_wrong(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'two')
    build.build('two', vm, ask('t4:2'))
    first, second = tagged(xapi, 'two')  # in ref order
    # Moved here from another host, killed after the first retag.
    xapi.VGPU.set_other_config(second, dict(
        xapi.VGPU.get_other_config(second), **{tags.HOST: 'elsewhere'}))
    writes = sim.faults.calls['VGPU.set_other_config']
    assert vgpulib.follow_vm(build.client, vm, 'two') == [second]
    assert host_tag(xapi, 'two') == {build.host_uuid}
    assert sim.faults.calls['VGPU.set_other_config'] == writes + 1
    assert vgpulib.follow_vm(build.client, vm, 'two') == []
