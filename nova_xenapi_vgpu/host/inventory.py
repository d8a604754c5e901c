"""This host's GPU groups, pGPUs, vGPU types and VGPUs: a pure model.

Built from plain records (``host/reader.py`` makes the XAPI calls), so
tests build it directly, with no XAPI behind it.
"""

import dataclasses
import functools
import re

from nova_xenapi_vgpu.host import capacity


@dataclasses.dataclass(frozen=True)
class HostInventory:
    """A consistent picture of one host's GPUs."""

    host_ref: str
    groups: dict
    pgpus: dict
    types: dict
    vgpus: dict
    pcis: dict
    topology: object = None
    host: object = None  # the host record, when read
    token: str = ''  # event.from's token for the next refresh

    @property
    def host_uuid(self):
        """This host's uuid ('' when the record was not read)."""
        return self.host.uuid if self.host else ''

    @property
    def host_name(self):
        """This host's name label ('' when the record was not read)."""
        return self.host.name_label if self.host else ''

    def stopped(self):
        """VGPUs claimed on this host for instances whose VMs do not run:
        ``{VM ref: [VGPU, ...]}`` in device order."""
        by_vm = {}
        for vgpu in self.vgpus.values():
            if vgpu.resident_on is None and (
                    vgpu.scheduled_to_be_resident_on is None):
                by_vm.setdefault(vgpu.VM, []).append(vgpu)
        return {vm: sorted(v, key=lambda g: int(g.device or 0))
                for vm, v in by_vm.items()}

    def with_topology(self, topology):
        """The same inventory with the dom0 plugin's topology."""
        return dataclasses.replace(self, topology=topology)

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
        """Enabled types of a pGPU, limited to ``model_names`` if given,
        in natural order (``T4-2Q`` before ``T4-16Q``)."""
        result = []
        for ref in self.pgpus[pgpu_ref].enabled_VGPU_types:
            vgpu_type = self.types.get(ref)
            if vgpu_type and (not model_names
                              or vgpu_type.model_name in model_names):
                result.append(vgpu_type)
        return sorted(result, key=lambda t: natural_key(t.model_name))

    def allocated(self, pgpu_ref):
        """VGPUs resident on or scheduled onto a pGPU."""
        return self._allocated.get(pgpu_ref, [])

    @functools.cached_property
    def _allocated(self):
        return allocated_by_pgpu(self.vgpus)

    @functools.cached_property
    def shared_groups(self):
        """``{group ref: pGPUs of this host in it}`` for groups holding
        more than one pGPU of this host (not pinned): empty when pinned."""
        members = {}
        for ref, pgpu in self.pgpus.items():
            members.setdefault(pgpu.GPU_group, []).append(ref)
        return {group: refs for group, refs in members.items()
                if len(refs) > 1}

    def usage(self, pgpu_ref, vgpu_type):
        """Capacity of ``vgpu_type`` on a pGPU, as XAPI counts it."""
        pgpu = self.pgpus[pgpu_ref]
        return capacity.usage(pgpu, vgpu_type, self.allocated(pgpu_ref),
                              self.types)


def allocated_by_pgpu(vgpus):
    """``{pGPU ref: VGPUs resident on or scheduled onto it}``."""
    by_pgpu = {}
    for vgpu in vgpus.values():
        for pgpu in {vgpu.resident_on, vgpu.scheduled_to_be_resident_on}:
            if pgpu is not None:
                by_pgpu.setdefault(pgpu, []).append(vgpu)
    return by_pgpu


def natural_key(text):
    """Sort key treating digit runs as numbers: ``1Q < 2Q < 16Q``."""
    return [int(part) if part.isdigit() else part
            for part in re.split(r'(\d+)', text)]
