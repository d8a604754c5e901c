"""vGPU pools and claims from plain records (no simulator)."""

import dataclasses
import threading
import time

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.pci import pgpu_choice
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from tests.pcihelpers import HostBuilder
from tests.pcihelpers import refs_reversed
from tests.pcihelpers import type_ref

ALIASES = aliaslib.parse_aliases([
    '{"name": "4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "8q", "vgpu_type": "GRID M60-8Q"}',
    '{"name": "1q", "vgpu_type": "GRID M60-1Q"}',
    '{"name": "pt", "vgpu_type": "passthrough"}',
    '{"name": "t4", "vgpu_type": "GRID T4-8Q"}',
    '{"name": "mix", "vgpu_type": ["GRID M60-8Q", "GRID T4-8Q"]}',
    '{"name": "near", "vgpu_type": "GRID M60-4Q", "numa_policy": '
    '"required"}',
    '{"name": "nearish", "vgpu_type": "GRID M60-4Q", "numa_policy": '
    '"preferred"}',
    '{"name": "socket", "vgpu_type": "GRID M60-4Q", "numa_policy": '
    '"socket"}'])


def ask(spec):
    return requestslib.requests_from_spec(spec, ALIASES)[0]


def two_m60s(algorithm, numa=(None, None)):
    host = HostBuilder()
    group = host.group('m60', algorithm)
    a = host.pgpu(group, '0000:86:00.0', numa[0])
    b = host.pgpu(group, '0000:87:00.0', numa[1])
    return host, group, a, b


def available(stats, name):
    """Slots of type ``name`` the pools offer now."""
    return sum(p.count for p in stats.pools() if p.key.vgpu_type == name)


def claim_all(stats, *specs):
    return [stats.apply_requests(ask(s), instance='vm%d' % i)
            for i, s in enumerate(specs)]


def test_breadth_first_refuses_what_an_unlucky_order_breaks():
    host, _, _, _ = two_m60s('breadth_first')
    stats = statslib.VgpuStats(host.inventory())
    claim_all(stats, '4q:1', '4q:1')
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('8q:1'), instance='big')
    assert 'vm0 -> vm1 -> this request' in str(info.value)
    assert 'breadth_first' in str(info.value)
    assert not stats.support_requests(ask('8q:1'))
    assert set(stats.claims) == {'vm0', 'vm1'}


def test_depth_first_accepts_the_same_claims():
    host, _, a, b = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    claims = claim_all(stats, '4q:1', '4q:1', '8q:1')
    assert [c.pgpus for c in claims] == [(a,), (a,), (b,)]
    assert not stats.support_requests(ask('1q:1'))


@pytest.mark.parametrize('first, second, third', [
    ('4q:1', '4q:1', '8q:1'), ('8q:1', '4q:1', '4q:1'),
    ('4q:1', '8q:1', '4q:1')])
def test_the_order_claims_arrive_in_does_not_matter(first, second, third):
    for algorithm, accepted in (('breadth_first', False),
                                ('depth_first', True)):
        host, _, _, _ = two_m60s(algorithm)
        stats = statslib.VgpuStats(host.inventory())
        claim_all(stats, first, second)
        assert stats.support_requests(ask(third)) is accepted, algorithm


def test_residency_is_where_it_is():
    host, group, a, b = two_m60s('breadth_first')
    host.vgpu(group, 'GRID M60-8Q', pgpu=a, instance='running')
    stats = statslib.VgpuStats(host.inventory())
    claim_all(stats, '4q:1', '4q:1')
    assert not stats.support_requests(ask('4q:1'))
    assert not stats.support_requests(ask('pt:1'))


def test_stopped_instances_keep_their_vgpus():
    host, group, _, _ = two_m60s('depth_first')
    host.vgpu(group, 'GRID M60-8Q', instance='stopped-1')
    host.vgpu(group, 'GRID M60-8Q', instance='stopped-2')
    stats = statslib.VgpuStats(host.inventory())
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('1q:1'), instance='new')
    assert 'stopped-' in str(info.value)
    statuses = {s.claimed_by for s in stats.devices()
                if s.status == 'allocated'}
    assert statuses == {'stopped-1', 'stopped-2'}


def test_several_vgpus_per_vm_only_where_xapi_allows():
    host = HostBuilder()
    t4 = host.group('t4', 'breadth_first')
    host.pgpu(t4, '0000:3b:00.0', model='t4')
    host.pgpu(t4, '0000:3c:00.0', model='t4')
    m60 = host.group('m60')
    host.pgpu(m60, '0000:86:00.0')
    host.pgpu(m60, '0000:87:00.0')
    stats = statslib.VgpuStats(host.inventory())
    claim = stats.apply_requests(ask('t4:3'), instance='triple')
    assert len(claim.demand) == 3
    assert not stats.support_requests(ask('t4:2'))
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('8q:2'))
    assert 'one vGPU per VM of GRID M60-8Q' in str(info.value)
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('8q:1,t4:1'))
    assert 'compatible_types_in_vm' in str(info.value)


def test_alternatives_are_tried_in_order():
    host = HostBuilder()
    m60 = host.group('m60')
    host.pgpu(m60, '0000:86:00.0')
    t4 = host.group('t4')
    host.pgpu(t4, '0000:3b:00.0', model='t4')
    stats = statslib.VgpuStats(host.inventory())
    kinds = [stats.apply_requests(ask('mix:1'), instance=str(i)).demand[0][1]
             for i in range(3)]
    assert sorted(kinds) == sorted([type_ref('GRID M60-8Q'),
                                    type_ref('GRID T4-8Q'),
                                    type_ref('GRID T4-8Q')])


def numa_host():
    host = HostBuilder()
    near = host.group('node0')
    host.pgpu(near, '0000:86:00.0', numa=0)
    far = host.group('node1')
    host.pgpu(far, '0000:87:00.0', numa=1)
    return host, near, far


@pytest.mark.parametrize('spec, cells, expected', [
    ('near:1', [1], 'node1'),
    ('4q:1', [0], 'node0'),
    ('4q:1', [1], 'node1'),
    ('nearish:1', [0], 'node0'),
    ('nearish:1', [1], 'node1'),
    ('socket:1', [1], 'node1'),
])
def test_numa_policies_pick_local_pools(spec, cells, expected):
    host, _, _ = numa_host()
    stats = statslib.VgpuStats(host.inventory())
    claim = stats.apply_requests(ask(spec), cells, instance='i')
    assert {g for g, _ in claim.demand} == {'OpaqueRef:group-' + expected}


def test_required_refuses_and_preferred_falls_back():
    host, near, _ = numa_host()
    host.vgpu(near, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:86:00.0')
    stats = statslib.VgpuStats(host.inventory())
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('near:1'), [0])
    assert 'has no room for this request (GRID M60-4Q)' in str(info.value)
    claim = stats.apply_requests(ask('nearish:1'), [0], instance='far')
    assert claim.demand[0][0] == 'OpaqueRef:group-node1'


def test_a_group_spanning_nodes_promises_no_locality():
    host, _, _, _ = two_m60s('depth_first', numa=(0, 1))
    stats = statslib.VgpuStats(host.inventory())
    assert {p.key.numa_node for p in stats.pools()} == {None}
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('near:1'), [0])
    assert str(info.value) == (
        'vGPU claim refused: no GRID M60-4Q on NUMA node(s) 0 (numa_policy '
        'required) for alias near; a GPU group spanning NUMA nodes promises '
        'none (see gpu-groups split)')
    # legacy takes devices with no NUMA information.
    assert stats.support_requests(ask('4q:1'), [0])


def test_a_host_without_plugin_answer_says_its_numa_is_unknown():
    host, _, _ = numa_host()
    unknown = dataclasses.replace(host.inventory(), topology=None)
    stats = statslib.VgpuStats(unknown)
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('near:1'), [0])
    assert str(info.value).endswith(
        "for alias near; this host's NUMA nodes are unknown (the dom0 "
        'plugin did not answer)')


def test_socket_policy_needs_sockets():
    host, _, _ = numa_host()
    stats = statslib.VgpuStats(host.inventory(sockets={0: 0, 1: 0}))
    claim = stats.apply_requests(ask('socket:1'), [1], instance='i')
    assert claim.demand[0][0] == 'OpaqueRef:group-node1'
    host.vgpu('OpaqueRef:group-node1', 'GRID M60-8Q',
              pgpu='OpaqueRef:pgpu-0000:87:00.0')
    stats = statslib.VgpuStats(host.inventory(sockets={0: 0, 1: 0}))
    claim = stats.apply_requests(ask('socket:1'), [1], instance='j')
    assert claim.demand[0][0] == 'OpaqueRef:group-node0'
    # A node on two sockets, or none listed: the host does not say which.
    inventory = host.inventory(sockets={0: 0, 1: 0})
    nodes = inventory.topology.numa_nodes
    for numa_nodes in ((nodes[0], dataclasses.replace(nodes[1],
                                                      sockets=(0, 1))),
                       ()):
        unsure = dataclasses.replace(inventory, topology=dataclasses.replace(
            inventory.topology, numa_nodes=numa_nodes))
        assert not statslib.VgpuStats(unsure).support_requests(
            ask('socket:1'), [1])


def test_slots_are_devices_with_one_type_per_pgpu():
    host, _, a, _ = two_m60s('depth_first', numa=(0, 0))
    stats = statslib.VgpuStats(host.inventory())
    stats.consume_requests(ask('4q:1'), instance='i')
    on_a = {(s.vgpu_type.model_name, s.index): s.status
            for s in stats.devices() if s.pgpu_ref == a}
    assert on_a[('GRID M60-4Q', 0)] == 'allocated'
    assert on_a[('GRID M60-4Q', 1)] == 'available'
    assert on_a[('GRID M60-8Q', 0)] == 'unavailable'
    assert on_a[('passthrough', 0)] == 'unavailable'
    taken = stats.devices_of('i')
    assert [(s.vgpu_type.model_name, s.index) for s in taken] == [
        ('GRID M60-4Q', 0)]
    stats.free('i')
    assert stats.devices_of('i') == []
    assert all(s.status == 'available' for s in stats.devices())


def test_pci_passthrough_devices_for_nova():
    host, _, _, _ = two_m60s('depth_first', numa=(0, 0))
    first = statslib.VgpuStats(host.inventory()).devices()
    again = statslib.VgpuStats(host.inventory()).devices()
    assert [s.uuid for s in first] == [s.uuid for s in again]
    assert len({s.uuid for s in first}) == len(first) == 2 * (1 + 8 + 2 + 1)
    device = next(s for s in first if s.vgpu_type.model_name == (
        'GRID M60-4Q')).as_nova_device()
    assert device['address'] is None and device['dev_type'] == 'vgpu'
    assert (device['vendor_id'], device['product_id']) == ('10de', '13f2')
    assert device['numa_node'] == 0
    assert device['parent_addr'] == '0000:86:00.0'
    extra = {k: v for k, v in device.items() if k not in (
        'address', 'uuid', 'dev_type', 'vendor_id', 'product_id',
        'numa_node', 'parent_addr', 'label', 'dev_id', 'status')}
    assert extra['vgpu_type'] == 'GRID M60-4Q'
    assert all(isinstance(v, str) for v in extra.values())


def test_a_claim_gives_way_to_its_vgpus_wherever_xapi_put_them():
    host, group, a, b = two_m60s('breadth_first')
    stats = statslib.VgpuStats(host.inventory())
    claim = stats.apply_requests(ask('4q:1'), instance='i')
    actual = b if claim.pgpus == (a,) else a
    host.vgpu(group, 'GRID M60-4Q', pgpu=actual, instance='i')
    stats.refresh(host.inventory())
    assert stats.claims == {}
    assert {s.pgpu_ref for s in stats.devices()
            if s.status == 'allocated'} == {actual}


def test_concurrent_claims_never_overcommit():
    host, _, _, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    results = []

    def claim(index):
        try:
            stats.apply_requests(ask('8q:1'), instance='vm%d' % index)
            results.append(True)
        except exception.ClaimRefused:
            results.append(False)
    threads = [threading.Thread(target=claim, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(results) == [False] * 10 + [True] * 2


def test_unprovable_is_refused_not_accepted():
    host, _, _, _ = two_m60s('depth_first')
    assert statslib.VgpuStats(host.inventory()).support_requests(
        ask('1q:1'))
    stats = statslib.VgpuStats(host.inventory(), budget=3)
    claim_all(stats, '1q:1', '1q:1')
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('4q:1'), instance='more')
    assert str(info.value) == (
        'vGPU claim refused: too many claims pending in these GPU groups to '
        'prove that XAPI honours them all (pin the pGPUs: gpu-groups pin)')


def test_the_search_is_memoised_on_host_shapes():
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    for bus in range(8):
        host.pgpu(group, '0000:%02x:00.0' % (0x80 + bus))
    model = pgpu_choice.from_inventory(host.inventory())
    demands = [((group, type_ref('GRID M60-1Q')),)] * 30
    search = pgpu_choice._Search(10 ** 6, model.algorithms)
    assert search.failing_order(model.shape,
                                pgpu_choice.as_pending(demands)) is None
    # Eight alike pGPUs are one shape: the states stay few.
    assert len(search.memo) < 200


def test_updates_apply_one_at_a_time():
    # A refresh that started later must read the result of an earlier one,
    # or an older inventory could replace a newer one (and claims that gave
    # way to their VGPUs would be forgotten).
    host, _, _, _ = two_m60s('depth_first')
    first, second = host.inventory(), host.inventory()
    stats = statslib.VgpuStats(first)
    release, seen = threading.Event(), []

    def slow(current):
        release.wait(10)
        return second

    def quick(current):
        seen.append(current)
        return current
    older = threading.Thread(target=stats.update, args=(slow,))
    older.start()
    time.sleep(0.05)
    newer = threading.Thread(target=stats.update, args=(quick,))
    newer.start()
    time.sleep(0.05)
    assert seen == []  # waits for the earlier update
    release.set()
    older.join(10)
    newer.join(10)
    assert not older.is_alive() and not newer.is_alive()
    assert seen == [second] and stats.inventory is second


def test_each_refresh_is_seen_even_where_an_old_inventory_id_comes_back():
    # CPython gives a freed object's address to the next one: a cache keyed
    # by id(inventory) once answered for an inventory that was gone.
    host = HostBuilder()
    group = host.group('t4', 'depth_first')
    pgpu = host.pgpu(group, '0000:3b:00.0', None, model='t4')
    stats = statslib.VgpuStats(host.inventory())
    for round_ in range(50):
        stats.refresh(host.inventory())
        assert stats.support_requests(ask('t4:1'))
        stats.refresh(host.inventory())  # frees the one just asked about
        host.vgpu(group, 'GRID T4-8Q', pgpu=pgpu, instance='a%d' % round_)
        host.vgpu(group, 'GRID T4-8Q', pgpu=pgpu, instance='b%d' % round_)
        stats.refresh(host.inventory())
        assert not stats.support_requests(ask('t4:1'))
        host.vgpus.clear()


class MeetingStats(statslib.VgpuStats):
    """Deciders that wait for each other inside the decision: with the
    lock the second cannot enter, so the first waits in vain (the barrier
    breaks); without it they meet, both having seen the same room."""

    def __init__(self, inventory, barrier):
        self.barrier = barrier
        super().__init__(inventory)

    def _refusal(self, demand):
        reason = super()._refusal(demand)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return reason


@pytest.mark.parametrize('decide', ['apply_requests', 'claim_demand'])
def test_a_decision_is_whole_under_the_lock(decide):
    host = HostBuilder()
    group = host.group('m60')
    host.pgpu(group, '0000:86:00.0')  # room for one 8Q
    barrier = threading.Barrier(2, timeout=0.5)
    stats = MeetingStats(host.inventory(), barrier)
    accepted = []

    def claim(instance):
        try:
            if decide == 'apply_requests':
                stats.apply_requests(ask('8q:1'), instance=instance)
            else:
                stats.claim_demand(instance, (
                    (group, type_ref('GRID M60-8Q')),))
            accepted.append(instance)
        except exception.ClaimRefused:
            pass
    threads = [threading.Thread(target=claim, args=(name,))
               for name in ('a', 'b')]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(accepted) == 1, accepted
    assert barrier.broken  # the two decisions never overlapped


def test_support_requests_decides_under_the_lock():
    host = HostBuilder()
    group = host.group('m60')
    host.pgpu(group, '0000:86:00.0')
    barrier = threading.Barrier(2, timeout=0.5)
    stats = MeetingStats(host.inventory(), barrier)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(
        stats.support_requests(ask('8q:1')))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == [True, True]
    assert barrier.broken


def test_a_prediction_breaks_ties_to_the_lowest_address_across_kinds():
    # 86 and 88 enable every type, 87 only 4Q: two kinds of pGPU, tied
    # for 4Q under breadth_first.
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    a = host.pgpu(group, '0000:86:00.0')
    b = host.pgpu(group, '0000:87:00.0')
    host.pgpu(group, '0000:88:00.0')
    host.pgpus[b] = dataclasses.replace(
        host.pgpus[b], enabled_VGPU_types=(type_ref('GRID M60-4Q'),))
    stats = statslib.VgpuStats(host.inventory())
    first, second = claim_all(stats, '4q:1', '4q:1')
    assert (first.pgpus, second.pgpus) == ((a,), (b,))


def one_pinned_m60():
    """A group with one pGPU on this host: pinned."""
    host = HostBuilder()
    group = host.group('m60')
    return host, group, host.pgpu(group, '0000:86:00.0')


def refusal(stats, spec, instance='new'):
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask(spec), instance=instance)
    return str(info.value)


def test_a_pinned_refusal_names_what_the_pgpu_holds_and_owes():
    host, group, pgpu = one_pinned_m60()
    host.vgpu(group, 'GRID M60-8Q', pgpu=pgpu, instance='running')
    stats = statslib.VgpuStats(host.inventory())
    assert refusal(stats, '4q:1').endswith(
        'pinned pGPU 0000:86:00.0 has no room for this request '
        '(GRID M60-4Q): it holds 1 x GRID M60-8Q and owes nothing more')
    host, group, pgpu = one_pinned_m60()
    stats = statslib.VgpuStats(host.inventory())
    claim_all(stats, '4q:1', '4q:1')
    assert refusal(stats, '4q:1').endswith(
        'pinned pGPU 0000:86:00.0 has no room for this request '
        '(GRID M60-4Q): it holds nothing and owes vm0 (GRID M60-4Q), '
        'vm1 (GRID M60-4Q)')


def test_a_stranded_instance_is_named_in_the_refusal():
    host, group, pgpu = one_pinned_m60()
    host.vgpu(group, 'GRID M60-4Q', pgpu=pgpu, instance='running')
    host.vgpu(group, 'GRID M60-8Q', instance='stopped')
    stats = statslib.VgpuStats(host.inventory())
    assert refusal(stats, '4q:1').endswith(
        'pinned pGPU 0000:86:00.0 cannot hold what it already owes: '
        'stopped (GRID M60-8Q) does not fit beside 1 x GRID M60-4Q and '
        'nothing more; that instance is stranded (restore its type, or '
        'move it) and blocks this pGPU only')


def test_a_shared_refusal_names_the_failing_order():
    host, _, _, _ = two_m60s('breadth_first')
    stats = statslib.VgpuStats(host.inventory())
    claim_all(stats, '4q:1', '4q:1', '4q:1')
    assert refusal(stats, '8q:1').endswith(
        'XAPI would not honour every claim: if the VMs start in the order '
        'vm0 -> vm1 -> vm2 -> this request, XAPI (breadth_first) has no '
        'pGPU left '
        'for this request (GRID M60-8Q)')
    # One T4 taken by a 4Q, the other with room for one 8Q: no start
    # order at all fits two 8Q.
    host = HostBuilder()
    group = host.group('t4', 'depth_first')
    one = host.pgpu(group, '0000:3b:00.0', model='t4')
    two = host.pgpu(group, '0000:3c:00.0', model='t4')
    host.vgpu(group, 'GRID T4-4Q', pgpu=one, instance='a')
    host.vgpu(group, 'GRID T4-8Q', pgpu=two, instance='b')
    stats = statslib.VgpuStats(host.inventory())
    assert refusal(stats, 't4:2') == (
        'vGPU claim refused: XAPI (depth_first) has no room for this '
        'request (2 x GRID T4-8Q) on this host')


def test_claim_demand_takes_exactly_that_demand_or_says_why():
    host, group, a, b = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    eight = ((group, type_ref('GRID M60-8Q')),)
    first = stats.claim_demand('in-1', eight)
    second = stats.claim_demand('in-2', eight)
    assert (first.instance, first.demand, first.pgpus) == ('in-1', eight,
                                                           (a,))
    # Predicted beside the first claim, not onto its pGPU.
    assert second.pgpus == (b,)
    with pytest.raises(exception.ClaimRefused) as info:
        stats.claim_demand('in-3', eight)
    assert str(info.value) == (
        'vGPU claim refused: XAPI would not honour every claim: if the VMs '
        'start in the order in-1 -> in-2 -> this request, XAPI '
        '(depth_first) has no pGPU left for this request (GRID M60-8Q)')
    assert set(stats.claims) == {'in-1', 'in-2'}


def test_explain_says_what_a_claim_would_take_and_changes_nothing():
    host, group, a, b = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    claim_all(stats, '8q:1')
    demand, pgpus = stats.explain(ask('4q:1'))
    assert demand == ((group, type_ref('GRID M60-4Q')),)
    assert pgpus == [b]
    assert set(stats.claims) == {'vm0'}
    stats.apply_requests(ask('8q:1'), instance='other')
    with pytest.raises(exception.ClaimRefused):
        stats.explain(ask('4q:1'))


def test_a_snapshot_is_what_the_decision_saw():
    host, group, a, _ = two_m60s('depth_first')
    host.vgpu(group, 'GRID M60-4Q', instance='stopped')
    inventory = host.inventory()
    stats = statslib.VgpuStats(inventory)
    claim_all(stats, '8q:1')
    snapshot = stats.snapshot()
    four, eight = type_ref('GRID M60-4Q'), type_ref('GRID M60-8Q')
    assert snapshot.inventory is inventory
    assert snapshot.pending == (((group, four),), ((group, eight),))
    assert [c.instance for c in snapshot.claims] == ['vm0']
    assert sorted(p.count for p in snapshot.host.pgpus) == [0, 0]
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(ask('8q:1'), instance='big')
    assert info.value.snapshot.pending[-1] == ((group, eight),)
    assert len(info.value.snapshot.pending) == 2


def test_devices_of_an_instance_among_the_enabled_types():
    host, _, a, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory(), enabled=('GRID M60-4Q',))
    assert {s.vgpu_type.model_name for s in stats.devices()} == {
        'GRID M60-4Q'}
    stats.consume_requests(ask('4q:1'), instance='h')
    stats.consume_requests(ask('4q:1'), instance='i')
    taken = stats.devices_of('i')
    assert [(s.pgpu_ref, s.index, s.claimed_by) for s in taken] == [
        (a, 1, 'i')]
    assert stats.devices_of('other') == []


def test_the_pools_follow_every_change_of_claims():
    # The pools are kept per version of the claims: a change that brought
    # the version back to one already counted would show stale pools.
    host, _, _, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())

    stats.apply_requests(ask('8q:1'), instance='a')
    assert available(stats, 'GRID M60-8Q') == 1
    stats.free('a')
    stats.apply_requests(ask('4q:1'), instance='b')
    assert (available(stats, 'GRID M60-8Q'),
            available(stats, 'GRID M60-4Q')) == (1, 3)
    stats.free('b')
    stats.free('b')  # idempotent
    assert (available(stats, 'GRID M60-8Q'),
            available(stats, 'GRID M60-4Q')) == (2, 4)
    stats.claim_demand('c', stats.explain(ask('1q:1'))[0])
    assert available(stats, 'GRID M60-1Q') == 15


def test_a_search_out_of_time_refuses_and_says_so():
    host = HostBuilder()
    group = host.group('m60', 'depth_first')
    for bus in range(6):
        host.pgpu(group, '0000:%02x:00.0' % (0x80 + bus))
    model = pgpu_choice.from_inventory(host.inventory())
    demands = [((group, type_ref(name)),) for name in (
        ['GRID M60-1Q'] * 10 + ['GRID M60-4Q'] * 4 + ['GRID M60-8Q'] * 2)]
    # About 165 states: every order honoured, given the time.
    assert pgpu_choice.failing_order(model, demands) is None
    with pytest.raises(exception.ClaimRefused) as info:
        pgpu_choice.failing_order(model, demands, seconds=1e-9)
    assert str(info.value) == (
        'vGPU claim refused: the search over start orders ran out of time '
        '(0.0 s) before proving that XAPI honours every claim in these GPU '
        'groups (pin the pGPUs: gpu-groups pin)')
    # The pools hand their time budget to the search.
    stats = statslib.VgpuStats(host.inventory(), seconds=1e-9)
    with pytest.raises(exception.ClaimRefused) as info:
        for index, (pair,) in enumerate(demands):
            stats.claim_demand('vm%d' % index, (pair,))
    assert 'ran out of time (0.0 s)' in str(info.value)


def test_a_prediction_follows_xapi_type_by_type_whatever_the_record_order():
    # Records arrive in any order: 87 before 86 here.
    host = HostBuilder()
    group = host.group('m60', 'depth_first')
    b = host.pgpu(group, '0000:87:00.0')
    a = host.pgpu(group, '0000:86:00.0')
    stats = statslib.VgpuStats(host.inventory())
    claims = claim_all(stats, '4q:1', '1q:1', '1q:1')
    # The lowest address first; then a 1Q cannot join the 4Q on 86.
    assert [c.pgpus for c in claims] == [(a,), (b,), (b,)]


def test_a_claim_without_instance_is_named_for_its_place():
    host, _, _, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    assert stats.apply_requests(ask('4q:1')).instance == 'claim-0'
    assert stats.apply_requests(ask('4q:1')).instance == 'claim-1'


def test_a_type_no_pool_offers_is_named():
    host, _, _, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory(), enabled=('GRID M60-4Q',))
    assert refusal(stats, 'mix:1') == (
        'vGPU claim refused: no pool on this host offers GRID M60-8Q or '
        'GRID T4-8Q for alias mix')


def test_a_slot_as_nova_sees_it():
    host, group, a, _ = two_m60s('depth_first', numa=(0, 0))
    host.vgpu(group, 'GRID M60-4Q', pgpu=a, instance='running')
    stats = statslib.VgpuStats(host.inventory())
    slot = next(s for s in stats.devices() if s.pgpu_ref == a
                and s.vgpu_type.model_name == 'GRID M60-4Q' and s.index == 1)
    assert slot.as_nova_device() == {
        'address': None, 'uuid': slot.uuid, 'dev_type': 'vgpu',
        'vendor_id': '10de', 'product_id': '13f2', 'numa_node': 0,
        'parent_addr': '0000:86:00.0', 'label': 'label_10de_13f2',
        'dev_id': 'vgpu_0000_86_00_0_1', 'status': 'available',
        'vgpu_type': 'GRID M60-4Q', 'vgpu_type_uuid': 'uuid-GRID M60-4Q',
        'gpu_group_uuid': 'uuid-OpaqueRef:group-m60',
        'pgpu_uuid': 'uuid-0000:86:00.0', 'implementation': 'nvidia',
        'framebuffer_size': str(2 ** 30), 'max_heads': '4'}
    # A running instance's slots, found by its tag on the pGPU it runs on.
    held = stats.devices_of('running')
    assert [(s.pgpu_ref, s.index, s.status) for s in held] == [
        (a, 0, 'allocated')]


def test_a_claim_ends_only_when_all_its_vgpus_show():
    host = HostBuilder()
    group = host.group('t4', 'depth_first')
    pgpu = host.pgpu(group, '0000:3b:00.0', model='t4')
    host.pgpu(group, '0000:3c:00.0', model='t4')
    stats = statslib.VgpuStats(host.inventory())
    stats.apply_requests(ask('t4:2'), instance='two')
    stats.apply_requests(ask('t4:1'), instance='none-yet')
    host.vgpu(group, 'GRID T4-8Q', pgpu=pgpu, instance='two')
    stats.refresh(host.inventory())
    assert set(stats.claims) == {'two', 'none-yet'}
    host.vgpu(group, 'GRID T4-8Q', pgpu=pgpu, instance='two', device='1')
    stats.refresh(host.inventory())
    assert set(stats.claims) == {'none-yet'}


def test_the_pools_follow_a_refresh_after_claims():
    host, group, a, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())

    assert available(stats, 'GRID M60-8Q') == 2
    stats.apply_requests(ask('4q:1'), instance='i')
    host.vgpu(group, 'GRID M60-8Q', pgpu=a, instance='other')
    stats.refresh(host.inventory())
    assert (available(stats, 'GRID M60-8Q'),
            available(stats, 'GRID M60-4Q')) == (0, 1)


def test_an_enabled_type_without_a_maximum_has_no_room():
    host, _, a, b = two_m60s('depth_first')
    for ref in (a, b):
        record = host.pgpus[ref]
        host.pgpus[ref] = dataclasses.replace(
            record, supported_VGPU_max_capacities={
                t: m for t, m in record.supported_VGPU_max_capacities.items()
                if t != type_ref('GRID M60-8Q')})
    stats = statslib.VgpuStats(host.inventory())
    assert not stats.support_requests(ask('8q:1'))
    assert stats.support_requests(ask('4q:1'))
    assert not [p for p in stats.pools()
                if p.key.vgpu_type == 'GRID M60-8Q' and p.count]


def test_two_types_in_one_vm_are_refused_by_name():
    host = HostBuilder()
    m60 = host.group('m60')
    host.pgpu(m60, '0000:86:00.0')
    t4 = host.group('t4')
    host.pgpu(t4, '0000:3b:00.0', model='t4')
    stats = statslib.VgpuStats(host.inventory())
    with pytest.raises(exception.ClaimRefused) as info:
        stats.claim_demand('x', ((m60, type_ref('GRID M60-8Q')),
                                 (t4, type_ref('GRID T4-8Q'))))
    assert str(info.value) == (
        'vGPU claim refused: XAPI allows only one vGPU per VM of GRID '
        'M60-8Q and GRID T4-8Q (compatible_types_in_vm)')


def test_a_stopped_vm_without_instance_tag_is_owed_by_its_ref():
    host, group, pgpu = one_pinned_m60()
    host.vgpu(group, 'GRID M60-8Q', vm='OpaqueRef:vm-untagged')
    stats = statslib.VgpuStats(host.inventory())
    assert refusal(stats, '4q:1') == (
        'vGPU claim refused: pinned pGPU 0000:86:00.0 has no room for this '
        'request (GRID M60-4Q): it holds nothing and owes '
        'OpaqueRef:vm-untagged (GRID M60-8Q)')


def test_slot_uuids_keep_their_value_across_versions():
    # Nova keys the devices by uuid: this value must never change (an
    # upgrade that changed it would make Nova see every slot replaced).
    host, _, _, _ = two_m60s('depth_first')
    slots = statslib.VgpuStats(host.inventory()).devices()
    slot = next(s for s in slots if s.parent_addr == '0000:86:00.0'
                and s.vgpu_type.model_name == 'GRID M60-4Q' and s.index == 1)
    assert slot.uuid == 'ae599066-568a-55db-b624-9391c8506c35'
    other = dataclasses.replace(host.inventory(), host=dataclasses.replace(
        host.inventory().host, uuid='another-host'))
    assert not {s.uuid for s in slots} & {
        s.uuid for s in statslib.VgpuStats(other).devices()}


def test_slots_in_address_order_with_their_group_and_no_owner():
    host = HostBuilder()
    group = host.group('m60')
    b = host.pgpu(group, '0000:87:00.0')
    a = host.pgpu(group, '0000:86:00.0')
    slots = statslib.VgpuStats(host.inventory()).devices()
    assert [s.pgpu_ref for s in slots][::12] == [a, b]
    assert {(s.group_ref, s.group_uuid, s.claimed_by) for s in slots} == {
        (group, 'uuid-' + group, None)}
    orphan = dataclasses.replace(host.inventory(), groups={})
    assert {s.group_uuid for s in statslib.VgpuStats(orphan).devices()} == {
        ''}


def test_a_pinned_pgpu_owed_one_type_refuses_another():
    host, _, _ = one_pinned_m60()
    stats = statslib.VgpuStats(host.inventory())
    claim_all(stats, '4q:1')
    assert refusal(stats, '1q:1').endswith(
        'pinned pGPU 0000:86:00.0 has no room for this request '
        '(GRID M60-1Q): it holds nothing and owes vm0 (GRID M60-4Q)')


def test_an_alias_alternative_that_matches_is_found():
    aliases = aliaslib.parse_aliases([
        '{"name": "alt", "vgpu_type": "GRID T4-8Q", '
        '"device_type": "type-PCI"}',
        '{"name": "alt", "vgpu_type": "GRID M60-8Q", '
        '"device_type": "type-PCI"}'])
    host, group, a, _ = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    requests = requestslib.requests_from_spec('alt:1', aliases)[0]
    assert stats.apply_requests(requests, instance='i').demand == (
        (group, type_ref('GRID M60-8Q')),)


def test_pools_by_node_then_none_with_their_keys():
    host, _, _ = numa_host()
    spanning = host.group('spanning')
    host.pgpu(spanning, '0000:d8:00.0', numa=0)
    host.pgpu(spanning, '0000:d9:00.0', numa=1)
    pools = statslib.VgpuStats(host.inventory(),
                               enabled=('GRID M60-8Q',)).pools()
    assert [(p.key.numa_node, p.key.gpu_group, p.count) for p in pools] == [
        (0, 'uuid-OpaqueRef:group-node0', 1),
        (1, 'uuid-OpaqueRef:group-node1', 1),
        (None, 'uuid-OpaqueRef:group-spanning', 2)]
    assert {(p.key.dev_type, p.key.vendor_id, p.key.product_id)
            for p in pools} == {('vgpu', '10de', '13f2')}
    orphan = dataclasses.replace(host.inventory(), groups={})
    assert {p.key.gpu_group for p in statslib.VgpuStats(orphan).pools()} == {
        ''}
    # By node first, whatever the groups' names.
    host = HostBuilder()
    host.pgpu(host.group('z'), '0000:86:00.0', numa=0)
    host.pgpu(host.group('a'), '0000:87:00.0', numa=1)
    pools = statslib.VgpuStats(host.inventory(),
                               enabled=('GRID M60-8Q',)).pools()
    assert [p.key.numa_node for p in pools] == [0, 1]


def test_pools_of_three_alike_pgpus_after_a_claim():
    host = HostBuilder()
    group = host.group('m60', 'depth_first')
    for bus in (0x86, 0x87, 0x88):
        host.pgpu(group, '0000:%02x:00.0' % bus)
    stats = statslib.VgpuStats(host.inventory(), enabled=('GRID M60-8Q',
                                                          'GRID M60-4Q'))
    stats.apply_requests(ask('4q:1'), instance='i')
    assert {p.key.vgpu_type: p.count for p in stats.pools()} == {
        'GRID M60-8Q': 2, 'GRID M60-4Q': 5}


def test_legacy_falls_back_to_no_numa_pools_only():
    host, near, far = numa_host()
    host.vgpu(near, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:86:00.0')
    stats = statslib.VgpuStats(host.inventory())
    assert not stats.support_requests(ask('4q:1'), [0])
    claim = stats.consume_requests(ask('near:1'), [1], instance='i')
    assert {s.numa_node for s in claim} == {1}
    assert stats.explain(ask('near:1'), [1])[0] == (
        (far, type_ref('GRID M60-4Q')),)


def test_preferred_takes_the_local_node_first_when_it_falls_back():
    aliases = aliaslib.parse_aliases([
        '{"name": "t4", "vgpu_type": "GRID T4-4Q", "numa_policy": '
        '"preferred"}'])
    host = HostBuilder()
    near, far = host.group('n1'), host.group('n0')
    local = host.pgpu(near, '0000:3b:00.0', numa=1, model='t4')
    other = host.pgpu(far, '0000:3c:00.0', numa=0, model='t4')
    host.vgpu(near, 'GRID T4-4Q', pgpu=local, instance='a')  # room 3
    host.vgpu(far, 'GRID T4-4Q', pgpu=other, instance='b')
    host.vgpu(far, 'GRID T4-4Q', pgpu=other, instance='c')  # room 2
    stats = statslib.VgpuStats(host.inventory())
    requests = requestslib.requests_from_spec('t4:4', aliases)[0]
    claim = stats.apply_requests(requests, [1], instance='i')
    assert [g for g, _ in claim.demand] == [near, near, near, far]


def t4_pair(first_address, second_address):
    """Two T4s in one group, recorded in the order given: the first runs
    2Q and 4Q, the second only 4Q (equal room for 4Q, unlike shapes)."""
    host = HostBuilder()
    group = host.group('t4', 'depth_first')
    two_q, four_q = type_ref('GRID T4-2Q'), type_ref('GRID T4-4Q')
    refs = [host.pgpu(group, a, model='t4')
            for a in (first_address, second_address)]
    host.types[two_q] = dataclasses.replace(
        host.types[four_q], ref=two_q, uuid='uuid-2q',
        model_name='GRID T4-2Q', compatible_types_in_vm=(two_q,))
    for ref, enabled in zip(refs, ((two_q, four_q), (four_q,)),
                            strict=True):
        host.pgpus[ref] = dataclasses.replace(
            host.pgpus[ref], supported_VGPU_types=enabled,
            enabled_VGPU_types=enabled,
            supported_VGPU_max_capacities={
                t: {two_q: 8, four_q: 4}[t] for t in enabled})
    return host, refs


def test_every_tie_of_a_vms_first_vgpu_is_followed_to_its_last():
    """XAPI may put the first of a VM's two 4Q vGPUs on either of two
    equally empty T4s (depth_first then keeps the second beside it): if
    it picks the one that alone runs 2Q, a pending 2Q VM has nowhere to
    go, so the pair is refused whichever way the tie looks."""
    host, _ = t4_pair('0000:86:00.0', '0000:87:00.0')
    aliases = aliaslib.parse_aliases([
        '{"name": "2q", "vgpu_type": "GRID T4-2Q"}',
        '{"name": "4q", "vgpu_type": "GRID T4-4Q"}'])
    stats = statslib.VgpuStats(host.inventory())
    stats.apply_requests(requestslib.requests_from_spec('2q:1', aliases)[0],
                         instance='small')
    pair = requestslib.requests_from_spec('4q:2', aliases)[0]
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(pair, instance='pair')
    assert 'pair' not in stats.claims
    assert 'this request -> small' in str(info.value)


@pytest.mark.parametrize('addresses', [
    ('0000:87:00.0', '0000:86:00.0'), ('0000:86:00.0', '0000:87:00.0')])
def test_ties_go_to_the_lowest_pci_address_not_the_first_record(addresses):
    # Alike pGPUs: the M60 recorded first has the higher address.
    host = HostBuilder()
    group = host.group('m60', 'depth_first')
    refs = {a: host.pgpu(group, a) for a in addresses}
    stats = statslib.VgpuStats(host.inventory())
    claims = claim_all(stats, '4q:1', '4q:1', '8q:1')
    assert [c.pgpus for c in claims] == [
        (refs['0000:86:00.0'],), (refs['0000:86:00.0'],),
        (refs['0000:87:00.0'],)]
    # Unlike pGPUs with equal room: the same rule.
    host, refs = t4_pair(*addresses)
    aliases = aliaslib.parse_aliases(
        ['{"name": "4q", "vgpu_type": "GRID T4-4Q"}'])
    claim = statslib.VgpuStats(host.inventory()).apply_requests(
        requestslib.requests_from_spec('4q:1', aliases)[0], instance='vm')
    assert claim.pgpus == ('OpaqueRef:pgpu-0000:86:00.0',)


def test_a_pinned_claim_fills_the_fullest_pinned_pgpu_first():
    # Two pinned groups (one pGPU each): the 4Q goes beside the running
    # 4Q, so that the empty M60 still takes an 8Q.
    host = HostBuilder()
    empty_group, busy_group = host.group('a-empty'), host.group('b-busy')
    host.pgpu(empty_group, '0000:86:00.0')
    busy = host.pgpu(busy_group, '0000:87:00.0')
    host.vgpu(busy_group, 'GRID M60-4Q', pgpu=busy, instance='running')
    stats = statslib.VgpuStats(host.inventory())
    small = stats.apply_requests(ask('4q:1'), instance='small')
    assert small.demand == ((busy_group, type_ref('GRID M60-4Q')),)
    assert stats.apply_requests(ask('8q:1'), instance='big').demand == (
        (empty_group, type_ref('GRID M60-8Q')),)


def test_a_type_offered_by_a_pinned_and_a_shared_group():
    host = HostBuilder()
    pinned, shared = host.group('a-pinned'), host.group('b-shared')
    board = host.pgpu(pinned, '0000:86:00.0')
    host.vgpu(pinned, 'GRID M60-4Q', pgpu=board, instance='running')
    for address in ('0000:87:00.0', '0000:88:00.0'):
        host.pgpu(shared, address)
    stats = statslib.VgpuStats(host.inventory())
    groups = [stats.apply_requests(ask('4q:1'), instance='vm%d' % i).demand
              for i in range(5)]
    # The shared M60s first, 4Q two to a board; then the pinned one, even
    # with one slot left (the fullest pinned pool).
    assert [d[0][0] for d in groups] == [shared] * 4 + [pinned]


def test_consume_and_explain_honour_the_numa_cells():
    host, _, far = numa_host()
    stats = statslib.VgpuStats(host.inventory())
    demand, pgpus = stats.explain(ask('near:1'), [1])
    assert demand == ((far, type_ref('GRID M60-4Q')),)
    assert pgpus == ['OpaqueRef:pgpu-0000:87:00.0']
    slots = stats.consume_requests(ask('near:1'), [1], instance='i')
    assert [(s.parent_addr, s.numa_node) for s in slots] == [
        ('0000:87:00.0', 1)]


def test_refusals_name_every_group_algorithm_and_unknown_types():
    host = HostBuilder()
    groups = [host.group('a', 'breadth_first'), host.group('b')]
    for group, address in zip(groups, ('0000:86:00.0', '0000:87:00.0'),
                              strict=True):
        host.pgpu(group, address, model='t4')
    inventory = host.inventory()
    eight_q = type_ref('GRID T4-8Q')
    demand = tuple((g, eight_q) for g in groups)
    assert statslib._explain([demand], [], demand, inventory) == (
        'XAPI (breadth_first, depth_first) has no room for this request '
        '(2 x GRID T4-8Q) on this host')
    # A stopped VM's VGPU whose type XAPI no longer lists: named by ref.
    pgpu = pgpu_choice.Pgpu('OpaqueRef:pgpu-0000:86:00.0', groups[0], (),
                            address='0000:86:00.0')
    stranded = pgpu_choice.Stranded(pgpu, (('old', 'OpaqueRef:gone'),),
                                    'old')
    assert 'old (OpaqueRef:gone) does not fit' in statslib._explain_stranded(
        stranded, inventory)


def test_a_pgpu_joining_alike_ones_keeps_the_address_order():
    # breadth_first: the empty M60 at :86 takes a 1Q and so looks like
    # the one at :87 (already one 1Q); the next 1Q ties between them and
    # goes to the lower address, :86.
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    b = host.pgpu(group, '0000:87:00.0')  # recorded first
    a = host.pgpu(group, '0000:86:00.0')
    host.vgpu(group, 'GRID M60-1Q', pgpu=b, instance='running')
    stats = statslib.VgpuStats(host.inventory())
    claims = claim_all(stats, '1q:1', '1q:1')
    assert [c.pgpus for c in claims] == [(a,), (a,)]


def test_refusals_list_every_type_and_numa_node_asked_for():
    host, _, _ = numa_host()
    stats = statslib.VgpuStats(host.inventory())
    t4s = requestslib.requests_from_spec('t4:1', aliaslib.parse_aliases([
        '{"name": "t4", "vgpu_type": ["GRID T4-8Q", "GRID T4-4Q"]}']))[0]
    near = requestslib.requests_from_spec('near:1', aliaslib.parse_aliases([
        '{"name": "near", "vgpu_type": ["GRID M60-4Q", "GRID M60-8Q"], '
        '"numa_policy": "required"}']))[0]
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(near, [2, 3])
    assert 'no GRID M60-4Q or GRID M60-8Q on NUMA node(s) 2, 3 (numa_policy ' \
        'required)' in str(info.value)
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(t4s)
    assert 'no pool on this host offers GRID T4-8Q or GRID T4-4Q for ' \
        'alias t4' in str(info.value)


def test_the_socket_policy_stays_on_the_socket():
    host, near, _ = numa_host()
    host.vgpu(near, 'GRID M60-8Q', pgpu='OpaqueRef:pgpu-0000:86:00.0')
    stats = statslib.VgpuStats(host.inventory(sockets={0: 0, 1: 1}))
    with pytest.raises(exception.ClaimRefused):
        stats.apply_requests(ask('socket:1'), [0])
    same = statslib.VgpuStats(host.inventory(sockets={0: 0, 1: 0}))
    claim = same.apply_requests(ask('socket:1'), [0], instance='i')
    assert claim.demand[0][0] == 'OpaqueRef:group-node1'


def test_a_flavor_tries_at_most_64_combinations():
    # Two aliases, 5 and 13 (group, type) options: the only pair XAPI
    # runs in one VM (two T4-8Q) is the 65th combination, one past the
    # bound, so the flavor is refused; asked alone, it is accepted.
    host = HostBuilder()
    for name in 'abcd':
        group = host.group('%s-m60' % name)
        for slot in (0, 1):
            host.pgpu(group, '0000:8%s:0%d.0' % (name, slot))
    t4 = host.group('z-t4')
    host.pgpu(t4, '0000:3b:00.0', model='t4')
    aliases = aliaslib.parse_aliases([
        '{"name": "one", "vgpu_type": ["GRID M60-8Q", "GRID T4-8Q"]}',
        '{"name": "any", "vgpu_type": ["GRID M60-1Q", "GRID M60-4Q", '
        '"GRID M60-8Q", "GRID T4-8Q"]}'])
    stats = statslib.VgpuStats(host.inventory())
    flavor = requestslib.requests_from_spec('one:1,any:1', aliases)[0]
    assert [len(stats._options(r, None)) for r in flavor] == [5, 13]
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(flavor, instance='flavor')
    assert 'only one vGPU per VM' in str(info.value)
    pair = requestslib.requests_from_spec('one:2', aliases)[0]
    assert stats.apply_requests(pair, instance='pair').demand == (
        (t4, type_ref('GRID T4-8Q')),) * 2


def test_a_claim_that_makes_a_pgpu_like_another_counts_both():
    # breadth_first puts the claim on an empty M60, which then looks like
    # the one already holding a 4Q: the free 4Q slots are 1 + 1 + 2.
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    busy = host.pgpu(group, '0000:86:00.0')
    for address in ('0000:87:00.0', '0000:88:00.0'):
        host.pgpu(group, address)
    host.vgpu(group, 'GRID M60-4Q', pgpu=busy, instance='running')
    stats = statslib.VgpuStats(host.inventory())
    assert available(stats, 'GRID M60-4Q') == 5
    stats.apply_requests(ask('4q:1'), instance='vm')
    assert available(stats, 'GRID M60-4Q') == 4


def test_two_t4_types_in_one_vm_are_refused():
    host = HostBuilder()
    group = host.group('t4')
    for address in ('0000:3b:00.0', '0000:3c:00.0'):
        host.pgpu(group, address, model='t4')
    aliases = aliaslib.parse_aliases([
        '{"name": "big", "vgpu_type": "GRID T4-8Q"}',
        '{"name": "small", "vgpu_type": "GRID T4-4Q"}'])
    stats = statslib.VgpuStats(host.inventory())
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(requestslib.requests_from_spec(
            'big:1,small:1', aliases)[0], instance='mixed')
    assert 'XAPI allows only one vGPU per VM of GRID T4-4Q and GRID ' \
        'T4-8Q (compatible_types_in_vm)' in str(info.value)


def test_a_stopped_vm_that_cannot_start_leaves_later_claims_their_slots():
    # A stopped instance owes an 8Q to a pinned M60 now holding a 4Q: it
    # cannot be placed; a claim after it still shows on its slot.
    host = HostBuilder()
    pinned = host.group('a-pinned')
    board = host.pgpu(pinned, '0000:86:00.0')
    host.vgpu(pinned, 'GRID M60-4Q', pgpu=board, instance='running')
    host.vgpu(pinned, 'GRID M60-8Q', instance='stopped')
    shared = host.group('b-shared')
    for address in ('0000:87:00.0', '0000:88:00.0'):
        host.pgpu(shared, address)
    stats = statslib.VgpuStats(host.inventory())
    slots = stats.consume_requests(ask('4q:1'), instance='new')
    assert [(s.group_ref, s.claimed_by) for s in slots] == [
        (shared, 'new')]


def test_a_copy_among_the_vgpus_does_not_stop_a_claim_ending():
    # A snapshot's copy of another VM's VGPU comes first in XAPI's
    # records; the claimed instance's own VGPU after it still ends its
    # claim when the refresh shows it.
    host, group, a, b = two_m60s('depth_first')
    stats = statslib.VgpuStats(host.inventory())
    stats.apply_requests(ask('4q:1'), instance='vm')
    copy = host.vgpu(group, 'GRID M60-4Q', instance='other', vm='vm-copy')
    host.vgpus[copy] = dataclasses.replace(
        host.vgpus[copy], other_config=dict(
            host.vgpus[copy].other_config, **{tags.VM: 'vm-original'}))
    host.vgpu(group, 'GRID M60-4Q', pgpu=a, instance='vm')
    stats.refresh(host.inventory())
    assert 'vm' not in stats.claims


def test_of_two_full_pinned_pgpus_the_lower_address_is_named():
    # One VM, one T4-8Q on each of two full pinned T4s (told apart by
    # their device ids); the T4 recorded first has the higher address.
    host = HostBuilder()
    aliases = []
    for address, device in (('0000:3c:00.0', '1eb9'),
                            ('0000:3b:00.0', '1eb8')):
        group = host.group(address)
        board = host.pgpu(group, address, model='t4')
        pci = host.pgpus[board].PCI
        host.pcis[pci] = dataclasses.replace(host.pcis[pci],
                                             device_id=device)
        for n in (1, 2):
            host.vgpu(group, 'GRID T4-8Q', pgpu=board,
                      instance='%s-%d' % (device, n))
        aliases.append('{"name": "t4-%s", "vgpu_type": "GRID T4-8Q", '
                       '"product_id": "%s"}' % (device, device))
    stats = statslib.VgpuStats(host.inventory())
    flavor = requestslib.requests_from_spec(
        't4-1eb8:1,t4-1eb9:1', aliaslib.parse_aliases(aliases))[0]
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(flavor, instance='both')
    assert 'pinned pGPU 0000:3b:00.0 has no room for this request' in str(
        info.value)


def test_slots_in_address_order_whatever_xapis_refs():
    host = HostBuilder()
    group = host.group('m60')
    host.pgpu(group, '0000:86:00.0')
    host.pgpu(group, '0000:87:00.0')
    inventory = host.inventory()
    inventory = refs_reversed(inventory)
    slots = statslib.VgpuStats(inventory).devices()
    assert [s.parent_addr for s in slots][::12] == [
        '0000:86:00.0', '0000:87:00.0']


def free_slots(stats, name):
    """Slots of type ``name`` Nova is given as available."""
    return sum(1 for s in stats.devices()
               if s.vgpu_type.model_name == name and s.status == 'available')


def test_pools_count_what_the_slots_show_when_claims_make_pgpus_alike():
    # breadth_first spreads a two-vGPU claim over two T4s, which are then
    # alike; once its first VGPU shows, the pGPU holding it is like them.
    host = HostBuilder()
    group = host.group('t4', 'breadth_first')
    for address in ('0000:3b:00.0', '0000:3c:00.0', '0000:3d:00.0'):
        host.pgpu(group, address, model='t4')
    stats = statslib.VgpuStats(host.inventory())
    claim = stats.apply_requests(ask('t4:2'), instance='two')
    assert len(set(claim.pgpus)) == 2
    assert available(stats, 'GRID T4-8Q') == 4
    assert free_slots(stats, 'GRID T4-8Q') == 4
    host.vgpu(group, 'GRID T4-8Q', pgpu=claim.pgpus[0], instance='two')
    stats.refresh(host.inventory())
    assert available(stats, 'GRID T4-8Q') == free_slots(stats, 'GRID T4-8Q')


def test_legacy_keeps_to_local_pools_that_hold_just_enough_slots():
    # Nova (pci/stats.py): local pools holding at least the count are all
    # that is tried. Node 0's T4 counts 2 8Q + 4 4Q slots, exactly the 6
    # asked, though no VM takes them; the group spanning both nodes
    # (no NUMA) could, and is not tried.
    aliases = aliaslib.parse_aliases([
        '{"name": "t4any", "vgpu_type": ["GRID T4-8Q", "GRID T4-4Q"]}'])
    host = HostBuilder()
    host.pgpu(host.group('node0'), '0000:3b:00.0', numa=0, model='t4')
    spread = host.group('spread')
    host.pgpu(spread, '0000:3c:00.0', numa=0, model='t4')
    host.pgpu(spread, '0000:d8:00.0', numa=1, model='t4')
    stats = statslib.VgpuStats(host.inventory())
    six = requestslib.requests_from_spec('t4any:6', aliases)[0]
    with pytest.raises(exception.ClaimRefused):
        stats.apply_requests(six, [0])
    assert stats.apply_requests(six, instance='anywhere').demand == (
        (spread, type_ref('GRID T4-4Q')),) * 6
