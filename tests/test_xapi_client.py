"""The XAPI client layer against the simulator over real XML-RPC."""

import logging
import socket
import threading
import time

import pytest
import trustme

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session as sessionlib

SECRET = 'Xy9-distinctive-p4ssw0rd-Qz'


def client_for(sim, **kwargs):
    kwargs.setdefault('retry_interval', 0.01)
    return sessionlib.XapiClient(sim.url, sim.username, sim.password,
                                 **kwargs)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_calls_return_xapi_values(sim):
    with client_for(sim) as client:
        assert len(client.call('PGPU.get_all')) == 5


def test_failures_keep_code_and_params(sim):
    ref = 'OpaqueRef:nope'
    with client_for(sim) as client:
        with pytest.raises(exception.HandleInvalid) as info:
            client.call('PGPU.get_record', ref)
    assert info.value.code == 'HANDLE_INVALID'
    assert info.value.params == ['PGPU', ref]
    assert 'HANDLE_INVALID' in str(info.value)


def test_bad_credentials(sim):
    client = sessionlib.XapiClient(sim.url, 'root', SECRET)
    with pytest.raises(exception.AuthenticationFailed) as info:
        client.call('host.get_all')
    assert info.value.details[:2] == ['SESSION_AUTHENTICATION_FAILED',
                                      'root']
    assert SECRET not in str(info.value) + repr(info.value) + repr(client)


def test_host_is_slave_redirects_to_master(pool_sim):
    member_url = pool_sim.urls[2]
    client = sessionlib.XapiClient(member_url, 'root', 'xenroot')
    with client:
        hosts = client.call('host.get_all_records')
        assert client.master_url == pool_sim.url
        member = identity.resolve_host(client)
    assert hosts[member]['address'] == '127.0.0.3'


def test_this_host_without_redirect(pool_sim):
    with sessionlib.XapiClient(pool_sim.url, 'root', 'xenroot') as client:
        master = identity.resolve_host(client)
        assert client.call('host.get_address', master) == '127.0.0.1'
        uuid = client.call('host.get_uuid', master)
        assert identity.resolve_host(client, uuid) == master


def test_session_invalid_recovers_for_pooled_sessions(sim):
    with client_for(sim, pool_size=3) as client:
        _use_sessions_in_parallel(client, 3)
        sim.expire_sessions()
        _use_sessions_in_parallel(client, 3)
    assert sim.faults.calls['session.login_with_password'] == 6


def _use_sessions_in_parallel(client, count):
    barrier = threading.Barrier(count)
    errors = []

    def work():
        try:
            with client._session() as session:
                barrier.wait(5)
                client._request(session, 'host.get_all', ())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []


def test_pool_is_bounded_and_shared_between_threads(sim):
    with client_for(sim, pool_size=2) as client:
        threads = [threading.Thread(
            target=lambda: [client.call('PGPU.get_all') for _ in range(5)])
            for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    assert sim.faults.calls['PGPU.get_all'] == 40
    assert sim.faults.calls['session.login_with_password'] <= 2


def test_close_logs_out(sim):
    client = client_for(sim)
    client.call('host.get_all')
    assert len(sim.api.sessions) == 1
    client.close()
    assert sim.api.sessions == {}


def test_connection_refused_is_retried_then_one_error():
    url = 'http://127.0.0.1:%d/' % free_port()
    client = sessionlib.XapiClient(url, 'root', SECRET, retries=3,
                                   retry_interval=0.05)
    start = time.monotonic()
    with pytest.raises(exception.XapiConnectionError) as info:
        client.call('host.get_all')
    elapsed = time.monotonic() - start
    assert '4 attempt(s)' in str(info.value)
    assert 'ConnectionRefusedError' in str(info.value)
    assert 0.05 + 0.1 + 0.2 <= elapsed < 5
    assert SECRET not in str(info.value)


def test_reset_retried_for_reads_only(sim):
    with client_for(sim) as client:
        client.call('host.get_all')
        sim.faults.drop_connection('host.get_all', times=3)
        assert client.call('host.get_all')
        sim.faults.drop_connection('VM.create', times=2)
        with pytest.raises(exception.XapiConnectionError) as info:
            client.call('VM.create', {'name_label': 'x'})
    assert '1 attempt(s)' in str(info.value)
    assert sim.faults.calls['VM.create'] == 2


@pytest.fixture(scope='module')
def tls_files(tmp_path_factory):
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
    with server.Simulator('m60', tls_cert=tls_files['cert.pem'],
                          tls_key=tls_files['key.pem']) as sim:
        yield sim


def test_https_unknown_ca_refused_by_default(tls_sim):
    assert tls_sim.url.startswith('https://')
    client = client_for(tls_sim)
    with pytest.raises(exception.XapiConnectionError) as info:
        client.call('host.get_all')
    assert 'CERTIFICATE_VERIFY_FAILED' in str(info.value)
    assert '1 attempt(s)' in str(info.value)


def test_https_accepted_with_ca_file(tls_sim, tls_files):
    with client_for(tls_sim, ca_file=tls_files['ca.pem']) as client:
        assert client.call('host.get_all')


def test_https_insecure_opt_in_warns_once(tls_sim, caplog):
    caplog.set_level(logging.WARNING)
    sessionlib._insecure_warned.clear()
    for _ in range(2):
        with client_for(tls_sim, insecure=True) as client:
            assert client.call('host.get_all')
    warnings = [r for r in caplog.records
                if 'verification is disabled' in r.getMessage()]
    assert len(warnings) == 1


def test_password_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with server.Simulator('pool', password=SECRET) as sim:
        client = sessionlib.XapiClient(sim.urls[1], 'root', SECRET,
                                       retry_interval=0.01)
        texts = [repr(client), repr(sim)]
        client.call('host.get_all')
        sim.expire_sessions()
        client.call('host.get_all')
        sim.faults.drop_connection('host.get_all', times=3)
        client.call('host.get_all')
        client.close()
        for password in ('wrong-' + SECRET, SECRET[::-1]):
            bad = sessionlib.XapiClient(sim.url, 'root', password)
            with pytest.raises(exception.XapiError) as info:
                bad.call('host.get_all')
            texts += [str(info.value), repr(info.value), repr(bad)]
    refused = sessionlib.XapiClient(
        'http://127.0.0.1:%d/' % free_port(), 'root', SECRET, retries=1,
        retry_interval=0.01)
    with pytest.raises(exception.XapiConnectionError) as info:
        refused.call('host.get_all')
    texts.append(str(info.value))
    logged = caplog.text + ''.join(
        str(r.args) for r in caplog.records) + '\n'.join(texts)
    assert 'redirect' in caplog.text or 'pool member' in caplog.text
    assert SECRET not in logged
    assert SECRET[::-1] not in logged


def test_call_timeout_and_longer_event_waits(sim):
    with client_for(sim, timeout=0.5, retries=0) as client:
        token = client.event_from(['vm'], '', 1.0)['token']
        start = time.monotonic()
        result = client.event_from(['vm'], token, 1.2)
        assert result['events'] == []
        assert time.monotonic() - start >= 1.2
        sim.faults.latency_ms = 1500
        with pytest.raises(exception.XapiConnectionError) as info:
            client.call('host.get_all')
        sim.faults.latency_ms = 0
    assert 'timed out' in str(info.value)


def test_this_host_after_sessions_expire(sim):
    with client_for(sim) as client:
        host = client.this_host()
        sim.expire_sessions()
        assert client.this_host() == host
