"""A resize's or cold migration's progress, kept in XAPI.

Before a move destroys any VGPU it writes one key in the VM's
``other_config``: the instance, the source host, the destination host
and the demand (GPU group and vGPU type per vGPU, in device order). The
key lives as long as the move is open: a cold migration removes it once
the destination has the VGPUs (or the source has them back), a resize
once it is confirmed or reverted. While it is there the source host
holds the demand (a claim no other instance can take), so a revert or a
put-back always fits; a retry after a crash reads it to finish the move,
and a restarted compute service holds the source's capacity again.
"""

import dataclasses
import json

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.xapi import records
from nova_xenapi_vgpu.xapi import writes

KEY = 'nova_xenapi_vgpu_move'


@dataclasses.dataclass(frozen=True)
class Move:
    """One open move of an instance's vGPUs."""

    instance: str
    source: str  # host uuid
    destination: str  # host uuid ('' until the destination is known)
    demand: tuple  # ((GPU group ref, VGPU type ref), ...)

    def to_json(self):
        """The value kept in the VM's other_config."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text):
        """The move a key's value describes, or None when unreadable."""
        try:
            data = json.loads(text)
            return cls(data['instance'], data['source'],
                       data['destination'], tuple(
                           tuple(pair) for pair in data['demand']))
        except (ValueError, KeyError, TypeError):
            return None


def held(instance):
    """The key of the claim a move's source holds for ``instance``."""
    return '%s (held by its move)' % instance


def of_vm(vm_record):
    """The open move recorded on a VM (records.Vm), or None."""
    value = vm_record.other_config.get(KEY)
    return Move.from_json(value) if value else None


def record(client, vm, move):
    """Write ``move`` on the VM unless one is open; returns the open one.

    :raises: OperationRefused when another instance's move is open;
             XapiError, XapiConnectionError.
    """
    current = Move.from_json(writes.add_key(client, 'VM', vm, KEY,
                                            move.to_json()))
    if current is None or current.instance != move.instance:
        raise exception.OperationRefused(
            operation='move', vm=vm, reason='another move is open on it '
            '(other_config:%s); finish or revert it first' % KEY)
    return current


def clear(client, vm):
    """The move is over.

    :raises: XapiError, XapiConnectionError.
    """
    writes.remove_key(client, 'VM', vm, KEY)


def interrupted(client, host_uuid):
    """Cold migrations from ``host_uuid`` that stopped midway: an open
    move naming a destination (a resize names none until confirm) on a
    VM with no VGPU of the instance left. ``[(VM ref, Vm, Move)]``.

    :raises: XapiError, XapiConnectionError, RecordError.
    """
    vms = records.decode_all(records.Vm, client.call('VM.get_all_records'))
    vgpus = records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records'))
    found = []
    for ref, vm in sorted(vms.items()):
        move = of_vm(vm)
        if move is None or move.source != host_uuid or not move.destination:
            continue
        if not any(v.VM == ref and v.other_config.get(
                tags.INSTANCE) == move.instance for v in vgpus.values()):
            found.append((ref, vm, move))
    return found
