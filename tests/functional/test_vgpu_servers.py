"""Servers with vGPUs through stock Nova's PCI framework and XenAPIDriver."""

import os

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

    def test_refused_everywhere_leaves_nothing(self):
        # XAPI gives no VM two M60 vGPUs (compatible_types_in_vm): the
        # driver aborts the build before anything is made (no member
        # could do better), and Nova frees its claim.
        server = self.boot(self.flavor('m60-4q:2'), expected_state='ERROR')
        self.assertIn('compatible_types_in_vm', server['fault']['message'])
        self.assertEqual([], self.vgpus_of(server))
        self.assertIsNone(self.vm_of(server))
        for host in base.HOSTS:
            self.assertTrue(all(d.status == 'available'
                                for d in self.devices(host)))


    def test_numa_instances_land_on_their_pgpus_node(self):
        # The 4Q pGPU sits on NUMA node 0, the 8Q one on node 1.
        for spec, node, cpus in (('m60-4q:1', 0, '0,1,2,3,4,5,6,7'),
                                 ('m60-8q:1', 1, '8,9,10,11,12,13,14,15')):
            flavor = self._create_flavor(
                memory_mb=512, vcpu=1, disk=0, ephemeral=0, extra_spec={
                    'pci_passthrough:alias': spec, 'hw:numa_nodes': '1'})
            server = self.boot(flavor)
            topology = self.api.api_get(
                '/servers/%s/topology' % server['id']).body
            self.assertEqual([node], [n['host_node']
                                      for n in topology['nodes']])
            [device] = self.allocated(server)
            self.assertEqual(node, device.numa_node)
            self.assertEqual({'mask': cpus}, self.sim.xapi.VM.get_VCPUs_params(
                self.vm_of(server)))

    def test_restart_reaps_orphan_vgpus_and_keeps_the_servers(self):
        server = self.boot(self.flavor('m60-4q:1'))
        host = server['OS-EXT-SRV-ATTR:host']
        xapi = self.sim.xapi
        vm = xapi.VM.create(dict(base.VM_RECORD, name_label='left-over'))
        model = {t['model_name']: ref for ref, t in
                 xapi.VGPU_type.get_all_records().items()}
        host_uuid = xapi.host.get_uuid(xapi.host.get_by_name_label(host)[0])
        orphan = xapi.VGPU.create(
            vm, self.group_of(host, '0000:86:00.0'), '0',
            {'nova_xenapi_vgpu_host': host_uuid,
             'nova_instance_uuid': 'no-such-instance'}, model['GRID M60-4Q'])
        self.computes[host] = self.restart_compute_service(
            self.computes[host], keep_hypervisor_state=False)
        self.assertNotIn(orphan, xapi.VGPU.get_all())
        self.assertEqual(1, len(self.vgpus_of(server)))
        self.assertIn(vm, xapi.VM.get_all())

    def test_passthrough_and_vgpus_of_one_pgpu_exclude_each_other(self):
        # 0000:88:00.0 offers GRID M60-2Q and passthrough: a PF and its VFs.
        whole = self.boot(self.flavor('whole:1'))
        host = whole['OS-EXT-SRV-ATTR:host']
        [pf] = self.allocated(whole)
        self.assertEqual(('type-PF', '0000:88:00.0'),
                         (pf.dev_type, pf.address))
        [vgpu] = self.vgpus_of(whole)
        self.assertEqual('passthrough', self.sim.xapi.VGPU_type.
                         get_model_name(vgpu['type']))
        self.assertEqual(self.group_of(host, '0000:88:00.0'),
                         vgpu['GPU_group'])
        vfs = [d for d in self.devices(host)
               if d.parent_addr == '0000:88:00.0']
        self.assertEqual({'unavailable'}, {d.status for d in vfs})
        carved = self.boot(self.flavor('m60-2q:1'))
        self.assertNotEqual(host, carved['OS-EXT-SRV-ATTR:host'])
        self._delete_server(whole)
        self.assertEqual({'available'}, {d.status for d in self.devices(host)
                                         if d.parent_addr == '0000:88:00.0'})


class ServerLifeTest(base.XenAPIDriverTestBase):
    """Two vGPUs, stop/start/reboot, a compute restart: Nova's devices,
    Placement's allocations and XAPI's VGPUs stay together (run again
    with PCI in Placement below)."""

    def test_two_vgpus(self):
        server = self.boot(self.flavor('t4-8q:2'))
        host = server['OS-EXT-SRV-ATTR:host']
        devices = self.allocated(server)
        self.assertEqual(2, len(devices))
        self.assertEqual({'0000:3b:00.0'}, {d.parent_addr for d in devices})
        self.assert_placement(server, host, 'GRID T4-8Q')
        vgpus = self.vgpus_of(server)
        self.assertEqual(sorted(d.uuid for d in devices), sorted(
            v['other_config']['nova_xenapi_vgpu_device'] for v in vgpus))
        self.assertEqual({'0', '1'}, {v['device'] for v in vgpus})
        self.assertTrue(all(v['currently_attached'] for v in vgpus))
        self.assertEqual([(host, '0000:3b:00.0')] * 2,
                         [self.resident(v) for v in vgpus])
        self._delete_server(server)
        self.assertEqual(0, self.pci_usage(host))
        self.assertEqual([], self.vgpus_of(server))

    def test_stop_start_and_reboot_keep_the_vgpu(self):
        server = self.boot(self.flavor('m60-4q:1'))
        host = server['OS-EXT-SRV-ATTR:host']
        [device] = self.allocated(server)
        vm = self.vm_of(server)
        server = self._stop_server(server)
        self.assertEqual('Halted', self.sim.xapi.VM.get_power_state(vm))
        [vgpu] = self.vgpus_of(server)
        self.assertFalse(vgpu['currently_attached'])
        self.assertEqual([device.address],
                         [d.address for d in self.allocated(server)])
        self.assert_placement(server, host, 'GRID M60-4Q')
        server = self._start_server(server)
        self.assertEqual('Running', self.sim.xapi.VM.get_power_state(vm))
        for hard in (False, True):
            server = self._reboot_server(server, hard=hard)
            self.assertEqual('Running', self.sim.xapi.VM.get_power_state(vm))
        [vgpu] = self.vgpus_of(server)
        self.assertTrue(vgpu['currently_attached'])
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertEqual((host, '0000:86:00.0'), self.resident(vgpu))
        self.assertEqual([device.uuid],
                         [d.uuid for d in self.allocated(server)])
        self.assert_placement(server, host, 'GRID M60-4Q')

    def test_compute_restart_keeps_servers_and_devices(self):
        server = self.boot(self.flavor('m60-4q:1'))
        host = server['OS-EXT-SRV-ATTR:host']
        [device] = self.allocated(server)
        providers = self._get_all_rp_uuids_in_a_tree(
            self._get_provider_uuid_by_host(host))
        self.computes[host] = self.restart_compute_service(
            self.computes[host], keep_hypervisor_state=False)
        self._run_periodics()
        self.assertEqual([device.uuid],
                         [d.uuid for d in self.allocated(server)])
        self.assertEqual(sorted(providers), sorted(
            self._get_all_rp_uuids_in_a_tree(
                self._get_provider_uuid_by_host(host))))
        self.assert_placement(server, host, 'GRID M60-4Q')
        driver = self.computes[host].manager.driver
        self.assertIn(server['id'], driver.list_instance_uuids())
        server = self.api.get_server(server['id'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(1, server['OS-EXT-STS:power_state'])
        [vgpu] = self.vgpus_of(server)
        self.assertEqual((host, '0000:86:00.0'), self.resident(vgpu))


class ServerLifePlacementTest(ServerLifeTest):
    """The same with ``[pci] report_in_placement``."""

    PLACEMENT = True


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
        self.assertEqual(0, self.pci_usage(other))
        self.assert_placement(server, host, 'GRID M60-4Q')
        [vgpu] = self.vgpus_of(server)
        self.assertEqual(self.group_of(host, '0000:86:00.0'),
                         vgpu['GPU_group'])
        self.assertEqual((host, '0000:86:00.0'), self.resident(vgpu))
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


class RefusalPlacementTest(RefusalTest):
    """The same with ``[pci] report_in_placement``: Placement's
    allocation on the refusing member's pGPU is freed too."""

    PLACEMENT = True


class PciInPlacementTest(base.XenAPIDriverTestBase):
    """[pci] report_in_placement: a resource class per vGPU type."""

    PLACEMENT = True

    def test_boot_allocates_the_types_class_and_delete_frees_it(self):
        server = self.boot(self.flavor('m60-4q:1'))
        host = server['OS-EXT-SRV-ATTR:host']
        [device] = self.allocated(server)
        allocations = self.placement.get(
            '/allocations/%s' % server['id']).body['allocations']
        vgpu = {rp: a['resources'] for rp, a in allocations.items()
                if 'CUSTOM_VGPU_GRID_M60_4Q' in a['resources']}
        self.assertEqual([{'CUSTOM_VGPU_GRID_M60_4Q': 1}],
                         list(vgpu.values()))
        [provider] = vgpu
        name = self.placement.get(
            '/resource_providers/%s' % provider).body['name']
        self.assertEqual('%s_%s' % (host, device.parent_addr), name)
        inventory = self.placement.get(
            '/resource_providers/%s/inventories' % provider).body
        self.assertEqual(2, inventory['inventories'][
            'CUSTOM_VGPU_GRID_M60_4Q']['total'])
        [xapi_vgpu] = self.vgpus_of(server)
        self.assertEqual(device.uuid,
                         xapi_vgpu['other_config']['nova_xenapi_vgpu_device'])
        self._delete_server(server)
        self.assertEqual({}, self.placement.get(
            '/allocations/%s' % server['id']).body['allocations'])
        self.assertEqual([], self.vgpus_of(server))

    def test_full_pool_is_no_valid_host(self):
        flavor = self.flavor('m60-8q:1')
        self.boot(flavor)
        self.boot(flavor)
        third = self.boot(flavor, expected_state='ERROR')
        self.assertIn('No valid host', third['fault']['message'])


class PassthroughPlacementTest(base.XenAPIDriverTestBase):
    """Whole-GPU passthrough with ``[pci] report_in_placement``: the pGPU
    is a PF with a provider of its own, one unit of the passthrough class
    per pGPU, and XAPI's passthrough VGPU in that pGPU's group."""

    PLACEMENT = True
    PROFILE = os.path.join(base.HERE, '..', 'fixtures',
                           'pinned-pool-passthrough.yaml')

    def test_boot_full_and_delete(self):
        flavor = self.flavor('whole:1')
        servers = [self.boot(flavor) for _ in base.HOSTS]
        self.assertEqual(set(base.HOSTS), {
            s['OS-EXT-SRV-ATTR:host'] for s in servers})
        for server in servers:
            host = server['OS-EXT-SRV-ATTR:host']
            [pf] = self.allocated(server)
            self.assertEqual(('type-PF', '0000:88:00.0'),
                             (pf.dev_type, pf.address))
            self.assertEqual(
                {'%s_0000:88:00.0' % host: {'CUSTOM_VGPU_PASSTHROUGH': 1}},
                self.pci_allocations(server['id'], host))
            [vgpu] = self.vgpus_of(server)
            self.assertEqual('passthrough', self.sim.xapi.VGPU_type.
                             get_model_name(vgpu['type']))
            self.assertEqual((host, '0000:88:00.0'), self.resident(vgpu))
        third = self.boot(flavor, expected_state='ERROR')
        self.assertIn('No valid host', third['fault']['message'])
        for server in servers:
            self._delete_server(server)
            self.assertEqual([], self.vgpus_of(server))
        self.assertEqual(0, sum(self.pci_usage(h) for h in base.HOSTS))
        self.assertEqual({'available'}, {
            d.status for h in base.HOSTS for d in self.devices(h)})
