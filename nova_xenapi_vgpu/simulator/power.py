"""Reboots, pause and what a guest does by itself.

xapi_vm.ml hands reboots to xenopsd (xapi_xenops.ml, reboot): the domain
is rebuilt on the same host with the same devices, so VGPUs stay
resident on their pGPUs and nothing is scheduled anew. clean_reboot
needs the guest's help (xapi_vm_lifecycle.ml, check_op_for_feature).
When the guest itself shuts down, reboots or
crashes, xenopsd applies ``actions_after_shutdown``, ``_reboot`` or
``_crash``.
"""

import itertools

from nova_xenapi_vgpu.simulator import boot
from nova_xenapi_vgpu.simulator import devices
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator.errors import XapiFailure

_domids = itertools.count(10000)


def reboot(db, vm, hard=False):
    """VM.clean_reboot / VM.hard_reboot (message_forwarding.ml checks the
    operation first, so a halted or suspended VM is VM_BAD_POWER_STATE)."""
    with db.lock:
        task = vmlib.begin(db, vm, 'hard_reboot' if hard else 'clean_reboot')
        try:
            _rebuilt(db, vm)
        finally:
            vmlib.end(db, vm, task)


def _rebuilt(db, vm):
    """A new domain in the old one's place: new domid, same devices."""
    host = db.get('VM', vm)['resident_on']
    db.set('VM', vm, 'domid', next(_domids))
    db.set('VM', vm, 'power_state', 'Running')
    devices.attach(db, vm)
    devices.touch_host(db, host)


def pause(db, vm, paused=True):
    """VM.pause / VM.unpause."""
    with db.lock:
        task = vmlib.begin(db, vm, 'pause' if paused else 'unpause')
        db.set('VM', vm, 'power_state', 'Paused' if paused else 'Running')
        vmlib.end(db, vm, task)


def power_state_reset(db, vm):
    """VM.power_state_reset (xapi_vm.ml): for a VM whose host died. A
    control domain is refused; a running or paused VM is refused while
    its host lives (``DOMAIN_EXISTS`` on the master, which asks its own
    xenopsd; ``HOST_IS_LIVE`` elsewhere); then force_state_reset marks it
    Halted and frees its devices."""
    with db.lock:
        record = db.get('VM', vm)
        if record['is_control_domain']:
            raise XapiFailure('CANNOT_RESET_CONTROL_DOMAIN', vm)
        host = record['resident_on']
        if record['power_state'] in vmlib.LIVE and _host_live(db, host):
            if host == db.get('pool', db.pool)['master']:
                raise XapiFailure('DOMAIN_EXISTS', vm)
            raise XapiFailure('HOST_IS_LIVE', host)
        boot.unplug(db, vm, 'Halted')


def _host_live(db, host):
    """host_metrics.live of ``host`` (Xapi_host.is_host_alive)."""
    if host not in db.objects['host']:
        return False
    metrics = db.get('host', host)['metrics']
    return metrics not in db.objects['host_metrics'] or db.get(
        'host_metrics', metrics)['live']


# xenopsd: what each action does to a domain whose guest stopped.
_AFTER = {'destroy': 'halt', 'coredump_and_destroy': 'halt',
          'restart': 'reboot', 'coredump_and_restart': 'reboot',
          'rename_restart': 'reboot', 'preserve': 'pause',
          'soft_reboot': 'reboot'}


def guest_stopped(db, vm, reason):
    """The guest shut down, rebooted or crashed by itself (``reason``):
    apply the VM's actions_after_<reason>; returns the new power state.

    :raises: ValueError for another reason or a VM that does not run.
    """
    with db.lock:
        record = db.get('VM', vm)
        if reason not in ('shutdown', 'reboot', 'crash'):
            raise ValueError('reason must be shutdown, reboot or crash')
        if record['power_state'] != 'Running':
            raise ValueError('the guest of a %s VM does nothing'
                             % record['power_state'].lower())
        action = _AFTER.get(record['actions_after_%s' % reason], 'halt')
        if action == 'halt':
            boot.unplug(db, vm, 'Halted')
        elif action == 'reboot':
            _rebuilt(db, vm)
        else:
            db.set('VM', vm, 'power_state', 'Paused')
        return db.get('VM', vm)['power_state']


def handlers():
    """The XAPI calls of this module."""
    return {
        'VM.clean_reboot': lambda ctx, vm: _(reboot(ctx.db, vm)),
        'VM.hard_reboot': lambda ctx, vm: _(reboot(ctx.db, vm, hard=True)),
        'VM.pause': lambda ctx, vm: _(pause(ctx.db, vm)),
        'VM.unpause': lambda ctx, vm: _(pause(ctx.db, vm, paused=False)),
        'VM.power_state_reset': lambda ctx, vm: _(power_state_reset(
            ctx.db, vm)),
    }


def _(_result):
    return ''
