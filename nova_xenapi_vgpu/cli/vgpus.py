"""``types``, ``pci-devices``, ``check-config`` and ``plan``."""

import json

from cliff import command
from cliff import lister
from cliff import show

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.cli import inventory as inventorycmd
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vgpu_types import types as typeslib

MIB = 1024 ** 2


class Types(lister.Lister):
    """List the vGPU types this host offers, with what is free of each.

    Free counts each type as if it were the only one asked for: types
    share pGPUs (one type per pGPU), so the figures do not add up.
    """

    def take_action(self, parsed_args):
        ctx = self.app.context
        columns = ('Model', 'Vendor', 'Implementation', 'Framebuffer MiB',
                   'Heads', 'Max resolution', 'PCI ids', 'Total', 'Free')
        rows = []
        for summary in typeslib.offered(ctx.inventory(),
                                        ctx.conf.vgpu.enabled_vgpu_types):
            vgpu_type = summary.vgpu_type
            rows.append((
                vgpu_type.model_name, vgpu_type.vendor_name,
                vgpu_type.implementation,
                vgpu_type.framebuffer_size // MIB, vgpu_type.max_heads,
                '%dx%d' % (vgpu_type.max_resolution_x,
                           vgpu_type.max_resolution_y),
                ', '.join(summary.vendor_device), summary.total,
                summary.free))
        return columns, rows


class PciDevices(command.Command):
    """Print pci_passthrough_devices: the JSON list a compute driver reports.

    One entry per vGPU slot of each enabled type on each pGPU of this
    host (whole-GPU passthrough included), keyed by a stable uuid.
    """

    def take_action(self, parsed_args):
        devices = [s.as_nova_device() for s in self.app.context.stats(
            ).devices()]
        self.app.stdout.write(json.dumps(devices, indent=2) + '\n')
        return 0


class CheckConfig(command.Command):
    """Check [vgpu] aliases and enabled types against this host.

    Exits 0 when the configuration is valid (warnings allowed), 2 naming
    the alias and key otherwise.
    """

    def take_action(self, parsed_args):
        ctx = self.app.context
        try:
            aliases = ctx.aliases
        except exception.InvalidAlias as exc:
            context.usage_error(str(exc))
        inventory = ctx.stats().inventory
        for alias in aliases.values():
            wanted = [t for spec in alias.specs
                      for t in spec.get('vgpu_types', ())]
            for message in typeslib.missing(inventory, wanted,
                                            'alias %s' % alias.name):
                ctx.warn(message)
        self.app.stdout.write('%d alias(es) valid; %d vGPU type(s) offered '
                              'on %s\n' % (len(aliases), len(
                                  typeslib.offered(inventory)),
                                  inventory.host_name))
        return 0


class Plan(show.ShowOne):
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
                                 '"pci_passthrough:alias=m60-4q:2".')
        parser.add_argument('--numa-node', type=int, action='append',
                            metavar='N',
                            help="The instance's NUMA node(s), for the "
                                 'aliases\' NUMA policies.')
        parser.set_defaults(max_width=inventorycmd.TABLE_WIDTH)
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        requests = self._requests(ctx, parsed_args.flavor_spec)
        stats = ctx.stats()
        columns = ('Fits', 'vGPU types', 'GPU groups', 'Expected pGPUs',
                   'NUMA nodes', 'Reason')
        try:
            demand, pgpus = stats.explain(requests, parsed_args.numa_node)
        except exception.ClaimRefused as exc:
            self.fits = False
            return columns, (False, '', '', '', '', str(exc))
        self.fits = True
        inventory = stats.inventory
        return columns, (
            True, ', '.join(inventory.types[t].model_name for _, t in demand),
            ', '.join(dict.fromkeys(inventory.groups[g].name_label
                                    for g, _ in demand)),
            ', '.join(inventory.address(p) for p in pgpus),
            ', '.join(str(inventory.numa_node(p)) for p in pgpus), '')

    @staticmethod
    def _requests(ctx, spec):
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
        return requests

    def run(self, parsed_args):
        result = super().run(parsed_args)
        return result if self.fits else 1
