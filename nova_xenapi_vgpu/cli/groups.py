"""``gpu-groups split`` (one group per NUMA node or pGPU) and
``gpu-groups pin`` (one pGPU per group on each member, one type each)."""

from nova_xenapi_vgpu.cli import inventory as inventorycmd
from nova_xenapi_vgpu.cli import output
from nova_xenapi_vgpu.host import groups as groupslib
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.vgpu_types import partition


class Split(output.Lister):
    """Propose (or with --apply, make) groups that keep NUMA locality.

    Only idle pGPUs move; busy ones (running vGPUs, or a group a stopped
    instance owes) are named and stay where they are.
    """

    nothing = ('nothing to split: no GPU group here has pGPUs on several '
               'NUMA nodes (or, --by pgpu, several pGPUs)')

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


class Pin(output.Lister):
    """Pin the pool: one pGPU per GPU group on each member.

    XAPI's choice of pGPU becomes exact, so claims survive stops, reboots
    and any start order; with [vgpu] pgpu_types, each named pGPU serves
    one type. pGPUs at one PCI address share a group across members, so
    pinned instances still live-migrate. Nothing owed moves: pGPUs with
    running vGPUs, and groups a stopped instance owes vGPUs in, are named
    and left.
    """

    nothing = ('nothing to do: every GPU group holds one pGPU per host '
               'and every pGPU its types')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--apply', action='store_true',
                            help='Create the groups, move the pGPUs and '
                                 'set their types (default: only show '
                                 'what would change).')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        if parsed_args.apply:
            ctx.will_write('gpu-groups pin --apply')
        pool = pinning.read_pool(ctx.client)
        steps = pinning.propose(pool, partition.parse(
            ctx.conf.vgpu.pgpu_types), inventorycmd.short_group_name)
        done = set()
        if parsed_args.apply:
            done = set(pinning.apply(ctx.client, pool, steps))
        columns = ('Host', 'pGPU', 'GPU group', 'New group', 'Types',
                   'Action')
        rows = [(s.host, s.address, inventorycmd.GroupName(
            pool.groups[s.group_ref].name_label), s.target or '',
            _types_change(s), _pin_action(s, s.pgpu_ref in done,
                                          parsed_args.apply))
            for s in steps]
        return columns, rows


def _types_change(step):
    if step.new_types is None:
        return 'unchanged'
    now = ', '.join(step.types) if len(step.types) < 3 else (
        '%d types' % len(step.types))
    return '%s -> %s' % (now, ', '.join(step.new_types))


def _pin_action(step, done, applying):
    if step.blocker:
        return 'left: %s' % step.blocker
    if done:
        return 'done'
    return 'would change' if not applying else 'not changed'
