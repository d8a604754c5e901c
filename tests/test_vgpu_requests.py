"""Aliases and flavor specs: Nova's rules plus vgpu_type (no simulator)."""

import json

import pytest
from hypothesis import strategies as st

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from tests.counting import run_counting


def aliases(*values, default='legacy'):
    return aliaslib.parse_aliases(
        [json.dumps(v) if isinstance(v, dict) else v for v in values],
        default)


def test_a_vgpu_alias():
    found = aliases({'name': 'm60-4q', 'vgpu_type': 'GRID M60-4Q',
                     'numa_policy': 'required'})['m60-4q']
    assert found.is_vgpu
    assert found.numa_policy == 'required'
    assert found.specs == ({'vgpu_types': ['GRID M60-4Q']},)


def test_a_list_of_types_and_alternatives():
    found = aliases(
        {'name': 'big', 'vgpu_type': ['GRID M60-8Q', 'GRID T4-16Q'],
         'device_type': 'type-PCI'},
        {'name': 'big', 'vgpu_type': 'passthrough',
         'device_type': 'type-PCI'})['big']
    assert [s['vgpu_types'] for s in found.specs] == [
        ['GRID M60-8Q', 'GRID T4-16Q'], ['passthrough']]


@pytest.mark.parametrize('value', [
    {'name': 'nic', 'vendor_id': '8086', 'product_id': '1572'},
    {'name': 'nic', 'vendor_id': '8086', 'product_id': '154D',
     'device_type': 'type-VF', 'numa_policy': 'preferred',
     'live_migratable': 'Yes', 'resource_class': 'CUSTOM_X',
     'traits': 'A,B', 'capability_type': 'pci'},
    {'name': ' padded ', 'vendor_id': '10de', 'product_id': '13f2'},
])
def test_what_nova_accepts_is_accepted(value):
    (found,) = aliases(value).values()
    assert not found.is_vgpu
    assert found.name == value['name'].strip()
    if 'live_migratable' in value:
        assert found.specs[0]['live_migratable'] == 'true'
    if 'device_type' in value:
        assert found.specs[0]['dev_type'] == value['device_type']


@pytest.mark.parametrize('values, alias, key', [
    (['{"name": "a", "vgpu_type": "x", "colour": "red"}'], 'a', 'colour'),
    (['{"name": "", "vgpu_type": "x"}'], '{"name": "", "vgpu_type": "x"}',
     'name'),
    (['{"vgpu_type": "x"}'], '{"vgpu_type": "x"}', 'name'),
    (['{"name": "a", "vendor_id": "10de"}'], 'a', 'vendor_id'),
    (['{"name": "a", "vendor_id": "10dex", "product_id": "13f2"}'], 'a',
     'vendor_id'),
    (['{"name": "a", "vgpu_type": []}'], 'a', 'vgpu_type'),
    (['{"name": "a", "vgpu_type": "x", "numa_policy": "strict"}'], 'a',
     'numa_policy'),
    (['{"name": "a", "vgpu_type": "x", "device_type": "type-VGPU"}'], 'a',
     'device_type'),
    (['{"name": "a", "vgpu_type": "x", "live_migratable": "maybe"}'], 'a',
     'live_migratable'),
    (['{"name": "a", "vgpu_type": "x", "numa_policy": "required"}',
      '{"name": "a", "vgpu_type": "y", "numa_policy": "legacy"}'], 'a',
     'numa_policy'),
    (['{"name": "a", "vgpu_type": "x"}', '{"name": "a", "vgpu_type": "y"}'],
     'a', 'device_type'),
    (['{"name": "a", "vgpu_type": "x", "device_type": "type-PCI"}',
      '{"name": "a", "vgpu_type": "y", "device_type": "type-PF"}'], 'a',
     'device_type'),
    (['not json'], 'not json', '-'),
    (['[1, 2]'], '[1, 2]', '-'),
])
def test_what_nova_refuses_is_refused(values, alias, key):
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases(values)
    assert str(info.value).startswith(
        'Invalid [vgpu] alias %s: %s: ' % (alias, key))


def test_default_numa_policy_comes_from_the_option():
    assert aliases({'name': 'a', 'vgpu_type': 'x'},
                   default='socket')['a'].numa_policy == 'socket'


ALIASES = aliases({'name': '4q', 'vgpu_type': 'GRID M60-4Q'},
                  {'name': 'any', 'vgpu_type': ['GRID M60-8Q', 'GRID T4-8Q'],
                   'numa_policy': 'preferred'},
                  {'name': 'nic', 'vendor_id': '8086', 'product_id': '1572'})


def test_flavor_specs_become_requests():
    vgpus, others = requestslib.requests_from_flavor(
        {'pci_passthrough:alias': '4q:2, any:1,nic:1'}, ALIASES)
    assert [(r.alias_name, r.count, r.numa_policy, r.vgpu_types)
            for r in vgpus] == [
        ('4q', 2, 'legacy', ('GRID M60-4Q',)),
        ('any', 1, 'preferred', ('GRID M60-8Q', 'GRID T4-8Q'))]
    assert others == [('nic', 1)]
    assert len({r.request_id for r in vgpus}) == 2
    assert requestslib.requests_from_flavor({}, ALIASES) == ([], [])


def test_a_flavor_numa_policy_wins():
    vgpus, _ = requestslib.requests_from_spec('4q:1', ALIASES, 'required')
    assert vgpus[0].numa_policy == 'required'


@pytest.mark.parametrize('spec, words', [
    ('nope:1', ['nope', 'not defined']),
    ('4q', ['expected alias:count']),
    ('4q:0', ['positive integer']),
    ('4q:-1', ['positive integer']),
    ('4q:two', ['positive integer']),
    ('4q:1:2', ['expected alias:count']),
    (':1', ['expected alias:count']),
    ('4q:1,', ['expected alias:count']),
])
def test_bad_flavor_specs(spec, words):
    with pytest.raises(exception.InvalidVgpuRequest) as info:
        requestslib.requests_from_spec(spec, ALIASES)
    for word in words:
        assert word in str(info.value)


FUZZ_ALIAS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(['name', 'vgpu_type', 'vendor_id', 'product_id',
                         'numa_policy', 'device_type', 'live_migratable',
                         'traits', 'x']), inner, max_size=5),
    max_leaves=8)
HEX4 = st.text('0123456789abcdefABCDEF', min_size=4, max_size=4)
MODEL = st.text('GRIDMT0123456789Q- ', min_size=1, max_size=16).filter(
    str.strip)
COMMON = {'numa_policy': st.sampled_from(aliaslib.NUMA_POLICIES),
          'device_type': st.sampled_from(aliaslib.DEVICE_TYPES),
          'live_migratable': st.sampled_from(['yes', 'No', 'true', '0']),
          'traits': st.text(max_size=10)}
# What Nova accepts: a vGPU alias (vgpu_type, ids optional) or a PCI one
# (both ids).
VALID_ALIAS = st.fixed_dictionaries(
    {'name': st.text(min_size=1, max_size=20),
     'vgpu_type': MODEL | st.lists(MODEL, min_size=1, max_size=3)},
    optional=dict(COMMON, vendor_id=HEX4, product_id=HEX4)) | (
    st.fixed_dictionaries({'name': st.text(min_size=1, max_size=20),
                           'vendor_id': HEX4, 'product_id': HEX4},
                          optional=COMMON))


def parse_or_refuse(value):
    try:
        parsed = aliaslib.parse_aliases([json.dumps(value)])
    except exception.InvalidAlias as exc:
        assert str(exc).startswith('Invalid [vgpu] alias ')
        return 'refused'
    (found,) = parsed.values()
    assert found.name == value['name'].strip()
    assert found.numa_policy == value.get('numa_policy', 'legacy')
    (spec,) = found.specs
    types = value.get('vgpu_type')
    assert spec.get(aliaslib.VGPU_TAG) == (
        [types] if isinstance(types, str) else types)
    assert found.is_vgpu is (types is not None)
    for key in ('vendor_id', 'product_id', 'traits'):
        assert spec.get(key) == value.get(key)
    assert spec.get('dev_type') == value.get('device_type')
    if 'live_migratable' in value:
        assert spec['live_migratable'] == (
            'true' if value['live_migratable'] in ('yes', 'true')
            else 'false')
    return 'accepted'


def test_any_alias_value_is_parsed_or_refused_cleanly():
    outcomes = run_counting(FUZZ_ALIAS | VALID_ALIAS, parse_or_refuse)
    total = sum(outcomes.values())
    assert outcomes['accepted'] >= 0.05 * total, outcomes
    assert outcomes['refused'] >= 0.05 * total, outcomes


SPEC_PART = st.tuples(st.sampled_from(['4q', 'any', 'nic']),
                      st.integers(1, 99), st.sampled_from(['', ' ']))
TYPES_OF = {'4q': ('GRID M60-4Q',), 'any': ('GRID M60-8Q', 'GRID T4-8Q')}
VALID_SPEC = st.lists(SPEC_PART, min_size=1, max_size=4)


def read_or_refuse(value):
    text = value if isinstance(value, str) else ','.join(
        '%s%s:%s%d' % (pad, name, pad, count) for name, count, pad in value)
    try:
        vgpus, others = requestslib.requests_from_spec(text, ALIASES)
    except exception.InvalidVgpuRequest as exc:
        assert str(exc).startswith('Invalid vGPU request ')
        return 'refused'
    if not isinstance(value, str):
        assert [(r.alias_name, r.count) for r in vgpus] == [
            (n, c) for n, c, _ in value if n != 'nic']
        assert others == [(n, c) for n, c, _ in value if n == 'nic']
        assert all(r.vgpu_types == TYPES_OF[r.alias_name] for r in vgpus)
    assert all(r.count >= 1 for r in vgpus)
    assert all(count >= 1 for _, count in others)
    return 'accepted'


def test_any_flavor_spec_is_read_or_refused_cleanly():
    outcomes = run_counting(st.text(max_size=40) | VALID_SPEC,
                            read_or_refuse)
    total = sum(outcomes.values())
    assert outcomes['accepted'] >= 0.05 * total, outcomes
    assert outcomes['refused'] >= 0.05 * total, outcomes


@pytest.mark.parametrize('values, reason', [
    (['{"name": "a", "vgpu_type": "x", "numa_policy": "required"}',
      '{"name": "a", "vgpu_type": "y", "numa_policy": "legacy"}'],
     'numa_policy: NUMA policy mismatch between aliases of this name'),
    (['{"name": "a", "vgpu_type": "x", "numa_policy": "required"}',
      '{"name": "a", "vgpu_type": "x", "numa_policy": "legacy"}'],
     'numa_policy: NUMA policy mismatch between aliases of this name'),
    (['{"name": "a", "vgpu_type": "x"}', '{"name": "a", "vgpu_type": "x"}'],
     'name: the same alias is given twice; give it once (aliases sharing a '
     'name are alternatives, each with its own device_type)'),
    (['{"name": "a", "vgpu_type": "x"}', '{"name": "a", "vgpu_type": "y"}'],
     'device_type: aliases sharing a name must each set device_type (Nova '
     'compares it)'),
    (['{"name": "a", "vgpu_type": "x", "device_type": "type-PCI"}',
      '{"name": "a", "vgpu_type": "y", "device_type": "type-PF"}'],
     'device_type: device type mismatch between aliases of this name'),
    (['{"name": "a", "vgpu_type": "x", "device_type": "type-PCI"}',
      '{"name": "a", "vendor_id": "10de", "product_id": "13f2", '
      '"device_type": "type-PCI"}'],
     'vgpu_type: aliases sharing a name must all ask for vGPUs or all for '
     'PCI devices'),
])
def test_alternatives_that_disagree_are_refused_in_full(values, reason):
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases(values)
    assert str(info.value) == 'Invalid [vgpu] alias a: %s' % reason


@pytest.mark.parametrize('spec, reason', [
    ('nope:1', "alias 'nope' is not defined in [vgpu] alias"),
    ('4q', "'4q': expected alias:count"),
    ('4q:0', "'4q:0': the count must be a positive integer"),
])
def test_bad_flavor_specs_in_full(spec, reason):
    with pytest.raises(exception.InvalidVgpuRequest) as info:
        requestslib.requests_from_spec(spec, ALIASES)
    assert str(info.value) == 'Invalid vGPU request %r: %s' % (spec, reason)


def test_a_long_spec_is_quoted_to_80_characters():
    spec = '4q:1,' * 20 + 'nope:1'
    with pytest.raises(exception.InvalidVgpuRequest) as info:
        requestslib.requests_from_spec(spec, ALIASES)
    assert str(info.value) == (
        "Invalid vGPU request %s...: alias 'nope' is not defined in [vgpu] "
        'alias' % repr(spec)[:80])
    exact = '4q:1,' * 14 + 'nopexx:1'  # its repr: 80 characters
    over = exact.replace('nopexx', 'nopexxx')
    for spec, quoted in ((exact, repr(exact)), (over, repr(over)[:80] +
                                                '...')):
        assert len(repr(spec)) in (80, 81)
        with pytest.raises(exception.InvalidVgpuRequest) as info:
            requestslib.requests_from_spec(spec, ALIASES)
        assert str(info.value).startswith(
            'Invalid vGPU request %s: ' % quoted)


def test_a_flavor_passes_its_numa_policy_on():
    vgpus, _ = requestslib.requests_from_flavor(
        {'pci_passthrough:alias': '4q:1'}, ALIASES, affinity_policy='socket')
    assert vgpus[0].numa_policy == 'socket'


KNOWN = ('name, capability_type, device_type, live_migratable, numa_policy, '
         'product_id, resource_class, traits, vendor_id, vgpu_type')


@pytest.mark.parametrize('value, message', [
    ({'name': 'a', 'vgpu_type': 'x', 'colour': 'red'},
     'a: colour: not a key of an alias (known: %s)' % KNOWN),
    ({'name': 'a', 'vgpu_type': 'x', 'capability_type': 'usb'},
     'a: capability_type: "usb": expected "pci"'),
    ({'name': 'a', 'vendor_id': '10dex', 'product_id': '13f2'},
     'a: vendor_id: "10dex": expected four hex digits'),
    ({'name': 'a', 'vendor_id': '10de', 'product_id': 7},
     'a: product_id: 7: expected four hex digits'),
    ({'name': 'a', 'vgpu_type': 'x', 'device_type': 'type-VGPU'},
     'a: device_type: "type-VGPU": expected one of type-PCI, type-PF, '
     'type-VF'),
    ({'name': 'a', 'vgpu_type': 'x', 'numa_policy': 'strict'},
     'a: numa_policy: "strict": expected one of required, legacy, '
     'preferred, socket'),
    ({'name': 'a', 'vgpu_type': 'x', 'resource_class': 1},
     'a: resource_class: 1: expected a string'),
    ({'name': 'a', 'vgpu_type': 'x', 'traits': []},
     'a: traits: []: expected a string'),
    ({'name': 'a', 'vgpu_type': 'x', 'live_migratable': True},
     'a: live_migratable: true: expected a string'),
    ({'name': 'a', 'vgpu_type': 'x', 'live_migratable': 'maybe'},
     "a: live_migratable: 'maybe': expected true or false"),
    ({'name': 'a', 'vgpu_type': []},
     'a: vgpu_type: []: expected a vGPU model name or a non-empty list of '
     'them'),
    ({'name': 'a', 'vgpu_type': 'x' * 70},
     None),
    ({'name': 'a', 'vgpu_type': ['x' * 70, '']},
     'a: vgpu_type: %s: expected a vGPU model name or a non-empty list of '
     'them' % json.dumps(['x' * 70, ''])[:60]),
    ({'name': 'a', 'vgpu_type': ['x', 5]},
     'a: vgpu_type: ["x", 5]: expected a vGPU model name or a non-empty '
     'list of them'),
    ({'name': 'a', 'vendor_id': '10de'},
     'a: vendor_id: an alias without vgpu_type needs vendor_id and '
     'product_id'),
    ({'vgpu_type': 'x'},
     '{"vgpu_type": "x"}: name: required, a string of 1 to 256 characters'),
    ([1, 2], '[1, 2]: -: not a JSON object'),
])
def test_refusals_say_what_is_wrong_in_full(value, message):
    text = json.dumps(value)
    if message is None:
        assert aliaslib.parse_aliases([text])
        return
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases([text])
    assert str(info.value) == 'Invalid [vgpu] alias %s' % message


def test_names_up_to_256_characters_and_long_values_cut_at_60():
    assert aliaslib.parse_aliases([json.dumps(
        {'name': 'n' * 256, 'vgpu_type': 'x'})])
    value = json.dumps({'name': 'n' * 257, 'vgpu_type': 'x'})
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases([value])
    assert str(info.value) == (
        'Invalid [vgpu] alias %s...: name: required, a string of 1 to 256 '
        'characters' % value[:60])
    sixty = 'm' * 60
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases([json.dumps({'name': sixty, 'x': 1})])
    assert str(info.value).startswith('Invalid [vgpu] alias %s: x: ' % sixty)
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases([json.dumps({'name': sixty + 'm', 'x': 1})])
    assert str(info.value).startswith(
        'Invalid [vgpu] alias %s...: x: ' % sixty)
    with pytest.raises(exception.InvalidAlias) as info:
        aliaslib.parse_aliases(['{"name": '])
    assert str(info.value).startswith(
        'Invalid [vgpu] alias {"name": : -: not valid JSON (')


@pytest.mark.parametrize('text, expected', [
    ('NO', 'false'), (' Off ', 'false'), ('YES', 'true'), ('1', 'true')])
def test_live_migratable_in_any_case(text, expected):
    (alias,) = aliaslib.parse_aliases([json.dumps(
        {'name': 'a', 'vgpu_type': 'x', 'live_migratable': text})]).values()
    assert alias.specs[0]['live_migratable'] == expected
