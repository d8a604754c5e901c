"""Fault injection, counters and session expiry of the simulator."""

import http.client
import time
import xmlrpc.client

import pytest
import XenAPI

from tests.conftest import failure
from tests.conftest import login


def test_call_counters(sim, xapi):
    sim.faults.calls.clear()
    xapi.PGPU.get_all()
    xapi.PGPU.get_all()
    xapi.GPU_group_get_all()
    assert sim.faults.calls['PGPU.get_all'] == 2
    assert sim.faults.calls['GPU_group.get_all'] == 1


def test_fail_nth_call(sim, xapi):
    sim.faults.fail_call('PGPU.get_all', 2, 'INTERNAL_ERROR', 'injected')
    xapi.PGPU.get_all()
    assert failure(xapi.PGPU.get_all) == ['INTERNAL_ERROR', 'injected']
    assert xapi.PGPU.get_all()


def test_drop_connection(sim, xapi):
    # xmlrpc.client silently retries once on a reused connection.
    sim.faults.drop_connection('host.get_all', times=2)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        xapi.host.get_all()
    assert xapi.host.get_all()


def test_latency(sim, xapi):
    sim.faults.latency_ms = 150
    start = time.monotonic()
    xapi.host.get_all()
    assert time.monotonic() - start >= 0.15


def test_expired_sessions(sim):
    session = login(sim.url)
    handle = session.handle
    sim.expire_sessions()
    proxy = xmlrpc.client.ServerProxy(sim.url)
    assert proxy.host.get_all(handle)['ErrorDescription'] == [
        'SESSION_INVALID', handle]
    # The SDK logs in again by itself and retries.
    assert session.xenapi.host.get_all()
    assert session.handle != handle


def test_logout_ends_the_session(sim):
    session = login(sim.url)
    handle = session.handle
    session.xenapi.session.logout()
    proxy = xmlrpc.client.ServerProxy(sim.url)
    assert proxy.host.get_all(handle)['ErrorDescription'][0] == (
        'SESSION_INVALID')


def test_unknown_path_is_404(sim):
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        xmlrpc.client.ServerProxy(sim.url + 'nope').host.get_all('x')
    assert info.value.errcode == 404


def test_session_login_with_bad_user(sim):
    session = XenAPI.Session(sim.url)
    assert failure(session.login_with_password, 'admin', 'xenroot', '1.0',
                   't') == ['SESSION_AUTHENTICATION_FAILED', 'admin',
                            'Authentication failure']


def test_bad_parameter_types_fail_unmarshalling(xapi):
    # A <string> where xapi's datamodel wants a <struct>: refused before
    # the call runs, as xapi's unmarshalling does.
    vm = xapi.VM.create({'name_label': 'x'})
    group = xapi.GPU_group.get_all()[0]
    vgpu_type = xapi.VGPU_type.get_all()[0]
    details = failure(xapi.VGPU.create, vm, group, '0', 'not-a-map',
                      vgpu_type)
    assert details == ['XMLRPC_UNMARSHAL_FAILURE', 'string map',
                       "'not-a-map'"]
    assert xapi.VM.get_VGPUs(vm) == []


def test_port_in_use_is_a_clear_error(sim):
    from nova_xenapi_vgpu.simulator import server
    with pytest.raises(OSError):
        server.Simulator('m60', port=sim.port).start()
