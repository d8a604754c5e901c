"""``inventory``: this host's GPU groups, pGPUs and vGPU capacity."""

import re
import sys

from cliff import columns as cliff_columns

from nova_xenapi_vgpu.cli import output
from nova_xenapi_vgpu.host import inventory as inventorylib
from nova_xenapi_vgpu.vgpu_types import types as typeslib

COLUMNS = ('Host', 'GPU group', 'pGPU', 'Use', 'NUMA node', 'vGPU type',
           'Capacity', 'In use', 'Remaining', 'Note')
LONG_COLUMNS = ('Allocation', 'Vendor:Device', 'pGPU uuid')


class GroupName(cliff_columns.FormattableColumn):
    """The full group name in JSON/YAML; a short one in a table."""

    def human_readable(self):
        return short_group_name(self._value)

    def machine_readable(self):
        return self._value


class NumaNode(cliff_columns.FormattableColumn):
    """The NUMA node; null in JSON/YAML and ``-`` in a table if unknown."""

    def human_readable(self):
        return '-' if self._value is None else str(self._value)

    def machine_readable(self):
        return self._value


class Occupancy(cliff_columns.FormattableColumn):
    """How full a pGPU is: a 4-cell bar in a table, a fraction in JSON."""

    CELLS = 4

    def human_readable(self):
        filled = round(self._value * self.CELLS)
        if self._value and not filled:
            filled = 1
        return '#' * filled + '.' * (self.CELLS - filled)

    def machine_readable(self):
        return self._value


def occupancy(inventory, pgpu_ref):
    """The share of its held type's capacity a pGPU has allocated."""
    allocated = inventory.allocated(pgpu_ref)
    if not allocated:
        return 0.0
    maximum = inventory.pgpus[pgpu_ref].supported_VGPU_max_capacities.get(
        allocated[0].type, 0)
    return round(min(len(allocated) / maximum, 1.0), 2) if maximum else 1.0


class Inventory(output.Lister):
    """List this host's pGPUs with, per enabled vGPU type, what is free.

    Use: how full the pGPU is, a bar of 4 cells in a table (#### full),
    a fraction from 0 to 1 in JSON/YAML. Capacity, In use, Remaining:
    vGPUs of the type the pGPU could hold empty, holds now, would still
    take. Note says why Remaining is 0 where VGPUs of the type would
    fit: another type holds the pGPU, the type is not enabled, or the
    pGPU's PCI device is passed through.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--long', action='store_true',
                            help='Also show the allocation algorithm, the '
                                 'PCI vendor:device ids and the pGPU uuid '
                                 '(as xe pgpu-list shows it).')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        inventory = ctx.inventory()
        if inventory.shared_groups:
            ctx.warn(layout_note(inventory))
        else:
            sys.stderr.write(layout_note(inventory) + '\n')
        enabled = ctx.conf.vgpu.enabled_vgpu_types
        columns = COLUMNS + (LONG_COLUMNS if parsed_args.long else ())
        table = rows(inventory, enabled)
        self.nothing = nothing(inventory, enabled)
        return columns, [row[:len(columns)] for row in table]


def layout_note(inventory):
    """One line: whether this host is pinned, and what that gives."""
    shared = inventory.shared_groups
    if not shared:
        return ('layout: pinned (each GPU group holds one pGPU here): '
                'accepted instances start again after any stop, reboot '
                'or start order')
    names = ', '.join(sorted('%s (%d pGPUs)' % (short_group_name(
        inventory.groups[g].name_label) if g in inventory.groups else g,
        len(refs)) for g, refs in shared.items()))
    return ('layout: shared groups %s: claims hold for the claims pending '
            'when they are made; a stop or reboot can strand an instance '
            '(gpu-groups pin fixes that)' % names)


def nothing(inventory, enabled):
    """Why this host shows no vGPU type, in one line."""
    host = inventory.host_name or inventory.host_uuid
    if not inventory.pgpus:
        return 'nothing to list: host %s has no pGPU' % host
    if enabled and typeslib.offered(inventory):
        return 'nothing to list: %s' % '; '.join(typeslib.missing(
            inventory, enabled, '[vgpu] enabled_vgpu_types'))
    return ('nothing to list: no vGPU type is enabled on the pGPUs of %s '
            '(xe pgpu-param-set uuid=<pgpu> enabled-VGPU-types=...)' % host)


def rows(inventory, enabled=()):
    """One row per pGPU and enabled vGPU type, by group, pGPU and type."""
    result = []
    for pgpu_ref, pgpu in inventory.pgpus.items():
        group = inventory.groups.get(pgpu.GPU_group)
        name = group.name_label if group else ''
        use = Occupancy(occupancy(inventory, pgpu_ref))
        for vgpu_type in inventory.enabled_types(pgpu_ref, enabled):
            usage = inventory.usage(pgpu_ref, vgpu_type)
            result.append((
                inventory.host_name, GroupName(name),
                inventory.address(pgpu_ref), use,
                NumaNode(inventory.numa_node(pgpu_ref)),
                vgpu_type.model_name, usage.capacity, usage.used,
                usage.remaining, note(usage),
                group.allocation_algorithm if group else '',
                inventory.vendor_device(pgpu_ref), pgpu.uuid))
    return sorted(result, key=lambda row: (
        row[1].machine_readable(), row[2],
        inventorylib.natural_key(row[5])))


def note(usage):
    """Why a type has no room although its capacity is not used up."""
    reason = usage.blocked_by
    if reason is None:
        return ''
    if reason in ('not enabled', 'not supported'):
        return reason
    return 'held by %s' % reason


def short_group_name(name):
    """``Group of NVIDIA Corporation GM204GL [Tesla M60] GPUs`` ->
    ``Tesla M60``: the bracketed model of xapi's default group names."""
    match = re.fullmatch(r'Group of .*\[(.+)\] GPUs', name)
    if match:
        return match.group(1)
    match = re.fullmatch(r'Group of (.+) GPUs', name)
    return match.group(1) if match else name
