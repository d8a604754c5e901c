"""``attach``, ``detach``, ``migrate`` and ``reap-orphans``."""

from cliff import command
from cliff import lister

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.vm import moves
from nova_xenapi_vgpu.vm import vgpus as vgpulib

REFUSALS = (exception.VgpuAttachRefused, exception.ClaimRefused,
            exception.OperationRefused)


def _vm(ctx, uuid):
    try:
        return ctx.client.call('VM.get_by_uuid', uuid)
    except exception.XapiError as exc:
        context.usage_error('--vm %s: %s' % (uuid, ' '.join(exc.details)))


def _builder(ctx, host_ref=None):
    host_ref = host_ref or ctx.host_ref
    stats = ctx.stats(ctx.inventory() if host_ref == ctx.host_ref else
                      ctx.inventory_of(host_ref))
    return lifecycle.Builder(ctx.client, stats, host_ref)


class _VmCommand(command.Command):
    """A command on one VM; refusals exit 1 with the reason."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--vm', required=True, metavar='UUID',
                            help='The VM (its XAPI uuid).')
        parser.add_argument('--instance', metavar='UUID',
                            help='The Nova instance its vGPUs belong to '
                                 '(default: the VM uuid).')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        vm = _vm(ctx, parsed_args.vm)
        instance = parsed_args.instance or parsed_args.vm
        try:
            message = self.act(ctx, vm, instance, parsed_args)
        except REFUSALS as exc:
            self.app.stderr.write('%s\n' % exc)
            return 1
        self.app.stdout.write(message + '\n')
        return 0


class Attach(_VmCommand):
    """Claim vGPUs for a halted VM and create its VGPUs (not started).

    Exits 1 with the reason when the VM runs or the claim is refused, 2
    for an unknown alias or a bad count.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--alias', required=True,
                            metavar='NAME:COUNT[,NAME:COUNT]',
                            help='vGPU aliases, as in a flavor.')
        return parser

    def act(self, ctx, vm, instance, parsed_args):
        try:
            requests, _ = requestslib.requests_from_spec(parsed_args.alias,
                                                         ctx.aliases)
        except exception.InvalidVgpuRequest as exc:
            context.usage_error('--alias: %s' % exc)
        if not requests:
            context.usage_error('--alias: no vGPU alias in %r'
                                % parsed_args.alias)
        made = _builder(ctx).attach(instance, vm, requests)
        return 'created %d VGPU(s) for instance %s' % (len(made), instance)


class Detach(_VmCommand):
    """Destroy an instance's VGPUs on a halted VM (exit 1 if it runs)."""

    def act(self, ctx, vm, instance, parsed_args):
        gone = _builder(ctx).detach(instance, vm)
        return 'destroyed %d VGPU(s) of instance %s' % (len(gone), instance)


class Migrate(_VmCommand):
    """Move a VM's vGPUs to another host of the pool.

    --live moves a running VM (NVIDIA vGPUs only; a claim is made on the
    destination first); without it the VM must be halted and its VGPUs
    are made anew there (the move is recorded on the VM first: run the
    same command again to finish one that was interrupted). Exits 1 when
    there is nothing of the instance to move. --dry-run only checks.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--host', required=True, metavar='NAME|UUID',
                            help='The destination host.')
        parser.add_argument('--live', action='store_true',
                            help='Live migration of a running VM.')
        parser.add_argument('--dry-run', action='store_true',
                            help='Check only; change nothing.')
        return parser

    def act(self, ctx, vm, instance, parsed_args):
        source = _builder(ctx, ctx.host_of(vm) or ctx.host_ref)
        target = _builder(ctx, ctx.resolve_host_name(parsed_args.host))
        if parsed_args.dry_run:
            vgpus = vgpulib.of_instance(ctx.client, vm, instance)
            if parsed_args.live:
                vgpulib.assert_movable(source.stats.inventory, vm, vgpus,
                                       'live-migrate')
            target.stats.claim_demand(instance, vgpulib.demand_of(vgpus))
            target.stats.free(instance)
            return 'the move would be accepted'
        if parsed_args.live:
            source.live_migrate(instance, vm, target)
            return 'moved instance %s to %s' % (instance, parsed_args.host)
        made = source.cold_migrate(instance, vm, target)
        return 'moved instance %s to %s: %d VGPU(s) made there' % (
            instance, parsed_args.host, len(made))


class ReapOrphans(lister.Lister):
    """List (with --apply, destroy) VGPUs this plugin made that no known
    instance owns; only those on halted or vanished VMs are destroyed.
    Copies XAPI made with a snapshot or clone keep their VGPU and lose
    this project's tags. Cold migrations from this host interrupted
    midway (the VM has the move's record and none of its VGPUs) are put
    back here."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--known-instances', metavar='FILE',
                            help='Instance uuids Nova knows, one a line '
                                 '(without it: only VGPUs of VMs that no '
                                 'longer exist are orphans).')
        parser.add_argument('--apply', action='store_true',
                            help='Destroy them (default: a dry run).')
        return parser

    def take_action(self, parsed_args):
        ctx = self.app.context
        host_uuid = ctx.client.call('host.get_uuid', ctx.host_ref)
        known = self._known(ctx, parsed_args.known_instances)
        orphans = vgpulib.find_orphans(ctx.client, host_uuid, known)
        destroyed = []
        if parsed_args.apply:
            destroyed = vgpulib.reap_orphans(ctx.client, orphans)[0]
        columns = ('VGPU', 'VM', 'Instance', 'Why', 'VM state', 'Action')
        return columns, [(
            o.vgpu, o.vm, o.instance, o.reason, o.vm_power_state or '-',
            _action(o, o in destroyed, parsed_args.apply))
            for o in orphans] + self._moves(ctx, host_uuid, parsed_args.apply)

    @staticmethod
    def _moves(ctx, host_uuid, apply):
        """Rows for interrupted cold migrations; restored with --apply."""
        rows = []
        for vm, record, move in moves.interrupted(ctx.client, host_uuid):
            action = 'would put back'
            if record.power_state != 'Halted':
                action = 'kept (VM runs)'
            elif apply:
                made = _builder(ctx).restore(move.instance, vm, move.demand)
                action = 'put back (%d VGPU(s))' % len(made)
            rows.append(('-', vm, move.instance, 'cold migration to %s '
                         'interrupted (other_config:%s)' % (
                             move.destination, moves.KEY),
                         record.power_state, action))
        return rows

    @staticmethod
    def _known(ctx, path):
        if path is None:
            vgpus = ctx.client.call('VGPU.get_all_records')
            return {v['other_config'].get('nova_instance_uuid')
                    for v in vgpus.values()}
        try:
            with open(path, encoding='utf-8') as stream:
                return {line.strip() for line in stream if line.strip()}
        except OSError as exc:
            context.usage_error('--known-instances %s: %s' % (
                path, exc.strerror))


def _action(orphan, done, applied):
    """What reap-orphans did (or would do) with one orphan."""
    if orphan.copy:
        return 'untagged' if done else 'would untag'
    if done:
        return 'destroyed'
    if applied:
        return 'kept (VM runs)'
    return ('would destroy' if orphan.vm_power_state in (None, 'Halted')
            else 'would keep')
