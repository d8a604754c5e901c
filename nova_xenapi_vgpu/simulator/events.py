"""``event.from``: changes since a token, blocking until there are some."""

import time

from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure
from nova_xenapi_vgpu.simulator.wire import Int32


def _parse_token(token):
    if token == '':
        return None
    try:
        value = int(token)
    except ValueError:
        raise XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', token) from None
    if value < 0:
        raise XapiFailure('EVENT_FROM_TOKEN_PARSE_FAILURE', token)
    return value


def _wanted(classes):
    names = set()
    for name in classes:
        if name == '*':
            return set(schema.CLASSES)
        xapi_class = schema.class_by_event_name(name.lower().split('/')[0])
        if xapi_class is not None:
            names.add(xapi_class.name)
    return names


def event_from(ctx, classes, token, timeout):
    """Events for ``classes`` after ``token``; waits up to ``timeout`` s."""
    db = ctx.db
    since = _parse_token(token)
    wanted = _wanted(classes)
    deadline = time.monotonic() + float(timeout)
    while True:
        if since is None:
            events = _snapshot(db, wanted)
        else:
            events = _changes(db, wanted, since)
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            break
        db.changed.wait(remaining)
    return {
        'events': events,
        'valid_ref_counts': {schema.CLASSES[c].event_name: Int32(len(
            db.objects[c])) for c in sorted(wanted)},
        'token': str(db.generation),
    }


def _event(db, number, cls, ref, operation):
    event = {'id': str(number), 'timestamp': '%.6f' % time.time(),
             'class': schema.CLASSES[cls].event_name,
             'operation': operation, 'ref': ref}
    if operation != 'del':
        event['snapshot'] = db.record(cls, ref)
    return event


def _snapshot(db, wanted):
    return [_event(db, db.generation, cls, ref, 'add')
            for cls in sorted(wanted) for ref in sorted(db.objects[cls])]


def _changes(db, wanted, since):
    return [_event(db, db.generation, cls, ref, operation)
            for (cls, ref), operation in db.changes_since(since).items()
            if cls in wanted]
