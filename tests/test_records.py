"""Typed records: XAPI's strings and null refs become Python values."""

from nova_xenapi_vgpu.xapi import records


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
    vgpu = records.Vgpu.from_xapi('OpaqueRef:x', {
        'VM': 'OpaqueRef:vm', 'resident_on': 'OpaqueRef:NULL',
        'currently_attached': False, 'device': '0'})
    assert vgpu.resident_on is None and vgpu.VM == 'OpaqueRef:vm'
    assert vgpu.other_config == {} and vgpu.uuid == ''


def test_older_xapi_without_pci_ids():
    pci = records.PciDevice.from_xapi('OpaqueRef:p', {
        'pci_id': '0000:86:00.0', 'vendor_name': 'NVIDIA Corporation'})
    assert (pci.vendor_id, pci.device_id, pci.class_id) == ('', '', '')
    assert pci.host is None
