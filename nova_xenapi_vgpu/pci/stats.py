"""Pools of vGPU slots and the claims on them (Nova's PciDeviceStats).

Built from a host inventory (plain records): one slot per vGPU a pGPU
could hold of each enabled type. Pools group slots like Nova's (vendor,
product, NUMA node, device type) plus the vGPU type and GPU group.
``support_requests``, ``apply_requests``, ``consume_requests`` and
``free`` keep Nova's names; whether a claim is accepted is decided in
``pgpu_choice.py``: per-pGPU arithmetic in pinned groups (one pGPU of the
group on this host), XAPI's own pGPU choice over every order in which the
VMs owed vGPUs in the same shared groups (claimed, or stopped) may start
elsewhere. Pools with a NUMA node exist only where XAPI cannot break the
locality: a group whose pGPUs here span nodes gives pools with none.
"""

import dataclasses
import itertools
import threading

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.pci import pgpu_choice
from nova_xenapi_vgpu.vgpu_types import devices as deviceslib

LOG = logging.getLogger(__name__)
MAX_COMBINATIONS = 64


@dataclasses.dataclass(frozen=True)
class PoolKey:
    """What Nova keys pools by, plus the vGPU type and the GPU group."""

    vendor_id: str
    product_id: str
    numa_node: int | None
    dev_type: str
    vgpu_type: str
    gpu_group: str


@dataclasses.dataclass(frozen=True)
class Pool:
    """Slots alike for a request; ``count`` of them are available."""

    key: PoolKey
    count: int
    group_ref: str
    type_ref: str


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a decision saw: the inventory, the host as XAPI's choice sees
    it, the demands of the VMs owed vGPUs, and the claims."""

    inventory: object
    host: object
    pending: tuple
    claims: tuple = ()


@dataclasses.dataclass(frozen=True)
class Claim:
    """vGPUs promised to an instance: one (group, type) per vGPU, and
    the pGPUs they are expected on."""

    instance: str
    demand: tuple
    pgpus: tuple


class VgpuStats:
    """This host's vGPU pools and claims; safe under concurrent callers."""

    def __init__(self, inventory, enabled=(), budget=None, seconds=None):
        self._lock = threading.RLock()
        self._enabled = tuple(enabled)
        self._budget = budget or pgpu_choice.DEFAULT_BUDGET
        self._seconds = seconds or pgpu_choice.DEFAULT_SECONDS
        self._claims = {}
        self._inventory = None
        self._version = 0  # counts changes of claims and inventory
        self._cache = {}
        self._inventory_cache = {}
        self._update_lock = threading.Lock()
        self.refresh(inventory)

    def update(self, read):
        """Refresh from ``read(current inventory)`` (e.g. reader.refresh),
        one caller at a time: a read that started earlier can never
        replace the result of a later one."""
        with self._update_lock:
            self.refresh(read(self._inventory))

    def refresh(self, inventory):
        """Take a new inventory. A claim whose VGPUs XAPI now shows ends:
        running, they are resident; stopped, their tags keep them owed."""
        with self._lock:
            self._inventory = inventory
            self._inventory_cache = {}
            seen = {}
            for vgpu in inventory.vgpus.values():
                if tags.is_copy(vgpu):
                    continue
                instance = vgpu.other_config.get(tags.INSTANCE)
                seen[instance] = seen.get(instance, 0) + 1
            for instance in [i for i, c in self._claims.items()
                             if seen.get(i, 0) >= len(c.demand)]:
                del self._claims[instance]
            self._version += 1

    @property
    def inventory(self):
        """The inventory the pools were last built from."""
        return self._inventory

    @property
    def claims(self):
        """The claims not yet seen as VGPUs, by instance."""
        with self._lock:
            return dict(self._claims)

    # -- the devices and pools Nova sees ----------------------------------

    def devices(self):
        """The slots, each a PCI-framework device with its status."""
        with self._lock:
            return deviceslib.slots(self._inventory, self._enabled,
                                    self._claimed_on())

    def pools(self):
        """Pools of slots; ``count`` is what is available now. Worked out
        per kind of pGPU and kept until the claims or inventory change:
        the cost does not grow with the number of slots."""
        return self._cached('pools', self._count_pools)

    def _cached(self, name, make):
        """``make()``, kept until the claims or the inventory change."""
        with self._lock:
            if self._cache.get('version') != self._version:
                self._cache = {'version': self._version}
            if name not in self._cache:
                self._cache[name] = make()
            return self._cache[name]

    def _count_pools(self):
        """Counts of the claim-free host (kept per inventory), corrected
        for the pGPUs claims expect vGPUs on."""
        claimed = self._claimed_on()
        touched = deviceslib.claimed_pgpus(claimed)
        base, per_pgpu = self._per_inventory('base', self._base_counts)
        counts = dict(base)
        for ref in touched & set(per_pgpu):
            for entry in per_pgpu[ref]:
                counts[entry] -= 1
        numa = self._per_inventory('numa', lambda: (
            deviceslib.group_numa_nodes(self._inventory)))
        for entry, alike in deviceslib.pool_counts(
                self._inventory, self._enabled, claimed, touched,
                numa).items():
            counts[entry] = counts.get(entry, 0) + alike
        totals, refs = {}, {}
        for entry, alike in counts.items():
            group = self._inventory.groups.get(entry.group_ref)
            key = PoolKey(entry.vendor_id, entry.product_id, entry.numa_node,
                          deviceslib.DEV_TYPE, entry.vgpu_type.model_name,
                          group.uuid if group else '')
            totals[key] = totals.get(key, 0) + entry.available * alike
            refs[key] = (entry.group_ref, entry.vgpu_type.ref)
        return [Pool(key, totals[key], *refs[key])
                for key in sorted(totals, key=_pool_order)]

    def _base_counts(self):
        per_pgpu = dict(deviceslib.pgpu_kinds(self._inventory,
                                              self._enabled, {}))
        counts = {}
        for entries in per_pgpu.values():
            for entry in entries:
                counts[entry] = counts.get(entry, 0) + 1
        return counts, per_pgpu

    def _per_inventory(self, name, make):
        """``make()``, kept until the inventory changes (``refresh`` empties
        the cache: an id() of the old inventory could be reused)."""
        if name not in self._inventory_cache:
            self._inventory_cache[name] = make()
        return self._inventory_cache[name]

    # -- requests ------------------------------------------------------------

    def support_requests(self, requests, numa_cells=None):
        """Whether the host can promise ``requests`` (nothing changes):
        decided under the lock, as a claim is."""
        try:
            with self._lock:
                self._plan(requests, numa_cells)
        except exception.ClaimRefused as exc:
            LOG.debug('Cannot support %s: %s', requests, exc)
            return False
        return True

    def apply_requests(self, requests, numa_cells=None, instance=None):
        """Claim ``requests`` for ``instance``.

        :raises: ClaimRefused saying why (Nova's PciDeviceRequestFailed).
        """
        with self._lock:
            try:
                demand = self._plan(requests, numa_cells)
            except exception.ClaimRefused as exc:
                exc.snapshot = self.snapshot()
                raise
            _, pgpus = self._host(with_claims=True).predict(demand)
            claim = Claim(instance or 'claim-%d' % len(self._claims),
                          demand, tuple(pgpus))
            self._claims[claim.instance] = claim
            self._version += 1
            return claim

    def claim_demand(self, instance, demand):
        """Claim an exact demand ((group, type) per vGPU), e.g. the vGPUs
        of a VM arriving from another host.

        :raises: ClaimRefused.
        """
        with self._lock:
            reason = self._refusal(tuple(demand))
            if reason:
                raise exception.ClaimRefused(reason=reason)
            _, pgpus = self._host(with_claims=True).predict(tuple(demand))
            claim = Claim(instance, tuple(demand), tuple(pgpus))
            self._claims[instance] = claim
            self._version += 1
            return claim

    def consume_requests(self, requests, numa_cells=None, instance=None):
        """Claim ``requests`` and return the slots (devices) taken.

        :raises: ClaimRefused.
        """
        with self._lock:
            claim = self.apply_requests(requests, numa_cells, instance)
            return self.devices_of(claim.instance)

    def snapshot(self):
        """What a decision would see now (for judges and debugging)."""
        with self._lock:
            return Snapshot(self._inventory, self._host(),
                            tuple(d for _, d in self._pending()),
                            tuple(self._claims.values()))

    def devices_of(self, instance):
        """The slots an instance's claim holds."""
        with self._lock:
            return [s for s in deviceslib.slots(
                self._inventory, self._enabled, self._claimed_on(),
                held_by=instance) if s.claimed_by == instance]

    def free(self, instance):
        """Release an instance's claim (idempotent)."""
        with self._lock:
            if self._claims.pop(instance, None) is not None:
                self._version += 1

    def explain(self, requests, numa_cells=None):
        """(demand, predicted pGPU refs) a claim would take, or raise.

        :raises: ClaimRefused saying why.
        """
        with self._lock:
            demand = self._plan(requests, numa_cells)
            return demand, self._host(with_claims=True).predict(demand)[1]

    # -- the decision --------------------------------------------------------

    def _plan(self, requests, numa_cells):
        """The demand (group, type per vGPU) to claim, or ClaimRefused."""
        options = [itertools.combinations_with_replacement(
            self._options(r, numa_cells), r.count) for r in requests]
        first_failure = None
        for choice in itertools.islice(itertools.product(*options),
                                       MAX_COMBINATIONS):
            demand = tuple(pair for pairs in choice for pair in pairs)
            reason = self._refusal(demand)
            if reason is None:
                return demand
            first_failure = first_failure or reason
        raise exception.ClaimRefused(reason=first_failure or 'no request')

    def _options(self, request, numa_cells):
        """(group ref, type ref) pairs for a request, best first."""
        pools = [p for p in self.pools() if _matches(p, request)]
        if not pools:
            raise exception.ClaimRefused(
                reason='no pool on this host offers %s for alias %s' % (
                    ' or '.join(request.vgpu_types), request.alias_name))
        pools = self._filter_numa(pools, request, numa_cells)
        if not pools:
            raise exception.ClaimRefused(
                reason='no %s on NUMA node(s) %s (numa_policy %s) for '
                       'alias %s; %s' % (
                           ' or '.join(request.vgpu_types),
                           ', '.join(map(str, numa_cells)),
                           request.numa_policy, request.alias_name,
                           self._numa_hint()))
        pinned = self._host().pinned
        ranked = sorted(enumerate(pools), key=lambda item: (
            _locality(item[1], numa_cells), _packing(item[1], pinned),
            item[0]))
        return list(dict.fromkeys((p.group_ref, p.type_ref)
                                  for _, p in ranked))

    def _numa_hint(self):
        if self._inventory.topology is None:
            return ("this host's NUMA nodes are unknown (the dom0 plugin "
                    'did not answer)')
        return ('a GPU group spanning NUMA nodes promises none (see '
                'gpu-groups split)')

    def _filter_numa(self, pools, request, numa_cells):
        """Nova's NUMA policies (nova/pci/stats.py), pool by pool."""
        if not numa_cells:
            return pools
        cells = set(numa_cells)
        local = [p for p in pools if p.key.numa_node in cells]
        policy = request.numa_policy
        if policy == 'required' or sum(p.count for p in local) >= (
                request.count):
            return local
        if policy == 'socket':
            sockets = self._sockets()
            if sockets is None:
                return []
            wanted = {sockets.get(c) for c in cells}
            return [p for p in pools
                    if p.key.numa_node is not None and sockets.get(
                        p.key.numa_node) in wanted]
        if policy == 'preferred':
            return pools  # every pool; _options ranks the local ones first
        return [p for p in pools if p.key.numa_node in cells
                or p.key.numa_node is None]

    def _sockets(self):
        """NUMA node -> socket, or None when the host does not say."""
        topology = self._inventory.topology
        if topology is None or not topology.numa_nodes or any(
                len(n.sockets) != 1 for n in topology.numa_nodes):
            return None
        return {n.id: n.sockets[0] for n in topology.numa_nodes}

    def _refusal(self, demand):
        """Why XAPI might not honour ``demand`` with the pending claims."""
        reason = self._mix_refusal(demand)
        if reason:
            return reason
        host, pending = self._host(), self._pending()
        stranded = pgpu_choice.pinned_refusal(host, pending, demand)
        if stranded is not None:
            return _explain_stranded(stranded, self._inventory)
        shared = tuple(p for p in demand if p[0] not in host.pinned)
        if not shared:
            return None
        groups = {group for group, _ in shared}
        competing = [(label, tuple(p for p in d if p[0] in groups))
                     for label, d in pending]
        competing = [(label, d) for label, d in competing if d]
        order = pgpu_choice.failing_order(
            host, [d for _, d in competing] + [shared], self._budget,
            self._seconds)
        if order is None:
            return None
        return _explain(order, competing, shared, self._inventory)

    def _mix_refusal(self, demand):
        """compatible_types_in_vm: several vGPUs in one VM must allow it."""
        if len(demand) < 2:
            return None
        types = {t for _, t in demand}
        record = self._inventory.types[next(iter(types))]
        if len(types) > 1 or record.ref not in (
                record.compatible_types_in_vm):
            names = sorted(self._inventory.types[t].model_name
                           for t in types)
            return ('XAPI allows only one vGPU per VM of %s '
                    '(compatible_types_in_vm)' % ' and '.join(names))
        return None

    def _pending(self):
        """(label, demand) of every VM owed vGPUs that is not running:
        stopped instances, then the claims, oldest first."""
        return self._cached('pending', self._find_pending)

    def _find_pending(self):
        pending = []
        for vm, vgpus in sorted(self._inventory.stopped().items()):
            label = vgpus[0].other_config.get(tags.INSTANCE, vm)
            if label not in self._claims:
                pending.append((label, tuple((v.GPU_group, v.type)
                                             for v in vgpus)))
        return pending + [(c.instance, c.demand)
                          for c in self._claims.values()]

    def _host(self, with_claims=False):
        """The host as XAPI's choice sees it; claims predicted onto it."""
        host = self._per_inventory('host', lambda: (
            pgpu_choice.from_inventory(self._inventory)))
        if with_claims:
            for _, demand in self._pending():
                host = host.predict(demand)[0] or host
        return host

    def _claimed_on(self):
        """{instance: (group, type, pGPU) per vGPU} for the slots."""
        return self._cached('claimed', self._place_claims)

    def _place_claims(self):
        claimed, host = {}, self._host()
        for instance, demand in self._pending():
            placed, pgpus = host.predict(demand)
            if placed is None:
                continue
            host = placed
            claimed[instance] = list(zip(demand, pgpus, strict=True))
        return claimed


def _packing(pool, pinned):
    """Pinned pools fullest first (the emptiest pGPU stays free for a
    bigger type), after the shared pools, whose choice is XAPI's."""
    if pool.group_ref not in pinned:
        return (False, 0)
    return (pool.count == 0, pool.count)


def _matches(pool, request):
    """A pool matches a spec of the request: type, and ids if given."""
    for spec in request.spec:
        if pool.key.vgpu_type not in spec.get('vgpu_types', ()):
            continue
        if all(spec.get(k, '').lower() in ('', getattr(pool.key, k))
               for k in ('vendor_id', 'product_id')):
            return True
    return False


def _locality(pool, numa_cells):
    """0 for a pool on the instance's NUMA cells (or with no cells)."""
    return 0 if not numa_cells or pool.key.numa_node in numa_cells else 1


def _explain_stranded(stranded, inventory):
    """A pinned pGPU's refusal in words: what it holds and owes, to whom."""
    def name(vgpu_type):
        known = inventory.types.get(vgpu_type)
        return known.model_name if known else vgpu_type
    pgpu, owed = stranded.pgpu, stranded.owed
    failed = next(i for i, (label, _) in enumerate(owed)
                  if label == stranded.failed)
    holds = 'nothing' if not pgpu.count else '%d x %s' % (
        pgpu.count, name(pgpu.held))
    before = ', '.join('%s (%s)' % (label, name(t))
                       for label, t in owed[:failed]) or 'nothing more'
    where = 'pinned pGPU %s' % (pgpu.address or pgpu.ref)
    if stranded.by_request:
        return '%s has no room for this request (%s): it holds %s and ' \
            'owes %s' % (where, name(owed[failed][1]), holds, before)
    return ('%s cannot hold what it already owes: %s (%s) does not fit '
            'beside %s and %s; that instance is stranded (restore its '
            'type, or move it) and blocks this pGPU only' % (
                where, stranded.failed, name(owed[failed][1]), holds,
                before))


def _pool_order(key):
    return (key.numa_node is None, key.numa_node or 0, key.gpu_group,
            key.vgpu_type)


def _explain(order, pending, demand, inventory):
    """A failing start order in words."""
    labels, remaining = [], list(pending) + [('this request', demand)]
    for step in order:
        index = next(i for i, (_, d) in enumerate(remaining) if d == step)
        labels.append(remaining.pop(index)[0])
    last = order[-1]
    counts = {}
    for _, vgpu_type in last:
        name = inventory.types[vgpu_type].model_name
        counts[name] = counts.get(name, 0) + 1
    types = ', '.join('%d x %s' % (n, name) if n > 1 else name
                      for name, n in counts.items())
    algorithms = ', '.join(sorted({
        inventory.groups[g].allocation_algorithm for g, _ in last
        if g in inventory.groups}))
    if len(labels) == 1:
        return ('XAPI (%s) has no room for %s (%s) on this host' % (
            algorithms, labels[0], types))
    return ('XAPI would not honour every claim: if the VMs start in the '
            'order %s, XAPI (%s) has no pGPU left for %s (%s)' % (
                ' -> '.join(labels), algorithms, labels[-1], types))
