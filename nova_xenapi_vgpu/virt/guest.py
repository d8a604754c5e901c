"""An instance's VM: made from the flavor, found, started, stopped, gone.

A VM carries Nova's instance uuid in ``other_config:nova_uuid`` (as
Nova's former XenAPI driver did) and is named after the instance; its
``affinity`` is the compute node's host, so a halted VM still belongs to
its node. Disks and VIFs are steps of ``build`` that come with the
simulator's SR/VDI/VIF support; until then a flavor with a root disk or
an instance with ports is refused with NotImplementedError.
"""

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import records

NOVA_UUID = 'nova_uuid'
MIB = 1024 * 1024
# XAPI's power states -> nova.compute.power_state values.
POWER_STATES = {'Running': 1, 'Paused': 3, 'Halted': 4, 'Suspended': 7}
NOSTATE = 0


def find(client, instance):
    """The ref of the instance's VM, or None.

    :raises: XapiError, XapiConnectionError.
    """
    for ref in client.call('VM.get_by_name_label', instance.name):
        config = client.call('VM.get_other_config', ref)
        if config.get(NOVA_UUID) == instance.uuid:
            return ref
    return None


def build(client, host_ref, instance, network_info=None, cpu_mask=None):
    """A halted HVM VM for ``instance`` from its flavor; ``cpu_mask``
    (host CPUs, e.g. ``0,1,2``) keeps its vCPUs on Nova's NUMA nodes.

    :raises: NotImplementedError for a root disk or ports (not yet);
             XapiError, XapiConnectionError.
    """
    _check_supported(instance, network_info)
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


def _check_supported(instance, network_info):
    if instance.flavor.root_gb or instance.flavor.ephemeral_gb:
        raise NotImplementedError(
            'XenAPIDriver cannot make disks yet (SR/VDI support is still '
            'to come); use a flavor with disk 0 and ephemeral 0')
    if network_info:
        raise NotImplementedError(
            'XenAPIDriver cannot plug VIFs yet; boot with networks "none"')


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


def destroy(client, vm):
    """Shut down if need be, then destroy the VM (its VGPUs go with it).

    :raises: XapiError, XapiConnectionError.
    """
    if client.call('VM.get_power_state', vm) != 'Halted':
        client.call_async('VM.hard_shutdown', vm)
    try:
        client.call('VM.destroy', vm)
    except exception.HandleInvalid:
        pass


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
