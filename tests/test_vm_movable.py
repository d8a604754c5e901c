"""Which vGPUs XAPI lets suspend or live-migrate, from plain records."""

import dataclasses

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from tests.pcihelpers import HostBuilder

PGPU = 'OpaqueRef:pgpu-0000:86:00.0'


def host_with_one_vgpu(name, metadata):
    host = HostBuilder()
    group = host.group('m60')
    host.pgpu(group, '0000:86:00.0')
    vgpu = host.vgpu(group, name, pgpu=PGPU, instance='i')
    inventory = host.inventory()
    pgpu = dataclasses.replace(inventory.pgpus[PGPU],
                               compatibility_metadata=metadata)
    inventory = dataclasses.replace(inventory, pgpus={PGPU: pgpu})
    return inventory, {vgpu: inventory.vgpus[vgpu]}


def test_an_nvidia_vgpu_on_a_pgpu_with_nvidia_metadata_moves():
    inventory, vgpus = host_with_one_vgpu('GRID M60-4Q', {'nvidia': 'x'})
    vgpulib.assert_movable(inventory, 'vm', vgpus, 'live-migrate')


@pytest.mark.parametrize('name, metadata, words', [
    ('GRID M60-4Q', {}, 'GRID M60-4Q vGPU (nvidia); use a cold migration'),
    ('passthrough', {'nvidia': 'x'}, 'passthrough vGPU (passthrough)'),
])
def test_others_are_refused_naming_the_type_and_the_way_out(name, metadata,
                                                             words):
    inventory, vgpus = host_with_one_vgpu(name, metadata)
    with pytest.raises(exception.OperationRefused) as info:
        vgpulib.assert_movable(inventory, 'vm', vgpus, 'live-migrate')
    assert words in str(info.value)
    with pytest.raises(exception.OperationRefused) as info:
        vgpulib.assert_movable(inventory, 'vm', vgpus, 'suspend')
    assert 'stop it instead' in str(info.value)


def test_a_vgpu_on_a_pgpu_this_host_does_not_know_is_refused():
    inventory, vgpus = host_with_one_vgpu('GRID M60-4Q', {'nvidia': 'x'})
    elsewhere = dataclasses.replace(inventory, pgpus={})
    with pytest.raises(exception.OperationRefused) as info:
        vgpulib.assert_movable(elsewhere, 'vm', vgpus, 'live-migrate')
    assert str(info.value) == (
        'Cannot live-migrate VM vm: XAPI cannot live-migrate a VM with a '
        'GRID M60-4Q vGPU (nvidia); use a cold migration')
