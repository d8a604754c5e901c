"""Templates and whole-VM copies: provision, clone, copy, destroy.

xapi_templates.ml: a template's ``other_config:disks`` is a
``<provision>`` element of ``<disk device size sr bootable type>``;
VM.provision (xapi_vm.ml) clears ``is_a_template`` first, then creates
each disk on the SR whose UUID the disk names (``UUID_INVALID [sr; ...]``
otherwise: shipped templates say ``sr=""`` until a client rewrites it, as
``xe vm-install`` does), then drops the provision keys. xapi_vm_clone.ml:
clone gives each disk a VDI.clone, copy a VDI.copy to the SR asked for
(the disk's own SR when that is not an SR), snapshot a VDI.snapshot;
VIFs follow with new MACs unless it is a snapshot.
"""

import xml.etree.ElementTree as ElementTree

from nova_xenapi_vgpu.simulator import network
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator import storage
from nova_xenapi_vgpu.simulator import vbd as vbdlib
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
DISKS_KEY, POST_INSTALL_KEY = 'disks', 'postinstall'
_VDI_TYPES = ('system', 'user', 'ephemeral', 'suspend', 'crashdump')


def parse_disks(text):
    """xapi_templates.ml, disks_of_xml: (device, size, sr, bootable,
    type) per disk.

    :raises: ValueError on a malformed description (xapi's Parse_failure).
    """
    root = ElementTree.fromstring(text)
    if root.tag != 'provision' or root.attrib:
        raise ValueError('Parse_failure')
    disks = []
    for disk in root:
        attrs = disk.attrib
        if disk.tag != 'disk' or len(disk):
            raise ValueError('Parse_failure')
        vdi_type = attrs.get('type', 'system')
        disks.append((attrs['device'], int(attrs['size']), attrs['sr'],
                      attrs['bootable'] == 'true',
                      vdi_type if vdi_type in _VDI_TYPES else 'system'))
    return disks


def provision(db, vm):
    """VM.provision: the template's disks become VDIs and VBDs."""
    vmlib.assert_operation_valid(db, vm, 'provision')
    db.set('VM', vm, 'is_a_template', False)
    other = db.get('VM', vm)['other_config']
    try:
        disks = parse_disks(other[DISKS_KEY]) if DISKS_KEY in other else []
    except (ValueError, KeyError, ElementTree.ParseError):
        raise XapiFailure('INTERNAL_ERROR',
                          'Xapi_templates.Parse_failure') from None
    created = []
    try:
        for disk in disks:
            created.append(_create_disk(db, vm, disk))
    except XapiFailure:
        for vbd, vdi in created:
            db.destroy('VBD', vbd)
            storage.destroy_vdi(db, vdi)
        raise
    db.set('VM', vm, 'other_config', {
        k: v for k, v in other.items()
        if k not in (DISKS_KEY, POST_INSTALL_KEY)})


def _create_disk(db, vm, disk):
    device, size, sr_uuid, bootable, vdi_type = disk
    try:
        sr = db.by_uuid('SR', sr_uuid)
    except XapiFailure:
        raise XapiFailure('UUID_INVALID', 'sr', sr_uuid) from None
    vdi = storage.create_vdi(db, {
        'SR': sr, 'virtual_size': size, 'type': vdi_type,
        'name_description': 'Created by template provisioner',
        'sm_config': {'vmhint': db.get('VM', vm)['uuid']}})
    vbd = vbdlib.create(db, {
        'VM': vm, 'VDI': vdi, 'userdevice': device, 'bootable': bootable,
        'mode': 'RW', 'type': 'Disk', 'unpluggable': vdi_type != 'system',
        'other_config': {'owner': ''}})
    db.set('VDI', vdi, 'name_label', db.get('VBD', vbd)['userdevice'])
    return vbd, vdi


def clone(db, vm, new_name, op='clone', sr=NULL):
    """VM.clone / copy / snapshot: the record, VGPUs, disks and VIFs."""
    with db.lock:
        new = vmlib.clone(db, vm, new_name, op)
        for vbd in db.field('VM', vm, 'VBDs'):
            vdi = db.get('VBD', vbd)['VDI']
            if not db.get('VBD', vbd)['empty']:
                vdi = _copy_disk(db, vdi, op, sr)
            vbdlib.copy(db, vbd, new, vdi)
        for vif in db.field('VM', vm, 'VIFs'):
            network.copy(db, vif, new, preserve_mac=op == 'snapshot')
        return new


def _copy_disk(db, vdi, op, sr):
    if op == 'snapshot':
        return storage.snapshot_vdi(db, vdi)
    if op == 'clone':
        return storage.snapshot_vdi(db, vdi, snapshot=False)
    target = sr if sr in db.objects['SR'] else db.get('VDI', vdi)['SR']
    return storage.copy_vdi(db, vdi, target)


def copy(db, vm, new_name, sr):
    """VM.copy: an ISO SR is refused (xapi_vm.ml)."""
    if sr in db.objects['SR'] and db.get('SR', sr)['content_type'] == 'iso':
        raise XapiFailure('OPERATION_NOT_ALLOWED',
                          "Cannot copy a VM's disks to an ISO SR")
    return clone(db, vm, new_name, 'copy', sr)


def destroy(db, vm):
    """VM.destroy: the VM, its VBDs, VIFs, VGPUs and metrics; VDIs stay
    (xapi_vm_helpers.ml, destroy)."""
    with db.lock:
        record = db.get('VM', vm)
        if record['is_control_domain']:
            raise XapiFailure('OPERATION_NOT_ALLOWED',
                              'cannot destroy a control domain')
        vmlib.assert_operation_valid(db, vm, 'destroy')
        for cls in ('VBD', 'VIF'):
            for ref in db.field('VM', vm, cls + 's'):
                db.destroy(cls, ref)
        if record['metrics'] in db.objects['VM_metrics']:
            db.destroy('VM_metrics', record['metrics'])
        vmlib.destroy(db, vm)


def set_is_a_template(db, vm, value):
    """VM.set_is_a_template: making a template needs a halted VM."""
    if value:
        vmlib.assert_operation_valid(db, vm, 'make_into_template')
    db.set('VM', vm, 'is_a_template', bool(value))
    if not value:
        db.set('VM', vm, 'is_default_template', False)


def handlers():
    """The XAPI calls of this module."""
    return {
        'VM.provision': lambda ctx, vm: _(provision(ctx.db, vm)),
        'VM.clone': lambda ctx, vm, name: clone(ctx.db, vm, name),
        'VM.copy': lambda ctx, vm, name, sr: copy(ctx.db, vm, name, sr),
        'VM.snapshot': lambda ctx, vm, name, ignore_vdis=(): clone(
            ctx.db, vm, name, 'snapshot'),
        'VM.destroy': lambda ctx, vm: _(destroy(ctx.db, vm)),
        'VM.set_is_a_template': lambda ctx, vm, value: _(
            set_is_a_template(ctx.db, vm, value)),
    }


def _(_result):
    return ''
