"""Shared fixtures: simulators on loopback and XenAPI sessions to them."""

import os

import pytest
import trustme
import XenAPI

from nova_xenapi_vgpu.simulator import server
from tests import novashim

REAL_XAPI = {name: os.environ.get(name)
             for name in ('XAPI_URL', 'XAPI_USERNAME', 'XAPI_PASSWORD')}
ON_REAL_XAPI = all(REAL_XAPI.values())


@pytest.fixture
def sim():
    """The default (mixed) profile, served on a free loopback port."""
    with server.Simulator() as simulator:
        yield simulator


@pytest.fixture
def m60_sim():
    """One host with one Tesla M60 board."""
    with server.Simulator('m60') as simulator:
        yield simulator


@pytest.fixture
def pool_sim():
    """A master and two members, one GPU group spanning them."""
    with server.Simulator('pool') as simulator:
        yield simulator


@pytest.fixture(scope='module')
def tls_files(tmp_path_factory):
    """A CA and a certificate it signed for 127.0.0.1: PEM paths."""
    ca = trustme.CA()
    cert = ca.issue_cert('127.0.0.1', 'localhost')
    folder = tmp_path_factory.mktemp('tls')
    paths = {name: str(folder / name)
             for name in ('ca.pem', 'cert.pem', 'key.pem')}
    ca.cert_pem.write_to_path(paths['ca.pem'])
    cert.cert_chain_pems[0].write_to_path(paths['cert.pem'])
    cert.private_key_pem.write_to_path(paths['key.pem'])
    return paths


@pytest.fixture
def tls_sim(tls_files):
    """The m60 profile served over HTTPS with that certificate."""
    with server.Simulator('m60', tls_cert=tls_files['cert.pem'],
                          tls_key=tls_files['key.pem']) as sim:
        yield sim


def login(url, username='root', password='xenroot'):
    """A plain XenAPI SDK session."""
    session = XenAPI.Session(url)
    session.login_with_password(username, password, '1.0', 'tests')
    return session


@pytest.fixture
def xapi(sim):
    """``session.xenapi`` of a plain SDK session to ``sim``."""
    session = login(sim.url)
    yield session.xenapi
    session.xenapi.session.logout()


def failure(call, *args):
    """The ErrorDescription of a call that must fail."""
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return info.value.details


novashim.find_driver_shim()
FUNCTIONAL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'functional')


def pytest_ignore_collect(collection_path, config):
    """Nova's functional tests eventlet-patch the process that imports
    them (nova/tests/functional/__init__.py), which would block this
    suite's in-process simulators: ``tests/test_functional.py`` runs them
    in a process of their own; naming them on the command line runs them
    here."""
    if str(collection_path) != FUNCTIONAL:
        return None
    asked = [os.path.abspath(str(a).split('::')[0]) for a in config.args]
    return not any(a == FUNCTIONAL or a.startswith(FUNCTIONAL + os.sep)
                   for a in asked)
