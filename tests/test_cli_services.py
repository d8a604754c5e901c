"""Refusals that name their cause: XAPI logins, Placement credentials
and errors, missing extras; a quiet Placement server (a subprocess)."""

import os
import subprocess
import sys

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.test_cli import run

MAIN = [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main']


@pytest.fixture(scope='module')
def sim():
    with server.Simulator('m60') as simulator:
        yield simulator


def test_a_login_without_a_password_says_which_setting(sim):
    result = run('--url', sim.url, 'inventory')
    assert result.returncode == 2
    assert 'SESSION_AUTHENTICATION_FAILED' in result.stderr
    assert 'no password was given' in result.stderr
    for setting in ('connection_password', 'XENAPI_PASSWORD',
                    '--password'):
        assert setting in result.stderr


@pytest.mark.parametrize('where', ['env', 'conf'])
def test_a_wrong_password_names_where_it_came_from(sim, tmp_path, where):
    secret = 'Wrong-distinctive-77'
    if where == 'env':
        result = run('--url', sim.url, 'types',
                     env={'XENAPI_PASSWORD': secret})
        source = '--password or XENAPI_PASSWORD'
    else:
        conf = tmp_path / 'nova.conf'
        conf.write_text('[xenserver]\nconnection_url = %s\n'
                        'connection_password = %s\n' % (sim.url, secret))
        result = run('--config-file', str(conf), 'types')
        source = '[xenserver] connection_password in %s' % conf
    assert result.returncode == 2
    assert 'refused the login of root' in result.stderr
    assert 'no password was given' not in result.stderr
    assert source in result.stderr
    assert secret not in result.stderr + result.stdout


@pytest.fixture(scope='module')
def placement(tmp_path_factory):
    # A process of its own: Placement's database layer is set up once
    # per process, and other tests hold that of this one.
    proc = subprocess.Popen(
        MAIN + ['placement', 'serve', '--db', str(
            tmp_path_factory.mktemp('placement') / 'p.db')],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sync(sim, *args, env=None):
    return run('--url', sim.url, 'placement', 'sync', *args,
               env=dict(env or {}, XENAPI_PASSWORD=sim.password))


def test_placement_sync_names_the_keystone_options(sim, placement):
    none = sync(sim, '--placement-url', placement)
    password = sync(sim, '--placement-url', placement, '--os-auth-type',
                    'password')
    assert none.returncode == 2
    assert '--os-token' in none.stderr and '--os-auth-type' in none.stderr
    assert 'No valid authentication' not in none.stderr
    assert password.returncode == 2
    assert '--os-auth-type password needs --os-auth-url' in password.stderr


def test_placement_refusals_are_placements_own_words(sim, placement):
    result = sync(sim, '--placement-url', placement, '--os-token', 'user')
    assert result.returncode == 1
    assert 'HTTP 403 Forbidden: Access was denied' in result.stderr
    assert '{"errors"' not in result.stderr


@pytest.mark.parametrize('module, extra, args', [
    ('keystoneauth1', 'placement', ['placement', 'sync', '--os-token', 'a',
                                    '--placement-url', 'http://x/']),
    ('nova', 'nova', ['placement', 'sync', '--os-token', 'a',
                      '--placement-url', 'http://x/']),
    ('placement', 'nova', ['placement', 'serve']),
])
def test_a_missing_extra_is_named(tmp_path, module, extra, args):
    # An installation without the package: its import fails as it would.
    shadow = tmp_path / module
    shadow.mkdir()
    (shadow / '__init__.py').write_text(
        'raise ImportError("No module named %r")\n' % module)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run(MAIN + ['--simulator', *args],
                            capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert "needs the '%s' extra" % extra in result.stderr
    assert "nova-xenapi-vgpu[%s]" % extra in result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('verbose', [False, True])
def test_placement_serve_is_quiet_unless_asked(tmp_path, verbose):
    proc = subprocess.Popen(
        MAIN + (['-v'] if verbose else []) + [
            'placement', 'serve', '--db', str(tmp_path / 'p.db')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert url.startswith('http://127.0.0.1:')
    if verbose:
        assert 'Running upgrade' in stderr
    else:
        assert stderr == ''
