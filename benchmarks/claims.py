#!/usr/bin/env python3
"""Claims: support_requests, consume_requests and free on growing hosts.

Hosts of Tesla M60 pGPUs (75 vGPU slots each, every type enabled) with
about 100, 1,000 and 10,000 slot devices; a few claims already pending.
The pools are counted per type and pGPU and the start-order search runs
over pGPU shapes, so the cost per request should grow with the pools,
not with the slots. Prints a table, then ``ratio_10000_vs_100=X`` (the
time per request at 10,000 slots over that at 100; target <= 3).

Usage: python benchmarks/claims.py [--repeat 200]
"""

import argparse
import math
import time
import types

from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.simulator import events
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import world
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib

SLOTS_PER_M60 = 75
ALIASES = aliaslib.parse_aliases([
    '{"name": "4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "1q", "vgpu_type": "GRID M60-1Q"}'])


def inventory(slots):
    """A host with enough M60s for ``slots`` slot devices, from the
    simulator's records (no XML-RPC)."""
    pgpus = math.ceil(slots / SLOTS_PER_M60)
    db = world.build(profiles.generate(1, pgpus, 'breadth_first'))
    host = next(iter(db.objects['host']))
    return reader.from_snapshot(host, events.event_from(
        types.SimpleNamespace(db=db), list(reader.ORDER), '', 0))


def per_request(func, repeat):
    start = time.perf_counter()
    for index in range(repeat):
        func(index)
    return (time.perf_counter() - start) / repeat


def measure(slots, repeat):
    stats = statslib.VgpuStats(inventory(slots))
    ask = {name: requestslib.requests_from_spec('%s:1' % name, ALIASES)[0]
           for name in ('4q', '1q')}
    for index in range(3):  # a few claims already pending
        stats.apply_requests(ask['1q'], instance='pending-%d' % index)
    devices = len(stats.devices())
    support = per_request(lambda i: stats.support_requests(ask['1q']),
                          repeat)

    def cycle(index):
        stats.consume_requests(ask['1q'], instance='c%d' % index)
        stats.free('c%d' % index)
    consume = per_request(cycle, repeat)
    return devices, len(stats.pools()), support, consume


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=200)
    args = parser.parse_args()
    print('%-8s %8s %6s %14s %22s' % ('slots', 'devices', 'pools',
                                      'support ms', 'consume+free ms'))
    figures = {}
    for slots in (100, 1000, 10000):
        devices, pools, support, consume = measure(slots, args.repeat)
        figures[slots] = support + consume
        print('%-8d %8d %6d %14.3f %22.3f' % (
            slots, devices, pools, support * 1000, consume * 1000))
    print('ratio_10000_vs_100=%.2f' % (figures[10000] / figures[100]))


if __name__ == '__main__':
    main()
