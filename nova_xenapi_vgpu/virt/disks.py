"""An instance's disks on its member's local SR: root from the image,
ephemeral empty, sized to the flavor.

The root disk (``userdevice 0``, bootable) is a VDI of ``root_gb``; the
image is streamed from Glance (Nova's image API writes it chunk by chunk)
into XAPI's ``PUT /import_raw_vdi`` (``raw`` and ``vhd`` images), never
held whole in memory. An ephemeral disk (``userdevice 1``) is an empty VDI
of ``ephemeral_gb``. Every VDI made for an instance carries its uuid in
``other_config:nova_uuid``, so ``destroy`` removes exactly those (XAPI's
``VM.destroy`` removes the VBDs and VIFs but keeps the VDIs).

A flavor with ``disk 0`` boots from the image at the image's own size, as
Nova's libvirt driver does (imagebackend: no size, the image's virtual
size): a ``raw`` image's virtual size is its size; a ``vhd``'s is the
current size in its footer, read from the footer copy that starts every
dynamic or differencing VHD (the copy vhd-tool reads when it streams one
into a VDI), from the first chunk Glance sends; the rest of that download
is dropped, the image itself streamed once more into the VDI. An image
whose virtual size exceeds a nonzero ``root_gb`` is refused before
anything is made with ``FlavorDiskSmallerThanImage`` (Nova's API compares
only the file's size, which a sparse vhd undercuts).
"""

import dataclasses
import struct
import uuid

from nova import exception as novaexc
from nova.image import glance

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import vdi_import
from nova_xenapi_vgpu.xapi import writes

GIB = 1024 ** 3
NOVA_UUID = 'nova_uuid'
ROOT, EPHEMERAL = '0', '1'
VHD_COOKIE = b'conectix'
VHD_FOOTER = 512  # bytes; current size: big-endian u64 at offset 48


@dataclasses.dataclass(frozen=True)
class RootImage:
    """The Glance image a root disk is filled from."""

    id: str
    disk_format: str
    size: int  # bytes Glance holds
    virtual_size: int  # bytes of disk it fills


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


def root_image(context, instance, image_meta):
    """The image the root disk is filled from, or None (no image).

    :raises: ImageUnacceptable (not raw or vhd, no size, not a VHD with
             its footer copy first), FlavorDiskSmallerThanImage (its
             virtual size over a nonzero ``root_gb``); Nova's image
             errors. Nothing is made before.
    """
    if not image_meta.obj_attr_is_set('id'):
        return None
    fmt = image_meta.disk_format if image_meta.obj_attr_is_set(
        'disk_format') else None
    if fmt not in vdi_import.FORMATS:
        raise novaexc.ImageUnacceptable(
            image_id=image_meta.id, reason='XenAPIDriver imports raw and '
            'vhd images only, not %s' % fmt)
    api = glance.API()
    image = api.get(context, image_meta.id)  # its size, as Glance has it
    if image.get('size') is None:
        raise novaexc.ImageUnacceptable(image_id=image_meta.id,
                                        reason='Glance gives no size')
    size = int(image['size'])
    found = RootImage(image_meta.id, image['disk_format'], size, size if (
        image['disk_format'] == 'raw') else vhd_size(image_meta.id, _head(
            api, context, image_meta.id)))
    wanted = instance.flavor.root_gb * GIB
    if wanted and found.virtual_size > wanted:
        raise novaexc.FlavorDiskSmallerThanImage(
            flavor_size=wanted, image_size=found.virtual_size)
    return found


def root_bytes(instance, image):
    """The root disk's size: ``root_gb``, else the image's virtual size
    (0: no root disk)."""
    if instance.flavor.root_gb:
        return instance.flavor.root_gb * GIB
    return image.virtual_size if image else 0


def vhd_size(image_id, head):
    """The current size in the VHD footer copy ``head`` starts with.

    :raises: ImageUnacceptable.
    """
    if len(head) < VHD_FOOTER or head[:8] != VHD_COOKIE:
        raise novaexc.ImageUnacceptable(
            image_id=image_id, reason='not a dynamic or differencing VHD '
            '(no footer copy at its start, which XAPI\'s vhd import reads)')
    return struct.unpack('>Q', head[48:56])[0]


def _head(api, context, image_id):
    """The image's first VHD_FOOTER bytes from Glance; the rest of the
    download is dropped (its connection closed)."""
    head = b''
    stream = iter(api.download(context, image_id))
    try:
        for chunk in stream:
            head += chunk[:VHD_FOOTER - len(head)]
            if len(head) >= VHD_FOOTER:
                break
    finally:
        close = getattr(stream, 'close', None)
        if close is not None:
            close()
    return head


def create(client, sr, vm, instance, userdevice, size, bootable):
    """A VDI of ``size`` bytes on ``sr`` and its VBD on ``vm``; its ref.
    A lost answer is settled (``writes.create_once``): the VDI is made
    once; a VDI whose VBD was not made is destroyed again.

    :raises: XapiError, XapiConnectionError.
    """
    tag = uuid.uuid4().hex
    vdi = writes.create_once(client, 'VDI.create', ({
        'name_label': '%s %s' % (instance.name, userdevice),
        'name_description': instance.uuid, 'SR': sr,
        'virtual_size': str(size), 'type': 'user',
        'sharable': False, 'read_only': False,
        'other_config': {NOVA_UUID: instance.uuid, writes.TAG_KEY: tag},
        'xenstore_data': {}, 'sm_config': {}, 'tags': []},), tag,
        lambda wanted: _tagged_on(client, sr, wanted))
    try:
        attach(client, vm, vdi, userdevice, bootable)
    except (exception.XapiError, exception.XapiConnectionError):
        if not client.call('VDI.get_VBDs', vdi):
            client.call('VDI.destroy', vdi)
        raise
    return vdi


def _tagged_on(client, sr, tag):
    """The VDI on ``sr`` a creating call tagged ``tag``, or None."""
    found = client.call('VDI.get_all_records_where', 'field "SR" = "%s"'
                        % sr)
    return next((ref for ref, record in sorted(found.items())
                 if record['other_config'].get(writes.TAG_KEY) == tag),
                None)


def attach(client, vm, vdi, userdevice, bootable):
    """A read-write disk VBD for ``vdi`` at ``userdevice``."""
    return client.call('VBD.create', {
        'VM': vm, 'VDI': vdi, 'userdevice': userdevice,
        'bootable': bootable, 'mode': 'RW', 'type': 'Disk',
        'unpluggable': not bootable, 'empty': False, 'other_config': {},
        'qos_algorithm_type': '', 'qos_algorithm_params': {}})


def import_image(client, context, host_ref, vdi, image):
    """Stream the RootImage from Glance into ``vdi`` on the host's
    address.

    :raises: ImportFailed, XapiError, XapiConnectionError, OSError,
             Nova's image errors.
    """
    api = glance.API()
    vdi_import.import_raw_vdi(
        client, client.call('host.get_address', host_ref), vdi,
        image.disk_format, image.size,
        lambda body: api.download(context, image.id, data=body))


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
