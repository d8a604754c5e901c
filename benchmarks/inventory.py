#!/usr/bin/env python3
"""Inventory: this project's event.from reads beside upstream Nova's way.

Upstream Nova (Queens..Ussuri) refreshed vGPU stats with per-object calls:
GPU_group.get_all, then per group get_uuid and get_enabled_VGPU_types,
VGPU_type.get_model_name per type, and for each group holding the chosen
type get_uuid, get_max_heads, GPU_group.get_remaining_capacity and
PGPU.get_all_records_where; it did that twice per periodic task and saw
one vGPU type only. This project reads the whole host once (one
event.from with an empty token) and, per periodic task, refreshes from
the last token (one event.from; nothing changed here).

Sizes 1 host x 2 pGPUs, 1 x 8, a pool of 16 x 8; per-call latency 0 and
5 ms. Prints a table (calls and ms per refresh, per periodic task for
upstream), the peak RSS of a process holding the 16 x 8 pool's inventory,
then ``calls_full=N calls_incremental=N ratio_calls=X ratio_time=Y`` for
1 x 8 at 5 ms, per periodic task.

Usage: python benchmarks/inventory.py [--repeat 11]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session

SIZES = [('1 x 2', (1, 2)), ('1 x 8', (1, 8)), ('16 x 8', (16, 8))]
LATENCIES = (0.0, 5.0)


def upstream_task(client, host, wanted='GRID M60-4Q'):
    """Upstream Nova's calls for one periodic task (two stats refreshes)."""
    for _ in range(2):
        matching = []
        for group in client.call('GPU_group.get_all'):
            client.call('GPU_group.get_uuid', group)
            for vgpu_type in client.call(
                    'GPU_group.get_enabled_VGPU_types', group):
                if client.call('VGPU_type.get_model_name',
                               vgpu_type) == wanted:
                    matching.append((group, vgpu_type))
        for group, vgpu_type in matching:
            client.call('VGPU_type.get_uuid', vgpu_type)
            client.call('VGPU_type.get_max_heads', vgpu_type)
            client.call('GPU_group.get_remaining_capacity', group,
                        vgpu_type)
            client.call('PGPU.get_all_records_where',
                        'field "GPU_group" = "%s"' % group)


def full_read(client, host):
    """This project's full read of the host."""
    return reader.read_inventory(client, host)


def incremental(client, host, state={}):  # noqa: B006 - kept between runs
    """This project's periodic refresh from the last token."""
    if state.get('host') != host:
        state.update(host=host, inventory=reader.read_inventory(client,
                                                                host))
    state['inventory'] = reader.refresh(client, state['inventory'])
    return state['inventory']


def measure(sim, func, repeat):
    """(calls, median ms) per run of ``func``."""
    with session.XapiClient(sim.url, sim.username, sim.password) as client:
        host = client.this_host()
        func(client, host)
        sim.faults.calls.clear()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            func(client, host)
            times.append(time.perf_counter() - start)
        calls = sum(sim.faults.calls.values()) // repeat
    return calls, statistics.median(times) * 1000


RSS_PROBE = '''
import json, resource, sys
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.xapi import session
with session.XapiClient(sys.argv[1], 'root', 'xenroot') as client:
    inventory = reader.read_inventory(client, client.this_host())
    print(json.dumps({'pgpus': len(inventory.pgpus), 'rss_mib':
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def peak_rss(shape):
    """Peak RSS (MiB) of a separate process holding the inventory."""
    with tempfile.NamedTemporaryFile('w', suffix='.json') as profile:
        json.dump(profiles.generate(*shape), profile)
        profile.flush()
        with server.Simulator(profile.name) as sim:
            out = subprocess.run([sys.executable, '-c', RSS_PROBE, sim.url],
                                 capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=11)
    args = parser.parse_args()
    print('%-8s %5s  %16s  %16s  %16s  %7s %7s' % (
        'hosts x', 'ms', 'upstream/task', 'full read', 'incremental',
        'x calls', 'x time'))
    summary = None
    for name, shape in SIZES:
        for latency in LATENCIES:
            with server.Simulator(profiles.generate(*shape),
                                  latency_ms=latency) as sim:
                (up_calls, up_ms), (full_calls, full_ms), (inc_calls,
                                                           inc_ms) = [
                    measure(sim, func, args.repeat)
                    for func in (upstream_task, full_read, incremental)]
            ratio_calls, ratio_time = up_calls / inc_calls, up_ms / inc_ms
            print('%-8s %5.0f  %5d %8.1f ms  %5d %8.1f ms  %5d %8.1f ms  '
                  '%6.0fx %6.1fx' % (
                      name, latency, up_calls, up_ms, full_calls, full_ms,
                      inc_calls, inc_ms, ratio_calls, ratio_time))
            if (name, latency) == ('1 x 8', 5.0):
                summary = (full_calls, inc_calls, ratio_calls, ratio_time)
    rss = peak_rss((16, 8))
    print('peak RSS of a process holding the 16 x 8 inventory (%d pGPUs '
          'here): %.1f MiB' % (rss['pgpus'], rss['rss_mib']))
    print('calls_full=%d calls_incremental=%d ratio_calls=%.1f '
          'ratio_time=%.1f' % summary)


if __name__ == '__main__':
    main()
