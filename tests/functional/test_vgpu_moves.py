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
