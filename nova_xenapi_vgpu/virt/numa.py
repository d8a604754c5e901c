"""The host's NUMA nodes as Nova's NUMATopology, and a guest's CPU mask.

The nodes, their CPUs, memory and sockets come from the dom0 plugin
(``xl info -n``: Xen's view, not dom0's). Nova fits a NUMA instance's
cells and its PCI devices (the vGPU slots carry their pGPU's node) onto
them; the VM's vCPUs are then kept on the chosen nodes' CPUs.
"""

from nova import objects
from nova.virt import hardware

PAGE_KB = 4


def host_topology(topology):
    """Nova's NUMATopology of the host, or None when the nodes are
    unknown (no dom0 plugin, or no NUMA facts from Xen)."""
    nodes = topology.numa_nodes if topology else ()
    if not nodes or any(n.memory_kib is None for n in nodes):
        return None
    return objects.NUMATopology(cells=[_cell(n) for n in nodes])


def _cell(node):
    cpus = hardware.parse_cpu_spec(node.cpulist) if node.cpulist else set()
    return objects.NUMACell(
        id=node.id, cpuset=cpus, pcpuset=set(),
        memory=node.memory_kib // 1024, cpu_usage=0, memory_usage=0,
        pinned_cpus=set(), siblings=[{cpu} for cpu in sorted(cpus)],
        socket=node.sockets[0] if len(node.sockets) == 1 else None,
        mempages=[objects.NUMAPagesTopology(
            size_kb=PAGE_KB, total=node.memory_kib // PAGE_KB, used=0,
            reserved=0)],
        network_metadata=objects.NetworkMetadata(physnets=set(),
                                                 tunneled=False))


def cpu_mask(topology, instance):
    """The host CPUs of the NUMA nodes Nova chose for ``instance``, as
    XAPI's ``VCPUs_params:mask``; None for an instance without cells."""
    cells = getattr(instance, 'numa_topology', None)
    if not cells or not topology:
        return None
    wanted = {cell.id for cell in cells.cells}
    cpus = set()
    for node in topology.numa_nodes:
        if node.id in wanted and node.cpulist:
            cpus |= hardware.parse_cpu_spec(node.cpulist)
    return ','.join(str(c) for c in sorted(cpus)) or None
