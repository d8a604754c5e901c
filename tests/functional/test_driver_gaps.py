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
        for attempt in range(2):  # refused alike; nothing accumulates
            self.api.post_server_action(server['id'], {'os-migrateLive': {
                'host': None, 'block_migration': 'auto'}})
            self._wait_for_migration_status(server, ['failed'])
            server = self._wait_for_state_change(server, 'ACTIVE')
            self.stayed(server, vm, before, vgpu)
            if attempt == 0:
                self.computes[dest] = self.restart_compute_service(
                    self.computes[dest])
        refusals = []
        for action in self.api.get_instance_actions(server['id']):
            events = self.api.get_instance_action_details(
                server['id'], action['request_id'])['events']
            refusals += [(e['event'], e['host']) for e in events
                         if e['result'] == 'Error']
        self.assertEqual(2, refusals.count(('compute_pre_live_migration',
                                            dest)), refusals)

    def stayed(self, server, vm, device, vgpu):
        """On the source with its device and VGPU; no periodic task has
        run, yet the destination claims nothing: Nova's rollback freed
        the claim."""
        source, dest = base.HOSTS
        self.assertEqual(source, server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual([], [(d.address, d.status) for d in
                              self.devices(dest) if d.status != 'available'])
        self.assertEqual([device.uuid],
                         [d.uuid for d in self.allocated(server)])
        self.assertEqual({self._get_provider_uuid_by_host(source)}, set(
            self._get_allocations_by_server_uuid(server['id'])))
        xapi = self.sim.xapi
        self.assertEqual(xapi.host.get_by_name_label(source)[0],
                         xapi.VM.get_resident_on(vm))
        self.assertEqual([vgpu], self.vgpus_of(server))


class LiveMigrationRollbackTest(base.XenAPIDriverTestBase):
    """XAPI fails the first migrate_send after reserving the destination's
    pGPU (VM_MIGRATE_FAILED, as xapi reports a migration that broke off):
    the VM stays on the source with its disk and VGPU, Nova rolls back
    (HyperVLiveMigrateData: Nova calls the destination's rollback, which
    frees its claim), and the same move run again, after a restart of
    the source's compute service, succeeds."""

    SIMULATOR_ARGS = ('--fail', 'VM.migrate_send@plug:1:VM_MIGRATE_FAILED:'
                      'vm:source:destination:mirror broke off')

    def test_rolled_back_then_moved(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.flavor('m60-4q-live:1'), networks='none',
            host=source)
        xapi, vm = self.sim.xapi, self.vm_of(server)
        [device] = self.allocated(server)
        [vgpu] = self.vgpus_of(server)
        [root] = self.tagged_vdis(server)  # disk 0: the image's size
        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': dest, 'block_migration': 'auto'}})
        self._wait_for_migration_status(server, ['failed'])
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual(source, server['OS-EXT-SRV-ATTR:host'])
        self.on(server, source, device, vgpu['uuid'])
        self.assertEqual([root['uuid']],
                         [v['uuid'] for v in self.tagged_vdis(server)])
        self.assertEqual(self.local_sr(source),
                         self.tagged_vdis(server)[0]['SR'])
        self.assertEqual([], [d.address for d in self.devices(dest)
                              if d.status != 'available'])
        self.assertEqual({self._get_provider_uuid_by_host(source)}, set(
            self._get_allocations_by_server_uuid(server['id'])))
        self.assertEqual(1, len([r for r in xapi.VM.get_all_records(
        ).values() if r['other_config'].get('nova_uuid') == server['id']]))
        self.computes[source] = self.restart_compute_service(
            self.computes[source])
        self.on(server, source, device, vgpu['uuid'])
        server = self._live_migrate(server)
        self.assertEqual(dest, server['OS-EXT-SRV-ATTR:host'])
        [moved] = self.allocated(server)
        self.on(server, dest, moved, vgpu['uuid'])
        self.assertEqual(vm, self.vm_of(server))
        self.assertEqual(self.local_sr(dest),
                         self.tagged_vdis(server)[0]['SR'])
        self.assertEqual([], [d.address for d in self.devices(source)
                              if d.status != 'available'])

    def on(self, server, host, device, vgpu_uuid):
        """The server's one VM runs on ``host``, its one VGPU (the same
        XAPI object throughout) on that host's pGPU at 0000:86:00.0,
        tagged with Nova's ``device`` there and the host."""
        xapi, vm = self.sim.xapi, self.vm_of(server)
        host_ref = xapi.host.get_by_name_label(host)[0]
        self.assertEqual(('Running', host_ref), (
            xapi.VM.get_power_state(vm), xapi.VM.get_resident_on(vm)))
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(vgpu_uuid, vgpu['uuid'])
        pgpu = xapi.PGPU.get_record(vgpu['resident_on'])
        self.assertEqual((host_ref, '0000:86:00.0'), (
            pgpu['host'], xapi.PCI.get_pci_id(pgpu['PCI'])))
        self.assertEqual('OpaqueRef:NULL',
                         vgpu['scheduled_to_be_resident_on'])
        self.assertEqual((device.uuid, xapi.host.get_uuid(host_ref)), (
            vgpu['other_config']['nova_xenapi_vgpu_device'],
            vgpu['other_config']['nova_xenapi_vgpu_host']))
        self.assertEqual([(device.uuid, 'allocated')], [
            (d.uuid, d.status) for d in self.allocated(server)])


class LiveMigrationLostReplyTest(base.XenAPIDriverTestBase):
    """XAPI runs the migrate_send but its answer is lost: the driver asks
    XAPI where the VM ended up instead of rolling back on a guess, and
    Nova records the move."""

    SIMULATOR_ARGS = ('--lose-reply', 'Async.VM.migrate_send')

    def test_a_lost_answer_is_settled_as_the_move_it_was(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.flavor('m60-4q-live:1'), networks='none',
            host=source)
        [vgpu] = self.vgpus_of(server)
        server = self._live_migrate(server)
        self.assertEqual(dest, server['OS-EXT-SRV-ATTR:host'])
        [device] = self.allocated(server)
        LiveMigrationRollbackTest.on(self, server, dest, device,
                                     vgpu['uuid'])
        self.assertEqual([], [d.address for d in self.devices(source)
                              if d.status != 'available'])


class LostDiskAnswerTest(base.XenAPIDriverTestBase):
    """XAPI makes the root disk of a disk-0 boot but its answer is lost:
    the driver finds the VDI by its tag instead of making a second one
    (or rescheduling and leaving one behind), and delete removes it."""

    SIMULATOR_ARGS = ('--lose-reply', 'VDI.create')

    def test_one_root_disk_made_and_removed(self):
        server = self._create_server(  # a thin SR: 2 MiB blocks
            flavor_id=self.flavor('m60-4q:1'), networks='none',
            host=base.HOSTS[1])
        [root] = self.tagged_vdis(server)
        self.assertEqual(1, len(root['VBDs']))
        self.assertEqual(str(2 * MIB), root['virtual_size'])  # the image's
        [action] = self.api.get_instance_actions(server['id'])
        events = self.api.get_instance_action_details(
            server['id'], action['request_id'])['events']
        self.assertEqual(1, len([e for e in events if e['event'] ==
                                 'compute__do_build_and_run_instance']))
        self._delete_server(server)
        self.assertEqual([], self.tagged_vdis(server))


class LiveMigrationXapiPreCheckTest(base.XenAPIDriverTestBase):
    """The destination's pGPU of the VGPU's group is full while Nova sees
    room on its other 4Q pGPU: XAPI's own check (VM.assert_can_migrate,
    in check_can_live_migrate_destination) refuses before Nova claims
    anything there, so no claim is left behind either."""

    PROFILE = LiveMigrationRefusedAfterClaimTest.PROFILE

    def test_refused_before_nova_claims(self):
        source, dest = base.HOSTS
        server = self._create_server(
            flavor_id=self.flavor('m60-4q-live:1'), networks='none',
            host=source)
        fillers = [self._create_server(flavor_id=self.flavor('m60-4q:1'),
                                       networks='none', host=dest)
                   for _ in range(2)]
        self.assertEqual({'0000:86:00.0'}, {
            d.parent_addr for f in fillers for d in self.allocated(f)})
        busy = sorted((d.address, d.status) for d in self.devices(dest)
                      if d.status != 'available')
        self.assertRaises(client.OpenStackApiException,
                          self.api.post_server_action, server['id'],
                          {'os-migrateLive': {'host': None,
                                              'block_migration': 'auto'}})
        self._wait_for_migration_status(server, ['error'])
        self.assertEqual(busy, sorted(
            (d.address, d.status) for d in self.devices(dest)
            if d.status != 'available'))
        server = self.api.get_server(server['id'])
        self.assertEqual(('ACTIVE', source), (
            server['status'], server['OS-EXT-SRV-ATTR:host']))
        [action] = [a for a in self.api.get_instance_actions(server['id'])
                    if a['action'] == 'live-migration']
        events = self.api.get_instance_action_details(
            server['id'], action['request_id'])['events']
        self.assertIn(('compute_check_can_live_migrate_destination', dest),
                      [(e['event'], e['host']) for e in events
                       if e['result'] == 'Error'])
