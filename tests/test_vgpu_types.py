"""What a host offers (vgpu_types/types.py) and ``[vgpu] pgpu_types``
(vgpu_types/partition.py), from plain records."""

import dataclasses

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import partition
from nova_xenapi_vgpu.vgpu_types import types as typeslib
from tests.pcihelpers import HostBuilder
from tests.pcihelpers import type_ref


def mixed_host():
    """Two M60s (one holding a 4Q) and a T4 with only 8Q enabled."""
    host = HostBuilder()
    m60 = host.group('m60')
    a = host.pgpu(m60, '0000:86:00.0')
    host.pgpu(m60, '0000:87:00.0')
    t4 = host.group('t4')
    only = host.pgpu(t4, '0000:3b:00.0', model='t4')
    host.pgpus[only] = dataclasses.replace(
        host.pgpus[only], enabled_VGPU_types=(type_ref('GRID T4-8Q'),))
    host.vgpu(m60, 'GRID M60-4Q', pgpu=a, instance='i')
    return host.inventory()


def test_the_types_offered_with_totals_and_free():
    offered = typeslib.offered(mixed_host())
    assert [(s.vgpu_type.model_name, s.vendor_device, s.total, s.free,
             s.used) for s in offered] == [
        ('GRID M60-1Q', ('10de:13f2',), 16, 8, 0),
        ('GRID M60-4Q', ('10de:13f2',), 4, 3, 1),
        ('GRID M60-8Q', ('10de:13f2',), 2, 1, 0),
        ('GRID T4-8Q', ('10de:1eb8',), 2, 2, 0),
        ('passthrough', ('10de:13f2',), 2, 1, 0)]
    limited = typeslib.offered(mixed_host(), ('GRID M60-8Q', 'GRID T4-8Q'))
    assert [s.vgpu_type.model_name for s in limited] == [
        'GRID M60-8Q', 'GRID T4-8Q']


def test_a_type_on_two_boards_lists_both_ids_once_each():
    host = HostBuilder()
    group = host.group('m60')
    for address in ('0000:86:00.0', '0000:87:00.0', '0000:88:00.0'):
        host.pgpu(group, address)
    pci = 'OpaqueRef:pci-0000:87:00.0'
    host.pcis[pci] = dataclasses.replace(host.pcis[pci], device_id='13f3')
    offered = {s.vgpu_type.model_name: s.vendor_device
               for s in typeslib.offered(host.inventory())}
    assert offered['GRID M60-4Q'] == ('10de:13f2', '10de:13f3')


def test_types_the_host_lacks_are_named_with_a_hint():
    assert typeslib.missing(mixed_host(), [
        'GRID M60-8Q', 'GRID M60-2Q', 'GRID T4-4Q', 'nothing like it'],
        '[vgpu] enabled_vgpu_types') == [
        '[vgpu] enabled_vgpu_types: this host offers no GRID M60-2Q; did '
        'you mean GRID M60-8Q or GRID M60-4Q or GRID M60-1Q?',
        '[vgpu] enabled_vgpu_types: this host offers no GRID T4-4Q; did '
        'you mean GRID T4-8Q or GRID M60-4Q or GRID M60-8Q?',
        '[vgpu] enabled_vgpu_types: this host offers no nothing like it']


def test_pgpu_types_map_addresses_to_types():
    assert partition.parse([
        'GRID M60-4Q = 0000:86:00.0, 0000:87:00.0',
        ' GRID T4-8Q=0000:3B:00.0 ', 'GRID M60-4Q = 0000:86:00.0']) == {
        '0000:86:00.0': 'GRID M60-4Q', '0000:87:00.0': 'GRID M60-4Q',
        '0000:3b:00.0': 'GRID T4-8Q'}
    assert partition.parse([]) == {}


@pytest.mark.parametrize('value, reason', [
    ('GRID M60-4Q', 'expected "<model name> = <PCI address>[, ...]"'),
    (' = 0000:86:00.0', 'expected "<model name> = <PCI address>[, ...]"'),
    ('GRID M60-4Q = 86:00.0', "'86:00.0' is not a PCI address like "
                              '0000:86:00.0'),
    ('GRID M60-4Q = 0000:86:00.0,', "'' is not a PCI address like "
                                    '0000:86:00.0'),
    ('GRID M60-4Q = 0000:86:00.0 = 0000:87:00.0',
     "'0000:86:00.0 = 0000:87:00.0' is not a PCI address like "
     '0000:86:00.0'),
])
def test_bad_pgpu_types_are_refused_naming_the_value(value, reason):
    with pytest.raises(exception.ConfigError) as info:
        partition.parse([value])
    assert str(info.value) == (
        'Invalid value for [vgpu] pgpu_types: %r: %s' % (value, reason))


def test_one_address_cannot_serve_two_types():
    with pytest.raises(exception.ConfigError) as info:
        partition.parse(['GRID M60-4Q = 0000:86:00.0',
                         'GRID M60-8Q = 0000:86:00.0'])
    assert str(info.value).endswith(
        "'GRID M60-8Q = 0000:86:00.0': 0000:86:00.0 is already given to "
        'GRID M60-4Q')


def test_how_many_vgpus_one_vm_may_hold():
    inventory = mixed_host()
    # M60 types list no type in compatible_types_in_vm: one per VM.
    assert typeslib.per_vm_maximum(inventory, ['GRID M60-4Q']) == 1
    assert typeslib.per_vm_maximum(inventory, ['GRID M60-4Q',
                                               'GRID M60-8Q']) == 1
    # A T4 type lists itself: XAPI sets no limit.
    assert typeslib.per_vm_maximum(inventory, ['GRID T4-8Q']) is None
    assert typeslib.per_vm_maximum(inventory, ['GRID M60-4Q',
                                               'GRID T4-8Q']) is None
    assert typeslib.per_vm_maximum(inventory, ['GRID A100-40C']) is None
