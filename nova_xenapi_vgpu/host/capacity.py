"""XAPI's capacity rule on the client side: the one place it lives.

From xapi_pgpu_helpers.ml (get_remaining_capacity_internal): a type has
room on a pGPU only if the pGPU supports it and has it enabled; the VGPUs
allocated there (resident or scheduled) must all be of this same type (one
type per pGPU; passthrough shares with nothing); passthrough is binary and
also taken when the pGPU's PCI device is attached to a VM
(``other_config:pci``); a virtual type has the pGPU's maximum for it minus
what is allocated.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TypeUsage:
    """One vGPU type on one pGPU: capacity, VGPUs holding it, room left.

    ``blocked_by`` says why ``remaining`` is 0 although VGPUs of this
    type would otherwise fit: ``not supported``, ``not enabled``, another
    type's model name, or ``PCI device attached``.
    """

    capacity: int
    used: int
    remaining: int
    blocked_by: str | None = None


def usage(pgpu, vgpu_type, allocated, types, pci_attached=False):
    """``vgpu_type``'s usage on ``pgpu`` given the VGPUs allocated there.

    ``types`` maps type refs to VgpuType records (to name other types).
    """
    capacity = pgpu.supported_VGPU_max_capacities.get(vgpu_type.ref, 0)
    used = sum(1 for v in allocated if v.type == vgpu_type.ref)
    blocked = _blocked_by(pgpu, vgpu_type, allocated, types, pci_attached)
    if blocked:
        return TypeUsage(capacity, used, 0, blocked)
    if vgpu_type.is_passthrough:
        return TypeUsage(capacity, used, 0 if allocated else 1)
    return TypeUsage(capacity, used, max(capacity - len(allocated), 0))


def _blocked_by(pgpu, vgpu_type, allocated, types, pci_attached):
    if vgpu_type.ref not in pgpu.supported_VGPU_types:
        return 'not supported'
    if vgpu_type.ref not in pgpu.enabled_VGPU_types:
        return 'not enabled'
    others = sorted({types[v.type].model_name if v.type in types
                     else v.type for v in allocated
                     if v.type != vgpu_type.ref})
    if others:
        return ', '.join(others)
    if vgpu_type.is_passthrough and pci_attached:
        return 'PCI device attached'
    return None
