"""Issue 16, item 11: one writer per host. Two processes racing for the
last vGPU of a host: one gets it, the other is refused with the reason;
never both."""

import os
import subprocess
import sys
import time

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vm import writer
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.simhelpers import new_vm
from tests.test_cli import ALIAS_CONF
from tests.test_cli import conf_file
from tests.vm_path.helpers import ask
from tests.vm_path.helpers import builder
from tests.vm_path.helpers import client_of


def attach(conf, sim, uuid):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('XENAPI_')}
    env['XENAPI_PASSWORD'] = sim.password
    return subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', '--config-file',
         conf, 'attach', '--vm', uuid, '--alias', 't4:1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, stdin=subprocess.DEVNULL)


def test_two_attach_commands_for_the_last_vgpu_never_both_win(tmp_path):
    with server.Simulator() as sim:
        xapi = login(sim.url).xenapi
        conf = conf_file(tmp_path, ALIAS_CONF % sim.url)
        first = new_vm(xapi, 'first')
        done = attach(conf, sim, xapi.VM.get_uuid(first))
        assert done.wait(60) == 0, done.stderr.read()
        # The T4 has room for one more T4-8Q; two commands race for it,
        # each call slowed so that their reads and writes interleave.
        sim.faults.latency_ms = 40
        vms = [new_vm(xapi, 'racer%d' % i) for i in range(2)]
        racers = [attach(conf, sim, xapi.VM.get_uuid(vm)) for vm in vms]
        results = [(r.wait(120), r.stdout.read(), r.stderr.read())
                   for r in racers]
        sim.faults.latency_ms = 0
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        refused = next(err for code, _, err in results if code == 1)
        assert 'refused' in refused or 'holds' in refused, refused
        owners = {v['other_config'].get(tags.INSTANCE)
                  for v in xapi.VGPU.get_all_records().values()}
        assert len(owners) == 2
        assert 'nova_xenapi_vgpu_writer' not in xapi.host.get_other_config(
            xapi.host.get_all()[0])


@pytest.fixture
def far_from_utc(monkeypatch):
    """This process's local time zone is not UTC."""
    monkeypatch.setenv('TZ', 'Asia/Kolkata')
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_held_lease_refuses_naming_its_holder_and_an_expired_one_is_taken(
        sim, far_from_utc):
    xapi = login(sim.url).xenapi
    client = client_of(sim)
    host = identity.resolve_host(client)
    build = builder(client, host)
    build.writer.wait = 0.3
    other = writer.Lease('compute-9/4242/abcd', time.time() + 60)
    xapi.host.add_to_other_config(host, writer.KEY, other.value())
    vm = new_vm(xapi, 'blocked')
    with pytest.raises(exception.ClaimRefused) as info:
        build.attach('blocked', vm, ask('t4:1'))
    # The expiry in UTC, as the holder wrote it, whatever the local zone.
    until = time.strftime('%H:%M:%S UTC', time.gmtime(other.expires))
    assert str(info.value) == (
        'vGPU claim refused: another writer holds this host '
        '(other_config:nova_xenapi_vgpu_writer): compute-9/4242/abcd '
        'until %s; try again then' % until)
    assert xapi.VM.get_VGPUs(vm) == []
    xapi.host.remove_from_other_config(host, writer.KEY)
    gone = writer.Lease('compute-9/4242/abcd', time.time() - 1)
    xapi.host.add_to_other_config(host, writer.KEY, gone.value())
    assert len(build.attach('blocked', vm, ask('t4:1'))) == 1
    assert writer.KEY not in xapi.host.get_other_config(host)
    client.close()


class FakeTime:
    """A clock that moves only when the writer sleeps; ``on_sleep`` runs
    at each sleep (another process acting meanwhile)."""

    def __init__(self, on_sleep=lambda slept: None):
        self.now = 0.0  # POLL_SECONDS sums exactly from here
        self.slept = []
        self.on_sleep = on_sleep

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds
        self.on_sleep(self.slept)


def lease_writer(sim, fake, wait, clock=None):
    """(client, host ref, HostWriter) on ``fake`` time (``clock`` reads
    it, if given)."""
    client = sessionlib.XapiClient(sim.url, 'root', 'xenroot',
                                   sleep=fake.sleep)
    host = identity.resolve_host(client)
    return client, host, writer.HostWriter(
        client, host, wait=wait, clock=clock or (lambda: fake.now))


def lease_of(xapi, host):
    return writer.Lease.parse(xapi.host.get_other_config(host).get(
        writer.KEY))


def test_the_loser_polls_until_its_deadline_then_refuses(sim):
    xapi, fake = login(sim.url).xenapi, FakeTime()
    client, host, lease = lease_writer(sim, fake, wait=0.4)
    other = writer.Lease('compute-9/4242/abcd', fake.now + 60)
    xapi.host.add_to_other_config(host, writer.KEY, other.value())
    with pytest.raises(exception.ClaimRefused):
        with lease.held():
            pass
    assert fake.slept == [writer.POLL_SECONDS] * 2
    assert lease_of(xapi, host) == other
    client.close()


def test_the_loser_takes_the_lease_its_holder_lets_go(sim):
    xapi = login(sim.url).xenapi

    def holder_lets_go(slept):
        if len(slept) == 2:
            xapi.host.remove_from_other_config(host, writer.KEY)
    fake = FakeTime(holder_lets_go)
    client, host, lease = lease_writer(sim, fake, wait=30)
    xapi.host.add_to_other_config(host, writer.KEY, writer.Lease(
        'compute-9/4242/abcd', fake.now + 60).value())
    with lease.held():
        assert lease_of(xapi, host) == writer.Lease(
            writer.OWNER, fake.now + writer.LEASE_SECONDS)
    assert len(fake.slept) == 2
    assert lease_of(xapi, host) is None
    client.close()


@pytest.mark.parametrize('left', [
    'expiring now', 'this process, not expired', 'unreadable'])
def test_a_dead_or_unreadable_lease_is_taken_at_once(sim, left):
    xapi, fake = login(sim.url).xenapi, FakeTime()
    client, host, lease = lease_writer(sim, fake, wait=0)
    value = {'expiring now': writer.Lease('compute-9/1/dead', fake.now),
             'this process, not expired': writer.Lease(
                 writer.OWNER, fake.now + 60)}.get(left)
    xapi.host.add_to_other_config(
        host, writer.KEY, value.value() if value else '{"owner": 7')
    with lease.held():
        assert lease_of(xapi, host) == writer.Lease(
            writer.OWNER, fake.now + writer.LEASE_SECONDS)
    assert fake.slept == [] and lease_of(xapi, host) is None
    client.close()


@pytest.mark.parametrize('meanwhile', ['taken by another', 'removed'])
def test_a_release_leaves_a_lease_that_is_not_ours(sim, meanwhile):
    xapi, fake = login(sim.url).xenapi, FakeTime()
    client, host, lease = lease_writer(sim, fake, wait=0)
    other = writer.Lease('compute-9/4242/abcd', fake.now + 60)
    with lease.held():
        # Ours expired and another writer took it over, or an operator
        # removed it: either way it is no longer ours to remove.
        xapi.host.remove_from_other_config(host, writer.KEY)
        if meanwhile == 'taken by another':
            xapi.host.add_to_other_config(host, writer.KEY, other.value())
    assert lease_of(xapi, host) == (
        other if meanwhile == 'taken by another' else None)
    client.close()


def test_a_value_rewritten_as_fast_as_it_is_taken_is_waited_on(sim):
    # Another writer puts back a value this version cannot read each time
    # the key is gone (whenever this writer reads its clock, just before
    # each try), for 50 tries: taken over once at once, then waited on
    # at the poll's pace up to the deadline, never taken in a busy loop.
    xapi, fake = login(sim.url).xenapi, FakeTime()
    rewrites = []

    def clock():
        config = xapi.host.get_other_config(host)
        if writer.KEY not in config and len(rewrites) < 50:
            rewrites.append(fake.now)
            xapi.host.add_to_other_config(host, writer.KEY, 'v9:compute-9')
        return fake.now
    host = xapi.host.get_all()[0]
    client, _, lease = lease_writer(sim, fake, wait=0.4, clock=clock)
    with pytest.raises(exception.ClaimRefused) as info:
        with lease.held():
            pass
    assert str(info.value) == (
        'vGPU claim refused: another writer holds this host '
        '(other_config:nova_xenapi_vgpu_writer): a value this version '
        'cannot read; try again then')
    assert fake.slept == [writer.POLL_SECONDS] * 2
    assert 0 < len(rewrites) < 50  # the other writer never gave up
    client.close()
