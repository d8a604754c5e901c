"""``PUT /import_raw_vdi``: an image streamed into a VDI, as xapi takes it.

xapi's import_raw_vdi.ml: the session, the VDI and the format (``raw`` or
``vhd``) in the query, a body with a ``Content-Length`` (xapi refuses a
``Transfer-Encoding``), and a task that says how the write went. The
request goes to the host that sees the VDI's SR (a local SR: that host),
with ``connection_url``'s scheme, port and TLS verification. The body is
written as the caller hands over chunks: never held whole in memory.
"""

import urllib.parse

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import tasks

PATH = '/import_raw_vdi'
FORMATS = ('raw', 'vhd')


class ImportFailed(exception.XapiError):
    """The import did not complete (HTTP refusal or a short body)."""


class _Body:
    """A file-like writer: each ``write`` goes on the request's body."""

    def __init__(self, connection, length):
        self.connection, self.length, self.written = connection, length, 0

    def write(self, chunk):
        """Send ``chunk``; more than the announced length is refused."""
        self.written += len(chunk)
        if self.written > self.length:
            raise ImportFailed('IMPORT_BODY_TOO_LONG', [self.length])
        self.connection.send(chunk)
        return len(chunk)


def import_raw_vdi(client, address, vdi, fmt, length, fill):
    """Stream ``length`` bytes into ``vdi`` on the host at ``address``;
    ``fill(writer)`` writes them (``writer.write(chunk)``).

    :raises: ImportFailed (HTTP status, or fewer bytes than announced),
             XapiError with the task's error (e.g. VDI_IO_ERROR),
             XapiConnectionError, OSError.
    """
    if fmt not in FORMATS:
        raise ImportFailed('IMPORT_FORMAT_UNSUPPORTED', [fmt])
    task = client.call('task.create', 'nova-xenapi-vgpu import', vdi)
    try:
        with client.lend_handle() as handle:
            _put(client, address, dict(session_id=handle, vdi=vdi,
                                       format=fmt, task_id=task),
                 length, fill)
        return tasks.outcome(client, task, 'VDI import', (vdi,),
                             client.task_timeout)
    finally:
        tasks.destroy(client, task)


def _put(client, address, query, length, fill):
    connection = client.http_connection(address)
    try:
        connection.putrequest('PUT', PATH + '?' + urllib.parse.urlencode(
            query), skip_accept_encoding=True)
        connection.putheader('Content-Length', str(length))
        connection.endheaders()
        body = _Body(connection, length)
        try:
            fill(body)
        except OSError:
            _refused_early(connection)
            raise
        if body.written != length:
            raise ImportFailed('IMPORT_BODY_TOO_SHORT',
                               [body.written, length])
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise ImportFailed('IMPORT_HTTP_%d' % response.status,
                               [response.reason])
    finally:
        connection.close()


def _refused_early(connection):
    """XAPI answered and closed before the body was sent: its status.

    :raises: ImportFailed when XAPI's answer can be read.
    """
    try:
        response = connection.getresponse()
    except (OSError, ValueError):
        return
    if response.status != 200:
        raise ImportFailed('IMPORT_HTTP_%d' % response.status,
                           [response.reason])
