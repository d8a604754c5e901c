"""The XAPI client layer against the simulator over real XML-RPC."""

import logging
import socket
import ssl
import threading
import time
import xmlrpc.client

import pytest
from oslo_config import cfg

from nova_xenapi_vgpu import conf as conflib
from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session as sessionlib
from nova_xenapi_vgpu.xapi import writes
from tests.conftest import login

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
        assert len(client.call('PGPU.get_all')) == len(
            sim.profile['hosts'][0]['pgpus'])


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


def run_threads(count, target):
    """Run ``target`` in ``count`` threads; all must finish cleanly."""
    errors = []

    def work():
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


def test_session_invalid_recovers_for_pooled_sessions(sim):
    sim.faults.latency_ms = 100  # three calls overlap: three sessions
    with client_for(sim, pool_size=3) as client:
        run_threads(3, lambda: client.call('host.get_all'))
        assert sim.faults.calls['session.login_with_password'] == 3
        sim.expire_sessions()
        run_threads(3, lambda: client.call('host.get_all'))
    assert sim.faults.calls['session.login_with_password'] == 6


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


class FakeClock:
    """Records the client's retry delays instead of sleeping."""

    def __init__(self):
        self.delays = []

    def __call__(self, seconds):
        self.delays.append(seconds)


def test_connection_refused_is_retried_then_one_error():
    url = 'http://127.0.0.1:%d/' % free_port()
    clock = FakeClock()
    client = sessionlib.XapiClient(url, 'root', SECRET, retries=3,
                                   retry_interval=0.5, sleep=clock)
    with pytest.raises(exception.XapiUnreachable) as info:
        client.call('host.get_all')
    assert clock.delays == [0.5, 1.0, 2.0]
    assert '4 attempt(s)' in str(info.value)
    assert 'ConnectionRefusedError' in str(info.value)
    assert SECRET not in str(info.value)


def test_backoff_is_capped():
    clock = FakeClock()
    client = sessionlib.XapiClient(
        'http://127.0.0.1:%d/' % free_port(), 'root', SECRET, retries=8,
        retry_interval=1.0, sleep=clock)
    with pytest.raises(exception.XapiUnreachable):
        client.call('host.get_all')
    assert clock.delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_lost_reply_to_a_read_is_retried(sim):
    with client_for(sim) as client:
        sim.faults.lose_reply('host.get_all', times=2)
        assert client.call('host.get_all')
    assert sim.faults.calls['host.get_all'] == 3


def test_a_lost_reply_to_a_write_is_outcome_unknown():
    with server.Simulator('m60', password=SECRET) as sim, client_for(
            sim) as client:
        sim.faults.lose_reply('VM.create')
        with pytest.raises(exception.XapiOutcomeUnknown) as info:
            client.call('VM.create', {'name_label': 'lost',
                                      'other_config': {'note': SECRET}})
        # Sent once, done once: never silently sent again.
        assert sim.faults.calls['VM.create'] == 1
        assert len(client.call('VM.get_by_name_label', 'lost')) == 1
    assert info.value.method == 'VM.create'
    assert info.value.call_args == (
        {'name_label': 'lost', 'other_config': {'note': '***'}},)
    assert 'may have taken effect' in str(info.value)
    assert SECRET not in str(info.value)


def test_a_lost_migrate_send_names_no_session_handle():
    profile = {'hosts': [{'name': 'a', 'pgpus': []},
                         {'name': 'b', 'pgpus': []}]}
    with server.Simulator(profile, password=SECRET) as sim, client_for(
            sim) as client:
        vm = client.call('VM.create', {'name_label': 'mover',
                                       'HVM_boot_policy': 'BIOS'})
        [host] = client.call('host.get_by_name_label', 'b')
        [network] = client.call('network.get_all')
        dest = client.call('host.migrate_receive', host, network, {})
        sim.faults.lose_reply('VM.migrate_send')
        with pytest.raises(exception.XapiOutcomeUnknown) as info:
            client.call('VM.migrate_send', vm, dest, True, {}, {}, {})
    handle = dest['session_id']
    assert handle in dest['SM'] and handle in dest['xenops']
    assert handle not in str(info.value)
    assert handle not in repr(info.value.call_args)
    masked = info.value.call_args[1]
    assert (masked['session_id'], masked['host']) == ('***', host)
    assert masked['SM'] == dest['SM'].replace(handle, '***')


def test_a_timed_out_start_is_outcome_unknown_not_unreachable(m60_sim):
    m60_sim.start_delay_ms = 1000
    xapi = login(m60_sim.url).xenapi
    vm = xapi.VM.create({'name_label': 'slow', 'HVM_boot_policy': 'BIOS'})
    host = xapi.host.get_all()[0]
    with client_for(m60_sim, timeout=0.3) as client:
        with pytest.raises(exception.XapiOutcomeUnknown) as info:
            client.call('VM.start_on', vm, host, False, False)
    assert 'no answer in time' in str(info.value)
    assert info.value.call_args == (vm, host, False, False)
    deadline = time.monotonic() + 10
    while xapi.VM.get_power_state(vm) != 'Running':
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_session_is_dropped_after_a_connection_failure(sim):
    with client_for(sim) as client:
        client.call('host.get_all')
        sim.faults.lose_reply('VM.create')
        with pytest.raises(exception.XapiOutcomeUnknown):
            client.call('VM.create', {'name_label': 'x'})
        client.call('host.get_all')
    assert sim.faults.calls['session.login_with_password'] == 2


def test_a_refused_login_is_not_pooled(sim):
    client = sessionlib.XapiClient(sim.url, 'root', 'wrong')
    for _ in range(2):
        with pytest.raises(exception.AuthenticationFailed):
            client.call('host.get_all')
    assert sim.faults.calls['session.login_with_password'] == 2


def test_async_calls_run_as_tasks(m60_sim):
    m60_sim.start_delay_ms = 200
    xapi = login(m60_sim.url).xenapi
    host = xapi.host.get_all()[0]
    with client_for(m60_sim, timeout=0.1) as client:
        vm = client.call('VM.create', {'name_label': 'a',
                                       'HVM_boot_policy': 'BIOS'})
        assert client.call_async('VM.start_on', vm, host, False, False) == ''
        assert xapi.VM.get_power_state(vm) == 'Running'
        clone_of = client.call('VM.create', {'name_label': 'b'})
        clone = client.call_async('VM.clone', clone_of, 'copy')
        assert xapi.VM.get_name_label(clone) == 'copy'
        with pytest.raises(exception.XapiError) as info:
            client.call_async('VM.start_on', vm, host, False, False)
    assert info.value.code == 'VM_BAD_POWER_STATE'
    assert xapi.task.get_all() == []
    assert m60_sim.faults.calls['task.destroy'] == 3


def test_an_overrunning_task_is_cancelled(m60_sim):
    m60_sim.start_delay_ms = 600
    xapi = login(m60_sim.url).xenapi
    host = xapi.host.get_all()[0]
    m60 = xapi.GPU_group.get_all()[0]
    t8q = [r for r, t in xapi.VGPU_type.get_all_records().items()
           if t['model_name'] == 'GRID M60-8Q'][0]
    vm = xapi.VM.create({'name_label': 'a', 'HVM_boot_policy': 'BIOS'})
    vgpu = xapi.VGPU.create(vm, m60, '0', {}, t8q)
    with client_for(m60_sim) as client:
        client.task_timeout = 0.1
        with pytest.raises(exception.XapiTaskTimeout) as info:
            client.call_async('VM.start_on', vm, host, False, False)
    assert 'did not take effect' in str(info.value)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert xapi.VGPU.get_scheduled_to_be_resident_on(vgpu) == (
        'OpaqueRef:NULL')
    assert xapi.task.get_all() == []


def test_a_moved_master_is_followed(pool_sim):
    xapi = login(pool_sim.url).xenapi
    member = xapi.host.get_by_name_label('xs-pool-02')[0]
    with client_for(pool_sim, pool_size=3) as client:
        run_threads(3, lambda: client.call('host.get_all'))
        pool_sim.api.designate_new_master(member)
        run_threads(3, lambda: [client.call('host.get_all')
                                for _ in range(3)])
        assert client.master_url == pool_sim.urls[1]
        assert client.this_host() == member


def test_the_master_moving_while_calls_run(pool_sim):
    xapi = login(pool_sim.url).xenapi
    hosts = [xapi.host.get_by_name_label('xs-pool-%02d' % i)[0]
             for i in (2, 3, 1)]
    pool_sim.faults.latency_ms = 5
    stop = threading.Event()
    errors = []
    with client_for(pool_sim, pool_size=4) as client:
        def work():
            try:
                while not stop.is_set():
                    assert client.call('PGPU.get_all')
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for host in hosts:
            time.sleep(0.1)
            pool_sim.api.designate_new_master(host)
        time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert client.call('host.get_all')
    assert client.master_url == pool_sim.url


def test_reset_retried_for_reads_only(sim):
    with client_for(sim) as client:
        client.call('host.get_all')
        sim.faults.drop_connection('host.get_all', times=3)
        assert client.call('host.get_all')
        sim.faults.drop_connection('VM.create')
        with pytest.raises(exception.XapiOutcomeUnknown):
            client.call('VM.create', {'name_label': 'x'})
    assert sim.faults.calls['VM.create'] == 1


def test_https_unknown_ca_refused_by_default(tls_sim):
    assert tls_sim.url.startswith('https://')
    client = client_for(tls_sim)
    with pytest.raises(exception.XapiTlsError) as info:
        client.call('host.get_all')
    assert 'untrusted certificate' in str(info.value)
    assert 'ca_file' in str(info.value) and '--insecure' in str(info.value)


def test_https_to_an_http_server(sim):
    client = sessionlib.XapiClient(sim.url.replace('http:', 'https:'),
                                   'root', 'xenroot', sleep=FakeClock())
    with pytest.raises(exception.XapiTlsError) as info:
        client.call('host.get_all')
    assert 'does not speak TLS' in str(info.value)
    assert sim.faults.calls['session.login_with_password'] == 0


def test_http_to_an_https_server(tls_sim):
    clock = FakeClock()
    client = sessionlib.XapiClient(tls_sim.url.replace('https:', 'http:'),
                                   'root', 'xenroot', sleep=clock)
    with pytest.raises(exception.XapiTlsError) as info:
        client.call('host.get_all')
    assert str(info.value) == (
        'TLS with XAPI at %s failed: the server speaks HTTPS; use https:// '
        'in [xenserver] connection_url (or --url)' % tls_sim.url.replace(
            'https:', 'http:'))
    assert clock.delays == []


def test_a_server_that_never_answers():
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(8)
        url = 'http://127.0.0.1:%d/' % listener.getsockname()[1]
        client = sessionlib.XapiClient(url, 'root', 'x', timeout=600,
                                       connect_timeout=0.2, retries=1,
                                       sleep=FakeClock())
        with pytest.raises(exception.XapiUnreachable) as info:
            client.call('host.get_all')
    assert 'no answer in time' in str(info.value)
    assert '2 attempt(s)' in str(info.value)


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
        with pytest.raises(exception.XapiUnreachable) as info:
            client.call('host.get_all')
        sim.faults.latency_ms = 0
    assert 'no answer in time' in str(info.value)


def test_this_host_after_sessions_expire(sim):
    with client_for(sim) as client:
        host = client.this_host()
        sim.expire_sessions()
        assert client.this_host() == host


@pytest.mark.parametrize('fault, calls', [('lose_reply', 1),
                                          ('drop_connection', 2)])
def test_a_tagged_create_happens_once(m60_sim, fault, calls):
    xapi = login(m60_sim.url).xenapi
    vm = xapi.VM.create({'name_label': 'a', 'HVM_boot_policy': 'BIOS'})
    group = xapi.GPU_group.get_all()[0]
    vgpu_type = xapi.VGPU_type.get_all()[0]
    getattr(m60_sim.faults, fault)('VGPU.create')
    with client_for(m60_sim) as client:
        made = writes.create_vgpu(client, vm, group, '0', {'x': 'y'},
                                  vgpu_type, 'instance-1/0')
    assert xapi.VM.get_VGPUs(vm) == [made]
    assert xapi.VGPU.get_other_config(made) == {
        'x': 'y', writes.TAG_KEY: 'instance-1/0'}
    assert m60_sim.faults.calls['VGPU.create'] == calls


def test_this_host_by_uuid_or_not_found(pool_sim):
    with client_for(pool_sim) as client:
        member = client.call('host.get_by_name_label', 'xs-pool-03')[0]
        uuid = client.call('host.get_uuid', member)
        assert identity.resolve_host(client, uuid) == member
        with pytest.raises(exception.HostNotFound) as info:
            identity.resolve_host(client, '00000000-0000-0000-0000-0000')
    assert str(info.value) == (
        'No XenServer host matches [xenserver] host_uuid '
        "00000000-0000-0000-0000-0000; tried the uuids of the pool's hosts")


@pytest.mark.parametrize('field', ['hostname', 'name_label', 'uuid'])
def test_a_member_url_names_its_host_by_any_of_its_names(pool_sim, field):
    hosts = pool_sim.db.objects['host']
    with pool_sim.db.lock:
        ref = next(r for r, h in hosts.items() if h['address'] == '127.0.0.3')
        pool_sim.db.set('host', ref, 'address', '10.0.0.3')
        pool_sim.db.set('host', ref, field, '127.0.0.3')
    with sessionlib.XapiClient(pool_sim.urls[2], 'root', 'xenroot') as client:
        assert identity.resolve_host(client) == ref


def test_a_member_url_by_dns_name_finds_that_member(pool_sim):
    xapi = login(pool_sim.url).xenapi
    old_master = xapi.host.get_by_name_label('xs-pool-01')[0]
    xapi.pool.designate_new_master(
        xapi.host.get_by_name_label('xs-pool-02')[0])
    # localhost resolves to 127.0.0.1, now a member's address only.
    url = pool_sim.url.replace('127.0.0.1', 'localhost')
    with sessionlib.XapiClient(url, 'root', 'xenroot') as client:
        assert identity.resolve_host(client) == old_master
        assert client.master_url == pool_sim.urls[1]


def test_a_dns_name_that_matches_no_host_lists_what_it_resolved_to(
        pool_sim):
    xapi = login(pool_sim.url).xenapi
    old_master = xapi.host.get_by_name_label('xs-pool-01')[0]
    xapi.pool.designate_new_master(
        xapi.host.get_by_name_label('xs-pool-02')[0])
    with pool_sim.db.lock:
        pool_sim.db.set('host', old_master, 'address', '10.0.0.1')
    url = pool_sim.url.replace('127.0.0.1', 'localhost')
    tried = {'localhost'} | {
        info[4][0] for info in socket.getaddrinfo('localhost', None)}
    assert len(tried) >= 2
    with sessionlib.XapiClient(url, 'root', 'xenroot') as client:
        with pytest.raises(exception.HostNotFound) as info:
            identity.resolve_host(client)
    assert 'tried addresses %s, host names' % ', '.join(sorted(tried)) in (
        str(info.value))


def test_a_member_url_that_matches_no_host(pool_sim):
    member = pool_sim.db.objects['host']
    address = pool_sim.urls[2]
    with pool_sim.db.lock:
        ref = next(r for r, h in member.items()
                   if h['address'] == '127.0.0.3')
        pool_sim.db.set('host', ref, 'address', '10.0.0.3')
    with sessionlib.XapiClient(address, 'root', 'xenroot') as client:
        with pytest.raises(exception.HostNotFound) as info:
            identity.resolve_host(client)
    assert str(info.value) == (
        'No XenServer host matches 127.0.0.3 (from connection_url); tried '
        'addresses 127.0.0.3, host names, name labels and uuids of 3 '
        'host(s); set [xenserver] host_uuid')


def test_a_member_url_is_this_host_before_any_other_call(pool_sim):
    with sessionlib.XapiClient(pool_sim.urls[2], 'root', 'xenroot') as client:
        member = identity.resolve_host(client)
        assert client.call('host.get_address', member) == '127.0.0.3'


def test_a_client_from_the_xenserver_options():
    conf = cfg.ConfigOpts()
    conflib.register_opts(conf)
    conf(args=[])
    settings = dict(
        connection_url='http://xapi.example:8080/', connection_username='u',
        connection_password=None, connection_concurrent=3, call_timeout=7.0,
        connection_retries=5, connection_retry_interval=0.5, insecure=True,
        connect_timeout=2.0, task_timeout=30.0)
    for name, value in settings.items():
        conf.set_override(name, value, 'xenserver')
    client = sessionlib.XapiClient.from_conf(conf)
    assert (client.url, client.username, client.retries,
            client.retry_interval, client.connect_timeout,
            client.task_timeout, client._timeout) == (
        'http://xapi.example:8080/', 'u', 5, 0.5, 2.0, 30.0, 7.0)
    assert client.mask(('',)) == (sessionlib.MASK,)
    assert repr(client) == '<XapiClient http://xapi.example:8080/ as u>'
    acquired = [client._slots.acquire(blocking=False) for _ in range(4)]
    assert acquired == [True, True, True, False]


def test_the_password_is_masked_in_any_container():
    client = sessionlib.XapiClient('http://h/', 'root', 's3cret')
    masked = client.mask(('s3cret', ['a', 's3cret'], ('s3cret',),
                          {'k': 's3cret'}, 5))
    assert masked == (sessionlib.MASK, ['a', sessionlib.MASK],
                      (sessionlib.MASK,), {'k': sessionlib.MASK}, 5)


@pytest.mark.parametrize('method, read', [
    ('VM.get_record', True), ('Async.VM.get_record', True),
    ('event.from', True), ('VM.start', False), ('VGPU.create', False),
    ('get_thing', True)])
def test_which_calls_are_reads(method, read):
    assert sessionlib.is_read(method) is read


@pytest.mark.parametrize('url, address, expected', [
    ('https://member:443/', '10.0.0.1', 'https://10.0.0.1:443/'),
    ('http://member/', 'fe80::1', 'http://[fe80::1]/'),
    ('http://[::1]:8080/x', '::2', 'http://[::2]:8080/x')])
def test_the_master_url(url, address, expected):
    assert sessionlib.master_url(url, address) == expected


def test_xmlrpc_faults_keep_their_code_and_text():
    invalid = sessionlib._fault_error(xmlrpc.client.Fault(
        1, 'You must log in with a valid session'))
    assert isinstance(invalid, exception.SessionInvalid)
    assert (invalid.code, invalid.params) == (
        'SESSION_INVALID', ['You must log in with a valid session'])
    named = sessionlib._fault_error(xmlrpc.client.Fault(
        1, 'SESSION_INVALID OpaqueRef:x'))
    assert isinstance(named, exception.SessionInvalid)
    other = sessionlib._fault_error(xmlrpc.client.Fault(3, 'boom'))
    assert type(other) is exception.XapiError
    assert (other.code, other.params) == ('XMLRPC_FAULT', ['3', 'boom'])


def test_tls_failures_say_what_to_change():
    url = 'https://xapi.example/'
    plain = ssl.SSLError(1, 'record layer failure')
    plain.reason = 'RECORD_LAYER_FAILURE'
    assert str(sessionlib._tls_error(url, plain)) == (
        'TLS with XAPI at https://xapi.example/ failed: the server does not '
        'speak TLS (RECORD_LAYER_FAILURE); use http:// in [xenserver] '
        'connection_url, or check the port')
    other = ssl.SSLError(1, 'alert handshake failure')
    assert str(sessionlib._tls_error(url, other)) == (
        'TLS with XAPI at https://xapi.example/ failed: handshake failed '
        '(%s); check [xenserver] ca_file' % other)
    untrusted = ssl.SSLCertVerificationError(1, 'verify failed')
    untrusted.verify_message = 'self-signed certificate'
    assert str(sessionlib._tls_error(url, untrusted)) == (
        'TLS with XAPI at https://xapi.example/ failed: untrusted '
        'certificate (self-signed certificate); set [xenserver] ca_file to '
        'the CA that signed it, or --insecure to skip verification')


def test_what_went_wrong_in_words():
    assert sessionlib._describe(TimeoutError()).startswith(
        'no answer in time (')
    assert sessionlib._describe(TimeoutError('read')) == (
        'no answer in time (read)')
    assert sessionlib._describe(ConnectionResetError('reset')) == (
        'ConnectionResetError: reset')


def test_a_clients_defaults():
    client = sessionlib.XapiClient('http://h/', 'u', 'p')
    assert (client.retries, client.retry_interval, client.connect_timeout,
            client.task_timeout, client._timeout, client.master_url) == (
        3, 1.0, 10.0, 600.0, 60.0, None)
    assert [client._slots.acquire(blocking=False) for _ in range(6)] == [
        True] * 5 + [False]
