"""Plain records for pool and claim tests: hosts built with no XAPI."""

import dataclasses

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import inventory as inventorylib
from nova_xenapi_vgpu.xapi import records

HOST = records.Host('OpaqueRef:host', 'host-uuid', 'lab-01', 'lab-01',
                    '10.0.0.1')
M60_TYPES = (('passthrough', 'passthrough', 1), ('GRID M60-1Q', 'nvidia', 8),
             ('GRID M60-4Q', 'nvidia', 2), ('GRID M60-8Q', 'nvidia', 1))
T4_TYPES = (('GRID T4-8Q', 'nvidia_sriov', 2), ('GRID T4-4Q', 'nvidia_sriov',
                                                4))


def type_ref(name):
    return 'OpaqueRef:type-%s' % name.replace(' ', '_')


class HostBuilder:
    """pGPUs in groups, VGPUs on them: a HostInventory from records."""

    def __init__(self):
        self.groups, self.pgpus, self.pcis, self.vgpus = {}, {}, {}, {}
        self.types, self.numa, self.members = {}, {}, {}

    def group(self, name, algorithm='depth_first'):
        ref = 'OpaqueRef:group-%s' % name
        self.groups[ref] = algorithm
        self.members[ref] = []
        return ref

    def pgpu(self, group, address, numa=None, model='m60'):
        catalogue = M60_TYPES if model == 'm60' else T4_TYPES
        for name, impl, _ in catalogue:
            multi = (type_ref(name),) if impl == 'nvidia_sriov' else ()
            self.types[type_ref(name)] = records.VgpuType(
                type_ref(name), 'uuid-' + name, 'NVIDIA', name, 2 ** 30, 4,
                4096, 2160, impl, multi)
        ref = 'OpaqueRef:pgpu-%s' % address
        pci = 'OpaqueRef:pci-%s' % address
        device = '13f2' if model == 'm60' else '1eb8'
        self.pcis[pci] = records.PciDevice(
            pci, 'pci-' + address, address, 'VGA', 'NVIDIA', 'x', HOST.ref,
            '0300', '10de', device)
        refs = tuple(type_ref(n) for n, _, _ in catalogue)
        self.pgpus[ref] = records.Pgpu(
            ref, 'uuid-' + address, pci, group, HOST.ref, refs, refs, (),
            {type_ref(n): m for n, _, m in catalogue}, False)
        self.numa[address] = numa
        self.members[group].append(ref)
        return ref

    def vgpu(self, group, name, pgpu=None, instance=None, device='0',
             vm=None):
        """A VGPU resident on ``pgpu``, or of a stopped instance."""
        ref = 'OpaqueRef:vgpu-%d' % len(self.vgpus)
        config = {tags.HOST: HOST.uuid}
        if instance:
            config[tags.INSTANCE] = instance
        self.vgpus[ref] = records.Vgpu(
            ref, ref, vm or 'OpaqueRef:vm-%s' % (instance or ref), group,
            type_ref(name), device, pgpu is not None, pgpu, config)
        return ref

    def inventory(self, sockets=None):
        groups = {ref: records.GpuGroup(
            ref, 'uuid-' + ref, 'Group of ' + ref, algorithm, ('10de/13f2',),
            tuple(self.members[ref]), (), ())
            for ref, algorithm in self.groups.items()}
        nodes = sorted({n for n in self.numa.values() if n is not None})
        topology = dom0.Topology(
            {a: dom0.DeviceTopology(a, n, None, '10de', None, '0300', None,
                                    None) for a, n in self.numa.items()},
            tuple(dom0.NumaNode(n, '', None, ((sockets or {}).get(n, n),))
                  for n in nodes))
        return inventorylib.HostInventory(
            HOST.ref, groups, dict(self.pgpus), dict(self.types),
            dict(self.vgpus), dict(self.pcis), topology, host=HOST)


def refs_reversed(inventory):
    """``inventory`` with its two pGPUs' refs in the other order than
    their addresses (XAPI's refs are random): :87's ref sorts first."""
    renamed = {'OpaqueRef:pgpu-0000:86:00.0': 'OpaqueRef:z',
               'OpaqueRef:pgpu-0000:87:00.0': 'OpaqueRef:a'}
    return dataclasses.replace(
        inventory,
        pgpus={renamed[r]: dataclasses.replace(p, ref=renamed[r])
               for r, p in inventory.pgpus.items()},
        groups={r: dataclasses.replace(g, PGPUs=tuple(
            renamed[p] for p in g.PGPUs)) for r, g in
            inventory.groups.items()})
