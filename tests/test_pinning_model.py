"""Pinning (host/pinning.py): the proposal from plain records, the moves
against the simulator."""

import dataclasses

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.pcihelpers import HOST
from tests.pcihelpers import HostBuilder
from tests.pcihelpers import type_ref

ALL = ('passthrough', 'GRID M60-1Q', 'GRID M60-4Q', 'GRID M60-8Q')


def three_m60s():
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    refs = [host.pgpu(group, '0000:%02x:00.0' % bus)
            for bus in (0x88, 0x86, 0x87)]  # records in any order
    return host, group, sorted(refs)


def pool_of(host):
    inventory = host.inventory()
    return pinning.Pool({HOST.ref: HOST}, inventory.groups, inventory.pgpus,
                        inventory.pcis, inventory.types, inventory.vgpus)


def plan(host, **kwargs):
    return [(s.address, s.target, s.new_types, s.blocker)
            for s in pinning.propose(pool_of(host), short_name=lambda n: 'M60',
                                     **kwargs)]


def test_the_first_idle_pgpu_stays_the_others_move():
    host, group, _ = three_m60s()
    steps = pinning.propose(pool_of(host), short_name=lambda n: n[:5])
    assert [(s.host, s.address, s.group_ref, s.target, s.types)
            for s in steps] == [
        ('lab-01', '0000:87:00.0', group, 'Group 0000:87:00.0', ALL),
        ('lab-01', '0000:88:00.0', group, 'Group 0000:88:00.0', ALL)]
    assert all(s.new_types is None and s.blocker is None for s in steps)


def test_a_busy_pgpu_keeps_the_group_and_two_busy_ones_block():
    host, group, (a, b, c) = three_m60s()
    host.vgpu(group, 'GRID M60-8Q', pgpu=c, instance='one')
    assert plan(host) == [('0000:86:00.0', 'M60 0000:86:00.0', None, None),
                          ('0000:87:00.0', 'M60 0000:87:00.0', None, None)]
    host.vgpu(group, 'GRID M60-4Q', pgpu=b, instance='two')
    host.vgpu(group, 'GRID M60-4Q', pgpu=b, instance='three')
    assert plan(host) == [
        ('0000:86:00.0', 'M60 0000:86:00.0', None, None),
        ('0000:87:00.0', 'M60 0000:87:00.0', None,
         'holds 2 vGPU(s) of running VMs'),
        ('0000:88:00.0', 'M60 0000:88:00.0', None,
         'holds 1 vGPU(s) of running VMs')]


def test_a_group_a_stopped_instance_owes_is_left_alone():
    host, group, _ = three_m60s()
    host.vgpu(group, 'GRID M60-4Q', instance='sleeper')
    host.vgpu(group, 'GRID M60-4Q', vm='OpaqueRef:untagged')
    pool = pool_of(host)
    untagged = next(v for v in pool.vgpus.values()
                    if v.VM == 'OpaqueRef:untagged')
    pool.vgpus[untagged.ref] = dataclasses.replace(
        untagged, other_config={tags.HOST: HOST.uuid})
    why = ('owed to stopped instance(s) OpaqueRef:untagged, sleeper of this '
           'group: start them (or move them) first')
    assert [(s.address, s.blocker) for s in pinning.propose(pool)] == [
        ('0000:86:00.0', why), ('0000:87:00.0', why), ('0000:88:00.0', why)]
    assert pool.owed_in(group, 'OpaqueRef:other-host') == []


def test_pgpu_types_retype_named_pgpus_only_where_they_can():
    host = HostBuilder()
    group = host.group('m60')
    pgpu = host.pgpu(group, '0000:86:00.0')  # pinned already
    assert plan(host, partition={'0000:86:00.0': 'GRID M60-4Q'}) == [
        ('0000:86:00.0', None, ('GRID M60-4Q',), None)]
    assert plan(host, partition={'0000:86:00.0': 'GRID T4-8Q'}) == [
        ('0000:86:00.0', None, ('GRID T4-8Q',),
         'does not support GRID T4-8Q ([vgpu] pgpu_types)')]
    host.vgpu(group, 'GRID M60-8Q', pgpu=pgpu, instance='a')
    host.vgpu(group, 'GRID M60-1Q', pgpu=pgpu, instance='b')
    assert plan(host, partition={'0000:86:00.0': 'GRID M60-4Q'}) == [
        ('0000:86:00.0', None, ('GRID M60-4Q',),
         'holds GRID M60-1Q, GRID M60-8Q')]
    host.vgpus.clear()
    # The type it is asked for, and a stopped VM's 8Q elsewhere: no
    # blocker.
    host.vgpu(group, 'GRID M60-4Q', pgpu=pgpu, instance='c')
    host.vgpu(host.group('other'), 'GRID M60-8Q', instance='d')
    assert plan(host, partition={'0000:86:00.0': 'GRID M60-4Q'}) == [
        ('0000:86:00.0', None, ('GRID M60-4Q',), None)]
    host.vgpus.clear()
    host.pgpus[pgpu] = dataclasses.replace(
        host.pgpus[pgpu], enabled_VGPU_types=(type_ref('GRID M60-4Q'),))
    assert plan(host, partition={'0000:86:00.0': 'GRID M60-4Q'}) == []


def test_layout_lists_groups_with_more_than_one_pgpu_here():
    host, group, refs = three_m60s()
    alone = host.group('alone')
    host.pgpu(alone, '0000:d8:00.0')
    assert {g: sorted(r) for g, r in pinning.layout(
        host.inventory()).items()} == {group: refs}


def test_apply_makes_named_groups_with_the_source_algorithm():
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        (group,) = xapi.GPU_group.get_all()
        xapi.GPU_group.set_allocation_algorithm(group, 'breadth_first')
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            pool = pinning.read_pool(client)
            steps = pinning.propose(pool, short_name=lambda n: 'M60')
            done = pinning.apply(client, pool, steps)
            again = pinning.read_pool(client)
        assert done == [s.pgpu_ref for s in steps] and len(done) == 1
        (new,) = [r for r in xapi.GPU_group.get_all() if r != group]
        assert xapi.GPU_group.get_name_label(new) == 'M60 0000:87:00.0'
        assert xapi.GPU_group.get_name_description(new) == (
            'pinned by nova-xenapi-vgpu')
        assert xapi.GPU_group.get_allocation_algorithm(new) == (
            'breadth_first')
        assert xapi.PGPU.get_GPU_group(done[0]) == new
    assert pinning.propose(again) == []
    assert set(again.hosts) == set(pool.hosts) and len(again.pgpus) == 2


def test_steps_by_host_then_address_whatever_the_refs():
    host, group, (a, b, c) = three_m60s()
    # 86's and 88's PCI devices swapped: refs no longer follow addresses.
    host.pgpus[a], host.pgpus[c] = (
        dataclasses.replace(host.pgpus[a], PCI=host.pgpus[c].PCI),
        dataclasses.replace(host.pgpus[c], PCI=host.pgpus[a].PCI))
    steps = pinning.propose(pool_of(host))
    assert [(s.pgpu_ref, s.address) for s in steps] == [
        (b, '0000:87:00.0'), (a, '0000:88:00.0')]


def test_a_pgpu_without_its_pci_or_host_record():
    host, group, (a, _, _) = three_m60s()
    pool = pool_of(host)
    bare = dataclasses.replace(pool, pcis={}, hosts={})
    assert bare.address(a) == ''
    assert {s.host for s in pinning.propose(bare)} == {''}
    assert pool.busy(a) == []


def test_two_pgpus_of_a_group_here_are_not_pinned():
    host = HostBuilder()
    pair = host.group('pair')
    refs = [host.pgpu(pair, '0000:86:00.0'), host.pgpu(pair, '0000:87:00.0')]
    host.pgpu(host.group('alone'), '0000:d8:00.0')
    assert pinning.layout(host.inventory()) == {pair: refs}


def test_read_pool_keeps_each_record_under_its_ref():
    with server.Simulator('pool') as sim:
        with sessionlib.XapiClient(sim.url, 'root', 'xenroot') as client:
            pool = pinning.read_pool(client)
    assert len(pool.hosts) == 3 and len(pool.pgpus) == 12
    for records in (pool.hosts, pool.groups, pool.pgpus, pool.pcis,
                    pool.types):
        assert records and all(r == v.ref for r, v in records.items())
