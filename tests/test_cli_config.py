"""An operator's configuration: nova.conf, --config-dir, the default
files, and no simulator nobody asked for (a subprocess, as run)."""

import socket

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import login
from tests.test_cli import run

NOVA_CONF = '''[DEFAULT]
debug = true
my_ip = 10.0.0.1
transport_url = rabbit://guest:guest@rabbit/
[pci]
alias = {"name": "nic", "vendor_id": "8086", "product_id": "1572"}
[libvirt]
virt_type = kvm
[xenserver]
connection_url = %s
[vgpu]
enabled_vgpu_types = GRID M60-4Q
'''


def home_with(tmp_path, files):
    """A home directory holding ``{relative path: text}``."""
    home = tmp_path / 'home'
    for name, text in files.items():
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {'HOME': str(home)}


def test_nova_conf_is_read_without_warnings_for_other_sections(tmp_path):
    conf = tmp_path / 'nova.conf'
    with server.Simulator('m60') as sim:
        conf.write_text(NOVA_CONF % sim.url)
        result = run('--config-file', str(conf), 'types', '-f', 'value',
                     '-c', 'Model', env={'XENAPI_PASSWORD': sim.password})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[0] == 'GRID M60-4Q'
    assert 'is not an option' not in result.stderr
    # Nova's own [pci] alias: said once, with where vGPU aliases go.
    assert result.stderr.count("[pci] alias") == 1
    assert '[vgpu] alias' in result.stderr


def test_config_dir_is_read_as_oslo_config_reads_it(tmp_path):
    with server.Simulator('m60') as sim:
        conf = tmp_path / 'nova.conf'
        conf.write_text('[vgpu]\nenabled_vgpu_types = GRID M60-8Q\n')
        confd = tmp_path / 'nova.conf.d'
        confd.mkdir()
        (confd / '10-xenserver.conf').write_text(
            '[xenserver]\nconnection_url = %s\nconection_password = x\n'
            % sim.url)
        (confd / 'README').write_text('not read')
        result = run('--config-file', str(conf), '--config-dir', str(confd),
                     'types', '-f', 'value', '-c', 'Model',
                     env={'XENAPI_PASSWORD': sim.password})
        missing = run('--config-dir', str(tmp_path / 'nope'), 'types')
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['GRID', 'M60-8Q']
    assert '10-xenserver.conf: [xenserver] conection_password' in (
        result.stderr)
    assert missing.returncode == 2
    assert '--config-dir' in missing.stderr and 'no such directory' in (
        missing.stderr)


def test_nova_conf_is_found_where_nova_manage_finds_it(tmp_path):
    with server.Simulator('m60') as sim:
        env = home_with(tmp_path, {
            '.nova/nova.conf': '[vgpu]\nenabled_vgpu_types = GRID M60-2Q\n',
            '.nova/nova.conf.d/xs.conf': '[xenserver]\nconnection_url = %s\n'
                                         % sim.url})
        env['XENAPI_PASSWORD'] = sim.password
        result = run('types', '-f', 'value', '-c', 'Model', env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['GRID', 'M60-2Q']
    assert 'simulator' not in result.stderr


def test_a_found_nova_conf_without_a_url_is_no_licence_to_simulate(
        tmp_path):
    env = home_with(tmp_path, {'.nova/nova.conf': '[DEFAULT]\ndebug = 1\n'})
    result = run('inventory', env=env)
    assert result.returncode == 2
    assert 'connection_url is not set in' in result.stderr
    assert '.nova/nova.conf' in result.stderr
    assert '--simulator' in result.stderr


@pytest.mark.parametrize('args', [
    ['attach', '--vm', 'x', '--alias', 'a:1'],
    ['detach', '--vm', 'x'],
    ['migrate', '--vm', 'x', '--host', 'y'],
    ['reap-orphans', '--apply'],
    ['gpu-groups', 'split', '--apply'],
])
def test_writing_commands_never_run_on_a_silent_simulator(tmp_path, args):
    result = run(*args, env=home_with(tmp_path, {}))
    assert result.returncode == 2, result.stderr
    assert 'no XenServer configured' in result.stderr
    for words in ('--config-file', '--url', '--simulator [PROFILE]'):
        assert words in result.stderr
    assert 'Using the built-in XAPI simulator' not in result.stderr


def test_read_only_commands_keep_the_simulator_and_say_so(tmp_path):
    env = home_with(tmp_path, {})
    reading = run('reap-orphans', '-f', 'value', env=env)
    asked = run('--simulator', 'pool', 'gpu-groups', 'split', '--apply',
                '-f', 'value', '-c', 'Action', env=env)
    wrong = run('--simulator', 'nope', 'types', env=env)
    default = run('--simulator', '--timeout', '20', 'types', '-f', 'value',
                  '-c', 'Model', env=env)
    assert reading.returncode == 0, reading.stderr
    assert 'no XenServer configured' in reading.stderr
    assert asked.returncode == 0, asked.stderr
    assert 'profile pool' in asked.stderr and '--simulator' in asked.stderr
    assert 'moved' in asked.stdout.split()
    assert wrong.returncode == 2 and "'nope'" in wrong.stderr
    assert 'not a built-in profile' in wrong.stderr
    assert default.returncode == 0, default.stderr
    assert 'profile mixed' in default.stderr


def test_demo_keeps_its_own_simulator(tmp_path):
    result = run('demo', env=home_with(tmp_path, {}), timeout=120)
    assert result.returncode == 0, result.stderr


def test_writing_commands_run_against_a_named_simulator(tmp_path):
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        vm = xapi.VM.create({'name_label': 'w', 'HVM_boot_policy': 'B'})
        result = run('--url', sim.url, 'detach', '--vm',
                     xapi.VM.get_uuid(vm), env={
                         'XENAPI_PASSWORD': sim.password})
    assert 'no XenServer configured' not in result.stderr
    assert 'simulator' not in result.stderr


def test_timeout_bounds_a_hung_xapi(tmp_path):
    hung = socket.socket()
    hung.bind(('127.0.0.1', 0))
    hung.listen(8)  # accepts connections, never answers
    try:
        result = run('--url', 'http://127.0.0.1:%d/' % hung.getsockname()[1],
                     '--timeout', '0.5', 'inventory',
                     env={'XENAPI_PASSWORD': 'x'}, timeout=20)
        bad = run('--timeout', 'soon', 'inventory')
    finally:
        hung.close()
    assert result.returncode == 1
    assert '1 attempt(s)' in result.stderr
    assert bad.returncode == 2 and '--timeout' in bad.stderr


def test_an_unreadable_nova_conf_found_by_default_is_named(tmp_path):
    env = home_with(tmp_path, {'.nova/nova.conf': '[DEFAULT]\n'})
    (tmp_path / 'home' / '.nova' / 'nova.conf').write_bytes(b'\x00\x01')
    result = run('types', env=env)
    assert result.returncode == 2
    assert '.nova/nova.conf' in result.stderr
    assert 'read by default' in result.stderr
    assert '--config-file' in result.stderr and 'Traceback' not in (
        result.stderr)
