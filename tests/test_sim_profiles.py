"""Hardware profiles: built-ins, user files, validation, the generator."""

import json

import pytest
import yaml
from hypothesis import strategies as st

from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.simulator import world
from tests.conftest import login
from tests.counting import run_counting

M60 = {'address': '0000:86:00.0', 'model': 'tesla-m60', 'numa_node': 0}


def one_host(**pgpu):
    return {'hosts': [{'name': 'h1', 'pgpus': [dict(M60, **pgpu)]}]}


def test_builtin_profiles_shape():
    m60 = profiles.load('m60')
    assert [p['numa_node'] for p in m60['hosts'][0]['pgpus']] == [0, 1]
    pool = profiles.load('pool')
    assert len(pool['hosts']) == 3
    assert all(len(h['pgpus']) == 4 for h in pool['hosts'])
    mixed = profiles.load('mixed')
    assert {p['model'] for p in mixed['hosts'][0]['pgpus']} == {
        'tesla-m60', 'tesla-t4', 'intel-uhd630', 'amd-s7150'}
    assert profiles.DEFAULT == 'mixed'


def test_mixed_profile_in_xapi_terms(xapi):
    types = xapi.VGPU_type.get_all_records().values()
    implementations = {t['implementation'] for t in types}
    assert implementations == {'passthrough', 'nvidia', 'nvidia_sriov',
                               'gvt_g', 'mxgpu'}
    sriov = [t for t in types if t['implementation'] == 'nvidia_sriov']
    assert all(len(t['compatible_types_in_vm']) == 1 for t in sriov)
    pgpus = xapi.PGPU.get_all_records().values()
    assert sum(p['is_system_display_device'] for p in pgpus) == 1
    algorithms = {g['allocation_algorithm']
                  for g in xapi.GPU_group.get_all_records().values()}
    assert algorithms == {'depth_first', 'breadth_first'}
    m60_8q = [t for t in types if t['model_name'] == 'GRID M60-8Q'][0]
    assert (m60_8q['max_heads'], m60_8q['max_resolution_x']) == ('4', '4096')


@pytest.mark.parametrize('suffix, dump', [('.yaml', yaml.safe_dump),
                                          ('.json', json.dumps)])
def test_user_profile_files(tmp_path, suffix, dump):
    path = tmp_path / ('lab' + suffix)
    data = one_host(enabled_types=['GRID M60-4Q'])
    data['groups'] = {'tesla-m60': {'allocation_algorithm': 'breadth_first'}}
    path.write_text(dump(data))
    with server.Simulator(str(path)) as sim:
        xapi = login(sim.url).xenapi
        group = xapi.GPU_group.get_all_records()
        assert [g['allocation_algorithm'] for g in group.values()] == [
            'breadth_first']
        pgpu = xapi.PGPU.get_all_records()
        enabled = next(iter(pgpu.values()))['enabled_VGPU_types']
        assert [xapi.VGPU_type.get_model_name(t) for t in enabled] == [
            'GRID M60-4Q']


@pytest.mark.parametrize('data, where', [
    ({}, "'hosts' is a required property"),
    (one_host(model='geforce'), '$.hosts[0].pgpus[0].model'),
    (one_host(address='86:00.0'), '$.hosts[0].pgpus[0].address'),
    (one_host(numa_node=4), 'numa_node: 4 but the host has 1'),
    (one_host(enabled_types=['GRID K1']), 'GRID K1 not supported'),
    (one_host(colour='red'), 'colour'),
    ({'hosts': [{'name': 'h', 'pgpus': [M60, M60]}]}, 'appears twice'),
    (dict(one_host(), groups={'g': {'allocation_algorithm': 'random'}}),
     "$.groups.g.allocation_algorithm"),
    (dict(one_host(), licensed='yes'), '$.licensed'),
    (dict(one_host(), start_delay_ms=-1), '$.start_delay_ms'),
    ({'hosts': [{'name': 'h', 'pgpus': [M60], 'nvidia_driver': 'r535'}]},
     '$.hosts[0].nvidia_driver'),
    ({'hosts': [{'name': 'h', 'pgpus': [M60], 'iommu': 'off'}]},
     '$.hosts[0].iommu'),
    (dict(one_host(), vms=[{'name': 'v', 'pv_drivers': 1}]),
     '$.vms[0].pv_drivers'),
    (one_host(model='intel-uhd630', system_display=True,
              enabled_types=['passthrough']), 'passthrough not supported'),
])
def test_bad_profiles_say_where_and_why(data, where):
    with pytest.raises(profiles.ProfileError) as info:
        profiles.validate(data, 'lab.yaml')
    assert 'lab.yaml' in str(info.value)
    assert where in str(info.value)


def test_unreadable_profile_file(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('hosts: [unclosed')
    with pytest.raises(profiles.ProfileError, match='broken.yaml'):
        profiles.load(str(path))
    with pytest.raises(profiles.ProfileError, match='not a built-in'):
        profiles.load(str(tmp_path / 'absent.yaml'))


FUZZ_PROFILE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(
            ['hosts', 'name', 'pgpus', 'address', 'model', 'numa_node',
             'groups', 'numa_nodes', 'x']), inner, max_size=4)),
    max_leaves=12)
NODES = st.lists(st.fixed_dictionaries(
    {'cpus': st.sampled_from(['0-3', '4-7', '0,2,5-6']),
     'memory_mib': st.integers(1, 10 ** 6)},
    optional={'socket': st.integers(0, 3)}), min_size=1, max_size=3)


@st.composite
def valid_host(draw, name):
    """A host the schema and the cross-field rules accept."""
    nodes = draw(st.none() | NODES)
    pgpus = []
    for bus in draw(st.lists(st.integers(0, 255), min_size=1, max_size=3,
                             unique=True)):
        model = draw(st.sampled_from(sorted(hardware.MODELS)))
        pgpu = {'address': '0000:%02x:00.0' % bus, 'model': model,
                'numa_node': draw(st.none() | st.integers(
                    0, len(nodes or [None]) - 1))}
        if draw(st.booleans()):
            pgpu['enabled_types'] = draw(st.lists(st.sampled_from(sorted(
                t.model_name for t in hardware.supported_types(
                    hardware.MODELS[model], False))), unique=True))
        pgpus.append(pgpu)
    return dict({'name': name, 'pgpus': pgpus},
                **({'numa_nodes': nodes} if nodes else {}))


VALID_PROFILE = st.builds(
    lambda hosts, algorithm: {'hosts': hosts, 'groups': {
        'x': {'allocation_algorithm': algorithm}}},
    st.tuples(valid_host('h1')) | st.tuples(valid_host('h1'),
                                            valid_host('h2')),
    st.sampled_from(profiles.ALGORITHMS)).map(
        lambda p: dict(p, hosts=list(p['hosts'])))


def validate_or_refuse(data):
    """'refused' with a clean message, or 'accepted' and built as said."""
    try:
        profiles.validate(data)
    except profiles.ProfileError as exc:
        assert str(exc).startswith('profile <profile>:')
        return 'refused'
    db = world.build(data)
    names = {ref: t['model_name']
             for ref, t in db.objects['VGPU_type'].items()}
    built = {(db.get('host', p['host'])['name_label'],
              db.get('PCI', p['PCI'])['pci_id']):
             sorted(names[t] for t in p['enabled_VGPU_types'])
             for p in db.objects['PGPU'].values()}
    assert built == {
        (h['name'], p['address']): sorted(p.get('enabled_types', (
            t.model_name for t in hardware.supported_types(
                hardware.MODELS[p['model']], False))))
        for h in data['hosts'] for p in h['pgpus']}
    return 'accepted'


def test_any_data_is_accepted_or_refused_cleanly():
    outcomes = run_counting(FUZZ_PROFILE | VALID_PROFILE, validate_or_refuse,
                            120)
    total = sum(outcomes.values())
    assert outcomes['accepted'] >= 0.05 * total, outcomes
    assert outcomes['refused'] >= 0.05 * total, outcomes


def test_generator_builds_big_pools():
    data = profiles.generate(hosts=4, pgpus_per_host=40)
    profiles.validate(data)
    with server.Simulator(data) as sim:
        xapi = login(sim.url).xenapi
        assert len(xapi.host.get_all()) == 4
        assert len(xapi.PGPU.get_all()) == 160
        group = xapi.GPU_group.get_all()[0]
        assert len(xapi.GPU_group.get_PGPUs(group)) == 160


def test_profile_vms_are_built_and_started():
    data = profiles.load('pool')
    data['vms'] = [
        {'name': 'on-member', 'host': 'xs-pool-02',
         'vgpus': [{'type': 'GRID M60-8Q'}]},
        {'name': 'halted', 'running': False,
         'vgpus': [{'type': 'passthrough', 'group': 'M60'}]},
        {'name': 'plain'}]
    with server.Simulator(data) as sim:
        xapi = login(sim.url).xenapi
        vms = {r['name_label']: r for r in xapi.VM.get_all_records().values()
               if not r['is_control_domain'] and not r['is_a_template']}
        assert {n: r['power_state'] for n, r in vms.items()} == {
            'on-member': 'Running', 'halted': 'Halted', 'plain': 'Running'}
        host = vms['on-member']['resident_on']
        assert xapi.host.get_name_label(host) == 'xs-pool-02'
        vgpu = xapi.VGPU.get_record(vms['on-member']['VGPUs'][0])
        assert xapi.PGPU.get_host(vgpu['resident_on']) == host
        assert xapi.VGPU.get_resident_on(vms['halted']['VGPUs'][0]) == (
            'OpaqueRef:NULL')


@pytest.mark.parametrize('vms, message', [
    ([{'name': 'a', 'host': 'nowhere'}], 'no host named nowhere'),
    ([{'name': 'a', 'vgpus': [{'type': 'GRID K1'}]}],
     'no pGPU supports GRID K1'),
    ([{'name': 'a%d' % i, 'vgpus': [{'type': 'GRID M60-8Q'}]}
      for i in range(3)], 'XAPI says'),
])
def test_profile_vms_that_cannot_be_built(vms, message):
    data = dict(profiles.load('m60'), vms=vms)
    with pytest.raises(profiles.ProfileError) as info:
        server.Simulator(data)
    assert message in str(info.value)
    assert '$.vms[' in str(info.value)
