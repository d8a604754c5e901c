"""The command line, run as operators run it: a subprocess."""

import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import login

SECRET = 'Cli-distinctive-s3cret-77'


def run(*args, env=None, timeout=60):
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith('XENAPI_')}
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
    result = run('inventory', '-f', 'json')
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
                                                   'required']),
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


def test_xapi_failure_exits_1_with_the_code_and_no_secret():
    with server.Simulator('m60') as sim:
        result = run('--url', sim.url, '--debug', '-v', '-v', 'inventory',
                     env={'XENAPI_PASSWORD': SECRET})
    assert result.returncode == 1
    assert 'SESSION_AUTHENTICATION_FAILED' in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_password_flag_never_printed_at_debug():
    with server.Simulator('m60', password=SECRET) as sim:
        result = run('--url', sim.url, '--password', SECRET, '--debug',
                     '-v', '-v', 'inventory', '-f', 'value')
    assert result.returncode == 0, result.stderr
    assert 'GRID M60-8Q' in result.stdout
    assert SECRET not in result.stderr + result.stdout


def test_unreachable_xapi_exits_1():
    result = run('--url', 'http://127.0.0.1:9/', 'inventory',
                 env={'XENAPI_PASSWORD': 'x'}, timeout=120)
    assert result.returncode == 1
    assert 'Cannot reach XAPI' in result.stderr


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


def test_simulator_command_serves_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'simulator',
         '--profile', 'pool', '--password', 'pw', '--fail',
         'PGPU.get_all:1:INTERNAL_ERROR:boom'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    assert proc.returncode == 0


def test_simulator_command_expires_sessions():
    proc = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'simulator',
         '--profile', 'm60', '--expire-sessions-every', '0.2'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
