"""XAPI's capacity rule on the client side: the one place it lives.

From xapi_pgpu_helpers.ml (get_remaining_capacity_internal): a type has
room on a pGPU only if the pGPU supports it and has it enabled; the VGPUs
allocated there (resident or scheduled) must all be of this same type (one
type per pGPU; passthrough shares with nothing); passthrough is binary (a
maximum of one); a type has the pGPU's maximum for it minus what is
allocated. ``room`` is that rule on plain figures: the inventory's usage,
XAPI's choice model and its search, the pinned rule, the slots and the
provider tree all ask it.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TypeUsage:
    """One vGPU type on one pGPU: capacity, VGPUs holding it, room left.

    ``blocked_by`` says why ``remaining`` is 0 although VGPUs of this
    type would otherwise fit: ``not supported``, ``not enabled``, or
    another type's model name.
    """

    capacity: int
    used: int
    remaining: int
    blocked_by: str | None = None


def room(maximum, held, count, vgpu_type):
    """How many more VGPUs of ``vgpu_type`` fit on a pGPU whose maximum
    for it is ``maximum`` (0: not enabled), holding ``count`` VGPUs of
    the types ``held`` (a collection, empty when the pGPU is idle)."""
    if any(other != vgpu_type for other in held):
        return 0
    return max(maximum - count, 0)


def usage(pgpu, vgpu_type, allocated, types):
    """``vgpu_type``'s usage on ``pgpu`` given the VGPUs allocated there.

    ``types`` maps type refs to VgpuType records (to name other types).
    """
    capacity = pgpu.supported_VGPU_max_capacities.get(vgpu_type.ref, 0)
    used = sum(1 for v in allocated if v.type == vgpu_type.ref)
    blocked = _blocked_by(pgpu, vgpu_type, allocated, types)
    if blocked:
        return TypeUsage(capacity, used, 0, blocked)
    maximum = 1 if vgpu_type.is_passthrough else capacity
    return TypeUsage(capacity, used, room(
        maximum, {v.type for v in allocated}, len(allocated), vgpu_type.ref))


def _blocked_by(pgpu, vgpu_type, allocated, types):
    if vgpu_type.ref not in pgpu.supported_VGPU_types:
        return 'not supported'
    if vgpu_type.ref not in pgpu.enabled_VGPU_types:
        return 'not enabled'
    others = sorted({types[v.type].model_name if v.type in types
                     else v.type for v in allocated
                     if v.type != vgpu_type.ref})
    return ', '.join(others) or None
