#!/usr/bin/env python3
"""Boot storm: concurrent builds through claim -> attach -> start.

Threads build instances of a random mix of flavors (several types,
several vGPUs per VM, passthrough) on one host of the simulator, with a
boot window so that starts overlap; then every instance is deleted. Run
once per allocation algorithm.

Every refusal is judged by an exhaustive judge written apart from the
claim code: it builds its own model of the host from XAPI's records as
the decision saw them (each pGPU's group, enabled types and maxima, the
VGPUs resident or scheduled there, the VGPUs of VMs not running) and the
claims' demands, not from the claim code's model; then it enumerates
every start order and every tie XAPI may break, with XAPI's rules, for
each way the refused request could have been placed; a refusal that some
way would have survived in every order counts as ``refused_feasible``.
The flavors are drawn from the seed before the threads start: a seed
builds the same instances (the threads' interleaving is the
scheduler's).

Then a reboot of the host: every VM is shut down hard and every
accepted instance started again (``VM.start_on``) in a random order;
``restart_failed`` counts those XAPI refuses. ``--layout pinned`` runs
``gpu-groups pin`` first (one pGPU per group): no start order can strand
an accepted instance there; ``shared`` keeps the profile's groups, where
the claim rule covers the claims pending at each decision only.

Last line: ``accepted=N started=N overcommit=N leaked=N
refused_feasible=N restart_failed=N`` (targets: overcommit, leaked and
refused_feasible 0, accepted > 0; restart_failed 0 when pinned).

Usage: python benchmarks/boot_storm.py [--profile mixed] [--builds 60]
                                       [--threads 16] [--seed 1]
                                       [--layout pinned|shared]
"""

import argparse
import collections
import functools
import random
import threading

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session

FLAVORS = {
    'm60-4q:1': 'GRID M60-4Q', 'm60-8q:1': 'GRID M60-8Q',
    'm60-1q:1': 'GRID M60-1Q', 'pt:1': 'passthrough',
    't4-8q:1': 'GRID T4-8Q', 't4-4q:2': 'GRID T4-4Q',
    'gvt:1': 'Intel GVT-g 128M', 'mx:1': 'FirePro S7150 MxGPU 2G'}


def aliases():
    names = {'m60-4q': 'GRID M60-4Q', 'm60-8q': 'GRID M60-8Q',
             'm60-1q': 'GRID M60-1Q', 't4-8q': 'GRID T4-8Q',
             't4-4q': 'GRID T4-4Q', 'gvt': 'Intel GVT-g 128M',
             'mx': 'FirePro S7150 MxGPU 2G'}
    values = ['{"name": "%s", "vgpu_type": "%s"}' % item
              for item in names.items()]
    values.append('{"name": "pt", "vgpu_type": "passthrough", '
                  '"vendor_id": "10de", "product_id": "13f2"}')
    return aliaslib.parse_aliases(values)


# --- the judge: XAPI's rules, apart from the claim code ----------------------

def judge_feasible(pgpus, algorithms, pending, options):
    """Whether some option for the refused VM is honoured in every order.

    ``pgpus``: (group, {type: max}, held type or None, count) per pGPU;
    ``pending``: VMs owed vGPUs, each a tuple of (group, type);
    ``options``: the refused VM's possible demands.
    """
    return any(_every_order(pgpus, algorithms, list(pending) + [option])
               for option in options)


def _every_order(pgpus, algorithms, vms):
    start = tuple(sorted((g, tuple(sorted(c.items())), h or '', n)
                         for g, c, h, n in pgpus))

    @functools.cache
    def ok(state, left):
        for index, vm in enumerate(left):
            rest = left[:index] + left[index + 1:]
            for after in _starts(state, vm, algorithms):
                if after is None or not ok(after, rest):
                    return False
        return True
    return ok(start, tuple(sorted(vms)))


def _starts(state, vm, algorithms):
    states = [state]
    for group, vgpu_type in vm:
        following = []
        for current in states:
            rooms = []
            for index, (g, caps, held, count) in enumerate(current):
                room = 0 if g != group or held not in ('', vgpu_type) else (
                    dict(caps).get(vgpu_type, 0) - count)
                if room > 0:
                    rooms.append((room, index))
            if not rooms:
                return [None]
            best = (max if algorithms[group] == 'breadth_first' else min)(
                room for room, _ in rooms)
            for room, index in rooms:
                if room == best:
                    g, caps, _, count = current[index]
                    changed = list(current)
                    changed[index] = (g, caps, vgpu_type, count + 1)
                    following.append(tuple(sorted(changed)))
        states = following
    return states


def judge_host(snapshot):
    """(pGPUs, algorithms, pending) for judge_feasible, from the records
    in ``snapshot.inventory`` and the claims in ``snapshot.claims``; a
    VM's VGPUs give way to its claim while the claim lasts."""
    inventory = snapshot.inventory
    claimed = {c.instance: c for c in snapshot.claims}
    held = {ref: [] for ref in inventory.pgpus}
    stopped = {}
    for vgpu in sorted(inventory.vgpus.values(), key=lambda v: v.ref):
        if vgpu.other_config.get(tags.INSTANCE) in claimed:
            continue
        where = vgpu.resident_on or vgpu.scheduled_to_be_resident_on
        if where is None:
            stopped.setdefault(vgpu.VM, []).append(vgpu)
        elif where in held:
            held[where].append(vgpu.type)
    pending = [tuple((v.GPU_group, v.type) for v in vgpus)
               for _, vgpus in sorted(stopped.items())]
    pending.extend(tuple(claim.demand) for claim in claimed.values())
    pgpus = [(pgpu.GPU_group, {
        t: pgpu.supported_VGPU_max_capacities.get(t, 0)
        for t in pgpu.enabled_VGPU_types}, held[ref][0] if held[ref] else None,
        len(held[ref])) for ref, pgpu in inventory.pgpus.items()]
    algorithms = {ref: group.allocation_algorithm
                  for ref, group in inventory.groups.items()}
    return pgpus, algorithms, pending


def _ids_match(specs, vendor, product):
    """An alias spec's vendor/product ids, where it gives them."""
    return any(spec.get('vendor_id', vendor).lower() == vendor
               and spec.get('product_id', product).lower() == product
               for spec in specs)


# --- the storm ---------------------------------------------------------------

class Storm:
    """Builds on one host from many threads; counts what happens."""

    def __init__(self, client, host, seed):
        self.client, self.host = client, host
        self.aliases = aliases()
        self.builder = lifecycle.Builder.for_host(client, host)
        self.stats = self.builder.stats
        self.random = random.Random(seed)
        self.counts = collections.Counter()
        self.refusals = []
        self.vms = []
        self.lock = threading.Lock()

    def build(self, index, spec):
        requests = requestslib.requests_from_spec(spec, self.aliases)[0]
        instance = 'storm-%d' % index
        vm = self.client.call('VM.create', {
            'name_label': instance, 'HVM_boot_policy': 'BIOS order'})
        with self.lock:
            self.vms.append((instance, vm))
        try:
            self.builder.attach(instance, vm, requests)
        except exception.ClaimRefused as exc:
            self._record_refusal(exc.snapshot, requests, str(exc))
            return
        self._count('accepted')
        try:
            self.builder.start(instance, vm)
            self._count('started')
        except exception.XapiError as exc:
            self._count('overcommit')
            print('overcommit: %s %s' % (instance, exc.details))

    def _count(self, what):
        with self.lock:
            self.counts[what] += 1

    def _record_refusal(self, snapshot, requests, reason):
        """The host as the claim code saw it when it refused (a snapshot
        taken under the pools' lock), and the ways the request could have
        been placed, for the judge."""
        inventory = snapshot.inventory
        request = requests[0]
        options = set()
        for ref, pgpu in inventory.pgpus.items():
            vendor, _, product = inventory.vendor_device(ref).partition(':')
            for vgpu_type in pgpu.enabled_VGPU_types:
                if inventory.types[vgpu_type].model_name in (
                        request.vgpu_types) and _ids_match(
                            request.spec, vendor, product):
                    options.add(((pgpu.GPU_group, vgpu_type),)
                                * request.count)
        with self.lock:
            self.refusals.append((snapshot, sorted(options), reason))

    def reboot(self):
        """Every VM halted, every accepted instance started again in a
        random order; returns how many XAPI refused."""
        accepted = sorted((i, vm) for i, vm in self.vms
                          if self.client.call('VM.get_VGPUs', vm))
        for _, vm in accepted:
            if self.client.call('VM.get_power_state', vm) != 'Halted':
                self.client.call_async('VM.hard_shutdown', vm)
        self.random.shuffle(accepted)
        failed = 0
        for instance, vm in accepted:
            try:
                self.builder.start_again(vm)
            except exception.XapiError as exc:
                failed += 1
                print('restart failed: %s %s' % (instance, exc.details))
        return failed

    def delete_all(self):
        for instance, vm in self.vms:
            if self.client.call('VM.get_power_state', vm) != 'Halted':
                self.client.call_async('VM.hard_shutdown', vm)
            self.builder.detach(instance, vm)
            self.client.call('VM.destroy', vm)

    def leaked(self):
        vgpus = self.client.call('VGPU.get_all_records')
        tagged = [v for v in vgpus.values()
                  if v['other_config'].get(tags.INSTANCE, '').startswith(
                      'storm-')]
        self.builder.sync()
        return len(tagged) + len(self.stats.claims)

    def refused_feasible(self):
        feasible = 0
        for snapshot, options, reason in self.refusals:
            pgpus, algorithms, pending = judge_host(snapshot)
            if judge_feasible(pgpus, algorithms, pending, options):
                feasible += 1
                print('refused but feasible: %s' % reason)
        return feasible


def draw_flavors(rng, builds):
    """The flavor of each build, drawn before any thread starts."""
    return [rng.choice(sorted(FLAVORS)) for _ in range(builds)]


def with_algorithm(profile, algorithm):
    """A profile's data with every GPU group on ``algorithm``."""
    data = profiles.load(profile)
    for group in data.setdefault('groups', {}).values():
        group['allocation_algorithm'] = algorithm
    return data


def run(profile, algorithm, builds, threads, seed, layout='shared'):
    data = with_algorithm(profile, algorithm)
    data['start_delay_ms'] = 30
    with server.Simulator(data) as sim, session.XapiClient(
            sim.url, sim.username, sim.password,
            pool_size=threads) as client:
        if layout == 'pinned':
            pool = pinning.read_pool(client)
            pinning.apply(client, pool, pinning.propose(pool))
        storm = Storm(client, identity.resolve_host(client), seed)
        queue = list(enumerate(draw_flavors(storm.random, builds)))
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    index, spec = queue.pop()
                storm.build(index, spec)
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        storm.counts['restart_failed'] = storm.reboot()
        storm.delete_all()
        return storm.counts, storm.leaked(), storm.refused_feasible(), len(
            storm.refusals)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='mixed')
    parser.add_argument('--builds', type=int, default=60)
    parser.add_argument('--threads', type=int, default=16)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--layout', choices=('pinned', 'shared'),
                        default='shared')
    args = parser.parse_args()
    total = collections.Counter()
    leaked = feasible = 0
    for algorithm in ('depth_first', 'breadth_first'):
        counts, lost, fine, refused = run(args.profile, algorithm,
                                          args.builds, args.threads,
                                          args.seed, args.layout)
        print('%-13s accepted=%d started=%d refused=%d overcommit=%d '
              'leaked=%d refused_feasible=%d restart_failed=%d' % (
                  algorithm, counts['accepted'], counts['started'], refused,
                  counts['overcommit'], lost, fine,
                  counts['restart_failed']))
        total.update(counts)
        leaked += lost
        feasible += fine
    print('accepted=%d started=%d overcommit=%d leaked=%d '
          'refused_feasible=%d restart_failed=%d' % (
              total['accepted'], total['started'], total['overcommit'],
              leaked, feasible, total['restart_failed']))


if __name__ == '__main__':
    main()
