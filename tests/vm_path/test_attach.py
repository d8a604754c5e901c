"""Issue 16, item 9: ``attach`` is idempotent per instance; a rollback
destroys only what that call made; devices are the VM's free ones."""

import concurrent.futures
import dataclasses
import time

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from nova_xenapi_vgpu.xapi import records
from tests.simhelpers import group_of
from tests.simhelpers import new_vm
from tests.simhelpers import vgpu_type
from tests.vm_path.helpers import ask
from tests.vm_path.helpers import models
from tests.vm_path.helpers import tagged


def test_a_second_attach_of_the_same_claim_is_a_no_op(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'twice')
    first = build.attach('twice', vm, ask('t4-16q:1'))
    creates = sim.faults.calls['VGPU.create']
    again = build.attach('twice', vm, ask('t4-16q:1'))
    assert again == first == tagged(xapi, 'twice')
    assert sim.faults.calls['VGPU.create'] == creates
    assert build.stats.claims == {}


def test_a_refused_attach_never_destroys_an_earlier_one(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'first')
    (first,) = build.attach('first', vm, ask('t4-16q:1'))
    # The same instance asks for another type: refused, and nothing the
    # first attach made goes.
    with pytest.raises((exception.VgpuAttachRefused, exception.XapiError,
                        exception.ClaimRefused)):
        build.attach('first', vm, ask('4q:1'))
    assert xapi.VM.get_VGPUs(vm) == [first]
    assert tagged(xapi, 'first') == [first]


def half_attached(sim, build, instance, vm, spec):
    """An attach of ``spec`` whose second VGPU.create fails and whose
    rollback cannot destroy the first: that one is left; the error."""
    sim.faults.fail_call('VGPU.create', 2, 'INTERNAL_ERROR', 'injected')
    sim.faults.fail_call('VGPU.destroy', 1, 'INTERNAL_ERROR', 'stuck')
    with pytest.raises(exception.XapiError) as info:
        build.attach(instance, vm, ask(spec))
    return info.value


def test_a_retry_after_a_partial_rollback_completes_without_destroying(
        world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'partial')
    error = half_attached(sim, build, 'partial', vm, 't4:2')
    assert error.details == ['INTERNAL_ERROR', 'injected']
    (left,) = tagged(xapi, 'partial')  # the rollback could not destroy it
    destroys = sim.faults.calls['VGPU.destroy']
    made = build.attach('partial', vm, ask('t4:2'))
    assert len(made) == 2 and left in made
    assert sorted(xapi.VGPU.get_device(v) for v in made) == ['0', '1']
    assert sim.faults.calls['VGPU.destroy'] == destroys
    build.start('partial', vm)
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_devices_are_the_vms_free_ones(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'shared')
    build.attach('one', vm, ask('t4-4q:1'))
    sim.faults.fail_call('VGPU.create', 2, 'INTERNAL_ERROR', 'injected')
    with pytest.raises(exception.XapiError):
        build.attach('two', vm, ask('t4-4q:2'))
    assert len(tagged(xapi, 'one')) == 1 and tagged(xapi, 'two') == []
    made = build.attach('two', vm, ask('t4-4q:2'))
    assert sorted(xapi.VGPU.get_device(v) for v in xapi.VM.get_VGPUs(
        vm)) == ['0', '1', '2'] and len(made) == 2


def test_vgpus_come_in_device_order_not_in_ref_or_text_order():
    def vgpu(ref, device):
        return records.Vgpu(ref, 'u', 'OpaqueRef:vm', 'OpaqueRef:g' + device,
                            'OpaqueRef:t', device, False, None, {})
    vgpus = {ref: vgpu(ref, device) for ref, device in (
        ('OpaqueRef:a', '10'), ('OpaqueRef:b', '2'), ('OpaqueRef:c', '0'))}
    assert vgpulib.in_device_order(vgpus) == [
        'OpaqueRef:c', 'OpaqueRef:b', 'OpaqueRef:a']
    assert vgpulib.demand_of(vgpus) == tuple(
        ('OpaqueRef:g' + d, 'OpaqueRef:t') for d in ('0', '2', '10'))


def test_a_vgpu_mix_with_one_already_on_the_vm_is_refused_before_writes(
        world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'beside')
    xapi.VGPU.create(vm, group_of(xapi, 'T4'), '0', {},  # not this project's
                     vgpu_type(xapi, 'GRID T4-8Q'))
    creates = sim.faults.calls['VGPU.create']
    with pytest.raises(exception.VgpuAttachRefused) as info:
        build.attach('beside', vm, ask('8q:1'))
    assert str(info.value) == (
        'Cannot give VM beside vGPUs: XAPI allows no VM these vGPUs '
        'together: GRID M60-8Q, GRID T4-8Q (compatible_types_in_vm)')
    assert sim.faults.calls['VGPU.create'] == creates
    assert build.stats.claims == {} and len(xapi.VM.get_VGPUs(vm)) == 1


def test_create_alone_makes_one_tagged_vgpu_per_slot_in_device_order(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'direct')  # the compute driver's path: Nova's slots
    slots = build.stats.consume_requests(ask('t4:2'), None, 'direct')
    made = vgpulib.create(build.client, build.host_uuid, 'direct', vm, slots)
    assert [xapi.VGPU.get_device(v) for v in made] == ['0', '1']
    assert [xapi.VGPU.get_other_config(v)['nova_xenapi_vgpu_device']
            for v in made] == [s.uuid for s in slots]
    assert sorted(made) == tagged(xapi, 'direct')


@pytest.mark.parametrize('domain_type, boot_policy, hvm', [
    ('hvm', '', True),  # domain_type decides where XAPI has it
    ('', 'BIOS order', True),  # older XAPI: the boot policy decides
    ('', '', False), ('pv', 'BIOS order', False)])
def test_hvm_is_read_as_xapi_versions_record_it(world, domain_type,
                                                boot_policy, hvm):
    sim, xapi, build = world
    record = dataclasses.replace(
        vgpulib.read_vm(build.client, new_vm(xapi, 'guest')),
        domain_type=domain_type, HVM_boot_policy=boot_policy)
    if hvm:
        vgpulib.check_attachable(build.stats.inventory, record, [])
        return
    with pytest.raises(exception.VgpuAttachRefused) as info:
        vgpulib.check_attachable(build.stats.inventory, record, [])
    assert 'it is not HVM' in str(info.value)


def test_an_instance_holding_more_vgpus_than_asked_is_refused(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'more')
    held = build.attach('more', vm, ask('t4:2'))
    creates = sim.faults.calls['VGPU.create']
    with pytest.raises(exception.VgpuAttachRefused) as info:
        build.attach('more', vm, ask('t4:1'))
    assert str(info.value) == (
        'Cannot give VM %s vGPUs: the instance already has vGPU(s) on it '
        '(GRID T4-8Q, GRID T4-8Q); detach them first' % vm)
    assert sim.faults.calls['VGPU.create'] == creates
    assert sorted(xapi.VM.get_VGPUs(vm)) == sorted(held)
    assert build.stats.claims == {}


def test_completing_a_partial_attach_leaves_no_claim_behind(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'half')
    half_attached(sim, build, 'half', vm, 't4-4q:3')
    (left,) = tagged(xapi, 'half')
    # The completion fails too: its own claim goes with what it made.
    sim.faults.fail_call('VGPU.create', 2, 'INTERNAL_ERROR', 'again')
    with pytest.raises(exception.XapiError) as info:
        build.attach('half', vm, ask('t4-4q:3'))
    assert info.value.details == ['INTERNAL_ERROR', 'again']
    assert tagged(xapi, 'half') == [left] and build.stats.claims == {}
    made = build.attach('half', vm, ask('t4-4q:3'))
    assert len(made) == 3 and build.stats.claims == {}
    assert sum(s.claimed_by == 'half' for s in build.stats.devices()) == 3


def test_a_completion_adds_the_missing_type_not_more_of_the_held_one(
        world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'mixed')
    xapi.VGPU.create(vm, group_of(xapi, 'T4'), '0', {
        tags.HOST: build.host_uuid, tags.INSTANCE: 'mixed'},
        vgpu_type(xapi, 'GRID T4-8Q'))
    creates = sim.faults.calls['VGPU.create']
    # XAPI gives no VM T4-16Q beside T4-8Q: the missing one is refused,
    # never replaced by a second of the type the VM holds.
    with pytest.raises((exception.ClaimRefused,
                        exception.VgpuAttachRefused)):
        build.attach('mixed', vm, ask('t4-16q:1,t4:1'))
    assert sim.faults.calls['VGPU.create'] == creates
    assert models(xapi, vm) == ['GRID T4-8Q']


@pytest.mark.parametrize('taken, given', [
    (('0', '1', '3'), ['2', '4']),  # the lowest numbers the VM has free
    (tuple(str(d) for d in range(18)), ['18', '19']),  # the last allowed
])
def test_vgpus_take_the_device_numbers_the_vm_has_free(world, taken, given):
    sim, xapi, build = world
    vm = new_vm(xapi, 'devices')
    t4 = vgpu_type(xapi, 'GRID T4-4Q')
    for device in taken:  # not this project's, on a halted VM
        xapi.VGPU.create(vm, group_of(xapi, 'T4'), device, {}, t4)
    made = build.attach('devices', vm, ask('t4-4q:2'))
    assert [xapi.VGPU.get_device(v) for v in made] == given


def test_a_completion_keeps_its_slot_claimed_while_xapi_creates(world):
    sim, xapi, build = world
    vm = new_vm(xapi, 'slow')
    half_attached(sim, build, 'slow', vm, 't4-4q:2')
    creates = sim.faults.calls['VGPU.create']
    sim.faults.slow_call('VGPU.create', 500)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(build.attach, 'slow', vm, ask('t4-4q:2'))
        while sim.faults.calls['VGPU.create'] == creates:
            time.sleep(0.005)
        # Nova's periodic refresh while XAPI creates the missing VGPU:
        # the VGPU already there must not end the completion's claim.
        build.sync()
        during = sorted(s.status for s in build.stats.devices())
        assert len(done.result()) == 2
    assert during == sorted(s.status for s in build.stats.devices())
