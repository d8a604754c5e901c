#!/usr/bin/env python3
"""The seed's thesis, measured: Placement's allocations vs. the PCI pools.

One sequence of builds (the boot storm's flavors that Placement can
express: one vGPU type, one or two vGPUs; about half of them NUMA
instances: one guest NUMA cell, the vGPU alias's ``numa_policy``
``required``) runs on a fresh simulated host, once per allocation
algorithm and per way:

- pci: Nova's own NUMA fitting (``numa_fit_instance_to_host``) asks this
  project's pools which host cell can take the vGPUs, then the claim
  (``Builder.attach``) and ``VM.start``;
- placement: the host's provider tree synced to the real Placement
  (in-process, SQLite) every ``--sync-every`` builds, as Nova's periodic
  task would; each build takes the first ``allocation_candidates``
  answer, allocates it, creates its VGPUs in the chosen pGPU's group
  and starts the VM; XAPI then picks the pGPU itself. Nova fits a NUMA
  guest's cell without the vGPU: nothing in the request ties the
  Placement allocation to the guest's cell.

Counted per way: ``overcommit`` (accepted, then refused by XAPI at start:
a reschedule in real Nova), ``misplaced`` (started, but on another pGPU
than the one allocated: Placement's usage no longer matches the host),
and per NUMA request ``honoured`` (started, every vGPU on the guest's
cell), ``violated`` (started elsewhere) or refused.

Last line: ``pci_overcommit=N placement_overcommit=N pci_numa_honoured=X
placement_numa_honoured=Y`` (X, Y: honoured of the NUMA requests).

Usage: python benchmarks/placement_vs_pci.py [--builds 40] [--seed 1]
          [--sync-every 10] [--split-by-numa]
"""

import argparse
import collections
import random
import uuid
import warnings

from boot_storm import FLAVORS  # this directory: run as a script
from boot_storm import aliases
from boot_storm import with_algorithm
from nova import objects
from nova.compute import provider_tree
from nova.virt import hardware

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import groups
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import numa_fit
from nova_xenapi_vgpu.placement import service
from nova_xenapi_vgpu.placement import sync
from nova_xenapi_vgpu.placement import tree
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()
VERSION = {'OpenStack-API-Version': 'placement 1.39'}
EXPRESSIBLE = sorted(f for f in FLAVORS if FLAVORS[f] != 'passthrough')
GUEST_VCPUS, GUEST_MIB = 2, 2048


def sequence(builds, seed):
    """(flavor, NUMA instance or not) to build, the same for both ways."""
    rng = random.Random(seed)
    return [(rng.choice(EXPRESSIBLE), rng.random() < 0.5)
            for _ in range(builds)]


def new_vm(client, name):
    return client.call('VM.create', {'name_label': name,
                                     'HVM_boot_policy': 'BIOS order'})


def resident_pgpus(client, vm):
    return {client.call('VGPU.get_resident_on', v)
            for v in client.call('VM.get_VGPUs', vm)}


class Cells:
    """The host's NUMA cells as Nova's scheduler fits guests onto them."""

    def __init__(self, inventory):
        self.host = objects.NUMATopology(cells=[
            _host_cell(n) for n in inventory.topology.numa_nodes])

    def fit(self, pci_requests=None, pci_stats=None):
        """Nova's choice of a cell for a one-cell guest, or None."""
        guest = objects.InstanceNUMATopology(cells=[objects.InstanceNUMACell(
            id=0, cpuset=set(range(GUEST_VCPUS)), pcpuset=set(),
            memory=GUEST_MIB, cpu_policy=None)])
        return hardware.numa_fit_instance_to_host(
            self.host, guest, None, pci_requests=pci_requests,
            pci_stats=pci_stats)

    def use(self, fitted):
        self.host = hardware.numa_usage_from_instance_numa(self.host, fitted)


def _host_cell(node):
    mib = node.memory_kib // 1024
    return objects.NUMACell(
        id=node.id, cpuset=hardware.parse_cpu_spec(node.cpulist),
        pcpuset=set(), memory=mib, cpu_usage=0, memory_usage=0,
        pinned_cpus=set(), siblings=[], socket=node.sockets[0],
        mempages=[objects.NUMAPagesTopology(size_kb=4, total=mib * 256,
                                            used=0)])


def judge_numa(counts, inventory, fitted, pgpus):
    """Count a started NUMA instance as honoured or violated."""
    cells = {c.id for c in fitted.cells}
    nodes = {inventory.numa_node(p) for p in pgpus}
    counts['numa_honoured' if nodes <= cells else 'numa_violated'] += 1


class PoolsWay:
    """Builds the way this project does: Nova's NUMA fit over the pools."""

    def __init__(self, client, host):
        self.client = client
        self.builder = lifecycle.Builder.for_host(client, host)
        self.cells = Cells(self.builder.stats.inventory)
        self.counts = collections.Counter()

    def build(self, index, flavor, numa):
        requests = requestslib.requests_from_spec(
            flavor, aliases(), 'required' if numa else None)[0]
        instance, vm = 'pci-%d' % index, new_vm(self.client, 'pci-%d' % index)
        fitted, cells = None, None
        if numa:
            fitted = self.cells.fit(requests, numa_fit.NovaPoolsView(
                self.builder.stats))
            cells = fitted and [c.id for c in fitted.cells]
        try:
            if numa and not cells:
                raise exception.ClaimRefused(reason='no cell fits')
            self.builder.attach(instance, vm, requests, cells)
        except exception.ClaimRefused:
            self.counts['refused'] += 1
            return
        try:
            self.builder.start(instance, vm)
        except exception.XapiError:
            self.counts['overcommit'] += 1
            self.builder.detach(instance, vm)
            return
        self.counts['started'] += 1
        if numa:
            judge_numa(self.counts, self.builder.stats.inventory, fitted,
                       resident_pgpus(self.client, vm))
            self.cells.use(fitted)


class PlacementWay:
    """Builds the Nova-with-Placement way against one host."""

    def __init__(self, client, host, placement, sync_every):
        self.client, self.host, self.placement = client, host, placement
        self.sync_every = sync_every
        self.dom0 = dom0.Dom0Plugin(client, host)
        self.cells = Cells(reader.read_inventory(client, host, self.dom0))
        self.reporter = sync.Reporter(placement)
        self.node = 'bench-%s' % uuid.uuid4().hex[:8]
        self.providers = provider_tree.ProviderTree()
        self.providers.new_root(self.node, str(uuid.uuid4()))
        self.counts = collections.Counter()

    def sync(self):
        self.inventory = reader.read_inventory(self.client, self.host,
                                               self.dom0)
        tree.update_provider_tree(self.inventory, self.providers, self.node)
        self.reporter.sync(self.providers, self.node)
        self.pgpu_of = {
            self.providers.data(tree.provider_name(
                self.node, self.inventory.address(ref))).uuid: ref
            for ref in self.inventory.pgpus}

    def build(self, index, flavor, numa):
        if index % self.sync_every == 0:
            self.sync()
        model = FLAVORS[flavor]
        count = int(flavor.split(':')[1])
        fitted = self.cells.fit() if numa else None
        consumer = str(uuid.uuid4())
        allocation = self._allocate(consumer, model, count)
        if allocation is None:
            self.counts['refused'] += 1
            return
        pgpu_ref = self.pgpu_of[allocation]
        vm = new_vm(self.client, 'placement-%d' % index)
        try:
            self._start(vm, pgpu_ref, model, count)
        except exception.XapiError:
            self.counts['overcommit'] += 1
            self.placement.delete('/allocations/%s' % consumer,
                                  headers=VERSION)
            return
        self.counts['started'] += 1
        resident = resident_pgpus(self.client, vm)
        if resident != {pgpu_ref}:
            self.counts['misplaced'] += 1
        if numa:
            judge_numa(self.counts, self.inventory, fitted, resident)
            self.cells.use(fitted)

    def _start(self, vm, pgpu_ref, model, count):
        """VGPUs in the allocated pGPU's group; XAPI picks at start."""
        type_ref = next(r for r, t in self.inventory.types.items()
                        if t.model_name == model)
        for device in range(count):
            self.client.call(
                'VGPU.create', vm, self.inventory.pgpus[pgpu_ref].GPU_group,
                str(device), {}, type_ref)
        self.client.call('VM.start', vm, False, False)

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


ROW = '%-13s %-9s %7s %7s %10s %9s %4s %8s %8s'
COLUMNS = ('started', 'refused', 'overcommit', 'misplaced', 'numa',
           'numa_honoured', 'numa_violated')


def run(args, algorithm, way, placement):
    """One way's counts on a fresh host with every group on ``algorithm``."""
    with server.Simulator(with_algorithm(args.profile, algorithm)) as sim, \
            session.XapiClient(sim.url, sim.username,
                               sim.password) as client:
        host = identity.resolve_host(client)
        if args.split_by_numa:
            inventory = reader.read_inventory(client, host,
                                              dom0.Dom0Plugin(client, host))
            groups.apply(client, inventory, groups.propose(inventory))
        builder = PoolsWay(client, host) if way == 'pci' else PlacementWay(
            client, host, placement, args.sync_every)
        for index, (flavor, numa) in enumerate(sequence(args.builds,
                                                        args.seed)):
            builder.counts['numa'] += numa
            builder.build(index, flavor, numa)
        return builder.counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='mixed')
    parser.add_argument('--builds', type=int, default=40)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--sync-every', type=int, default=10)
    parser.add_argument('--split-by-numa', action='store_true',
                        help='Split GPU groups per NUMA node first, as '
                             '"gpu-groups split --by numa --apply" does.')
    args = parser.parse_args()
    totals = {'pci': collections.Counter(), 'placement': collections.Counter()}
    print(ROW % (('algorithm', 'way') + COLUMNS[:5] + ('honoured',
                                                        'violated')))
    with service.serve() as placement:
        for algorithm in ('depth_first', 'breadth_first'):
            for way in ('pci', 'placement'):
                counts = run(args, algorithm, way, placement)
                print(ROW % ((algorithm, way) + tuple(
                    counts[c] for c in COLUMNS)))
                totals[way].update(counts)
    pci, placed = totals['pci'], totals['placement']
    print('numa_requests=%d pci_misplaced=%d placement_misplaced=%d '
          'pci_numa_violated=%d placement_numa_violated=%d' % (
              pci['numa'], pci['misplaced'], placed['misplaced'],
              pci['numa_violated'], placed['numa_violated']))
    print('pci_overcommit=%d placement_overcommit=%d pci_numa_honoured=%d '
          'placement_numa_honoured=%d' % (
              pci['overcommit'], placed['overcommit'], pci['numa_honoured'],
              placed['numa_honoured']))

if __name__ == '__main__':
    main()
