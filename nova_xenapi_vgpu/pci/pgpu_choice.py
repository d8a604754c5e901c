"""Which pGPU a vGPU gets at start, and the rules for accepting claims.

XAPI, not this plugin, picks the pGPU, when a VM starts (vgpuops.ml,
allocate_vgpu_to_gpu): among the group's pGPUs on the host with room for
the type, ``depth_first`` takes the fullest (least remaining capacity),
``breadth_first`` the emptiest; a VM's vGPUs are placed one after the
other. Among equally good pGPUs its order is not ours to know, so every
tie is a choice the model must survive.

Pinned groups (one pGPU of the group on this host) leave XAPI no choice
once the host is named (``VM.start_on``): a pinned pGPU owes every VGPU of
its group on this host, resident, scheduled, halted or claimed, and a
claim is accepted when those all fit, one type, within capacity: per-pGPU
arithmetic, true in every start order (``pinned_refusal``).

Shared groups: a set of claims is accepted only if XAPI honours every one
of them in every order the VMs may start in, whatever it does with ties,
given what is already resident; anything that passes is accepted (the
check is exact, not conservative). It is decided by a search over start
orders of the VMs competing in the request's groups, memoised on
canonical host states (pGPUs of a group that look alike are
interchangeable), with a budget in states and in time: past it the claim
is refused as unprovable, never accepted unproven.
"""

import collections
import dataclasses
import functools
import time

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import capacity

DEFAULT_BUDGET = 200000
DEFAULT_SECONDS = 1.0  # a shared-group search's time budget


@dataclasses.dataclass(frozen=True)
class Pgpu:
    """What XAPI's choice looks at on one pGPU."""

    ref: str
    group: str
    capacities: tuple  # ((type ref, max per pGPU), ...) of enabled types
    held: str | None = None  # the one type allocated here
    count: int = 0  # VGPUs allocated (resident or scheduled)
    address: str = ''

    @property
    def shape(self):
        """What makes two pGPUs interchangeable to XAPI's choice."""
        return (self.group, self.capacities, self.held or '', self.count)

    def remaining(self, vgpu_type):
        """XAPI's remaining capacity (host/capacity.py's rule)."""
        return _room(self.shape, vgpu_type)

    def take(self, vgpu_type):
        """This pGPU with one more VGPU of ``vgpu_type``."""
        return dataclasses.replace(self, held=vgpu_type,
                                   count=self.count + 1)


@dataclasses.dataclass(frozen=True)
class Host:
    """This host's pGPUs and each group's allocation algorithm.

    ``kinds`` indexes the pGPUs by shape (pGPUs that look alike to XAPI),
    each list in PCI address order, so that a choice looks at kinds of
    pGPU, not at every pGPU.
    """

    pgpus: tuple
    algorithms: dict = dataclasses.field(default_factory=dict)
    kinds: dict = dataclasses.field(default=None, compare=False,
                                    repr=False)

    def __post_init__(self):
        if self.kinds is None:
            kinds = {}
            for index in sorted(range(len(self.pgpus)),
                                key=lambda i: self.pgpus[i].address):
                kinds.setdefault(self.pgpus[index].shape, []).append(index)
            object.__setattr__(self, 'kinds', kinds)

    def candidates(self, group, vgpu_type):
        """The kinds of pGPU XAPI may pick for one VGPU (ties all)."""
        rooms = [(self.pgpus[indexes[0]].remaining(vgpu_type), shape)
                 for shape, indexes in self.kinds.items()
                 if indexes and shape[0] == group]
        rooms = [(room, shape) for room, shape in rooms if room > 0]
        if not rooms:
            return []
        pick = max if self.algorithms.get(group) == 'breadth_first' else min
        best = pick(room for room, _ in rooms)
        return [shape for room, shape in rooms if room == best]

    @functools.cached_property
    def pinned(self):
        """``{group: pGPU index}`` of groups with one pGPU on this host."""
        members = {}
        for index, pgpu in enumerate(self.pgpus):
            members.setdefault(pgpu.group, []).append(index)
        return {group: indexes[0] for group, indexes in members.items()
                if len(indexes) == 1}

    @property
    def shape(self):
        """A canonical key: the multiset of pGPU shapes, with counts."""
        return tuple(sorted((shape, len(indexes))
                            for shape, indexes in self.kinds.items()
                            if indexes))

    def predict(self, demand):
        """One plausible placement (ties to the lowest PCI address): the
        host after it and the pGPU refs, or (None, None) if it fails."""
        pgpus, placed = list(self.pgpus), []
        kinds = {shape: list(indexes) for shape, indexes in
                 self.kinds.items()}
        host = self
        for group, vgpu_type in demand:
            shapes = host.candidates(group, vgpu_type)
            if not shapes:
                return None, None
            index = min((kinds[shape][0] for shape in shapes),
                        key=lambda i: pgpus[i].address)
            kinds[pgpus[index].shape].remove(index)
            pgpus[index] = pgpus[index].take(vgpu_type)
            after = kinds.setdefault(pgpus[index].shape, [])
            after.append(index)
            after.sort(key=lambda i: pgpus[i].address)
            placed.append(pgpus[index].ref)
            host = Host(tuple(pgpus), self.algorithms, kinds)
        return host, placed


def from_inventory(inventory):
    """The host as XAPI's choice sees it: each pGPU's enabled types and
    what is allocated there."""
    pgpus = []
    for ref, pgpu in inventory.pgpus.items():
        held = [v.type for v in inventory.allocated(ref)]
        capacities = tuple(sorted(
            (t, pgpu.supported_VGPU_max_capacities.get(t, 0))
            for t in pgpu.enabled_VGPU_types))
        pgpus.append(Pgpu(
            ref, pgpu.GPU_group, capacities, held[0] if held else None,
            len(held), inventory.address(ref)))
    algorithms = {ref: g.allocation_algorithm
                  for ref, g in inventory.groups.items()}
    return Host(tuple(pgpus), algorithms)


def _room(shape, vgpu_type):
    """Pgpu.remaining, on a shape (group, capacities, held, count)."""
    _, capacities, held, count = shape
    return capacity.room(dict(capacities).get(vgpu_type, 0),
                         (held,) if held else (), count, vgpu_type)


def _take(state, shape, vgpu_type):
    """The multiset ``state`` with one VGPU put on a pGPU of ``shape``."""
    counts = dict(state)
    counts[shape] -= 1
    group, capacities, _, count = shape
    after = (group, capacities, vgpu_type, count + 1)
    counts[after] = counts.get(after, 0) + 1
    return tuple(sorted((s, n) for s, n in counts.items() if n))


class _Search:
    """Depth-first over start orders and tie choices, memoised.

    A host state is the multiset of pGPU shapes: pGPUs that look alike
    are one entry with a count, so the work grows with the kinds of
    pGPU, not their number.
    """

    def __init__(self, budget, algorithms, seconds=DEFAULT_SECONDS):
        self.budget = budget
        self.algorithms = algorithms
        self.memo = {}
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def outcomes(self, state, demand):
        """States XAPI may leave after starting a VM of ``demand``; None
        in the list for a failure."""
        states = [state]
        for group, vgpu_type in demand:
            following = []
            for current in states:
                rooms = [(_room(shape, vgpu_type), shape)
                         for shape, _ in current if shape[0] == group]
                rooms = [(room, shape) for room, shape in rooms if room > 0]
                if not rooms:
                    return [None]
                pick = (max if self.algorithms.get(group) == 'breadth_first'
                        else min)
                best = pick(room for room, _ in rooms)
                following += [_take(current, shape, vgpu_type)
                              for room, shape in rooms if room == best]
            states = following
        return states

    def failing_order(self, state, pending):
        """A start order (list of demands) that XAPI fails, or None."""
        key = (state, pending)
        if key in self.memo:
            return self.memo[key]
        self.budget -= 1
        if self.budget < 0:
            raise exception.ClaimRefused(
                reason='too many claims pending in these GPU groups to '
                       'prove that XAPI honours them all (pin the pGPUs: '
                       'gpu-groups pin)')
        if self.budget % 256 == 0 and time.monotonic() > self.deadline:
            raise exception.ClaimRefused(
                reason='the search over start orders ran out of time '
                       '(%.1f s) before proving that XAPI honours every '
                       'claim in these GPU groups (pin the pGPUs: '
                       'gpu-groups pin)' % self.seconds)
        result = None
        for demand, _ in pending:
            rest = _without(pending, demand)
            for outcome in self.outcomes(state, demand):
                tail = [] if outcome is None else self.failing_order(
                    outcome, rest)
                if tail is not None:
                    result = [demand] + tail
                    break
            if result is not None:
                break
        self.memo[key] = result
        return result


def _without(pending, demand):
    counts = dict(pending)
    counts[demand] -= 1
    return tuple(sorted((d, n) for d, n in counts.items() if n))


def as_pending(demands):
    """A canonical multiset of demands."""
    return tuple(sorted(collections.Counter(demands).items()))


def failing_order(host, demands, budget=DEFAULT_BUDGET,
                  seconds=DEFAULT_SECONDS):
    """A start order of ``demands`` in which XAPI fails one, else None.

    :raises: ClaimRefused when the search exceeds ``budget`` states or
             ``seconds``.
    """
    search = _Search(budget, host.algorithms, seconds)
    return search.failing_order(host.shape, as_pending(demands))


THIS_REQUEST = 'this request'


@dataclasses.dataclass(frozen=True)
class Stranded:
    """A pinned pGPU that cannot take what it owes: who owes what."""

    pgpu: Pgpu
    owed: tuple  # (label, type ref) in the order they were counted
    failed: str  # the label of the first VGPU with no room

    @property
    def by_request(self):
        """Whether this request, not what was owed before, has no room."""
        return self.failed == THIS_REQUEST


def pinned_refusal(host, pending, demand):
    """The first pinned pGPU that cannot take, in any start order, what
    it owes (``pending``: (label, demand) of VMs owed vGPUs) plus the
    pinned part of ``demand``; None when every one can.

    Only pGPUs ``demand`` asks for are judged: a stranded pGPU elsewhere
    blocks nothing here.
    """
    wanted = {host.pinned[g] for g, _ in demand if g in host.pinned}
    owed = {index: [] for index in wanted}
    for label, vgpus in list(pending) + [(THIS_REQUEST, demand)]:
        for group, vgpu_type in vgpus:
            index = host.pinned.get(group)
            if index in owed:
                owed[index].append((label, vgpu_type))
    for index in sorted(wanted, key=lambda i: host.pgpus[i].address):
        pgpu = host.pgpus[index]
        for label, vgpu_type in owed[index]:
            if pgpu.remaining(vgpu_type) == 0:
                return Stranded(host.pgpus[index], tuple(owed[index]), label)
            pgpu = pgpu.take(vgpu_type)
    return None
