"""``PUT /import_raw_vdi`` with a real HTTP client, as xapi answers it.

import_raw_vdi.ml, importexport.ml, xapi_http.ml and vhd_tool_wrapper.ml:
401 for a bad session, 404 with the task failing INTERNAL_ERROR for an
unknown format, 200 and then VDI_IO_ERROR when the data overruns the
VDI, a redirect to a host that sees the SR. The streaming itself (a 1 GiB
image with the simulator's memory measured) is in test_sim_import_rss.py.
"""

import http.client
import struct
import time
import urllib.parse

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import login

MIB = 2 ** 20


@pytest.fixture
def pool():
    profile = {'hosts': [
        {'name': 'master', 'local_sr': {'type': 'ext'}, 'pgpus': []},
        {'name': 'member', 'pgpus': []}]}
    with server.Simulator(profile) as sim:
        session = login(sim.url)
        yield sim, session


def put(url, path, body, headers=None):
    """PUT ``body`` (bytes or a list of chunks) with http.client."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port,
                                            timeout=30)
    chunks = body if isinstance(body, list) else [body]
    connection.putrequest('PUT', path)
    for name, value in dict({'Content-Length': str(sum(
            len(c) for c in chunks))}, **(headers or {})).items():
        connection.putheader(name, value)
    connection.endheaders()
    for chunk in chunks:
        connection.send(chunk)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def query(**params):
    return '/import_raw_vdi?' + urllib.parse.urlencode(params)


def import_into(sim, session, vdi, fmt, body):
    """A PUT /import_raw_vdi of ``body`` into ``vdi`` with a task of its
    own: (task, response)."""
    task = session.xenapi.task.create('import', '')
    return task, put(sim.url, query(session_id=session._session, vdi=vdi,
                                    format=fmt, task_id=task), body)


def new_vdi(xapi, size, sr=None):
    if sr is None:
        (pool,) = xapi.pool.get_all()
        sr = xapi.pool.get_default_SR(pool)
    return xapi.VDI.create({
        'name_label': 'image', 'name_description': '', 'SR': sr,
        'virtual_size': str(size), 'type': 'user', 'sharable': False,
        'read_only': False, 'other_config': {}, 'xenstore_data': {},
        'sm_config': {}, 'tags': []})


def wait(xapi, task):
    deadline = time.monotonic() + 10
    while xapi.task.get_status(task) == 'pending':
        assert time.monotonic() < deadline, 'the task never finished'
        time.sleep(0.01)
    return xapi.task.get_record(task)


def test_raw_import_fills_the_vdi(pool):
    sim, session = pool
    xapi = session.xenapi
    vdi = new_vdi(xapi, 8 * MIB)
    task, response = import_into(sim, session, vdi, 'raw',
                                   [b'\0' * MIB] * 3)
    assert response.status == 200
    assert response.getheader('task-id') == task
    record = wait(xapi, task)
    assert record['status'] == 'success'
    assert record['result'] == '<value>%s</value>' % vdi
    assert xapi.VDI.get_physical_utilisation(vdi) == str(3 * MIB)
    sr = xapi.VDI.get_SR(vdi)
    assert xapi.SR.get_physical_utilisation(sr) == str(3 * MIB)


def test_vdi_by_uuid_and_default_format(pool):
    sim, session = pool
    xapi = session.xenapi
    vdi = new_vdi(xapi, 2 * MIB)
    response = put(sim.url, query(session_id=session._session,
                                  vdi=xapi.VDI.get_uuid(vdi)), b'x' * 1000)
    assert response.status == 200
    record = wait(xapi, response.getheader('task-id'))
    assert record['status'] == 'success'


def test_a_bad_session_is_401(pool):
    sim, session = pool
    vdi = new_vdi(session.xenapi, 2 * MIB)
    response = put(sim.url, query(session_id='OpaqueRef:nobody', vdi=vdi),
                   b'x')
    assert response.status == 401


def test_an_unknown_format_is_404_and_fails_the_task(pool):
    sim, session = pool
    xapi = session.xenapi
    vdi = new_vdi(xapi, 2 * MIB)
    task, response = import_into(sim, session, vdi, 'iso', b'x')
    assert response.status == 404
    record = wait(xapi, task)
    assert (record['status'], record['error_info']) == (
        'failure', ['INTERNAL_ERROR', 'Unknown format iso'])


def test_data_beyond_the_vdi_fails_after_200(pool):
    sim, session = pool
    xapi = session.xenapi
    vdi = new_vdi(xapi, 2 * MIB)
    task, response = import_into(sim, session, vdi, 'raw',
                                   [b'\1' * MIB] * 3)
    assert response.status == 200
    record = wait(xapi, task)
    assert (record['status'], record['error_info']) == (
        'failure', ['VDI_IO_ERROR', 'Device I/O errors'])


def vhd_footer(size):
    """The 512-byte footer copy a dynamic VHD starts with."""
    footer = bytearray(512)
    footer[0:8] = b'conectix'
    footer[48:56] = struct.pack('>Q', size)
    return bytes(footer)


def test_vhd_import_reads_the_virtual_size(pool):
    sim, session = pool
    xapi = session.xenapi
    vdi = new_vdi(xapi, 4 * MIB)
    for size, status in ((4 * MIB, 'success'), (8 * MIB, 'failure')):
        task, response = import_into(sim, session, vdi, 'vhd',
                                       vhd_footer(size) + b'\0' * 4096)
        assert response.status == 200
        assert wait(xapi, task)['status'] == status


def test_a_host_that_cannot_see_the_sr_redirects(pool):
    sim, session = pool
    xapi = session.xenapi
    member = [h for h in xapi.host.get_all()
              if xapi.host.get_name_label(h) == 'member'][0]
    (pbd,) = xapi.host.get_PBDs(member)
    vdi = new_vdi(xapi, 2 * MIB, sr=xapi.PBD.get_SR(pbd))
    response = put(sim.url, query(session_id=session._session, vdi=vdi),
                   b'x')
    assert response.status == 302
    location = urllib.parse.urlsplit(response.getheader('Location'))
    assert location.hostname == xapi.host.get_address(member)
    assert put(response.getheader('Location'), '%s?%s' % (
        location.path, location.query), b'x').status == 200
