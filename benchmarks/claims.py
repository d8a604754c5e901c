#!/usr/bin/env python3
"""Claims: support_requests, consume_requests and free on growing hosts.

Hosts of Tesla M60 pGPUs (75 vGPU slots each, every type enabled) with
about 100, 1,000 and 10,000 slot devices; a few claims already pending.
The pools are counted per type and pGPU and the start-order search runs
over pGPU shapes, so the cost per request should grow with the pools,
not with the slots. Prints a table, then ``ratio_10000_vs_100=X`` (the
time per request at 10,000 slots over that at 100; target <= 3).

Then one decision on 32 M60 pGPUs owing 60 stopped instances' vGPUs of
six types, pinned (one pGPU per group: per-pGPU arithmetic) and shared
(one group: the search over start orders, cut at its time budget):
``pinned_decision_ms=X shared_decision_ms=Y`` after each outcome.

Usage: python benchmarks/claims.py [--repeat 200]
"""

import argparse
import dataclasses
import math
import time
import types

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.simulator import events
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import world
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.xapi import records

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


MIX = ('GRID M60-1Q', 'GRID M60-2Q', 'GRID M60-4Q', 'GRID M60-8Q',
       'GRID M60-1B', 'GRID M60-2B')


def owing(base, pending, pinned):
    """``base`` with ``pending`` stopped instances owed one vGPU each of
    the six types in turn, as the types' pGPUs would hold them; pinned:
    every pGPU in a group of its own."""
    groups, pgpus = dict(base.groups), dict(base.pgpus)
    if pinned:
        template = next(iter(base.groups.values()))
        groups = {}
        for ref, pgpu in base.pgpus.items():
            group = 'OpaqueRef:pinned-' + ref
            groups[group] = dataclasses.replace(
                template, ref=group, uuid='uuid-' + group, PGPUs=(ref,))
            pgpus[ref] = dataclasses.replace(pgpu, GPU_group=group)
    by_name = {t.model_name: ref for ref, t in base.types.items()}
    order = iter(sorted(pgpus, key=base.address))
    vgpus, room = {}, {}
    for index in range(pending):
        name = MIX[index % len(MIX)]
        if not room.get(name):  # each type fills pGPUs of its own
            pgpu = next(order)
            room[name] = [pgpu] * pgpus[pgpu].supported_VGPU_max_capacities[
                by_name[name]]
        pgpu = room[name].pop()
        ref = 'OpaqueRef:owed-%d' % index
        vgpus[ref] = records.Vgpu(
            ref, ref, 'OpaqueRef:vm-%d' % index, pgpus[pgpu].GPU_group,
            by_name[name], '0', False, None,
            {tags.HOST: base.host_uuid, tags.INSTANCE: 'owed-%d' % index})
    return dataclasses.replace(base, groups=groups, pgpus=pgpus,
                               vgpus=vgpus)


def decision(pinned, repeat=3):
    """(ms per decision, outcome) of one 1Q request on 32 pGPUs owing 60
    vGPUs: pinned, stopped instances laid out per type; shared, claims
    of the six types accepted one after the other (as many as the rule
    accepts)."""
    base = inventory(32 * SLOTS_PER_M60)
    stats = statslib.VgpuStats(owing(base, 60, True) if pinned else base)
    if not pinned:
        aliases = aliaslib.parse_aliases(
            ['{"name": "t%d", "vgpu_type": "%s"}' % item
             for item in enumerate(MIX)])
        for index in range(60):
            spec = 't%d:1' % (index % len(MIX))
            try:
                stats.apply_requests(requestslib.requests_from_spec(
                    spec, aliases)[0], instance='owed-%d' % index)
            except exception.ClaimRefused:
                pass
    request = requestslib.requests_from_spec('1q:1', ALIASES)[0]
    start = time.perf_counter()
    for _ in range(repeat):
        try:
            stats.explain(request)
            outcome = 'accepted'
        except exception.ClaimRefused as exc:
            outcome = 'refused (%s)' % exc
    return ((time.perf_counter() - start) / repeat * 1000, outcome,
            len(stats.claims) or 60)


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
    pinned, pinned_outcome, owed = decision(True)
    print('pinned: %d owed, %s' % (owed, pinned_outcome))
    shared, shared_outcome, owed = decision(False)
    print('shared: %d owed, %s' % (owed, shared_outcome))
    print('pinned_decision_ms=%.2f shared_decision_ms=%.1f' % (
        pinned, shared))


if __name__ == '__main__':
    main()
