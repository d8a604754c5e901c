"""Reboots, pause, guest-initiated stops and allowed operations.

xapi_vm.ml and xapi_xenops.ml (reboot keeps the domain's devices, so
VGPUs stay resident), xapi_vm_lifecycle.ml (allowed power states,
check_op_for_feature: VM_LACKS_FEATURE), xenopsd's actions_after_*.
"""

import pytest

from nova_xenapi_vgpu.simulator import server
from tests.conftest import failure
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu


@pytest.fixture
def m60():
    with server.Simulator('m60') as sim:
        yield sim, login(sim.url).xenapi


def running_vgpu_vm(xapi):
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-4Q'))
    xapi.VM.start(vm, False, False)
    return vm, vgpu


@pytest.mark.parametrize('call', ['clean_reboot', 'hard_reboot'])
def test_reboot_keeps_vgpus_resident(m60, call):
    _, xapi = m60
    vm, vgpu = running_vgpu_vm(xapi)
    pgpu, domid = xapi.VGPU.get_resident_on(vgpu), xapi.VM.get_domid(vm)
    getattr(xapi.VM, call)(vm)
    assert xapi.VM.get_power_state(vm) == 'Running'
    assert xapi.VGPU.get_resident_on(vgpu) == pgpu
    assert xapi.VGPU.get_currently_attached(vgpu) is True
    assert xapi.VM.get_domid(vm) != domid


def test_reboots_need_a_running_vm(m60):
    _, xapi = m60
    vm, _ = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                         vgpu_type(xapi, 'GRID M60-4Q'))
    assert failure(xapi.VM.clean_reboot, vm) == [
        'VM_BAD_POWER_STATE', vm, 'running', 'halted']
    assert failure(xapi.VM.hard_reboot, vm) == [
        'VM_BAD_POWER_STATE', vm, 'paused, running', 'halted']


def test_pause_and_unpause(m60):
    _, xapi = m60
    vm, vgpu = running_vgpu_vm(xapi)
    assert 'unpause' not in xapi.VM.get_allowed_operations(vm)
    xapi.VM.pause(vm)
    assert xapi.VM.get_power_state(vm) == 'Paused'
    assert 'unpause' in xapi.VM.get_allowed_operations(vm)
    assert 'clean_shutdown' not in xapi.VM.get_allowed_operations(vm)
    assert failure(xapi.VM.pause, vm) == [
        'VM_BAD_POWER_STATE', vm, 'running', 'paused']
    assert xapi.VGPU.get_currently_attached(vgpu) is True
    xapi.VM.hard_reboot(vm)
    assert xapi.VM.get_power_state(vm) == 'Running'
    xapi.VM.pause(vm)
    xapi.VM.unpause(vm)
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_clean_ops_need_pv_drivers(m60):
    sim, xapi = m60
    vm, _ = running_vgpu_vm(xapi)
    sim.set_guest(vm, pv_drivers=False)
    assert failure(xapi.VM.clean_shutdown, vm) == ['VM_LACKS_FEATURE', vm]
    assert failure(xapi.VM.clean_reboot, vm) == ['VM_LACKS_FEATURE', vm]
    allowed = set(xapi.VM.get_allowed_operations(vm))
    assert {'hard_shutdown', 'hard_reboot', 'pause'} <= allowed
    assert not {'clean_shutdown', 'clean_reboot', 'start'} & allowed
    xapi.VM.hard_reboot(vm)
    assert xapi.VM.get_power_state(vm) == 'Running'


@pytest.mark.parametrize('reason, action, state', [
    ('shutdown', 'destroy', 'Halted'), ('reboot', 'restart', 'Running'),
    ('reboot', 'destroy', 'Halted'), ('crash', 'preserve', 'Paused'),
    ('crash', 'restart', 'Running')])
def test_actions_after_a_guest_stops(m60, reason, action, state):
    sim, xapi = m60
    vm, vgpu = running_vgpu_vm(xapi)
    getattr(xapi.VM, 'set_actions_after_%s' % reason)(vm, action)
    assert sim.guest_stopped(vm, reason) == state
    assert xapi.VM.get_power_state(vm) == state
    attached = xapi.VGPU.get_currently_attached(vgpu)
    assert attached is (state != 'Halted')
