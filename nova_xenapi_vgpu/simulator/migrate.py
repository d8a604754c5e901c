"""Moving running VMs within the pool: pool_migrate and migrate_send.

From xapi_vm_migrate.ml, xapi_pgpu_helpers.ml and xapi_gpumon.ml: only
NVIDIA vGPUs on pGPUs with metadata move (``VM_HAS_VGPU`` otherwise); the
destination needs a pGPU of the same kind (``VM_REQUIRES_GPU``) that
NVIDIA's metadata calls compatible (``VGPU_DESTINATION_INCOMPATIBLE``,
``VGPU_GUEST_DRIVER_LIMIT``) and room (``VM_REQUIRES_VGPU``). The
destination pGPU is taken by the group's algorithm when the move starts
(``scheduled_to_be_resident_on``); the source is freed only when the move
succeeds. Cross-pool moves are not modelled.
"""

import base64
import json

from nova_xenapi_vgpu.simulator import boot
from nova_xenapi_vgpu.simulator import devices
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator import storage_motion
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL


def _blob(metadata):
    return json.loads(base64.b64decode(metadata[gpu.NVIDIA_KEY]))


def assert_compatible(db, vm, vgpu, pgpu, host):
    """Xapi_gpumon.Nvidia.assert_pgpu_is_compatible_with_vm, modelled.

    :raises: XapiFailure NVIDIA_TOOLS_ERROR, VGPU_GUEST_DRIVER_LIMIT,
             VGPU_DESTINATION_INCOMPATIBLE.
    """
    if not gpu.is_nvidia(db, vgpu):
        return
    destination = db.get('PGPU', pgpu)['compatibility_metadata']
    if gpu.NVIDIA_KEY not in destination:
        raise XapiFailure('NVIDIA_TOOLS_ERROR', host)
    source = db.get('VGPU', vgpu)['compatibility_metadata']
    if gpu.NVIDIA_KEY not in source:
        return
    reasons = _reasons(_blob(source), _blob(destination))
    if 'guest-driver' in reasons:
        raise XapiFailure('VGPU_GUEST_DRIVER_LIMIT', ', '.join(reasons), vm,
                          host)
    if reasons:
        raise XapiFailure('VGPU_DESTINATION_INCOMPATIBLE',
                          ', '.join(reasons), vgpu, host)


def _version(text):
    return [int(part) for part in text.split('.')]


def _reasons(source, destination):
    reasons = []
    if _version(destination['driver']) < _version(source['driver']):
        reasons.append('host-driver')
    if not source.get('guest_driver_migratable', True):
        reasons.append('guest-driver')
    if destination['device_id'] != source['device_id']:
        reasons.append('gpu')
    return reasons


def assert_destination_has_pgpus(db, vm, host, vgpu_map):
    """assert_destination_has_pgpu_compatible_with_vm (xapi_pgpu_helpers).

    :raises: XapiFailure VM_REQUIRES_GPU and the compatibility errors.
    """
    for vgpu, group in sorted(vgpu_map.items()):
        if not gpu.is_nvidia(db, vgpu):
            continue
        pgpus = db.field('GPU_group', group, 'PGPUs')
        if not pgpus:
            raise XapiFailure('VM_REQUIRES_GPU', vm, group)
        assert_compatible(db, vm, vgpu, pgpus[0], host)
    for vgpu in boot.vgpus_of(db, vm):
        if vgpu in vgpu_map or not gpu.is_nvidia(db, vgpu):
            continue
        group = db.get('VGPU', vgpu)['GPU_group']
        kinds = set(db.get('GPU_group', group)['GPU_types'])
        suitable = [p for p in db.field('host', host, 'PGPUs')
                    if set(db.get('GPU_group', db.get(
                        'PGPU', p)['GPU_group'])['GPU_types']) == kinds]
        if not suitable:
            raise XapiFailure('VM_REQUIRES_GPU', vm, group)
        assert_compatible(db, vm, vgpu, sorted(suitable)[0], host)


def _dest_host(db, dest):
    """The ``host`` of a migrate_receive map; another pool is refused."""
    host = dest.get('host')
    if host is None:
        raise XapiFailure('INTERNAL_ERROR', 'Not_found')
    if host not in db.objects['host']:
        # The simulator is one pool: it cannot reach another's services.
        raise XapiFailure('VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED')
    return host


def assert_can_migrate(db, vm, dest, vgpu_map, vdi_map=None,
                       vif_map=None):
    """VM.assert_can_migrate: the disks' map (storage_motion.py), the
    vGPU checks, then the intra-pool vif_map rule.

    :raises: XapiFailure as migrate_send would, before anything moves.
    """
    with db.lock:
        host = _dest_host(db, dest)
        vmlib.assert_operation_valid(db, vm, 'migrate_send')
        storage_motion.check_maps(db, vm, vdi_map or {}, vif_map or {})
        _check(db, vm, host, vgpu_map, sr_check=False)
        storage_motion.check_vif_map(vif_map or {})


def _check(db, vm, host, vgpu_map, sr_check=True):
    if db.get('VM', vm)['power_state'] not in vmlib.LIVE:
        return []
    assert_destination_has_pgpus(db, vm, host, vgpu_map)
    placement = boot.assert_can_boot_here(db, vm, host, sr_check=sr_check)
    for vgpu, pgpu in placement:
        assert_compatible(db, vm, vgpu, pgpu, host)
    return placement


def pool_migrate(db, vm, host, plug_fault=None):
    """VM.pool_migrate: a live move to ``host`` of this pool. Its options
    are not read: xapi's "live" never is (xapi_vm_migrate.ml)."""
    _move(db, vm, host, 'pool_migrate', {}, plug_fault)


def migrate_send(db, vm, dest, vgpu_map, plug_fault=None, vdi_map=None,
                 vif_map=None):
    """VM.migrate_send within the pool; ``vgpu_map`` is checked, every
    disk must be in ``vdi_map`` and its disks move (storage_motion.py).

    Within a pool xapi keeps each VGPU's group and records the map only
    on cross-pool moves (``other_config:maps_to``), which are not
    modelled.
    """
    with db.lock:
        host = _dest_host(db, dest)
        storage_motion.check_maps(db, vm, vdi_map or {}, vif_map or {})
        storage_motion.check_vif_map(vif_map or {})
    _move(db, vm, host, 'migrate_send', vgpu_map, plug_fault,
          vdi_map or {})


def _move(db, vm, host, op, vgpu_map, plug_fault, vdi_map=None):
    def reserve():
        db.get('host', host)
        placement = _check(db, vm, host, vgpu_map,
                           sr_check=vdi_map is None)
        for vgpu, pgpu in placement:
            db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', pgpu)
        if placement:
            db.set('VM', vm, 'scheduled_to_be_resident_on', host)
        return placement

    def commit(_placement):
        if vdi_map:
            storage_motion.move_disks(db, vm, vdi_map)
        if db.get('VM', vm)['power_state'] in vmlib.LIVE:
            _arrive(db, vm, host)
    boot.in_two_phases(db, vm, op, reserve, commit, plug_fault)


def _arrive(db, vm, host):
    """The VM runs on ``host``: its VGPUs move to the scheduled pGPUs."""
    pcis = []
    for vgpu in boot.vgpus_of(db, vm):
        pgpu = db.get('VGPU', vgpu)['scheduled_to_be_resident_on']
        db.set('VGPU', vgpu, 'resident_on', pgpu)
        db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', NULL)
        needs = gpu.requires_passthrough(db, db.get('VGPU', vgpu)['type'])
        if needs:
            db.set('VGPU', vgpu, 'PCI', NULL)
            db.set('VGPU', vgpu, 'PCI', boot.device_for(db, pgpu, needs))
            pcis.append(db.get('VGPU', vgpu)['PCI'])
        if gpu.is_nvidia(db, vgpu):
            db.set('VGPU', vgpu, 'compatibility_metadata',
                   boot.vgpu_metadata(db, vm, pgpu))
    db.set('VM', vm, 'attached_PCIs',
           pcis + boot.other_config_pcis(db, vm, host))
    source = db.get('VM', vm)['resident_on']
    db.set('VM', vm, 'resident_on', host)
    db.set('VM', vm, 'scheduled_to_be_resident_on', NULL)
    devices.touch_host(db, source)
    devices.touch_host(db, host)


def vdi_pool_migrate(db, vdi, sr, plug_fault=None):
    """VDI.pool_migrate: one disk to ``sr``, the VM with it if it runs
    (storage_motion.py); returns the VDI the VBD now uses."""
    with db.lock:
        vm, vdi_map, host = storage_motion.pool_migrate_plan(db, vdi, sr)
        vbd = [v for v in db.field('VDI', vdi, 'VBDs')
               if db.get('VBD', v)['VM'] == vm][0]
    _move(db, vm, host, 'migrate_send', {}, plug_fault, vdi_map)
    with db.lock:
        return db.get('VBD', vbd)['VDI']


def migrate_receive(db, host, network, session):
    """host.migrate_receive: the ``dest`` map migrate_send takes."""
    with db.lock:
        db.get('host', host)
        db.get('network', network)
        address = db.get('host', host)['address']
    base = 'http://%s/services' % address
    return {'host': host, 'session_id': session,
            'master': 'http://%s/' % address,
            'SM': '%s/SM?session_id=%s' % (base, session),
            'xenops': '%s/xenops?session_id=%s' % (base, session)}
