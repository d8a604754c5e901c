"""vGPU slots as PCI-framework devices, and ``pci_passthrough_devices``.

One slot per vGPU a pGPU could hold of each enabled type (the pGPU's
maximum for the type; passthrough: one). A slot has no PCI address; its
uuid is derived from the host, pGPU, type and slot index, so it is the
same across refreshes and process restarts.
"""

import dataclasses
import uuid

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


def group_numa_node(inventory, group_ref):
    """The NUMA node of a group's pGPUs on this host, if they share one.

    XAPI may put a vGPU on any pGPU of the group, so a group spanning
    nodes (or with an unknown node) promises no locality: None.
    """
    nodes = {inventory.numa_node(p) for p, r in inventory.pgpus.items()
             if r.GPU_group == group_ref}
    return nodes.pop() if len(nodes) == 1 else None


@dataclasses.dataclass(frozen=True)
class TypeOnPgpu:
    """One enabled type on one pGPU: the facts its slots share."""

    pgpu_ref: str
    vgpu_type: object
    maximum: int
    owners: tuple  # who holds the first len(owners) slots
    blocked: bool  # another type (or a passed-through device) holds it
    vendor_id: str
    product_id: str
    numa_node: int | None
    group_ref: str

    @property
    def available(self):
        """How many of its slots are free."""
        return 0 if self.blocked else self.maximum - len(self.owners)


def types_on_pgpus(inventory, enabled=(), claimed=None):
    """Each enabled type on each pGPU, without one object per slot:
    what pools are counted from."""
    claimed = claimed or {}
    for pgpu_ref in sorted(inventory.pgpus, key=inventory.address):
        pgpu = inventory.pgpus[pgpu_ref]
        vendor, _, product = inventory.vendor_device(pgpu_ref).partition(
            ':')
        holders = _holders(inventory, pgpu_ref, claimed)
        held = {t for t, _ in holders}
        busy = held or pgpu.PCI in inventory.attached_pcis
        numa = group_numa_node(inventory, pgpu.GPU_group)
        for vgpu_type in inventory.enabled_types(pgpu_ref, enabled):
            yield TypeOnPgpu(
                pgpu_ref, vgpu_type,
                pgpu.supported_VGPU_max_capacities.get(vgpu_type.ref, 0),
                tuple(o for t, o in holders if t == vgpu_type.ref),
                bool(busy) and held != {vgpu_type.ref}, vendor, product,
                numa, pgpu.GPU_group)


def slots(inventory, enabled=(), claimed=None):
    """Every slot of this host, with its status.

    ``claimed`` maps instances to their vGPUs' (group, type, pGPU).
    """
    result = []
    for entry in types_on_pgpus(inventory, enabled, claimed):
        pgpu = inventory.pgpus[entry.pgpu_ref]
        group = inventory.groups.get(entry.group_ref)
        for index in range(entry.maximum):
            if index < len(entry.owners):
                status, owner = 'allocated', entry.owners[index]
            else:
                status = 'unavailable' if entry.blocked else 'available'
                owner = None
            result.append(Slot(
                slot_uuid(inventory.host_uuid, pgpu.uuid,
                          entry.vgpu_type.uuid, index),
                entry.pgpu_ref, pgpu.uuid, inventory.address(entry.pgpu_ref),
                entry.vendor_id, entry.product_id, entry.numa_node,
                entry.vgpu_type, entry.group_ref,
                group.uuid if group else '', index, status, owner))
    return result


def _holders(inventory, pgpu_ref, claimed):
    """(type ref, instance or None) for each vGPU on or claimed onto a
    pGPU: XAPI's VGPUs first, then claims not yet seen as VGPUs."""
    holders = [(v.type, v.other_config.get('nova_instance_uuid'))
               for v in inventory.allocated(pgpu_ref)]
    for instance, vgpus in sorted(claimed.items()):
        holders += [(t, instance) for (_, t), p in vgpus if p == pgpu_ref]
    return holders
