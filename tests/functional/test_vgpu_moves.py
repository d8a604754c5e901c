"""Resize and cold migration between pool members, the vGPU following."""

from tests.functional import base


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
        vm = self.vm_of(server)
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(vm))
        host_ref = self.sim.xapi.host.get_by_name_label(host)[0]
        self.assertEqual(host_ref, self.sim.xapi.VM.get_resident_on(vm))

    def other(self, host):
        return [h for h in base.HOSTS if h != host][0]

    def test_resize_then_revert_and_confirm(self):
        server = self.boot(self.flavor('m60-4q:1'))
        source = server['OS-EXT-SRV-ATTR:host']
        bigger = self._create_flavor(
            memory_mb=512, vcpu=2, disk=0, ephemeral=0,
            extra_spec={'pci_passthrough:alias': 'm60-8q:1'})
        self._resize_server(server, bigger)
        server = self._wait_for_state_change(server, 'VERIFY_RESIZE')
        dest = server['OS-EXT-SRV-ATTR:host']
        self.assertEqual(self.other(source), dest)
        self.moved(server, dest, 'GRID M60-8Q', '0000:87:00.0')
        self.assertEqual('2', self.sim.xapi.VM.get_VCPUs_max(
            self.vm_of(server)))
        self._revert_resize(server)
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.moved(server, source, 'GRID M60-4Q', '0000:86:00.0')
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(dest)))
        self._resize_server(server, bigger)
        server = self._wait_for_state_change(server, 'VERIFY_RESIZE')
        server = self._confirm_resize(server)
        self.moved(server, dest, 'GRID M60-8Q', '0000:87:00.0')
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(source)))
        self._delete_server(server)
        self.assertIsNone(self.vm_of(server))

    def test_cold_migration_takes_the_vgpu_along(self):
        server = self.boot(self.flavor('m60-4q:1'))
        source = server['OS-EXT-SRV-ATTR:host']
        server = self._migrate_server(server)
        server = self._confirm_resize(server)
        self.moved(server, self.other(source), 'GRID M60-4Q',
                   '0000:86:00.0')
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(source)))


class LiveMigrationTest(base.XenAPIDriverTestBase):
    """A live migration between members: XAPI moves the VM, its disk
    and its VGPU (in its group, to the pGPU at the same address); Nova's
    claim on the destination is that pGPU's slot, and the VGPU carries
    its uuid afterwards."""

    def test_live_migration_with_a_disk_the_vgpu_follows(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q-live:1', root_gb=1),
            image_uuid=self.image(b'l' * 2 ** 20), networks='none',
            host=source)
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
