"""Storage motion inside the pool: VM.migrate_send's vdi_map and
VDI.pool_migrate.

xapi_vm_migrate.ml: every disk of the VM must be in the vdi_map
(check_vdi_map, VDI_NOT_IN_MAP [vdi]); inside a pool a vif_map is refused
(assert_can_migrate: all VIFs stay on their networks); a disk mapped to
another SR is mirrored there and the VBD then points at the copy, the
source VDI going away. VDI.pool_migrate (message_forwarding.ml and
vdi_pool_migrate) moves one disk of a VM: VDI_NEEDS_VM_FOR_MIGRATE without
a VBD; the other disks stay; the destination host is the master when it
sees every SR, else a host that does, and a running VM moves there.
"""

from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator import storage
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL


def disks_of(db, vm):
    """The VDIs of the VM's non-empty VBDs (vdi_filter)."""
    return [db.get('VBD', v)['VDI'] for v in db.field('VM', vm, 'VBDs')
            if not db.get('VBD', v)['empty']]


def check_maps(db, vm, vdi_map, vif_map):
    """check_vdi_map, then the intra-pool vif_map rule.

    :raises: XapiFailure VDI_NOT_IN_MAP, HANDLE_INVALID (an SR),
             OPERATION_NOT_ALLOWED.
    """
    for vdi in disks_of(db, vm):
        if vdi not in vdi_map:
            raise XapiFailure('VDI_NOT_IN_MAP', vdi)
    for sr in sorted(set(vdi_map.values())):
        db.get('SR', sr)


def check_vif_map(vif_map):
    """:raises: XapiFailure OPERATION_NOT_ALLOWED for any vif_map."""
    if vif_map:
        raise XapiFailure('OPERATION_NOT_ALLOWED', 'VIF mapping is not '
                          'allowed for intra-pool migration -all VIFs must '
                          'be on the same network')


def move_disks(db, vm, vdi_map):
    """Mirror each mapped disk to its SR; the VBDs follow the copies."""
    for vbd in db.field('VM', vm, 'VBDs'):
        record = db.get('VBD', vbd)
        target = vdi_map.get(record['VDI'])
        if record['empty'] or target is None:
            continue
        if db.get('VDI', record['VDI'])['SR'] == target:
            continue
        old = record['VDI']
        new = storage.copy_vdi(db, old, target)
        for field in ('name_label', 'name_description'):
            db.set('VDI', new, field, db.get('VDI', old)[field])
        db.set('VBD', vbd, 'VDI', new)
        db.set('VDI', new, 'read_only', db.get('VDI', old)['read_only'])
        sr = db.get('VDI', old)['SR']
        db.destroy('VDI', old)
        storage.refresh(db, sr)


def pool_migrate_plan(db, vdi, sr):
    """VDI.pool_migrate's VM, vdi_map and destination host.

    :raises: XapiFailure VDI_NEEDS_VM_FOR_MIGRATE, NO_HOSTS_AVAILABLE.
    """
    db.get('SR', sr)
    vbds = db.field('VDI', vdi, 'VBDs')
    if not vbds:
        raise XapiFailure('VDI_NEEDS_VM_FOR_MIGRATE', vdi)
    vm = db.get('VBD', vbds[0])['VM']
    vdi_map = {v: db.get('VDI', v)['SR'] for v in disks_of(db, vm)}
    vdi_map[vdi] = sr
    srs = set(vdi_map.values())
    master = db.get('pool', db.pool)['master']
    hosts = [master] + sorted(h for h in db.objects['host'] if h != master)
    for host in hosts:
        if all(storage.host_sees(db, host, s) for s in srs):
            return vm, vdi_map, host
    raise XapiFailure('NO_HOSTS_AVAILABLE')
