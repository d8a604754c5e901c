"""Nova's own NUMA fitting over the pools (plain records, nova objects)."""

import warnings

from nova import objects
from nova.virt import hardware

from nova_xenapi_vgpu.pci import numa_fit
from nova_xenapi_vgpu.pci import stats as statslib
from tests.test_pci_claims import ask
from tests.test_pci_claims import numa_host

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()


def host_cells():
    return objects.NUMATopology(cells=[objects.NUMACell(
        id=node, cpuset=set(range(node * 8, node * 8 + 8)), pcpuset=set(),
        memory=16384, cpu_usage=0, memory_usage=0, pinned_cpus=set(),
        siblings=[], socket=0, mempages=[objects.NUMAPagesTopology(
            size_kb=4, total=16384 * 256, used=0)]) for node in (0, 1)])


def fit(stats, spec):
    guest = objects.InstanceNUMATopology(cells=[objects.InstanceNUMACell(
        id=0, cpuset={0, 1}, pcpuset=set(), memory=1024, cpu_policy=None)])
    fitted = hardware.numa_fit_instance_to_host(
        host_cells(), guest, None, pci_requests=ask(spec),
        pci_stats=numa_fit.NovaPoolsView(stats))
    return fitted and [c.id for c in fitted.cells]


def test_nova_puts_a_required_guest_on_the_cell_with_room():
    host, near, far = numa_host()
    assert fit(statslib.VgpuStats(host.inventory()), 'near:1') is not None
    host.vgpu(near, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:86:00.0')
    stats = statslib.VgpuStats(host.inventory())
    assert fit(stats, 'near:1') == [1]
    host.vgpu(far, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:87:00.0')
    assert fit(statslib.VgpuStats(host.inventory()), 'near:1') is None


def test_the_view_reports_pools_by_numa_node():
    host, near, _ = numa_host()
    host.vgpu(near, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:86:00.0')
    view = numa_fit.NovaPoolsView(statslib.VgpuStats(host.inventory()))
    counts = {}
    for pool in view.pools:
        counts[pool['numa_node']] = counts.get(pool['numa_node'], 0) + (
            pool['count'])
    assert counts[1] > 0
    assert counts.get(0, 0) == 0
    assert not view.support_requests(ask('near:1'), None,
                                     host_cells().cells[:1])


def test_without_cells_the_view_asks_without_numa():
    host, near, _ = numa_host()
    host.vgpu(near, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:86:00.0')
    view = numa_fit.NovaPoolsView(statslib.VgpuStats(host.inventory()))
    assert view.support_requests(ask('near:1'))
    assert view.support_requests(ask('near:1'), None, None)
    assert view.support_requests(ask('near:1'), None, [])
