"""Resize, cold and live migration, evacuation between pool members, the
vGPU following; suspend and pause."""

import json

from nova import conf as novaconf
from nova import objects
from nova.tests.functional.api import client

from tests.functional import base

CONF = novaconf.CONF


class VgpuMoveTest(base.XenAPIDriverTestBase):
    """The pool's one VM moves; its VGPUs are made anew where Nova claimed."""

    def moved(self, server, host, spec_type, group_address):
        """Assert the server runs on ``host`` with one VGPU of
        ``spec_type`` in the group of ``host``'s pGPU at the address."""
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])
        [device] = self.allocated(server)
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(self.group_of(host, group_address),
                         vgpu['GPU_group'])
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertEqual(spec_type, self.sim.xapi.VGPU_type.get_model_name(
            vgpu['type']))
        self.assertEqual((host, group_address), self.resident(vgpu))
        self.assert_placement(server, host, spec_type)
        vm = self.vm_of(server)
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(vm))
        host_ref = self.sim.xapi.host.get_by_name_label(host)[0]
        self.assertEqual(host_ref, self.sim.xapi.VM.get_resident_on(vm))

    def other(self, host):
        return [h for h in base.HOSTS if h != host][0]

    def test_resize_then_revert_and_confirm(self):
        server = self.boot(self.flavor('m60-4q:1'))
        source = server['OS-EXT-SRV-ATTR:host']
        self.assert_placement(server, source, 'GRID M60-4Q')
        bigger = self._create_flavor(
            memory_mb=512, vcpu=2, disk=0, ephemeral=0,
            extra_spec={'pci_passthrough:alias': 'm60-8q:1'})
        server = self.verify_resize(server, bigger, 'GRID M60-4Q',
                                    ('GRID M60-8Q', '0000:87:00.0'))
        dest = server['OS-EXT-SRV-ATTR:host']
        self.assertEqual(self.other(source), dest)
        self.assertEqual('2', self.sim.xapi.VM.get_VCPUs_max(
            self.vm_of(server)))
        self._revert_resize(server)
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.moved(server, source, 'GRID M60-4Q', '0000:86:00.0')
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(dest)))
        self.assertEqual(0, self.pci_usage(dest))
        server = self.verify_resize(server, bigger, 'GRID M60-4Q',
                                    ('GRID M60-8Q', '0000:87:00.0'))
        server = self._confirm_resize(server)
        self.moved(server, dest, 'GRID M60-8Q', '0000:87:00.0')
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(source)))
        self.assertEqual(0, self.pci_usage(source))
        self._delete_server(server)
        self.assertIsNone(self.vm_of(server))
        self.assertEqual(0, self.pci_usage(dest))

    def test_cold_migration_takes_the_vgpu_along(self):
        server = self.boot(self.flavor('m60-4q:1'))
        source = server['OS-EXT-SRV-ATTR:host']
        server = self.verify_resize(server, None, 'GRID M60-4Q',
                                    ('GRID M60-4Q', '0000:86:00.0'))
        server = self._confirm_resize(server)
        self.moved(server, self.other(source), 'GRID M60-4Q',
                   '0000:86:00.0')
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(source)))
        self.assertEqual(0, self.pci_usage(source))

    def verify_resize(self, server, flavor, old_type, new):
        """Resize to ``flavor`` (None: cold-migrate) and assert, in
        VERIFY_RESIZE, the server running on the other member with its
        ``new`` (type, pGPU address) vGPU while the source keeps its
        ``old_type`` device, held in Placement by the migration until
        confirmed or reverted."""
        source = server['OS-EXT-SRV-ATTR:host']
        [old] = self.allocated(server)
        if flavor is None:
            self._migrate_server(server)
        else:
            self._resize_server(server, flavor)
        server = self._wait_for_state_change(server, 'VERIFY_RESIZE')
        self.moved(server, self.other(source), *new)
        self.assertEqual([old.uuid], [d.uuid for d in self.devices_of(
            source, server['id'])])
        self.assert_placement(
            server, source, old_type,
            consumer=self.migration_uuid(server))
        return server

    def migration_uuid(self, server):
        """The uuid of the server's move waiting for confirmation."""
        [found] = objects.MigrationList.get_by_filters(
            self.ctxt, {'instance_uuid': server['id'], 'status': 'finished'})
        return found.uuid


class VgpuMovePlacementTest(VgpuMoveTest):
    """The same with ``[pci] report_in_placement``: the vGPU's class
    moves between the members' pGPU providers with the claim."""

    PLACEMENT = True


class LiveMigrationTest(base.XenAPIDriverTestBase):
    """A live migration between members: XAPI moves the VM, its disk
    and its VGPU (in its group, to the pGPU at the same address); Nova's
    claim on the destination is that pGPU's slot, and the VGPU carries
    its uuid afterwards."""

    def test_live_migration_with_a_disk_the_vgpu_follows(self):
        source, dest = base.HOSTS
        self.flags(ovs_bridge='xenbr0', group='neutron')
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q-live:1', root_gb=1),
            image_uuid=self.image(b'l' * 2 ** 20),
            networks=[{'port': self.neutron.port_1['id']}], host=source)
        vm = self.vm_of(server)
        [before] = self.allocated(server)
        server = self._live_migrate(server)
        self.assertEqual(dest, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(vm, self.vm_of(server))  # the pool's one VM
        xapi = self.sim.xapi
        dest_ref = xapi.host.get_by_name_label(dest)[0]
        self.assertEqual(dest_ref, xapi.VM.get_resident_on(vm))
        self.assertEqual('Running', xapi.VM.get_power_state(vm))
        [after] = self.allocated(server)
        self.assertEqual(('allocated', '0000:86:00.0'),
                         (after.status, after.parent_addr))
        self.assertEqual(before.parent_addr, after.parent_addr)
        [vgpu] = self.vgpus_of(server)
        pgpu = xapi.PGPU.get_record(vgpu['resident_on'])
        self.assertEqual(dest_ref, pgpu['host'])
        self.assertEqual('0000:86:00.0', xapi.PCI.get_pci_id(pgpu['PCI']))
        self.assertEqual(after.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertEqual(xapi.host.get_uuid(dest_ref),
                         vgpu['other_config']['nova_xenapi_vgpu_host'])
        _, root = self.disks_of(server)['0']
        self.assertEqual(self.local_sr(dest), root['SR'])
        [vif] = xapi.VM.get_VIFs(vm)  # the pool's network, kept
        self.assertEqual(self.neutron.port_1['mac_address'],
                         xapi.VIF.get_MAC(vif))
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(source)))
        self._delete_server(server)
        self.assertEqual([], self.tagged_vdis(server))

    def test_cold_migration_carries_the_disks(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q:1', root_gb=1,
                                       ephemeral_gb=1),
            image_uuid=self.image(b'c' * 2 ** 20), networks='none',
            host=source)
        server = self._migrate_server(server)
        server = self._confirm_resize(server)
        self.moved(server, dest, 'GRID M60-4Q', '0000:86:00.0')
        parts = self.disks_of(server)
        self.assertEqual({'0', '1'}, set(parts))
        self.assertEqual({self.local_sr(dest)},
                         {vdi['SR'] for _, vdi in parts.values()})
        self.assertEqual(2, len(self.tagged_vdis(server)))

    moved = VgpuMoveTest.moved


class EvacuateTest(base.XenAPIDriverTestBase):
    """The source member's compute service is down: the instance is
    rebuilt on the other member from its image, the old VM stopped by
    the pool and removed, so it never runs twice."""

    def test_evacuate_rebuilds_on_the_other_member(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q:1', root_gb=1),
            image_uuid=self.image(b'e' * 2 ** 20), networks='none',
            host=source)
        old_vm = self.vm_of(server)
        [old_vgpu] = self.vgpus_of(server)
        self.assert_placement(server, source, 'GRID M60-4Q')
        service = self.api.get_services(host=source,
                                        binary='nova-compute')[0]['id']
        self.computes[source].stop()
        self.api.put_service(service, {'forced_down': 'true'})
        # Since microversion 2.95 an evacuated server arrives stopped.
        server = self._evacuate_server(server, expected_host=dest)
        xapi = self.sim.xapi
        self.assertNotIn(old_vm, xapi.VM.get_all())
        vm = self.vm_of(server)
        self.assertEqual('Halted', xapi.VM.get_power_state(vm))
        server = self._start_server(server)
        dest_ref = xapi.host.get_by_name_label(dest)[0]
        self.assertEqual(dest_ref, xapi.VM.get_resident_on(vm))
        [device] = self.allocated(server)
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(self.group_of(dest, '0000:86:00.0'),
                         vgpu['GPU_group'])
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertNotEqual(old_vgpu['uuid'], vgpu['uuid'])
        self.assertEqual((dest, '0000:86:00.0'), self.resident(vgpu))
        self.assert_placement(server, dest, 'GRID M60-4Q')
        # Nova keeps the down source's share until its service is back.
        self.assert_placement(server, source, 'GRID M60-4Q')
        [(_, root)] = [self.disks_of(server)['0']]
        self.assertEqual(self.local_sr(dest), root['SR'])
        self.assertEqual(1, len(self.tagged_vdis(server)))
        # The source comes back: Nova cleans up there; the new VM stays.
        self.computes[source] = self.restart_compute_service(
            self.computes[source], keep_hypervisor_state=False)
        self.api.put_service(service, {'forced_down': 'false'})
        self._run_periodics()
        self.assertEqual('Running', xapi.VM.get_power_state(vm))
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(source)))
        self.assertEqual(0, self.pci_usage(source))
        self.assertNotIn(self._get_provider_uuid_by_host(source),
                         self._get_allocations_by_server_uuid(server['id']))
        self.assert_placement(server, dest, 'GRID M60-4Q')


class EvacuatePlacementTest(EvacuateTest):
    """The same with ``[pci] report_in_placement``: the allocation
    follows to the destination pGPU's provider; the source's is gone
    once its compute service is back."""

    PLACEMENT = True


class SuspendPauseTest(base.XenAPIDriverTestBase):
    """Suspend/resume and pause/unpause keep the vGPU where XAPI allows
    it; a passthrough GPU cannot be suspended and Nova says so."""

    def test_suspend_resume_pause_unpause(self):
        server = self.boot(self.flavor('m60-4q:1'))
        vm = self.vm_of(server)
        xapi = self.sim.xapi
        [device] = self.allocated(server)
        server = self._suspend_server(server)
        self.assertEqual('Suspended', xapi.VM.get_power_state(vm))
        self.assertEqual([device.uuid],
                         [d.uuid for d in self.allocated(server)])
        server = self._resume_server(server)
        self.assertEqual('Running', xapi.VM.get_power_state(vm))
        [vgpu] = self.vgpus_of(server)
        self.assertTrue(vgpu['currently_attached'])
        pgpu = xapi.PGPU.get_record(vgpu['resident_on'])
        self.assertEqual('0000:86:00.0', xapi.PCI.get_pci_id(pgpu['PCI']))
        self.api.post_server_action(server['id'], {'pause': {}})
        server = self._wait_for_state_change(server, 'PAUSED')
        self.assertEqual('Paused', xapi.VM.get_power_state(vm))
        self.api.post_server_action(server['id'], {'unpause': {}})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual('Running', xapi.VM.get_power_state(vm))

    def test_passthrough_cannot_be_suspended(self):
        server = self.boot(self.flavor('whole:1'))
        # Under the framework's CastAsCall the compute's refusal reaches
        # the API call; in a deployment suspend is a cast and Nova records
        # the fault.
        self.assertRaises(client.OpenStackApiException,
                          self.api.post_server_action, server['id'],
                          {'suspend': {}})
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(
            self.vm_of(server)))
        actions = self.api.get_instance_actions(server['id'])
        suspend = [a for a in actions if a['action'] == 'suspend'][0]
        events = self.api.get_instance_action_details(
            server['id'], suspend['request_id'])['events']
        self.assertEqual('Error', events[0]['result'])
        fault = objects.InstanceFault.get_latest_for_instance(
            self.ctxt, server['id'])
        self.assertIn('XAPI cannot suspend a VM with a passthrough vGPU',
                      fault.message)


class LiveMigrationPlacementTest(base.XenAPIDriverTestBase):
    """The same live migration with PCI in Placement: the vGPU's
    resource class moves to the destination pGPU's provider."""

    PLACEMENT = True

    def test_live_migration_moves_the_allocation(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.flavor('m60-4q-live:1'), networks='none',
            host=source)
        server = self._live_migrate(server)
        self.assertEqual(dest, server['OS-EXT-SRV-ATTR:host'])
        [device] = self.allocated(server)
        allocations = self.placement.get(
            '/allocations/%s' % server['id']).body['allocations']
        [provider] = [rp for rp, a in allocations.items()
                      if 'CUSTOM_VGPU_GRID_M60_4Q' in a['resources']]
        self.assertEqual('%s_%s' % (dest, device.parent_addr),
                         self.placement.get('/resource_providers/%s'
                                            % provider).body['name'])
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertEqual(self.sim.xapi.host.get_by_name_label(dest)[0],
                         self.sim.xapi.PGPU.get_host(vgpu['resident_on']))


class ResourceClassOnlyAliasTest(base.XenAPIDriverTestBase):
    """PCI in Placement with a ``[pci] alias`` asking the resource class
    alone (no ids): Nova 34's claim on a cold migration's destination
    ignores Placement's pick and the resource class, and takes a slot of
    another type; the driver refuses it before anything moves."""

    PLACEMENT = True

    def _setup_compute_service(self):
        aliases = [json.loads(a) for a in CONF.pci.alias]
        for alias in aliases:
            alias.pop('vendor_id', None)
            alias.pop('product_id', None)
        self.flags(alias=[json.dumps(a) for a in aliases], group='pci')
        return super()._setup_compute_service()

    def test_a_slot_of_another_type_is_refused(self):
        server = self.boot(self.flavor('m60-4q:1'))
        [vgpu] = self.vgpus_of(server)
        try:
            self.api.post_server_action(server['id'], {'migrate': None})
        except client.OpenStackApiException:
            pass  # CastAsCall hands the compute's failure to the caller
        server = self._wait_for_state_change(server, 'ERROR')
        self.assertIn('for alias m60-4q, which asks for GRID M60-4Q',
                      server['fault']['message'])
        # The source stopped the VM; its M60-4Q VGPU is kept, none made.
        self.assertEqual([(vgpu['uuid'], vgpu['type'], vgpu['GPU_group'])],
                         [(v['uuid'], v['type'], v['GPU_group'])
                          for v in self.vgpus_of(server)])
        self.assertEqual('Halted', self.sim.xapi.VM.get_power_state(
            self.vm_of(server)))
