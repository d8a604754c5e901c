"""Servers with vGPUs through stock Nova's PCI framework and XenAPIDriver."""

from nova_xenapi_vgpu.vgpu_types import synthetic
from tests.functional import base


class VgpuServerTest(base.XenAPIDriverTestBase):
    """Boot, full pool, several vGPUs."""

    def test_boot_and_delete(self):
        flavor = self.flavor('m60-4q:1')
        server = self.boot(flavor)
        host = server['OS-EXT-SRV-ATTR:host']
        [device] = self.allocated(server)
        self.assertEqual('allocated', device.status)
        pgpu_address, _ = synthetic.parse_synthetic(device.address)
        self.assertEqual('0000:86:00.0', pgpu_address)
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(self.group_of(host, pgpu_address),
                         vgpu['GPU_group'])
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(
            self.vm_of(server)))
        self.assertTrue(vgpu['currently_attached'])
        self._delete_server(server)
        self.assertEqual([], self.vgpus_of(server))
        self.assertIsNone(self.vm_of(server))
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(host)))

    def test_full_pool_is_no_valid_host(self):
        flavor = self.flavor('m60-8q:1')
        first = self.boot(flavor)
        second = self.boot(flavor)
        self.assertNotEqual(first['OS-EXT-SRV-ATTR:host'],
                            second['OS-EXT-SRV-ATTR:host'])
        third = self.boot(flavor, expected_state='ERROR')
        self.assertIn('No valid host', third['fault']['message'])
        self.assertEqual([], self.vgpus_of(third))

    def test_two_vgpus(self):
        server = self.boot(self.flavor('t4-8q:2'))
        devices = self.allocated(server)
        self.assertEqual(2, len(devices))
        vgpus = self.vgpus_of(server)
        self.assertEqual(sorted(d.uuid for d in devices), sorted(
            v['other_config']['nova_xenapi_vgpu_device'] for v in vgpus))
        self.assertEqual({'0', '1'}, {v['device'] for v in vgpus})
        self.assertTrue(all(v['currently_attached'] for v in vgpus))

    def test_refused_everywhere_leaves_nothing(self):
        # XAPI gives no VM two M60 vGPUs (compatible_types_in_vm): each
        # member refuses, rolls back and Nova reschedules, then gives up.
        server = self.boot(self.flavor('m60-4q:2'), expected_state='ERROR')
        self.assertEqual([], self.vgpus_of(server))
        self.assertIsNone(self.vm_of(server))
        for host in base.HOSTS:
            self.assertTrue(all(d.status == 'available'
                                for d in self.devices(host)))


class RefusalTest(base.XenAPIDriverTestBase):
    """XAPI refuses the first start: Nova reschedules to the other member."""

    SIMULATOR_ARGS = ('--fail', 'VM.start_on@plug:1:INTERNAL_ERROR:'
                      'vgpu plug refused')

    def test_refusal_reschedules(self):
        server = self.boot(self.flavor('m60-4q:1'))
        host = server['OS-EXT-SRV-ATTR:host']
        other = [h for h in base.HOSTS if h != host][0]
        self.assertTrue(all(d.status == 'available'
                            for d in self.devices(other)))
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(self.group_of(host, '0000:86:00.0'),
                         vgpu['GPU_group'])
        self.assertEqual(1, len([
            vm for vm in self.sim.xapi.VM.get_all_records().values()
            if vm['other_config'].get('nova_uuid') == server['id']]))
        [action] = self.api.get_instance_actions(server['id'])
        events = self.api.get_instance_action_details(
            server['id'], action['request_id'])['events']
        builds = [e for e in events
                  if e['event'] == 'compute__do_build_and_run_instance']
        # A build on each member, the other one first (under CastAsCall
        # the refused build's event wraps the rescheduled one).
        started = {e['host']: e['start_time'] for e in builds}
        self.assertEqual(set(base.HOSTS), set(started))
        self.assertLess(started[other], started[host])
