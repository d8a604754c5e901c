"""An instance's VM: made from the flavor, found, started, stopped, gone.

A VM carries Nova's instance uuid in ``other_config:nova_uuid`` (as
Nova's former XenAPI driver did) and is named after the instance; its
``affinity`` is the compute node's host, so a halted VM still belongs to
its node. Disks (``disks``) and VIFs (``vifs``) are made beside it.
"""

import xml.etree.ElementTree as ElementTree

from nova import exception as novaexc
from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.virt import disks
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import records

NOVA_UUID = 'nova_uuid'
# The image property xenapi_template, as Nova keeps it on the instance.
TEMPLATE_KEY = 'image_xenapi_template'
DISKS_KEY = 'disks'  # a template's <provision> (xapi_templates.ml)
MIB = 1024 * 1024
GIB = 1024 * MIB
# XAPI's power states -> nova.compute.power_state values.
POWER_STATES = {'Running': 1, 'Paused': 3, 'Halted': 4, 'Suspended': 7}
NOSTATE = 0
# What a call to a VM on a member that is down fails with.
HOST_DOWN = ('HOST_OFFLINE', 'HOST_NOT_LIVE')
LOG = logging.getLogger(__name__)


def find(client, instance):
    """The ref of the instance's VM, or None.

    :raises: XapiError, XapiConnectionError.
    """
    for ref in client.call('VM.get_by_name_label', instance.name):
        config = client.call('VM.get_other_config', ref)
        if config.get(NOVA_UUID) == instance.uuid:
            return ref
    return None


def build(client, host_ref, instance, cpu_mask=None, sr_uuid=None,
          root_bytes=0):
    """A halted HVM VM for ``instance``: from the XenServer template its
    image names (``xenapi_template``), else from its flavor; sized to the
    flavor either way (a template's root disk at least ``root_bytes``).
    ``cpu_mask`` (host CPUs, e.g. ``0,1,2``) keeps its vCPUs on Nova's
    NUMA nodes.

    :raises: TemplateNotFound, XapiError, XapiConnectionError.
    """
    name = template_of(instance)
    if name:
        vm = from_template(client, name, instance, sr_uuid, root_bytes)
        move_here(client, host_ref, instance, vm, cpu_mask)
        return vm
    flavor = instance.flavor
    memory = str(flavor.memory_mb * MIB)
    return client.call('VM.create', {
        'name_label': instance.name, 'name_description': instance.uuid,
        'memory_static_max': memory, 'memory_static_min': memory,
        'memory_dynamic_max': memory, 'memory_dynamic_min': memory,
        'VCPUs_max': str(flavor.vcpus), 'VCPUs_at_startup':
        str(flavor.vcpus), 'VCPUs_params': {'mask': cpu_mask} if cpu_mask
        else {}, 'HVM_boot_policy': 'BIOS order',
        'HVM_boot_params': {'order': 'dc'}, 'affinity': host_ref,
        'other_config': {NOVA_UUID: instance.uuid},
        'platform': {'acpi': 'true', 'apic': 'true', 'pae': 'true',
                     'viridian': 'true'},
        'actions_after_shutdown': 'destroy',
        'actions_after_reboot': 'restart', 'actions_after_crash':
        'restart', 'is_a_template': False})


class TemplateNotFound(novaexc.NovaException):
    """The image's ``xenapi_template`` names no template of the pool."""

    msg_fmt = ("Image property xenapi_template names %(name)s, which is "
               "no template of the pool (xe template-list)")


def template_of(instance):
    """The template the instance's image names, or None."""
    return (instance.system_metadata or {}).get(TEMPLATE_KEY) or None


def from_template(client, name, instance, sr_uuid, root_bytes=0):
    """``VM.clone`` of the template, its disks put on the SR ``sr_uuid``
    (the root one at least ``root_bytes``), ``VM.provision``: what ``xe
    vm-install`` does. The provisioned disks are tagged the instance's.

    :raises: TemplateNotFound, XapiError, XapiConnectionError.
    """
    found = [ref for ref in client.call('VM.get_by_name_label', name)
             if client.call('VM.get_is_a_template', ref)]
    if not found:
        raise TemplateNotFound(name=name)
    vm = client.call('VM.clone', found[0], instance.name)
    try:
        config = client.call('VM.get_other_config', vm)
        if DISKS_KEY in config:
            config[DISKS_KEY] = provision_disks(
                config[DISKS_KEY], sr_uuid, root_bytes)
        config[NOVA_UUID] = instance.uuid
        client.call('VM.set_other_config', vm, config)
        client.call('VM.set_name_description', vm, instance.uuid)
        client.call('VM.provision', vm)
    except exception.XapiError:
        destroy(client, vm)
        raise
    return vm


def provision_disks(text, sr_uuid, root_bytes):
    """A template's ``other_config:disks`` with every disk on ``sr_uuid``
    and the device-0 disk at least ``root_bytes``."""
    root = ElementTree.fromstring(text)
    for disk in root.iter('disk'):
        disk.set('sr', sr_uuid or '')
        if disk.get('device') == '0' and root_bytes > int(
                disk.get('size', '0')):
            disk.set('size', str(root_bytes))
    return ElementTree.tostring(root, encoding='unicode')


def move_here(client, host_ref, instance, vm, cpu_mask=None):
    """A halted VM made this member's, sized to the instance's flavor.

    :raises: XapiError, XapiConnectionError.
    """
    flavor = instance.flavor
    vcpus = str(flavor.vcpus)
    if client.call('VM.get_VCPUs_max', vm) != vcpus:
        if int(vcpus) < int(client.call('VM.get_VCPUs_at_startup', vm)):
            client.call('VM.set_VCPUs_at_startup', vm, vcpus)
        client.call('VM.set_VCPUs_max', vm, vcpus)
    client.call('VM.set_VCPUs_at_startup', vm, vcpus)
    memory = str(flavor.memory_mb * MIB)
    if client.call('VM.get_memory_static_max', vm) != memory:
        client.call('VM.set_memory_limits', vm, memory, memory, memory,
                    memory)
    client.call('VM.set_VCPUs_params', vm,
                {'mask': cpu_mask} if cpu_mask else {})
    client.call('VM.set_affinity', vm, host_ref)


def power_state(client, vm):
    """Nova's power state of a VM."""
    return POWER_STATES.get(client.call('VM.get_power_state', vm), NOSTATE)


def start(client, host_ref, vm):
    """Start on this host (a plain VM.start could choose another)."""
    lifecycle.Builder(client, None, host_ref).start_again(vm)


def stop(client, vm, hard=False):
    """Clean shutdown (hard when XAPI refuses it or ``hard``)."""
    if hard:
        client.call_async('VM.hard_shutdown', vm)
    else:
        lifecycle.Builder(client, None, None).stop(vm)


def destroy(client, vm, instance_uuid=None):
    """Shut down if need be, then destroy the VM (its VGPUs, VBDs and VIFs
    go with it) and the disks made for ``instance_uuid``.

    :raises: XapiError, XapiConnectionError.
    """
    if client.call('VM.get_power_state', vm) != 'Halted':
        client.call_async('VM.hard_shutdown', vm)
    vdis = disks.owned(client, vm, instance_uuid) if instance_uuid else []
    try:
        client.call('VM.destroy', vm)
    except exception.HandleInvalid:
        pass
    disks.destroy(client, vdis)


def belongs_to(client, vm, host_ref):
    """Whether the VM is this member's: it runs here or its affinity is
    here (a VM another member runs after an evacuation is not)."""
    return host_ref in (client.call('VM.get_resident_on', vm),
                        client.call('VM.get_affinity', vm))


def evict(client, vm, instance_uuid):
    """An evacuated instance's old VM gone with its disks: stopped by
    the pool (``hard_shutdown``; ``power_state_reset`` when its host is
    down, xapi_vm.ml), destroyed; a disk on an SR nobody sees is left
    and logged.

    :raises: XapiError, XapiConnectionError.
    """
    if client.call('VM.get_power_state', vm) != 'Halted':
        try:
            client.call_async('VM.hard_shutdown', vm)
        except exception.XapiError as exc:
            if exc.code not in HOST_DOWN:
                raise
            client.call('VM.power_state_reset', vm)
    vdis = disks.owned(client, vm, instance_uuid)
    client.call('VM.destroy', vm)
    for vdi in vdis:
        try:
            client.call('VDI.destroy', vdi)
        except exception.XapiError as exc:
            LOG.warning('Disk %s of evacuated instance %s stays (%s)', vdi,
                        instance_uuid, exc)


def instance_uuids(client, host_ref):
    """uuids of Nova's instances whose VMs run on or belong to this host.

    :raises: XapiError, XapiConnectionError, RecordError.
    """
    vms = client.call('VM.get_all_records')
    found = []
    for raw in vms.values():
        uuid = raw.get('other_config', {}).get(NOVA_UUID)
        if uuid and host_ref in (raw.get('resident_on'),
                                 raw.get('affinity')):
            found.append(uuid)
    return sorted(found)


def record(client, vm):
    """The VM's record (records.Vm)."""
    return records.Vm.from_xapi(vm, client.call('VM.get_record', vm))
