"""VBDs: disks and CD drives of a VM, their device numbers, hotplug.

From xapi_vbd.ml (create's checks), xapi_vbd_helpers.ml (what plug,
unplug and destroy need) and device_number.ml: a userdevice names a
device number, and ``0``, ``hda`` and ``xvda`` may name the same disk, so
DEVICE_ALREADY_EXISTS compares numbers, not strings.
"""

import re

from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
_LINUX = re.compile(r'^(xvd|sd|fd|hd)([a-z]+)(\d*)$')
_BUS = {'xvd': 'xen', 'sd': 'scsi', 'fd': 'floppy', 'hd': 'ide'}
_MAX_DISK = {'xen': (1 << 20) - 1, 'scsi': 15, 'floppy': 2, 'ide': 19}
_MIGRATING = ('migrate_send', 'pool_migrate')
AUTODETECT_RANGE = range(0, 255)  # xapi_vm_helpers.ml, allowed_VBD_devices


def device_number(name, hvm):
    """device_number.ml, of_string: (bus, disk) or None."""
    if name.isdigit():
        disk = int(name)
        bus = 'ide' if hvm and disk < 4 else 'xen'
        return (bus, disk) if disk <= _MAX_DISK[bus] else None
    match = _LINUX.match(name)
    if match:
        prefix, letters, _ = match.groups()
        disk = 0
        for char in letters:
            disk = disk * 26 + ord(char) - ord('a') + 1
        bus = _BUS[prefix]
        return (bus, disk - 1) if disk - 1 <= _MAX_DISK[bus] else None
    match = re.match(r'^d(\d+)(p\d+)?$', name)
    return ('xen', int(match.group(1))) if match else None


def possible_devices(name):
    """xapi_vm_helpers.ml, possible_VBD_devices_of_string."""
    return {d for d in (device_number(name, True),
                        device_number(name, False)) if d}


def used_devices(db, vm):
    """all_used_VBD_devices: from every VBD's device and userdevice."""
    used = set()
    for vbd in db.field('VM', vm, 'VBDs'):
        record = db.get('VBD', vbd)
        used |= possible_devices(record['device'])
        used |= possible_devices(record['userdevice'])
    return used


def valid_device(name):
    """xapi_vbd_helpers.ml, valid_device."""
    return (name == 'autodetect' or device_number(name, False) is not None
            or re.match(r'^-?\d+$', name) is not None)


def allowed_devices(db, vm):
    """xapi_vm_helpers.ml, allowed_VBD_devices for disks: 0..254 as
    device numbers of the VM's kind (IDE for an HVM guest's first four)
    that no VBD uses; their disk numbers."""
    hvm = db.get('VM', vm)['domain_type'] == 'hvm'
    used = used_devices(db, vm)
    return [disk for disk in AUTODETECT_RANGE
            if device_number(str(disk), hvm) not in used]


def _userdevice(db, vm, name):
    if not valid_device(name):
        raise XapiFailure('INVALID_DEVICE', name)
    if name == 'autodetect':
        free = allowed_devices(db, vm)
        if not free:
            raise XapiFailure('INVALID_DEVICE', name)
        name = str(free[0])
    if possible_devices(name) & used_devices(db, vm):
        raise XapiFailure('DEVICE_ALREADY_EXISTS', name)
    return name


def _assert_not_migrating(db, vm):
    for task, op in sorted(db.get('VM', vm)['current_operations'].items()):
        if op in _MIGRATING:
            raise XapiFailure('OTHER_OPERATION_IN_PROGRESS', 'VM', vm, op,
                              task)


def create(db, record):
    """VBD.create, with xapi_vbd.ml's checks in its order."""
    vm = record.get('VM', NULL)
    db.get('VM', vm)
    vdi, empty = record.get('VDI', NULL), bool(record.get('empty', False))
    kind, mode = record.get('type', 'Disk'), record.get('mode', 'RW')
    if kind == 'CD' and mode != 'RO':
        raise XapiFailure('VBD_CDS_MUST_BE_READONLY')
    if kind != 'CD' and empty:
        raise XapiFailure('VBD_NOT_REMOVABLE_MEDIA', 'in constructor')
    if not empty and mode == 'RW' and db.get('VDI', vdi)['read_only']:
        raise XapiFailure('VDI_READONLY', vdi)
    _assert_not_migrating(db, vm)
    userdevice = _userdevice(db, vm, str(record.get('userdevice', '')))
    return db.create(
        'VBD', VM=vm, VDI=NULL if empty else vdi, userdevice=userdevice,
        bootable=bool(record.get('bootable', False)), mode=mode, type=kind,
        unpluggable=bool(record.get('unpluggable', True)), empty=empty,
        other_config=dict(record.get('other_config', {})),
        qos_algorithm_type=record.get('qos_algorithm_type', ''),
        qos_algorithm_params=dict(record.get('qos_algorithm_params', {})))


def destroy(db, vbd):
    """VBD.destroy: unplug first (xapi_vbd_helpers.ml)."""
    record = db.get('VBD', vbd)
    if record['currently_attached']:
        vm_uuid = db.get('VM', record['VM'])['uuid']
        raise XapiFailure('OPERATION_NOT_ALLOWED', "VBD '%s' still attached "
                          "to '%s'" % (record['uuid'], vm_uuid))
    db.destroy('VBD', vbd)


def operation_error(db, vbd, op):
    """xapi_vbd_helpers.ml, valid_operations: the first error for ``op``."""
    record = db.get('VBD', vbd)
    vm = db.get('VM', record['VM'])
    if op == 'unplug' and not record['unpluggable']:
        return XapiFailure('VBD_NOT_UNPLUGGABLE', vbd)
    if vm['power_state'] == 'Running':
        if record['currently_attached'] and op == 'plug':
            return XapiFailure('DEVICE_ALREADY_ATTACHED', vbd)
        if not record['currently_attached'] and op == 'unplug':
            return XapiFailure('DEVICE_ALREADY_DETACHED', vbd)
    else:
        return XapiFailure('VM_BAD_POWER_STATE', record['VM'], 'running',
                           vm['power_state'].lower())
    if vm['domain_type'] == 'hvm' and not vm['_pv_drivers']:
        return XapiFailure('VM_MISSING_PV_DRIVERS', record['VM'])
    if vm['domain_type'] == 'hvm' and record['type'] == 'CD':
        return XapiFailure('OPERATION_NOT_ALLOWED', 'HVM CDROMs cannot be '
                           'hotplugged/unplugged, only inserted or ejected')
    return None


def plug(db, vbd):
    """VBD.plug on a running VM."""
    error = operation_error(db, vbd, 'plug')
    if error is not None:
        raise error
    attach(db, vbd)


def unplug(db, vbd):
    """VBD.unplug on a running VM."""
    error = operation_error(db, vbd, 'unplug')
    if error is not None:
        raise error
    db.set('VBD', vbd, 'currently_attached', False)


def attach(db, vbd):
    """The device is in the domain: currently_attached, a device name."""
    record = db.get('VBD', vbd)
    number = device_number(record['userdevice'], False)
    if number and not record['device']:
        db.set('VBD', vbd, 'device', linux_name(number[1]))
    db.set('VBD', vbd, 'currently_attached', True)


def linux_name(disk):
    """device_number.ml, to_linux_device for a xen disk: xvda, xvdb..."""
    letters = ''
    disk += 1
    while disk:
        disk, rest = divmod(disk - 1, 26)
        letters = chr(ord('a') + rest) + letters
    return 'xvd' + letters


def copy(db, vbd, vm, vdi):
    """xapi_vbd_helpers.ml, copy: the same VBD for another VM and VDI."""
    record = db.get('VBD', vbd)
    fields = {name: record[name] for name in (
        'userdevice', 'bootable', 'mode', 'type', 'unpluggable', 'empty',
        'qos_algorithm_type')}
    return db.create('VBD', VM=vm, VDI=vdi, device='',
                     other_config=dict(record['other_config']),
                     qos_algorithm_params=dict(
                         record['qos_algorithm_params']), **fields)


def handlers():
    """The XAPI calls of this module."""
    return {
        'VBD.create': lambda ctx, record: create(ctx.db, record),
        'VBD.destroy': lambda ctx, vbd: _(destroy(ctx.db, vbd)),
        'VBD.plug': lambda ctx, vbd: _(plug(ctx.db, vbd)),
        'VBD.unplug': lambda ctx, vbd: _(unplug(ctx.db, vbd)),
        'VBD.unplug_force': lambda ctx, vbd: _(unplug(ctx.db, vbd)),
        'VM.get_allowed_VBD_devices': lambda ctx, vm: [
            str(disk) for disk in allowed_devices(ctx.db, vm)],
    }


def _(_result):
    return ''
