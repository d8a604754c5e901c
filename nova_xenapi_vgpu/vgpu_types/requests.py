"""Flavor extra specs -> vGPU requests, as Nova turns aliases into
InstancePCIRequests (nova/pci/request.py, _translate_alias_to_requests)."""

import dataclasses
import re
import uuid

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib

_COUNT = re.compile(r'^\s*\d+\s*$')


@dataclasses.dataclass(frozen=True)
class VgpuRequest:
    """``count`` vGPUs of any type in ``vgpu_types`` (Nova's request keys)."""

    count: int
    spec: tuple
    alias_name: str
    numa_policy: str
    request_id: str

    @property
    def vgpu_types(self):
        """The model names any of which satisfies the request."""
        return tuple(dict.fromkeys(
            t for spec in self.spec for t in spec.get(aliaslib.VGPU_TAG, ())))


def requests_from_spec(value, aliases, affinity_policy=None):
    """``alias:count[,alias:count]`` -> (vGPU requests, other requests).

    Requests for aliases without vGPU keys are handed back untouched, as
    ``(alias name, count)``, for Nova's own PCI handling.

    :raises: InvalidVgpuRequest naming the spec and what is wrong.
    """
    vgpus, others = [], []
    for part in str(value).split(','):
        name, count = _split(value, part)
        if name not in aliases:
            raise exception.InvalidVgpuRequest(
                spec=_quote(value), reason='alias %r is not defined in '
                '[vgpu] alias' % name)
        found = aliases[name]
        if not found.is_vgpu:
            others.append((name, count))
            continue
        vgpus.append(VgpuRequest(
            count=count, spec=tuple(dict(s) for s in found.specs),
            alias_name=name,
            numa_policy=affinity_policy or found.numa_policy,
            request_id=str(uuid.uuid4())))
    return vgpus, others


def requests_from_flavor(extra_specs, aliases, key='pci_passthrough:alias',
                         affinity_policy=None):
    """The requests of a flavor's ``key`` extra spec (none without it).

    :raises: InvalidVgpuRequest.
    """
    if key not in extra_specs:
        return [], []
    return requests_from_spec(extra_specs[key], aliases, affinity_policy)


def _split(value, part):
    pieces = part.split(':')
    if len(pieces) != 2 or not pieces[0].strip():
        raise exception.InvalidVgpuRequest(
            spec=_quote(value), reason='%r: expected alias:count' % part)
    name, count = pieces[0].strip(), pieces[1]
    if not _COUNT.match(count) or int(count) < 1:
        raise exception.InvalidVgpuRequest(
            spec=_quote(value), reason='%r: the count must be a positive '
            'integer' % part)
    return name, int(count)


def _quote(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + '...'
