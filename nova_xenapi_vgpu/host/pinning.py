"""Pinning: GPU groups that leave XAPI no choice of pGPU.

XAPI picks a vGPU's pGPU among the pGPUs of its group on the host the VM
starts on (vgpuops.ml); a group with one pGPU on a host leaves it no
choice once ``VM.start_on`` names the host, so claims become per-pGPU
arithmetic that no stop, reboot or start order can break. One pGPU *per
host*, not per pool: inside a pool a live migration keeps each VGPU's
group (``VGPU.GPU_group`` is read-only and ``vgpu_map`` serves only
cross-pool moves, xapi_vm_migrate.ml), so a pinned instance moves to a
member where its group has a pGPU too: pGPUs at the same PCI address on
every member share a group.

``propose`` says what ``apply`` would do across the pool: pGPUs that share
a group with another pGPU of their host move to a group named after their
model and address; with ``[vgpu] pgpu_types``, named pGPUs enable that one
type. Nothing anything owes is touched: a pGPU with resident or scheduled
vGPUs stays, and so does every pGPU of a group a stopped instance of that
host owes vGPUs in.
"""

import dataclasses
import functools

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import inventory as inventorylib
from nova_xenapi_vgpu.host import reader


@dataclasses.dataclass(frozen=True)
class Pool:
    """The GPU records of every member of the pool."""

    hosts: dict
    groups: dict
    pgpus: dict
    pcis: dict
    types: dict
    vgpus: dict

    def address(self, pgpu_ref):
        """The PCI address of a pGPU."""
        pci = self.pcis.get(self.pgpus[pgpu_ref].PCI)
        return pci.pci_id if pci else ''

    def owed_in(self, group_ref, host_ref):
        """Stopped instances of ``host_ref`` owed vGPUs in a group."""
        host = self.hosts.get(host_ref)
        return sorted({
            v.other_config.get(tags.INSTANCE, v.VM)
            for v in self.vgpus.values()
            if v.GPU_group == group_ref and host is not None
            and tags.owed_to(v, host.uuid)
            and v.resident_on is None
            and v.scheduled_to_be_resident_on is None})

    def busy(self, pgpu_ref):
        """VGPUs resident on or scheduled onto a pGPU."""
        return self._allocated.get(pgpu_ref, [])

    @functools.cached_property
    def _allocated(self):
        return inventorylib.allocated_by_pgpu(self.vgpus)


def read_pool(client):
    """Every member's GPU records, in one ``event.from``.

    :raises: XapiError, XapiConnectionError, RecordError.
    """
    batch = client.event_from(list(reader.ORDER), '', 0.0)
    found = {name: {} for name in reader.ORDER}
    for event in batch['events']:
        if event['class'] in found and 'snapshot' in event:
            cls, _ = reader.CLASSES[event['class']]
            found[event['class']][event['ref']] = cls.from_xapi(
                event['ref'], event['snapshot'])
    return Pool(found['host'], found['gpu_group'], found['pgpu'],
                found['pci'], found['vgpu_type'], found['vgpu'])


@dataclasses.dataclass(frozen=True)
class Step:
    """One pGPU's part in pinning the pool."""

    pgpu_ref: str
    host: str
    address: str
    group_ref: str
    target: str | None  # the group to move to; None: it stays
    types: tuple  # enabled model names now
    new_types: tuple | None  # enabled model names after; None: unchanged
    blocker: str | None = None  # why it cannot change


def propose(pool, partition=None, short_name=str):
    """The steps that pin every member (``partition``: address -> model
    name, from ``[vgpu] pgpu_types``); none when all is pinned."""
    steps = []
    for pgpu_ref in sorted(pool.pgpus, key=lambda p: (
            _host_name(pool, p), pool.address(p))):
        target, blocker = _target(pool, pgpu_ref, short_name)
        new_types, type_blocker = _retype(pool, pgpu_ref, partition or {})
        if target is None and new_types is None and not blocker:
            continue
        pgpu = pool.pgpus[pgpu_ref]
        steps.append(Step(
            pgpu_ref, _host_name(pool, pgpu_ref), pool.address(pgpu_ref),
            pgpu.GPU_group, target, _names(pool, pgpu.enabled_VGPU_types),
            new_types, blocker or type_blocker))
    return steps


def _host_name(pool, pgpu_ref):
    host = pool.hosts.get(pool.pgpus[pgpu_ref].host)
    return host.name_label if host else ''


def _names(pool, type_refs):
    return tuple(pool.types[t].model_name for t in type_refs
                 if t in pool.types)


def _siblings(pool, pgpu_ref):
    """The pGPUs sharing the group and host of ``pgpu_ref``, by address."""
    pgpu = pool.pgpus[pgpu_ref]
    return sorted((ref for ref, other in pool.pgpus.items()
                   if other.GPU_group == pgpu.GPU_group
                   and other.host == pgpu.host), key=pool.address)


def _target(pool, pgpu_ref, short_name):
    """(group name to move to or None, why it cannot move or None)."""
    siblings = _siblings(pool, pgpu_ref)
    if len(siblings) < 2:
        return None, None
    pgpu = pool.pgpus[pgpu_ref]
    group = pool.groups[pgpu.GPU_group]
    target = '%s %s' % (short_name(group.name_label), pool.address(pgpu_ref))
    owed = pool.owed_in(pgpu.GPU_group, pgpu.host)
    if owed:
        return target, 'owed to stopped instance(s) %s of this group: ' \
            'start them (or move them) first' % ', '.join(owed)
    busy = [s for s in siblings if pool.busy(s)]
    keeper = busy[0] if len(busy) == 1 else (None if busy else siblings[0])
    if pgpu_ref == keeper:
        return None, None
    if pool.busy(pgpu_ref):
        return target, 'holds %d vGPU(s) of running VMs' % len(
            pool.busy(pgpu_ref))
    return target, None


def _retype(pool, pgpu_ref, partition):
    """(enabled model names after, why not) for ``[vgpu] pgpu_types``."""
    pgpu = pool.pgpus[pgpu_ref]
    wanted = partition.get(pool.address(pgpu_ref))
    if wanted is None:
        return None, None
    refs = [t for t in pgpu.supported_VGPU_types
            if t in pool.types and pool.types[t].model_name == wanted]
    if not refs:
        return (wanted,), 'does not support %s ([vgpu] pgpu_types)' % wanted
    if tuple(pgpu.enabled_VGPU_types) == (refs[0],):
        return None, None
    others = {pool.types[v.type].model_name for v in pool.busy(pgpu_ref)
              if v.type != refs[0] and v.type in pool.types}
    if others:
        return (wanted,), 'holds %s' % ', '.join(sorted(others))
    return (wanted,), None


def apply(client, pool, steps):
    """Carry out the steps nothing blocks: groups made (reused by name,
    with the source group's allocation algorithm), pGPUs moved, types set.
    Returns the pGPU refs changed.

    :raises: XapiError, XapiConnectionError.
    """
    by_name = {g.name_label: ref for ref, g in pool.groups.items()}
    done = []
    for step in steps:
        if step.blocker:
            continue
        if step.target is not None:
            if step.target not in by_name:
                by_name[step.target] = _new_group(client, pool, step)
            client.call('PGPU.set_GPU_group', step.pgpu_ref,
                        by_name[step.target])
        if step.new_types is not None:
            client.call('PGPU.set_enabled_VGPU_types', step.pgpu_ref, [
                ref for ref in pool.pgpus[step.pgpu_ref].supported_VGPU_types
                if pool.types[ref].model_name in step.new_types])
        done.append(step.pgpu_ref)
    return done


def _new_group(client, pool, step):
    ref = client.call('GPU_group.create', step.target,
                      'pinned by nova-xenapi-vgpu', {})
    client.call('GPU_group.set_allocation_algorithm', ref,
                pool.groups[step.group_ref].allocation_algorithm)
    return ref


def layout(inventory):
    """``{group ref: pGPUs of this host in it}`` for groups that are not
    pinned here (more than one pGPU of this host): empty when pinned."""
    return inventory.shared_groups
