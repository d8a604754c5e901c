"""SRs and VDIs: sizes, what a storage backend refuses, who sees an SR.

xapi_vdi.ml checks the VDI (attached VBDs, plugged PBDs) and asks the
SR's backend, whose refusals come back as ``SR_BACKEND_FAILURE_<n>``
(xapi declares ``SR_FULL`` but never raises it). Two local backends are
modelled, after xapi-project/sm: ``lvm`` (thick LVHD: every VDI takes
its whole size in 4 MiB extents, error 44 when the volume group is
full) and ``ext`` (thin VHD files: sizes up to the VHD limit, rounded to
2 MiB blocks, error 79 beyond it; space is used as data is written).
"""

import xmlrpc.client

from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
MIB = 1024 ** 2
MAX_VHD_MIB = 2093050  # sm's vhdutil.MAX_VHD_SIZE
_ROUNDING = {'lvm': 4 * MIB, 'ext': 2 * MIB}


def backend_failure(code, description, opterr=None):
    """An SM error as xapi reports it: [code, stdout, message, stderr]."""
    if opterr:
        description = '%s [opterr=%s]' % (description, opterr)
    return XapiFailure('SR_BACKEND_FAILURE_%d' % code, '', description, '')


def rounded_size(sr_type, size):
    """The size the backend gives a VDI asked to be ``size`` bytes.

    :raises: XapiFailure SR_BACKEND_FAILURE_79 (VDISize) out of range.
    """
    if size < 0 or (sr_type == 'ext' and size > MAX_VHD_MIB * MIB):
        raise backend_failure(79, 'VDI Invalid size',
                              'VDI size must be between 1 MB and %d MB'
                              % MAX_VHD_MIB)
    step = _ROUNDING.get(sr_type, 1)
    return -(-size // step) * step


def allocation(db, vdi):
    """What a VDI takes from its SR: all of it when thick, what was
    written when thin."""
    record = db.get('VDI', vdi)
    sr_type = db.get('SR', record['SR'])['type']
    if sr_type == 'lvm':
        return record['virtual_size']
    return record['_written']


def refresh(db, sr):
    """Recompute the SR's utilisation and virtual allocation."""
    vdis = db.field('SR', sr, 'VDIs')
    db.set('SR', sr, 'physical_utilisation',
           sum(allocation(db, v) for v in vdis))
    db.set('SR', sr, 'virtual_allocation',
           sum(db.get('VDI', v)['virtual_size'] for v in vdis))


def assert_space(db, sr, size):
    """A thick SR must hold ``size`` more bytes.

    :raises: XapiFailure SR_BACKEND_FAILURE_44 (SRNoSpace).
    """
    record = db.get('SR', sr)
    free = record['physical_size'] - record['physical_utilisation']
    if record['type'] == 'lvm' and size > free:
        raise backend_failure(44, 'There is insufficient space')


def assert_plugged(db, sr):
    """Sm.assert_pbd_is_plugged.

    :raises: XapiFailure SR_NO_PBDS.
    """
    if not any(db.get('PBD', p)['currently_attached']
               for p in db.field('SR', sr, 'PBDs')):
        raise XapiFailure('SR_NO_PBDS', sr)


def create_vdi(db, record):
    """VDI.create: a VDI of the SR's rounded size, if the SR has room.

    :raises: XapiFailure HANDLE_INVALID, SR_NO_PBDS and the backend's
             errors.
    """
    sr = record.get('SR', NULL)
    sr_record = db.get('SR', sr)
    assert_plugged(db, sr)
    vdi_type = record.get('type', 'user')
    size = rounded_size(sr_record['type'], _int(record.get(
        'virtual_size', 0)))
    assert_space(db, sr, size)
    fields = {name: record[name] for name in (
        'name_label', 'name_description', 'sharable', 'read_only',
        'other_config', 'xenstore_data', 'sm_config', 'tags')
        if name in record}
    return new_vdi(db, sr, size, type=vdi_type, **fields)


def new_vdi(db, sr, size, **fields):
    """Store a VDI on ``sr`` and account for it."""
    vdi = db.create('VDI', SR=sr, virtual_size=size, **fields)
    db.set('VDI', vdi, 'location', db.get('VDI', vdi)['uuid'])
    if db.get('SR', sr)['type'] == 'lvm':
        db.set('VDI', vdi, 'physical_utilisation', size)
    refresh(db, sr)
    return vdi


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise XapiFailure('FIELD_TYPE_ERROR', 'virtual_size') from None


def attached_vbds(db, vdi):
    """The VDI's VBDs that are plugged (currently_attached)."""
    return [v for v in db.field('VDI', vdi, 'VBDs')
            if db.get('VBD', v)['currently_attached']]


def assert_not_in_use(db, vdi, op):
    """:raises: XapiFailure VDI_IN_USE [vdi; op] while a VBD is plugged."""
    if attached_vbds(db, vdi):
        raise XapiFailure('VDI_IN_USE', vdi, op)


def destroy_vdi(db, vdi):
    """VDI.destroy; its VBDs go too (xapi_vdi.ml)."""
    sr = db.get('VDI', vdi)['SR']
    assert_plugged(db, sr)
    assert_not_in_use(db, vdi, 'destroy')
    for vbd in db.field('VDI', vdi, 'VBDs'):
        db.destroy('VBD', vbd)
    db.destroy('VDI', vdi)
    refresh(db, sr)


def resize_vdi(db, vdi, size, online=False):
    """VDI.resize / resize_online: grow only, as the backends allow."""
    record = db.get('VDI', vdi)
    sr = record['SR']
    assert_plugged(db, sr)
    if not online:
        assert_not_in_use(db, vdi, 'resize')
    new_size = rounded_size(db.get('SR', sr)['type'], _int(size))
    if new_size < record['virtual_size']:
        raise backend_failure(79, 'VDI Invalid size',
                              'shrinking not allowed')
    assert_space(db, sr, new_size - record['virtual_size'])
    db.set('VDI', vdi, 'virtual_size', new_size)
    if db.get('SR', sr)['type'] == 'lvm':
        db.set('VDI', vdi, 'physical_utilisation', new_size)
    refresh(db, sr)


def copy_vdi(db, vdi, sr, into=NULL):
    """VDI.copy: a new VDI on ``sr`` (or ``into``) with the same data.

    :raises: XapiFailure VDI_READONLY, VDI_TOO_SMALL and the backend's.
    """
    record = db.get('VDI', vdi)
    if into != NULL:
        target = db.get('VDI', into)
        if target['read_only']:
            raise XapiFailure('VDI_READONLY', into)
        if target['virtual_size'] < record['virtual_size']:
            raise XapiFailure('VDI_TOO_SMALL', into, record['virtual_size'])
        return _copy_data(db, vdi, into)
    db.get('SR', sr)
    assert_plugged(db, sr)
    size = rounded_size(db.get('SR', sr)['type'], record['virtual_size'])
    assert_space(db, sr, size)
    copy = new_vdi(db, sr, size, name_label=record['name_label'],
                   name_description=record['name_description'],
                   type=record['type'], sharable=record['sharable'],
                   other_config=dict(record['other_config']),
                   xenstore_data=dict(record['xenstore_data']),
                   tags=list(record['tags']))
    return _copy_data(db, vdi, copy)


def _copy_data(db, source, target):
    write(db, target, db.get('VDI', source)['_written'])
    return target


def write(db, vdi, size):
    """Data written into a VDI: a thin SR's utilisation grows."""
    db.set('VDI', vdi, '_written', max(size, db.get('VDI', vdi)['_written']))
    if db.get('SR', db.get('VDI', vdi)['SR'])['type'] != 'lvm':
        db.set('VDI', vdi, 'physical_utilisation',
               db.get('VDI', vdi)['_written'])
    refresh(db, db.get('VDI', vdi)['SR'])


def snapshot_vdi(db, vdi, snapshot=True):
    """VDI.snapshot / VDI.clone: a copy on the same SR sharing the data.

    A thick SR needs room for the new leaf (LVHD inflates it).

    :raises: XapiFailure VDI_IS_SHARABLE and the backend's errors.
    """
    record = db.get('VDI', vdi)
    sr = record['SR']
    assert_plugged(db, sr)
    if snapshot and record['sharable']:
        raise XapiFailure('VDI_IS_SHARABLE', vdi)
    assert_space(db, sr, record['virtual_size'])
    new = new_vdi(db, sr, record['virtual_size'],
                  name_label=record['name_label'],
                  name_description=record['name_description'],
                  type=record['type'], sharable=record['sharable'],
                  read_only=record['read_only'],
                  other_config=dict(record['other_config']),
                  sm_config=dict(record['sm_config']),
                  is_a_snapshot=snapshot,
                  snapshot_of=vdi if snapshot else NULL,
                  snapshot_time=xmlrpc.client.DateTime() if snapshot
                  else None)
    return _copy_data(db, vdi, new)


def srs_of(db, vm):
    """The SRs of the VM's non-empty VBDs."""
    srs = []
    for vbd in db.field('VM', vm, 'VBDs'):
        record = db.get('VBD', vbd)
        if not record['empty'] and record['VDI'] in db.objects['VDI']:
            srs.append(db.get('VDI', record['VDI'])['SR'])
    return srs


def host_sees(db, host, sr):
    """Whether ``host`` has a plugged PBD for ``sr``."""
    return any(db.get('PBD', p)['host'] == host
               and db.get('PBD', p)['currently_attached']
               for p in db.field('SR', sr, 'PBDs'))


def assert_can_see_srs(db, vm, host):
    """xapi_vm_helpers.ml, assert_can_see_SRs.

    :raises: XapiFailure VM_REQUIRES_SR [vm; sr].
    """
    for sr in srs_of(db, vm):
        if not host_sees(db, host, sr):
            raise XapiFailure('VM_REQUIRES_SR', vm, sr)


def local_sr(db, host):
    """The SR of ``host``'s own disks (not shared), or None."""
    for pbd in db.field('host', host, 'PBDs'):
        sr = db.get('PBD', pbd)['SR']
        if not db.get('SR', sr)['shared'] and db.get(
                'SR', sr)['content_type'] != 'iso':
            return sr
    return None


def handlers():
    """The XAPI calls of this module."""
    return {
        'VDI.create': lambda ctx, record: create_vdi(ctx.db, record),
        'VDI.destroy': lambda ctx, vdi: _(destroy_vdi(ctx.db, vdi)),
        'VDI.resize': lambda ctx, vdi, size: _(resize_vdi(
            ctx.db, vdi, size)),
        'VDI.resize_online': lambda ctx, vdi, size: _(resize_vdi(
            ctx.db, vdi, size, online=True)),
        'VDI.copy': lambda ctx, vdi, sr, base=NULL, into=NULL: copy_vdi(
            ctx.db, vdi, sr, into),
        'VDI.snapshot': lambda ctx, vdi, driver_params=None: snapshot_vdi(
            ctx.db, vdi),
        'VDI.clone': lambda ctx, vdi, driver_params=None: snapshot_vdi(
            ctx.db, vdi, snapshot=False),
    }


def _(_result):
    return ''
