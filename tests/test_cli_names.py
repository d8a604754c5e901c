"""VMs and VGPUs named as xe names them: by uuid and name-label, never
by OpaqueRef (a subprocess against the simulator)."""

import json

from nova_xenapi_vgpu.simulator import server
from tests.conftest import login
from tests.test_cli import vgpu_cli


def test_vm_by_name_label_and_what_is_shown(tmp_path):
    with server.Simulator('pool') as sim:
        xapi = login(sim.url).xenapi
        vm = xapi.VM.create({'name_label': 'web-1', 'HVM_boot_policy': 'B'})
        uuid = xapi.VM.get_uuid(vm)
        for _ in range(2):
            xapi.VM.create({'name_label': 'twin', 'HVM_boot_policy': 'B'})
        twins = sorted(xapi.VM.get_uuid(v)
                       for v in xapi.VM.get_by_name_label('twin'))

        def cli(*args):
            return vgpu_cli(sim, tmp_path, *args)
        attached = cli('attach', '--vm', 'web-1', '--alias', 'm60-8q:1',
                       '-f', 'json')
        made = sorted(xapi.VGPU.get_uuid(v) for v in xapi.VM.get_VGPUs(vm))
        master = xapi.host.get_by_name_label('xs-pool-01')[0]
        xapi.VM.start_on(vm, master, False, False)
        running = cli('detach', '--vm', 'web-1')
        moved = cli('migrate', '--vm', uuid, '--host', 'xs-pool-02',
                    '--live', '--dry-run', '-f', 'json')
        ambiguous = cli('detach', '--vm', 'twin')
        unknown = cli('detach', '--vm', 'nobody')
    assert attached.returncode == 0, attached.stderr
    answer = json.loads(attached.stdout)
    assert (answer['VM'], answer['VM uuid'], answer['Instance']) == (
        'web-1', uuid, uuid)
    assert answer['VGPUs'] == made and len(made) == 1
    assert running.returncode == 1
    assert 'web-1 (%s)' % uuid in running.stderr
    assert 'stop it first' in running.stderr
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)['VGPUs'] == made
    assert ambiguous.returncode == 2
    assert '2 VMs have this name-label' in ambiguous.stderr
    assert all(u in ambiguous.stderr for u in twins)
    assert unknown.returncode == 2 and 'uuid or name-label' in (
        unknown.stderr)
    everything = ''.join(r.stdout + r.stderr for r in (
        attached, running, moved, ambiguous, unknown))
    assert 'OpaqueRef' not in everything


def test_detach_of_nothing_exits_1_and_a_pv_vm_is_refused_quietly(
        tmp_path):
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        hvm = xapi.VM.create({'name_label': 'empty', 'HVM_boot_policy': 'B'})
        xapi.VM.create({'name_label': 'pv', 'HVM_boot_policy': '',
                        'domain_type': 'pv'})
        nothing = vgpu_cli(sim, tmp_path, 'detach', '--vm', 'empty')
        pv = vgpu_cli(sim, tmp_path, 'attach', '--vm', 'pv', '--alias',
                      'm60-4q:1')
        left = xapi.VGPU.get_all()
        hvm_uuid = xapi.VM.get_uuid(hvm)
    assert nothing.returncode == 1
    assert 'holds no VGPU of instance %s' % hvm_uuid in (
        nothing.stderr)
    assert pv.returncode == 1
    assert 'not HVM' in pv.stderr
    assert 'Rolled back' not in pv.stderr and 'OpaqueRef' not in pv.stderr
    assert left == []


def test_reap_orphans_names_vms_and_says_when_there_are_none(tmp_path):
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        empty = vgpu_cli(sim, tmp_path, 'reap-orphans')
        host = xapi.host.get_all()[0]
        group = xapi.GPU_group.get_all()[0]
        vgpu_type = [r for r, t in xapi.VGPU_type.get_all_records().items()
                     if t['model_name'] == 'GRID M60-4Q'][0]
        vm = xapi.VM.create({'name_label': 'ghost-vm', 'HVM_boot_policy': 'B'})
        vgpu = xapi.VGPU.create(vm, group, '0', {
            'nova_xenapi_vgpu_host': xapi.host.get_uuid(host),
            'nova_instance_uuid': 'ghost'}, vgpu_type)
        known = tmp_path / 'known.txt'
        known.write_text('someone-else\n')
        found = vgpu_cli(sim, tmp_path, 'reap-orphans', '--known-instances',
                         str(known), '-f', 'json')
        uuids = (xapi.VM.get_uuid(vm), xapi.VGPU.get_uuid(vgpu))
    assert empty.returncode == 0, empty.stderr
    assert 'nothing to reap' in empty.stderr and empty.stdout == ''
    (row,) = json.loads(found.stdout)
    assert (row['VM'], row['VM uuid'], row['VGPU uuid']) == (
        'ghost-vm', *uuids)
    assert 'OpaqueRef' not in found.stdout


def test_a_xapi_failure_keeps_its_code_and_names_the_vm(tmp_path):
    with server.Simulator('pool') as sim:
        xapi = login(sim.url).xenapi
        vm = xapi.VM.create({'name_label': 'mover', 'HVM_boot_policy': 'B'})
        attached = vgpu_cli(sim, tmp_path, 'attach', '--vm', 'mover',
                            '--alias', 'm60-8q:1')
        master = xapi.host.get_by_name_label('xs-pool-01')[0]
        xapi.VM.start_on(vm, master, False, False)
        sim.faults.fail_call('VM.pool_migrate', 1, 'VM_MIGRATE_FAILED', vm,
                             master, 'xs-pool-02', 'link down')
        failed = vgpu_cli(sim, tmp_path, 'migrate', '--vm', 'mover',
                          '--host', 'xs-pool-02', '--live')
        uuid = xapi.VM.get_uuid(vm)
    assert attached.returncode == 0, attached.stderr
    assert failed.returncode == 1
    assert 'VM_MIGRATE_FAILED' in failed.stderr
    assert 'mover (%s)' % uuid in failed.stderr
    assert 'xs-pool-01 (' in failed.stderr
    assert 'OpaqueRef' not in failed.stderr


def test_any_command_shows_xapi_failures_without_refs(tmp_path):
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        pgpu = sorted(xapi.PGPU.get_all())[0]
        pgpu_uuid = xapi.PGPU.get_uuid(pgpu)
        sim.faults.fail_call('PGPU.set_GPU_group', 1,
                             'PGPU_IN_USE_BY_VM', pgpu)
        result = vgpu_cli(sim, tmp_path, 'gpu-groups', 'split', '--apply')
    assert result.returncode == 1
    assert 'PGPU_IN_USE_BY_VM' in result.stderr
    assert 'PGPU %s' % pgpu_uuid in result.stderr
    assert 'OpaqueRef' not in result.stderr
