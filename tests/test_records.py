"""Typed records: XAPI's strings and null refs become Python values."""

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import records

VGPU = {'uuid': 'u', 'VM': 'OpaqueRef:vm', 'GPU_group': 'OpaqueRef:g',
        'type': 'OpaqueRef:t', 'resident_on': 'OpaqueRef:NULL',
        'currently_attached': False, 'device': '0', 'other_config': {}}


def test_int64_strings_and_null_refs_are_decoded(xapi):
    pgpus = records.decode_all(records.Pgpu, xapi.PGPU.get_all_records())
    pgpu = next(iter(pgpus.values()))
    assert all(isinstance(n, int)
               for n in pgpu.supported_VGPU_max_capacities.values())
    assert pgpu.host.startswith('OpaqueRef:')
    types = records.decode_all(records.VgpuType,
                               xapi.VGPU_type.get_all_records())
    m60_8q = [t for t in types.values() if t.model_name == 'GRID M60-8Q'][0]
    assert (m60_8q.framebuffer_size, m60_8q.max_heads) == (8 * 1024 ** 3, 4)
    assert not m60_8q.is_passthrough
    vgpu = records.Vgpu.from_xapi('OpaqueRef:x', VGPU)
    assert vgpu.resident_on is None and vgpu.VM == 'OpaqueRef:vm'
    assert (vgpu.PCI, vgpu.scheduled_to_be_resident_on) == (None, None)
    assert vgpu.compatibility_metadata == {} and vgpu.extra_args == ''


def test_every_class_decodes_what_the_simulator_sends(xapi):
    for cls, api in ((records.GpuGroup, xapi.GPU_group),
                     (records.Pgpu, xapi.PGPU), (records.VgpuType,
                                                 xapi.VGPU_type),
                     (records.PciDevice, xapi.PCI), (records.Host, xapi.host),
                     (records.Vm, xapi.VM)):
        decoded = records.decode_all(cls, api.get_all_records())
        assert decoded and all(r.uuid for r in decoded.values())


def test_a_missing_required_field_is_named():
    record = dict(VGPU)
    del record['type']
    with pytest.raises(exception.RecordError) as info:
        records.Vgpu.from_xapi('OpaqueRef:x', record)
    assert str(info.value) == 'XAPI VGPU OpaqueRef:x has no field type'


def test_a_bad_value_is_named():
    with pytest.raises(exception.RecordError) as info:
        records.Pgpu.from_xapi('OpaqueRef:p', {
            'uuid': 'u', 'PCI': 'OpaqueRef:NULL', 'GPU_group': 'x',
            'host': 'h', 'supported_VGPU_types': [],
            'enabled_VGPU_types': [], 'resident_VGPUs': [],
            'supported_VGPU_max_capacities': {'t': 'many'},
            'is_system_display_device': False})
    assert 'supported_VGPU_max_capacities' in str(info.value)
    assert "'many'" in str(info.value)


def test_older_xapi_without_pci_ids():
    pci = records.PciDevice.from_xapi('OpaqueRef:p', {
        'uuid': 'u', 'pci_id': '0000:86:00.0', 'class_name': 'VGA',
        'vendor_name': 'NVIDIA Corporation', 'device_name': 'GM204GL',
        'host': 'OpaqueRef:NULL'})
    assert (pci.vendor_id, pci.device_id, pci.class_id) == ('', '', '')
    assert pci.host is None


def test_task_results_are_xml_rpc_values():
    def task(result):
        return records.Task.from_xapi('OpaqueRef:t', {
            'uuid': 'u', 'name_label': 'Async.VM.clone',
            'status': 'success', 'progress': '1.0', 'result': result,
            'error_info': []})
    assert task('<value>OpaqueRef:vm</value>').value() == 'OpaqueRef:vm'
    assert task('').value() == ''
    with pytest.raises(exception.RecordError):
        task('<value>broken').value()


def test_exception_formatting_never_raises():
    error = exception.PluginError(plugin='p')
    assert str(error) == exception.PluginError.msg_fmt
    assert str(exception.XapiUnreachable(url='u', attempts='x', method='m',
                                         reason='r')) == (
        exception.XapiUnreachable.msg_fmt)
