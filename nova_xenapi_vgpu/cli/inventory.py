"""``inventory``: this host's GPU groups, pGPUs and vGPU capacity."""

from cliff import lister

from nova_xenapi_vgpu.host import inventory as inventorylib

COLUMNS = ('GPU group', 'Allocation', 'pGPU', 'Vendor:Device', 'NUMA node',
           'vGPU type', 'Capacity', 'In use', 'Remaining')


class Inventory(lister.Lister):
    """List this host's pGPUs with, per enabled vGPU type, what is free."""

    def take_action(self, parsed_args):
        ctx = self.app.context
        enabled = ctx.conf.vgpu.enabled_vgpu_types
        inventory = inventorylib.HostInventory.load(
            ctx.client, ctx.host_ref, dom0=ctx.dom0)
        return COLUMNS, rows(inventory, enabled)


def rows(inventory, enabled=()):
    """One row per pGPU and enabled vGPU type, sorted by group and PCI."""
    result = []
    for pgpu_ref, pgpu in inventory.pgpus.items():
        group = inventory.groups.get(pgpu.GPU_group)
        numa = inventory.numa_node(pgpu_ref)
        for vgpu_type in inventory.enabled_types(pgpu_ref, enabled):
            usage = inventory.usage(pgpu_ref, vgpu_type)
            result.append((
                group.name_label if group else '',
                group.allocation_algorithm if group else '',
                inventory.address(pgpu_ref),
                inventory.vendor_device(pgpu_ref),
                'unknown' if numa is None else numa,
                vgpu_type.model_name, usage.capacity, usage.used,
                usage.remaining))
    return sorted(result, key=lambda row: (row[0], row[2], row[5]))
