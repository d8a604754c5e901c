"""Reading a host's GPU records from XAPI: the calls, nothing else.

A full read is one ``event.from`` with an empty token (every record of
the classes asked for, and a token); a refresh is one ``event.from`` from
that token, whose events turn the inventory into the next one (the
model itself is immutable). The dom0 plugin is asked for the topology of
the pGPUs when they change.
"""

import dataclasses

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import inventory as inventorylib
from nova_xenapi_vgpu.xapi import records

# event.from's class names -> (record class, inventory field)
CLASSES = {
    'host': (records.Host, None),
    'gpu_group': (records.GpuGroup, 'groups'),
    'pgpu': (records.Pgpu, 'pgpus'),
    'pci': (records.PciDevice, 'pcis'),
    'vgpu_type': (records.VgpuType, 'types'),
    'vgpu': (records.Vgpu, 'vgpus'),
}
# Classes whose membership depends on others come after them.
ORDER = ('host', 'gpu_group', 'pgpu', 'pci', 'vgpu_type', 'vgpu')


def read_inventory(client, host_ref, dom0=None):
    """This host's inventory in one XAPI call (plus the dom0 plugin's).

    :raises: XapiError, XapiConnectionError, RecordError, PluginError.
    """
    batch = client.event_from(list(ORDER), '', 0.0)
    return _with_topology(from_snapshot(host_ref, batch), None, dom0)


def from_snapshot(host_ref, batch):
    """The inventory in an ``event.from`` answer to an empty token.

    :raises: RecordError for a record lacking what the project needs.
    """
    empty = inventorylib.HostInventory(host_ref, {}, {}, {}, {}, {})
    return apply(empty, batch['events'], batch['token'])


def refresh(client, inventory, dom0=None):
    """The inventory after what changed since it was read: one call when
    nothing did.

    :raises: XapiError (EVENT_FROM_TOKEN_INVALID: read again),
             XapiConnectionError, RecordError, PluginError.
    """
    batch = client.event_from(list(ORDER), inventory.token, 0.0)
    if not batch['events']:
        return dataclasses.replace(inventory, token=batch['token'])
    return _with_topology(apply(inventory, batch['events'], batch['token']),
                          inventory, dom0)


def _with_topology(model, before, dom0):
    if dom0 is None:
        return model
    if before is not None and before.topology is not None and set(
            before.pgpus) == set(model.pgpus):
        return model.with_topology(before.topology)
    return model.with_topology(dom0.topology(
        [model.address(p) for p in model.pgpus]))


def apply(inventory, events, token):
    """The next inventory: ``events`` (event.from's) applied, in place of
    nothing: a new model is returned.

    :raises: RecordError for a record lacking what the project needs.
    """
    state = {field: dict(getattr(inventory, field))
             for _, field in CLASSES.values() if field}
    host = inventory.host
    for name in ORDER:
        cls, field = CLASSES[name]
        for event in (e for e in events if e['class'] == name):
            if name == 'host':
                if event['ref'] == inventory.host_ref and 'snapshot' in event:
                    host = cls.from_xapi(event['ref'], event['snapshot'])
                continue
            state[field].pop(event['ref'], None)
            if event['operation'] != 'del':
                record = cls.from_xapi(event['ref'], event['snapshot'])
                if _belongs(name, record, inventory.host_ref, host,
                            state['pgpus']):
                    state[field][event['ref']] = record
    return dataclasses.replace(inventory, host=host, token=token, **state)


def _belongs(name, record, host_ref, host, pgpus):
    if name in ('pgpu', 'pci'):
        return record.host == host_ref
    if name == 'vgpu':
        # A copy (snapshot, clone) holds a pGPU only while it runs.
        return (record.resident_on in pgpus
                or record.scheduled_to_be_resident_on in pgpus
                or (host is not None and tags.owed_to(record, host.uuid)))
    return True
