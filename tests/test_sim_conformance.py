"""Conformance: protocol and generic calls through the plain XenAPI SDK.

These tests only read (or fail cleanly), so they also run against a real
XenServer host: set XAPI_URL, XAPI_USERNAME and XAPI_PASSWORD.
"""

import urllib.parse
import xmlrpc.client

import pytest
import XenAPI

from tests import conftest
from tests.conftest import failure

CLASSES = ('host', 'pool', 'PCI', 'GPU_group', 'PGPU', 'VGPU_type', 'VGPU',
           'VM')
FIELDS = {
    'GPU_group': {'uuid', 'name_label', 'name_description', 'PGPUs', 'VGPUs',
                  'GPU_types', 'other_config', 'allocation_algorithm',
                  'supported_VGPU_types', 'enabled_VGPU_types'},
    'PGPU': {'uuid', 'PCI', 'GPU_group', 'host', 'other_config',
             'supported_VGPU_types', 'enabled_VGPU_types', 'resident_VGPUs',
             'supported_VGPU_max_capacities', 'dom0_access',
             'is_system_display_device', 'compatibility_metadata'},
    'VGPU_type': {'uuid', 'vendor_name', 'model_name', 'framebuffer_size',
                  'max_heads', 'max_resolution_x', 'max_resolution_y',
                  'supported_on_PGPUs', 'enabled_on_PGPUs', 'VGPUs',
                  'supported_on_GPU_groups', 'enabled_on_GPU_groups',
                  'implementation', 'identifier', 'experimental',
                  'compatible_types_in_vm'},
    'PCI': {'uuid', 'class_name', 'vendor_name', 'device_name', 'host',
            'pci_id', 'dependencies', 'other_config'},
    'host': {'uuid', 'name_label', 'address', 'PCIs', 'PGPUs'},
    'VM': {'uuid', 'name_label', 'power_state', 'VGPUs', 'attached_PCIs',
           'other_config', 'resident_on', 'is_control_domain'},
}


class Target:
    """A logged-in SDK session to the simulator or a real host."""

    def __init__(self, url, username, password, real):
        self.url, self.username, self.password = url, username, password
        self.real = real
        self.session = conftest.login(url, username, password)
        self.xapi = self.session.xenapi


@pytest.fixture
def target():
    if conftest.ON_REAL_XAPI:
        env = conftest.REAL_XAPI
        found = Target(env['XAPI_URL'], env['XAPI_USERNAME'],
                       env['XAPI_PASSWORD'], True)
        yield found
        found.xapi.session.logout()
        return
    with conftest.server.Simulator() as sim:
        yield Target(sim.url, sim.username, sim.password, False)


def test_login_and_logout(target):
    session = conftest.login(target.url, target.username, target.password)
    assert session.handle.startswith('OpaqueRef:')
    session.xenapi.session.logout()


def test_bad_credentials(target):
    session = XenAPI.Session(target.url)
    details = failure(session.login_with_password, target.username,
                      'not-the-password', '1.0', 'tests')
    assert details[0] == 'SESSION_AUTHENTICATION_FAILED'
    assert details[1] == target.username


def test_unknown_session_is_session_invalid(target):
    proxy = xmlrpc.client.ServerProxy(target.url)
    reply = proxy.host.get_all('OpaqueRef:00000000-dead-beef')
    assert reply['Status'] == 'Failure'
    assert reply['ErrorDescription'] == ['SESSION_INVALID',
                                         'OpaqueRef:00000000-dead-beef']


@pytest.mark.parametrize('path', ['/', '/RPC2'])
def test_serves_root_and_rpc2(target, path):
    parts = urllib.parse.urlsplit(target.url)
    url = urllib.parse.urlunsplit(parts._replace(path=path))
    session = conftest.login(url, target.username, target.password)
    assert session.xenapi.host.get_all()


@pytest.mark.parametrize('cls', CLASSES)
def test_get_all_and_records_agree(target, cls):
    api = getattr(target.xapi, cls)
    refs = api.get_all()
    records = api.get_all_records()
    assert sorted(refs) == sorted(records)
    assert all(ref.startswith('OpaqueRef:') for ref in refs)
    for ref in refs[:3]:
        assert api.get_record(ref) == records[ref]
        assert api.get_by_uuid(records[ref]['uuid']) == ref
        assert api.get_uuid(ref) == records[ref]['uuid']


@pytest.mark.parametrize('cls', sorted(FIELDS))
def test_records_have_xapi_fields(target, cls):
    records = getattr(target.xapi, cls).get_all_records()
    for record in records.values():
        assert FIELDS[cls] <= set(record), FIELDS[cls] - set(record)


def test_int64_fields_arrive_as_strings(target):
    types = target.xapi.VGPU_type.get_all_records()
    assert types
    for record in types.values():
        for field in ('framebuffer_size', 'max_heads', 'max_resolution_x',
                      'max_resolution_y'):
            assert isinstance(record[field], str)
            int(record[field])
        assert isinstance(record['experimental'], bool)
    for pgpu in target.xapi.PGPU.get_all_records().values():
        capacities = pgpu['supported_VGPU_max_capacities']
        assert all(isinstance(v, str) for v in capacities.values())


def test_passthrough_type_shape(target):
    types = target.xapi.VGPU_type.get_all_records().values()
    passthrough = [t for t in types if t['implementation'] == 'passthrough']
    for record in passthrough:
        assert record['model_name'] == 'passthrough'
        assert record['vendor_name'] == ''
        assert record['framebuffer_size'] == '0'


def test_unknown_ref_is_handle_invalid(target):
    ref = 'OpaqueRef:00000000-0000-0000-0000-000000000001'
    assert failure(target.xapi.PGPU.get_record, ref) == [
        'HANDLE_INVALID', 'PGPU', ref]


def test_unknown_uuid(target):
    details = failure(target.xapi.PGPU.get_by_uuid,
                      '00000000-0000-0000-0000-000000000001')
    assert details[0] == 'UUID_INVALID'


def test_unknown_method(target):
    details = failure(target.xapi.PGPU.no_such_method)
    assert details == ['MESSAGE_METHOD_UNKNOWN', 'PGPU.no_such_method']


def test_parameter_count_mismatch(target):
    details = failure(target.xapi.PGPU.get_record)
    assert details[0] == 'MESSAGE_PARAMETER_COUNT_MISMATCH'
    assert details[1] == 'PGPU.get_record'


def test_get_all_records_where(target):
    host = target.xapi.host.get_all()[0]
    on_host = target.xapi.PGPU.get_all_records_where(
        'field "host" = "%s"' % host)
    assert all(r['host'] == host for r in on_host.values())
    everything = target.xapi.PGPU.get_all_records()
    assert set(on_host) == {ref for ref, r in everything.items()
                            if r['host'] == host}
    nothing = target.xapi.PGPU.get_all_records_where(
        'field "host" = "%s" and false' % host)
    assert nothing == {}
    either = target.xapi.PGPU.get_all_records_where(
        'field "host" = "OpaqueRef:NULL" or (not false)')
    assert set(either) == set(everything)


def test_where_with_db_field_name(target):
    groups = target.xapi.GPU_group.get_all_records()
    name = next(iter(groups.values()))['name_label']
    found = target.xapi.GPU_group.get_all_records_where(
        'field "name__label" = "%s"' % name)
    assert set(found) == {r for r, g in groups.items()
                          if g['name_label'] == name}


def test_bad_where_expression(target):
    details = failure(target.xapi.PGPU.get_all_records_where,
                      'field "host" = ')
    assert details[0] == 'INVALID_VALUE'


def test_event_from_snapshot_shape(target):
    result = target.xapi.event_from(['pgpu', 'gpu_group'], '', 1.0)
    assert set(result) >= {'events', 'valid_ref_counts', 'token'}
    pgpus = target.xapi.PGPU.get_all()
    assert result['valid_ref_counts']['pgpu'] == len(pgpus)  # an int32
    adds = [e for e in result['events'] if e['class'] == 'pgpu']
    assert {e['ref'] for e in adds} == set(pgpus)
    for event in result['events']:
        assert event['operation'] == 'add'
        assert {'id', 'timestamp', 'class', 'operation', 'ref',
                'snapshot'} <= set(event)


def test_event_from_times_out_without_changes(target):
    token = target.xapi.event_from(['vgpu_type'], '', 1.0)['token']
    result = target.xapi.event_from(['vgpu_type'], token, 0.3)
    assert result['events'] == []
    assert result['token']


def test_event_from_bad_token(target):
    details = failure(target.xapi.event_from, ['pgpu'], 'garbage', 0.1)
    assert details[0] == 'EVENT_FROM_TOKEN_PARSE_FAILURE'


def test_both_method_name_forms(target):
    assert sorted(target.xapi.GPU_group_get_all()) == sorted(
        target.xapi.GPU_group.get_all())
    assert sorted(target.xapi.VGPU_type_get_all()) == sorted(
        target.xapi.VGPU_type.get_all())


def test_missing_plugin(target):
    host = target.xapi.host.get_all()[0]
    details = failure(target.xapi.host.call_plugin, host,
                      'no_such_plugin_here', 'version', {})
    assert details == ['XENAPI_MISSING_PLUGIN', 'no_such_plugin_here']


def test_group_types_and_pgpu_links(target):
    groups = target.xapi.GPU_group.get_all_records()
    pgpus = target.xapi.PGPU.get_all_records()
    for ref, group in groups.items():
        assert group['allocation_algorithm'] in ('depth_first',
                                                 'breadth_first')
        assert set(group['PGPUs']) == {p for p, r in pgpus.items()
                                       if r['GPU_group'] == ref}
        enabled = {t for p in group['PGPUs']
                   for t in pgpus[p]['enabled_VGPU_types']}
        assert set(group['enabled_VGPU_types']) == enabled
