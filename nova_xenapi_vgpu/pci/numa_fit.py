"""The pools as Nova's NUMA fitting reads a PciDeviceStats.

``nova.virt.hardware.numa_fit_instance_to_host`` reads ``pools`` (their
``numa_node`` and ``count``) to order the host cells, then asks
``support_requests(pci_requests, provider_mapping, cells)`` for each set
of cells it tries. This view answers both from ``VgpuStats``, with vGPU
requests given where Nova passes its InstancePCIRequests.
"""


class NovaPoolsView:
    """``VgpuStats`` where Nova's NUMA fitting expects PciDeviceStats."""

    def __init__(self, stats):
        self.stats = stats

    @property
    def pools(self):
        """The pools as dicts with Nova's ``numa_node`` and ``count``."""
        return [{'numa_node': p.key.numa_node, 'count': p.count}
                for p in self.stats.pools()]

    def support_requests(self, requests, provider_mapping=None, cells=None):
        """Whether ``requests`` fit with the guest on ``cells``."""
        numa_cells = [c.id for c in cells] if cells else None
        return self.stats.support_requests(requests, numa_cells)
