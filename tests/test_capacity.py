"""XAPI's capacity rule, client side, from plain records (no simulator).

Each row is a case of xapi_pgpu_helpers.ml's get_remaining_capacity; the
expected figure is what xapi answers for it.
"""

import dataclasses

import pytest

from nova_xenapi_vgpu.host import capacity
from nova_xenapi_vgpu.host import inventory as inventorylib
from nova_xenapi_vgpu.xapi import records

PT, Q4, Q8, Q1 = 'OpaqueRef:pt', 'OpaqueRef:4q', 'OpaqueRef:8q', 'OpaqueRef:1q'
TYPES = {
    ref: records.VgpuType(ref, ref, '', name, 0, 0, 0, 0, impl)
    for ref, name, impl in ((PT, 'passthrough', 'passthrough'),
                            (Q4, 'GRID M60-4Q', 'nvidia'),
                            (Q8, 'GRID M60-8Q', 'nvidia'),
                            (Q1, 'GRID M60-1Q', 'nvidia'))}
MAXIMA = {PT: 1, Q4: 2, Q8: 1, Q1: 8}


def pgpu(enabled=(PT, Q4, Q8, Q1), supported=(PT, Q4, Q8, Q1),
         ref='OpaqueRef:gpu'):
    return records.Pgpu(ref, 'u', 'OpaqueRef:pci', 'OpaqueRef:group',
                        'OpaqueRef:host', tuple(supported), tuple(enabled),
                        (), {t: MAXIMA[t] for t in supported}, False)


def vgpus(*types, on='OpaqueRef:gpu', scheduled=False):
    return [records.Vgpu('OpaqueRef:v%d' % i, 'u%d' % i, 'OpaqueRef:vm%d' % i,
                         'OpaqueRef:group', t, '0', not scheduled,
                         None if scheduled else on, {},
                         on if scheduled else None)
            for i, t in enumerate(types)]


@pytest.mark.parametrize('case, vgpu_type, kwargs, allocated, expected', [
    ('empty pGPU', Q4, {}, [], (2, 0, 2, None)),
    ('one of two', Q4, {}, vgpus(Q4), (2, 1, 1, None)),
    ('full', Q4, {}, vgpus(Q4, Q4), (2, 2, 0, None)),
    ('scheduled count', Q4, {}, vgpus(Q4, scheduled=True), (2, 1, 1, None)),
    ('one type per pGPU', Q8, {}, vgpus(Q4), (1, 0, 0, 'GRID M60-4Q')),
    ('passthrough shares nothing', PT, {}, vgpus(Q1),
     (1, 0, 0, 'GRID M60-1Q')),
    ('nothing shares passthrough', Q1, {}, vgpus(PT),
     (8, 0, 0, 'passthrough')),
    ('passthrough taken', PT, {}, vgpus(PT), (1, 1, 0, None)),
    ('passthrough free', PT, {}, [], (1, 0, 1, None)),
    ('disabled type', Q4, {'enabled': (PT, Q8)}, [],
     (2, 0, 0, 'not enabled')),
    ('disabled type still in use', Q4, {'enabled': (PT, Q8)}, vgpus(Q4),
     (2, 1, 0, 'not enabled')),
    ('unsupported type', Q4, {'supported': (PT, Q8), 'enabled': (PT, Q8)},
     [], (0, 0, 0, 'not supported')),
])
def test_remaining_capacity_as_xapi_counts_it(case, vgpu_type, kwargs,
                                              allocated, expected):
    usage = capacity.usage(pgpu(**kwargs), TYPES[vgpu_type], allocated,
                           TYPES)
    assert (usage.capacity, usage.used, usage.remaining,
            usage.blocked_by) == expected, case


@pytest.mark.parametrize('maximum, held, count, expected', [
    (4, (), 0, 4), (4, {Q4}, 3, 1), (4, {Q4}, 4, 0), (4, {Q4}, 6, 0),
    (4, {Q8}, 1, 0), (4, {Q4, Q8}, 2, 0), (0, (), 0, 0), (1, (), 0, 1)])
def test_room_is_the_one_rule(maximum, held, count, expected):
    assert capacity.room(maximum, held, count, Q4) == expected


def test_the_inventory_model_from_plain_records():
    one, two = pgpu(ref='OpaqueRef:a'), pgpu(ref='OpaqueRef:b')
    pcis = {'OpaqueRef:pci': records.PciDevice(
        'OpaqueRef:pci', 'p', '0000:86:00.0', 'VGA', 'NVIDIA', 'M60',
        'OpaqueRef:host', '0300', '10de', '13f2')}
    held = vgpus(Q8, on='OpaqueRef:a')
    model = inventorylib.HostInventory(
        'OpaqueRef:host', {}, {p.ref: p for p in (one, two)}, TYPES,
        {v.ref: v for v in held}, pcis)
    assert model.usage('OpaqueRef:a', TYPES[Q4]).blocked_by == 'GRID M60-8Q'
    assert model.usage('OpaqueRef:b', TYPES[Q4]).remaining == 2
    assert [t.model_name for t in model.enabled_types('OpaqueRef:a')] == [
        'GRID M60-1Q', 'GRID M60-4Q', 'GRID M60-8Q', 'passthrough']
    assert model.vendor_device('OpaqueRef:a') == '10de:13f2'
    assert model.numa_node('OpaqueRef:a') is None


def test_natural_order():
    names = ['GRID T4-16Q', 'GRID T4-2Q', 'GRID T4-1Q', 'GRID T4-8Q']
    assert sorted(names, key=inventorylib.natural_key) == [
        'GRID T4-1Q', 'GRID T4-2Q', 'GRID T4-8Q', 'GRID T4-16Q']


def test_another_types_name_or_ref_blocks_the_pgpu():
    held = vgpus(Q8, Q1, 'OpaqueRef:gone')
    usage = capacity.usage(pgpu(), TYPES[Q4], held, TYPES)
    assert usage.blocked_by == 'GRID M60-1Q, GRID M60-8Q, OpaqueRef:gone'


def plain_inventory(pcis=None, groups=None, held=()):
    one = pgpu(ref='OpaqueRef:a')
    return inventorylib.HostInventory(
        'OpaqueRef:host', groups or {}, {one.ref: one}, TYPES,
        {v.ref: v for v in held}, pcis or {})


def test_stopped_instances_are_listed_per_vm_in_device_order():
    held = [records.Vgpu('OpaqueRef:s%d' % i, 'u', vm, 'OpaqueRef:group',
                         Q4, d, False, None, {})
            for i, (vm, d) in enumerate((
                ('OpaqueRef:vm1', '10'), ('OpaqueRef:vm1', '1'),
                ('OpaqueRef:vm2', '1'), ('OpaqueRef:vm1', ''),
                ('OpaqueRef:vm1', '2')))]
    # Resident or scheduled: not stopped.
    held += vgpus(Q4, on='OpaqueRef:a')
    held += [dataclasses.replace(v, ref='OpaqueRef:scheduled')
             for v in vgpus(Q4, on='OpaqueRef:a', scheduled=True)]
    stopped = plain_inventory(held=held).stopped()
    assert {vm: [v.device for v in v_list]
            for vm, v_list in stopped.items()} == {
        'OpaqueRef:vm1': ['', '1', '2', '10'], 'OpaqueRef:vm2': ['1']}


def test_vendor_and_device_from_pci_else_the_groups_gpu_type():
    def pci(vendor, device):
        return {'OpaqueRef:pci': records.PciDevice(
            'OpaqueRef:pci', 'p', '0000:86:00.0', 'VGA', 'NVIDIA', 'M60',
            'OpaqueRef:host', '0300', vendor, device)}
    group = {'OpaqueRef:group': records.GpuGroup(
        'OpaqueRef:group', 'g', 'Group', 'depth_first', ('10de/1eb8',), (),
        (), ())}
    assert plain_inventory(pci('10de', '13f2'), group).vendor_device(
        'OpaqueRef:a') == '10de:13f2'
    for ids in (('', '13f2'), ('10de', '')):
        assert plain_inventory(pci(*ids), group).vendor_device(
            'OpaqueRef:a') == '10de:1eb8'
    assert plain_inventory(pci('', ''), {}).vendor_device(
        'OpaqueRef:a') == ''


def test_passthrough_is_binary_whatever_the_recorded_maximum():
    two = dataclasses.replace(pgpu(), supported_VGPU_max_capacities=dict(
        MAXIMA, **{PT: 2}))
    usage = capacity.usage(two, TYPES[PT], [], TYPES)
    assert (usage.capacity, usage.remaining) == (2, 1)
