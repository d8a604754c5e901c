"""NUMA policies and restarts in any order, through Nova's API.

On both members the M60-8Q pGPU sits on NUMA node 1 (socket 1) and the
T4-8Q pGPU on node 0 (socket 0); a one-cell guest asking both can meet
`required` and `socket` nowhere (the scheduler says so), `preferred`
anywhere (and the driver then refuses two types XAPI never puts in one
VM). On a pool whose node 1 (the M60-8Q's) is short of memory a one-cell
guest fits node 0 only: `preferred` lands there with its vGPU remote,
`required` and `socket` find no host.
"""

import itertools
import os

from nova import objects

from tests.functional import base


class NumaPolicyTest(base.XenAPIDriverTestBase):
    """Nova's NUMA fitting over the driver's devices and topology."""

    def one_cell(self, spec):
        return self._create_flavor(
            memory_mb=512, vcpu=2, disk=0, ephemeral=0, extra_spec={
                'pci_passthrough:alias': spec, 'hw:numa_nodes': '1'})

    def host_nodes(self, server):
        topology = self.api.api_get(
            '/servers/%s/topology' % server['id']).body
        return [n['host_node'] for n in topology['nodes']]

    def test_required_and_socket_put_the_guest_on_its_vgpus_node(self):
        for policy in ('required', 'socket'):
            server = self.boot(self.one_cell('m60-8q-%s:1' % policy))
            self.assertEqual([1], self.host_nodes(server))
            [device] = self.allocated(server)
            self.assertEqual(1, device.numa_node)
            self._delete_server(server)

    def test_required_and_socket_refuse_vgpus_on_two_nodes(self):
        for policy in ('required', 'socket'):
            server = self.boot(self.one_cell(
                'm60-8q-%s:1,t4-8q-%s:1' % (policy, policy)),
                expected_state='ERROR')
            self.assertIn('No valid host', server['fault']['message'])
            self.assertEqual(None, self.vm_of(server))
            self._delete_server(server)

    def test_preferred_accepts_what_required_refuses_at_the_scheduler(self):
        # Nova's fitting takes the two vGPUs from both nodes; XAPI gives
        # no VM an M60-8Q beside a T4-8Q (compatible_types_in_vm), so the
        # driver aborts the build before anything is made, no reschedule.
        server = self.boot(self.one_cell('m60-8q-preferred:1,'
                                         't4-8q-preferred:1'),
                           expected_state='ERROR')
        self.assertIn('compatible_types_in_vm', server['fault']['message'])
        self.assertEqual([], self.vgpus_of(server))
        self.assertEqual(None, self.vm_of(server))


class RestartOrderTest(base.XenAPIDriverTestBase):
    """Every server stopped (a reboot of the pool), started in any order:
    each gets its vGPU back on the pGPU Nova allocated."""

    def test_every_order_restarts_every_server(self):
        specs = ('m60-4q:1', 'm60-4q:1', 'm60-8q:1', 't4-8q:2')
        servers = [self.boot(self.flavor(spec)) for spec in specs]
        parents = {s['id']: sorted(d.parent_addr for d in self.allocated(s))
                   for s in servers}
        for order in itertools.islice(itertools.permutations(servers), 3):
            for server in servers:
                self._stop_server(server)
            for server in reversed(order):
                self._start_server(server)
            xapi = self.sim.xapi
            for server in servers:
                vgpus = self.vgpus_of(server)
                self.assertTrue(all(v['currently_attached'] for v in vgpus))
                self.assertEqual(parents[server['id']], sorted(
                    xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(v['resident_on']))
                    for v in vgpus))


class RemoteVgpuTest(base.XenAPIDriverTestBase):
    """Node 1 holds the M60-8Q pGPU but only 4 GiB: a one-cell guest of
    8 GiB fits node 0 alone. ``preferred`` puts it there with its vGPU
    on node 1; ``required`` and ``socket`` find no host."""

    PROFILE = os.path.join(base.HERE, '..', 'fixtures',
                           'pinned-pool-lopsided-numa.yaml')

    def big_cell(self, spec):
        return self._create_flavor(
            memory_mb=8192, vcpu=2, disk=0, ephemeral=0, extra_spec={
                'pci_passthrough:alias': spec, 'hw:numa_nodes': '1'})

    def test_preferred_lands_away_from_its_vgpu_required_does_not(self):
        # The same guest with a vGPU on node 0 lands under required.
        local = self.boot(self.big_cell('t4-8q-required:1'))
        self.assertEqual([0], NumaPolicyTest.host_nodes(self, local))
        self._delete_server(local)
        for policy in ('required', 'socket'):
            refused = self.boot(self.big_cell('m60-8q-%s:1' % policy),
                                expected_state='ERROR')
            self.assertIn('No valid host', refused['fault']['message'])
            self.assertIsNone(self.vm_of(refused))
            self.assertEqual([], self.vgpus_of(refused))
        server = self.boot(self.big_cell('m60-8q-preferred:1'))
        host = server['OS-EXT-SRV-ATTR:host']
        self.assertEqual([0], NumaPolicyTest.host_nodes(self, server))
        cells = objects.InstanceNUMATopology.get_by_instance_uuid(
            self.ctxt, server['id']).cells
        self.assertEqual([(0, 8192)], [(c.id, c.memory) for c in cells])
        [device] = self.allocated(server)
        self.assertEqual((1, '0000:87:00.0'),
                         (device.numa_node, device.parent_addr))
        xapi = self.sim.xapi
        vm = self.vm_of(server)
        self.assertEqual({'mask': '0,1,2,3,4,5,6,7'},
                         xapi.VM.get_VCPUs_params(vm))
        [vgpu] = self.vgpus_of(server)
        self.assertEqual((host, '0000:87:00.0'), self.resident(vgpu))
        self.assertEqual('GRID M60-8Q',
                         xapi.VGPU_type.get_model_name(vgpu['type']))
        self.assertEqual(device.uuid,
                         vgpu['other_config']['nova_xenapi_vgpu_device'])
        self.assertEqual('Running', xapi.VM.get_power_state(vm))
        self.assert_placement(server, host, 'GRID M60-8Q')


class RemoteVgpuPlacementTest(RemoteVgpuTest):
    """The same with ``[pci] report_in_placement``."""

    PLACEMENT = True
