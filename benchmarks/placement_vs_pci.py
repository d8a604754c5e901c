#!/usr/bin/env python3
"""The seed's thesis, measured: Placement's allocations vs. the PCI pools.

One sequence of builds (the boot storm's flavors that Placement can
express: one vGPU type, one or two vGPUs) runs twice on a fresh
simulated host, once per allocation algorithm:

- pools: this project's claims (``Builder.attach``), then ``VM.start``;
- placement: the host's provider tree synced to the real Placement
  (in-process, SQLite) every ``--sync-every`` builds, as Nova's periodic
  task would; each build takes the first ``allocation_candidates``
  answer, allocates it, creates its VGPUs in the chosen pGPU's group
  and starts the VM; XAPI then picks the pGPU itself.

Counted per way: ``overcommit`` (accepted, then refused by XAPI at start:
a reschedule in real Nova), ``misplaced`` (started, but on another pGPU
than the one allocated: Placement's usage no longer matches the host).

Last line: ``pci_overcommit=N placement_overcommit=N pci_misplaced=0
placement_misplaced=N``. NUMA requests are not part of this workload.

Usage: python benchmarks/placement_vs_pci.py [--builds 40] [--seed 1]
                                             [--sync-every 10]
"""

import argparse
import collections
import random
import uuid
import warnings

from boot_storm import FLAVORS  # this directory: run as a script
from boot_storm import aliases
from boot_storm import with_algorithm
from nova.compute import provider_tree

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.placement import service
from nova_xenapi_vgpu.placement import sync
from nova_xenapi_vgpu.placement import tree
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session

warnings.filterwarnings('ignore', category=DeprecationWarning)
VERSION = {'OpenStack-API-Version': 'placement 1.39'}
EXPRESSIBLE = sorted(f for f in FLAVORS if FLAVORS[f] != 'passthrough')


def sequence(builds, seed):
    """The flavors to build, the same for both ways."""
    rng = random.Random(seed)
    return [rng.choice(EXPRESSIBLE) for _ in range(builds)]


def new_vm(client, name):
    return client.call('VM.create', {'name_label': name,
                                     'HVM_boot_policy': 'BIOS order'})


def run_pools(client, host, flavors):
    counts = collections.Counter()
    stats = statslib.VgpuStats(reader.read_inventory(client, host))
    builder = lifecycle.Builder(client, stats, host)
    for index, flavor in enumerate(flavors):
        requests = requestslib.requests_from_spec(flavor, aliases())[0]
        instance, vm = 'pci-%d' % index, new_vm(client, 'pci-%d' % index)
        try:
            builder.attach(instance, vm, requests)
        except exception.ClaimRefused:
            counts['refused'] += 1
            continue
        try:
            builder.start(instance, vm)
            counts['started'] += 1
        except exception.XapiError:
            counts['overcommit'] += 1
            builder.detach(instance, vm)
    return counts


class PlacementWay:
    """Builds the Nova-with-Placement way against one host."""

    def __init__(self, client, host, placement):
        self.client, self.host, self.placement = client, host, placement
        self.reporter = sync.Reporter(placement)
        self.node = 'bench-%s' % uuid.uuid4().hex[:8]
        self.providers = provider_tree.ProviderTree()
        self.providers.new_root(self.node, str(uuid.uuid4()))
        self.counts = collections.Counter()

    def sync(self):
        self.inventory = reader.read_inventory(self.client, self.host)
        tree.update_provider_tree(self.inventory, self.providers, self.node)
        self.reporter.sync(self.providers, self.node)
        self.pgpu_of = {
            self.providers.data(tree.provider_name(
                self.node, self.inventory.address(ref))).uuid: ref
            for ref in self.inventory.pgpus}

    def build(self, index, flavor):
        model = FLAVORS[flavor]
        count = int(flavor.split(':')[1])
        consumer = str(uuid.uuid4())
        allocation = self._allocate(consumer, model, count)
        if allocation is None:
            self.counts['refused'] += 1
            return
        pgpu_ref = self.pgpu_of[allocation]
        type_ref = next(r for r, t in self.inventory.types.items()
                        if t.model_name == model)
        vm = new_vm(self.client, 'placement-%d' % index)
        vgpus = [self.client.call(
            'VGPU.create', vm, self.inventory.pgpus[pgpu_ref].GPU_group,
            str(device), {}, type_ref) for device in range(count)]
        try:
            self.client.call('VM.start', vm, False, False)
        except exception.XapiError:
            self.counts['overcommit'] += 1
            self.placement.delete('/allocations/%s' % consumer,
                                  headers=VERSION)
            return
        self.counts['started'] += 1
        resident = {self.client.call('VGPU.get_resident_on', v)
                    for v in vgpus}
        if resident != {pgpu_ref}:
            self.counts['misplaced'] += 1

    def _allocate(self, consumer, model, count):
        root = self.providers.data(self.node).uuid
        found = self.placement.get(
            '/allocation_candidates?resources=%s:%d&in_tree=%s&limit=1' % (
                tree.resource_class(model), count, root),
            headers=VERSION, raise_exc=False)
        if found.status_code == 400:  # a class no provider of it offers
            return None
        found = found.json()['allocation_requests']
        if not found:
            return None
        allocations = found[0]['allocations']
        resp = self.placement.put(
            '/allocations/%s' % consumer, headers=VERSION,
            raise_exc=False,
            json={'allocations': allocations, 'consumer_generation': None,
                  'project_id': 'bench', 'user_id': 'bench',
                  'consumer_type': 'INSTANCE'})
        assert resp.status_code == 204, resp.text
        return next(iter(allocations))


def run_placement(client, host, flavors, placement, sync_every):
    way = PlacementWay(client, host, placement)
    for index, flavor in enumerate(flavors):
        if index % sync_every == 0:
            way.sync()
        way.build(index, flavor)
    return way.counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='mixed')
    parser.add_argument('--builds', type=int, default=40)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--sync-every', type=int, default=10)
    args = parser.parse_args()
    flavors = sequence(args.builds, args.seed)
    totals = {'pci': collections.Counter(), 'placement': collections.Counter()}
    print('%-13s %-9s %7s %7s %10s %9s' % (
        'algorithm', 'way', 'started', 'refused', 'overcommit', 'misplaced'))
    with service.serve() as placement:
        for algorithm in ('depth_first', 'breadth_first'):
            for way in ('pci', 'placement'):
                with server.Simulator(with_algorithm(
                        args.profile, algorithm)) as sim, \
                        session.XapiClient(sim.url, sim.username,
                                           sim.password) as client:
                    host = identity.resolve_host(client)
                    counts = run_pools(client, host, flavors) if (
                        way == 'pci') else run_placement(
                            client, host, flavors, placement,
                            args.sync_every)
                print('%-13s %-9s %7d %7d %10d %9d' % (
                    algorithm, way, counts['started'], counts['refused'],
                    counts['overcommit'], counts['misplaced']))
                totals[way].update(counts)
    print('pci_overcommit=%d placement_overcommit=%d pci_misplaced=%d '
          'placement_misplaced=%d' % (
              totals['pci']['overcommit'], totals['placement']['overcommit'],
              totals['pci']['misplaced'], totals['placement']['misplaced']))


if __name__ == '__main__':
    main()
