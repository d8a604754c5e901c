"""XenAPIDriver's surface: loading by name, what it refuses and says so;
its disks, templates, VIFs and image import against the simulator."""

import os
import struct
import uuid as uuidlib
import warnings
import xml.etree.ElementTree as ElementTree

import pytest
from nova import conf as novaconf
from nova import exception as novaexc
from nova import objects
from nova.virt import driver as novadriver

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.virt import disks
from nova_xenapi_vgpu.virt import driver
from nova_xenapi_vgpu.virt import guest
from nova_xenapi_vgpu.virt import host as hostlib
from nova_xenapi_vgpu.virt import migration
from nova_xenapi_vgpu.virt import numa
from nova_xenapi_vgpu.virt import vgpus
from nova_xenapi_vgpu.virt import vifs
from nova_xenapi_vgpu.xapi import records
from nova_xenapi_vgpu.xapi import session
from nova_xenapi_vgpu.xapi import vdi_import

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()
IMAGE = '6b2b1b8e-0000-4000-8000-00000000000a'
MIB = 1024 ** 2


def instance(root_gb=0, ephemeral_gb=0):
    flavor = objects.Flavor(memory_mb=512, vcpus=1, root_gb=root_gb,
                            ephemeral_gb=ephemeral_gb, extra_specs={})
    return objects.Instance(uuid='3f1a7a5e-0000-4000-8000-000000000001',
                            flavor=flavor, numa_topology=None)


def test_stock_nova_loads_it_by_name():
    novaconf.CONF.set_override('compute_driver', 'xenapi_vgpu.XenAPIDriver')
    try:
        loaded = novadriver.load_compute_driver(None)
    finally:
        novaconf.CONF.clear_override('compute_driver')
    assert isinstance(loaded, driver.XenAPIDriver)
    assert novaconf.CONF.xenserver.connection_concurrent == 5
    assert novaconf.CONF.vgpu.numa_policy == 'legacy'


@pytest.mark.parametrize('hook', ['rescue', 'snapshot'])
def test_hooks_not_implemented_say_so(hook):
    with pytest.raises(NotImplementedError, match='does not'):
        getattr(driver.XenAPIDriver(None), hook)(None, None)


def test_only_raw_and_vhd_images_make_a_root_disk():
    meta = objects.ImageMeta.from_dict({'id': IMAGE, 'disk_format': 'qcow2',
                                        'size': 10})
    for root_gb in (1, 0):  # disk 0: a root disk at the image's size
        with pytest.raises(novaexc.ImageUnacceptable, match='raw and vhd'):
            disks.root_image(None, instance(root_gb=root_gb), meta)
    assert disks.root_image(None, instance(), objects.ImageMeta.from_dict(
        {'disk_format': 'raw'})) is None  # no image: no root disk


def vhd_head(virtual_size):
    """The footer copy a dynamic VHD starts with."""
    footer = bytearray(disks.VHD_FOOTER)
    footer[:8] = disks.VHD_COOKIE
    footer[48:56] = struct.pack('>Q', virtual_size)
    return bytes(footer)


class Glance:
    """Glance's images as Nova's image API returns them (no Glance runs
    here): ``get`` their records, ``download`` their chunks, or into
    ``data``."""

    def __init__(self):
        self.images, self.data = {}, {}

    def __call__(self):
        return self

    def get(self, context, image_id):
        return dict(self.images[image_id])

    def download(self, context, image_id, data=None):
        blob = self.data[image_id]
        chunks = [blob[i:i + 65536] for i in range(0, len(blob), 65536)]
        if data is None:
            return iter(chunks)
        for chunk in chunks:
            data.write(chunk)


@pytest.fixture
def glance(monkeypatch):
    fake = Glance()
    monkeypatch.setattr(disks.glance, 'API', fake)
    return fake


def put_image(glance, data, disk_format):
    image_id = '6b2b1b8e-0000-4000-8000-%012d' % len(glance.images)
    glance.images[image_id] = {'id': image_id, 'disk_format': disk_format,
                               'size': len(data)}
    glance.data[image_id] = data
    return objects.ImageMeta.from_dict(glance.get(None, image_id))


def test_a_disk_0_flavor_takes_the_images_virtual_size(glance):
    raw = put_image(glance, b'r' * 3000, 'raw')
    vhd = put_image(glance, vhd_head(5 * MIB) + b'\0' * 1024, 'vhd')
    for meta, size in ((raw, 3000), (vhd, 5 * MIB)):
        image = disks.root_image(None, instance(root_gb=0), meta)
        assert (image.virtual_size, image.size) == (size, meta.size)
        assert disks.root_bytes(instance(root_gb=0), image) == size
        assert disks.root_bytes(instance(root_gb=1), image) == disks.GIB
    big = put_image(glance, vhd_head(disks.GIB + 1) + b'\0' * 1024, 'vhd')
    with pytest.raises(novaexc.FlavorDiskSmallerThanImage):
        disks.root_image(None, instance(root_gb=1), big)
    assert disks.root_image(None, instance(root_gb=2), big).virtual_size \
        == disks.GIB + 1
    fixed = put_image(glance, b'\0' * 4096, 'vhd')  # no footer copy first
    with pytest.raises(novaexc.ImageUnacceptable, match='footer copy'):
        disks.root_image(None, instance(root_gb=0), fixed)


def test_template_disks_go_on_the_local_sr_root_at_least_root_gb():
    text = ('<provision><disk device="0" size="10" sr="" bootable="true" '
            'type="system"/><disk device="1" size="5" sr="" '
            'bootable="false" type="user"/></provision>')
    root = ElementTree.fromstring(guest.provision_disks(text, 'sr-1', 20))
    assert [(d.get('device'), d.get('size'), d.get('sr'))
            for d in root] == [('0', '20', 'sr-1'), ('1', '5', 'sr-1')]
    kept = ElementTree.fromstring(guest.provision_disks(text, 'sr-1', 4))
    assert kept[0].get('size') == '10'


def test_a_port_goes_on_its_bridge_else_the_default_else_fails():
    networks = {'xenbr0': 'OpaqueRef:n0', 'xapi1': 'OpaqueRef:n1'}
    port = {'id': 'p1', 'network': {'bridge': 'xapi1'}}
    assert vifs.network_for(networks, port, 'xenbr0') == 'OpaqueRef:n1'
    ovs = {'id': 'p2', 'network': {'bridge': 'br-int'}}
    assert vifs.network_for(networks, ovs, 'xenbr0') == 'OpaqueRef:n0'
    with pytest.raises(vifs.NoNetworkForBridge,
                       match='br-int.*default_network_bridge'):
        vifs.network_for(networks, ovs, None)


@pytest.fixture
def client(sim):
    with session.XapiClient(sim.url, 'root', 'xenroot') as xapi_client:
        yield xapi_client


def _vdi(client, size):
    host = client.call('host.get_all')[0]
    sr, _ = disks.local_sr(client, host)
    return client.call('host.get_address', host), client.call(
        'VDI.create', {'SR': sr, 'virtual_size': str(size), 'type': 'user',
                       'name_label': 'import', 'other_config': {}})


def test_import_streams_chunks_into_the_vdi(client):
    address, vdi = _vdi(client, 8 * MIB)
    chunks = [b'a' * MIB, b'b' * MIB, b'c' * 10]

    def fill(body):
        for chunk in chunks:
            body.write(chunk)
    assert vdi_import.import_raw_vdi(client, address, vdi, 'raw',
                                     2 * MIB + 10, fill) == vdi


def test_import_refuses_a_short_body_and_keeps_xapis_errors(client):
    address, vdi = _vdi(client, 4 * MIB)
    with pytest.raises(vdi_import.ImportFailed, match='TOO_SHORT'):
        vdi_import.import_raw_vdi(client, address, vdi, 'raw', 100,
                                  lambda body: body.write(b'x' * 10))
    with pytest.raises(exception.XapiError) as info:
        vdi_import.import_raw_vdi(client, address, vdi, 'vhd', 512,
                                  lambda body: body.write(b'\0' * 512))
    assert info.value.details == ['VDI_IO_ERROR', 'Device I/O errors']
    with pytest.raises(vdi_import.ImportFailed, match='FORMAT'):
        vdi_import.import_raw_vdi(client, address, vdi, 'qcow2', 1, None)


def test_xapi_takes_an_image_into_a_vdi_of_its_virtual_size(client):
    """The sizing rule is the one XAPI's import holds the data to: a
    VDI of the virtual size takes the image, a VDI one SR block (4 MiB
    on LVM) smaller refuses it."""
    head = vhd_head(8 * MIB) + b'\0' * 1024
    for fmt, data in (('raw', b'r' * 8 * MIB), ('vhd', head)):
        size = len(data) if fmt == 'raw' else disks.vhd_size('i', head)
        assert size == 8 * MIB

        def fill(body, data=data):
            body.write(data)
        address, vdi = _vdi(client, size)
        vdi_import.import_raw_vdi(client, address, vdi, fmt, len(data),
                                  fill)
        address, vdi = _vdi(client, size - 4 * MIB)
        with pytest.raises(exception.XapiError) as info:
            vdi_import.import_raw_vdi(client, address, vdi, fmt, len(data),
                                      fill)
        assert info.value.details[0] == 'VDI_IO_ERROR'


def test_no_numa_topology_without_the_nodes():
    assert numa.host_topology(None) is None
    assert numa.cpu_mask(None, instance()) is None


def test_live_migration_refuses_a_claim_on_another_pgpu():
    profile = os.path.join(os.path.dirname(__file__), 'fixtures',
                           'pinned-pool-by-pin.yaml')
    with server.Simulator(profile) as simulator, session.XapiClient(
            simulator.url, 'root', 'xenroot') as client:
        dest = client.call('host.get_by_name_label', 'xs-nova-02')[0]
        xen = hostlib.XenHost(client, dest)
        group = next(p.GPU_group for ref, p in xen.inventory.pgpus.items()
                     if xen.inventory.address(ref) == '0000:86:00.0')
        vgpu = records.Vgpu(
            ref='OpaqueRef:v', uuid='v', VM='OpaqueRef:vm', GPU_group=group,
            type='OpaqueRef:t', device='0', currently_attached=True,
            resident_on='OpaqueRef:p', other_config={tags.DEVICE: 'src'})
        source = [objects.PciDevice(uuid='src', address='f000:86:00.0')]
        migration.check_claim(xen, {'v': vgpu}, source,
                              {'f000:86:00.0': 'f001:86:00.0'})
        with pytest.raises(novaexc.MigrationPreCheckError,
                           match='f000:87:00.0 on xs-nova-02.*pGPU at '
                                 '0000:86:00.0'):
            migration.check_claim(xen, {'v': vgpu}, source,
                                  {'f000:86:00.0': 'f000:87:00.0'})
        with pytest.raises(novaexc.MigrationPreCheckError,
                           match='no device'):
            migration.check_claim(xen, {'v': vgpu}, source, {})


def test_a_slot_of_a_type_its_alias_does_not_ask_for_is_refused():
    profile = os.path.join(os.path.dirname(__file__), 'fixtures',
                           'pinned-pool-by-pin.yaml')
    aliases = aliaslib.parse_aliases([
        '{"name": "m60-4q", "vgpu_type": "GRID M60-4Q"}',
        '{"name": "any8q", "vgpu_type": ["GRID M60-8Q", "GRID T4-8Q"]}'])
    four, eight, unknown = (
        '3f1a7a5e-0000-4000-8000-00000000000%d' % i for i in (2, 3, 4))
    requests = [objects.InstancePCIRequest(request_id=four,
                                           alias_name='m60-4q'),
                objects.InstancePCIRequest(request_id=eight,
                                           alias_name='any8q')]
    with server.Simulator(profile) as simulator, session.XapiClient(
            simulator.url, 'root', 'xenroot') as client:
        xen = hostlib.XenHost(client, client.call(
            'host.get_by_name_label', 'xs-nova-01')[0])

        def device(address, request_id):
            return objects.PciDevice(uuid=str(uuidlib.uuid4()),
                                     address=address, request_id=request_id)
        vgpus.check_types(xen, requests, [
            device('f000:86:00.0', four), device('f000:3b:00.0', eight),
            device('f001:87:00.0', eight), device('f001:86:00.0', unknown)],
            aliases)
        with pytest.raises(vgpus.WrongType, match=(
                'f000:3b:00.0, a GRID T4-8Q slot, for alias m60-4q, which '
                'asks for GRID M60-4Q')):
            vgpus.check_types(xen, requests, [
                device('f000:86:00.0', four), device('f000:3b:00.0', four)],
                aliases)


def test_evacuation_removes_the_vm_of_a_dead_member(pool_sim):
    with session.XapiClient(pool_sim.url, 'root', 'xenroot') as client:
        master = client.call('pool.get_master',
                             client.call('pool.get_all')[0])
        member = [h for h in client.call('host.get_all') if h != master][0]
        vm = client.call('VM.create', {
            'name_label': 'instance-1', 'HVM_boot_policy': 'BIOS order',
            'memory_static_max': str(2 ** 30), 'VCPUs_max': '1',
            'VCPUs_at_startup': '1', 'other_config': {}})
        sr, _ = disks.local_sr(client, member)
        evacuated = instance()
        evacuated.id = 1  # its name, instance-00000001
        disks.create(client, sr, vm, evacuated, '0', 1, True)
        client.call('VM.start_on', vm, member, False, False)
        with pool_sim.db.lock:  # the member stops answering
            pool_sim.db.set('host_metrics', pool_sim.db.get(
                'host', member)['metrics'], 'live', False)
        pool_sim.faults.fail_call('Async.VM.hard_shutdown', 1,
                                  'HOST_OFFLINE', member)
        [vdi] = disks.owned(client, vm, evacuated.uuid)
        guest.evict(client, vm, evacuated.uuid)
        assert vm not in client.call('VM.get_all')
        assert vdi not in client.call('VDI.get_all')


def test_vcpus_and_memory_are_xapis_not_the_numa_nodes():
    profile = {'hosts': [{'name': 'xs-big', 'memory_mib': 65536,
                          'numa_nodes': [{'cpus': '0-3',
                                          'memory_mib': 8192}],
                          'pgpus': []}]}
    with server.Simulator(profile) as simulator, session.XapiClient(
            simulator.url, 'root', 'xenroot') as client:
        xen = hostlib.XenHost(client, client.call('host.get_all')[0])
        assert xen.cpus_and_memory() == (4, 65536)
        resources = xen.resources()
        assert (resources['vcpus'], resources['memory_mb'],
                resources['local_gb']) == (4, 65536, 1024)
