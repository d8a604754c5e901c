"""vGPU slots as stock Nova's PCI devices: synthetic VF addresses.

Stock Nova 34 tracks only devices with a PCI address. Each slot of a
pinned pGPU (its GPU group holds no other pGPU of this host, so
``VM.start_on`` leaves XAPI no choice) that runs one
vGPU type is reported as a ``type-VF`` whose parent is the pGPU, at an
address in a PCI domain no real device uses:

    domain = 0xf000 | (pGPU's domain << 8) | slot index
    bus, device, function = the pGPU's

so slot 3 of the pGPU ``0000:86:00.0`` is ``f003:86:00.0``. The encoding
depends on nothing but the pGPU's address and the slot's index: it is the
same across restarts and releases. Its product id is per vGPU type (the
low 16 bits of the CRC-32 of the model name), so that a ``[pci] alias``
can ask for one type. Whole-GPU passthrough is the pGPU itself, a
``type-PF`` at its real address: Nova's own PF/VF rules then keep a pGPU
either passed through or carved (with PCI in Placement, which refuses a
PF beside its VFs, a pGPU offering both reports its slots only).
"""

import dataclasses
import re
import zlib

DOMAIN_BASE = 0xf000
MAX_SLOTS = 256
MAX_DOMAIN = 0xf
DOMAIN_PATTERN = 'f[0-9a-f]{3}'
_ADDRESS = re.compile(
    r'^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$')


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A pGPU whose slots are not reported, and why."""

    address: str
    reason: str


@dataclasses.dataclass(frozen=True)
class NovaSlot:
    """Where one of Nova's devices puts a VGPU: group, type, device uuid."""

    uuid: str
    group_ref: str
    vgpu_type: object
    pgpu_ref: str


def synthetic_address(pgpu_address, index):
    """The VF address of slot ``index`` of the pGPU at ``pgpu_address``.

    :raises: ValueError when the pGPU's domain or the index cannot be
             encoded.
    """
    domain, bus, device, function = _parts(pgpu_address)
    if domain > MAX_DOMAIN or not 0 <= index < MAX_SLOTS:
        raise ValueError('cannot encode slot %d of %s' % (index,
                                                          pgpu_address))
    return '%04x:%s:%s.%s' % (DOMAIN_BASE | domain << 8 | index, bus,
                              device, function)


def parse_synthetic(address):
    """``(pGPU address, slot index)`` of a synthetic address, else None."""
    try:
        domain, bus, device, function = _parts(address)
    except ValueError:
        return None
    if domain & DOMAIN_BASE != DOMAIN_BASE:
        return None
    return ('%04x:%s:%s.%s' % ((domain >> 8) & MAX_DOMAIN, bus, device,
                               function), domain & (MAX_SLOTS - 1))


def _parts(address):
    match = _ADDRESS.match((address or '').lower())
    if not match:
        raise ValueError('not a PCI address: %r' % address)
    return int(match.group(1), 16), *match.groups()[1:]


def product_id(model_name):
    """The product id of a vGPU type's slots: stable, from its name."""
    return '%04x' % (zlib.crc32(model_name.encode('utf-8')) & 0xffff)


def reportable(inventory, pgpu_ref, enabled=()):
    """``(vGPU type or None, passthrough type or None)`` of a pGPU, or a
    Skipped saying why Nova cannot be given its slots."""
    address = inventory.address(pgpu_ref)
    pgpu = inventory.pgpus[pgpu_ref]
    members = len(inventory.shared_groups.get(pgpu.GPU_group, [pgpu_ref]))
    if members != 1:
        return Skipped(address, 'its GPU group holds %d pGPUs of this host: '
                       'XAPI, not Nova, would choose the pGPU (run '
                       'gpu-groups pin)' % members)
    types = inventory.enabled_types(pgpu_ref, enabled)
    carved = [t for t in types if not t.is_passthrough]
    if len(carved) > 1:
        return Skipped(address, 'it offers %d vGPU types (%s): Nova cannot '
                       'know a pGPU runs one type at a time (enable one)' % (
                           len(carved), ', '.join(t.model_name
                                                  for t in carved)))
    if carved and int(address[:4], 16) > MAX_DOMAIN:
        return Skipped(address, 'its PCI domain is above %x' % MAX_DOMAIN)
    whole = [t for t in types if t.is_passthrough]
    return (carved[0] if carved else None, whole[0] if whole else None)


def nova_devices(inventory, enabled=(), placement=False):
    """``(devices for pci_passthrough_devices, [Skipped])`` of this host.

    With PCI in Placement (``placement``) Nova refuses a PF and its VFs
    both: a pGPU offering passthrough beside a vGPU type reports its
    slots only.
    """
    devices, skipped = [], []
    for pgpu_ref in sorted(inventory.pgpus, key=inventory.address):
        found = reportable(inventory, pgpu_ref, enabled)
        if isinstance(found, Skipped):
            skipped.append(found)
            continue
        carved, whole = found
        if whole is not None and carved is not None and placement:
            skipped.append(Skipped(
                inventory.address(pgpu_ref), 'its passthrough is not '
                'reported beside %s with PCI in Placement (Nova takes a PF '
                'or its VFs there, not both)' % carved.model_name))
        elif whole is not None:
            devices.append(_pf(inventory, pgpu_ref))
        if carved is not None:
            devices.extend(_vfs(inventory, pgpu_ref, carved))
    return devices, skipped


def _pf(inventory, pgpu_ref):
    vendor, _, product = inventory.vendor_device(pgpu_ref).partition(':')
    return _device(inventory.address(pgpu_ref), 'type-PF', vendor, product,
                   inventory.numa_node(pgpu_ref), None, 'passthrough')


def _vfs(inventory, pgpu_ref, vgpu_type):
    address = inventory.address(pgpu_ref)
    vendor = inventory.vendor_device(pgpu_ref).partition(':')[0]
    pgpu = inventory.pgpus[pgpu_ref]
    count = pgpu.supported_VGPU_max_capacities.get(vgpu_type.ref, 0)
    return [_device(synthetic_address(address, index), 'type-VF', vendor,
                    product_id(vgpu_type.model_name),
                    inventory.numa_node(pgpu_ref), address,
                    vgpu_type.model_name)
            for index in range(min(count, MAX_SLOTS))]


def _device(address, dev_type, vendor, product, numa_node, parent,
            model_name):
    return {'address': address, 'dev_type': dev_type, 'vendor_id': vendor,
            'product_id': product, 'numa_node': numa_node,
            'parent_addr': parent,
            'label': 'label_%s_%s' % (vendor, product),
            'dev_id': 'pci_%s' % address.replace(':', '_').replace('.', '_'),
            'vgpu_type': model_name}


def slot_of(inventory, address, device_uuid, enabled=()):
    """Where Nova's device at ``address`` puts its VGPU on this host, or
    None when the address is no reportable slot or pGPU here."""
    parsed = parse_synthetic(address)
    pgpu_address, index = parsed if parsed else (address, None)
    pgpu_ref = next((ref for ref in inventory.pgpus
                     if inventory.address(ref) == pgpu_address), None)
    if pgpu_ref is None:
        return None
    found = reportable(inventory, pgpu_ref, enabled)
    if isinstance(found, Skipped):
        return None
    vgpu_type = found[0] if index is not None else found[1]
    if vgpu_type is None:
        return None
    return NovaSlot(device_uuid, inventory.pgpus[pgpu_ref].GPU_group,
                    vgpu_type, pgpu_ref)
