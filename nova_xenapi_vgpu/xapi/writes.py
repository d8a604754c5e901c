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
