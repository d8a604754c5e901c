"""An instance's disks on its member's local SR: root from the image,
ephemeral empty, sized to the flavor.

The root disk (``userdevice 0``, bootable) is a VDI of ``root_gb``; the
image is streamed from Glance (Nova's image API writes it chunk by chunk)
into XAPI's ``PUT /import_raw_vdi`` (``raw`` and ``vhd`` images), never
held whole in memory. An ephemeral disk (``userdevice 1``) is an empty VDI
of ``ephemeral_gb``. Every VDI made for an instance carries its uuid in
``other_config:nova_uuid``, so ``destroy`` removes exactly those (XAPI's
``VM.destroy`` removes the VBDs and VIFs but keeps the VDIs). A flavor
with ``disk 0`` gets no root disk (Nova's "size it to the image" is not
done: the VM boots from what a template gives, or nothing).
"""

from nova import exception as novaexc
from nova.image import glance

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import vdi_import

GIB = 1024 ** 3
NOVA_UUID = 'nova_uuid'
ROOT, EPHEMERAL = '0', '1'


def local_sr(client, host_ref):
    """``(ref, record)`` of the host's local SR (not shared, not ISO).

    :raises: StorageError when the host has none.
    """
    for pbd in client.call('host.get_PBDs', host_ref):
        sr = client.call('PBD.get_SR', pbd)
        record = client.call('SR.get_record', sr)
        if not record['shared'] and record['content_type'] != 'iso':
            return sr, record
    raise novaexc.StorageError(reason='XenServer host %s has no local SR '
                               'for instance disks' % host_ref)


def usage_gb(record):
    """``(total, used)`` GiB of an SR record (used rounded up)."""
    total = int(record['physical_size']) // GIB
    used = -(-int(record['physical_utilisation']) // GIB)
    return total, used


def check_image(instance, image_meta):
    """A root disk needs a ``raw`` or ``vhd`` image.

    :raises: ImageUnacceptable.
    """
    if not instance.flavor.root_gb or not image_meta.obj_attr_is_set('id'):
        return
    fmt = image_meta.disk_format if image_meta.obj_attr_is_set(
        'disk_format') else None
    if fmt not in vdi_import.FORMATS:
        raise novaexc.ImageUnacceptable(
            image_id=image_meta.id, reason='XenAPIDriver imports raw and '
            'vhd images only, not %s' % fmt)


def create(client, sr, vm, instance, userdevice, size_gb, bootable):
    """A VDI of ``size_gb`` on ``sr`` and its VBD on ``vm``; the VDI ref.

    :raises: XapiError, XapiConnectionError.
    """
    vdi = client.call('VDI.create', {
        'name_label': '%s %s' % (instance.name, userdevice),
        'name_description': instance.uuid, 'SR': sr,
        'virtual_size': str(size_gb * GIB), 'type': 'user',
        'sharable': False, 'read_only': False,
        'other_config': {NOVA_UUID: instance.uuid}, 'xenstore_data': {},
        'sm_config': {}, 'tags': []})
    try:
        attach(client, vm, vdi, userdevice, bootable)
    except exception.XapiError:
        client.call('VDI.destroy', vdi)
        raise
    return vdi


def attach(client, vm, vdi, userdevice, bootable):
    """A read-write disk VBD for ``vdi`` at ``userdevice``."""
    return client.call('VBD.create', {
        'VM': vm, 'VDI': vdi, 'userdevice': userdevice,
        'bootable': bootable, 'mode': 'RW', 'type': 'Disk',
        'unpluggable': not bootable, 'empty': False, 'other_config': {},
        'qos_algorithm_type': '', 'qos_algorithm_params': {}})


def import_image(client, context, host_ref, vdi, image_meta):
    """Stream the image from Glance into ``vdi`` on the host's address.

    :raises: ImportFailed, XapiError, XapiConnectionError, OSError,
             Nova's image errors.
    """
    api = glance.API()
    image = api.get(context, image_meta.id)  # its size, as Glance has it
    if image.get('size') is None:
        raise novaexc.ImageUnacceptable(image_id=image_meta.id,
                                        reason='Glance gives no size')
    vdi_import.import_raw_vdi(
        client, client.call('host.get_address', host_ref), vdi,
        image['disk_format'], int(image['size']),
        lambda body: api.download(context, image_meta.id, data=body))


def on_vm(client, vm):
    """``{userdevice: VDI ref}`` of the VM's disks."""
    found = {}
    for vbd in client.call('VM.get_VBDs', vm):
        record = client.call('VBD.get_record', vbd)
        if record['type'] == 'Disk' and not record['empty']:
            found[record['userdevice']] = record['VDI']
    return found


def owned(client, vm, instance_uuid):
    """The VDIs of ``vm`` made for the instance (tagged with it)."""
    return [vdi for vdi in on_vm(client, vm).values()
            if client.call('VDI.get_other_config', vdi).get(NOVA_UUID)
            == instance_uuid]


def tag(client, vdis, instance_uuid):
    """Mark ``vdis`` (a template's provisioned disks) as the instance's."""
    for vdi in vdis:
        config = client.call('VDI.get_other_config', vdi)
        client.call('VDI.set_other_config', vdi,
                    dict(config, **{NOVA_UUID: instance_uuid}))


def destroy(client, vdis):
    """VDI.destroy each (their VBDs gone with the VM); a VDI already
    gone is fine.

    :raises: XapiError, XapiConnectionError.
    """
    for vdi in vdis:
        try:
            client.call('VDI.destroy', vdi)
        except exception.HandleInvalid:
            pass


def grow_root(client, vm, instance):
    """A halted VM's root disk grown to the flavor's ``root_gb``."""
    root = on_vm(client, vm).get(ROOT)
    wanted = instance.flavor.root_gb * GIB
    if root and wanted > int(client.call('VDI.get_virtual_size', root)):
        client.call('VDI.resize', root, str(wanted))
