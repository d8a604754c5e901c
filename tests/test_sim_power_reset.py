"""VM.power_state_reset, as xapi_vm.ml answers it: only for a VM whose
host is down (HOST_IS_LIVE, DOMAIN_EXISTS otherwise), never for dom0."""

from tests import simhelpers
from tests.conftest import failure
from tests.conftest import login


def host_down(sim, host):
    """The host stopped answering: host_metrics.live false."""
    with sim.db.lock:
        sim.db.set('host_metrics', sim.db.get('host', host)['metrics'],
                   'live', False)


def test_reset_only_when_the_host_is_down(pool_sim):
    xapi = login(pool_sim.url).xenapi
    master = xapi.pool.get_master(xapi.pool.get_all()[0])
    member = [h for h in xapi.host.get_all() if h != master][0]
    vm = simhelpers.new_vm(xapi)
    xapi.VM.start_on(vm, member, False, False)
    assert failure(xapi.VM.power_state_reset, vm) == ['HOST_IS_LIVE',
                                                      member]
    on_master = simhelpers.new_vm(xapi, 'on-master')
    xapi.VM.start_on(on_master, master, False, False)
    assert failure(xapi.VM.power_state_reset, on_master) == [
        'DOMAIN_EXISTS', on_master]
    host_down(pool_sim, member)
    xapi.VM.power_state_reset(vm)
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert xapi.VM.get_resident_on(vm) == 'OpaqueRef:NULL'
    dom0 = [ref for ref, rec in xapi.VM.get_all_records().items()
            if rec['is_control_domain']][0]
    assert failure(xapi.VM.power_state_reset, dom0) == [
        'CANNOT_RESET_CONTROL_DOMAIN', dom0]
