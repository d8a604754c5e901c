"""A disk-0 flavor's root disk sized from the image; a live migration
refused after Nova's destination claim, and one XAPI fails, leave no
claim and no VGPU behind."""

import io
import json
import os
import struct

from nova import conf as novaconf
from nova import exception as novaexc
from nova.tests.functional.api import client

from nova_xenapi_vgpu.vgpu_types import synthetic
from tests.functional import base

CONF = novaconf.CONF

MIB = 1024 ** 2


def vhd(virtual_size, tail=1024):
    """A dynamic VHD's head: the footer copy with its current size."""
    footer = bytearray(512)
    footer[:8] = b'conectix'
    footer[48:56] = struct.pack('>Q', virtual_size)
    return bytes(footer) + b'\0' * tail


class RootDiskFromImageTest(base.XenAPIDriverTestBase):
    """A flavor with disk 0 boots from the image at the image's own size,
    as Nova's libvirt driver does; an image bigger than a nonzero
    root_gb is refused (by Nova's API on its size, by the driver on a
    vhd's virtual size)."""

    HOST = base.HOSTS[1]  # a thin SR: a VDI uses what was written

    def boot_image(self, image, root_gb=0, state='ACTIVE'):
        return self._create_server(
            flavor_id=self.disk_flavor('m60-4q:1', root_gb=root_gb),
            image_uuid=image, networks='none', host=self.HOST,
            expected_state=state)

    def test_raw_image_sized_to_itself(self):
        data = b'r' * 4 * MIB  # whole 2 MiB blocks of the thin SR
        server = self.boot_image(self.image(data))
        root_vbd, root = self.disks_of(server)['0']
        self.assertTrue(root_vbd['bootable'])
        self.assertEqual(str(4 * MIB), root['virtual_size'])
        self.assertEqual(str(4 * MIB), root['physical_utilisation'])
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(
            self.vm_of(server)))
        self._delete_server(server)
        self.assertEqual([], self.tagged_vdis(server))

    def test_vhd_image_sized_to_its_virtual_size(self):
        server = self.boot_image(self.image(vhd(64 * MIB), 'vhd'))
        _, root = self.disks_of(server)['0']
        self.assertEqual(str(64 * MIB), root['virtual_size'])
        self.assertEqual([root['uuid']],
                         [v['uuid'] for v in self.tagged_vdis(server)])

    def test_vhd_bigger_than_root_gb_is_refused_before_anything(self):
        # 1.5 KiB in Glance, 2 GiB of disk: Nova's API sees the 1.5 KiB.
        server = self.boot_image(self.image(vhd(2 * base.GIB), 'vhd'),
                                 root_gb=1, state='ERROR')
        self.assertIn("Flavor's disk is too small for requested image",
                      server['fault']['message'])
        self.assertIsNone(self.vm_of(server))
        self.assertEqual([], self.tagged_vdis(server))
        for host in base.HOSTS:
            self.assertTrue(all(d.status == 'available'
                                for d in self.devices(host)))
        # The build was aborted, not rescheduled: one host tried.
        [action] = self.api.get_instance_actions(server['id'])
        events = self.api.get_instance_action_details(
            server['id'], action['request_id'])['events']
        self.assertEqual(1, len([e for e in events if e['event'] ==
                                 'compute__do_build_and_run_instance']))

    def test_raw_bigger_than_root_gb_is_refused_by_nova(self):
        image = self.glance.create(self.ctxt, {
            'name': 'big', 'disk_format': 'raw', 'container_format': 'bare',
            'size': base.GIB + 1, 'status': 'active',
            'visibility': 'public'}, data=io.BytesIO(b'x'))['id']
        error = self.assertRaises(
            client.OpenStackApiException, self._create_server,
            flavor_id=self.disk_flavor('m60-4q:1', root_gb=1),
            image_uuid=image, networks='none')
        self.assertEqual(400, error.response.status_code)
        self.assertIn(novaexc.FlavorDiskSmallerThanImage.msg_fmt[:30],
                      str(error))


class LiveMigrationRefusedAfterClaimTest(base.XenAPIDriverTestBase):
    """The destination member has two 4Q pGPUs; its nova-compute tracks
    only the one at 0000:89:00.0, so Nova's claim lands there, while XAPI
    would put the VGPU on the pGPU of its own group (0000:86:00.0). The
    driver refuses the move in pre_live_migration, before anything
    moves, and Nova's rollback frees the destination's claim at once."""

    PROFILE = os.path.join(base.HERE, '..', 'fixtures',
                           'pinned-pool-two-4q.yaml')

    def _setup_compute_service(self):
        source, dest = self.HOSTS
        self._start_compute(source)
        specs = [json.loads(s) for s in CONF.pci.device_spec]
        for spec in specs:
            if spec.get('product_id') == synthetic.product_id(
                    'GRID M60-4Q'):
                spec['address'] = dict(spec['address'], bus='89')
        self.flags(device_spec=[json.dumps(s) for s in specs], group='pci')
        self._start_compute(dest)
        return self.computes[source]

    def test_refused_and_the_destination_claim_freed(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.flavor('m60-4q-live:1'), networks='none',
            host=source)
        vm = self.vm_of(server)
        [before] = self.allocated(server)
        [vgpu] = self.vgpus_of(server)
        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': None, 'block_migration': 'auto'}})
        self._wait_for_migration_status(server, ['failed'])
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual(source, server['OS-EXT-SRV-ATTR:host'])
        # No periodic task has run: Nova's rollback freed the claim.
        self.assertEqual([], [(d.address, d.status) for d in
                              self.devices(dest) if d.status != 'available'])
        self.assertEqual([before.uuid],
                         [d.uuid for d in self.allocated(server)])
        xapi = self.sim.xapi
        self.assertEqual(xapi.host.get_by_name_label(source)[0],
                         xapi.VM.get_resident_on(vm))
        self.assertEqual([vgpu], self.vgpus_of(server))
        fault = self.api.get_server(server['id']).get('fault') or {}
        [action] = [a for a in self.api.get_instance_actions(server['id'])
                    if a['action'] == 'live-migration']
        events = self.api.get_instance_action_details(
            server['id'], action['request_id'])['events']
        refused = [e for e in events if e['result'] == 'Error']
        self.assertIn('compute_pre_live_migration',
                      [e['event'] for e in refused], (events, fault))
