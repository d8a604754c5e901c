"""``Async.*`` calls: xapi's task objects, the call run in the background.

The task is ``pending`` while the call runs, then ``success`` with the
result as an XML-RPC value string, ``failure`` with ``error_info``, or
``cancelled`` (``TASK_CANCELLED [task]``) when ``task.cancel`` reached it
before its devices were plugged (xapi_task.ml, taskHelper.ml).
"""

import threading
import xml.sax.saxutils
import xmlrpc.client

from nova_xenapi_vgpu.simulator.errors import XapiFailure
from nova_xenapi_vgpu.simulator.wire import to_wire


def _now():
    return xmlrpc.client.DateTime()


def start(api, name, params, host):
    """Validate ``Async.<name>``, create its task, run it in a thread."""
    handler = api.resolve(name)
    api.validate(name, handler, params)
    with api.db.lock:
        task = api.db.create('task', name_label='Async.%s' % name,
                             created=_now(), resident_on=host,
                             _session=params[0], _cancel=False)
    threading.Thread(target=_run, args=(api, name, handler, params, task),
                     daemon=True, name='xapi-sim-task').start()
    return task


def _run(api, name, handler, params, task):
    try:
        injected = api.faults.injected(name)  # faults of the method itself
        if injected:
            raise XapiFailure(*injected)
        fields = {'status': 'success', 'progress': 1.0,
                  'result': encode(api.run(name, handler, params, task))}
    except XapiFailure as exc:
        fields = {'status': 'cancelled' if exc.code == 'TASK_CANCELLED'
                  else 'failure', 'error_info': exc.description}
    except (TypeError, ValueError, AttributeError) as exc:
        fields = {'status': 'failure', 'error_info': [
            'INTERNAL_ERROR', '%s: %s' % (type(exc).__name__, exc)]}
    with api.db.lock:
        if task in api.db.objects['task']:
            for field, value in dict(fields, finished=_now(),
                                     allowed_operations=[],
                                     current_operations={}).items():
                api.db.set('task', task, field, value)


def encode(value):
    """A task result as xapi writes it: the XML-RPC ``<value>``."""
    if value == '':
        return ''
    if isinstance(value, str):
        return '<value>%s</value>' % xml.sax.saxutils.escape(value)
    text = xmlrpc.client.dumps((to_wire(value),))
    return text[text.index('<value>'):text.rindex('</value>') + 8]


def cancelled(db, task):
    """``TASK_CANCELLED [task]`` once the task was cancelled, else None."""
    if task is not None:
        with db.lock:
            if db.get('task', task)['_cancel']:
                return ['TASK_CANCELLED', task]
    return None


def create(db, label, description, session):
    """task.create: a pending task a client reports progress on, or hands
    to an HTTP handler (``task_id``)."""
    return db.create('task', name_label=label, name_description=description,
                     created=_now(), _session=session, _cancel=False)


def cancel(db, task):
    """task.cancel: a pending task stops at its next check."""
    record = db.get('task', task)
    if record['status'] == 'pending':
        db.set('task', task, '_cancel', True)
        db.set('task', task, 'current_operations', {task: 'cancel'})


def destroy(db, task):
    """task.destroy."""
    db.get('task', task)
    db.destroy('task', task)
