"""A simulated pool: members, the master, pool-wide capacity and VM.start."""

import XenAPI

from tests.conftest import failure
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import resident_pgpu
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu


def test_members_listen_on_their_own_addresses(pool_sim):
    urls = pool_sim.urls
    assert len(urls) == 3
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
    assert len(xapi.GPU_group.get_PGPUs(m60)) == 12
    t8q = vgpu_type(xapi, 'GRID M60-8Q')
    assert xapi.GPU_group.get_remaining_capacity(m60, t8q) == '12'


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
    hosts = _start(xapi, group_of(xapi, 'Tesla M60'), 'GRID M60-8Q', 4)
    assert len(set(hosts)) == 1


def test_breadth_first_start_spreads_over_hosts(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60 = group_of(xapi, 'Tesla M60')
    xapi.GPU_group.set_allocation_algorithm(m60, 'breadth_first')
    hosts = _start(xapi, m60, 'GRID M60-8Q', 3)
    assert len(set(hosts)) == 3


def test_full_pool_gives_no_hosts_available(pool_sim):
    xapi = login(pool_sim.url).xenapi
    m60 = group_of(xapi, 'Tesla M60')
    _start(xapi, m60, 'GRID M60-8Q', 12)
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
