"""vGPU slots as PCI-framework devices, and ``pci_passthrough_devices``.

One slot per vGPU a pGPU could hold of each enabled type (the pGPU's
maximum for the type; passthrough: one). A slot has no PCI address; its
uuid is derived from the host, pGPU, type and slot index, so it is the
same across refreshes and process restarts.
"""

import dataclasses
import uuid

from nova_xenapi_vgpu.host import capacity

DEV_TYPE = 'vgpu'  # Nova's dev_type column is String(8)
NAMESPACE = uuid.UUID('6c6f2f0e-8a4f-5b1d-9c3a-76677075736c')


@dataclasses.dataclass(frozen=True)
class Slot:
    """One vGPU a pGPU can hold: a device of Nova's PCI framework."""

    uuid: str
    pgpu_ref: str
    pgpu_uuid: str
    parent_addr: str
    vendor_id: str
    product_id: str
    numa_node: int | None
    vgpu_type: object
    group_ref: str
    group_uuid: str
    index: int
    status: str
    claimed_by: str | None = None

    def as_nova_device(self):
        """The dict a compute driver reports in pci_passthrough_devices."""
        vgpu_type = self.vgpu_type
        return {
            'address': None, 'uuid': self.uuid, 'dev_type': DEV_TYPE,
            'vendor_id': self.vendor_id, 'product_id': self.product_id,
            'numa_node': self.numa_node, 'parent_addr': self.parent_addr,
            'label': 'label_%s_%s' % (self.vendor_id, self.product_id),
            'dev_id': 'vgpu_%s_%s' % (self.parent_addr.replace(
                ':', '_').replace('.', '_'), self.index),
            'status': self.status,
            'vgpu_type': vgpu_type.model_name,
            'vgpu_type_uuid': vgpu_type.uuid,
            'gpu_group_uuid': self.group_uuid,
            'pgpu_uuid': self.pgpu_uuid,
            'implementation': vgpu_type.implementation,
            'framebuffer_size': str(vgpu_type.framebuffer_size),
            'max_heads': str(vgpu_type.max_heads),
        }


def slot_uuid(host_uuid, pgpu_uuid, type_uuid, index):
    """The stable uuid of a slot."""
    return str(uuid.uuid5(NAMESPACE, '%s/%s/%s/%d' % (
        host_uuid, pgpu_uuid, type_uuid, index)))


def group_numa_nodes(inventory):
    """Each group's NUMA node on this host, where its pGPUs share one.

    XAPI may put a vGPU on any pGPU of the group, so a group spanning
    nodes (or with an unknown node) promises no locality: None.
    """
    nodes = {}
    for ref, pgpu in inventory.pgpus.items():
        nodes.setdefault(pgpu.GPU_group, set()).add(inventory.numa_node(ref))
    return {group: found.pop() if len(found) == 1 else None
            for group, found in nodes.items()}


@dataclasses.dataclass(frozen=True)
class TypeOnPgpu:
    """One enabled type on one pGPU: the facts its slots share."""

    pgpu_ref: str
    vgpu_type: object
    maximum: int
    owners: tuple  # who holds the first len(owners) slots
    available: int  # free slots: XAPI's room for the type (capacity.py)
    vendor_id: str
    product_id: str
    numa_node: int | None
    group_ref: str


def claimed_pgpus(claimed):
    """The pGPUs some claim expects vGPUs on."""
    return {pgpu for vgpus in (claimed or {}).values() for _, pgpu in vgpus}


def pool_counts(inventory, enabled=(), claimed=None, only=None, numa=None):
    """``{(type on pGPU, with pgpu_ref ''): pGPUs alike}``: what pools are
    counted from, worked out once per kind of pGPU (idle pGPUs of a group
    are one kind), not once per pGPU and type; ``only`` some pGPUs."""
    counts = {}
    for _, entries in pgpu_kinds(inventory, enabled, claimed, only, numa):
        for entry in entries:
            counts[entry] = counts.get(entry, 0) + 1
    return counts


def pgpu_kinds(inventory, enabled, claimed, only=None, numa=None):
    """(pGPU ref, its TypeOnPgpu entries with pgpu_ref '') for each pGPU
    (of ``only``) in address order; entries computed once per kind.
    ``numa``: group_numa_nodes(inventory), if the caller has it."""
    by_pgpu = {}
    for instance, vgpus in sorted((claimed or {}).items()):
        for (_, vgpu_type), pgpu in vgpus:
            by_pgpu.setdefault(pgpu, []).append((vgpu_type, instance))
    numa = group_numa_nodes(inventory) if numa is None else numa
    known = {}
    refs = inventory.pgpus if only is None else [
        ref for ref in only if ref in inventory.pgpus]
    for pgpu_ref in sorted(refs, key=inventory.address):
        pgpu = inventory.pgpus[pgpu_ref]
        holders = tuple((v.type, v.other_config.get('nova_instance_uuid'))
                        for v in inventory.allocated(pgpu_ref)) + tuple(
                            by_pgpu.get(pgpu_ref, ()))
        kind = (pgpu.GPU_group, inventory.vendor_device(pgpu_ref),
                numa.get(pgpu.GPU_group), pgpu.enabled_VGPU_types,
                tuple(sorted(pgpu.supported_VGPU_max_capacities.items())),
                holders)
        if kind not in known:
            known[kind] = tuple(_entries(inventory, pgpu_ref, enabled, kind))
        yield pgpu_ref, known[kind]


def _entries(inventory, pgpu_ref, enabled, kind):
    group, ids, numa, _, capacities, holders = kind
    vendor, _, product = ids.partition(':')
    held = {t for t, _ in holders}
    for vgpu_type in inventory.enabled_types(pgpu_ref, enabled):
        maximum = dict(capacities).get(vgpu_type.ref, 0)
        yield TypeOnPgpu(
            '', vgpu_type, maximum,
            tuple(o for t, o in holders if t == vgpu_type.ref),
            capacity.room(maximum, held, len(holders), vgpu_type.ref),
            vendor, product, numa, group)


def slots(inventory, enabled=(), claimed=None, held_by=None):
    """Every slot of this host (or those ``held_by`` an instance), with
    its status. ``claimed`` maps instances to their vGPUs' (group, type,
    pGPU).
    """
    only = None
    if held_by is not None:
        only = {p for _, p in (claimed or {}).get(held_by, ())} | {
            v.resident_on for v in inventory.vgpus.values()
            if v.other_config.get('nova_instance_uuid') == held_by}
    result = []
    for pgpu_ref, entries in pgpu_kinds(inventory, enabled, claimed, only):
        for entry in entries:
            if held_by is None or held_by in entry.owners:
                result.extend(_entry_slots(inventory, pgpu_ref, entry))
    return result


def _entry_slots(inventory, pgpu_ref, entry):
    pgpu = inventory.pgpus[pgpu_ref]
    group = inventory.groups.get(entry.group_ref)
    for index in range(entry.maximum):
        if index < len(entry.owners):
            status, owner = 'allocated', entry.owners[index]
        else:
            status = 'available' if index < len(entry.owners) + (
                entry.available) else 'unavailable'
            owner = None
        yield Slot(
            slot_uuid(inventory.host_uuid, pgpu.uuid, entry.vgpu_type.uuid,
                      index),
            pgpu_ref, pgpu.uuid, inventory.address(pgpu_ref),
            entry.vendor_id, entry.product_id, entry.numa_node,
            entry.vgpu_type, entry.group_ref, group.uuid if group else '',
            index, status, owner)
