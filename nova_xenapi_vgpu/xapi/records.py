"""XAPI records decoded to typed values, in one place.

XAPI sends int64 fields as strings and the null reference as
``OpaqueRef:NULL``; these classes turn them into ints and None, driven by
each field's annotation, so that no other module has to.

Decoding is strict: a field without a default must be in the record
(``RecordError`` names the class and the field); a field with a default is
optional, for what older xapi versions do not send.
"""

import dataclasses
import typing
import xmlrpc.client

from nova_xenapi_vgpu import exception

NULL_REF = 'OpaqueRef:NULL'
Ref = typing.NewType('Ref', str)
IntMap = typing.NewType('IntMap', dict)

_DECODE = {
    str: lambda v: v or '',
    int: lambda v: int(v) if v not in (None, '') else 0,
    float: lambda v: float(v) if v not in (None, '') else 0.0,
    bool: bool,
    dict: lambda v: dict(v or {}),
    tuple: lambda v: tuple(v or ()),
    Ref: lambda v: None if v in (None, '', NULL_REF) else v,
    IntMap: lambda v: {k: int(n) for k, n in (v or {}).items()},
}


class _Record:
    """Base of the typed records: decoding by field annotation."""

    XAPI_CLASS = ''

    @classmethod
    def from_xapi(cls, ref, record):
        """Decode one XAPI record of this class.

        :raises: RecordError for a missing required field or a value of
                 the wrong kind.
        """
        values = {}
        for field in dataclasses.fields(cls):
            if field.name == 'ref':
                continue
            if field.name not in record:
                if (field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING):
                    raise exception.RecordError(
                        cls=cls.XAPI_CLASS, ref=ref, field=field.name)
                continue
            try:
                values[field.name] = _DECODE[field.type](record[field.name])
            except (TypeError, ValueError, AttributeError):
                raise exception.RecordError(
                    '%s %s: field %s has a bad value %.60r' % (
                        cls.XAPI_CLASS, ref, field.name,
                        record[field.name])) from None
        return cls(ref=ref, **values)


@dataclasses.dataclass(frozen=True)
class GpuGroup(_Record):
    """A GPU_group: pGPUs of one kind, and how xapi fills them."""

    XAPI_CLASS = 'GPU_group'
    ref: str
    uuid: str
    name_label: str
    allocation_algorithm: str
    GPU_types: tuple
    PGPUs: tuple
    enabled_VGPU_types: tuple
    supported_VGPU_types: tuple
    VGPUs: tuple = ()
    other_config: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Pgpu(_Record):
    """A physical GPU and the vGPU types it runs."""

    XAPI_CLASS = 'PGPU'
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
    dom0_access: str = 'enabled'
    compatibility_metadata: dict = dataclasses.field(default_factory=dict)
    other_config: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class VgpuType(_Record):
    """A vGPU type: a model name and its size."""

    XAPI_CLASS = 'VGPU_type'
    ref: str
    uuid: str
    vendor_name: str
    model_name: str
    framebuffer_size: int
    max_heads: int
    max_resolution_x: int
    max_resolution_y: int
    implementation: str
    compatible_types_in_vm: tuple = ()
    identifier: str = ''
    experimental: bool = False

    @property
    def is_passthrough(self):
        """Whether this type hands a whole pGPU to the VM."""
        return self.implementation == 'passthrough'


@dataclasses.dataclass(frozen=True)
class Vgpu(_Record):
    """A VGPU object: a VM's claim on a group and type."""

    XAPI_CLASS = 'VGPU'
    ref: str
    uuid: str
    VM: Ref
    GPU_group: Ref
    type: Ref
    device: str
    currently_attached: bool
    resident_on: Ref
    other_config: dict
    scheduled_to_be_resident_on: Ref = None
    PCI: Ref = None
    compatibility_metadata: dict = dataclasses.field(default_factory=dict)
    extra_args: str = ''


@dataclasses.dataclass(frozen=True)
class PciDevice(_Record):
    """A PCI record; the ``*_id`` fields are missing on xapi before 25.10."""

    XAPI_CLASS = 'PCI'
    ref: str
    uuid: str
    pci_id: str
    class_name: str
    vendor_name: str
    device_name: str
    host: Ref
    class_id: str = ''
    vendor_id: str = ''
    device_id: str = ''


@dataclasses.dataclass(frozen=True)
class Host(_Record):
    """A XenServer host of the pool."""

    XAPI_CLASS = 'host'
    ref: str
    uuid: str
    name_label: str
    hostname: str
    address: str
    PGPUs: tuple = ()
    PCIs: tuple = ()
    chipset_info: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Vm(_Record):
    """A VM: its power state, where it runs and its VGPUs."""

    XAPI_CLASS = 'VM'
    ref: str
    uuid: str
    name_label: str
    power_state: str
    resident_on: Ref
    VGPUs: tuple
    other_config: dict
    is_control_domain: bool
    is_a_template: bool
    is_a_snapshot: bool = False
    attached_PCIs: tuple = ()
    affinity: Ref = None
    domid: int = -1
    domain_type: str = ''
    HVM_boot_policy: str = ''
    allowed_operations: tuple = ()
    current_operations: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Task(_Record):
    """An Async call's task."""

    XAPI_CLASS = 'task'
    ref: str
    uuid: str
    name_label: str
    status: str
    progress: float
    result: str
    error_info: tuple

    @property
    def done(self):
        """Whether the task has finished, one way or another."""
        return self.status in ('success', 'failure', 'cancelled')

    def value(self):
        """The result, decoded from xapi's XML-RPC ``<value>`` string.

        :raises: RecordError when it is not one.
        """
        if not self.result:
            return ''
        try:
            (value,), _ = xmlrpc.client.loads(
                '<methodResponse><params><param>%s</param></params>'
                '</methodResponse>' % self.result)
        except Exception:  # noqa: BLE001 - expat raises several kinds
            raise exception.RecordError(
                'task %s: result %.60r is not an XML-RPC value' % (
                    self.ref, self.result)) from None
        return value


def decode_all(cls, records):
    """``{ref: record}`` from XAPI -> ``{ref: cls}``.

    :raises: RecordError.
    """
    return {ref: cls.from_xapi(ref, record)
            for ref, record in records.items()}
