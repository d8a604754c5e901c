"""``XenAPIDriver``: a Nova 34 compute driver for one XenServer pool member.

Nova's PCI tracker is the claim authority: the driver reports every vGPU
slot of a pinned, one-type pGPU as a PCI device (``synthetic``), Nova's
scheduler and resource tracker claim them, and ``spawn`` turns the
devices Nova allocated into VGPUs in each device's pGPU group. It never
claims a second time. A refusal by XAPI rolls the build back and raises
RescheduledException: Nova frees its claim and tries another host.
"""

from nova import conf as novaconf
from nova import context as novacontext
from nova import exception as novaexc
from nova import objects
from nova.virt import driver
from nova.virt import hardware
from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.virt import conf as virtconf
from nova_xenapi_vgpu.virt import disks
from nova_xenapi_vgpu.virt import guest
from nova_xenapi_vgpu.virt import host as hostlib
from nova_xenapi_vgpu.virt import migration
from nova_xenapi_vgpu.virt import numa
from nova_xenapi_vgpu.virt import vgpus
from nova_xenapi_vgpu.virt import vifs
from nova_xenapi_vgpu.vm import settle
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from nova_xenapi_vgpu.xapi import session

LOG = logging.getLogger(__name__)
CONF = novaconf.CONF
XAPI_ERRORS = (exception.XapiError, exception.XapiConnectionError)
RESIZE_REVERTING = 'resize_reverting'  # nova.compute.task_states
REBUILD_SPAWNING = 'rebuild_spawning'  # nova.compute.task_states


def _not_yet(operation):
    """A hook this driver does not offer yet: a clear NotImplementedError."""
    def hook(self, *args, **kwargs):
        raise NotImplementedError(
            'XenAPIDriver does not %s yet (nova-xenapi-vgpu)' % operation)
    hook.__doc__ = 'Not implemented: %s.' % operation
    return hook


class XenAPIDriver(driver.ComputeDriver):
    """One XenServer pool member as one Nova compute node."""

    capabilities = dict(driver.ComputeDriver.capabilities,
                        supports_socket_pci_numa_affinity=True,
                        supports_evacuate=True)

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        virtconf.register(CONF)
        self._xen = None
        self._host = None  # Nova's host, as init_host was given it

    @property
    def xen(self):
        """This node's XenHost (after init_host)."""
        if self._xen is None:
            raise novaexc.ComputeHostNotFound(host=CONF.host)
        return self._xen

    @property
    def client(self):
        """The XAPI client."""
        return self.xen.client

    def init_host(self, host):
        """Connect to XAPI and find the pool member this node drives.

        :raises: HostNotFound, XapiError, XapiConnectionError.
        """
        self._host = host
        client = session.XapiClient.from_conf(CONF)
        ref = hostlib.resolve(client, CONF.xenserver.host_uuid, host)
        self._xen = hostlib.XenHost(client, ref,
                                    CONF.vgpu.enabled_vgpu_types,
                                    CONF.pci.report_in_placement)
        LOG.info('Compute node %s drives XenServer host %s',
                 self._xen.nodename, self._xen.uuid)
        self._reap_orphans(host)

    def _reap_orphans(self, host):
        """VGPUs this host made for instances Nova no longer has here:
        destroyed on halted or vanished VMs, reported on running ones."""
        known = {i.uuid for i in objects.InstanceList.get_by_host(
            novacontext.get_admin_context(), host)}
        orphans = vgpulib.find_orphans(self.client, self._xen.uuid, known)
        destroyed, kept = vgpulib.reap_orphans(self.client, orphans)
        for orphan in destroyed:
            LOG.info('Destroyed orphan VGPU %s of instance %s (%s)',
                     orphan.vgpu, orphan.instance, orphan.reason)
        for orphan in kept:
            LOG.warning('Orphan VGPU %s of instance %s runs on VM %s: '
                        'kept', orphan.vgpu, orphan.instance, orphan.vm)
        if destroyed:
            self._xen.refresh()

    def cleanup_host(self, host):
        """Close the XAPI sessions."""
        if self._xen is not None:
            self._xen.client.close()

    def get_available_nodes(self, refresh=False):
        """The one node: this pool member's name label."""
        return [self.xen.nodename]

    def get_nodenames_by_uuid(self, refresh=False):
        """``{XenServer host uuid: name label}``."""
        return {self.xen.uuid: self.xen.nodename}

    def get_available_resource(self, nodename):
        """VCPUs, memory and the vGPU slots as PCI devices."""
        return self.xen.resources()

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        """VCPU, MEMORY_MB and DISK_GB (the local SR) on the node."""
        inventory = provider_tree.data(nodename).inventory
        ratios = self._get_allocation_ratios(inventory)
        cpus, memory = self.xen.cpus_and_memory()
        disk_gb, _ = disks.usage_gb(disks.local_sr(
            self.client, self.xen.host_ref)[1])
        result = {
            'VCPU': _inventory(cpus, ratios['VCPU'],
                               CONF.reserved_host_cpus),
            'MEMORY_MB': _inventory(memory, ratios['MEMORY_MB'],
                                    CONF.reserved_host_memory_mb),
            'DISK_GB': _inventory(disk_gb, ratios['DISK_GB'], -(
                -CONF.reserved_host_disk_mb // 1024)),
        }
        provider_tree.update_inventory(nodename, result)

    def get_host_ip_addr(self):
        """The host's management address."""
        return self.client.call('host.get_address', self.xen.host_ref)

    def list_instance_uuids(self):
        """Instances whose VMs run on or belong to this node."""
        return guest.instance_uuids(self.client, self.xen.host_ref)

    def list_instances(self):
        """Instance names (as uuids: names are not kept apart)."""
        return self.list_instance_uuids()

    def instance_exists(self, instance):
        """Whether the instance's VM is this member's (the pool's VMs
        are everywhere; one runs or belongs on one member)."""
        vm = guest.find(self.client, instance)
        return vm is not None and guest.belongs_to(self.client, vm,
                                                   self.xen.host_ref)

    def get_info(self, instance, use_cache=True):
        """The VM's power state.

        :raises: InstanceNotFound.
        """
        vm = self._vm(instance)
        return hardware.InstanceInfo(state=guest.power_state(self.client,
                                                             vm))

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        """VM from the image's template or the flavor, its disks on the
        local SR (the root one, ``root_gb`` or the image's own size,
        streamed from Glance), a VIF per port, a VGPU per device Nova
        allocated, start.

        :raises: ImageUnacceptable, FlavorDiskSmallerThanImage,
                 BuildAbortException (a vGPU mix XAPI refuses in any VM),
                 all before anything is made;
                 RescheduledException when XAPI refuses (rolled back).
        """
        image = disks.root_image(context, instance, image_meta)
        self._check_vgpus(instance)
        if instance.task_state == REBUILD_SPAWNING:
            self._take_over(instance)
        root_bytes = disks.root_bytes(instance, image)
        sr, sr_record = disks.local_sr(self.client, self.xen.host_ref)
        vm = guest.build(self.client, self.xen.host_ref, instance,
                         numa.cpu_mask(self.xen.inventory.topology,
                                       instance), sr_record['uuid'],
                         root_bytes)
        try:
            self._make_disks(context, instance, image, root_bytes, vm, sr)
            vifs.create(self.client, vm, instance, network_info,
                        CONF.xenserver.default_network_bridge)
            vgpus.create(self.xen, instance, vm)
            if power_on:
                guest.start(self.client, self.xen.host_ref, vm)
        except BaseException as exc:
            self._roll_back(instance, vm)
            if isinstance(exc, XAPI_ERRORS + (vgpus.NotOurDevice,)):
                raise novaexc.RescheduledException(
                    instance_uuid=instance.uuid, reason=str(exc)) from exc
            raise
        self.xen.refresh()

    def _check_vgpus(self, instance):
        """A vGPU mix XAPI refuses in any VM, or a device of a type its
        alias does not ask for, aborts the build before anything is made
        (another member would refuse it too)."""
        requests = instance.pci_requests
        try:
            reason = vgpus.incompatible(self.xen, instance.pci_devices)
            vgpus.check_types(self.xen, requests and requests.requests,
                              instance.pci_devices, self._aliases())
        except vgpus.NotOurDevice as exc:
            raise novaexc.RescheduledException(
                instance_uuid=instance.uuid, reason=str(exc)) from exc
        except vgpus.WrongType as exc:
            reason = str(exc)
        if reason:
            raise novaexc.BuildAbortException(instance_uuid=instance.uuid,
                                              reason=reason)

    @staticmethod
    def _aliases():
        """``[vgpu] alias``, parsed."""
        return aliaslib.parse_aliases(CONF.vgpu.alias, CONF.vgpu.numa_policy)

    def _take_over(self, instance):
        """Evacuation (a rebuild here while the source member is down in
        Nova): the old VM is stopped by the pool and removed, so the
        instance never runs twice; then it is built here anew."""
        old = guest.find(self.client, instance)
        if old is not None and not guest.belongs_to(self.client, old,
                                                    self.xen.host_ref):
            LOG.info('Evacuating %s: removing its VM %s from the failed '
                     'member', instance.uuid, old)
            guest.evict(self.client, old, instance.uuid)

    def _make_disks(self, context, instance, image, root_bytes, vm, sr):
        """A template's disks tagged; the root disk (made unless the
        template gave one) filled from the image; the ephemeral disk."""
        present = disks.on_vm(self.client, vm)
        disks.tag(self.client, present.values(), instance.uuid)
        root = present.get(disks.ROOT)
        if root is None and root_bytes:
            root = disks.create(self.client, sr, vm, instance, disks.ROOT,
                                root_bytes, True)
        if image is not None and root is not None:
            disks.import_image(self.client, context, self.xen.host_ref,
                               root, image)
        ephemeral_gb = instance.flavor.ephemeral_gb
        if ephemeral_gb and disks.EPHEMERAL not in present:
            disks.create(self.client, sr, vm, instance, disks.EPHEMERAL,
                         ephemeral_gb * disks.GIB, False)

    def _roll_back(self, instance, vm):
        try:
            guest.destroy(self.client, vm, instance.uuid)
        except XAPI_ERRORS as exc:
            LOG.error('Rolling back %s: VM %s may remain (%s)',
                      instance.uuid, vm, exc)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        """The VM gone with its VGPUs, VBDs, VIFs and the instance's
        VDIs; nothing to do when it is gone or another member's. On a
        resize revert only this member's part goes: the pool's one VM
        returns to the source."""
        vm = guest.find(self.client, instance)
        if vm is None:
            pass
        elif instance.task_state == RESIZE_REVERTING:
            if self.client.call('VM.get_power_state', vm) != 'Halted':
                guest.stop(self.client, vm, hard=True)
            vgpulib.destroy(self.client, vm, instance.uuid)
        elif not guest.belongs_to(self.client, vm, self.xen.host_ref):
            LOG.info('VM %s of %s belongs to another member now (moved or '
                     'evacuated): left alone', vm, instance.uuid)
        else:
            guest.destroy(self.client, vm, instance.uuid)
        self.xen.refresh()

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        """Nothing kept beside the VM."""

    def power_off(self, instance, timeout=0, retry_interval=0):
        """Stop; the VGPUs stay with the VM."""
        guest.stop(self.client, self._vm(instance))

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        """Start again on this host."""
        guest.start(self.client, self.xen.host_ref, self._vm(instance))

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        """Stop (hard for HARD) and start again on this host."""
        vm = self._vm(instance)
        if self.client.call('VM.get_power_state', vm) == 'Running':
            guest.stop(self.client, vm, hard=reboot_type == 'HARD')
        guest.start(self.client, self.xen.host_ref, vm)

    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        """Resize or cold migration, source: stop the VM (it stays in the
        pool with its VGPUs until the destination replaces them)."""
        vm = self._vm(instance)
        if self.client.call('VM.get_power_state', vm) != 'Halted':
            guest.stop(self.client, vm)
        return ''

    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance,
                         allocations, block_device_info=None, power_on=True,
                         share_info=None):
        """Destination: the VM sized to the new flavor, its VGPUs made
        anew for the devices Nova claimed here, started here."""
        context_ = instance.migration_context
        self._move_here(instance, context_.new_pci_requests,
                        context_.new_pci_devices, power_on)

    def confirm_migration(self, context, migration, instance, network_info):
        """Nothing stays behind on the source: the VM is the pool's."""

    def finish_revert_migration(self, context, instance, network_info,
                                migration, block_device_info=None,
                                power_on=True, share_info=None):
        """Source: the VM back to the old flavor and its old devices."""
        context_ = instance.migration_context
        if context_:
            self._move_here(instance, context_.old_pci_requests,
                            context_.old_pci_devices, power_on)
        else:
            self._move_here(instance, instance.pci_requests,
                            instance.pci_devices, power_on)

    def _move_here(self, instance, requests, devices, power_on):
        """The pool's VM moved to this member: stopped, its disks here,
        sized, its VGPUs made anew for ``devices``, started.

        :raises: MigrationError for a device of a type its alias does
                 not ask for (before anything moves), NotOurDevice,
                 XapiError, XapiConnectionError.
        """
        try:
            vgpus.check_types(self.xen, requests and requests.requests,
                              devices, self._aliases())
        except vgpus.WrongType as exc:
            raise novaexc.MigrationError(reason=str(exc)) from exc
        vm = self._vm(instance)
        if self.client.call('VM.get_power_state', vm) != 'Halted':
            guest.stop(self.client, vm, hard=True)
        migration.disks_here(self.client, vm, self.xen.host_ref)
        guest.move_here(self.client, self.xen.host_ref, instance, vm,
                        numa.cpu_mask(self.xen.inventory.topology,
                                      instance))
        disks.grow_root(self.client, vm, instance)
        vgpus.replace(self.xen, instance, vm, devices)
        if power_on:
            guest.start(self.client, self.xen.host_ref, vm)
        self.xen.refresh()

    def check_can_live_migrate_destination(
            self, context, instance, src_compute_info, dst_compute_info,
            block_migration=False, disk_over_commit=False):
        """XAPI's own check of a live move to this member (vGPUs,
        memory, disks), before anything moves.

        :raises: MigrationPreCheckError with XAPI's code.
        """
        vm = self._vm(instance)
        try:
            migration.assert_can_migrate(self.client, vm, self.xen.host_ref)
        except XAPI_ERRORS as exc:
            raise novaexc.MigrationPreCheckError(reason=str(exc)) from exc
        return migration.migrate_data()

    def cleanup_live_migration_destination_check(self, context,
                                                 dest_check_data):
        """Nothing was made by the check."""

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data,
                                      block_device_info=None):
        """The destination's check covers the source: one pool."""
        return dest_check_data

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        """Nova has claimed this member's devices: each must be a slot of
        the pGPU XAPI will place the vGPU on (its group's, here). Refused
        here, not in ``check_source_migrate_data_at_dest``: a failure
        here makes the source roll back, which calls this member's
        ``rollback_live_migration_at_destination`` and there Nova frees
        its claim (a pre-check failure would leave it to the next
        periodic update).

        :raises: MigrationPreCheckError naming the device and the pGPU.
        """
        vm = self._vm(instance)
        self.xen.refresh()
        source = [d for d in objects.PciDeviceList.get_by_instance_uuid(
            context, instance.uuid) if d.status == 'allocated']
        migration.check_claim(
            self.xen, vgpulib.of_instance(self.client, vm, instance.uuid),
            source, migrate_data.pci_dev_map_src_dst
            if 'pci_dev_map_src_dst' in migrate_data else {})
        return migrate_data

    def live_migration(self, context, instance, dest, post_method,
                       recover_method, block_migration=False,
                       migrate_data=None):
        """VM.migrate_send with every disk to the destination's local SR
        (VM.pool_migrate without disks); the VGPUs follow in their
        groups. A refusal leaves the VM where it ran: Nova rolls back. A
        lost answer is settled by asking XAPI where the VM runs; when
        XAPI cannot say, nothing is rolled back on a guess.

        :raises: XapiError, XapiConnectionError (Nova sets the instance
                 to ERROR) when the outcome cannot be known.
        """
        vm = self._vm(instance)
        target = None
        try:
            target = migration.member(self.client, _dest_node(
                migrate_data, dest))
            migration.live(self.client, vm, target)
        except XAPI_ERRORS + (novaexc.ComputeHostNotFound,) as exc:
            if not self._arrived(vm, target, exc):
                LOG.error('Live migration of %s to %s failed: %s',
                          instance.uuid, dest, exc)
                recover_method(context, instance, dest, migrate_data)
                return
        try:
            vgpulib.follow_vm(self.client, vm, instance.uuid)
        except XAPI_ERRORS as exc:  # the destination tags them again
            LOG.warning('%s moved; its VGPUs not retagged yet: %s',
                        instance.uuid, exc)
        self.xen.refresh()
        post_method(context, instance, dest, block_migration, migrate_data)

    def _arrived(self, vm, target, exc):
        """Whether a move that raised ``exc`` put the VM on ``target``
        all the same (its answer lost): XAPI is asked once the move is
        no longer in progress.

        :raises: ``exc`` when XAPI cannot say.
        """
        if target is None or not isinstance(
                exc, exception.XapiConnectionError):
            return False
        outcome = settle.outcome_or_none(self.client, vm, settle.MOVES,
                                         exc)
        if outcome is None:
            raise exc
        return outcome.runs and outcome.resident_on == target

    def post_live_migration_at_source(self, context, instance,
                                      network_info):
        """Nothing stays: the VIFs moved with the VM."""

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        """The VGPUs tagged with the devices Nova allocated here."""
        vm = self._vm(instance)
        self.xen.refresh()
        node = objects.ComputeNode.get_by_host_and_nodename(
            context, self._host, self.xen.nodename)
        devices = [d for d in objects.PciDeviceList.get_by_instance_uuid(
            context, instance.uuid) if d.compute_node_id == node.id]
        migration.retag(self.client, self.xen, vgpulib.of_instance(
            self.client, vm, instance.uuid), devices)
        self.client.call('VM.set_affinity', vm, self.xen.host_ref)

    def rollback_live_migration_at_destination(
            self, context, instance, network_info, block_device_info,
            destroy_disks=True, migrate_data=None):
        """Nothing was made here: the VM stayed on the source (Nova has
        freed its PCI claim here just before)."""

    def plug_vifs(self, instance, network_info):
        """Nothing to do: spawn makes the VIFs and XAPI plugs them at
        every start."""

    def unplug_vifs(self, instance, network_info):
        """Nothing to do: the VIFs go with the VM."""

    def instance_on_disk(self, instance):
        """No shared storage assumed."""
        return False

    def get_volume_connector(self, instance):
        """Volumes: not yet."""
        raise NotImplementedError('XenAPIDriver cannot attach volumes yet')

    def _vm(self, instance):
        vm = guest.find(self.client, instance)
        if vm is None:
            raise novaexc.InstanceNotFound(instance_id=instance.uuid)
        return vm

    def suspend(self, context, instance):
        """VM.suspend where XAPI allows it with the instance's vGPUs
        (NVIDIA ones on pGPUs with NVIDIA's metadata); the VGPUs stay.

        :raises: InstanceFaultRollback (InstanceSuspendFailure) before
                 any call otherwise: the instance stays ACTIVE.
        """
        vm = self._vm(instance)
        try:
            vgpulib.assert_movable(self.xen.inventory, vm, vgpulib.
                                   of_instance(self.client, vm,
                                               instance.uuid), 'suspend')
        except exception.OperationRefused as exc:
            # Nova keeps the instance ACTIVE and records the inner fault.
            raise novaexc.InstanceFaultRollback(
                inner_exception=novaexc.InstanceSuspendFailure(
                    reason=str(exc))) from exc
        self.client.call_async('VM.suspend', vm)
        self.xen.refresh()

    def resume(self, context, instance, network_info,
               block_device_info=None, share_info=None):
        """VM.resume_on this member: XAPI places the vGPUs again in
        their groups (the pinned pGPU)."""
        self.client.call_async('VM.resume_on', self._vm(instance),
                               self.xen.host_ref, False, False)
        self.xen.refresh()

    def pause(self, instance):
        """VM.pause: the domain keeps its memory and vGPUs."""
        self.client.call('VM.pause', self._vm(instance))

    def unpause(self, instance):
        """VM.unpause."""
        self.client.call('VM.unpause', self._vm(instance))

    rescue = _not_yet('rescue')
    snapshot = _not_yet('snapshot')
    attach_volume = _not_yet('attach volumes')
    detach_volume = _not_yet('detach volumes')
    attach_interface = _not_yet('attach interfaces')
    detach_interface = _not_yet('detach interfaces')
    get_console_output = _not_yet('show the console output')
    get_vnc_console = _not_yet('offer a VNC console')


def _dest_node(migrate_data, dest):
    """The destination's nodename (a member's name label)."""
    found = getattr(migrate_data, 'migration', None) if (
        migrate_data is not None and 'migration' in migrate_data) else None
    if found is not None and found.obj_attr_is_set('dest_node') and (
            found.dest_node):
        return found.dest_node
    return dest


def _inventory(total, ratio, reserved):
    return {'total': total, 'min_unit': 1, 'max_unit': total,
            'step_size': 1, 'allocation_ratio': ratio,
            'reserved': reserved}

