"""Recovery: a restarted XAPI, session storms, parsers fed anything, and
the password over a whole run at DEBUG."""

import os
import subprocess
import sys
import threading
import time

from hypothesis import strategies as st

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.simulator import sysfs
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.counting import run_counting
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
    errors, done = [], []
    m60_sim.faults.calls.clear()

    def storm():
        while not stop.is_set():
            m60_sim.expire_sessions()
            time.sleep(0.02)

    def work():
        try:
            for _ in range(25):
                done.append(reader.refresh(client, inventory))
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
    # ... while most refreshes in the storm log in again and succeed.
    assert len(done) >= 50 and all(i.pgpus == inventory.pgpus for i in done)
    assert m60_sim.faults.calls['session.login_with_password'] >= 2
    # ... and once the storm is over the next refresh recovers.
    assert reader.refresh(client, inventory).pgpus == inventory.pgpus
    client.close()


@st.composite
def xl_hosts(draw):
    """A host as the simulator's xl prints it (xen's own format)."""
    nodes = [{'cpus': '%d-%d' % (4 * i, 4 * i + 3),
              'memory_mib': draw(st.integers(1, 10 ** 6)),
              'socket': draw(st.integers(0, 3))}
             for i in range(draw(st.integers(1, 4)))]
    pgpus = [{'address': '0000:%02x:00.0' % bus, 'model': 'tesla-m60',
              'numa_node': draw(st.none() | st.integers(0, len(nodes) - 1))}
             for bus in draw(st.lists(st.integers(0, 255), max_size=4,
                                      unique=True))]
    return {'name': 'h', 'numa_nodes': nodes, 'pgpus': pgpus}


def parse_xl(value):
    text = value if isinstance(value, str) else sysfs.xl_info(value)
    parsed = PLUGIN.parse_xl_info(text)
    if parsed is None:
        assert isinstance(value, str)
        return 'ignored'
    assert set(parsed) == {'nodes', 'devices'}
    if not isinstance(value, str):
        assert parsed['devices'] == {
            p['address']: p['numa_node'] for p in value['pgpus']
            if p['numa_node'] is not None}
        assert parsed['nodes'] == {i: {
            'cpus': list(range(4 * i, 4 * i + 4)),
            'sockets': [n['socket']], 'memory_mib': n['memory_mib']}
            for i, n in enumerate(value['numa_nodes'])}
    return 'parsed'


def test_xl_output_of_any_shape_is_parsed_or_ignored():
    outcomes = run_counting(st.text(max_size=300) | xl_hosts(), parse_xl,
                            300)
    total = sum(outcomes.values())
    assert outcomes['parsed'] >= 0.05 * total, outcomes
    assert outcomes['ignored'] >= 0.05 * total, outcomes


XL_LINES = st.lists(st.sampled_from([
    'cpu_topology           :', 'cpu:    core    socket     node',
    '  0:       0        0        0', '  1:       1        0        1',
    'device topology        :', '0000:86:00.0      1', 'garbage: 1 2',
    'numa_info              :', '   0:     65536      30000      10,21',
    'No device topology data available', ':', '  9:  x  y  z']),
    max_size=14)


def parse_xl_lines(lines):
    parsed = PLUGIN.parse_xl_info('\n'.join(lines))
    if parsed is None:
        return 'ignored'
    assert all(isinstance(n, int) for n in parsed['devices'].values())
    assert all(set(n) == {'cpus', 'sockets', 'memory_mib'}
               for n in parsed['nodes'].values())
    return 'parsed'


def test_xl_tables_in_any_order():
    # A cpu row counts only under cpu_topology: tables that open with it.
    opened = st.builds(lambda rows, rest: [
        'cpu_topology           :'] + rows + rest, st.lists(st.sampled_from(
            ['  0:       0        0        0',
             '  1:       1        0        1']), min_size=1, max_size=3),
        XL_LINES)
    outcomes = run_counting(XL_LINES | opened, parse_xl_lines,
        200)
    total = sum(outcomes.values())
    assert outcomes['parsed'] >= 0.05 * total, outcomes
    assert outcomes['ignored'] >= 0.05 * total, outcomes


SMI_GPU = st.fixed_dictionaries({
    'bus': st.integers(0, 255), 'util': st.integers(0, 100),
    'memory': st.integers(0, 100), 'vgpus': st.lists(st.tuples(
        st.integers(1, 10 ** 6), st.sampled_from(['7', 'a-uuid']),
        st.sampled_from(['GRID M60-4Q', 'GRID M60-8Q'])), max_size=3)})


def smi_xml(gpus):
    """nvidia-smi -q -x as the driver writes it (the fields read)."""
    return '<nvidia_smi_log><driver_version>535.161.05</driver_version>' + (
        ''.join(
            '<gpu id="00000000:%02X:00.0"><product_name>Tesla M60'
            '</product_name><utilization><gpu_util>%d %%</gpu_util>'
            '<memory_util>%d %%</memory_util></utilization><vgpus>%s'
            '</vgpus></gpu>' % (g['bus'], g['util'], g['memory'], ''.join(
                '<vgpu_instance id="%d"><vm_id>%s</vm_id><vgpu_name>%s'
                '</vgpu_name></vgpu_instance>' % v for v in g['vgpus']))
            for g in gpus)) + '</nvidia_smi_log>'


def parse_smi(value):
    text = value if isinstance(value, str) else smi_xml(value)
    try:
        result = PLUGIN._parse_nvidia_smi(text)
    except PLUGIN.XenAPIPlugin.Failure as failure:
        assert failure.args[0] == PLUGIN.NVIDIA_SMI_FAILED
        assert isinstance(value, str)
        return 'refused'
    assert result['available'] is True
    if not isinstance(value, str):
        assert result['driver_version'] == '535.161.05'
        gpus = {'0000:%02x:00.0' % g['bus']: g for g in value}
        assert set(result['gpus']) == set(gpus)
        for address, gpu in result['gpus'].items():
            assert (gpu['gpu_util'], gpu['memory_util']) == (
                gpus[address]['util'], gpus[address]['memory'])
            assert [(int(v['id']), v['vm_id'], v['vgpu_type'])
                    for v in gpu['vgpus']] == gpus[address]['vgpus']
    return 'parsed'


def test_nvidia_smi_output_of_any_shape():
    fuzz = st.text(max_size=300) | st.builds(
        lambda body: '<nvidia_smi_log>%s</nvidia_smi_log>' % body,
        st.text(max_size=200))
    valid = st.lists(SMI_GPU, max_size=3, unique_by=lambda g: g['bus'])
    outcomes = run_counting(fuzz | valid, parse_smi, 200)
    total = sum(outcomes.values())
    assert outcomes['parsed'] >= 0.05 * total, outcomes
    assert outcomes['refused'] >= 0.05 * total, outcomes


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
