"""The session pool's login, redirect, retry and logout paths, branch by
branch, against the simulator over real XML-RPC with the XenAPI SDK."""

import http.client
import logging
import socket
import ssl
import threading
import xmlrpc.client

import pytest
from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.test_xapi_client import FakeClock
from tests.test_xapi_client import client_for
from tests.test_xapi_client import run_threads

LOGIN = 'session.login_with_password'


def slave_replies(sim, method, *masters):
    """The next calls of ``method`` answer HOST_IS_SLAVE naming each of
    ``masters`` in turn, as members do while a pool changes master."""
    for nth, master in enumerate(masters, 1):
        sim.faults.fail_call(method, nth, 'HOST_IS_SLAVE', master)


def test_a_call_answered_host_is_slave_is_made_again(pool_sim):
    with client_for(pool_sim) as client:
        slave_replies(pool_sim, 'host.get_all', '127.0.0.1', '127.0.0.1')
        assert len(client.call('host.get_all')) == 3
    assert pool_sim.faults.calls['host.get_all'] == 3
    # The session a HOST_IS_SLAVE came on is dropped, never reused.
    assert pool_sim.faults.calls[LOGIN] == 3


def test_a_call_that_keeps_answering_host_is_slave(pool_sim):
    with client_for(pool_sim) as client:
        slave_replies(pool_sim, 'host.get_all', *['127.0.0.1'] * 3)
        with pytest.raises(exception.HostIsSlave) as info:
            client.call('host.get_all')
        assert pool_sim.faults.calls['host.get_all'] == 3
        assert len(client.call('host.get_all')) == 3
    assert (info.value.code, info.value.params) == (
        'HOST_IS_SLAVE', ['127.0.0.1'])


def test_a_login_sent_round_the_pool_gives_up(pool_sim):
    client = client_for(pool_sim)
    slave_replies(pool_sim, LOGIN, '127.0.0.2', '127.0.0.3', '127.0.0.1')
    with pytest.raises(exception.XapiUnreachable) as info:
        client.call('host.get_all')
    assert str(info.value) == (
        'Cannot reach XAPI at %s after 3 attempt(s) calling '
        'session.login_with_password: HOST_IS_SLAVE kept pointing '
        'elsewhere' % pool_sim.url)
    assert pool_sim.faults.calls[LOGIN] == 3
    assert pool_sim.faults.calls['host.get_all'] == 0
    assert pool_sim.api.sessions == {}


def test_a_login_redirected_twice_gets_in(pool_sim):
    with client_for(pool_sim) as client:
        slave_replies(pool_sim, LOGIN, '127.0.0.2', '127.0.0.1')
        assert len(client.call('host.get_all')) == 3
        assert client.target_url == pool_sim.url
    assert pool_sim.faults.calls[LOGIN] == 3


def test_idle_sessions_follow_a_moved_master_at_once(pool_sim):
    xapi = login(pool_sim.url).xenapi
    member = xapi.host.get_by_name_label('xs-pool-02')[0]
    pool_sim.faults.latency_ms = 100  # three calls overlap: three sessions
    with client_for(pool_sim, pool_size=3) as client:
        run_threads(3, lambda: client.call('host.get_all'))
        pool_sim.faults.latency_ms = 0
        logins = pool_sim.faults.calls[LOGIN]
        pool_sim.api.designate_new_master(member)
        for _ in range(3):
            assert client.call('host.get_all')
        assert client.target_url == pool_sim.urls[1]
        # One refused login at the old master (the SDK's, on the expired
        # session), one at the new; the other two idle sessions were
        # logged out at once instead of each trying the old master.
        assert pool_sim.faults.calls[LOGIN] == logins + 2
        assert pool_sim.faults.calls['session.logout'] == 2


def test_a_session_lent_across_close_is_logged_out(sim):
    client = client_for(sim)
    client.call('host.get_all')
    client.close()
    assert sim.api.sessions == {}
    assert client.call('host.get_all')
    assert sim.api.sessions == {}


def test_a_session_is_kept_after_an_xapi_error(sim):
    with client_for(sim) as client:
        with pytest.raises(exception.HandleInvalid):
            client.call('PGPU.get_record', 'OpaqueRef:nope')
        assert client.call('host.get_all')
    assert sim.faults.calls[LOGIN] == 1


def test_an_event_wait_is_bounded_by_the_call_timeout(sim):
    with client_for(sim, timeout=0.3, retries=0) as client:
        token = client.event_from(['vm'], '', 0.0)['token']
        sim.faults.latency_ms = 2000
        with pytest.raises(exception.XapiUnreachable) as info:
            client.event_from(['vm'], token, 0.2)
        sim.faults.latency_ms = 0
    assert 'no answer in time' in str(info.value)
    assert 'calling event.from' in str(info.value)


def test_close_gives_up_on_a_hung_xapi(sim):
    client = client_for(sim, connect_timeout=0.2)
    client.call('host.get_all')
    sim.faults.latency_ms = 3000
    client.close()
    # close() returned while XAPI still sat on the logout.
    assert len(sim.api.sessions) == 1


def test_a_slow_login_is_bounded_by_the_connect_timeout(sim):
    sim.faults.latency_ms = 1000
    clock = FakeClock()
    client = client_for(sim, connect_timeout=0.2, retries=1, sleep=clock)
    with pytest.raises(exception.XapiUnreachable) as info:
        client.call('host.get_all')
    assert str(info.value).startswith(
        'Cannot reach XAPI at %s after 2 attempt(s) calling %s: no answer '
        'in time' % (sim.url, LOGIN))
    assert clock.delays == [0.01]


def conf_for(url, **settings):
    conf = cfg.ConfigOpts()
    conflib.register_opts(conf)
    conf(args=[])
    settings.update(connection_url=url, connection_username='root',
                    connection_password='xenroot')
    for name, value in settings.items():
        conf.set_override(name, value, 'xenserver')
    return conf


@pytest.mark.parametrize('settings', [
    {'ca_file': 'ca.pem'}, {'insecure': True}])
def test_the_tls_options_reach_the_client(tls_sim, tls_files, settings):
    settings = {k: tls_files[v] if k == 'ca_file' else v
                for k, v in settings.items()}
    conf = conf_for(tls_sim.url, **settings)
    with sessionlib.XapiClient.from_conf(conf) as client:
        assert client.call('host.get_all')
    with pytest.raises(exception.XapiTlsError):
        sessionlib.XapiClient.from_conf(conf_for(tls_sim.url)).call(
            'host.get_all')


def xmlrpc_login(connection):
    """A login sent over ``connection``: XAPI's reply envelope."""
    body = xmlrpc.client.dumps(('root', 'xenroot'), LOGIN)
    connection.request('POST', '/', body, {'Content-Type': 'text/xml'})
    reply = connection.getresponse()
    assert reply.status == 200
    return xmlrpc.client.loads(reply.read())[0][0]


def test_an_http_connection_to_a_pool_host(pool_sim):
    client = client_for(pool_sim, timeout=7.0)
    connection = client.http_connection('127.0.0.3')
    assert isinstance(connection, http.client.HTTPConnection)
    assert connection.timeout == 7.0
    assert client.http_connection('127.0.0.3', timeout=2.0).timeout == 2.0
    try:
        # It reached the member at that address, on the URL's port.
        assert xmlrpc_login(connection)['ErrorDescription'] == [
            'HOST_IS_SLAVE', '127.0.0.1']
    finally:
        connection.close()


def test_an_https_connection_is_verified(tls_sim, tls_files):
    trusted = client_for(tls_sim, ca_file=tls_files['ca.pem'], timeout=7.0)
    connection = trusted.http_connection('127.0.0.1')
    assert isinstance(connection, http.client.HTTPSConnection)
    assert connection.timeout == 7.0
    assert trusted.http_connection('127.0.0.1', timeout=2.0).timeout == 2.0
    try:
        assert xmlrpc_login(connection)['Status'] == 'Success'
    finally:
        connection.close()
    untrusted = client_for(tls_sim).http_connection('127.0.0.1')
    with pytest.raises(ssl.SSLCertVerificationError):
        xmlrpc_login(untrusted)


@pytest.mark.parametrize('url, port', [
    ('http://h/', 80), ('https://h/', 443), ('HTTPS://h:8443/x', 8443),
    ('http://[::1]:8080/', 8080)])
def test_the_port_of_a_url(url, port):
    assert sessionlib.port_of(url) == port


def test_http_to_an_https_server_away_from_localhost(tls_files):
    with server.Simulator('m60', listen_host='127.0.0.5',
                          tls_cert=tls_files['cert.pem'],
                          tls_key=tls_files['key.pem']) as sim:
        clock = FakeClock()
        url = sim.url.replace('https:', 'http:')
        client = sessionlib.XapiClient(url, 'root', 'xenroot', sleep=clock)
        with pytest.raises(exception.XapiTlsError) as info:
            client.call('host.get_all')
    assert 'the server speaks HTTPS' in str(info.value)
    assert clock.delays == []


class _StallingServer:
    """Drops every plain HTTP request; answers no TLS handshake."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(8)
        self.url = 'http://127.0.0.1:%d/' % self.listener.getsockname()[1]
        self.held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if sock.recv(4096).startswith(b'POST'):
                sock.close()
            else:
                self.held.append(sock)

    def close(self):
        self.listener.close()
        for sock in self.held:
            sock.close()


def test_a_server_that_drops_http_and_stalls_tls():
    stalling = _StallingServer()
    try:
        client = sessionlib.XapiClient(
            stalling.url, 'root', 'x', connect_timeout=0.2, retries=1,
            sleep=FakeClock())
        with pytest.raises(exception.XapiUnreachable) as info:
            client.call('host.get_all')
    finally:
        stalling.close()
    assert type(info.value) is exception.XapiUnreachable
    assert '2 attempt(s)' in str(info.value)
    assert 'RemoteDisconnected' in str(info.value)


def test_a_timeout_without_words_says_timed_out():
    assert sessionlib._describe(TimeoutError()) == (
        'no answer in time (timed out)')


def test_the_client_names_itself_at_login(sim):
    xapi = login(sim.url).xenapi
    with client_for(sim) as client, client.lend_handle() as handle:
        assert xapi.session.get_originator(handle) == 'nova-xenapi-vgpu'


def test_a_url_that_is_not_xapi(sim):
    url = sim.url + 'not-xapi'
    client = sessionlib.XapiClient(url, 'root', 'xenroot',
                                   sleep=FakeClock())
    with pytest.raises(exception.XapiUnreachable) as info:
        client.call('host.get_all')
    assert str(info.value) == (
        'Cannot reach XAPI at %s after 1 attempt(s) calling %s: HTTP 404 '
        'Not Found: is this XAPI?' % (url, LOGIN))


def test_only_an_insecure_https_client_warns(tls_sim, tls_files, caplog):
    caplog.set_level(logging.WARNING)
    sessionlib._insecure_warned.clear()
    with client_for(tls_sim, ca_file=tls_files['ca.pem']) as client:
        assert client.call('host.get_all')
    sessionlib.XapiClient('http://xapi.example/', 'root', 'x',
                          insecure=True)
    assert 'verification is disabled' not in caplog.text
    with client_for(tls_sim, insecure=True) as client:
        assert client.call('host.get_all')
    assert ('TLS certificate verification is disabled for %s' % tls_sim.url
            in caplog.text)


def test_failures_name_the_url_called(sim, tls_sim):
    with client_for(sim) as client:
        sim.faults.lose_reply('VM.create')
        with pytest.raises(exception.XapiOutcomeUnknown) as lost:
            client.call('VM.create', {'name_label': 'x'})
    assert str(lost.value).startswith(
        'XAPI at %s did not answer VM.create' % sim.url)
    with pytest.raises(exception.XapiTlsError) as tls:
        client_for(tls_sim).call('host.get_all')
    assert str(tls.value).startswith(
        'TLS with XAPI at %s failed: untrusted certificate' % tls_sim.url)
