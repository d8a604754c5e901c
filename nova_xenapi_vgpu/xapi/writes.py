"""Writes that create objects, tagged so that a lost answer is survivable.

A creating call carries an idempotency tag in the new object's
``other_config``. When its answer is lost (``XapiOutcomeUnknown``), the
objects it may have made are searched for the tag: found, it happened and
its ref is returned; absent, it did not, and it is made once more.
"""

from oslo_log import log as logging

from nova_xenapi_vgpu import exception

LOG = logging.getLogger(__name__)

TAG_KEY = 'nova_xenapi_vgpu_request'


def create_once(client, method, args, tag, find):
    """``method(*args)``, where ``args`` carry ``tag``; ``find(tag)`` -> the
    ref of an object made with it, or None.

    :raises: XapiError, XapiConnectionError (also when the second try's
             answer is lost too).
    """
    try:
        return client.call(method, *args)
    except exception.XapiOutcomeUnknown as exc:
        found = find(tag)
        if found is not None:
            LOG.info('%s (tag %s) took effect although its answer was '
                     'lost: %s', method, tag, found)
            return found
        LOG.info('%s (tag %s) did not take effect (%s); calling it again',
                 method, tag, exc)
    return client.call(method, *args)


def create_vgpu(client, vm, group, device, other_config, vgpu_type, tag):
    """VGPU.create with ``tag`` in its other_config, at most once.

    :raises: XapiError, XapiConnectionError.
    """
    config = dict(other_config, **{TAG_KEY: tag})

    def find(wanted):
        vgpus = client.call('VGPU.get_all_records_where',
                            'field "VM" = "%s"' % vm)
        return next((ref for ref, record in sorted(vgpus.items())
                     if record['other_config'].get(TAG_KEY) == wanted),
                    None)
    return create_once(client, 'VGPU.create',
                       (vm, group, device, config, vgpu_type), tag, find)


def add_key(client, cls, ref, key, value, field='other_config'):
    """``<cls>.add_to_<field>``: XAPI adds a key only when it is absent
    (``MAP_DUPLICATE_KEY`` otherwise), so of writers racing for one key
    exactly one succeeds. A lost answer is settled by reading the key
    back. Returns the value the key holds afterwards: ``value`` when
    this call wrote it (or an earlier one wrote the same), another
    writer's value when the key was taken.

    :raises: XapiError, XapiConnectionError.
    """
    try:
        client.call('%s.add_to_%s' % (cls, field), ref, key, value)
        return value
    except exception.XapiOutcomeUnknown as exc:
        LOG.info('%s.add_to_%s %s: answer lost (%s); reading it back', cls,
                 field, key, exc)
    except exception.XapiError as exc:
        if exc.code != 'MAP_DUPLICATE_KEY':
            raise
    current = client.call('%s.get_%s' % (cls, field), ref)
    if key in current:
        return current[key]
    return add_key(client, cls, ref, key, value, field)


def remove_key(client, cls, ref, key, field='other_config'):
    """``<cls>.remove_from_<field>`` (a missing key is no error)."""
    client.call('%s.remove_from_%s' % (cls, field), ref, key)
