"""``gpu-groups split``: one GPU group per NUMA node (or per pGPU)."""

from cliff import lister

from nova_xenapi_vgpu.cli import inventory as inventorycmd
from nova_xenapi_vgpu.host import groups as groupslib


class Split(lister.Lister):
    """Propose (or with --apply, make) groups that keep NUMA locality.

    Only idle pGPUs move; busy ones are named and stay where they are.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--by', choices=('numa', 'pgpu'), default='numa',
                            help='One group per NUMA node (default) or per '
                                 'pGPU (XAPI\'s choice becomes exact).')
        parser.add_argument('--apply', action='store_true',
                            help='Create the groups and move the pGPUs '
                                 '(default: only show the proposal).')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        if parsed_args.apply:
            ctx.will_write('gpu-groups split --apply')
        inventory = ctx.inventory()
        moves = groupslib.propose(inventory, parsed_args.by,
                                  inventorycmd.short_group_name)
        done = set()
        if parsed_args.apply:
            done = {m.pgpu_ref for m in groupslib.apply(ctx.client,
                                                        inventory, moves)}
        columns = ('pGPU', 'NUMA node', 'GPU group', 'New group', 'Action')
        rows = [(m.address, inventorycmd.NumaNode(m.numa_node),
                 inventorycmd.GroupName(inventory.groups[
                     m.group_ref].name_label), m.target or '',
                 _action(m, m.pgpu_ref in done, parsed_args.apply))
                for m in moves]
        return columns, rows


def _action(move, done, applying):
    if move.target is None:
        return 'stays'
    if move.busy:
        return 'busy: not moved'
    if done:
        return 'moved'
    return 'would move' if not applying else 'not moved'
