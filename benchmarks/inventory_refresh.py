#!/usr/bin/env python3
"""Inventory refresh: our event.from reads against upstream Nova's way.

Upstream Nova (Queens..Ussuri) refreshed vGPU stats with per-object calls:
GPU_group.get_all, then per group get_uuid and get_enabled_VGPU_types,
VGPU_type.get_model_name per type, and for each group holding the chosen
type get_uuid, get_max_heads, GPU_group.get_remaining_capacity and
PGPU.get_all_records_where. It did that twice per periodic task and saw
one vGPU type only. This script runs both against the simulator with a
per-call latency (as a remote XenServer adds) and prints calls and time.

Usage: python benchmarks/inventory_refresh.py [--latency-ms 2] [--repeat 15]
"""

import argparse
import statistics
import time

from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session

SHAPES = [('m60', None), ('mixed', None), ('pool', None),
          ('generated 1 host x 16 pGPUs', (1, 16)),
          ('generated 8 hosts x 16 pGPUs', (8, 16))]


def upstream_refresh(client, wanted='GRID M60-4Q'):
    """Upstream Nova's call pattern for one stats refresh."""
    matching = []
    for group in client.call('GPU_group.get_all'):
        client.call('GPU_group.get_uuid', group)
        for vgpu_type in client.call('GPU_group.get_enabled_VGPU_types',
                                     group):
            if client.call('VGPU_type.get_model_name', vgpu_type) == wanted:
                matching.append((group, vgpu_type))
    for group, vgpu_type in matching:
        client.call('VGPU_type.get_uuid', vgpu_type)
        client.call('VGPU_type.get_max_heads', vgpu_type)
        client.call('GPU_group.get_remaining_capacity', group, vgpu_type)
        client.call('PGPU.get_all_records_where',
                    'field "GPU_group" = "%s"' % group)


def _remaining(inventory):
    return sum(inventory.usage(p, t).remaining
               for p in inventory.pgpus for t in inventory.enabled_types(p))


def full_read(client, host):
    """This project's full read: every type, every pGPU of the host."""
    return _remaining(reader.read_inventory(client, host))


def incremental(client, host, state={}):  # noqa: B006 - kept between runs
    """This project's periodic refresh: event.from from the last token."""
    if state.get('host') != host:
        state.update(host=host, inventory=reader.read_inventory(client,
                                                                host))
    state['inventory'] = reader.refresh(client, state['inventory'])
    return _remaining(state['inventory'])


def measure(sim, func, repeat):
    """(calls per refresh, median seconds per refresh)."""
    with session.XapiClient(sim.url, sim.username, sim.password) as client:
        host = client.this_host()
        args = (client,) if func is upstream_refresh else (client, host)
        func(*args)
        sim.faults.calls.clear()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            func(*args)
            times.append(time.perf_counter() - start)
        calls = sum(sim.faults.calls.values()) // repeat
    return calls, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--latency-ms', type=float, default=2.0)
    parser.add_argument('--repeat', type=int, default=15)
    args = parser.parse_args()
    print('latency per XAPI call: %.1f ms, median of %d refreshes'
          % (args.latency_ms, args.repeat))
    print('%-30s %9s %8s %9s %8s %9s %8s' % (
        'profile', 'upstream', 'ms', 'full', 'ms', 'increm.', 'ms'))
    for name, shape in SHAPES:
        profile = profiles.generate(*shape) if shape else name
        with server.Simulator(profile, latency_ms=args.latency_ms) as sim:
            figures = [measure(sim, func, args.repeat) for func in (
                upstream_refresh, full_read, incremental)]
        print('%-30s' % name + ''.join(
            ' %9d %8.1f' % (calls, seconds * 1000)
            for calls, seconds in figures))


if __name__ == '__main__':
    main()
