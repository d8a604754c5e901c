"""vGPU types as this host offers them, and what ``enabled_vgpu_types``
names that the host lacks."""

import dataclasses
import difflib

from nova_xenapi_vgpu.host import inventory as inventorylib


@dataclasses.dataclass(frozen=True)
class TypeSummary:
    """A vGPU type on this host: the type, its PCI ids, total and free
    (and in use, where the caller counted it)."""

    vgpu_type: object
    vendor_device: tuple
    total: int
    free: int
    used: int = 0


def offered(inventory, enabled=()):
    """The enabled types of this host's pGPUs (limited to ``enabled``),
    in natural order, with totals over its pGPUs."""
    found = {}
    for pgpu_ref in inventory.pgpus:
        ids = inventory.vendor_device(pgpu_ref)
        for vgpu_type in inventory.enabled_types(pgpu_ref, enabled):
            usage = inventory.usage(pgpu_ref, vgpu_type)
            total, free, used, kinds = found.get(vgpu_type.ref,
                                                 (0, 0, 0, ()))
            found[vgpu_type.ref] = (total + usage.capacity,
                                    free + usage.remaining,
                                    used + usage.used,
                                    tuple(dict.fromkeys(kinds + (ids,))))
    summaries = [TypeSummary(inventory.types[ref], kinds, total, free, used)
                 for ref, (total, free, used, kinds) in found.items()]
    return sorted(summaries, key=lambda s: inventorylib.natural_key(
        s.vgpu_type.model_name))


def missing(inventory, names, where):
    """``<where>: this host offers no <name>[; did you mean ...?]`` for
    each name no pGPU here has enabled."""
    known = sorted({inventory.types[t].model_name
                    for p in inventory.pgpus.values()
                    for t in p.enabled_VGPU_types if t in inventory.types})
    messages = []
    for name in (n for n in names if n not in known):
        close = difflib.get_close_matches(name, known, 3, 0.6)
        hint = '; did you mean %s?' % ' or '.join(close) if close else ''
        messages.append('%s: this host offers no %s%s' % (where, name, hint))
    return messages


def per_vm_maximum(inventory, names):
    """How many vGPUs of any of the types ``names`` one VM may hold: 1
    when none lists itself in ``compatible_types_in_vm`` (XAPI's rule),
    None when XAPI sets no such limit or the host offers none of them."""
    types = [t for t in inventory.types.values() if t.model_name in names]
    if not types or any(t.ref in t.compatible_types_in_vm for t in types):
        return None
    return 1
