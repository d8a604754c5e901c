"""``nova-conf``: the [pci] lines that make stock Nova track the vGPUs."""

from cliff import command

from nova_xenapi_vgpu.vgpu_types import nova_pci


class NovaConf(command.Command):
    """Print [pci] device_spec and alias lines for nova.conf.

    Every slot of a pinned, one-type pGPU is a type-VF at a synthetic PCI
    address; the aliases keep the names and NUMA policies of [vgpu]
    alias, so flavors say pci_passthrough:alias=<name>:<count>.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--placement', action='store_true',
                            help='PCI in Placement: a resource class per '
                                 'type, report_in_placement and '
                                 '[filter_scheduler] pci_in_placement.')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        result = nova_pci.build(ctx.inventory(), ctx.aliases,
                                parsed_args.placement)
        self.app.stdout.write(nova_pci.config_lines(result))
        return 0
