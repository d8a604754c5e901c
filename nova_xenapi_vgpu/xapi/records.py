"""XAPI records decoded to typed values, in one place.

XAPI sends int64 fields as strings and the null reference as
``OpaqueRef:NULL``; these classes turn them into ints and None, driven by
each field's annotation, so that no other module has to.
"""

import dataclasses
import typing

NULL_REF = 'OpaqueRef:NULL'
Ref = typing.NewType('Ref', str)
IntMap = typing.NewType('IntMap', dict)

_DECODE = {
    str: lambda v: v or '',
    int: lambda v: int(v) if v not in (None, '') else 0,
    bool: bool,
    dict: lambda v: dict(v or {}),
    tuple: lambda v: tuple(v or ()),
    Ref: lambda v: None if v in (None, '', NULL_REF) else v,
    IntMap: lambda v: {k: int(n) for k, n in (v or {}).items()},
}


class _Record:
    """Base of the typed records: decoding by field annotation."""

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode one XAPI record of this class."""
        return cls(ref=ref, **{
            field.name: _DECODE[field.type](record.get(field.name))
            for field in dataclasses.fields(cls) if field.name != 'ref'})


@dataclasses.dataclass(frozen=True)
class GpuGroup(_Record):
    """A GPU_group: pGPUs of one kind, and how xapi fills them."""

    ref: str
    uuid: str
    name_label: str
    allocation_algorithm: str
    GPU_types: tuple
    PGPUs: tuple
    enabled_VGPU_types: tuple
    supported_VGPU_types: tuple


@dataclasses.dataclass(frozen=True)
class Pgpu(_Record):
    """A physical GPU and the vGPU types it runs."""

    ref: str
    uuid: str
    PCI: Ref
    GPU_group: Ref
    host: Ref
    supported_VGPU_types: tuple
    enabled_VGPU_types: tuple
    resident_VGPUs: tuple
    supported_VGPU_max_capacities: IntMap
    is_system_display_device: bool
    dom0_access: str


@dataclasses.dataclass(frozen=True)
class VgpuType(_Record):
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

    @property
    def is_passthrough(self):
        """Whether this type hands a whole pGPU to the VM."""
        return self.implementation == 'passthrough'


@dataclasses.dataclass(frozen=True)
class Vgpu(_Record):
    """A VGPU object: a VM's claim on a group and type."""

    ref: str
    uuid: str
    VM: Ref
    GPU_group: Ref
    type: Ref
    device: str
    currently_attached: bool
    resident_on: Ref
    scheduled_to_be_resident_on: Ref
    other_config: dict


@dataclasses.dataclass(frozen=True)
class PciDevice(_Record):
    """A PCI record; the ``*_id`` fields are empty on older xapi."""

    ref: str
    uuid: str
    pci_id: str
    class_id: str
    vendor_id: str
    device_id: str
    vendor_name: str
    device_name: str
    host: Ref


def decode_all(cls, records):
    """``{ref: record}`` from XAPI -> ``{ref: cls}``."""
    return {ref: cls.from_xapi(ref, record)
            for ref, record in records.items()}
