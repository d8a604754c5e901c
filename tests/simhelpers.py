"""Small lookups the simulator tests share (plain XenAPI SDK calls)."""


def vgpu_type(xapi, model_name):
    """The VGPU_type ref with ``model_name``."""
    refs = [ref for ref, rec in xapi.VGPU_type.get_all_records().items()
            if rec['model_name'] == model_name]
    assert len(refs) == 1, model_name
    return refs[0]


def group_of(xapi, device_name_part):
    """The GPU group whose name mentions ``device_name_part``."""
    refs = [ref for ref, rec in xapi.GPU_group.get_all_records().items()
            if device_name_part in rec['name_label']]
    assert len(refs) == 1, device_name_part
    return refs[0]


def new_vm(xapi, name='instance'):
    """A halted VM, created with the record a compute driver sends."""
    return xapi.VM.create({
        'name_label': name, 'name_description': 'test',
        'memory_static_max': str(2 ** 30), 'memory_dynamic_max': str(2 ** 30),
        'memory_dynamic_min': str(2 ** 30), 'memory_static_min': str(2 ** 30),
        'VCPUs_max': '2', 'VCPUs_at_startup': '2', 'HVM_boot_policy':
        'BIOS order', 'platform': {'viridian': 'true'},
        'other_config': {'nova_uuid': name}})


def vm_with_vgpu(xapi, group, vgpu_type_ref, name='instance'):
    """A halted VM holding one VGPU; returns (vm, vgpu)."""
    vm = new_vm(xapi, name)
    return vm, xapi.VGPU.create(vm, group, '0', {}, vgpu_type_ref)


def resident_pgpu(xapi, vgpu):
    """Where a VGPU runs."""
    return xapi.VGPU.get_resident_on(vgpu)
