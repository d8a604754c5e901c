"""Moves inside the pool: live migration with the vGPUs following, and
the disks of a halted VM carried to another member's local SR.

Inside a pool XAPI keeps a VGPU's GPU group on a live migration
(``VGPU.GPU_group`` is read-only; ``vgpu_map`` serves cross-pool moves
only, xapi_vm_migrate.ml) and places the VGPU on the destination's pGPU
of that group. On a pool pinned by ``gpu-groups pin`` that is the pGPU at
the same PCI address. Nova claims the destination's slots on its own
(``check_can_live_migrate_destination``, after the driver's check), so
the destination checks in ``pre_live_migration`` that Nova's slot for
each vGPU is on that very pGPU (``check_claim``) and refuses the move
otherwise, before anything moves. There, not in
``check_source_migrate_data_at_dest``: Nova frees a destination's PCI
claim only in ``rollback_live_migration_at_destination`` (or at its next
periodic update), which a pre-check failure never reaches and a
``pre_live_migration`` failure does (the source's rollback calls it).
Disks: ``VM.migrate_send`` with every disk in the ``vdi_map`` (to the
destination's local SR) and no ``vif_map``; ``VM.pool_migrate`` for a VM
without disks.

Nova 34 has no LiveMigrateData of its own for XenServer, and conductor
deserialises the driver's object, so ``MigrateData`` is a registered
one: ``HyperVLiveMigrateData`` with ``is_shared_instance_path`` true.
What that makes Nova do (compute/manager.py), and why it fits a pool
that holds the one VM:

- ``_live_migration_cleanup_flags`` gives ``do_cleanup`` True and
  ``destroy_disks`` False (``not is_shared_instance_path``). On a
  rollback, ``do_cleanup`` makes the source call the destination's
  ``rollback_live_migration_at_destination``, where Nova frees the
  destination's PCI claim and tears down its port bindings; a plain
  LiveMigrateData, or libvirt's on a shared path, would skip that call
  and leave the claim to the next periodic update.
  The driver's hook does nothing: the VM it could reach is the pool's
  one VM, still on the source.
- After a move the source's ``driver.cleanup`` is called
  (``destroy_disks`` False): it does nothing, as the VM and its disks
  now run on the destination.
- The object carries no ``src_supports_numa_live_migration``: Nova
  makes no NUMA move claim (``_live_migration_claim``) and never calls
  ``drop_move_claim_at_destination``; the PCI claim is
  ``_flavor_based_pci_claim``'s, with ``pci_dev_map_src_dst``.
- No ``wait_for_vif_plugged``: the source does not wait for Neutron's
  events (the pool's networks are everywhere; the VIFs move with the VM).
- A failed ``migrate_send`` leaves the VM, its disks and its VGPUs on
  the source (XAPI releases the destination pGPU it had reserved), so
  ``recover_method`` (Nova's rollback) is all that is needed; a lost
  answer is settled first (``settle``), never rolled back on a guess.
"""

from nova import exception as novaexc
from nova.objects import migrate_data as migrate_data_obj
from oslo_log import log as logging

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.vgpu_types import synthetic
from nova_xenapi_vgpu.virt import disks

MigrateData = migrate_data_obj.HyperVLiveMigrateData
LOG = logging.getLogger(__name__)


def migrate_data():
    """The driver's LiveMigrateData."""
    return MigrateData(is_shared_instance_path=True)


def member(client, nodename):
    """The ref of the pool member named ``nodename`` (its name label).

    :raises: ComputeHostNotFound.
    """
    found = client.call('host.get_by_name_label', nodename)
    if len(found) != 1:
        raise novaexc.ComputeHostNotFound(host=nodename)
    return found[0]


def receive(client, host_ref):
    """``host.migrate_receive`` on the member's management network."""
    for pif in client.call('host.get_PIFs', host_ref):
        if client.call('PIF.get_management', pif):
            network = client.call('PIF.get_network', pif)
            return client.call('host.migrate_receive', host_ref, network,
                               {})
    raise novaexc.MigrationPreCheckError(
        reason='XenServer host %s has no management network' % host_ref)


def vdi_map(client, vm, host_ref):
    """Every disk of ``vm`` to the member's local SR."""
    sr, _ = disks.local_sr(client, host_ref)
    return {vdi: sr for vdi in disks.on_vm(client, vm).values()}


def assert_can_migrate(client, vm, host_ref):
    """XAPI's own check of a live move to the member (vGPUs, memory,
    disks), nothing moved.

    :raises: XapiError, XapiConnectionError.
    """
    client.call('VM.assert_can_migrate', vm, receive(client, host_ref),
                True, vdi_map(client, vm, host_ref), {}, {}, {})


def live(client, vm, host_ref):
    """Move the running VM to the member: migrate_send with its disks,
    else pool_migrate.

    :raises: XapiError, XapiConnectionError.
    """
    mapping = vdi_map(client, vm, host_ref)
    if mapping:
        client.call_async('VM.migrate_send', vm, receive(client, host_ref),
                          True, mapping, {}, {}, {})
    else:
        client.call_async('VM.pool_migrate', vm, host_ref,
                          {'live': 'true'})


def disks_here(client, vm, host_ref):
    """A halted VM's disks moved to the member's local SR (those not
    there already): migrate_send of the halted VM.

    :raises: XapiError, XapiConnectionError.
    """
    mapping = vdi_map(client, vm, host_ref)
    if any(client.call('VDI.get_SR', vdi) != sr
           for vdi, sr in mapping.items()):
        client.call_async('VM.migrate_send', vm, receive(client, host_ref),
                          False, mapping, {}, {}, {})


def pgpu_address(address):
    """The pGPU of a Nova device: its slot's parent, or itself (PF)."""
    parsed = synthetic.parse_synthetic(address)
    return parsed[0] if parsed else address


def check_claim(xen, vgpus, source_devices, pci_map):
    """Nova's destination device for each vGPU must be a slot of this
    host's pGPU in the VGPU's own group: where XAPI will put it.

    :param vgpus: ``{ref: records.Vgpu}`` of the instance.
    :param source_devices: Nova's devices of the instance on the source.
    :param pci_map: Nova's ``pci_dev_map_src_dst`` (addresses).
    :raises: MigrationPreCheckError naming the device, the slot and the
             pGPU XAPI would use.
    """
    addresses = {d.uuid: d.address for d in source_devices}
    for vgpu in vgpus.values():
        source = addresses.get(vgpu.other_config.get(tags.DEVICE))
        target = pci_map.get(source)
        slot = synthetic.slot_of(xen.inventory, target or '', None,
                                 xen.enabled)
        if slot is None or slot.group_ref != vgpu.GPU_group:
            raise novaexc.MigrationPreCheckError(reason=_mismatch(
                xen, vgpu, source, target))


def _mismatch(xen, vgpu, source, target):
    inventory = xen.inventory
    wanted = [inventory.address(ref) for ref, pgpu in
              inventory.pgpus.items() if pgpu.GPU_group == vgpu.GPU_group]
    where = ('the pGPU at %s' % wanted[0] if wanted else
             'no pGPU (the group has none here: run gpu-groups pin)')
    return ('Nova claimed %s on %s for the vGPU of device %s, but XAPI '
            'keeps a VGPU\'s GPU group on a live migration and would put '
            'it on %s; the vGPU cannot follow Nova\'s claim (migrate to '
            'another host, or cold-migrate)' % (
                target or 'no device', xen.nodename, source, where))


def retag(client, xen, vgpus, devices):
    """The VGPUs tagged with Nova's devices on this host (and the host):
    on each pGPU, its VGPUs and Nova's slots of it paired in order.

    :raises: XapiError, XapiConnectionError.
    """
    by_pgpu = {}
    for device in sorted(devices, key=lambda d: d.address):
        by_pgpu.setdefault(pgpu_address(device.address), []).append(device)
    for ref, vgpu in sorted(vgpus.items(), key=lambda i: int(i[1].device)):
        address = xen.inventory.address(vgpu.resident_on) if (
            vgpu.resident_on in xen.inventory.pgpus) else None
        mine = by_pgpu.get(address) or []
        if not mine:
            LOG.warning('VGPU %s runs on pGPU %s of %s, where Nova '
                        'allocated no device of the instance: left '
                        'untagged', ref, address, xen.nodename)
            continue
        client.call('VGPU.set_other_config', ref, dict(
            vgpu.other_config, **{tags.DEVICE: mine.pop(0).uuid,
                                  tags.HOST: xen.uuid}))
