"""Pinned pGPUs over the simulator: claims that survive stops, reboots,
start orders, an admin's changes and stranded neighbours (issue 16)."""

import contextlib
import itertools

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import groups as groupslib
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import pinning
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.pcihelpers import HostBuilder
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import vgpu_type

ALIASES = aliaslib.parse_aliases([
    '{"name": "2q", "vgpu_type": "GRID M60-2Q"}',
    '{"name": "4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "8q", "vgpu_type": "GRID M60-8Q"}',
    '{"name": "t4", "vgpu_type": "GRID T4-4Q"}'])


def ask(spec):
    return requestslib.requests_from_spec(spec, ALIASES)[0]


@contextlib.contextmanager
def world(profile, pin, algorithm='breadth_first'):
    """(plain SDK API, a Builder of the profile's host), pinned or not."""
    with server.Simulator(profile) as sim:
        xapi = login(sim.url).xenapi
        xapi.GPU_group.set_allocation_algorithm(group_of(xapi, 'M60'),
                                                algorithm)
        client = sessionlib.XapiClient(sim.url, 'root', 'xenroot',
                                       retry_interval=0.01)
        if pin:
            pool = pinning.read_pool(client)
            pinning.apply(client, pool, pinning.propose(pool))
        yield xapi, lifecycle.Builder.for_host(
            client, identity.resolve_host(client))
        client.close()


@pytest.fixture
def pinned_m60():
    with world('m60', pin=True) as answer:
        yield answer


@pytest.fixture
def pinned_mixed():
    with world('mixed', pin=True) as answer:
        yield answer


@pytest.fixture
def shared_mixed():
    with world('mixed', pin=False) as answer:
        yield answer


def build_abc(xapi, builder):
    """A (4Q) and B (2Q) running, C (2Q) claimed and attached, halted."""
    vms = {name: new_vm(xapi, name) for name in 'ABC'}
    builder.build('A', vms['A'], ask('4q:1'))
    builder.build('B', vms['B'], ask('2q:1'))
    builder.attach('C', vms['C'], ask('2q:1'))
    return vms


def running(xapi, vms):
    return sorted(n for n, vm in vms.items()
                  if xapi.VM.get_power_state(vm) == 'Running')


def test_pinning_makes_one_group_per_pgpu_and_is_idempotent(pinned_m60):
    xapi, builder = pinned_m60
    groups = {xapi.PGPU.get_GPU_group(p) for p in xapi.PGPU.get_all()}
    assert len(groups) == 2
    pool = pinning.read_pool(builder.client)
    assert pinning.propose(pool) == []
    assert pinning.layout(builder.stats.inventory) == {}


def test_a_stop_cannot_strand_an_accepted_instance(pinned_m60):
    """Item 1: stop A, start C then A; C cannot take A's pGPU."""
    xapi, builder = pinned_m60
    vms = build_abc(xapi, builder)
    builder.stop(vms['A'])
    builder.sync()
    builder.start_again(vms['C'])
    builder.start_again(vms['A'])
    assert running(xapi, vms) == ['A', 'B', 'C']


def test_every_restart_order_after_a_reboot_starts_every_instance(
        pinned_m60):
    """Item 2: all halted as a reboot does, started in every order."""
    xapi, builder = pinned_m60
    vms = build_abc(xapi, builder)
    builder.start_again(vms['C'])
    for order in itertools.permutations('ABC'):
        for vm in vms.values():
            xapi.VM.hard_shutdown(vm)
        for name in order:
            builder.start_again(vms[name])
        assert running(xapi, vms) == ['A', 'B', 'C'], order


def test_a_stranded_instance_blocks_its_pgpu_only_and_is_named(
        pinned_mixed):
    """Item 3 (pinned): an admin disables the type a stopped instance
    owes; its pGPU refuses and names it, the rest of the host claims."""
    xapi, builder = pinned_mixed
    vms = {'A': new_vm(xapi, 'A'), 'B': new_vm(xapi, 'B')}
    builder.build('A', vms['A'], ask('4q:1'))
    builder.build('B', vms['B'], ask('8q:1'))
    builder.stop(vms['A'])
    stranded = xapi.VGPU.get_GPU_group(xapi.VM.get_VGPUs(vms['A'])[0])
    pgpu = xapi.GPU_group.get_PGPUs(stranded)[0]
    xapi.PGPU.set_enabled_VGPU_types(pgpu, [vgpu_type(xapi, 'GRID M60-8Q')])
    builder.sync()
    assert builder.stats.support_requests(ask('t4:1'))
    with pytest.raises(exception.ClaimRefused) as info:
        builder.stats.apply_requests(ask('8q:1'), instance='D')
    assert 'A (GRID M60-4Q) does not fit' in str(info.value)
    assert xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(pgpu)) in str(info.value)


def test_a_stranded_shared_group_does_not_block_other_groups(shared_mixed):
    """Item 3 (shared): after item 1's stop and start order strands A,
    a T4 claim (another group, idle pGPU) is still accepted."""
    xapi, builder = shared_mixed
    vms = build_abc(xapi, builder)
    builder.stop(vms['A'])
    builder.start_again(vms['C'])
    builder.sync()
    assert builder.stats.support_requests(ask('t4:1'))
    with pytest.raises(exception.ClaimRefused) as info:
        builder.stats.apply_requests(ask('4q:1'), instance='D')
    assert 'A' in str(info.value)


def test_pinning_leaves_a_group_a_stopped_instance_owes(m60_sim):
    """Item 5: neither pin nor split moves a pGPU a halted instance may
    need."""
    xapi = login(m60_sim.url).xenapi
    client = sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot')
    host = identity.resolve_host(client)
    builder = lifecycle.Builder(client, statslib.VgpuStats(
        reader.read_inventory(client, host)), host)
    vm = new_vm(xapi, 'A')
    builder.build('A', vm, ask('4q:1'))
    builder.build('B', new_vm(xapi, 'B'), ask('4q:1'))
    builder.stop(vm)
    pool = pinning.read_pool(client)
    steps = pinning.propose(pool)
    assert steps and all('stopped instance(s) A' in s.blocker
                         for s in steps)
    assert pinning.apply(client, pool, steps) == []
    moves = groupslib.propose(reader.read_inventory(client, host), 'pgpu')
    assert [m.busy for m in moves if m.target] == [True]
    assert len({xapi.PGPU.get_GPU_group(p) for p in xapi.PGPU.get_all()}) == 1
    client.close()


def test_pinning_retypes_named_pgpus_and_refuses_an_unsupported_type(sim):
    client = sessionlib.XapiClient(sim.url, 'root', 'xenroot')
    xapi = login(sim.url).xenapi
    pool = pinning.read_pool(client)
    steps = pinning.propose(pool, {'0000:86:00.0': 'GRID M60-4Q',
                                   '0000:3b:00.0': 'GRID M60-8Q'})
    by_address = {s.address: s for s in steps}
    assert by_address['0000:86:00.0'].new_types == ('GRID M60-4Q',)
    assert 'does not support GRID M60-8Q' in by_address[
        '0000:3b:00.0'].blocker
    pinning.apply(client, pool, steps)
    m60 = next(p for p in xapi.PGPU.get_all() if xapi.PCI.get_pci_id(
        xapi.PGPU.get_PCI(p)) == '0000:86:00.0')
    assert xapi.PGPU.get_enabled_VGPU_types(m60) == [
        vgpu_type(xapi, 'GRID M60-4Q')]
    assert pinning.propose(pinning.read_pool(client), {
        '0000:86:00.0': 'GRID M60-4Q'}) == []
    client.close()


def test_a_stranded_instance_blocks_only_the_groups_it_competes_in():
    """Item 3 (shared groups, from records): A is owed a 4Q that no
    order of starts can honour in the M60 group; claims in another
    shared group still pass, claims in A's group are refused naming A."""
    host = HostBuilder()
    m60 = host.group('m60', 'breadth_first')
    x = host.pgpu(m60, '0000:86:00.0')
    y = host.pgpu(m60, '0000:87:00.0')
    host.vgpu(m60, 'GRID M60-1Q', pgpu=x, instance='B')
    host.vgpu(m60, 'GRID M60-1Q', pgpu=y, instance='C')
    host.vgpu(m60, 'GRID M60-4Q', instance='A')  # halted, stranded
    t4 = host.group('t4', 'breadth_first')
    host.pgpu(t4, '0000:3b:00.0', model='t4')
    host.pgpu(t4, '0000:5e:00.0', model='t4')
    stats = statslib.VgpuStats(host.inventory())
    aliases = aliaslib.parse_aliases([
        '{"name": "t4", "vgpu_type": "GRID T4-4Q"}',
        '{"name": "1q", "vgpu_type": "GRID M60-1Q"}'])
    assert stats.apply_requests(requestslib.requests_from_spec(
        't4:2', aliases)[0], instance='D').demand[0][0] == t4
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(requestslib.requests_from_spec(
            '1q:1', aliases)[0], instance='E')
    assert 'for A (GRID M60-4Q)' in str(info.value)


def test_a_request_spans_pinned_pgpus():
    """Item 12: four T4-8Q (two per pGPU) over two one-pGPU groups."""
    host = HostBuilder()
    for address in ('0000:3b:00.0', '0000:5e:00.0'):
        host.pgpu(host.group(address), address, model='t4')
    stats = statslib.VgpuStats(host.inventory())
    aliases = aliaslib.parse_aliases(
        ['{"name": "t4", "vgpu_type": "GRID T4-8Q"}'])
    claim = stats.apply_requests(requestslib.requests_from_spec(
        't4:4', aliases)[0], instance='big')
    assert sorted(claim.pgpus) == sorted(list(host.pgpus) * 2)
    assert not stats.support_requests(requestslib.requests_from_spec(
        't4:1', aliases)[0])


def test_a_pinned_instance_live_migrates_to_the_same_address(pool_sim):
    """Pinned groups span members by PCI address, so XAPI (which keeps a
    VGPU's group inside a pool) lands it on the destination's pGPU of
    that group, and the destination's claim counted exactly that one."""
    client = sessionlib.XapiClient(pool_sim.url, 'root', 'xenroot')
    xapi = login(pool_sim.url).xenapi
    pool = pinning.read_pool(client)
    pinning.apply(client, pool, pinning.propose(pool))
    builders = {}
    for name in ('xs-pool-01', 'xs-pool-02'):
        host = xapi.host.get_by_name_label(name)[0]
        builders[name] = lifecycle.Builder(client, statslib.VgpuStats(
            reader.read_inventory(client, host)), host)
    a, b = builders['xs-pool-01'], builders['xs-pool-02']
    vm = new_vm(xapi, 'mover')
    a.build('mover', vm, ask('4q:1'))
    vgpu = xapi.VM.get_VGPUs(vm)[0]
    source = xapi.VGPU.get_resident_on(vgpu)
    a.live_migrate('mover', vm, b)
    landed = xapi.VGPU.get_resident_on(vgpu)
    assert xapi.PGPU.get_host(landed) == b.host_ref
    assert xapi.PGPU.get_GPU_group(landed) == xapi.PGPU.get_GPU_group(
        source)
    assert xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(landed)) == (
        xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(source)))
    owed = [s for s in b.stats.devices() if s.claimed_by == 'mover']
    assert [s.pgpu_ref for s in owed] == [landed]
    client.close()


def test_pinned_slots_carry_their_pgpu_numa_node(pinned_mixed):
    """Item 13: every slot of a pinned pGPU says its NUMA node."""
    _, builder = pinned_mixed
    devices = [d.as_nova_device() for d in builder.stats.devices()]
    assert devices and all(d['numa_node'] in (0, 1) for d in devices)
    assert {d['numa_node'] for d in devices
            if d['parent_addr'] == '0000:87:00.0'} == {1}


def test_a_snapshot_copy_is_not_owed(m60_sim):
    """Item 4: VM.snapshot copies the VGPU with this project's tags; the
    halted copy must not hold capacity (XAPI would start an 8Q VM)."""
    xapi = login(m60_sim.url).xenapi
    client = sessionlib.XapiClient(m60_sim.url, 'root', 'xenroot')
    builder = lifecycle.Builder.for_host(client,
                                         identity.resolve_host(client))
    vm = new_vm(xapi, 'A')
    builder.build('A', vm, ask('8q:1'))
    snapshot = xapi.VM.snapshot(vm, 'A-snap')
    assert xapi.VM.get_VGPUs(snapshot)
    builder.sync()
    claim = builder.stats.apply_requests(ask('8q:1'), instance='B')
    assert claim.pgpus[0] != xapi.VGPU.get_resident_on(
        xapi.VM.get_VGPUs(vm)[0])
    client.close()


def test_a_shared_group_search_is_cut_at_its_time_budget():
    """Item 14: the search over start orders stops at its time budget
    and says so; the claims it already held stay."""
    host = HostBuilder()
    group = host.group('m60', 'breadth_first')
    for bus in range(0x80, 0x90):
        host.pgpu(group, '0000:%02x:00.0' % bus)
    names = ('GRID M60-1Q', 'GRID M60-4Q', 'GRID M60-8Q')
    for index in range(12):
        host.vgpu(group, names[index % 3], instance='stopped-%d' % index)
    stats = statslib.VgpuStats(host.inventory(), seconds=1e-9)
    aliases = aliaslib.parse_aliases(
        ['{"name": "1q", "vgpu_type": "GRID M60-1Q"}'])
    with pytest.raises(exception.ClaimRefused) as info:
        stats.apply_requests(requestslib.requests_from_spec(
            '1q:1', aliases)[0], instance='late')
    assert 'ran out of time' in str(info.value)
    assert stats.claims == {}
    patient = statslib.VgpuStats(host.inventory())
    assert patient.support_requests(requestslib.requests_from_spec(
        '1q:1', aliases)[0])


def test_a_pin_cut_short_is_finished_by_running_it_again(pool_sim):
    """A failure halfway (here the fifth pGPU move) leaves a partial
    layout; the same command again finishes it, reusing the groups it
    made, and a third run has nothing to do."""
    client = sessionlib.XapiClient(pool_sim.url, 'root', 'xenroot')
    pool_sim.faults.fail_call('PGPU.set_GPU_group', 5, 'INTERNAL_ERROR',
                              'cut')
    pool = pinning.read_pool(client)
    with pytest.raises(exception.XapiError):
        pinning.apply(client, pool, pinning.propose(pool))
    pool = pinning.read_pool(client)
    assert pinning.propose(pool) != []
    pinning.apply(client, pool, pinning.propose(pool))
    pool = pinning.read_pool(client)
    assert pinning.propose(pool) == []
    names = sorted(g.name_label for g in pool.groups.values())
    assert len(names) == len(set(names)) == 4  # no group made twice
    client.close()


def test_a_builders_topology_follows_a_removed_pgpu(sim):
    # xapi drops the PGPU of a GPU gone at its next start (update_gpus):
    # the Builder's next sync asks its dom0 plugin about the pGPUs left.
    client = sessionlib.XapiClient(sim.url, 'root', 'xenroot')
    builder = lifecycle.Builder.for_host(client, identity.resolve_host(
        client))
    before = builder.stats.inventory
    gone = sorted(before.pgpus, key=before.address)[0]
    address = before.address(gone)
    assert address in before.topology.devices
    with sim.db.lock:
        sim.db.destroy('PGPU', gone)
    builder.sync()
    after = builder.stats.inventory
    assert gone not in after.pgpus
    assert set(after.topology.devices) == {
        after.address(p) for p in after.pgpus}
    client.close()
