"""XAPI records decoded to typed values, in one place.

XAPI sends int64 fields as strings; these classes turn them into ints so
that no other module has to.
"""

import dataclasses

NULL_REF = 'OpaqueRef:NULL'


def _int(value):
    return int(value) if value not in (None, '') else 0


def _ref(value):
    return None if value in (None, '', NULL_REF) else value


def _refs(value):
    return tuple(value or ())


def _int_map(value):
    return {key: int(val) for key, val in (value or {}).items()}


def _from(cls, ref, record, converters):
    values = {'ref': ref}
    for field in dataclasses.fields(cls):
        if field.name != 'ref':
            convert = converters.get(field.name, lambda v: v)
            values[field.name] = convert(record.get(field.name))
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class GpuGroup:
    """A GPU_group: pGPUs of one kind, and how xapi fills them."""

    ref: str
    uuid: str
    name_label: str
    allocation_algorithm: str
    GPU_types: tuple
    PGPUs: tuple
    enabled_VGPU_types: tuple
    supported_VGPU_types: tuple

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode a GPU_group record."""
        return _from(cls, ref, record, {
            'GPU_types': _refs, 'PGPUs': _refs,
            'enabled_VGPU_types': _refs, 'supported_VGPU_types': _refs})


@dataclasses.dataclass(frozen=True)
class Pgpu:
    """A physical GPU and the vGPU types it runs."""

    ref: str
    uuid: str
    PCI: str
    GPU_group: str
    host: str
    supported_VGPU_types: tuple
    enabled_VGPU_types: tuple
    resident_VGPUs: tuple
    supported_VGPU_max_capacities: dict
    is_system_display_device: bool
    dom0_access: str

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode a PGPU record."""
        return _from(cls, ref, record, {
            'PCI': _ref, 'GPU_group': _ref, 'host': _ref,
            'supported_VGPU_types': _refs, 'enabled_VGPU_types': _refs,
            'resident_VGPUs': _refs,
            'supported_VGPU_max_capacities': _int_map,
            'is_system_display_device': bool})


@dataclasses.dataclass(frozen=True)
class VgpuType:
    """A vGPU type: a model name and its size."""

    ref: str
    uuid: str
    vendor_name: str
    model_name: str
    framebuffer_size: int
    max_heads: int
    max_resolution_x: int
    max_resolution_y: int
    implementation: str
    compatible_types_in_vm: tuple

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode a VGPU_type record."""
        return _from(cls, ref, record, {
            'framebuffer_size': _int, 'max_heads': _int,
            'max_resolution_x': _int, 'max_resolution_y': _int,
            'compatible_types_in_vm': _refs})

    @property
    def is_passthrough(self):
        """Whether this type hands a whole pGPU to the VM."""
        return self.implementation == 'passthrough'


@dataclasses.dataclass(frozen=True)
class Vgpu:
    """A VGPU object: a VM's claim on a group and type."""

    ref: str
    uuid: str
    VM: str
    GPU_group: str
    type: str
    device: str
    currently_attached: bool
    resident_on: str
    scheduled_to_be_resident_on: str
    other_config: dict

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode a VGPU record."""
        return _from(cls, ref, record, {
            'VM': _ref, 'GPU_group': _ref, 'type': _ref,
            'resident_on': _ref, 'scheduled_to_be_resident_on': _ref,
            'currently_attached': bool, 'other_config': dict})


@dataclasses.dataclass(frozen=True)
class PciDevice:
    """A PCI record; the ``*_id`` fields are empty on older xapi."""

    ref: str
    uuid: str
    pci_id: str
    class_id: str
    vendor_id: str
    device_id: str
    vendor_name: str
    device_name: str
    host: str

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode a PCI record."""
        return _from(cls, ref, record, {
            'host': _ref, 'class_id': lambda v: v or '',
            'vendor_id': lambda v: v or '', 'device_id': lambda v: v or ''})


def decode_all(cls, records):
    """``{ref: record}`` from XAPI -> ``{ref: cls}``."""
    return {ref: cls.from_xapi(ref, record)
            for ref, record in records.items()}
