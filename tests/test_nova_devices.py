"""Slots load into Nova 34's own PciDevice, once the seed's changes are in.

The seed asks Nova to key vGPU devices by uuid with a nullable
``address``, and for a vGPU ``dev_type``. This test makes exactly those
changes to Nova's real PciDevice object (the address may be null, the
driver's uuid is kept instead of a fresh one, ``vgpu`` is a dev_type) and
loads every slot the pools report.
"""

import json
import os
import subprocess
import sys
import uuid
import warnings

from nova import objects
from nova.objects import base
from nova.objects import fields
from nova.objects import pci_device

from nova_xenapi_vgpu.pci import stats as statslib
from tests.pcihelpers import HostBuilder

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()


@base.NovaObjectRegistry.register_if(False)
class SeedPciDevice(pci_device.PciDevice):
    """Nova's PciDevice with the seed's two changes."""

    fields = dict(pci_device.PciDevice.fields,
                  address=fields.StringField(nullable=True),
                  dev_type=fields.EnumField(
                      valid_values=fields.PciDeviceType.ALL + ('vgpu',)))

    @classmethod
    def create(cls, context, dev_dict):
        uuid = dev_dict.get('uuid')
        device = super().create(context, dev_dict)
        device.uuid = uuid or device.uuid
        return device


def reported_devices():
    host = HostBuilder()
    m60 = host.group('m60')
    host.pgpu(m60, '0000:86:00.0', numa=0)
    t4 = host.group('t4', 'breadth_first')
    host.pgpu(t4, '0000:3b:00.0', numa=None, model='t4')
    return [s.as_nova_device() for s in statslib.VgpuStats(
        host.inventory()).devices()]


def test_every_slot_loads_into_nova_with_the_seed_changes():
    devices = reported_devices()
    for device in devices:
        loaded = SeedPciDevice.create(None, dict(device))
        assert loaded.address is None
        assert loaded.uuid == device['uuid']
        assert (loaded.vendor_id, loaded.product_id) == (
            device['vendor_id'], device['product_id'])
        assert loaded.dev_type == 'vgpu'
        assert loaded.numa_node == device['numa_node']
        assert loaded.parent_addr == device['parent_addr']
        assert loaded.extra_info['vgpu_type'] == device['vgpu_type']
        assert loaded.status == fields.PciDeviceStatus.AVAILABLE
    assert len({d['dev_type'] for d in devices}) == 1
    assert all(len(d['dev_type']) <= 8 and len(d['vendor_id']) == 4
               for d in devices)


def test_stock_nova_refuses_them():
    device = reported_devices()[0]
    try:
        pci_device.PciDevice.create(None, dict(device))
    except ValueError as exc:
        assert 'address' in str(exc)
    else:
        raise AssertionError('stock Nova took a device without address')


def test_slot_uuids_are_the_same_in_another_process():
    # Nova keys the devices by uuid: a compute service restarting must
    # report the same ones, whatever its hash seed.
    script = ('import json; from tests.test_nova_devices import '
              'reported_devices; print(json.dumps([d["uuid"] for d in '
              'reported_devices()]))')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, '-c', script], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONHASHSEED='12345',
                                   PYTHONPATH=root), check=False)
    assert proc.returncode == 0, proc.stderr
    here = [d['uuid'] for d in reported_devices()]
    assert json.loads(proc.stdout.splitlines()[-1]) == here
    assert len(set(here)) == len(here)
    assert all(str(uuid.UUID(u)) == u for u in here)
