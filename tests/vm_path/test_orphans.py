"""What reap-orphans is shown and what reconcile retags: exactly the
VGPUs this host's claims made for instances Nova no longer knows, and
never a VGPU this project did not make or another host owns."""

import pytest

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import vgpu_type
from tests.vm_path.helpers import ask
from tests.vm_path.helpers import client_of
from tests.vm_path.helpers import racing
from tests.vm_path.helpers import sorting_after
from tests.vm_path.helpers import tagged


def plain_vgpu(xapi, name, config, board='T4'):
    """A VGPU made by someone else (an 8Q of ``board``, ``config``)."""
    return xapi.VGPU.create(new_vm(xapi, name), group_of(xapi, board), '0',
                            config, vgpu_type(xapi, 'GRID %s-8Q' % board))


def test_find_orphans_lists_only_this_hosts_vgpus_of_unknown_instances(
        world):
    sim, xapi, build = world
    build.attach('known', new_vm(xapi, 'known'), ask('4q:1'))
    skipped = [
        plain_vgpu(xapi, 'untagged', {tags.HOST: build.host_uuid}),
        plain_vgpu(xapi, 'foreign', {tags.HOST: 'another-host',
                                     tags.INSTANCE: 'foreign'})]
    ghost = new_vm(xapi, 'ghost')
    (vgpu,) = [sorting_after(
        lambda: build.attach('ghost', ghost, ask('4q:1'))[0],
        lambda ref: build.detach('ghost', ghost), min(skipped))]
    orphans = vgpulib.find_orphans(build.client, build.host_uuid,
                                   ['known'])
    assert orphans == [vgpulib.Orphan(
        vgpu, ghost, 'ghost', 'instance unknown to Nova', 'Halted')]


def test_a_vgpu_whose_vm_vanished_during_the_scan_is_an_orphan(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'vanishing')
    (vgpu,) = build.attach('vanishing', vm, ask('4q:1'))
    client = racing(client_of(sim), 'VGPU.get_all_records',
                    lambda: xapi.VM.destroy(vm))
    orphans = vgpulib.find_orphans(client, build.host_uuid, ['vanishing'])
    assert orphans == [vgpulib.Orphan(
        vgpu, vm, 'vanishing', 'its VM no longer exists', None)]
    assert vgpulib.reap_orphans(client, orphans) == (orphans, [])


@pytest.mark.parametrize('how,kind', [('snapshot', 'snapshot'),
                                      ('clone', 'clone or copy'),
                                      ('template', 'template')])
def test_a_copy_is_reported_as_what_it_is(world, how, kind):
    sim, xapi, build = world
    vm = new_vm(xapi, 'orig')
    build.attach('orig', vm, ask('t4:1'))
    copy = getattr(xapi.VM, 'snapshot' if how == 'snapshot' else 'clone')(
        vm, 'copy-of-orig')
    if how == 'template':
        xapi.VM.set_is_a_template(copy, True)
    (copied,) = xapi.VM.get_VGPUs(copy)
    orphans = vgpulib.find_orphans(build.client, build.host_uuid, {'orig'})
    assert orphans == [vgpulib.Orphan(
        copied, copy, 'orig', 'a copy (%s) of a VGPU made for %s: its tags '
        'are no claim' % (kind, vm), 'Halted', copy=True)]


def test_reconcile_retags_every_moved_vgpu_and_nothing_else(pool):
    sim, xapi, (a, b) = pool
    halted = new_vm(xapi, 'halted')
    a.attach('halted', halted, ask('8q:1'))
    others = [plain_vgpu(xapi, 'plain', {}, 'M60')]
    xapi.VM.start(xapi.VGPU.get_VM(others[0]), False, False)
    moved = []
    for name in ('m1', 'm2'):
        vm = new_vm(xapi, name)
        moved.append(sorting_after(
            lambda vm=vm, name=name: a.build(name, vm, ask('8q:1')) and
            tagged(xapi, name)[0],
            lambda ref, vm=vm, name=name: (xapi.VM.hard_shutdown(vm),
                                           a.detach(name, vm)),
            min(others + tagged(xapi, 'halted'))))
    before = {v: xapi.VGPU.get_other_config(v) for v in others}
    for ref in moved:  # a live move killed before its retag
        xapi.VGPU.set_other_config(ref, dict(
            xapi.VGPU.get_other_config(ref), **{tags.HOST: b.host_uuid}))
    assert vgpulib.follow_running(a.client) == sorted(moved)
    assert {xapi.VGPU.get_other_config(v)[tags.HOST] for v in moved} == {
        a.host_uuid}
    assert {v: xapi.VGPU.get_other_config(v) for v in others} == before
    assert xapi.VGPU.get_other_config(tagged(xapi, 'halted')[0])[
        tags.HOST] == a.host_uuid
