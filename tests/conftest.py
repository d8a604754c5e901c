"""Shared fixtures: simulators on loopback and XenAPI sessions to them."""

import os

import pytest
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
