"""``[vgpu] alias``: Nova's ``[pci] alias`` format plus ``vgpu_type``.

Parsed as Nova 34 parses ``[pci] alias`` (nova/pci/request.py,
get_alias_from_config): a value Nova accepts means the same here, one Nova
refuses is refused here, with the alias and the key named. The one
extension is ``vgpu_type``: a model name or a list of them (any one
satisfies); an alias with it needs no ``vendor_id``/``product_id``.
"""

import dataclasses
import json
import re

from nova_xenapi_vgpu import exception

NUMA_POLICIES = ('required', 'legacy', 'preferred', 'socket')
DEVICE_TYPES = ('type-PCI', 'type-PF', 'type-VF')
VGPU_KEY = 'vgpu_type'
VGPU_TAG = 'vgpu_types'
_HEX4 = re.compile(r'^[\da-fA-F]{4}$')
# oslo_utils.strutils.bool_from_string(strict=True)
_TRUE = ('1', 't', 'true', 'on', 'y', 'yes')
_FALSE = ('0', 'f', 'false', 'off', 'n', 'no')


@dataclasses.dataclass(frozen=True)
class Alias:
    """All specs given under one alias name (alternatives), and its policy."""

    name: str
    numa_policy: str
    specs: tuple

    @property
    def is_vgpu(self):
        """Whether the alias asks for vGPUs (its specs carry vGPU types)."""
        return any(VGPU_TAG in spec for spec in self.specs)


def parse_aliases(values, default_numa_policy='legacy'):
    """``{name: Alias}`` from the raw JSON option values.

    :raises: InvalidAlias naming the alias and the offending key.
    """
    aliases = {}
    for value in values:
        name, policy, spec = _parse_one(value, default_numa_policy)
        if name not in aliases:
            aliases[name] = Alias(name, policy, (spec,))
            continue
        _check_alternative(aliases[name], policy, spec)
        aliases[name] = dataclasses.replace(
            aliases[name], specs=aliases[name].specs + (spec,))
    for alias in aliases.values():
        _check_ids(alias)
    return aliases


def _parse_one(value, default_numa_policy):
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise _invalid(value, None, 'not valid JSON (%s)' % exc) from None
    if not isinstance(data, dict):
        raise _invalid(value, None, 'not a JSON object')
    name = data.get('name')
    if not isinstance(name, str) or not 1 <= len(name) <= 256:
        raise _invalid(value, 'name', 'required, a string of 1 to 256 '
                                      'characters')
    spec = {}
    for key, item in data.items():
        if key != 'name':
            _check_key(name, key, item)
            spec[key] = item
    policy = spec.pop('numa_policy', None) or default_numa_policy
    if 'device_type' in spec:
        spec['dev_type'] = spec.pop('device_type')
    if 'live_migratable' in spec:
        spec['live_migratable'] = _boolean(name, spec['live_migratable'])
    if VGPU_KEY in spec:
        types = spec.pop(VGPU_KEY)
        spec[VGPU_TAG] = [types] if isinstance(types, str) else list(types)
    return name.strip(), policy, spec


def _check_key(name, key, value):
    """Nova's _ALIAS_SCHEMA, key by key, plus ``vgpu_type``."""
    checks = {
        'capability_type': lambda v: v == 'pci',
        'product_id': lambda v: isinstance(v, str) and _HEX4.match(v),
        'vendor_id': lambda v: isinstance(v, str) and _HEX4.match(v),
        'device_type': lambda v: v in DEVICE_TYPES,
        'numa_policy': lambda v: v in NUMA_POLICIES,
        'resource_class': lambda v: isinstance(v, str),
        'traits': lambda v: isinstance(v, str),
        'live_migratable': lambda v: isinstance(v, str),
        VGPU_KEY: _valid_vgpu_types,
    }
    expected = {
        'capability_type': '"pci"', 'product_id': 'four hex digits',
        'vendor_id': 'four hex digits',
        'device_type': 'one of %s' % ', '.join(DEVICE_TYPES),
        'numa_policy': 'one of %s' % ', '.join(NUMA_POLICIES),
        'resource_class': 'a string', 'traits': 'a string',
        'live_migratable': 'a string',
        VGPU_KEY: 'a vGPU model name or a non-empty list of them'}
    if key not in checks:
        raise _invalid(name, key, 'not a key of an alias (known: %s)' % (
            ', '.join(['name'] + sorted(checks))))
    if not checks[key](value):
        raise _invalid(name, key, '%s: expected %s' % (
            json.dumps(value)[:60], expected[key]))


def _valid_vgpu_types(value):
    if isinstance(value, str):
        return bool(value.strip())
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, str) and v.strip() for v in value))


def _boolean(name, text):
    if text.strip().lower() in _TRUE:
        return 'true'
    if text.strip().lower() in _FALSE:
        return 'false'
    raise _invalid(name, 'live_migratable', '%r: expected true or false'
                   % text)


def _check_alternative(first, policy, spec):
    """Nova: same-name aliases must agree on NUMA policy and device type
    (and it compares ``device_type`` only when both set it)."""
    if spec in first.specs and policy == first.numa_policy:
        raise _invalid(first.name, 'name', 'the same alias is given twice; '
                       'give it once (aliases sharing a name are '
                       'alternatives, each with its own device_type)')
    if first.numa_policy != policy:
        raise _invalid(first.name, 'numa_policy', 'NUMA policy mismatch '
                       'between aliases of this name')
    types = (first.specs[0].get('dev_type'), spec.get('dev_type'))
    if None in types:
        raise _invalid(first.name, 'device_type', 'aliases sharing a name '
                       'must each set device_type (Nova compares it)')
    if types[0] != types[1]:
        raise _invalid(first.name, 'device_type', 'device type mismatch '
                       'between aliases of this name')
    if (VGPU_TAG in first.specs[0]) != (VGPU_TAG in spec):
        raise _invalid(first.name, VGPU_KEY, 'aliases sharing a name must '
                       'all ask for vGPUs or all for PCI devices')


def _check_ids(alias):
    """Nova requires both ids in a spec; a vGPU spec needs neither."""
    for spec in alias.specs:
        if VGPU_TAG not in spec and not (
                'vendor_id' in spec and 'product_id' in spec):
            raise _invalid(alias.name, 'vendor_id', 'an alias without '
                           'vgpu_type needs vendor_id and product_id')


def _invalid(alias, key, reason):
    return exception.InvalidAlias(
        alias=alias if len(str(alias)) <= 60 else str(alias)[:60] + '...',
        key=key or '-', reason=reason)
