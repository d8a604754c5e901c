"""Recovery: a restarted XAPI, session storms, parsers fed anything, and
the password over a whole run at DEBUG."""

import os
import subprocess
import sys
import threading
import time

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu
from tests.test_dom0_plugin import plugin_module

CANARY = 'Canary-9f3e-do-not-print'


def test_xapi_restarted_in_the_middle_of_refreshes(m60_sim):
    client = sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot',
                                   retries=40, retry_interval=0.05)
    host = identity.resolve_host(client)
    before = reader.read_inventory(client, host)
    m60_sim.stop()  # xapi goes away: connections refused
    outcome = {}

    def refresh():
        outcome['inventory'] = reader.refresh(client, before)
    thread = threading.Thread(target=refresh)
    thread.start()
    time.sleep(0.3)
    m60_sim.start()  # and comes back with the same database
    m60_sim.expire_sessions()
    thread.join(20)
    assert not thread.is_alive()
    assert outcome['inventory'].pgpus == before.pgpus
    xapi = login(m60_sim.url).xenapi
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-8Q'))
    xapi.VM.start(vm, False, False)
    after = reader.refresh(client, outcome['inventory'])
    assert after.vgpus[vgpu].resident_on in after.pgpus
    client.close()


def test_session_invalid_storms(m60_sim):
    client = sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot',
                                   pool_size=4)
    host = identity.resolve_host(client)
    inventory = reader.read_inventory(client, host)
    stop = threading.Event()
    errors = []

    def storm():
        while not stop.is_set():
            m60_sim.expire_sessions()
            time.sleep(0.02)

    def work():
        try:
            for _ in range(25):
                reader.refresh(client, inventory)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    stormer = threading.Thread(target=storm)
    workers = [threading.Thread(target=work) for _ in range(4)]
    stormer.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    stop.set()
    stormer.join(5)
    assert not any(t.is_alive() for t in workers + [stormer])
    # A session refused again and again surfaces as XAPI's code ...
    assert all(isinstance(e, exception.SessionInvalid) for e in errors)
    # ... and once the storm is over the next refresh recovers.
    assert reader.refresh(client, inventory).pgpus == inventory.pgpus
    client.close()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_xl_output_of_any_shape_is_parsed_or_ignored(text):
    parsed = PLUGIN.parse_xl_info(text)
    assert parsed is None or set(parsed) == {'nodes', 'devices'}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    'cpu_topology           :', 'cpu:    core    socket     node',
    '  0:       0        0        0', '  1:       1        0        1',
    'device topology        :', '0000:86:00.0      1', 'garbage: 1 2',
    'numa_info              :', '   0:     65536      30000      10,21',
    'No device topology data available', ':', '  9:  x  y  z']),
    max_size=14).map('\n'.join))
def test_xl_tables_in_any_order(text):
    parsed = PLUGIN.parse_xl_info(text)
    if parsed is not None:
        assert all(isinstance(n, int) for n in parsed['devices'].values())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.builds(
    lambda body: '<nvidia_smi_log>%s</nvidia_smi_log>' % body,
    st.text(max_size=200)))
def test_nvidia_smi_output_of_any_shape(text):
    try:
        result = PLUGIN._parse_nvidia_smi(text)
    except PLUGIN.XenAPIPlugin.Failure as failure:
        assert failure.args[0] == PLUGIN.NVIDIA_SMI_FAILED
    else:
        assert result['available'] is True


def test_the_password_never_shows_over_a_whole_run():
    with server.Simulator('mixed', password=CANARY) as sim:
        env = dict(os.environ, XENAPI_PASSWORD=CANARY)
        outputs = []
        for args in (['inventory'], ['types'], ['pci-devices'],
                     ['plugin', 'check'], ['gpu-groups', 'split']):
            result = subprocess.run(
                [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', '--url',
                 sim.url, '--debug', '-v', '-v', *args],
                capture_output=True, text=True, env=env, timeout=120)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout + result.stderr)
    assert CANARY not in ''.join(outputs)
    assert all(outputs)


PLUGIN = plugin_module()


def test_a_refresh_that_fails_says_so_and_the_next_recovers(m60_sim):
    client = sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot',
                                   retry_interval=0.01)
    host = identity.resolve_host(client)
    inventory = reader.read_inventory(client, host)
    m60_sim.faults.fail_call('event.from', 1, 'INTERNAL_ERROR', 'db')
    try:
        reader.refresh(client, inventory)
    except exception.XapiError as exc:
        assert exc.details == ['INTERNAL_ERROR', 'db']
    else:
        raise AssertionError('the injected failure did not surface')
    m60_sim.faults.lose_reply('event.from')  # a read: retried
    assert reader.refresh(client, inventory).pgpus == inventory.pgpus
    assert reader.refresh(client, inventory).pgpus == inventory.pgpus
    client.close()
