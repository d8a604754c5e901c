"""The integration surface for a XenAPI compute driver, in one place.

``VgpuHost`` is all a driver needs for one compute host's vGPUs:

========================  ===============================================
Nova driver hook          call
========================  ===============================================
``init_host``             ``VgpuHost.from_conf(conf)``, ``reconcile``
``get_available_resource``  ``pci_passthrough_devices()`` (a JSON string)
``update_provider_tree``  ``update_provider_tree`` (a child provider
                          per pGPU, for Placement)
``spawn``                 ``spawn`` (claim, VGPU.create, start_on,
                          rollback on any failure)
``power_off`` / ``_on``   ``power_off`` / ``power_on`` (the claim stays)
``suspend`` / ``resume``  ``suspend`` / ``resume``
``migrate_disk_and_``     ``migrate_out`` (returns what to restore)
``power_off``
``finish_migration``      ``migrate_in`` on the destination
``finish_revert_``        ``revert_migration`` on the source
``migration``
``confirm_migration``     ``confirm_migration`` on the source (the
                          source holds the vGPUs until then)
``live_migration``        ``live_migrate`` (check, claim on the
                          destination, move; a failed move changes nothing)
``destroy``               ``destroy`` (VGPUs and claim gone; the driver
                          destroys the VM)
========================  ===============================================

``VgpuDriverMixin`` shows the same hooks with Nova's signatures.
"""

import json

from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from nova_xenapi_vgpu.xapi import session


class VgpuHost:
    """One compute host's vGPUs: pools, claims and the VM path."""

    def __init__(self, client, host_ref, aliases, enabled=(),
                 spec_key='pci_passthrough:alias', standard_type=None):
        self.client = client
        self.aliases = aliases
        self.enabled = enabled
        self.spec_key = spec_key
        self.standard_type = standard_type
        self.builder = lifecycle.Builder.for_host(client, host_ref, enabled)

    @classmethod
    def from_conf(cls, conf, client=None):
        """From the [xenserver] and [vgpu] options.

        :raises: ConfigError, InvalidAlias, XapiError, XapiConnectionError.
        """
        client = client or session.XapiClient.from_conf(conf)
        host = identity.resolve_host(client, conf.xenserver.host_uuid)
        return cls(client, host, aliaslib.parse_aliases(
            conf.vgpu.alias, conf.vgpu.numa_policy),
            conf.vgpu.enabled_vgpu_types, conf.vgpu.flavor_extra_spec_key,
            conf.vgpu.placement_standard_type)

    @property
    def stats(self):
        """The pools (Nova's PciDeviceStats for vGPUs)."""
        return self.builder.stats

    def pci_passthrough_devices(self):
        """``get_available_resource``'s ``pci_passthrough_devices``."""
        self.builder.sync()
        return json.dumps([s.as_nova_device() for s in self.stats.devices()])

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        """The pGPUs as child providers of ``nodename`` (see
        placement.tree; needs the ``placement`` extra)."""
        from nova_xenapi_vgpu.placement import tree  # os-traits: optional
        self.builder.sync()
        tree.update_provider_tree(self.stats.inventory, provider_tree,
                                  nodename, self.enabled, self.standard_type,
                                  allocations)

    def requests(self, extra_specs):
        """The flavor's vGPU requests (other aliases are Nova's).

        :raises: InvalidVgpuRequest.
        """
        return requestslib.requests_from_flavor(
            extra_specs, self.aliases, self.spec_key)[0]

    def spawn(self, instance, vm, extra_specs, numa_cells=None):
        """Claim, create the VGPUs, start on this host; pGPUs XAPI chose.

        :raises: ClaimRefused, VgpuAttachRefused, XapiError, ... (after a
                 rollback: nothing is left behind).
        """
        requests = self.requests(extra_specs)
        if not requests:
            self.builder.start_again(vm)
            return []
        return self.builder.build(instance, vm, requests, numa_cells)

    def power_off(self, vm):
        """Stop; the VGPUs and the claim stay with the instance."""
        self.builder.stop(vm)

    def power_on(self, vm):
        """Start a stopped instance again on this host."""
        self.builder.start_again(vm)

    def suspend(self, instance, vm):
        """Suspend where XAPI allows it; refused first otherwise."""
        self.builder.suspend(instance, vm)

    def resume(self, vm):
        """Resume on this host."""
        self.builder.resume(vm)

    def migrate_out(self, instance, vm):
        """Resize or cold migration, source side: returns what a revert
        restores."""
        return self.builder.move_out(instance, vm)

    def migrate_in(self, instance, vm, extra_specs, numa_cells=None):
        """Resize, cold migration or evacuation, destination side."""
        return self.builder.move_in(instance, vm, self.requests(extra_specs),
                                    numa_cells)

    def revert_migration(self, instance, vm, restore):
        """Revert a resize on the source: the old vGPUs again (the
        source held them since ``migrate_out``, so they fit)."""
        return self.builder.restore(instance, vm, restore)

    def confirm_migration(self, instance, vm):
        """Confirm a resize on the source: what it held is released."""
        self.builder.confirm_move(instance, vm)

    def live_migrate(self, instance, vm, destination):
        """Move a running instance to ``destination`` (a VgpuHost)."""
        self.builder.live_migrate(instance, vm, destination.builder)

    def destroy(self, instance, vm):
        """The instance is deleted: its VGPUs and claim go."""
        if self.client.call('VM.get_power_state', vm) != 'Halted':
            self.client.call_async('VM.hard_shutdown', vm)
        return self.builder.detach(instance, vm)

    def reconcile(self, known_instances, reap=True):
        """At start-up: host tags follow where each VM runs (a move
        killed before its retag); the pools from XAPI; orphans found,
        those on halted VMs destroyed. Returns (destroyed, kept)."""
        vgpulib.follow_running(self.client)
        self.builder.hold_open_moves()
        orphans = vgpulib.find_orphans(self.client, self.builder.host_uuid,
                                       known_instances)
        result = vgpulib.reap_orphans(self.client, orphans) if reap else (
            [], orphans)
        self.builder.sync()
        return result


class VgpuDriverMixin:
    """An example for a XenAPI compute driver: Nova's hooks delegating to
    a ``VgpuHost``. The driver provides ``self.vgpu_host`` and
    ``self._vm_ref(instance)``."""

    def init_host(self, host):
        """Reconcile with XAPI; reap orphans of deleted instances."""
        known = self._known_instance_uuids()
        self.vgpu_host.reconcile(known)

    def get_available_resource(self, nodename):
        """The part of the resources the PCI framework reads."""
        return {'pci_passthrough_devices':
                self.vgpu_host.pci_passthrough_devices()}

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        """Report this host's pGPUs and vGPU types to Placement."""
        self.vgpu_host.update_provider_tree(provider_tree, nodename,
                                            allocations)

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        """Give the new VM its vGPUs and start it on this host."""
        cells = _numa_cells(instance)
        self.vgpu_host.spawn(instance.uuid, self._vm_ref(instance),
                             instance.flavor.extra_specs, cells)

    def power_off(self, instance, timeout=0, retry_interval=0):
        """Stop; the vGPUs stay."""
        self.vgpu_host.power_off(self._vm_ref(instance))

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None,
                 share_info=None):
        """Start again."""
        self.vgpu_host.power_on(self._vm_ref(instance))

    def suspend(self, context, instance):
        """Suspend where XAPI allows it."""
        self.vgpu_host.suspend(instance.uuid, self._vm_ref(instance))

    def resume(self, context, instance, network_info,
               block_device_info=None, share_info=None):
        """Resume."""
        self.vgpu_host.resume(self._vm_ref(instance))

    def destroy(self, context, instance, network_info,
                block_device_info=None, destroy_disks=True,
                destroy_secrets=True):
        """Delete: the vGPUs go with the instance."""
        self.vgpu_host.destroy(instance.uuid, self._vm_ref(instance))

    def _known_instance_uuids(self):
        """The driver lists the instances Nova knows on this host."""
        raise NotImplementedError()


def _numa_cells(instance):
    topology = getattr(instance, 'numa_topology', None)
    return [cell.id for cell in topology.cells] if topology else None
