"""A simulated pool: members, the master, pool-wide capacity and VM.start."""

import threading
import time

import XenAPI

from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator.server import Simulator
from tests.conftest import failure
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import resident_pgpu
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu

NULL = 'OpaqueRef:NULL'
POOL = profiles.load('pool')
HOSTS = len(POOL['hosts'])
# One M60-8Q fills a pGPU, so the pool holds one per pGPU.
PGPUS = sum(len(host['pgpus']) for host in POOL['hosts'])


def test_members_listen_on_their_own_addresses(pool_sim):
    urls = pool_sim.urls
    assert len(urls) == HOSTS
    assert urls[0] == pool_sim.url
    xapi = login(pool_sim.url).xenapi
    addresses = {r['address'] for r in xapi.host.get_all_records().values()}
    assert addresses == {'127.0.0.1', '127.0.0.2', '127.0.0.3'}


def test_login_to_member_gives_host_is_slave(pool_sim):
    session = XenAPI.Session(pool_sim.urls[1])
    details = failure(session.login_with_password, 'root', 'xenroot', '1.0',
                      'tests')
    assert details == ['HOST_IS_SLAVE', '127.0.0.1']


def test_group_capacity_is_pool_wide(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60 = group_of(xapi, 'Tesla M60')
    assert len(xapi.GPU_group.get_PGPUs(m60)) == PGPUS
    t8q = vgpu_type(xapi, 'GRID M60-8Q')
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == str(PGPUS)


def _start(xapi, group, model, count):
    hosts = []
    for i in range(count):
        vm, vgpu = vm_with_vgpu(xapi, group, vgpu_type(xapi, model),
                                'vm%d' % i)
        xapi.VM.start(vm, False, False)
        hosts.append(xapi.VM.get_resident_on(vm))
        assert xapi.PGPU.get_host(resident_pgpu(xapi, vgpu)) == hosts[-1]
    return hosts


def test_depth_first_start_fills_a_host(pool_sim):
    xapi = login(pool_sim.url).xenapi
    per_host = len(POOL['hosts'][0]['pgpus'])
    hosts = _start(xapi, group_of(xapi, 'Tesla M60'), 'GRID M60-8Q',
                   per_host)
    assert len(set(hosts)) == 1


def test_breadth_first_start_spreads_over_hosts(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60 = group_of(xapi, 'Tesla M60')
    xapi.GPU_group.set_allocation_algorithm(m60, 'breadth_first')
    hosts = _start(xapi, m60, 'GRID M60-8Q', HOSTS)
    assert len(set(hosts)) == HOSTS


def test_full_pool_gives_no_hosts_available(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60 = group_of(xapi, 'Tesla M60')
    _start(xapi, m60, 'GRID M60-8Q', PGPUS)
    vm, _ = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-8Q'), 'last')
    assert failure(xapi.VM.start, vm, False, False) == ['NO_HOSTS_AVAILABLE']
    member = [h for h in xapi.host.get_all()
              if xapi.host.get_address(h) == '127.0.0.2'][0]
    assert failure(xapi.VM.start_on, vm, member, False, False) == [
        'VM_REQUIRES_VGPU', vm, m60, vgpu_type(xapi, 'GRID M60-8Q')]


def test_start_on_picks_pgpus_of_that_host(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60 = group_of(xapi, 'Tesla M60')
    member = [h for h in xapi.host.get_all()
              if xapi.host.get_address(h) == '127.0.0.3'][0]
    vm, vgpu = vm_with_vgpu(xapi, m60, vgpu_type(xapi, 'GRID M60-1Q'))
    xapi.VM.start_on(vm, member, False, False)
    assert xapi.PGPU.get_host(resident_pgpu(xapi, vgpu)) == member


def _host(xapi, name):
    return xapi.host.get_by_name_label(name)[0]


def two_hosts(first=None, second=None):
    """Two hosts with an M60 board and a T4 each, one group per model."""
    def host(name, extra):
        return dict({'name': name, 'pgpus': [
            {'address': '0000:86:00.0', 'model': 'tesla-m60', 'group': 'M60'},
            {'address': '0000:87:00.0', 'model': 'tesla-m60', 'group': 'M60'},
            {'address': '0000:3b:00.0', 'model': 'tesla-t4', 'group': 'T4'}]},
            **(extra or {}))
    return {'hosts': [host('a', first), host('b', second)]}


def test_start_keeps_only_hosts_where_every_vgpu_fits():
    with Simulator(two_hosts()) as sim:
        xapi = login(sim.url).xenapi
        t4, t8q = group_of(xapi, 'Tesla T4'), vgpu_type(xapi, 'GRID T4-8Q')
        filler, _ = vm_with_vgpu(xapi, t4, t8q, 'filler')
        xapi.VM.start_on(filler, _host(xapi, 'a'), False, False)
        pair, _ = vm_with_vgpu(xapi, t4, t8q, 'pair')
        xapi.VGPU.create(pair, t4, '0', {}, t8q)
        # depth_first would rank host a (fuller) first, but only one of
        # the two vGPUs fits there.
        xapi.VM.start(pair, False, False)
        assert xapi.VM.get_resident_on(pair) == _host(xapi, 'b')


def test_start_prefers_affinity_among_equals(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60, t8q = group_of(xapi, 'Tesla M60'), vgpu_type(xapi, 'GRID M60-8Q')
    first, _ = vm_with_vgpu(xapi, m60, t8q, 'first')
    xapi.VM.set_affinity(first, _host(xapi, 'xs-pool-02'))
    xapi.VM.start(first, False, False)
    assert xapi.VM.get_resident_on(first) == _host(xapi, 'xs-pool-02')
    # xs-pool-02 is now the fullest: depth_first ranks it alone first, and
    # affinity only chooses within a group of equal hosts.
    second, _ = vm_with_vgpu(xapi, m60, t8q, 'second')
    xapi.VM.set_affinity(second, _host(xapi, 'xs-pool-03'))
    xapi.VM.start(second, False, False)
    assert xapi.VM.get_resident_on(second) == _host(xapi, 'xs-pool-02')
    xapi.GPU_group.set_allocation_algorithm(m60, 'breadth_first')
    third, _ = vm_with_vgpu(xapi, m60, t8q, 'third')
    xapi.VM.set_affinity(third, _host(xapi, 'xs-pool-03'))
    xapi.VM.start(third, False, False)
    assert xapi.VM.get_resident_on(third) == _host(xapi, 'xs-pool-03')


def _running(xapi, host, model='GRID M60-8Q', name='moving'):
    group = group_of(xapi, 'Tesla %s' % model.split()[1].split('-')[0])
    vm, vgpu = vm_with_vgpu(xapi, group, vgpu_type(xapi, model), name)
    xapi.VM.start_on(vm, host, False, False)
    return vm, vgpu


def test_pool_migrate_moves_the_vgpu_and_frees_the_source(pool_sim):
    pool_sim.start_delay_ms = 300
    xapi = login(pool_sim.url).xenapi
    m60, t8q = group_of(xapi, 'Tesla M60'), vgpu_type(xapi, 'GRID M60-8Q')
    source, target = _host(xapi, 'xs-pool-01'), _host(xapi, 'xs-pool-02')
    vm, vgpu = _running(xapi, source)
    before = xapi.VGPU.get_resident_on(vgpu)
    mover = threading.Thread(target=login(pool_sim.url).xenapi.VM.pool_migrate,
                             args=(vm, target, {}))
    mover.start()
    while xapi.VGPU.get_scheduled_to_be_resident_on(vgpu) == NULL:
        time.sleep(0.01)
    # Both ends are held while the VM moves.
    destination = xapi.VGPU.get_scheduled_to_be_resident_on(vgpu)
    assert xapi.PGPU.get_host(destination) == target
    assert xapi.PGPU.get_remaining_capacity(before, t8q) == '0'
    assert xapi.PGPU.get_remaining_capacity(destination, t8q) == '0'
    mover.join(10)
    assert not mover.is_alive()
    assert xapi.VM.get_resident_on(vm) == target
    assert xapi.VGPU.get_resident_on(vgpu) == destination
    assert xapi.PGPU.get_remaining_capacity(before, t8q) == '1'
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == str(
        PGPUS - 1)


def test_a_failed_move_leaves_both_ends_as_they_were(pool_sim):
    xapi = login(pool_sim.url).xenapi
    source, target = _host(xapi, 'xs-pool-01'), _host(xapi, 'xs-pool-02')
    vm, vgpu = _running(xapi, source)
    before = xapi.VGPU.get_record(vgpu)
    pool_sim.faults.fail_call('VM.pool_migrate@plug', 1, 'VM_MIGRATE_FAILED',
                              vm, source, target, 'connection reset')
    assert failure(xapi.VM.pool_migrate, vm, target, {})[0] == (
        'VM_MIGRATE_FAILED')
    assert xapi.VGPU.get_record(vgpu) == before
    assert xapi.VM.get_resident_on(vm) == source
    m60, t8q = group_of(xapi, 'Tesla M60'), vgpu_type(xapi, 'GRID M60-8Q')
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == str(
        PGPUS - 1)
    xapi.VM.pool_migrate(vm, target, {})
    assert xapi.VM.get_resident_on(vm) == target


def test_pool_migrate_to_a_full_host(pool_sim):
    xapi = login(pool_sim.url).xenapi
    source, target = _host(xapi, 'xs-pool-01'), _host(xapi, 'xs-pool-02')
    for index in range(len(POOL['hosts'][1]['pgpus'])):
        _running(xapi, target, name='filler%d' % index)
    vm, vgpu = _running(xapi, source)
    m60, t8q = group_of(xapi, 'Tesla M60'), vgpu_type(xapi, 'GRID M60-8Q')
    assert failure(xapi.VM.pool_migrate, vm, target, {}) == [
        'VM_REQUIRES_VGPU', vm, m60, t8q]
    assert xapi.VGPU.get_scheduled_to_be_resident_on(vgpu) == NULL


def test_an_older_host_driver_is_incompatible():
    profile = two_hosts(second={'nvidia_driver': '470.82'})
    with Simulator(profile) as sim:
        xapi = login(sim.url).xenapi
        a, b = _host(xapi, 'a'), _host(xapi, 'b')
        vm, vgpu = _running(xapi, a)
        assert failure(xapi.VM.pool_migrate, vm, b, {}) == [
            'VGPU_DESTINATION_INCOMPATIBLE', 'host-driver', vgpu, b]
        assert xapi.VM.get_resident_on(vm) == a


def test_a_guest_driver_that_cannot_migrate(pool_sim):
    xapi = login(pool_sim.url).xenapi
    source, target = _host(xapi, 'xs-pool-01'), _host(xapi, 'xs-pool-02')
    vm, _ = _running(xapi, source)
    xapi.VM.hard_shutdown(vm)
    pool_sim.set_guest(vm, guest_driver_migratable=False)
    xapi.VM.start_on(vm, source, False, False)
    assert failure(xapi.VM.pool_migrate, vm, target, {}) == [
        'VGPU_GUEST_DRIVER_LIMIT', 'guest-driver', vm, target]


def test_migrate_send_within_the_pool(pool_sim):
    xapi = login(pool_sim.url).xenapi
    source, target = _host(xapi, 'xs-pool-01'), _host(xapi, 'xs-pool-03')
    vm, vgpu = _running(xapi, source)
    network = xapi.network.get_all()[0]
    dest = xapi.host.migrate_receive(target, network, {})
    empty = xapi.GPU_group.create('empty', '', {})
    assert failure(xapi.VM.assert_can_migrate, vm, dest, True, {}, {}, {},
                   {vgpu: empty}) == ['VM_REQUIRES_GPU', vm, empty]
    m60 = group_of(xapi, 'Tesla M60')
    xapi.VM.assert_can_migrate(vm, dest, True, {}, {}, {}, {vgpu: m60})
    assert xapi.VM.get_resident_on(vm) == source
    xapi.VM.migrate_send(vm, dest, True, {}, {}, {}, {vgpu: m60})
    assert xapi.VM.get_resident_on(vm) == target
    assert xapi.PGPU.get_host(xapi.VGPU.get_resident_on(vgpu)) == target
    assert 'maps_to' not in xapi.VGPU.get_other_config(vgpu)


def test_migrate_send_to_another_pool_is_refused(pool_sim):
    xapi = login(pool_sim.url).xenapi
    vm, vgpu = _running(xapi, _host(xapi, 'xs-pool-01'))
    dest = {'host': 'OpaqueRef:00000000-0000-0000-0000-00000000beef',
            'master': 'https://elsewhere/', 'session_id': 'x'}
    assert failure(xapi.VM.migrate_send, vm, dest, True, {}, {}, {}, {}) == [
        'VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED']
