"""Disks, templates and VIFs: what spawn makes in XAPI, through Nova."""

import struct

from nova import objects

from tests.functional import base

MIB = 1024 ** 2


def vhd(virtual_size):
    """The head of a dynamic VHD: the footer copy vhd-tool reads."""
    footer = bytearray(512)
    footer[:8] = b'conectix'
    footer[48:56] = struct.pack('>Q', virtual_size)
    return bytes(footer) + b'\0' * 1024


class VmPartsTest(base.XenAPIDriverTestBase):
    """Root disk from the image, ephemeral disk, template, VIFs."""

    def test_raw_image_root_and_ephemeral_disks_and_a_vif(self):
        self.flags(ovs_bridge='xenbr0', group='neutron')  # the binding's
        data = bytes(range(256)) * 4096 * 3 + b'tail'  # 3 MiB and 4 bytes
        flavor = self.disk_flavor('m60-4q:1', root_gb=1, ephemeral_gb=2)
        host = base.HOSTS[1]  # a thin SR: a VDI uses what was written
        server = self._create_server(
            flavor_id=flavor, image_uuid=self.image(data),
            networks=[{'port': self.neutron.port_1['id']}], host=host)
        parts = self.disks_of(server)
        (root_vbd, root), (eph_vbd, eph) = parts['0'], parts['1']
        self.assertEqual((True, 'RW'), (root_vbd['bootable'],
                                        root_vbd['mode']))
        self.assertEqual(str(1 * base.GIB), root['virtual_size'])
        self.assertEqual(str(len(data)), root['physical_utilisation'])
        self.assertEqual('0', eph['physical_utilisation'])
        self.assertEqual(self.local_sr(host), root['SR'])
        self.assertFalse(eph_vbd['bootable'])
        self.assertEqual(str(2 * base.GIB), eph['virtual_size'])
        [vif] = [self.sim.xapi.VIF.get_record(v) for v in
                 self.sim.xapi.VM.get_VIFs(self.vm_of(server))]
        self.assertEqual(self.neutron.port_1['mac_address'], vif['MAC'])
        self.assertEqual('xenbr0', self.sim.xapi.network.get_bridge(
            vif['network']))
        self.assertEqual(self.neutron.port_1['id'],
                         vif['other_config']['neutron_port_id'])
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(
            self.vm_of(server)))
        self.assertEqual(1, len(self.allocated(server)))
        self._delete_server(server)
        self.assertEqual([], self.tagged_vdis(server))
        self.assertEqual([], [v for v in self.sim.xapi.VIF.get_all_records(
        ).values() if v['MAC'] == vif['MAC']])

    def test_disk_reported_from_the_local_sr(self):
        host = base.HOSTS[0]
        server = self.boot_with_disk(host)
        node = self._get_provider_uuid_by_host(host)
        inventory = self._get_provider_inventory(node)
        self.assertEqual(1024, inventory['DISK_GB']['total'])
        self.assertEqual(5, self._get_provider_usages(node)['DISK_GB'])
        self._run_periodics()
        compute = objects.ComputeNode.get_by_nodename(self.ctxt, host)
        self.assertEqual((1024, 5), (compute.local_gb,
                                     compute.local_gb_used))
        self._delete_server(server)

    def boot_with_disk(self, host):
        flavor = self.disk_flavor('m60-4q:1', root_gb=5)
        return self._create_server(
            flavor_id=flavor, image_uuid=self.image(b'x' * MIB),
            networks='none', host=host)

    def test_vhd_image_into_a_xenserver_template(self):
        self.flags(default_network_bridge='xenbr0', group='xenserver')
        image = self.image(vhd(512 * MIB), 'vhd',
                           xenapi_template='Debian Bookworm 12')
        flavor = self.disk_flavor('m60-4q:1', root_gb=20, vcpus=2)
        server = self._create_server(
            flavor_id=flavor, image_uuid=image,
            networks=[{'port': self.neutron.port_1['id']}])
        xapi, vm = self.sim.xapi, self.vm_of(server)
        record = xapi.VM.get_record(vm)
        self.assertNotIn('disks', record['other_config'])
        self.assertEqual('qemu-upstream-compat',
                         record['platform']['device-model'])
        self.assertEqual((str(512 * MIB), '2'), (
            record['memory_static_max'], record['VCPUs_max']))
        root_vbd, root = self.disks_of(server)['0']
        self.assertTrue(root_vbd['bootable'])
        self.assertEqual(str(20 * base.GIB), root['virtual_size'])
        self.assertEqual(self.local_sr(server['OS-EXT-SRV-ATTR:host']),
                         root['SR'])
        [vif] = xapi.VM.get_VIFs(vm)
        self.assertEqual('xenbr0', xapi.network.get_bridge(
            xapi.VIF.get_network(vif)))
        self._delete_server(server)
        self.assertEqual([], self.tagged_vdis(server))

    def test_port_on_no_pool_network_fails_and_leaves_nothing(self):
        # Neutron's OVS binding names br-int; the pool has xenbr0 only.
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q:1'),
            image_uuid=self.image(b'y' * MIB),
            networks=[{'port': self.neutron.port_1['id']}],
            expected_state='ERROR')
        self.assertIsNone(self.vm_of(server))
        self.assertEqual([], self.tagged_vdis(server))
        for host in base.HOSTS:
            self.assertTrue(all(d.status == 'available'
                                for d in self.devices(host)))

    def test_qcow2_image_is_refused_before_anything_is_made(self):
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q:1'),
            image_uuid=self.image(b'z' * MIB, 'qcow2'), networks='none',
            expected_state='ERROR')
        self.assertIn('raw and vhd', server['fault']['message'])
        self.assertIsNone(self.vm_of(server))

    def test_rebuild_makes_the_root_disk_anew_from_the_new_image(self):
        host = base.HOSTS[1]  # a thin SR: a VDI uses what was written
        server = self._create_server(
            flavor_id=self.disk_flavor('m60-4q:1', root_gb=1),
            image_uuid=self.image(b'a' * MIB), networks='none', host=host)
        [old] = self.tagged_vdis(server)
        [device] = self.allocated(server)
        server = self._rebuild_server(server, self.image(b'b' * 3 * MIB))
        [new] = self.tagged_vdis(server)
        self.assertNotEqual(old['uuid'], new['uuid'])
        self.assertEqual(str(3 * MIB), new['physical_utilisation'])
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(
            self.vm_of(server)))
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
