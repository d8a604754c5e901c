"""This host's GPU groups, pGPUs, vGPU types and VGPUs, read in bulk."""

import dataclasses
import functools

from nova_xenapi_vgpu.xapi import records


@dataclasses.dataclass(frozen=True)
class TypeUsage:
    """One vGPU type on one pGPU: capacity, VGPUs holding it, room left."""

    capacity: int
    used: int
    remaining: int


@dataclasses.dataclass
class HostInventory:
    """A consistent picture of one host's GPUs, from five XAPI calls."""

    host_ref: str
    groups: dict
    pgpus: dict
    types: dict
    vgpus: dict
    pcis: dict
    topology: object = None

    @classmethod
    def load(cls, client, host_ref, dom0=None):
        """Read the host's GPU objects in bulk; NUMA via ``dom0`` if given.

        :raises: XapiError, XapiConnectionError, PluginError.
        """
        on_host = 'field "host" = "%s"' % host_ref
        pgpus = records.decode_all(records.Pgpu, client.call(
            'PGPU.get_all_records_where', on_host))
        pcis = records.decode_all(records.PciDevice, client.call(
            'PCI.get_all_records_where', on_host))
        inventory = cls(
            host_ref=host_ref,
            groups=records.decode_all(records.GpuGroup, client.call(
                'GPU_group.get_all_records')),
            pgpus=pgpus,
            types=records.decode_all(records.VgpuType, client.call(
                'VGPU_type.get_all_records')),
            vgpus=_vgpus_on(client, pgpus),
            pcis=pcis)
        if dom0 is not None:
            inventory.topology = dom0.topology(
                [inventory.address(p) for p in pgpus])
        return inventory

    def address(self, pgpu_ref):
        """The PCI address of a pGPU."""
        pci = self.pcis.get(self.pgpus[pgpu_ref].PCI)
        return pci.pci_id if pci else ''

    def vendor_device(self, pgpu_ref):
        """``vendor:device`` ids, from PCI or else the group's GPU type."""
        pgpu = self.pgpus[pgpu_ref]
        pci = self.pcis.get(pgpu.PCI)
        if pci and pci.vendor_id and pci.device_id:
            return '%s:%s' % (pci.vendor_id, pci.device_id)
        group = self.groups.get(pgpu.GPU_group)
        if group and group.GPU_types:
            return group.GPU_types[0].replace('/', ':')
        return ''

    def numa_node(self, pgpu_ref):
        """The pGPU's NUMA node, or None when unknown."""
        if self.topology is None:
            return None
        return self.topology.numa_node_of(self.address(pgpu_ref))

    def enabled_types(self, pgpu_ref, model_names=()):
        """Enabled types of a pGPU, limited to ``model_names`` if given."""
        result = []
        for ref in self.pgpus[pgpu_ref].enabled_VGPU_types:
            vgpu_type = self.types.get(ref)
            if vgpu_type and (not model_names
                              or vgpu_type.model_name in model_names):
                result.append(vgpu_type)
        return sorted(result, key=lambda t: t.model_name)

    def allocated(self, pgpu_ref):
        """VGPUs resident on or scheduled onto a pGPU."""
        return self._allocated.get(pgpu_ref, [])

    @functools.cached_property
    def _allocated(self):
        by_pgpu = {}
        for vgpu in self.vgpus.values():
            for pgpu in {vgpu.resident_on, vgpu.scheduled_to_be_resident_on}:
                if pgpu is not None:
                    by_pgpu.setdefault(pgpu, []).append(vgpu)
        return by_pgpu

    def usage(self, pgpu_ref, vgpu_type):
        """Capacity of ``vgpu_type`` on a pGPU, as XAPI counts it.

        One type per pGPU: a pGPU holding any other type (or a
        passthrough) has no room for this one.
        """
        pgpu = self.pgpus[pgpu_ref]
        capacity = pgpu.supported_VGPU_max_capacities.get(vgpu_type.ref, 0)
        allocated = self.allocated(pgpu_ref)
        used = sum(1 for v in allocated if v.type == vgpu_type.ref)
        blocked = vgpu_type.is_passthrough or any(
            v.type != vgpu_type.ref for v in allocated)
        remaining = 0 if blocked and allocated else max(
            capacity - len(allocated), 0)
        return TypeUsage(capacity, used, remaining)


def _vgpus_on(client, pgpus):
    """VGPUs resident on or scheduled onto ``pgpus``, in one call."""
    if not pgpus:
        return {}
    terms = ['field "%s" = "%s"' % (field, ref) for ref in sorted(pgpus)
             for field in ('resident_on', 'scheduled_to_be_resident_on')]
    return records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records_where', ' or '.join(terms)))
