"""Issue 16, items 6 and 8: a resize keeps the source's capacity until
confirm, so a revert always gets its vGPUs back; a cold migration records
its progress in XAPI before it destroys anything, a retry finishes it,
and it says it moved only when something moved."""

import json

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vm import moves
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import vgpu_type
from tests.test_cli import ALIAS_CONF
from tests.test_cli import conf_file
from tests.test_cli import run
from tests.vm_path.helpers import ask
from tests.vm_path.helpers import builder
from tests.vm_path.helpers import models
from tests.vm_path.helpers import sorting_after
from tests.vm_path.helpers import tagged


def fill(xapi, build, prefix):
    """Build 8Q instances on ``build``'s host until it refuses one."""
    built = 0
    while True:
        try:
            build.build('%s%d' % (prefix, built),
                        new_vm(xapi, '%s%d' % (prefix, built)), ask('8q:1'))
        except exception.ClaimRefused:
            return built
        built += 1


def test_a_resize_revert_gets_its_vgpus_back_after_builds(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'resized')
    a.build('resized', vm, ask('8q:1'))
    a.stop(vm)
    old = a.move_out('resized', vm)
    b.move_in('resized', vm, ask('4q:1'))
    # Builds on the source while the resize waits for confirm: the
    # source's pGPU stays held for the revert.
    assert fill(xapi, a, 'filler') == 3
    b.detach('resized', vm)  # revert: the destination gives its vGPUs up
    a.restore('resized', vm, old)
    a.start_again(vm)
    assert models(xapi, vm) == ['GRID M60-8Q']
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert moves.KEY not in xapi.VM.get_other_config(vm)


def test_a_confirmed_resize_releases_the_source(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'confirmed')
    a.build('confirmed', vm, ask('8q:1'))
    a.stop(vm)
    a.move_out('confirmed', vm)
    b.move_in('confirmed', vm, ask('8q:1'))
    assert moves.KEY in xapi.VM.get_other_config(vm)
    a.confirm_move('confirmed', vm)
    assert moves.KEY not in xapi.VM.get_other_config(vm)
    assert fill(xapi, a, 'after') == 4


def test_a_cold_migration_killed_midway_is_finished_by_a_retry(
        pool, pool_sim):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'cold')
    a.build('cold', vm, ask('8q:1'))
    a.stop(vm)
    # The destination's create and the put-back both fail: the VM is
    # left without VGPUs, as after a kill between destroy and create.
    sim.faults.fail_call('VGPU.create', 1, 'INTERNAL_ERROR', 'first')
    sim.faults.fail_call('VGPU.create', 2, 'INTERNAL_ERROR', 'second')
    with pytest.raises(exception.XapiError) as info:
        a.cold_migrate('cold', vm, b)
    assert info.value.details == ['INTERNAL_ERROR', 'first']
    assert tagged(xapi, 'cold') == []
    record = json.loads(xapi.VM.get_other_config(vm)[moves.KEY])
    assert record['instance'] == 'cold'
    assert record['source'] == a.host_uuid
    assert record['destination'] == b.host_uuid
    # A retry from a fresh process finishes the move.
    a2, b2 = builder(a.client, a.host_ref), builder(a.client, b.host_ref)
    made = a2.cold_migrate('cold', vm, b2)
    assert len(made) == 1 and tagged(xapi, 'cold') == made
    assert moves.KEY not in xapi.VM.get_other_config(vm)
    b2.start_again(vm)
    assert xapi.VM.get_resident_on(vm) == b.host_ref
    assert models(xapi, vm) == ['GRID M60-8Q']


def test_a_cold_migration_with_nothing_to_move_is_refused(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'foreign')
    xapi.VGPU.create(vm, group_of(xapi, 'M60'), '0', {},
                     vgpu_type(xapi, 'GRID M60-8Q'))
    with pytest.raises(exception.OperationRefused) as info:
        a.cold_migrate('foreign', vm, b)
    assert str(info.value) == (
        'Cannot cold migration VM %s: nothing to move: no VGPU of instance '
        'foreign on it (VGPUs this project did not make are not moved)'
        % vm)
    xapi.VM.start(vm, False, False)
    with pytest.raises(exception.OperationRefused) as info:
        a.cold_migrate('foreign', vm, b)
    assert str(info.value) == (
        'Cannot cold migration VM %s: it is Running; a cold migration moves '
        'a halted VM' % vm)
    with pytest.raises(exception.OperationRefused) as info:
        a.cold_migrate('foreign', vm, a)
    assert str(info.value) == (
        'Cannot cold migration VM %s: it is already on this host (a resize '
        'on one host is move_out + move_in)' % vm)
    assert b.stats.claims == {} and len(xapi.VM.get_VGPUs(vm)) == 1


def test_a_restarted_source_holds_an_open_resize_again(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'restarted')
    a.build('restarted', vm, ask('8q:1'))
    a.stop(vm)
    old = a.move_out('restarted', vm)
    b.move_in('restarted', vm, ask('8q:1'))
    fresh = builder(a.client, a.host_ref)  # nova-compute restarted
    assert fresh.hold_open_moves() == ['restarted']
    assert fill(xapi, fresh, 'later') == 3
    b.detach('restarted', vm)
    fresh.restore('restarted', vm, old)
    assert models(xapi, vm) == ['GRID M60-8Q']


def test_reap_orphans_puts_back_an_interrupted_cold_migration(
        pool, tmp_path):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'stranded')
    a.build('stranded', vm, ask('8q:1'))
    a.stop(vm)
    sim.faults.fail_call('VGPU.create', 1, 'INTERNAL_ERROR', 'first')
    sim.faults.fail_call('VGPU.create', 2, 'INTERNAL_ERROR', 'second')
    with pytest.raises(exception.XapiError):
        a.cold_migrate('stranded', vm, b)
    assert tagged(xapi, 'stranded') == []
    conf = conf_file(tmp_path, ALIAS_CONF % sim.url)
    dry = run('--config-file', conf, 'reap-orphans',
              env={'XENAPI_PASSWORD': sim.password})
    assert dry.returncode == 0, dry.stderr
    assert 'would put back' in dry.stdout and 'stranded' in dry.stdout
    applied = run('--config-file', conf, 'reap-orphans', '--apply',
                  env={'XENAPI_PASSWORD': sim.password})
    assert applied.returncode == 0, applied.stderr
    assert 'put back (1 VGPU(s))' in applied.stdout
    assert models(xapi, vm) == ['GRID M60-8Q']
    assert {xapi.VGPU.get_other_config(v)['nova_xenapi_vgpu_host']
            for v in tagged(xapi, 'stranded')} == {a.host_uuid}
    assert moves.KEY not in xapi.VM.get_other_config(vm)


def stopped(xapi, build, name):
    """A halted VM of ``name`` with one 8Q built on ``build``'s host."""
    vm = new_vm(xapi, name)
    build.build(name, vm, ask('8q:1'))
    build.stop(vm)
    return vm


def test_a_restart_holds_only_the_moves_whose_vgpus_left(pool):
    sim, xapi, (a, b) = pool
    plain = new_vm(xapi, 'no-move')
    stayed = stopped(xapi, a, 'stayed')  # killed before its destroy:
    moves.record(a.client, stayed, moves.Move(  # its VGPUs still count
        'stayed', a.host_uuid, '', (('g', 't'),)))
    other = stopped(xapi, b, 'other')  # the other host's move
    b.move_out('other', other)
    left = sorting_after(lambda: stopped(xapi, a, 'left'),
                         lambda vm: (a.detach('left', vm),
                                     xapi.VM.destroy(vm)),
                         max(plain, stayed, other))
    demand = a.move_out('left', left)
    fresh = builder(a.client, a.host_ref)  # nova-compute restarted
    assert fresh.hold_open_moves() == ['left']
    assert list(fresh.stats.claims) == [moves.held('left')]
    assert fresh.stats.claims[moves.held('left')].demand == tuple(demand)


def test_only_cold_migrations_cut_short_are_interrupted(pool):
    sim, xapi, (a, b) = pool
    resized = stopped(xapi, a, 'resized')
    a.move_out('resized', resized)  # a resize names no destination
    stayed = stopped(xapi, a, 'stayed')  # its VGPUs never left
    moves.record(a.client, stayed, moves.Move(
        'stayed', a.host_uuid, b.host_uuid, (('g', 't'),)))
    demand = {}

    def strand():
        vm = stopped(xapi, a, 'stranded')
        (vgpu,) = xapi.VM.get_VGPUs(vm)
        xapi.VM.snapshot(vm, 'stranded-snap')  # a copy tagged 'stranded'
        demand[vm] = ((xapi.VGPU.get_GPU_group(vgpu),
                       xapi.VGPU.get_type(vgpu)),)
        sim.faults.fail_call('VGPU.create', 1, 'INTERNAL_ERROR', 'first')
        sim.faults.fail_call('VGPU.create', 2, 'INTERNAL_ERROR', 'second')
        with pytest.raises(exception.XapiError):
            a.cold_migrate('stranded', vm, b)
        return vm

    def undo(vm):
        a.restore('stranded', vm, demand[vm])
        a.detach('stranded', vm)
        xapi.VM.destroy(vm)
    stranded = sorting_after(strand, undo, max(resized, stayed))
    assert moves.interrupted(a.client, a.host_uuid) == [(
        stranded, vgpulib.read_vm(a.client, stranded), moves.Move(
            'stranded', a.host_uuid, b.host_uuid, demand[stranded]))]
    assert moves.interrupted(a.client, b.host_uuid) == []


def test_an_evacuation_replaces_the_vgpus_another_host_made(pool):
    sim, xapi, (a, b) = pool
    vm = stopped(xapi, a, 'evacuated')  # its host a is down
    (old,) = tagged(xapi, 'evacuated')
    (new,) = b.move_in('evacuated', vm, ask('8q:1'))
    assert tagged(xapi, 'evacuated') == [new] and new != old
    assert xapi.VGPU.get_other_config(new)['nova_xenapi_vgpu_host'] == (
        b.host_uuid)


def test_a_suspended_instance_resumes_on_this_host(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'sleeper')
    a.build('sleeper', vm, ask('8q:1'))
    a.suspend('sleeper', vm)
    assert xapi.VM.get_power_state(vm) == 'Suspended'
    a.resume(vm)
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.VM.get_resident_on(vm) == a.host_ref
    (vgpu,) = tagged(xapi, 'sleeper')
    assert xapi.PGPU.get_host(xapi.VGPU.get_resident_on(vgpu)) == a.host_ref


def test_confirming_a_resize_twice_or_for_another_instance_changes_nothing(
        pool):
    sim, xapi, (a, b) = pool
    vm = stopped(xapi, a, 'resized')
    a.move_out('resized', vm)
    a.confirm_move('other', vm)  # not its move: it stays open
    assert moves.of_vm(vgpulib.read_vm(a.client, vm)).instance == 'resized'
    a.confirm_move('resized', vm)
    a.confirm_move('resized', vm)  # Nova confirming again
    assert moves.KEY not in xapi.VM.get_other_config(vm)
    assert a.stats.claims == {}


def test_a_revert_of_a_running_vm_is_refused_naming_it(pool):
    sim, xapi, (a, b) = pool
    vm = stopped(xapi, a, 'running')
    old = a.move_out('running', vm)
    b.move_in('running', vm, ask('8q:1'))
    xapi.VM.start_on(vm, b.host_ref, False, False)
    with pytest.raises(exception.VgpuAttachRefused) as info:
        a.restore('running', vm, old)
    assert str(info.value) == (
        'Cannot give VM %s vGPUs: it runs; stop it first (its vGPUs stay)'
        % vm)
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert list(a.stats.claims) == [moves.held('running')]  # still held


def test_a_revert_of_a_resize_on_one_host_keeps_its_vgpus_and_frees_all(
        pool):
    sim, xapi, (a, b) = pool
    vm = stopped(xapi, a, 'same-host')
    old = a.move_out('same-host', vm)
    made = a.move_in('same-host', vm, ask('8q:1'))  # same type, same host
    assert a.restore('same-host', vm, old) == made == tagged(
        xapi, 'same-host')
    assert a.stats.claims == {}  # the move's hold too
    assert moves.KEY not in xapi.VM.get_other_config(vm)


@pytest.mark.parametrize('open_move', [
    moves.Move('theirs', 'host', '', (('g', 't'),)).to_json(), 'garbage'])
def test_a_move_is_refused_while_another_is_open_on_the_vm(pool, open_move):
    sim, xapi, (a, b) = pool
    vm = stopped(xapi, a, 'mine')
    xapi.VM.add_to_other_config(vm, moves.KEY, open_move)
    with pytest.raises(exception.OperationRefused) as info:
        a.move_out('mine', vm)
    assert str(info.value) == (
        'Cannot move VM %s: another move is open on it (other_config:%s); '
        'finish or revert it first' % (vm, moves.KEY))
    assert len(tagged(xapi, 'mine')) == 1  # nothing destroyed
    assert xapi.VM.get_other_config(vm)[moves.KEY] == open_move


def test_a_suspended_vm_is_not_moved_out(pool):
    sim, xapi, (a, b) = pool
    vm = new_vm(xapi, 'asleep')
    a.build('asleep', vm, ask('8q:1'))
    a.suspend('asleep', vm)  # its VGPUs are not attached, yet it is not off
    with pytest.raises(exception.OperationRefused) as info:
        a.move_out('asleep', vm)
    assert str(info.value) == (
        'Cannot move VM %s: it runs; resize and cold migration move a '
        'stopped VM' % vm)
    assert len(tagged(xapi, 'asleep')) == 1
    assert moves.KEY not in xapi.VM.get_other_config(vm)


def test_moving_out_again_holds_the_same_demand(pool):
    sim, xapi, (a, b) = pool
    vm = stopped(xapi, a, 'twice')
    old = a.move_out('twice', vm)
    assert a.move_out('twice', vm) == old  # Nova retrying the resize
    assert list(a.stats.claims) == [moves.held('twice')]
    assert a.stats.claims[moves.held('twice')].demand == tuple(old)
