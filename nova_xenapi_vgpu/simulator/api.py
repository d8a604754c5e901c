"""Dispatch XAPI calls: sessions, generic accessors and the GPU calls."""

import collections
import inspect
import threading
import uuid as uuidlib

from oslo_log import log as logging

from nova_xenapi_vgpu.simulator import boot
from nova_xenapi_vgpu.simulator import events
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import memory
from nova_xenapi_vgpu.simulator import migrate
from nova_xenapi_vgpu.simulator import network
from nova_xenapi_vgpu.simulator import power
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator import signatures
from nova_xenapi_vgpu.simulator import storage
from nova_xenapi_vgpu.simulator import tasks
from nova_xenapi_vgpu.simulator import templates
from nova_xenapi_vgpu.simulator import vbd
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator import where
from nova_xenapi_vgpu.simulator.errors import XapiFailure
from nova_xenapi_vgpu.simulator.faults import DropConnection
from nova_xenapi_vgpu.simulator.faults import Faults
from nova_xenapi_vgpu.simulator.wire import failure
from nova_xenapi_vgpu.simulator.wire import success

LOG = logging.getLogger(__name__)
# A logged-in session: the host it logged in to, login's originator.
Session = collections.namedtuple('Session', 'host originator')
_CLASS_PREFIXES = sorted(schema.CLASSES, key=len, reverse=True) + [
    'session', 'event']


def split_method(name):
    """``Class.method`` or ``Class_method`` -> (Class, method); ``Async.``
    calls -> ('Async', 'Class.method')."""
    if '.' in name:
        return tuple(name.split('.', 1))
    for prefix in _CLASS_PREFIXES:
        if name.startswith(prefix + '_') and len(name) > len(prefix) + 1:
            return prefix, name[len(prefix) + 1:]
    return None, name


class Api:
    """The XAPI of a simulated pool: one database, one set of sessions."""

    def __init__(self, db, username, password, plugins=None, latency_ms=0):
        self.db = db
        self.username = username
        self.password = password
        self.plugins = plugins
        self.faults = Faults(latency_ms)
        self.sessions = {}  # session ref -> Session
        self._lock = threading.Lock()
        self.handlers = _handlers()

    def expire_sessions(self):
        """Invalidate every session, as a xapi restart would."""
        with self._lock:
            self.sessions.clear()

    def check_session(self, session):
        """:raises: XapiFailure SESSION_INVALID for an unknown session."""
        if session not in self.sessions:
            raise XapiFailure('SESSION_INVALID', session)

    def designate_new_master(self, host):
        """pool.designate_new_master: ``host`` leads; xapi restarts on the
        old and new master, so every session ends."""
        with self.db.lock:
            self.db.get('host', host)
            self.db.set('pool', self.db.pool, 'master', host)
        self.expire_sessions()

    def dispatch(self, name, params, host):
        """Answer one call arriving at ``host``; the reply envelope.

        :raises: DropConnection when a fault says so.
        """
        cls, method = split_method(name)
        full = '%s.%s' % (cls, method) if cls else method
        injected = self.faults.on_call(full)
        if injected:
            return failure(injected)
        reply = self.answer(cls, method, full, list(params), host)
        if self.faults.reply_lost(full):
            raise DropConnection(full)
        return reply

    def answer(self, cls, method, full, params, host):
        """The reply envelope of one call that runs."""
        try:
            if cls == 'Async':
                return success(tasks.start(self, method, params, host))
            return success(self._call(cls, method, full, params, host))
        except XapiFailure as exc:
            return failure(exc.description)
        except (TypeError, ValueError, AttributeError) as exc:
            LOG.debug('%s failed', full, exc_info=True)
            return failure(['INTERNAL_ERROR', '%s: %s' % (
                type(exc).__name__, exc)])

    def _call(self, cls, method, full, params, host):
        if full == 'session.login_with_password':
            if not 2 <= len(params) <= 4:
                _count_mismatch(full, 4, len(params))
            signatures.check(full, params)
            return self._login(host, *params)
        handler = self._resolve(cls, method, full)
        self.validate(full, handler, params)
        return self.run(full, handler, params)

    def validate(self, full, handler, params):
        """The session, the parameter count and types of a call.

        :raises: XapiFailure SESSION_INVALID,
                 MESSAGE_PARAMETER_COUNT_MISMATCH, XMLRPC_UNMARSHAL_FAILURE.
        """
        self.check_session(params[0] if params else '')
        _check_count(full, handler, len(params) - 1)
        signatures.check(full, params[1:])

    def resolve(self, name):
        """The handler of ``Class.method``; for Async calls.

        :raises: XapiFailure MESSAGE_METHOD_UNKNOWN.
        """
        cls, method = split_method(name)
        return self._resolve(cls, method, name)

    def run(self, full, handler, params, task=None):
        """Run a validated handler, holding the database lock unless the
        call locks for itself."""
        context = _Context(self, params[0], task)
        if full in _UNLOCKED:
            return handler(context, *params[1:])
        with self.db.lock:
            return handler(context, *params[1:])

    def _resolve(self, cls, method, full):
        handler = self.handlers.get(full)
        if handler is None and cls in schema.CLASSES:
            handler = _generic(self.db, cls, method)
        if handler is None:
            raise XapiFailure('MESSAGE_METHOD_UNKNOWN', full)
        return handler

    def _login(self, host, username, password, _version='',
               originator=''):
        if (username, password) != (self.username, self.password):
            raise XapiFailure('SESSION_AUTHENTICATION_FAILED', username,
                              'Authentication failure')
        master = self.db.get('pool', self.db.pool)['master']
        if host != master:
            raise XapiFailure('HOST_IS_SLAVE',
                              self.db.get('host', master)['address'])
        ref = 'OpaqueRef:%s' % uuidlib.uuid4()
        with self._lock:
            self.sessions[ref] = Session(host, originator)
        return ref


class _Context:
    """What a handler sees: the api, its database and the session."""

    def __init__(self, api, session, task=None):
        self.api = api
        self.db = api.db
        self.session = session
        self.task = task

    def phase(self, method):
        """The hook of ``method``'s plug phase: an injected fault
        (``METHOD@plug``), or the cancellation of the task it runs in."""
        def hook():
            return (tasks.cancelled(self.db, self.task)
                    or self.api.faults.injected(method + '@plug'))
        return hook


def _count_mismatch(method, expected, received):
    raise XapiFailure('MESSAGE_PARAMETER_COUNT_MISMATCH', method, expected,
                      received)


def _check_count(method, handler, received):
    """Parameters after the session; trailing ones with defaults are
    optional, as xapi's newer parameters are."""
    params = list(inspect.signature(handler).parameters.values())[1:]
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    if not required <= received <= len(params):
        _count_mismatch(method, len(params), received)


def _generic(db, cls, method):
    """get_*/set_*/add_to_*/remove_from_* and friends for any class."""
    if method in _GENERIC:
        return _GENERIC[method](cls)
    for prefix, make in _FIELD_METHODS:
        if method.startswith(prefix):
            field = method[len(prefix):]
            if make is not _getter and field not in schema.CLASSES[
                    cls].writable:
                return None
            if db.has_field(cls, field):
                return make(cls, field)
    return None


def _getter(cls, field):
    return lambda ctx, ref: ctx.db.field(cls, ref, field)


def _setter(cls, field):
    def set_field(ctx, ref, value):
        ctx.db.get(cls, ref)
        ctx.db.set(cls, ref, field, value)
        return ''
    return set_field


def _map_adder(cls, field):
    def add_to(ctx, ref, key, value):
        current = ctx.db.get(cls, ref)[field]
        if key in current:
            raise XapiFailure('MAP_DUPLICATE_KEY', cls, field, ref, key)
        ctx.db.set(cls, ref, field, dict(current, **{key: value}))
        return ''
    return add_to


def _map_remover(cls, field):
    def remove_from(ctx, ref, key):
        current = dict(ctx.db.get(cls, ref)[field])
        current.pop(key, None)
        ctx.db.set(cls, ref, field, current)
        return ''
    return remove_from


_FIELD_METHODS = [('get_', _getter), ('set_', _setter),
                  ('add_to_', _map_adder), ('remove_from_', _map_remover)]


def _all_records_where(cls):
    def get_all_records_where(ctx, expr):
        tree = where.parse(expr)

        def matches(ref):
            def lookup(name):
                if not ctx.db.has_field(cls, name):
                    raise XapiFailure('INVALID_VALUE', expr,
                                      'unknown field %s' % name)
                return _db_string(ctx.db.field(cls, ref, name))
            return where.evaluate(tree, lookup)
        return {ref: ctx.db.record(cls, ref)
                for ref in list(ctx.db.objects[cls]) if matches(ref)}
    return get_all_records_where


def _db_string(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


_GENERIC = {
    'get_all': lambda cls: lambda ctx: sorted(ctx.db.objects[cls]),
    'get_all_records': lambda cls: lambda ctx: {
        ref: ctx.db.record(cls, ref) for ref in list(ctx.db.objects[cls])},
    'get_all_records_where': _all_records_where,
    'get_record': lambda cls: lambda ctx, ref: ctx.db.record(cls, ref),
    'get_by_uuid': lambda cls: lambda ctx, uuid: ctx.db.by_uuid(cls, uuid),
    'get_by_name_label': lambda cls: lambda ctx, label: sorted(
        ref for ref, rec in ctx.db.objects[cls].items()
        if rec.get('name_label') == label),
}


def _handlers():
    """Explicit methods; they win over the generic accessors."""
    handlers = _gpu_and_lifecycle_handlers()
    for module in (memory, storage, vbd, network, templates, power):
        handlers.update(module.handlers())
    return handlers


def _gpu_and_lifecycle_handlers():
    return {
        'session.logout': _logout,
        'pool.designate_new_master': lambda ctx, host: _done(
            ctx.api.designate_new_master(host)),
        'task.create': lambda ctx, label, description: tasks.create(
            ctx.db, label, description, ctx.session),
        'task.cancel': lambda ctx, task: _done(tasks.cancel(ctx.db, task)),
        'task.destroy': lambda ctx, task: _done(tasks.destroy(ctx.db,
                                                               task)),
        'session.get_this_host': _this_host,
        'session.get_originator': _originator,
        'event.from': events.event_from,
        'host.call_plugin': _call_plugin,
        'VM.create': lambda ctx, record: vmlib.create(ctx.db, record),
        'VM.set_HVM_boot_policy': lambda ctx, vm, value: _done(
            vmlib.set_hvm_boot_policy(ctx.db, vm, value)),
        'VM.start': lambda ctx, vm, paused, force: _done(boot.start(
            ctx.db, vm, None, paused, 'start', ctx.phase('VM.start'),
            force)),
        'VM.start_on': lambda ctx, vm, host, paused, force: _done(
            boot.start(ctx.db, vm, host, paused, 'start_on',
                       ctx.phase('VM.start_on'), force)),
        'VM.resume': lambda ctx, vm, paused, force: _done(boot.start(
            ctx.db, vm, None, paused, 'resume', ctx.phase('VM.resume'),
            force)),
        'VM.resume_on': lambda ctx, vm, host, paused, force: _done(
            boot.start(ctx.db, vm, host, paused, 'resume_on',
                       ctx.phase('VM.resume_on'), force)),
        'VM.assert_can_boot_here': lambda ctx, vm, host: _done(
            boot.assert_can_boot_here(ctx.db, vm, host)),
        'VM.clean_shutdown': lambda ctx, vm: _done(boot.shutdown(
            ctx.db, vm, cancelled=ctx.phase('VM.clean_shutdown'))),
        'VM.hard_shutdown': lambda ctx, vm: _done(boot.shutdown(
            ctx.db, vm, hard=True)),
        'VM.suspend': lambda ctx, vm: _done(boot.suspend(ctx.db, vm)),
        'VM.pool_migrate': lambda ctx, vm, host, options: _done(
            migrate.pool_migrate(ctx.db, vm, host,
                                 ctx.phase('VM.pool_migrate'))),
        'VM.migrate_send': lambda ctx, vm, dest, live, vdi_map, vif_map,
        options, vgpu_map=None: _done(migrate.migrate_send(
            ctx.db, vm, dest, vgpu_map or {},
            ctx.phase('VM.migrate_send'), vdi_map, vif_map)),
        'VM.assert_can_migrate': lambda ctx, vm, dest, live, vdi_map,
        vif_map, options, vgpu_map=None: _done(migrate.assert_can_migrate(
            ctx.db, vm, dest, vgpu_map or {}, vdi_map, vif_map)),
        'VDI.pool_migrate': lambda ctx, vdi, sr, options: (
            migrate.vdi_pool_migrate(ctx.db, vdi, sr,
                                     ctx.phase('VDI.pool_migrate'))),
        'host.migrate_receive': lambda ctx, host, network, options: (
            migrate.migrate_receive(ctx.db, host, network, ctx.session)),
        'VGPU.create': lambda ctx, vm, group, device, other, vgpu_type: (
            gpu.vgpu_create(ctx.db, vm, group, device, other, vgpu_type)),
        'VGPU.destroy': lambda ctx, vgpu: _done(gpu.vgpu_destroy(
            ctx.db, vgpu)),
        'VGPU.set_extra_args': lambda ctx, vgpu, value: _done(
            gpu.set_extra_args(ctx.db, vgpu, value)),
        'PGPU.enable_dom0_access': lambda ctx, pgpu: (
            gpu.pgpu_update_dom0_access(ctx.db, pgpu, True)),
        'PGPU.disable_dom0_access': lambda ctx, pgpu: (
            gpu.pgpu_update_dom0_access(ctx.db, pgpu, False)),
        'PCI.get_dom0_access_status': lambda ctx, pci: (
            gpu.dom0_access_status(ctx.db, pci)),
        'PCI.enable_dom0_access': lambda ctx, pci: (
            gpu.update_dom0_access(ctx.db, pci, True)),
        'PCI.disable_dom0_access': lambda ctx, pci: (
            gpu.update_dom0_access(ctx.db, pci, False)),
        'PGPU.set_enabled_VGPU_types': lambda ctx, pgpu, value: _done(
            gpu.set_enabled_types(ctx.db, pgpu, value)),
        'PGPU.add_enabled_VGPU_types': lambda ctx, pgpu, value: _done(
            gpu.add_enabled_type(ctx.db, pgpu, value)),
        'PGPU.remove_enabled_VGPU_types': lambda ctx, pgpu, value: _done(
            gpu.remove_enabled_type(ctx.db, pgpu, value)),
        'PGPU.set_GPU_group': lambda ctx, pgpu, group: _done(
            gpu.set_gpu_group(ctx.db, pgpu, group)),
        'PGPU.get_remaining_capacity': lambda ctx, pgpu, vgpu_type: (
            gpu.pgpu_remaining_capacity(ctx.db, pgpu, vgpu_type)),
        'GPU_group.get_remaining_capacity': lambda ctx, group, vgpu_type: (
            gpu.group_remaining_capacity(ctx.db, group, vgpu_type)),
        'GPU_group.create': lambda ctx, label, description, other: (
            ctx.db.create('GPU_group', name_label=label,
                          name_description=description,
                          other_config=dict(other))),
        'GPU_group.destroy': lambda ctx, group: _done(
            gpu.group_destroy(ctx.db, group)),
    }


def _done(_result):
    return ''


def _this_host(ctx, session):
    found = ctx.api.sessions.get(session)
    if found is None:
        raise XapiFailure('SESSION_INVALID', session)
    return found.host


def _originator(ctx, session):
    """session.get_originator; a ref no session has is HANDLE_INVALID
    [class, ref], as for any unknown ref (a missing row in
    db_cache_impl.ml, answered so by xapi's API layer)."""
    found = ctx.api.sessions.get(session)
    if found is None:
        raise XapiFailure('HANDLE_INVALID', 'session', session)
    return found.originator


def _logout(ctx):
    with ctx.api._lock:
        ctx.api.sessions.pop(ctx.session, None)
    return ''


def _call_plugin(ctx, host, plugin, fn, args):
    with ctx.db.lock:
        ctx.db.get('host', host)
    if ctx.api.plugins is None:
        raise XapiFailure('XENAPI_MISSING_PLUGIN', plugin)
    return ctx.api.plugins.call(ctx.session, host, plugin, fn, args)


# Calls that must not hold the database lock while they run: a plugin
# runs for as long as its subprocess takes; starts and moves wait out
# their boot window, a clean shutdown its guest; they lock what they
# change themselves.
_UNLOCKED = frozenset({'host.call_plugin', 'VM.start', 'VM.start_on',
                       'VM.clean_shutdown',
                       'VM.resume', 'VM.resume_on', 'VM.pool_migrate',
                       'VM.migrate_send', 'VDI.pool_migrate'})
