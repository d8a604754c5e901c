"""The VM path over the simulator: build, roll back, stop, detach, orphans."""

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from nova_xenapi_vgpu.xapi import session as sessionlib
from tests.conftest import login
from tests.simhelpers import new_vm

ALIASES = aliaslib.parse_aliases([
    '{"name": "4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "8q", "vgpu_type": "GRID M60-8Q"}',
    '{"name": "t4", "vgpu_type": "GRID T4-8Q"}',
    '{"name": "gvt", "vgpu_type": "Intel GVT-g 128M"}'])
WRITES = ('VGPU.create', 'VGPU.destroy', 'Async.VM.start_on',
          'VM.start_on')


def ask(spec):
    return requestslib.requests_from_spec(spec, ALIASES)[0]


@pytest.fixture
def world(sim):
    xapi = login(sim.url).xenapi
    client = sessionlib.XapiClient(sim.url, 'root', 'xenroot',
                                   retry_interval=0.01)
    host = identity.resolve_host(client)
    stats = statslib.VgpuStats(reader.read_inventory(client, host))
    yield sim, xapi, lifecycle.Builder(client, stats, host)
    client.close()


def tagged(xapi, instance):
    return [r for r, v in xapi.VGPU.get_all_records().items()
            if v['other_config'].get(tags.INSTANCE) == instance]


def test_a_build_creates_tagged_vgpus_and_follows_xapi(world):
    sim, xapi, builder = world
    vm = new_vm(xapi, 'i-1')
    pgpus = builder.build('i-1', vm, ask('t4:2'))
    vgpus = tagged(xapi, 'i-1')
    assert len(vgpus) == 2 and xapi.VM.get_power_state(vm) == 'Running'
    assert sorted(xapi.VGPU.get_device(v) for v in vgpus) == ['0', '1']
    assert sorted(xapi.VGPU.get_resident_on(v) for v in vgpus) == sorted(
        pgpus)
    config = xapi.VGPU.get_other_config(vgpus[0])
    assert config[tags.HOST] == builder.host_uuid
    assert config[tags.DEVICE] in {s.uuid for s in builder.stats.devices()}
    builder.stats.refresh(reader.refresh(builder.client,
                                         builder.stats.inventory))
    assert builder.stats.claims == {}
    allocated = [s for s in builder.stats.devices()
                 if s.status == 'allocated']
    assert sorted(s.pgpu_ref for s in allocated) == sorted(pgpus)
    assert {s.claimed_by for s in allocated} == {'i-1'}


@pytest.mark.parametrize('case, make, spec, words', [
    ('running', lambda x: _running(x), '4q:1', [
        'Cannot give VM running vGPUs: it is running; vGPUs are added to '
        'halted VMs only']),
    ('pv', lambda x: x.VM.create({'name_label': 'pv'}), '4q:1', [
        'Cannot give VM pv vGPUs: it is not HVM; XAPI gives vGPUs to HVM '
        'guests only (FEATURE_REQUIRES_HVM)']),
    ('mix', lambda x: new_vm(x, 'mix'), '8q:1,t4:1',
     ['compatible_types_in_vm']),
])
def test_refusals_come_before_any_change(world, case, make, spec, words):
    sim, xapi, builder = world
    vm = make(xapi)
    before = {m: sim.faults.calls[m] for m in WRITES}
    with pytest.raises((exception.VgpuAttachRefused,
                        exception.ClaimRefused)) as info:
        builder.attach(case, vm, ask(spec))
    for word in words:
        assert word in str(info.value)
    assert {m: sim.faults.calls[m] for m in WRITES} == before
    assert builder.stats.claims == {}


def _running(xapi):
    vm = new_vm(xapi, 'running')
    xapi.VM.start(vm, False, False)
    return vm


FAULTS = [
    ('fail', 'VM.get_record', 1),
    ('fail', 'VGPU.create', 1),
    ('fail', 'VGPU.create', 2),
    ('lose', 'VGPU.create', 1),
    ('fail', 'Async.VM.start_on', 1),
    ('fail', 'VM.start_on', 1),
    ('fail', 'VM.start_on@plug', 1),
    ('fail', 'VGPU.get_all_records_where', 1),
]


@pytest.mark.parametrize('kind, method, nth', FAULTS)
def test_a_failure_anywhere_leaves_nothing_and_a_retry_works(
        world, kind, method, nth):
    sim, xapi, builder = world
    vm = new_vm(xapi, 'i-2')
    if kind == 'fail':
        sim.faults.fail_call(method, nth, 'INTERNAL_ERROR', 'injected')
    else:
        sim.faults.lose_reply(method)
    try:
        builder.build('i-2', vm, ask('t4:2'))
    except exception.XapiError as exc:
        # Not started: nothing is left and the same build works again.
        assert exc.details == ['INTERNAL_ERROR', 'injected']
        assert tagged(xapi, 'i-2') == []
        assert builder.stats.claims == {}
        assert xapi.VM.get_power_state(vm) == 'Halted'
        builder.build('i-2', vm, ask('t4:2'))
    else:
        # A lost VGPU.create answer is reconciled through its tag; a
        # failed read after the start leaves the claim where expected.
        assert (kind, method) in (('lose', 'VGPU.create'), (
            'fail', 'VGPU.get_all_records_where'))
    assert len(tagged(xapi, 'i-2')) == 2
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_a_start_xapi_refuses_is_rolled_back(world):
    sim, xapi, builder = world
    vm = new_vm(xapi, 'i-3')
    other = new_vm(xapi, 'squatter')
    t8q = [r for r, t in xapi.VGPU_type.get_all_records().items()
           if t['model_name'] == 'GRID T4-8Q'][0]
    builder.attach('i-3', vm, ask('t4:2'))
    group = xapi.VGPU.get_GPU_group(tagged(xapi, 'i-3')[0])
    xapi.VGPU.create(other, group, '0', {}, t8q)
    xapi.VM.start(other, False, False)  # takes what the claim promised
    with pytest.raises(exception.XapiError) as info:
        builder.start('i-3', vm)
    assert info.value.code == 'VM_REQUIRES_VGPU'
    assert tagged(xapi, 'i-3') == [] and builder.stats.claims == {}


def test_stop_keeps_the_vgpus_and_start_again(world):
    sim, xapi, builder = world
    vm = new_vm(xapi, 'i-4')
    builder.build('i-4', vm, ask('8q:1'))
    sim.set_guest(vm, pv_drivers=False)
    builder.stop(vm)  # clean refused (no PV drivers): hard shutdown
    assert xapi.VM.get_power_state(vm) == 'Halted'
    assert sim.faults.calls['Async.VM.hard_shutdown'] == 1
    stats = statslib.VgpuStats(reader.read_inventory(builder.client,
                                                     builder.host_ref))
    owed = [s for s in stats.devices() if s.claimed_by == 'i-4']
    assert len(owed) == 1 and owed[0].status == 'allocated'
    builder.start_again(vm)
    assert xapi.VM.get_power_state(vm) == 'Running'


def test_detach_refuses_a_running_vm_and_is_idempotent(world):
    sim, xapi, builder = world
    vm = new_vm(xapi, 'i-5')
    builder.build('i-5', vm, ask('gvt:1'))
    with pytest.raises(exception.VgpuAttachRefused) as info:
        builder.detach('i-5', vm)
    assert 'stop it first' in str(info.value)
    assert len(tagged(xapi, 'i-5')) == 1
    xapi.VM.hard_shutdown(vm)
    assert len(builder.detach('i-5', vm)) == 1
    assert builder.detach('i-5', vm) == []
    assert tagged(xapi, 'i-5') == []


def test_orphans_are_found_and_reaped(world):
    sim, xapi, builder = world
    kept, lost, known = (new_vm(xapi, n) for n in ('kept', 'lost', 'known'))
    for instance, vm in (('ghost-run', kept), ('ghost-halt', lost),
                         ('known', known)):
        builder.build(instance, vm, ask('4q:1'))
    xapi.VM.hard_shutdown(lost)
    orphans = vgpulib.find_orphans(builder.client, builder.host_uuid,
                                   ['known'])
    assert {o.instance: o.vm_power_state for o in orphans} == {
        'ghost-run': 'Running', 'ghost-halt': 'Halted'}
    running_first = sorted(orphans, key=lambda o: o.instance != 'ghost-run')
    destroyed, remaining = vgpulib.reap_orphans(builder.client,
                                                running_first)
    assert [o.instance for o in destroyed] == ['ghost-halt']
    assert [o.instance for o in remaining] == ['ghost-run']
    assert tagged(xapi, 'ghost-halt') == []
    assert len(tagged(xapi, 'known')) == 1


def test_concurrent_builds_never_overcommit(world):
    import threading
    sim, xapi, builder = world
    sim.start_delay_ms = 100  # the starts overlap in their boot windows
    specs = ['t4:2', 't4:1', '8q:1', '4q:1', '4q:1', '8q:1', 'gvt:1',
             't4:1', '4q:1', '8q:1']
    vms = [new_vm(xapi, 'c%d' % i) for i in range(len(specs))]
    outcome = {}

    def build(index):
        try:
            builder.build('c%d' % index, vms[index], ask(specs[index]))
            outcome[index] = 'started'
        except exception.ClaimRefused:
            outcome[index] = 'refused'
        except Exception as exc:  # noqa: BLE001 - an overcommit
            outcome[index] = repr(exc)
    threads = [threading.Thread(target=build, args=(i,))
               for i in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert set(outcome.values()) <= {'started', 'refused'}, outcome
    assert 'started' in outcome.values() and 'refused' in outcome.values()
    for index, result in outcome.items():
        running = xapi.VM.get_power_state(vms[index]) == 'Running'
        assert running == (result == 'started')
        assert bool(tagged(xapi, 'c%d' % index)) == running
