"""The command line, run as operators run it: a subprocess."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

import pytest

from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import server
from tests.conftest import login

SECRET = 'Cli-distinctive-s3cret-77'


EMPTY_HOME = tempfile.mkdtemp(prefix='nova-xenapi-vgpu-home-')


def run(*args, env=None, timeout=60):
    # A home of its own: no ~/.nova/nova.conf of the developer's is read.
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith('XENAPI_')}
    full_env['HOME'] = EMPTY_HOME
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', *args],
        capture_output=True, text=True, env=full_env, timeout=timeout,
        stdin=subprocess.DEVNULL)


def test_help_lists_commands():
    result = run('--help')
    assert result.returncode == 0
    for name in ('inventory', 'simulator', 'plugin path', 'plugin check'):
        assert name in result.stdout
    for option in ('--config-file', '--url', '--username', '--password',
                   '--insecure', '--debug'):
        assert option in result.stdout


def test_inventory_on_the_builtin_simulator():
    result = run('inventory', '--long', '-f', 'json')
    assert result.returncode == 0, result.stderr
    notice = [line for line in result.stderr.splitlines()
              if 'simulator' in line]
    assert len(notice) == 1
    rows = json.loads(result.stdout)
    m60 = [r for r in rows if r['vGPU type'] == 'GRID M60-4Q']
    assert {(r['pGPU'], r['NUMA node']) for r in m60} == {
        ('0000:86:00.0', 0), ('0000:87:00.0', 1)}
    assert all(r['Capacity'] == 2 and r['Remaining'] == 2 for r in m60)
    assert {r['Allocation'] for r in rows} == {'depth_first',
                                               'breadth_first'}
    assert {r['Vendor:Device'] for r in rows} >= {'10de:13f2', '10de:1eb8',
                                                  '8086:3e92', '1002:6929'}


def test_inventory_reflects_running_vgpus_and_enabled_types(tmp_path):
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        types = {r['model_name']: ref for ref, r in
                 xapi.VGPU_type.get_all_records().items()}
        group = xapi.GPU_group.get_all()[0]
        vm = xapi.VM.create({'name_label': 'a',
                             'HVM_boot_policy': 'BIOS order'})
        xapi.VGPU.create(vm, group, '0', {}, types['GRID M60-2Q'])
        xapi.VM.start(vm, False, False)
        conf = tmp_path / 'n.conf'
        conf.write_text('[xenserver]\nconnection_url = %s\n'
                        'connection_password = xenroot\n'
                        '[vgpu]\nenabled_vgpu_types = GRID M60-2Q,'
                        'GRID M60-4Q\n' % sim.url)
        result = run('--config-file', str(conf), 'inventory', '-f', 'json')
    assert result.returncode == 0, result.stderr
    assert 'simulator' not in result.stderr
    rows = {(r['pGPU'], r['vGPU type']): r for r in json.loads(result.stdout)}
    assert len(rows) == 4
    busy = [r for r in rows.values() if r['In use'] == 1]
    assert len(busy) == 1 and busy[0]['Remaining'] == 3
    pgpu = busy[0]['pGPU']
    assert rows[(pgpu, 'GRID M60-4Q')]['Remaining'] == 0


@pytest.mark.parametrize('text, words', [
    ('[xenserver]\nconnection_concurrent = zero\n',
     ['connection_concurrent']),
    ('[xenserver]\nconnection_url = https://root:%s@h/\n' % SECRET,
     ['connection_url', 'credentials']),
    ('[vgpu]\nalias = [1, 2]\n', ['alias', 'JSON object']),
    ('[xenserver]\nconnection_username = root\n', ['connection_url',
                                                   'not set', '--url']),
    ('[xenserver\nbroken', ['configuration']),
])
def test_bad_config_exits_2_naming_the_option(tmp_path, text, words):
    conf = tmp_path / 'bad.conf'
    conf.write_text(text)
    result = run('--config-file', str(conf), 'inventory')
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr
    assert 'Traceback' not in result.stderr + result.stdout
    assert SECRET not in result.stderr + result.stdout


def test_missing_config_file_exits_2(tmp_path):
    result = run('--config-file', str(tmp_path / 'nope.conf'), 'inventory')
    assert result.returncode == 2
    assert 'nope.conf' in result.stderr
    assert 'Traceback' not in result.stderr


def test_unknown_command_exits_2():
    result = run('no-such-command')
    assert result.returncode == 2


def test_a_refused_login_exits_2_with_the_code_and_no_secret():
    with server.Simulator('m60') as sim:
        result = run('--url', sim.url, '--debug', '-v', '-v', 'inventory',
                     env={'XENAPI_PASSWORD': SECRET})
    assert result.returncode == 2
    assert 'SESSION_AUTHENTICATION_FAILED' in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_password_flag_never_printed_at_debug():
    with server.Simulator('m60', password=SECRET) as sim:
        result = run('--url', sim.url, '--password', SECRET, '--debug',
                     '-v', '-v', 'inventory', '-f', 'value')
    assert result.returncode == 0, result.stderr
    assert 'GRID M60-8Q' in result.stdout
    assert SECRET not in result.stderr + result.stdout


def test_unreachable_xapi_exits_1(tmp_path):
    conf = tmp_path / 'n.conf'
    conf.write_text('[xenserver]\nconnection_url = http://127.0.0.1:9/\n'
                    'connection_retries = 2\n'
                    'connection_retry_interval = 0.01\n')
    result = run('--config-file', str(conf), 'inventory',
                 env={'XENAPI_PASSWORD': 'x'})
    assert result.returncode == 1
    assert 'Cannot reach XAPI' in result.stderr
    assert '3 attempt(s)' in result.stderr
    assert 'Traceback' not in result.stderr


def test_plugin_path_points_at_the_plugin():
    result = run('plugin', 'path')
    assert result.returncode == 0
    path = result.stdout.strip()
    assert os.path.basename(path) == 'xenapi_vgpu'
    with open(path, encoding='utf-8') as stream:
        assert 'XenAPIPlugin.dispatch' in stream.read()


def test_plugin_check_on_the_simulator():
    result = run('plugin', 'check', '-f', 'json')
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer['Installed'] is True
    assert answer['API version'] == '1.1'


def interruptible():
    """Ctrl-C as a terminal delivers it: a shell's background job (CI
    started with ``&``) inherits SIGINT ignored, which Python keeps."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_simulator_command_serves_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'simulator',
         '--profile', 'pool', '--password', 'pw', '--fail',
         'PGPU.get_all:1:INTERNAL_ERROR:boom'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith('http://127.0.0.1:') and url.endswith('/')
        xapi = login(url, 'root', 'pw').xenapi
        assert len(xapi.host.get_all()) == 3
        with pytest.raises(Exception, match='boom'):
            xapi.PGPU.get_all()
        assert len(xapi.PGPU.get_all()) == 12
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 130
    assert 'Traceback' not in proc.stderr.read()


def test_simulator_command_expires_sessions():
    proc = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'simulator',
         '--profile', 'm60', '--expire-sessions-every', '0.2'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible)
    try:
        url = proc.stdout.readline().strip()
        handle = login(url).handle
        deadline = time.monotonic() + 10
        proxy = xmlrpc.client.ServerProxy(url)
        while proxy.host.get_all(handle)['Status'] == 'Success':
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert proxy.host.get_all(handle)['ErrorDescription'] == [
            'SESSION_INVALID', handle]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


@pytest.mark.parametrize('args, word', [
    (['--profile', 'nope'], 'nope'),
    (['--expire-sessions-every', '0'], '--expire-sessions-every'),
    (['--listen', 'localhost'], '--listen'),
    (['--fail', 'PGPU.get_all:x:E'], '--fail'),
    (['--tls-cert', 'c.pem'], '--tls-key'),
])
def test_simulator_bad_usage_exits_2(args, word):
    result = run('simulator', *args)
    assert result.returncode == 2
    assert word in result.stderr
    assert 'Traceback' not in result.stderr


def test_simulator_profile_file_errors(tmp_path):
    profile = tmp_path / 'p.yaml'
    profile.write_text('hosts:\n- name: h\n  pgpus:\n  - address: 86:00.0\n'
                       '    model: tesla-m60\n')
    result = run('simulator', '--profile', str(profile))
    assert result.returncode == 2
    assert 'hosts[0].pgpus[0].address' in result.stderr


def conf_file(tmp_path, text):
    path = tmp_path / 'nova.conf'
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('ca_text, words', [
    (None, ['ca_file', 'no such file', 'PEM']),
    ('not a certificate\n', ['ca_file', 'not a PEM', 'xapi-ssl.pem']),
])
def test_bad_ca_file_exits_2(tmp_path, ca_text, words):
    ca = tmp_path / 'ca.pem'
    if ca_text is not None:
        ca.write_text(ca_text)
    conf = conf_file(tmp_path, '[xenserver]\nconnection_url = '
                     'https://127.0.0.1:9/\nca_file = %s\n' % ca)
    result = run('--config-file', conf, 'inventory')
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('make, words', [
    (lambda d: str(d), ['is a directory']),
    (lambda d: (d / 'bin.conf').write_bytes(b'\x7fELF\x00\xd0\x01') and str(
        d / 'bin.conf'), ['not a text file']),
])
def test_config_file_that_is_no_config_file(tmp_path, make, words):
    result = run('--config-file', make(tmp_path), 'inventory')
    assert result.returncode == 2
    assert '--config-file' in result.stderr
    for word in words:
        assert word in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('how', ['flag', 'env'])
def test_a_url_that_is_not_one(how):
    value = 'x' * 100000
    args, env = (['--url', value], None) if how == 'flag' else (
        [], {'XENAPI_URL': value})
    result = run(*args, 'inventory', env=env)
    assert result.returncode == 2
    assert '--url (or XENAPI_URL)' in result.stderr
    assert 'expected http://<host>/' in result.stderr
    assert len(result.stderr) < 500


def test_option_values_are_reported_without_oslo_reprs(tmp_path):
    conf = conf_file(tmp_path, '[xenserver]\nconnection_url = '
                     'http://127.0.0.1:9/\ncall_timeout = soon\n')
    result = run('--config-file', conf, 'inventory')
    assert result.returncode == 2
    assert '[xenserver] call_timeout' in result.stderr
    assert 'LocationInfo' not in result.stderr


def test_unknown_options_get_a_warning_with_the_close_match(tmp_path):
    with server.Simulator('m60') as sim:
        conf = conf_file(tmp_path, '[xenserver]\nconnection_url = %s\n'
                         'conection_password = xenroot\n[vgpu]\n'
                         'enabled_types = GRID M60-4Q\n' % sim.url)
        result = run('--config-file', conf, 'plugin', 'check',
                     env={'XENAPI_PASSWORD': 'xenroot'})
    assert result.returncode == 0, result.stderr
    assert ('[xenserver] conection_password is not an option of '
            'nova-xenapi-vgpu; did you mean connection_password?'
            in result.stderr)
    assert 'did you mean enabled_vgpu_types?' in result.stderr


def test_tls_mistakes_exit_2_with_the_fix(tmp_path):
    with server.Simulator('m60') as sim:
        result = run('--url', sim.url.replace('http:', 'https:'),
                     'inventory', env={'XENAPI_PASSWORD': 'xenroot'})
    assert result.returncode == 2
    assert 'does not speak TLS' in result.stderr
    assert 'retry' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_plugin_check_exits_1_when_the_plugin_is_missing(tmp_path):
    with server.Simulator('m60', plugin_dir=str(tmp_path)) as sim:
        result = run('--url', sim.url, 'plugin', 'check', '-f', 'json',
                     env={'XENAPI_PASSWORD': 'xenroot'})
        rows = json.loads(run('--url', sim.url, 'inventory', '-f', 'json',
                              env={'XENAPI_PASSWORD': 'xenroot'}).stdout)
    assert {r['NUMA node'] for r in rows} == {None}
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert (answer['Host'], answer['Installed']) == ('xs-m60-01', False)
    assert 'OpaqueRef' not in result.stderr + result.stdout
    assert 'xs-m60-01' in result.stderr


def test_ctrl_c_ends_a_command_quietly_with_130():
    with server.Simulator('m60', latency_ms=3000) as sim:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', '--url',
             sim.url, 'inventory'], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
            env=dict(os.environ, XENAPI_PASSWORD='xenroot'))
        deadline = time.monotonic() + 20
        while not sim.faults.calls['session.login_with_password']:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert 'Traceback' not in stderr


def test_inventory_reads_at_a_glance(tmp_path):
    with server.Simulator() as sim:
        xapi = login(sim.url).xenapi
        groups = {r['name_label']: ref for ref, r in
                  xapi.GPU_group.get_all_records().items()}
        types = {r['model_name']: ref for ref, r in
                 xapi.VGPU_type.get_all_records().items()}
        m60 = next(ref for name, ref in groups.items() if 'M60' in name)
        vm = xapi.VM.create({'name_label': 'a', 'HVM_boot_policy': 'BIOS'})
        xapi.VGPU.create(vm, m60, '0', {}, types['GRID M60-8Q'])
        xapi.VM.start(vm, False, False)
        env = {'XENAPI_PASSWORD': 'xenroot'}
        table = run('--url', sim.url, 'inventory', env=dict(env,
                                                            COLUMNS='120'))
        rows = json.loads(run('--url', sim.url, 'inventory', '-f', 'json',
                              env=env).stdout)
        unplaced = run('--url', sim.url, 'inventory', '-f', 'yaml',
                       env=env).stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 120
    assert '0000:86:00.0' in table.stdout  # never cut across lines
    assert 'Group of' not in table.stdout and 'Tesla M60' in table.stdout
    held = [r for r in rows if r['Note'] == 'held by GRID M60-8Q']
    assert {r['vGPU type'] for r in held} >= {'GRID M60-4Q', 'passthrough'}
    t4 = [r['vGPU type'] for r in rows if r['vGPU type'].startswith(
        'GRID T4')]
    assert t4 == ['GRID T4-1Q', 'GRID T4-2Q', 'GRID T4-4Q', 'GRID T4-8Q',
                  'GRID T4-16Q']
    assert {r['Host'] for r in rows} == {'xs-gpu-01'}
    assert all(r['GPU group'].startswith('Group of ') for r in rows)
    assert 'NUMA node: 0' in unplaced


ALIAS_CONF = '''[xenserver]
connection_url = %s
[vgpu]
alias = {"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}
alias = {"name": "m60-8q", "vgpu_type": "GRID M60-8Q"}
alias = {"name": "near", "vgpu_type": "GRID M60-4Q", "numa_policy": "required"}
alias = {"name": "t4", "vgpu_type": "GRID T4-8Q"}
alias = {"name": "nic", "vendor_id": "8086", "product_id": "1572"}
'''


def vgpu_cli(sim, tmp_path, *args, extra=''):
    conf = conf_file(tmp_path, ALIAS_CONF % sim.url + extra)
    return run('--config-file', conf, *args,
               env={'XENAPI_PASSWORD': sim.password})


def test_pci_devices_is_what_a_driver_reports(tmp_path):
    with server.Simulator() as sim:
        first = vgpu_cli(sim, tmp_path, 'pci-devices')
        again = vgpu_cli(sim, tmp_path, 'pci-devices')
    assert first.returncode == 0, first.stderr
    devices = json.loads(first.stdout)
    assert [d['uuid'] for d in devices] == [
        d['uuid'] for d in json.loads(again.stdout)]
    assert {d['address'] for d in devices} == {None}
    assert {d['dev_type'] for d in devices} == {'vgpu'}
    assert {d['vgpu_type'] for d in devices} >= {
        'GRID M60-4Q', 'GRID T4-16Q', 'passthrough', 'Intel GVT-g 128M'}
    m60 = [d for d in devices if d['parent_addr'] == '0000:86:00.0']
    # One slot per vGPU the pGPU could hold of each of its types.
    assert len(m60) == sum(t.per_pgpu for t in hardware.supported_types(
        hardware.MODELS['tesla-m60']))
    assert all(isinstance(v, str) for d in devices for k, v in d.items()
               if k in ('framebuffer_size', 'max_heads', 'vgpu_type'))


def test_types_lists_totals_in_natural_order(tmp_path):
    with server.Simulator() as sim:
        result = vgpu_cli(sim, tmp_path, 'types', '-f', 'json')
    rows = {r['Model']: r for r in json.loads(result.stdout)}
    assert rows['GRID M60-4Q']['Capacity'] == 4
    assert rows['GRID M60-4Q']['In use'] == 0
    assert rows['GRID M60-4Q']['Remaining'] == 4
    assert rows['GRID M60-4Q']['Framebuffer MiB'] == 4096
    t4 = [m for m in rows if m.startswith('GRID T4')]
    assert t4 == ['GRID T4-1Q', 'GRID T4-2Q', 'GRID T4-4Q', 'GRID T4-8Q',
                  'GRID T4-16Q']


def test_check_config(tmp_path):
    with server.Simulator() as sim:
        good = vgpu_cli(sim, tmp_path, 'check-config', extra=(
            'enabled_vgpu_types = GRID M60-4Q,GRID M60-4q\n'))
        bad = vgpu_cli(sim, tmp_path, 'check-config', extra=(
            'alias = {"name": "odd", "vgpu_type": "GRID K1", "size": 1}\n'))
    assert good.returncode == 1, good.stderr
    assert 'GRID M60-4q; did you mean GRID M60-4Q' in good.stderr
    assert bad.returncode == 2
    assert 'alias odd: size' in bad.stderr
    assert 'Traceback' not in bad.stderr


def test_plan_says_where_or_why_not(tmp_path):
    profile = server.profiles.load('m60')
    profile['groups']['M60']['allocation_algorithm'] = 'breadth_first'
    with server.Simulator(profile) as sim:
        xapi = login(sim.url).xenapi
        fits = vgpu_cli(sim, tmp_path, 'plan', '--flavor-spec',
                        'pci_passthrough:alias=m60-8q:1', '-f', 'json')
        for name in ('a', 'b'):
            vm = xapi.VM.create({'name_label': name,
                                 'HVM_boot_policy': 'BIOS'})
            types = {r['model_name']: ref for ref, r in
                     xapi.VGPU_type.get_all_records().items()}
            group = xapi.GPU_group.get_all()[0]
            host_uuid = xapi.host.get_uuid(xapi.host.get_all()[0])
            xapi.VGPU.create(vm, group, '0', {
                'nova_xenapi_vgpu_host': host_uuid,
                'nova_instance_uuid': name}, types['GRID M60-4Q'])
        refused = vgpu_cli(sim, tmp_path, 'plan', '--flavor-spec',
                           'pci_passthrough:alias=m60-8q:1', '-f', 'json')
        local = vgpu_cli(sim, tmp_path, 'plan', '--flavor-spec',
                         'pci_passthrough:alias=near:1', '--numa-node', '0')
        usage = vgpu_cli(sim, tmp_path, 'plan', '--flavor-spec',
                         'pci_passthrough:alias=nope:1')
    assert fits.returncode == 0, fits.stderr
    answer = json.loads(fits.stdout)
    assert answer['Fits'] is True
    assert len(answer['Expected pGPUs']) == 1
    assert answer['Expected pGPUs'][0] in ('0000:86:00.0', '0000:87:00.0')
    assert refused.returncode == 1
    reason = json.loads(refused.stdout)['Reason']
    assert 'breadth_first' in reason and '-> this request' in reason
    assert local.returncode == 1
    assert 'gpu-groups split' in local.stdout
    assert usage.returncode == 2 and 'nope' in usage.stderr


def test_gpu_groups_split_moves_idle_pgpus(tmp_path):
    with server.Simulator('pool') as sim:
        xapi = login(sim.url).xenapi
        group = xapi.GPU_group.get_all()[0]
        types = {r['model_name']: ref for ref, r in
                 xapi.VGPU_type.get_all_records().items()}
        vm = xapi.VM.create({'name_label': 'busy', 'HVM_boot_policy': 'B'})
        xapi.VGPU.create(vm, group, '0', {}, types['GRID M60-8Q'])
        master = xapi.host.get_by_name_label('xs-pool-01')[0]
        xapi.GPU_group.set_allocation_algorithm(group, 'breadth_first')
        xapi.VM.start_on(vm, master, False, False)
        proposal = vgpu_cli(sim, tmp_path, 'gpu-groups', 'split', '-f',
                            'json')
        applied = vgpu_cli(sim, tmp_path, 'gpu-groups', 'split', '--apply',
                           '-f', 'json')
        groups = {r['name_label']: r for r in
                  xapi.GPU_group.get_all_records().values()}
    assert proposal.returncode == 0, proposal.stderr
    actions = {r['pGPU']: r['Action'] for r in json.loads(proposal.stdout)}
    assert sorted(actions.values()).count('would move') + sorted(
        actions.values()).count('busy: not moved') == 2
    moved = {r['pGPU']: r for r in json.loads(applied.stdout)}
    assert {r['Action'] for r in moved.values()} <= {
        'stays', 'moved', 'busy: not moved'}
    new = [g for name, g in groups.items() if 'NUMA 1' in name]
    assert len(new) == 1
    assert new[0]['allocation_algorithm'] == 'breadth_first'
    moved_count = sum(r['Action'] == 'moved' for r in moved.values())
    assert len(new[0]['PGPUs']) == moved_count >= 1


@pytest.mark.parametrize('profile', ['m60', 'mixed', 'pool'])
def test_a_cold_pci_devices_run_is_a_handful_of_calls(profile):
    with server.Simulator(profile) as sim:
        result = run('--url', sim.url, 'pci-devices',
                     env={'XENAPI_PASSWORD': sim.password})
        calls = dict(sim.faults.calls)
    assert result.returncode == 0, result.stderr
    besides = {m: n for m, n in calls.items()
               if m not in ('session.login_with_password', 'session.logout')}
    # this host, the plugin's version and topology, one event.from
    assert besides == {'session.get_this_host': 1, 'host.call_plugin': 2,
                       'event.from': 1}


def test_demo_tells_the_story():
    result = run('demo', timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'refused: vGPU claim refused: XAPI would not honour' in out
    assert 'now runs on demo-02' in out
    assert out.rstrip().endswith('Inventory back where it began: True')


def test_attach_detach_and_migrate(tmp_path):
    with server.Simulator('pool') as sim:
        xapi = login(sim.url).xenapi
        vm = xapi.VM.create({'name_label': 'cli', 'HVM_boot_policy': 'B'})
        uuid = xapi.VM.get_uuid(vm)

        def cli(*args):
            return vgpu_cli(sim, tmp_path, *args)
        assert cli('attach', '--vm', uuid, '--alias', 'nope:1'
                   ).returncode == 2
        assert cli('attach', '--vm', uuid, '--alias', 'm60-8q:0'
                   ).returncode == 2
        attached = cli('attach', '--vm', uuid, '--alias', 'm60-8q:1')
        assert attached.returncode == 0, attached.stderr
        assert len(xapi.VM.get_VGPUs(vm)) == 1
        master = xapi.host.get_by_name_label('xs-pool-01')[0]
        xapi.VM.start_on(vm, master, False, False)
        running = cli('detach', '--vm', uuid)
        assert running.returncode == 1 and 'stop it first' in running.stderr
        dry = cli('migrate', '--vm', uuid, '--host', 'xs-pool-02', '--live',
                  '--dry-run')
        assert dry.returncode == 0, dry.stderr
        assert xapi.VM.get_resident_on(vm) == master
        moved = cli('migrate', '--vm', uuid, '--host', 'xs-pool-02',
                    '--live')
        assert moved.returncode == 0, moved.stderr
        assert xapi.host.get_name_label(xapi.VM.get_resident_on(vm)) == (
            'xs-pool-02')
        xapi.VM.hard_shutdown(vm)
        cold = cli('migrate', '--vm', uuid, '--host', 'xs-pool-03')
        assert cold.returncode == 0, cold.stderr
        (vgpu,) = xapi.VM.get_VGPUs(vm)
        host3 = xapi.host.get_by_name_label('xs-pool-03')[0]
        assert xapi.VGPU.get_other_config(vgpu)[
            'nova_xenapi_vgpu_host'] == xapi.host.get_uuid(host3)
        gone = cli('detach', '--vm', uuid)
        assert gone.returncode == 0 and xapi.VM.get_VGPUs(vm) == []


def test_reap_orphans_is_a_dry_run_by_default(tmp_path):
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        host = xapi.host.get_all()[0]
        group = xapi.GPU_group.get_all()[0]
        t4q = [r for r, t in xapi.VGPU_type.get_all_records().items()
               if t['model_name'] == 'GRID M60-4Q'][0]
        for name in ('known', 'ghost'):
            vm = xapi.VM.create({'name_label': name,
                                 'HVM_boot_policy': 'B'})
            xapi.VGPU.create(vm, group, '0', {
                'nova_xenapi_vgpu_host': xapi.host.get_uuid(host),
                'nova_instance_uuid': name}, t4q)
        known = tmp_path / 'known.txt'
        known.write_text('known\n')
        dry = vgpu_cli(sim, tmp_path, 'reap-orphans', '--known-instances',
                       str(known), '-f', 'json')
        assert len(xapi.VGPU.get_all()) == 2
        applied = vgpu_cli(sim, tmp_path, 'reap-orphans',
                           '--known-instances', str(known), '--apply', '-f',
                           'json')
        left = [xapi.VGPU.get_other_config(v)['nova_instance_uuid']
                for v in xapi.VGPU.get_all()]
    assert [(r['Instance'], r['Action']) for r in json.loads(dry.stdout)] == [
        ('ghost', 'would destroy')]
    assert [(r['Instance'], r['Action'])
            for r in json.loads(applied.stdout)] == [('ghost', 'destroyed')]
    assert left == ['known']
