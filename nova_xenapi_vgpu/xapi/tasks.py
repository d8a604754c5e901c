"""Long XAPI operations as ``Async`` tasks, as XenServer clients run them.

The call returns a task at once; its record is polled (status, progress,
result, ``error_info``) until it finishes. Past the deadline the task is
cancelled; the task is destroyed in every case. A short ``call_timeout``
therefore never cuts a VM start in half.
"""

import time

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import records

LOG = logging.getLogger(__name__)

LONG_OPERATIONS = frozenset({
    'VM.start', 'VM.start_on', 'VM.clean_shutdown', 'VM.hard_shutdown',
    'VM.pool_migrate', 'VM.migrate_send', 'VM.suspend', 'VM.resume',
    'VM.resume_on'})
FIRST_POLL, LAST_POLL = 0.02, 1.0


def run(client, method, *args, timeout=600.0, clock=time.monotonic):
    """``Async.<method>``: its result once the task has succeeded.

    :raises: XapiError with the task's error_info; XapiTaskTimeout when
             it was cancelled after ``timeout`` s; XapiOutcomeUnknown when
             it could not be cancelled; XapiConnectionError.
    """
    task = client.call('Async.%s' % method, *args)
    try:
        return outcome(client, task, method, args, timeout, clock)
    finally:
        _destroy(client, task)


def outcome(client, task, method, args=(), timeout=600.0,
            clock=time.monotonic):
    """The result of ``task`` (running ``method``) once it has succeeded;
    cancelled after ``timeout`` s. The caller destroys the task.

    :raises: as ``run``.
    """
    record = _wait(client, task, clock() + timeout, clock)
    if not record.done:
        record = _cancel(client, task, method, args, clock)
        if record.status == 'cancelled':
            raise exception.XapiTaskTimeout(method=method, seconds=timeout,
                                            task=task)
    if record.status in ('failure', 'cancelled'):
        raise exception.from_failure(record.error_info)
    return record.value()


def destroy(client, task):
    """Destroy ``task``; a failure is only logged."""
    _destroy(client, task)


def _poll(client, task):
    return records.Task.from_xapi(task, client.call('task.get_record', task))


def _wait(client, task, deadline, clock):
    """The task's record once done, or at the deadline."""
    interval = FIRST_POLL
    while True:
        record = _poll(client, task)
        remaining = deadline - clock()
        if record.done or remaining <= 0:
            return record
        client.sleep(min(interval, remaining))
        interval = min(interval * 2, LAST_POLL)


def _cancel(client, task, method, args, clock):
    LOG.warning('%s (task %s) is still running: cancelling it', method,
                task)
    client.call('task.cancel', task)
    record = _wait(client, task, clock() + client.connect_timeout, clock)
    if not record.done:
        raise exception.XapiOutcomeUnknown(
            client.target_url, method, client.mask(args),
            'task %s still %s after task.cancel' % (task, record.status))
    return record


def _destroy(client, task):
    try:
        client.call('task.destroy', task)
    except (exception.XapiError, exception.XapiConnectionError) as exc:
        LOG.debug('Could not destroy task %s: %s', task, exc)
