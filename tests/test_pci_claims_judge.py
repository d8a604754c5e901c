"""The claim rule against the simulator, over every start order.

For small random hosts (both allocation algorithms, mixed types, several
vGPUs per VM, existing residency) and claim sets, the pools accept a set
exactly when the simulator starts its VMs in every order, with either
tie-break among equally good pGPUs. The judge knows nothing of the
claim code: it builds the simulator's world and starts VMs.
"""

import itertools
import random
import types

import pytest

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.simulator import boot
from nova_xenapi_vgpu.simulator import events
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator import world
from nova_xenapi_vgpu.simulator.errors import XapiFailure
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib

M60 = ('GRID M60-4Q', 'GRID M60-8Q', 'GRID M60-2Q', 'passthrough')
T4 = ('GRID T4-8Q', 'GRID T4-4Q')
# Passthrough is a type of every pGPU: the ids pin it to the M60s, as the
# judge expects.
ALIASES = aliaslib.parse_aliases(
    ['{"name": "%s", "vgpu_type": "%s", "vendor_id": "10de", '
     '"product_id": "%s"}' % (name, name, '13f2' if name in M60 else '1eb8')
     for name in M60 + T4])
TIES = ('address', 'reverse-address')
SCENARIOS = 100
MIXED_SCENARIOS = 60


def scenario(seed):
    rng = random.Random(seed)
    pgpus = [{'address': '0000:%02x:00.0' % (0x86 + i), 'model': 'tesla-m60',
              'group': 'M60'} for i in range(rng.choice((2, 3)))]
    pgpus += [{'address': '0000:%02x:00.0' % (0x3b + i), 'model':
               'tesla-t4', 'group': 'T4'} for i in range(rng.choice((0, 2)))]
    profile = {'hosts': [{'name': 'h', 'pgpus': pgpus}], 'groups': {
        g: {'allocation_algorithm': rng.choice(('depth_first',
                                                'breadth_first'))}
        for g in ('M60', 'T4')}}
    kinds = M60 + (T4 if len(pgpus) > 3 or any(
        p['group'] == 'T4' for p in pgpus) else ())
    resident = [rng.choice(kinds) for _ in range(rng.choice((0, 1)))]
    claims = []
    for _ in range(rng.choice((2, 3, 4))):
        kind = rng.choice(kinds)
        count = rng.choice((1, 2)) if kind in T4 else 1
        claims.append((kind, count))
    return profile, resident, claims


def mixed_scenario(seed):
    """Heterogeneous: one group of M60s and T4s whose pGPUs enable types
    of their own (passthrough beside vGPU types), and a second host with
    pGPUs and VMs in the same group that this host's pools must ignore."""
    rng = random.Random(seed)
    pgpus, kinds = [], set()
    for index in range(rng.choice((2, 3))):
        names = rng.choice((M60, T4))
        enabled = sorted(rng.sample(names, rng.randint(1, len(names))))
        kinds.update(enabled)
        pgpus.append({'address': '0000:%02x:00.0' % (0x86 + index),
                      'model': 'tesla-m60' if names is M60 else 'tesla-t4',
                      'group': 'G', 'enabled_types': enabled})
    elsewhere = [{'address': '0000:86:00.0', 'model': 'tesla-m60',
                  'group': 'G'}]
    profile = {'hosts': [{'name': 'h', 'pgpus': pgpus},
                         {'name': 'other', 'pgpus': elsewhere}],
               'groups': {'G': {'name': 'Mixed group', 'allocation_algorithm':
                                rng.choice(('depth_first', 'breadth_first'))}}}
    kinds = sorted(kinds)
    resident = [rng.choice(kinds) for _ in range(rng.choice((0, 1)))]
    claims = [(kind, rng.choice((1, 2)) if kind in T4 else 1)
              for kind in (rng.choice(kinds)
                           for _ in range(rng.choice((2, 3))))]
    return profile, resident, claims


def group_of(db, kind):
    model = 'Tesla T4' if kind.startswith('GRID T4') else 'Tesla M60'
    return next(r for r, g in db.objects['GPU_group'].items()
                if model in g['name_label']
                or g['name_label'] == 'Mixed group')


def type_of(db, kind):
    return next(r for r, t in db.objects['VGPU_type'].items()
                if t['model_name'] == kind)


def build(profile, resident):
    """The world with its resident VMs placed (ties by address); one VM of
    M60-8Q on any second host."""
    db = world.build(profile)
    db.tie_break = 'address'
    host, *others = db.objects['host']
    for index, other in enumerate(others):
        vm = vmlib.create(db, {'name_label': 'elsewhere%d' % index,
                               'HVM_boot_policy': 'BIOS order'})
        gpu.vgpu_create(db, vm, group_of(db, 'GRID M60-8Q'), '0', {},
                        type_of(db, 'GRID M60-8Q'))
        boot.start(db, vm, other)
    for index, kind in enumerate(resident):
        vm = vmlib.create(db, {'name_label': 'resident%d' % index,
                               'HVM_boot_policy': 'BIOS order'})
        gpu.vgpu_create(db, vm, group_of(db, kind), '0', {},
                        type_of(db, kind))
        boot.start(db, vm, host)
    return db, host


def honoured_in_every_order(profile, resident, claims):
    """The judge: start the claims' VMs in every order, both tie-breaks."""
    for ties in TIES:
        for order in itertools.permutations(range(len(claims))):
            db, host = build(profile, resident)
            db.tie_break = ties
            vms = []
            for index, (kind, count) in enumerate(claims):
                vm = vmlib.create(db, {'name_label': 'claim%d' % index,
                                       'HVM_boot_policy': 'BIOS order'})
                for _ in range(count):
                    gpu.vgpu_create(db, vm, group_of(db, kind), '0', {},
                                    type_of(db, kind))
                vms.append(vm)
            try:
                for index in order:
                    boot.start(db, vms[index], host)
            except XapiFailure:
                return False
    return True


def inventory_of(db, host):
    """The simulator's records as a host inventory (no XML-RPC here)."""
    return reader.from_snapshot(host, events.event_from(
        types.SimpleNamespace(db=db), list(reader.ORDER), '', 0))


def pools_accept(profile, resident, claims):
    """The claim code: every claim of the set accepted, in turn."""
    db, host = build(profile, resident)
    stats = statslib.VgpuStats(inventory_of(db, host))
    for index, (kind, count) in enumerate(claims):
        requests, _ = requestslib.requests_from_spec(
            '%s:%d' % (kind, count), ALIASES)
        try:
            stats.apply_requests(requests, instance='claim%d' % index)
        except exception.ClaimRefused:
            return False
    return True


@pytest.mark.parametrize('seed', range(SCENARIOS))
def test_claims_are_accepted_exactly_when_xapi_honours_every_order(seed):
    profile, resident, claims = scenario(seed)
    expected = honoured_in_every_order(profile, resident, claims)
    assert pools_accept(profile, resident, claims) is expected, (
        profile, resident, claims)


@pytest.mark.parametrize('seed', range(MIXED_SCENARIOS))
def test_heterogeneous_groups_on_several_hosts(seed):
    # Ties between different kinds of pGPU (enabled types of their own,
    # mixed models) happen only here: XAPI's choice must keep every tie.
    profile, resident, claims = mixed_scenario(seed)
    expected = honoured_in_every_order(profile, resident, claims)
    assert pools_accept(profile, resident, claims) is expected, (
        profile, resident, claims)


@pytest.mark.parametrize('make, count', [(scenario, SCENARIOS),
                                         (mixed_scenario, MIXED_SCENARIOS)])
def test_the_scenarios_cover_both_verdicts_and_algorithms(make, count):
    verdicts, algorithms = set(), set()
    for seed in range(count):
        profile, resident, claims = make(seed)
        verdicts.add(honoured_in_every_order(profile, resident, claims))
        algorithms |= {g['allocation_algorithm']
                       for g in profile['groups'].values()}
    assert verdicts == {True, False}
    assert algorithms == {'depth_first', 'breadth_first'}


def test_stopped_instances_count_as_claims():
    profile, _, _ = scenario(0)
    profile['groups']['M60']['allocation_algorithm'] = 'breadth_first'
    profile['hosts'][0]['pgpus'] = profile['hosts'][0]['pgpus'][:2]
    db, host = build(profile, [])
    host_uuid = db.get('host', host)['uuid']
    for index in range(2):
        vm = vmlib.create(db, {'name_label': 'stopped%d' % index,
                               'HVM_boot_policy': 'BIOS order'})
        gpu.vgpu_create(db, vm, group_of(db, 'GRID M60-4Q'), '0', {
            tags.HOST: host_uuid, tags.INSTANCE: 'stopped%d' % index},
            type_of(db, 'GRID M60-4Q'))
    stats = statslib.VgpuStats(inventory_of(db, host))
    requests, _ = requestslib.requests_from_spec('GRID M60-8Q:1', ALIASES)
    assert not stats.support_requests(requests)
    assert honoured_in_every_order(profile, [], [
        ('GRID M60-4Q', 1), ('GRID M60-4Q', 1), ('GRID M60-8Q', 1)]) is False
