"""Splitting GPU groups (host/groups.py): the proposal from plain records,
the moves against the simulator."""

import dataclasses

from nova_xenapi_vgpu.host import dom0 as dom0lib
from nova_xenapi_vgpu.host import groups as groupslib
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.pcihelpers import HostBuilder


def spanning_host():
    """Group 'a' spans nodes 0, 0, 1; group 'b' lies on node 1 only."""
    host = HostBuilder()
    a = host.group('a', 'breadth_first')
    b = host.group('b')
    refs = [host.pgpu(a, '0000:%02x:00.0' % bus, numa)
            for bus, numa in ((0x86, 0), (0x87, 0), (0x88, 1))]
    host.pgpu(b, '0000:d8:00.0', 1)
    host.pgpu(b, '0000:d9:00.0', 1)
    return host, a, refs


def fates(moves):
    return [(m.address, m.numa_node, m.target, m.busy) for m in moves]


def test_a_split_by_numa_node_moves_the_other_nodes_pgpus():
    host, a, _ = spanning_host()
    moves = groupslib.propose(host.inventory(), short_name=lambda n: 'A')
    assert {m.group_ref for m in moves} == {a}
    assert fates(moves) == [('0000:86:00.0', 0, None, False),
                            ('0000:87:00.0', 0, None, False),
                            ('0000:88:00.0', 1, 'A NUMA 1', False)]


def test_a_split_by_pgpu_gives_each_other_pgpu_a_group():
    host, _, _ = spanning_host()
    moves = groupslib.propose(host.inventory(), by='pgpu')
    targets = [(m.address, m.target) for m in moves]
    assert targets == [
        ('0000:86:00.0', None),
        ('0000:87:00.0', 'Group of OpaqueRef:group-a 0000:87:00.0'),
        ('0000:88:00.0', 'Group of OpaqueRef:group-a 0000:88:00.0'),
        ('0000:d8:00.0', None),
        ('0000:d9:00.0', 'Group of OpaqueRef:group-b 0000:d9:00.0')]


def test_busy_pgpus_and_groups_a_stopped_instance_owes_stay():
    host, a, refs = spanning_host()
    host.vgpu(a, 'GRID M60-4Q', pgpu=refs[2], instance='running')
    assert [m.busy for m in groupslib.propose(host.inventory())] == [
        False, False, True]
    host.vgpu(a, 'GRID M60-4Q', instance='stopped')
    assert all(m.busy for m in groupslib.propose(host.inventory()))


def test_the_moves_against_the_simulator(m60_sim):
    xapi = login(m60_sim.url).xenapi
    with sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot') as client:
        host = identity.resolve_host(client)
        dom0 = dom0lib.Dom0Plugin(client, host)
        before = reader.read_inventory(client, host, dom0)
        (group,) = before.groups
        client.call('GPU_group.set_allocation_algorithm', group,
                    'breadth_first')
        before = reader.read_inventory(client, host, dom0)
        moves = groupslib.propose(before, short_name=lambda n: 'M60')
        done = groupslib.apply(client, before, moves)
        assert [m.target for m in done] == ['M60 NUMA 1']
        after = reader.read_inventory(client, host, dom0)
        # Applied again: the group is reused by name, nothing else moves.
        assert groupslib.propose(after) == []
        assert groupslib.apply(client, after, moves) == done
        again = reader.read_inventory(client, host, dom0)
    assert len(after.groups) == len(again.groups) == 2
    new = next(r for r, g in after.groups.items() if g.name_label == (
        'M60 NUMA 1'))
    assert xapi.GPU_group.get_allocation_algorithm(new) == 'breadth_first'
    assert xapi.GPU_group.get_name_description(new) == (
        'split by nova-xenapi-vgpu')
    assert {after.numa_node(p) for p, r in after.pgpus.items()
            if r.GPU_group == new} == {1}
    assert {after.numa_node(p) for p, r in after.pgpus.items()
            if r.GPU_group == group} == {0}


def test_groups_by_name_and_pgpus_by_address_whatever_the_refs():
    host, a, refs = spanning_host()
    # Swap the PCI devices of 86 and 88: refs no longer follow addresses.
    first, _, last = refs
    host.pgpus[first], host.pgpus[last] = (
        dataclasses.replace(host.pgpus[first], PCI=host.pgpus[last].PCI),
        dataclasses.replace(host.pgpus[last], PCI=host.pgpus[first].PCI))
    host.numa['0000:86:00.0'], host.numa['0000:88:00.0'] = 1, 0
    inventory = host.inventory()
    # 'b' now sorts before 'a'.
    renamed = {ref: dataclasses.replace(g, name_label=(
        'Z' if ref == a else 'A')) for ref, g in inventory.groups.items()}
    moves = groupslib.propose(dataclasses.replace(inventory, groups=renamed),
                              by='pgpu')
    assert [(m.pgpu_ref, m.address, m.target) for m in moves] == [
        ('OpaqueRef:pgpu-0000:d8:00.0', '0000:d8:00.0', None),
        ('OpaqueRef:pgpu-0000:d9:00.0', '0000:d9:00.0', 'A 0000:d9:00.0'),
        (refs[2], '0000:86:00.0', None),
        (refs[1], '0000:87:00.0', 'Z 0000:87:00.0'),
        (refs[0], '0000:88:00.0', 'Z 0000:88:00.0')]
    # By NUMA node, 'b' (one node) has nothing to split; 'a' still does.
    by_numa = groupslib.propose(dataclasses.replace(inventory,
                                                    groups=renamed))
    assert [m.target for m in by_numa] == [None, 'Z NUMA 0', 'Z NUMA 0']
