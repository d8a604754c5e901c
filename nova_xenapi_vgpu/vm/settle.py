"""What happened to a start or move whose outcome the client lost.

A lost reply (``XapiOutcomeUnknown``), a task that could not be read or
cancelled, a connection gone in the middle: XAPI may have done the
operation, may still be doing it, or never started it. Nothing is rolled
back on a guess. XAPI is asked instead: while the VM's
``current_operations`` still lists the operation it is under way (its
task is XAPI's own, listed there), so the answer is awaited; then the
VM's ``power_state`` and ``resident_on`` say what happened.
"""

import dataclasses
import time

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import records

LOG = logging.getLogger(__name__)

STARTS = frozenset({'start', 'start_on', 'resume', 'resume_on'})
MOVES = frozenset({'pool_migrate', 'migrate_send'})
RUNNING = ('Running', 'Paused')


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Where an operation left the VM, read from XAPI."""

    power_state: str
    resident_on: str | None
    host_uuid: str | None

    @property
    def runs(self):
        """Whether the VM runs (or is paused) somewhere."""
        return self.power_state in RUNNING


def settle(client, vm, operations, timeout=None, clock=time.monotonic):
    """Wait until none of ``operations`` is in progress on ``vm``, then
    its power state and host.

    :raises: XapiError, XapiConnectionError when XAPI cannot be asked;
             XapiOutcomeUnknown when the operation is still under way
             after ``timeout`` s (default: the client's task timeout).
    """
    deadline = clock() + (client.task_timeout if timeout is None
                          else timeout)
    interval = 0.05
    while True:
        record = records.Vm.from_xapi(vm, client.call('VM.get_record', vm))
        busy = sorted(set(record.current_operations.values()) & operations)
        if not busy:
            break
        if clock() >= deadline:
            raise exception.XapiOutcomeUnknown(
                client.target_url, 'VM.%s' % busy[0], (vm,),
                'still in progress on the VM after waiting')
        client.sleep(interval)
        interval = min(interval * 2, 1.0)
    host = (client.call('host.get_uuid', record.resident_on)
            if record.resident_on else None)
    LOG.info('Settled %s: %s on %s', vm, record.power_state,
             host or 'no host')
    return Outcome(record.power_state, record.resident_on, host)


def outcome_or_none(client, vm, operations, cause):
    """``settle``, or None (logged) when XAPI cannot say: then nothing
    may be undone."""
    try:
        return settle(client, vm, operations)
    except (exception.XapiError, exception.XapiConnectionError) as exc:
        LOG.error('%s: XAPI could not say what became of %s after %s '
                  '(%s); nothing is rolled back', vm, '/'.join(
                      sorted(operations)), cause, exc)
        return None
