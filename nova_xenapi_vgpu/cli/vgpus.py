"""``types``, ``pci-devices``, ``check-config`` and ``plan``."""

import argparse

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.cli import inventory as inventorycmd
from nova_xenapi_vgpu.cli import output
from nova_xenapi_vgpu.cli import preflight
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vgpu_types import partition
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vgpu_types import types as typeslib

MIB = 1024 ** 2


class Types(output.Lister):
    """List the vGPU types this host offers, with what is free of each.

    Capacity, In use and Remaining add up the pGPUs of the host, as in
    ``inventory``. Remaining counts each type as if it were the only one
    asked for: types share pGPUs (one type per pGPU), so the Remaining
    figures of several types do not add up.
    """

    def take_action(self, parsed_args):
        ctx = self.app.context
        inventory = ctx.inventory()
        enabled = ctx.conf.vgpu.enabled_vgpu_types
        columns = ('Model', 'Vendor', 'Implementation', 'Framebuffer MiB',
                   'Heads', 'Max resolution', 'PCI ids', 'Capacity',
                   'In use', 'Remaining')
        rows = []
        for summary in typeslib.offered(inventory, enabled):
            vgpu_type = summary.vgpu_type
            rows.append((
                vgpu_type.model_name, vgpu_type.vendor_name,
                vgpu_type.implementation,
                vgpu_type.framebuffer_size // MIB, vgpu_type.max_heads,
                '%dx%d' % (vgpu_type.max_resolution_x,
                           vgpu_type.max_resolution_y),
                output.Items(summary.vendor_device), summary.total,
                summary.used, summary.free))
        self.nothing = inventorycmd.nothing(inventory, enabled)
        return columns, rows


class PciDevices(output.Lister):
    """Print pci_passthrough_devices: the JSON list a compute driver reports.

    One entry per vGPU slot of each enabled type on each pGPU of this
    host (whole-GPU passthrough included), keyed by a stable uuid. JSON
    by default; -f table, yaml, csv or value as for any listing.
    """

    formatter_default = 'json'

    def take_action(self, parsed_args):
        ctx = self.app.context
        stats = ctx.stats()
        devices = [s.as_nova_device() for s in stats.devices()]
        self.nothing = inventorycmd.nothing(
            stats.inventory, ctx.conf.vgpu.enabled_vgpu_types)
        columns = tuple(devices[0]) if devices else ('uuid',)
        return columns, [tuple(d[c] for c in columns) for d in devices]


class CheckConfig(output.ShowOne):
    """Pre-flight: check the [vgpu] options against this host.

    Exits 0 when every check passes; 1 naming each problem: a type of
    enabled_vgpu_types or of an alias that the host does not offer or
    that enabled_vgpu_types leaves out, a numa_policy required alias no
    GPU group can meet, a --flavor-spec asking more vGPUs of a type than
    a VM may hold; 2 for an alias Nova itself would refuse.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--flavor-spec', action='append', default=[],
                            metavar='KEY=ALIAS:COUNT[,ALIAS:COUNT]',
                            help='Also check a flavor\'s extra spec, e.g. '
                                 '"pci_passthrough:alias=m60-4q:1"; may be '
                                 'repeated.')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        try:
            aliases = ctx.aliases
        except exception.InvalidAlias as exc:
            context.usage_error(str(exc))
        inventory = ctx.inventory()
        enabled = ctx.conf.vgpu.enabled_vgpu_types
        checks = preflight.Checks(
            inventory, enabled, statslib.VgpuStats(inventory, enabled))
        problems = checks.enabled_types() + checks.aliases(aliases)
        for spec in parsed_args.flavor_spec:
            problems += checks.flavor(spec, plan_requests(ctx, spec)[0])
        layout, layout_problems = _layout(ctx, inventory)
        problems += layout_problems
        for problem in problems:
            self.app.stderr.write('check-config: %s\n' % problem)
        if inventory.shared_groups:
            ctx.warn(inventorycmd.layout_note(inventory))
        self.failed = bool(problems)
        return ('Host', 'Aliases', 'Enabled vGPU types', 'vGPU types offered',
                'Layout', 'Problems'), (
            inventory.host_name, output.Items(sorted(aliases)),
            output.Items(enabled or ['all']),
            len(typeslib.offered(inventory, enabled)), layout,
            output.Lines(problems))

    def run(self, parsed_args):
        result = super().run(parsed_args)
        return 1 if self.failed else result


class Plan(output.ShowOne):
    """Dry-run a flavor's vGPU request against the host as it is now.

    Residency, stopped instances' claims and XAPI's choice of pGPU in
    every start order are taken into account. Exits 0 when the request
    fits, 1 when it would be refused (with the reason), 2 on bad usage.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--flavor-spec', required=True,
                            metavar='KEY=ALIAS:COUNT[,ALIAS:COUNT]',
                            help='The flavor extra spec, e.g. '
                                 '"pci_passthrough:alias=m60-4q:1".')
        parser.add_argument('--numa-node', type=numa_nodes, action='append',
                            metavar='N[,N]',
                            help="The instance's NUMA node(s), for the "
                                 "aliases' NUMA policies: 0,1 or repeated.")
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        requests, spec = plan_requests(ctx, parsed_args.flavor_spec)
        stats = ctx.stats()
        inventory = stats.inventory
        cells = preflight.known_cells(inventory, parsed_args.numa_node)
        columns = ('Fits', 'vGPU types', 'GPU groups', 'Expected pGPUs',
                   'NUMA nodes', 'Reason')
        checks = preflight.Checks(inventory, ctx.conf.vgpu.enabled_vgpu_types,
                                  stats)
        try:
            too_many = checks.flavor(spec, requests)
            if too_many:
                raise exception.ClaimRefused(reason=too_many[0])
            demand, pgpus = stats.explain(requests, cells)
        except exception.ClaimRefused as exc:
            self.fits = False
            return columns, (False, output.Items(()), output.Items(()),
                             output.Items(()), output.Items(()),
                             checks.explain(exc, requests))
        self.fits = True
        return columns, (
            True, output.Items(inventory.types[t].model_name
                               for _, t in demand),
            output.Items(dict.fromkeys(inventory.groups[g].name_label
                                       for g, _ in demand)),
            output.Items(inventory.address(p) for p in pgpus),
            output.Items(inventory.numa_node(p) for p in pgpus), '')

    def run(self, parsed_args):
        result = super().run(parsed_args)
        return result if self.fits else 1


def numa_nodes(text):
    """``0`` or ``0,1`` -> [0] or [0, 1], for --numa-node."""
    try:
        nodes = [int(n) for n in text.split(',')]
    except ValueError:
        nodes = [-1]
    if any(n < 0 for n in nodes):
        raise argparse.ArgumentTypeError(
            '%r: expected NUMA node numbers, e.g. 0 or 0,1' % text[:20])
    return nodes


def plan_requests(ctx, spec):
    """The vGPU requests of a flavor extra spec; exit 2 if unreadable."""
    key, sep, value = spec.partition('=')
    wanted = ctx.conf.vgpu.flavor_extra_spec_key
    if not sep or key.strip() != wanted:
        context.usage_error('--flavor-spec: expected %s=ALIAS:COUNT'
                            % wanted)
    try:
        requests, others = requestslib.requests_from_spec(
            value, ctx.aliases)
    except (exception.InvalidVgpuRequest, exception.InvalidAlias) as exc:
        context.usage_error('--flavor-spec: %s' % exc)
    if others:
        ctx.warn('aliases without vgpu_type are Nova\'s own PCI '
                 'devices, not planned here: %s' % ', '.join(
                     name for name, _ in others))
    if not requests:
        context.usage_error('--flavor-spec: no vGPU alias in %r' % value)
    return requests, value


def _layout(ctx, inventory):
    """('pinned' or what gpu-groups pin would change, problems of
    [vgpu] pgpu_types: addresses no pGPU has, types a pGPU lacks)."""
    wanted = partition.parse(ctx.conf.vgpu.pgpu_types)
    pool = pinning.read_pool(ctx.client)
    steps = pinning.propose(pool, wanted, inventorycmd.short_group_name)
    addresses = {pool.address(p) for p in pool.pgpus}
    problems = ['[vgpu] pgpu_types names %s, which no pGPU of the pool '
                'has' % a for a in sorted(set(wanted) - addresses)]
    problems += ['[vgpu] pgpu_types: pGPU %s on %s %s' % (
        s.address, s.host, s.blocker) for s in steps
        if s.blocker and 'does not support' in s.blocker]
    if not steps:
        return 'pinned', problems
    return ('gpu-groups pin --apply would change %d pGPU(s), leave %d' % (
        sum(1 for s in steps if not s.blocker),
        sum(1 for s in steps if s.blocker))), problems
