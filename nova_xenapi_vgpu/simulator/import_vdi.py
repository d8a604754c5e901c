"""``PUT /import_raw_vdi``: an image into a VDI, streamed, as xapi does.

import_raw_vdi.ml and importexport.ml: the session must be valid (else
HTTP 401, xapi_http.ml's assert_credentials_ok); the VDI comes from
``vdi`` (a ref or a UUID); ``format`` is ``raw`` (the default) or
``vhd``, another one is HTTP 404 with the task failing INTERNAL_ERROR
``Unknown format``, as is a ``Transfer-Encoding``; a host that cannot see
the VDI's SR redirects (302) to one that can. The length is not checked
first: xapi answers 200 with the task's ref, then vhd-tool writes and the
task fails ``VDI_IO_ERROR [Device I/O errors]`` when the data overruns
the VDI (vhd_tool_wrapper.ml). The body is read in chunks, never whole.
"""

import struct
import urllib.parse
import xmlrpc.client

from nova_xenapi_vgpu.simulator import storage
from nova_xenapi_vgpu.simulator import tasks
from nova_xenapi_vgpu.simulator.errors import XapiFailure

PATH = '/import_raw_vdi'
CHUNK = 1024 ** 2
_FORMATS = ('raw', 'vhd', 'tar', 'qcow2')
_VHD_COOKIE = b'conectix'


class Refused(Exception):
    """An import xapi refuses: the HTTP status and the task's error."""

    def __init__(self, status, error=None, location=None):
        super().__init__(status)
        self.status, self.error, self.location = status, error, location


def handle(request, api, host):
    """Serve one PUT; ``request`` is the http.server handler."""
    url = urllib.parse.urlsplit(request.path)
    query = dict(urllib.parse.parse_qsl(url.query))
    task = query.get('task_id')
    try:
        vdi, fmt = _accept(api, host, query, request.headers)
        task = task or _new_task(api, host, query['session_id'])
    except Refused as refused:
        _fail(api, task, refused.error)
        _reply(request, refused.status, location=refused.location)
        return
    _reply(request, 200, task=task)
    _receive(api, request, vdi, fmt, task)


def _accept(api, host, query, headers):
    """The checks before xapi answers; (vdi, format).

    :raises: Refused.
    """
    session = query.get('session_id', '')
    if session not in api.sessions:
        raise Refused(401)
    fmt = query.get('format', 'raw').lower()
    with api.db.lock:
        vdi = _vdi(api.db, query)
        if fmt not in _FORMATS[:2]:
            raise Refused(404, ['INTERNAL_ERROR', 'Unknown format ' + fmt]
                          if fmt not in _FORMATS else [
                              'INTERNAL_ERROR', 'Format %s not modelled'
                              % fmt])
        if headers.get('Transfer-Encoding'):
            raise Refused(404, ['INTERNAL_ERROR', 'Cannot handle encoding: '
                                + headers['Transfer-Encoding']])
        sr = api.db.get('VDI', vdi)['SR']
        if not storage.host_sees(api.db, host, sr):
            raise Refused(302, location=_redirect(api.db, sr))
    return vdi, fmt


def _vdi(db, query):
    """importexport.ml, vdi_of_req: a ref, else a UUID."""
    value = query.get('vdi')
    if value is None:
        raise Refused(400, ['VDI_MISSING'])
    if value in db.objects['VDI']:
        return value
    try:
        return db.by_uuid('VDI', value)
    except XapiFailure as exc:
        raise Refused(400, exc.description) from None


def _redirect(db, sr):
    for host, record in sorted(db.objects['host'].items()):
        if storage.host_sees(db, host, sr):
            return record['address']
    raise Refused(400, ['SR_NO_PBDS', sr])


def _new_task(api, host, session):
    with api.db.lock:
        return api.db.create('task', name_label='VDI.import',
                             created=xmlrpc.client.DateTime(),
                             resident_on=host, _session=session,
                             _cancel=False)


def _receive(api, request, vdi, fmt, task):
    """Stream the body into the VDI; the task says how it went."""
    with api.db.lock:
        capacity = api.db.get('VDI', vdi)['virtual_size']
    length = request.headers.get('Content-Length')
    remaining = int(length) if length is not None else None
    written, error, first = 0, None, True
    while remaining is None or remaining > 0:
        chunk = request.rfile.read(CHUNK if remaining is None
                                   else min(CHUNK, remaining))
        if not chunk:
            break
        if remaining is not None:
            remaining -= len(chunk)
        if first and fmt == 'vhd':
            error = _vhd_error(chunk, capacity)
        first = False
        written += len(chunk)
        if fmt == 'raw' and written > capacity:
            error = ['VDI_IO_ERROR', 'Device I/O errors']
    _finish(api, vdi, task, min(written, capacity), error)


def _vhd_error(head, capacity):
    """vhd-tool reads the footer copy at the start of a dynamic VHD."""
    if len(head) < 512 or head[:8] != _VHD_COOKIE:
        return ['VDI_IO_ERROR', 'Device I/O errors']
    (size,) = struct.unpack('>Q', head[48:56])
    return ['VDI_IO_ERROR', 'Device I/O errors'] if size > capacity else None


def _finish(api, vdi, task, written, error):
    with api.db.lock:
        if error is None and vdi in api.db.objects['VDI']:
            storage.write(api.db, vdi, written)
        fields = ({'status': 'success', 'progress': 1.0,
                   'result': tasks.encode(vdi)} if error is None
                  else {'status': 'failure', 'error_info': error})
        _set_task(api.db, task, fields)


def _fail(api, task, error):
    if task and error:
        with api.db.lock:
            _set_task(api.db, task, {'status': 'failure',
                                     'error_info': error})


def _set_task(db, task, fields):
    if task in db.objects['task']:
        for field, value in dict(fields, finished=xmlrpc.client.DateTime(),
                                 allowed_operations=[]).items():
            db.set('task', task, field, value)


def _reply(request, status, task=None, location=None):
    request.send_response(status)
    if task:
        request.send_header('task-id', task)
        request.send_header('Content-Type', 'application/octet-stream')
    if location:
        request.send_header('Location', 'http://%s:%d%s' % (
            location, request.server.server_address[1], request.path))
    request.send_header('Content-Length', '0')
    request.send_header('Connection', 'close')
    request.end_headers()
    request.close_connection = True
