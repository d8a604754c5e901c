"""Issue 16, item 4 (the VM path's part): VM.snapshot / VM.clone copy a
VGPU's other_config with this project's tags; a copy is not owed."""

import pytest

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from nova_xenapi_vgpu.xapi import records
from tests.simhelpers import new_vm
from tests.vm_path.helpers import ask


@pytest.mark.parametrize('how', ['snapshot', 'clone'])
def test_copies_are_not_the_instances_and_reap_untags_them(world, how):
    sim, xapi, build = world
    vm = new_vm(xapi, 'orig')
    (vgpu,) = build.attach('orig', vm, ask('t4:1'))
    copy = getattr(xapi.VM, how)(vm, 'copy-of-orig')
    (copied,) = xapi.VM.get_VGPUs(copy)
    assert xapi.VGPU.get_other_config(copied)[tags.INSTANCE] == 'orig'
    client = build.client
    assert vgpulib.of_instance(client, copy, 'orig') == {}
    assert list(vgpulib.of_instance(client, vm, 'orig')) == [vgpu]
    assert build.detach('orig', copy) == []  # nothing of the instance
    orphans = vgpulib.find_orphans(client, build.host_uuid, {'orig'})
    assert [(o.vgpu, o.vm) for o in orphans] == [(copied, copy)]
    assert 'copy' in orphans[0].reason
    destroyed, kept = vgpulib.reap_orphans(client, orphans)
    assert xapi.VGPU.get_VM(copied) == copy  # the copy keeps its vGPU
    config = xapi.VGPU.get_other_config(copied)
    assert not {tags.INSTANCE, tags.HOST, tags.DEVICE} & set(config)
    assert vgpulib.find_orphans(client, build.host_uuid, {'orig'}) == []
    assert list(vgpulib.of_instance(client, vm, 'orig')) == [vgpu]


def test_is_copy_from_plain_records():
    def vgpu(vm, config):
        return records.Vgpu('OpaqueRef:v', 'u', vm, None, None, '0', False,
                            None, config)
    assert not tags.is_copy(vgpu('OpaqueRef:a', {tags.VM: 'OpaqueRef:a'}))
    assert tags.is_copy(vgpu('OpaqueRef:b', {tags.VM: 'OpaqueRef:a'}))
    assert not tags.is_copy(vgpu('OpaqueRef:b', {}))  # older versions
