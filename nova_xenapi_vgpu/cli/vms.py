"""``attach``, ``detach``, ``migrate`` and ``reap-orphans``."""

from cliff import command
from cliff import lister

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
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

    def writes(self, parsed_args):
        """Whether this run changes things (then no silent simulator)."""
        return not getattr(parsed_args, 'dry_run', False)

    def take_action(self, parsed_args):
        ctx = self.app.context
        if self.writes(parsed_args):
            ctx.will_write(self.cmd_name)
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
    are made anew there. --dry-run only checks.
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
        else:
            source.cold_migrate(instance, vm, target)
        return 'moved instance %s to %s' % (instance, parsed_args.host)


class ReapOrphans(lister.Lister):
    """List (with --apply, destroy) VGPUs this plugin made that no known
    instance owns; only those on halted or vanished VMs are destroyed."""

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
        if parsed_args.apply:
            ctx.will_write('reap-orphans --apply')
        host_uuid = ctx.client.call('host.get_uuid', ctx.host_ref)
        known = self._known(ctx, parsed_args.known_instances)
        orphans = vgpulib.find_orphans(ctx.client, host_uuid, known)
        destroyed = []
        if parsed_args.apply:
            destroyed = vgpulib.reap_orphans(ctx.client, orphans)[0]
        columns = ('VGPU', 'VM', 'Instance', 'Why', 'VM state', 'Action')
        return columns, [(
            o.vgpu, o.vm, o.instance, o.reason, o.vm_power_state or '-',
            'destroyed' if o in destroyed else (
                'kept (VM runs)' if parsed_args.apply else 'would destroy'
                if o.vm_power_state in (None, 'Halted') else 'would keep'))
            for o in orphans]

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
