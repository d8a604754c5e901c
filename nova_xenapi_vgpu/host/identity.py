"""Which XenServer host this compute service stands for."""

import urllib.parse

from nova_xenapi_vgpu import exception


def resolve_host(client, host_uuid=None):
    """The host ref: by UUID, else the host the client's URL points at.

    When the URL named a pool member and the client was sent on to the
    master, the member is still the host meant.

    :raises: XapiError (UUID_INVALID for an unknown UUID).
    """
    if host_uuid:
        return client.call('host.get_by_uuid', host_uuid)
    if client.master_url:
        address = urllib.parse.urlsplit(client.url).hostname
        hosts = client.call('host.get_all_records_where',
                            'field "address" = "%s"' % address)
        if not hosts:
            raise exception.XapiError('HOST_NOT_FOUND', [address])
        return sorted(hosts)[0]
    return client.this_host()
