"""Conformance: protocol, generic calls and xapi's rules, plain SDK only.

Every test also runs against a real XenServer host: set XAPI_URL,
XAPI_USERNAME and XAPI_PASSWORD. The first part only reads (or fails
cleanly). The rule tests further down create VMs and VGPUs of their own
and remove them afterwards; on a real host they run only when
XAPI_ALLOW_WRITES=1 is set too. Where a rule depends on the host (its
licence, its IOMMU, the guest's drivers) the test reads that first and
checks the matching branch.
"""

import os
import re
import threading
import urllib.parse
import xmlrpc.client

import pytest
import XenAPI

from tests import conftest
from tests.conftest import failure

pytestmark = pytest.mark.realxapi
NULL = 'OpaqueRef:NULL'

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

    def __init__(self, url, username, password, sim=None):
        self.url, self.username, self.password = url, username, password
        self.sim = sim
        self.real = sim is None
        self.session = conftest.login(url, username, password)
        self.xapi = self.session.xenapi
        self.vms = []

    def other(self):
        """A second session, for a call made from another thread."""
        return conftest.login(self.url, self.username, self.password).xenapi

    def need(self, condition, reason):
        """Skip on a real host that lacks what a test needs; on the
        simulator the profile has it, so a miss there is a failure."""
        if not condition:
            if self.real:
                pytest.skip(reason)
            pytest.fail('the simulator profile lacks: %s' % reason)

    def vm(self, name, hvm=True):
        """A halted VM of this test's, removed at the end."""
        ref = self.xapi.VM.create({
            'name_label': 'conformance-%s' % name, 'name_description': '',
            'memory_static_max': str(2 ** 30),
            'memory_dynamic_max': str(2 ** 30),
            'memory_dynamic_min': str(2 ** 30),
            'memory_static_min': str(2 ** 30), 'VCPUs_max': '1',
            'VCPUs_at_startup': '1',
            'HVM_boot_policy': 'BIOS order' if hvm else '',
            'HVM_boot_params': {'order': 'dc'} if hvm else {},
            'platform': {}, 'PV_bootloader': '' if hvm else 'pygrub',
            'other_config': {'conformance': 'true'}})
        self.vms.append(ref)
        return ref

    def vgpu_vm(self, name, vgpu_type, hvm=True):
        """A halted VM with one VGPU of ``vgpu_type``; (vm, vgpu)."""
        vm = self.vm(name, hvm)
        group = self.group_for(vgpu_type)
        return vm, self.xapi.VGPU.create(vm, group, '0', {}, vgpu_type)

    def group_for(self, vgpu_type):
        groups = self.xapi.VGPU_type.get_enabled_on_GPU_groups(vgpu_type)
        self.need(groups, 'a GPU group with the type enabled')
        return sorted(groups)[0]

    def types(self, implementation=None, free=True):
        """Enabled types (of ``implementation``) with room somewhere."""
        found = []
        for ref, record in sorted(self.xapi.VGPU_type.get_all_records(
                ).items(), key=lambda item: item[1]['model_name']):
            if implementation and record['implementation'] != (
                    implementation):
                continue
            groups = record['enabled_on_GPU_groups']
            if not free or any(int(self.xapi.GPU_group.get_remaining_capacity(
                    g, ref)) > 0 for g in groups):
                found.append(ref)
        return found

    def one_type(self, implementation):
        found = self.types(implementation)
        self.need(found, 'a free vGPU type of implementation %s'
                  % implementation)
        return found[0]

    def cleanup(self):
        for vm in reversed(self.vms):
            try:
                if self.xapi.VM.get_power_state(vm) != 'Halted':
                    self.xapi.VM.hard_shutdown(vm)
                self.xapi.VM.destroy(vm)
            except XenAPI.Failure:
                pass
        self.vms = []


@pytest.fixture
def target():
    if conftest.ON_REAL_XAPI:
        env = conftest.REAL_XAPI
        found = Target(env['XAPI_URL'], env['XAPI_USERNAME'],
                       env['XAPI_PASSWORD'])
        yield found
        found.cleanup()
        found.xapi.session.logout()
        return
    with conftest.server.Simulator() as sim:
        yield Target(sim.url, sim.username, sim.password, sim)


@pytest.fixture
def writer(target):
    """The target, for tests that make VMs; real hosts need opting in."""
    if target.real and os.environ.get('XAPI_ALLOW_WRITES') != '1':
        pytest.skip('set XAPI_ALLOW_WRITES=1 to run rule tests on a real '
                    'host')
    yield target
    target.cleanup()


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


# --- Rules that change state: VMs and VGPUs of the tests' own ---------------

def vgpu_state(xapi, vgpu):
    record = xapi.VGPU.get_record(vgpu)
    return (record['scheduled_to_be_resident_on'], record['resident_on'],
            record['currently_attached'])


def test_domain_type_follows_the_hvm_boot_policy(writer):
    # xapi_vm_helpers.ml, derive_domain_type
    xapi = writer.xapi
    assert xapi.VM.get_domain_type(writer.vm('hvm')) == 'hvm'
    pv = writer.vm('pv', hvm=False)
    assert xapi.VM.get_domain_type(pv) == 'pv'
    xapi.VM.set_HVM_boot_policy(pv, 'BIOS order')
    assert xapi.VM.get_domain_type(pv) == 'hvm'


def test_vm_records_carry_lifecycle_fields(writer):
    record = writer.xapi.VM.get_record(writer.vm('fields'))
    assert {'domid', 'domain_type', 'allowed_operations',
            'current_operations'} <= set(record)
    assert record['domid'] == '-1'
    assert record['current_operations'] == {}
    assert {'start', 'destroy', 'clone'} <= set(record['allowed_operations'])
    assert 'clean_shutdown' not in record['allowed_operations']


def test_vgpu_needs_an_hvm_vm(writer):
    # vgpuops.ml, create_vgpus
    vm, vgpu = writer.vgpu_vm('pv', writer.one_type('nvidia'), hvm=False)
    assert failure(writer.xapi.VM.start, vm, False, False) == [
        'FEATURE_REQUIRES_HVM', 'vGPU- and GPU-passthrough needs HVM']
    assert vgpu_state(writer.xapi, vgpu) == (NULL, NULL, False)
    assert writer.xapi.VM.get_power_state(vm) == 'Halted'


def test_start_goes_through_a_boot_window(writer):
    # vgpuops.ml / xapi_vm_helpers.ml: scheduled first, resident once the
    # device is plugged; the VM is Halted meanwhile.
    if writer.sim:
        writer.sim.start_delay_ms = 300
    xapi = writer.xapi
    vm, vgpu = writer.vgpu_vm('window', writer.one_type('nvidia'))
    token = xapi.event_from(['vgpu', 'vm'], '', 1.0)['token']
    seen = []
    starter = threading.Thread(target=writer.other().VM.start,
                               args=(vm, False, False))
    starter.start()
    while True:
        result = xapi.event_from(['vgpu', 'vm'], token, 30.0)
        token = result['token']
        for event in result['events']:
            if event['ref'] == vgpu and 'snapshot' in event:
                snap = event['snapshot']
                seen.append((snap['scheduled_to_be_resident_on'] != NULL,
                             snap['resident_on'] != NULL))
            if event['ref'] == vm and 'snapshot' in event and (
                    event['snapshot']['power_state'] == 'Running'):
                break
        else:
            continue
        break
    starter.join(60)
    assert not starter.is_alive()
    assert (True, False) in seen
    assert seen[-1] == (False, True)
    assert vgpu_state(xapi, vgpu)[1:] == (
        xapi.VGPU.get_resident_on(vgpu), True)


def test_vgpu_create_and_the_licence(writer):
    # xapi_vgpu.ml, create': Pool_features GPU
    xapi = writer.xapi
    restrictions = xapi.pool.get_restrictions(xapi.pool.get_all()[0])
    vm = writer.vm('licence')
    vgpu_type = writer.one_type('nvidia')
    group = writer.group_for(vgpu_type)
    if restrictions.get('restrict_gpu') == 'true':
        assert failure(xapi.VGPU.create, vm, group, '0', {}, vgpu_type) == [
            'FEATURE_RESTRICTED']
    else:
        assert xapi.VGPU.create(vm, group, '0', {}, vgpu_type)


def test_vgpu_create_with_a_non_numeric_device(writer):
    # xapi_vgpu.ml: int_of_string, reported by exnHelper.ml
    vgpu_type = writer.one_type('nvidia')
    details = failure(writer.xapi.VGPU.create, writer.vm('device'),
                      writer.group_for(vgpu_type), 'first', {}, vgpu_type)
    assert details == ['INTERNAL_ERROR', 'Failure("int_of_string")']


def test_passthrough_takes_the_pgpus_own_pci_device(writer):
    # vgpuops.ml, add_pcis_to_vm; xapi_pgpu_helpers.ml: binary capacity
    xapi = writer.xapi
    passthrough = writer.one_type('passthrough')
    host = xapi.host.get_all()[0]
    if xapi.host.get_chipset_info(host).get('iommu') != 'true':
        vm, vgpu = writer.vgpu_vm('iommu', passthrough)
        assert failure(xapi.VM.start_on, vm, host, False, False) == [
            'VM_REQUIRES_IOMMU', host]
        return
    vm, vgpu = writer.vgpu_vm('passthrough', passthrough)
    xapi.VM.start(vm, False, False)
    pgpu = xapi.VGPU.get_resident_on(vgpu)
    pci = xapi.VGPU.get_PCI(vgpu)
    assert pci == xapi.PGPU.get_PCI(pgpu)
    assert xapi.VM.get_attached_PCIs(vm) == [pci]
    assert xapi.PGPU.get_remaining_capacity(pgpu, passthrough) == '0'
    xapi.VM.hard_shutdown(vm)
    assert xapi.VGPU.get_PCI(vgpu) == NULL
    assert xapi.VM.get_attached_PCIs(vm) == []
    assert xapi.PGPU.get_remaining_capacity(pgpu, passthrough) == '1'


def test_other_config_pci_blocks_passthrough(writer):
    # pciops.ml other_pcidevs_of_vm; xapi_pgpu_helpers.ml PCI.attached_VMs
    xapi = writer.xapi
    passthrough = writer.one_type('passthrough')
    group = writer.group_for(passthrough)
    pgpu = next(p for p in xapi.GPU_group.get_PGPUs(group)
                if xapi.PGPU.get_remaining_capacity(p, passthrough) == '1')
    address = xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(pgpu))
    vm = writer.vm('raw-pci')
    xapi.VM.add_to_other_config(vm, 'pci', '0/%s' % address)
    xapi.VM.start_on(vm, xapi.PGPU.get_host(pgpu), False, False)
    assert xapi.VM.get_attached_PCIs(vm) == [xapi.PGPU.get_PCI(pgpu)]
    assert xapi.PGPU.get_remaining_capacity(pgpu, passthrough) == '0'


def test_sriov_vgpus_take_a_virtual_function(writer):
    # vgpuops.ml, reserve_free_virtual_function
    xapi = writer.xapi
    sriov = writer.types('nvidia_sriov') + writer.types('mxgpu')
    writer.need(sriov, 'an SR-IOV vGPU type')
    vm, vgpu = writer.vgpu_vm('sriov', sriov[0])
    xapi.VM.start(vm, False, False)
    pgpu = xapi.VGPU.get_resident_on(vgpu)
    pci = xapi.VGPU.get_PCI(vgpu)
    assert pci not in (NULL, xapi.PGPU.get_PCI(pgpu))
    assert xapi.PCI.get_host(pci) == xapi.PGPU.get_host(pgpu)
    assert xapi.VM.get_attached_PCIs(vm) == [pci]
    xapi.VM.hard_shutdown(vm)
    assert xapi.VGPU.get_PCI(vgpu) == NULL


def test_pci_internals_stay_hidden(target):
    # datamodel: attached_VMs, physical_function, virtual_functions are
    # internal to xapi
    for record in target.xapi.PCI.get_all_records().values():
        assert not {'attached_VMs', 'physical_function',
                    'virtual_functions'} & set(record)


def test_clean_shutdown_needs_the_guests_help(writer):
    # xapi_vm_lifecycle.ml, check_op_for_feature: an HVM guest without PV
    # drivers cannot shut down cleanly; a fresh VM with no OS has none.
    xapi = writer.xapi
    vm = writer.vm('no-drivers')
    xapi.VM.start(vm, False, False)
    if writer.sim:
        writer.sim.set_guest(vm, pv_drivers=False)
    assert failure(xapi.VM.clean_shutdown, vm) == ['VM_LACKS_FEATURE', vm]
    assert 'clean_shutdown' not in xapi.VM.get_allowed_operations(vm)
    xapi.VM.hard_shutdown(vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'


@pytest.mark.parametrize('implementation', ['passthrough', 'gvt_g', 'mxgpu'])
def test_only_nvidia_vgpus_suspend_or_move(writer, implementation):
    # xapi_vm_lifecycle.ml, check_vgpu
    xapi = writer.xapi
    vm, _ = writer.vgpu_vm(implementation, writer.one_type(implementation))
    xapi.VM.start(vm, False, False)
    assert failure(xapi.VM.suspend, vm) == ['VM_HAS_VGPU', vm]
    host = xapi.VM.get_resident_on(vm)
    assert failure(xapi.VM.pool_migrate, vm, host, {}) == [
        'VM_HAS_VGPU', vm]
    assert not {'suspend', 'pool_migrate'} & set(
        xapi.VM.get_allowed_operations(vm))


def test_nvidia_vgpus_suspend_when_the_pgpu_has_metadata(writer):
    xapi = writer.xapi
    vm, vgpu = writer.vgpu_vm('suspend', writer.one_type('nvidia'))
    xapi.VM.start(vm, False, False)
    pgpu = xapi.VGPU.get_resident_on(vgpu)
    if 'nvidia' not in xapi.PGPU.get_compatibility_metadata(pgpu):
        assert failure(xapi.VM.suspend, vm) == ['VM_HAS_VGPU', vm]
        return
    xapi.VM.suspend(vm)
    assert xapi.VM.get_power_state(vm) == 'Suspended'
    assert vgpu_state(xapi, vgpu) == (NULL, NULL, False)
    xapi.VM.resume(vm, False, False)
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.VGPU.get_resident_on(vgpu) != NULL


def test_destroy_accepts_halted_and_suspended(writer):
    # xapi_vm_lifecycle.ml, allowed_power_states `destroy
    xapi = writer.xapi
    vm = writer.vm('destroy')
    xapi.VM.start(vm, False, False)
    assert failure(xapi.VM.destroy, vm) == [
        'VM_BAD_POWER_STATE', vm, 'halted, suspended', 'running']


def test_clone_and_snapshot_copy_vgpus_not_placement(writer):
    # xapi_vgpu.ml, copy
    xapi = writer.xapi
    vgpu_type = writer.one_type('nvidia')
    vm, vgpu = writer.vgpu_vm('original', vgpu_type)
    xapi.VGPU.set_extra_args(vgpu, 'debug=1')
    clone = xapi.VM.clone(vm, 'conformance-clone')
    writer.vms.append(clone)
    xapi.VM.start(vm, False, False)
    snapshot = xapi.VM.snapshot(vm, 'conformance-snapshot')
    writer.vms.append(snapshot)
    for copy in (clone, snapshot):
        (copied,) = xapi.VM.get_VGPUs(copy)
        record = xapi.VGPU.get_record(copied)
        assert (record['type'], record['GPU_group'], record['device']) == (
            vgpu_type, writer.group_for(vgpu_type), '0')
        assert (record['resident_on'], record['scheduled_to_be_resident_on'],
                record['PCI']) == (NULL, NULL, NULL)
    assert xapi.VM.get_is_a_snapshot(snapshot) is True
    assert xapi.VGPU.get_extra_args(vgpu) == 'debug=1'


def test_types_in_xapis_order_and_format(target):
    # xapi_vgpu_type.ml: identifiers, passthrough first for NVIDIA, none on
    # a system display device, none beside AMD's MxGPU types
    xapi = target.xapi
    types = xapi.VGPU_type.get_all_records()
    for record in types.values():
        assert re.match(r'^0001:(passthrough|nvidia,|gvt-g,|mxgpu,)',
                        record['identifier']), record['identifier']
    for pgpu in xapi.PGPU.get_all_records().values():
        impls = [types[t]['implementation']
                 for t in pgpu['supported_VGPU_types']]
        if pgpu['is_system_display_device']:
            assert 'passthrough' not in impls
        if 'mxgpu' in impls:
            assert 'passthrough' not in impls
        if 'nvidia' in impls and 'passthrough' in impls:
            assert impls[0] == 'passthrough'


def test_compatible_types_in_vm_list_only_the_type_itself(target):
    for ref, record in target.xapi.VGPU_type.get_all_records().items():
        assert record['compatible_types_in_vm'] in ([], [ref])
        if record['implementation'] != 'nvidia_sriov':
            continue
        # T4 types share a VM on NVIDIA host drivers from 430.42 on.
        assert record['compatible_types_in_vm'] == [ref]


def test_remaining_capacity_with_bad_refs(target):
    # xapi_pgpu.ml: every error is 0; xapi_gpu_group.ml reads the group
    # before its error handling
    xapi = target.xapi
    bad = 'OpaqueRef:00000000-0000-0000-0000-0000000000aa'
    pgpu = xapi.PGPU.get_all()[0]
    vgpu_type = xapi.VGPU_type.get_all()[0]
    assert xapi.PGPU.get_remaining_capacity(bad, vgpu_type) == '0'
    assert xapi.PGPU.get_remaining_capacity(pgpu, bad) == '0'
    group = xapi.GPU_group.get_all()[0]
    assert xapi.GPU_group.get_remaining_capacity(group, bad) == '0'
    assert failure(xapi.GPU_group.get_remaining_capacity, bad,
                   vgpu_type) == ['HANDLE_INVALID', 'GPU_group', bad]


def test_dom0_access_states(target):
    # xapi_pci_helpers.ml, determine_dom0_access_status
    xapi = target.xapi
    states = {'enabled', 'disable_on_reboot', 'disabled', 'enable_on_reboot'}
    for record in xapi.PGPU.get_all_records().values():
        assert record['dom0_access'] in states
        status = xapi.PCI.get_dom0_access_status(record['PCI'])
        assert status == record['dom0_access']


def test_dom0_access_round_trip(writer):
    xapi = writer.xapi
    pgpu = next(p for p, r in xapi.PGPU.get_all_records().items()
                if r['dom0_access'] == 'enabled'
                and not r['is_system_display_device'])
    restricted = xapi.pool.get_restrictions(xapi.pool.get_all()[0]).get(
        'restrict_integrated_gpu') == 'true'
    if restricted:
        assert failure(xapi.PGPU.disable_dom0_access, pgpu) == [
            'FEATURE_RESTRICTED']
        return
    assert xapi.PGPU.disable_dom0_access(pgpu) == 'disable_on_reboot'
    assert xapi.PGPU.get_dom0_access(pgpu) == 'disable_on_reboot'
    assert xapi.PGPU.enable_dom0_access(pgpu) == 'enabled'


def test_second_start_while_the_first_runs(writer):
    # xapi_vm_lifecycle.ml: operations in progress exclude most others
    if writer.sim:
        writer.sim.start_delay_ms = 300
    xapi = writer.xapi
    vm, _ = writer.vgpu_vm('busy', writer.one_type('nvidia'))
    starter = threading.Thread(target=writer.other().VM.start,
                               args=(vm, False, False))
    starter.start()
    while not xapi.VM.get_current_operations(vm):
        pass
    details = failure(xapi.VM.start, vm, False, False)
    starter.join(60)
    assert not starter.is_alive()
    assert details[:3] == ['OTHER_OPERATION_IN_PROGRESS', 'VM', vm]
    assert details[3] == 'start'
