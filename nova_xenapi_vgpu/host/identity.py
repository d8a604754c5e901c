"""Which XenServer host this compute service stands for."""

import socket
import urllib.parse

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import records


def resolve_host(client, host_uuid=None):
    """The host ref: by UUID, else the host the client's URL points at.

    When the URL named a pool member and the client was sent on to the
    master, the member is still the host meant: it is found among the
    pool's hosts by address (the URL's host name resolved too), host name,
    name label or uuid.

    :raises: HostNotFound saying what was tried; XapiError.
    """
    if host_uuid:
        hosts = client.call('host.get_all_records_where',
                            'field "uuid" = "%s"' % host_uuid)
        if not hosts:
            raise exception.HostNotFound(
                wanted='[xenserver] host_uuid %s' % host_uuid,
                tried='the uuids of the pool\'s hosts')
        return next(iter(hosts))
    this = client.this_host()  # logs in: a member URL finds its master
    if not client.master_url:
        return this
    return _host_named(client, urllib.parse.urlsplit(client.url).hostname)


def _host_named(client, name):
    hosts = records.decode_all(records.Host,
                               client.call('host.get_all_records'))
    addresses = {name} | _resolve(name)
    for host in sorted(hosts.values(), key=lambda h: h.name_label):
        if host.address in addresses or name in (
                host.hostname, host.name_label, host.uuid):
            return host.ref
    raise exception.HostNotFound(
        wanted='%s (from connection_url)' % name,
        tried='addresses %s, host names, name labels and uuids of %d '
              'host(s); set [xenserver] host_uuid' % (
                  ', '.join(sorted(addresses)), len(hosts)))


def _resolve(name):
    try:
        return {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return set()
