"""Nova 34's functional framework with this project's driver loaded.

The REST API, conductor, scheduler (PciPassthroughFilter,
NUMATopologyFilter), two compute services, resource tracker,
PciDevTracker, SQLite and the in-process Placement fixture, all Nova's
own; ``compute_driver = xenapi_vgpu.XenAPIDriver``; the XAPI simulator
runs as a subprocess (the test process is eventlet-patched: a server in
it would block every green thread).
"""

import io
import os
import re
import subprocess
import sys

import XenAPI
from nova import conf as novaconf
from nova import context
from nova import objects
from nova.tests.functional import integrated_helpers

from nova_xenapi_vgpu.host import dom0
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import nova_pci
from nova_xenapi_vgpu.virt import conf as virtconf
from nova_xenapi_vgpu.xapi import session

CONF = novaconf.CONF
virtconf.register(CONF)
HERE = os.path.dirname(os.path.abspath(__file__))
# Pinned by gpu-groups pin: one group per PCI address across the members.
PROFILE = os.path.join(HERE, '..', 'fixtures', 'pinned-pool-by-pin.yaml')
GIB = 1024 ** 3
HOSTS = ('xs-nova-01', 'xs-nova-02')
VGPU_ALIASES = [
    '{"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "m60-8q", "vgpu_type": "GRID M60-8Q"}',
    '{"name": "t4-8q", "vgpu_type": "GRID T4-8Q"}',
    '{"name": "m60-2q", "vgpu_type": "GRID M60-2Q"}',
    '{"name": "whole", "vgpu_type": "passthrough"}',
    '{"name": "m60-4q-live", "vgpu_type": "GRID M60-4Q", '
    '"live_migratable": "true"}',
] + ['{"name": "%s-%s", "vgpu_type": "%s", "numa_policy": "%s"}' % (
    alias, policy, model, policy)
    for alias, model in (('m60-8q', 'GRID M60-8Q'), ('t4-8q', 'GRID T4-8Q'))
    for policy in ('required', 'preferred', 'socket')]

# The resource class of each type's slots with PCI in Placement.
RC = {t: 'CUSTOM_VGPU_' + re.sub('[^A-Z0-9]', '_', t.upper())
      for t in ('GRID M60-4Q', 'GRID M60-8Q', 'GRID T4-8Q', 'GRID M60-2Q')}

VM_RECORD = {
    'name_label': '', 'name_description': '', 'user_version': '1',
    'is_a_template': False, 'memory_static_max': str(2 ** 30),
    'memory_static_min': str(2 ** 30), 'memory_dynamic_max': str(2 ** 30),
    'memory_dynamic_min': str(2 ** 30), 'VCPUs_max': '1',
    'VCPUs_at_startup': '1', 'HVM_boot_policy': 'BIOS order',
    'other_config': {}}


class Simulator:
    """``nova-xenapi-vgpu simulator`` in a subprocess."""

    def __init__(self, *args, profile=PROFILE):
        command = [sys.executable, '-c', 'from nova_xenapi_vgpu.cli.main '
                   'import main; main()', 'simulator', '--profile', profile,
                   '--listen', '127.0.0.1:0', *args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith('http'):
            self.stop()
            raise RuntimeError('the simulator did not start: %r' % self.url)
        self._session = None

    @property
    def xapi(self):
        """``session.xenapi`` of a plain SDK session."""
        if self._session is None:
            self._session = XenAPI.Session(self.url)
            self._session.login_with_password('root', 'xenroot', '1.0',
                                              'tests')
        return self._session.xenapi

    def stop(self):
        """Stop the subprocess."""
        self.process.terminate()
        self.process.wait(10)
        self.process.stdout.close()


def nova_pci_conf(url, placement=False, host_name=HOSTS[0]):
    """device_spec and alias lists, as ``nova-conf`` prints them."""
    client = session.XapiClient(url, 'root', 'xenroot')
    try:
        host = client.call('host.get_by_name_label', host_name)[0]
        inventory = reader.read_inventory(client, host,
                                          dom0.Dom0Plugin(client, host))
        result = nova_pci.build(inventory,
                                aliaslib.parse_aliases(VGPU_ALIASES),
                                placement)
    finally:
        client.close()
    lines = nova_pci.config_lines(result).splitlines()
    return ([line.split(' = ', 1)[1] for line in lines
             if line.startswith('device_spec')],
            [line.split(' = ', 1)[1] for line in lines
             if line.startswith('alias')])


def chunked(download, chunk=64 * 1024):
    """GlanceFixture's download, which also returns the image's chunks
    when given nowhere to write them, as Nova's glance.API does."""
    def download_(context, image_id, data=None, dst_path=None,
                  trusted_certs=None):
        if data is not None or dst_path is not None:
            return download(context, image_id, data, dst_path,
                            trusted_certs)
        whole = io.BytesIO()
        download(context, image_id, data=whole)
        blob = whole.getvalue()
        return iter([blob[i:i + chunk] for i in range(0, len(blob), chunk)])
    return download_


def with_data(glance, ctxt, size=2 * 1024 ** 2):
    """GlanceFixture's stock images (the default one of _create_server
    among them) as raw images of ``size`` zero bytes: they hold no data,
    and a disk-0 flavor's root disk is filled from the image."""
    for image in list(glance.images.values()):
        glance.delete(ctxt, image['id'])
        glance.create(ctxt, dict(image, size=size, disk_format='raw',
                                 container_format='bare'),
                      data=io.BytesIO(bytes(size)))


class XenAPIDriverTestBase(integrated_helpers._IntegratedTestBase):
    """Two pool members as two compute nodes, driven by XenAPIDriver."""

    ADMIN_API = True
    microversion = 'latest'
    SIMULATOR_ARGS = ()
    PLACEMENT = False  # PCI in Placement
    PROFILE = PROFILE
    HOSTS = HOSTS

    def setUp(self):
        self.sim = Simulator(*self.SIMULATOR_ARGS, profile=self.PROFILE)
        self.addCleanup(self.sim.stop)
        specs, aliases = nova_pci_conf(self.sim.url, self.PLACEMENT,
                                       self.HOSTS[0])
        if self.PLACEMENT:
            self.flags(report_in_placement=True, group='pci')
            self.flags(pci_in_placement=True, group='filter_scheduler')
        self.flags(compute_driver='xenapi_vgpu.XenAPIDriver')
        self.flags(connection_url=self.sim.url,
                   connection_password='xenroot', connection_retries=0,
                   group='xenserver')
        self.flags(alias=VGPU_ALIASES, group='vgpu')
        self.flags(device_spec=specs, alias=aliases, group='pci')
        self.flags(api_paste_config=os.path.join(
            sys.prefix, 'etc', 'nova', 'api-paste.ini'), group='wsgi')
        filters = list(CONF.filter_scheduler.enabled_filters)
        self.flags(enabled_filters=filters + [
            'PciPassthroughFilter', 'NUMATopologyFilter'],
            group='filter_scheduler')
        super().setUp()
        self.glance.download = chunked(self.glance.download)
        self.ctxt = context.get_admin_context()
        with_data(self.glance, self.ctxt)

    def _setup_compute_service(self):
        for host in self.HOSTS:
            self._start_compute(host)
        return self.computes[self.HOSTS[0]]

    def _clear_attrs(self):
        # pytest keeps the bound test method on the instance and deletes
        # it after the run; nova.test.TestCase._clear_attrs would delete
        # it first.
        kept = self.__dict__.get(self._testMethodName)
        super()._clear_attrs()
        if kept is not None:
            self.__dict__[self._testMethodName] = kept

    def flavor(self, spec, name=None):
        """A disk-0 flavor (root disk at the image's size) asking
        ``pci_passthrough:alias=spec``."""
        return self._create_flavor(
            name=name, memory_mb=512, vcpu=1, disk=0, ephemeral=0,
            extra_spec={'pci_passthrough:alias': spec})

    def boot(self, flavor_id, expected_state='ACTIVE'):
        """A server with no network, booted and waited for."""
        return self._create_server(flavor_id=flavor_id, networks='none',
                                   expected_state=expected_state)

    def devices(self, host):
        """Nova's PciDeviceList of a compute node."""
        node = objects.ComputeNode.get_by_nodename(self.ctxt, host)
        return objects.PciDeviceList.get_by_compute_node(self.ctxt, node.id)

    def allocated(self, server):
        """Nova's devices allocated to ``server``."""
        host = server['OS-EXT-SRV-ATTR:host']
        return [d for d in self.devices(host)
                if d.instance_uuid == server['id']]

    def devices_of(self, host, instance_uuid):
        """Nova's devices of ``host`` allocated to the instance."""
        return [d for d in self.devices(host)
                if d.instance_uuid == instance_uuid]

    def pci_allocations(self, consumer, host):
        """``{provider name: resources}`` of the consumer's allocations
        on ``host``'s PCI providers (its tree but the compute node), after
        asserting the compute node's own share is there."""
        node = self._get_provider_uuid_by_host(host)
        tree = set(self._get_all_rp_uuids_in_a_tree(node)) - {node}
        allocations = self._get_allocations_by_server_uuid(consumer)
        self.assertIn('MEMORY_MB', allocations[node]['resources'])
        return {self._get_resource_provider_by_uuid(rp)['name']:
                a['resources'] for rp, a in allocations.items()
                if rp in tree}

    def assert_placement(self, server, host, vgpu_type, consumer=None):
        """Placement holds the server's vGPUs on ``host`` as Nova's DB
        does: with PCI in Placement one unit of the type's class per
        device the server has there, on the provider of the device's
        pGPU (``<host>_<PGPU ADDRESS>``, as Nova names it), held by
        ``consumer`` (default the server; a migration's uuid for a
        resize's source); without it, no class but the compute
        node's."""
        found = self.pci_allocations(consumer or server['id'], host)
        if not self.PLACEMENT:
            self.assertEqual({}, found)
            return
        expected = {}
        for device in self.devices_of(host, server['id']):
            name = '%s_%s' % (host, device.parent_addr.upper())
            resources = expected.setdefault(name, {RC[vgpu_type]: 0})
            resources[RC[vgpu_type]] += 1
        self.assertTrue(expected)
        self.assertEqual(expected, found)

    def pci_usage(self, host):
        """Units used on ``host``'s PCI providers (0 without PCI in
        Placement, where there are none)."""
        node = self._get_provider_uuid_by_host(host)
        return sum(sum(self._get_provider_usages(rp).values())
                   for rp in self._get_all_rp_uuids_in_a_tree(node)
                   if rp != node)

    def vm_of(self, server):
        """The XAPI ref of the server's VM, or None."""
        for ref, vm in self.sim.xapi.VM.get_all_records().items():
            if vm['other_config'].get('nova_uuid') == server['id']:
                return ref
        return None

    def vgpus_of(self, server):
        """XAPI's VGPU records tagged with the server's uuid."""
        return [v for v in self.sim.xapi.VGPU.get_all_records().values()
                if v['other_config'].get('nova_instance_uuid') ==
                server['id']]

    def resident(self, vgpu):
        """``(host name, PCI address)`` of the pGPU a VGPU is on."""
        xapi = self.sim.xapi
        pgpu = xapi.PGPU.get_record(vgpu['resident_on'])
        return (xapi.host.get_name_label(pgpu['host']),
                xapi.PCI.get_pci_id(pgpu['PCI']))

    def group_of(self, host, address):
        """The GPU group of the pGPU at ``address`` on ``host``."""
        xapi = self.sim.xapi
        host_ref = xapi.host.get_by_name_label(host)[0]
        for pgpu in xapi.PGPU.get_all_records().values():
            if pgpu['host'] == host_ref and xapi.PCI.get_pci_id(
                    pgpu['PCI']) == address:
                return pgpu['GPU_group']
        raise AssertionError('no pGPU %s on %s' % (address, host))

    def disk_flavor(self, spec, root_gb=1, ephemeral_gb=0, memory_mb=512,
                    vcpus=1):
        """A flavor with disks asking ``pci_passthrough:alias=spec``."""
        return self._create_flavor(
            memory_mb=memory_mb, vcpu=vcpus, disk=root_gb,
            ephemeral=ephemeral_gb,
            extra_spec={'pci_passthrough:alias': spec})

    def image(self, data, disk_format='raw', **properties):
        """A Glance image holding ``data``; its id."""
        return self.glance.create(self.ctxt, {
            'name': 'test-%s' % disk_format, 'disk_format': disk_format,
            'container_format': 'bare', 'size': len(data),
            'status': 'active', 'visibility': 'public',
            'properties': properties}, data=io.BytesIO(data))['id']

    def disks_of(self, server):
        """``{userdevice: (VBD record, VDI record)}`` of the server's VM."""
        xapi = self.sim.xapi
        found = {}
        for vbd in xapi.VM.get_VBDs(self.vm_of(server)):
            record = xapi.VBD.get_record(vbd)
            found[record['userdevice']] = (record, xapi.VDI.get_record(
                record['VDI']))
        return found

    def tagged_vdis(self, server):
        """XAPI's VDIs tagged with the server's uuid."""
        return [v for v in self.sim.xapi.VDI.get_all_records().values()
                if v['other_config'].get('nova_uuid') == server['id']]

    def local_sr(self, host):
        """The ref of ``host``'s local SR."""
        xapi = self.sim.xapi
        host_ref = xapi.host.get_by_name_label(host)[0]
        for pbd in xapi.host.get_PBDs(host_ref):
            sr = xapi.PBD.get_SR(pbd)
            if not xapi.SR.get_shared(sr):
                return sr
        raise AssertionError('no local SR on %s' % host)
