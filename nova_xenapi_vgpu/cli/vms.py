"""``attach``, ``detach``, ``migrate`` and ``reap-orphans``.

VMs are named as ``xe`` names them: by uuid or name-label, and shown
by both; XAPI's OpaqueRefs never reach the operator.
"""

import re

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.cli import output
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.vm import moves
from nova_xenapi_vgpu.vm import vgpus as vgpulib

REFUSALS = (exception.VgpuAttachRefused, exception.ClaimRefused,
            exception.OperationRefused)
UUID = re.compile(r'^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$', re.I)


class Refused(Exception):
    """A refusal already put in the operator's words."""


def find_vm(ctx, wanted):
    """(ref, record) of the VM with uuid or name-label ``wanted`` (as
    ``xe vm-list`` shows them); exit 2 for none or several."""
    if UUID.match(wanted):
        try:
            ref = ctx.client.call('VM.get_by_uuid', wanted)
            return ref, ctx.client.call('VM.get_record', ref)
        except exception.XapiError:
            pass  # UUID_INVALID; a name-label may look like a uuid
    found = {}
    for ref in ctx.client.call('VM.get_by_name_label', wanted):
        record = ctx.client.call('VM.get_record', ref)
        if not (record['is_a_template'] or record['is_a_snapshot']
                or record['is_control_domain']):
            found[ref] = record
    if not found:
        context.usage_error('--vm %s: no VM has this uuid or name-label '
                            '(xe vm-list)' % wanted)
    if len(found) > 1:
        context.usage_error('--vm %s: %d VMs have this name-label; name one '
                            'by uuid: %s' % (wanted, len(found), ', '.join(
                                sorted(r['uuid'] for r in found.values()))))
    return next(iter(found.items()))


def label(record):
    """``name-label (uuid)``, as an operator finds a VM again."""
    return '%s (%s)' % (record['name_label'], record['uuid'])


def _builder(ctx, host_ref=None):
    host_ref = host_ref or ctx.host_ref
    stats = ctx.stats(ctx.inventory() if host_ref == ctx.host_ref else
                      ctx.inventory_of(host_ref))
    return lifecycle.Builder(ctx.client, stats, host_ref)


def _vgpu_uuids(ctx, refs):
    return output.Items(ctx.client.call('VGPU.get_uuid', r) for r in refs)


class _VmCommand(output.ShowOne):
    """A command on one VM; refusals exit 1 with the reason."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--vm', required=True, metavar='UUID|NAME',
                            help='The VM: its uuid or name-label, as xe '
                                 'vm-list shows them.')
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
        vm, record = find_vm(ctx, parsed_args.vm)
        instance = parsed_args.instance or record['uuid']
        self.refused = False
        try:
            result, vgpus = self.act(ctx, vm, record, instance, parsed_args)
        except (Refused, exception.XapiError, *REFUSALS) as exc:
            # XAPI's code and parameters stay; refs read as xe names
            # the objects.
            self.app.stderr.write('%s\n' % ctx.readable(str(exc)))
            self.refused = True
            return (), ()
        return ('VM', 'VM uuid', 'Instance', 'VGPUs', 'Result'), (
            record['name_label'], record['uuid'], instance, vgpus, result)

    def produce_output(self, parsed_args, column_names, data):
        if self.refused:
            return 1
        return super().produce_output(parsed_args, column_names, data)

    def run(self, parsed_args):
        result = super().run(parsed_args)
        return 1 if self.refused else result


class Attach(_VmCommand):
    """Claim vGPUs for a halted VM and create its VGPUs (not started).

    Exits 1 with the reason when the VM runs, is not HVM or the claim is
    refused, 2 for an unknown alias or a bad count.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--alias', required=True,
                            metavar='NAME:COUNT[,NAME:COUNT]',
                            help='vGPU aliases, as in a flavor.')
        return parser

    def act(self, ctx, vm, record, instance, parsed_args):
        try:
            requests, _ = requestslib.requests_from_spec(parsed_args.alias,
                                                         ctx.aliases)
        except exception.InvalidVgpuRequest as exc:
            context.usage_error('--alias: %s' % exc)
        if not requests:
            context.usage_error('--alias: no vGPU alias in %r'
                                % parsed_args.alias)
        # The VM's own refusals first: nothing made, nothing rolled back.
        vgpulib.check_attachable(None, vgpulib.read_vm(ctx.client, vm), ())
        made = _builder(ctx).attach(instance, vm, requests)
        return ('created %d VGPU(s), not started' % len(made),
                _vgpu_uuids(ctx, made))


class Detach(_VmCommand):
    """Destroy an instance's VGPUs on a halted VM.

    Exits 1 when the VM runs or holds no VGPU of the instance.
    """

    def act(self, ctx, vm, record, instance, parsed_args):
        vgpus = vgpulib.of_instance(ctx.client, vm, instance)
        if not vgpus:
            raise Refused('VM %s holds no VGPU of instance %s (none tagged '
                          'with it); nothing to detach' % (label(record),
                                                           instance))
        uuids = output.Items(v.uuid for v in vgpus.values())
        gone = _builder(ctx).detach(instance, vm, vgpus)
        return 'destroyed %d VGPU(s)' % len(gone), uuids


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

    def act(self, ctx, vm, record, instance, parsed_args):
        source = _builder(ctx, ctx.host_of(vm) or ctx.host_ref)
        target = _builder(ctx, ctx.resolve_host_name(parsed_args.host))
        vgpus = vgpulib.of_instance(ctx.client, vm, instance)
        uuids = output.Items(v.uuid for v in vgpus.values())
        if parsed_args.dry_run:
            if parsed_args.live:
                vgpulib.assert_movable(source.stats.inventory, vm, vgpus,
                                       'live-migrate')
            target.stats.claim_demand(instance, vgpulib.demand_of(vgpus))
            target.stats.free(instance)
            return 'the move to %s would be accepted' % (
                parsed_args.host), uuids
        if parsed_args.live:
            source.live_migrate(instance, vm, target)
            message = 'moved to %s' % parsed_args.host
        else:
            made = source.cold_migrate(instance, vm, target)
            message = 'moved to %s: %d VGPU(s) made there' % (
                parsed_args.host, len(made))
        return message, _vgpu_uuids(
            ctx, vgpulib.of_instance(ctx.client, vm, instance))


class ReapOrphans(output.Lister):
    """List (with --apply, destroy) VGPUs no known instance owns.

    Only the VGPUs this plugin made count; only those on halted or
    vanished VMs are destroyed. Copies XAPI made with a snapshot or clone
    keep their VGPU and lose this project's tags. Cold migrations from
    this host interrupted midway (the VM has the move's record and none
    of its VGPUs) are put back here.
    """

    nothing = 'nothing to reap: no orphaned VGPU on this host'

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
        names = self._names(ctx, orphans)
        destroyed = []
        if parsed_args.apply:
            destroyed = vgpulib.reap_orphans(ctx.client, orphans)[0]
        columns = ('VGPU uuid', 'VM', 'VM uuid', 'Instance', 'Why',
                   'VM state', 'Action')
        return columns, [(
            names[o.vgpu], *names.get(o.vm, ('-', '-')), o.instance,
            o.reason, o.vm_power_state or '-', _action(
                o, o in destroyed, parsed_args.apply)) for o in orphans
        ] + self._moves(ctx, host_uuid, parsed_args.apply)

    @staticmethod
    def _names(ctx, orphans):
        """VGPU ref -> uuid; VM ref -> (name-label, uuid), read before
        anything is destroyed."""
        names = {}
        for orphan in orphans:
            names[orphan.vgpu] = ctx.client.call('VGPU.get_uuid',
                                                 orphan.vgpu)
            if orphan.vm_power_state is not None:
                record = ctx.client.call('VM.get_record', orphan.vm)
                names[orphan.vm] = (record['name_label'], record['uuid'])
        return names

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
            rows.append(('-', record.name_label, record.uuid, move.instance,
                         'cold migration to %s interrupted '
                         '(other_config:%s)' % (move.destination, moves.KEY),
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
