"""A fake sysfs tree (and nvidia-smi) for one simulated host."""

import os
import sys
import time
import xml.sax.saxutils

from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import world

_NVIDIA_SMI = '''#!%s
import sys
with open(%r, encoding="utf-8") as stream:
    sys.stdout.write(stream.read())
'''


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write(text + '\n')


def _cpulist(nodes, node):
    return nodes[node]['cpus'] if node is not None else ''


def build(root, host):
    """Write ``root``/sys for ``host`` (a profile entry); idempotent."""
    sys_root = os.path.join(root, 'sys')
    nodes = host.get('numa_nodes', [{'cpus': '0-15', 'memory_mib': 65536}])
    for index, node in enumerate(nodes):
        base = os.path.join(sys_root, 'devices/system/node/node%d' % index)
        _write(os.path.join(base, 'cpulist'), node['cpus'])
        _write(os.path.join(base, 'meminfo'),
               'Node %d MemTotal:       %d kB' % (index,
                                                  node['memory_mib'] * 1024))
    _device(sys_root, world.NIC_ADDRESS, '0x8086', '0x1572', '0x020000',
            '0x8086', '0x0001', 'i40e', 0, _cpulist(nodes, 0), 1)
    for group, pgpu in enumerate(host['pgpus'], start=10):
        model = hardware.MODELS[pgpu['model']]
        node = pgpu.get('numa_node')
        _device(sys_root, pgpu['address'], '0x' + model.vendor_id,
                '0x' + model.device_id, '0x%s00' % model.class_id,
                '0x' + model.subsystem_vendor_id,
                '0x' + model.subsystem_device_id, model.driver,
                -1 if node is None else node, _cpulist(nodes, node), group,
                model.sriov_totalvfs)
    if any(p['model'].startswith('tesla') for p in host['pgpus']):
        path = os.path.join(root, 'bin', 'nvidia-smi')
        xml_path = os.path.join(root, 'nvidia-smi.xml')
        _write(path, _NVIDIA_SMI % (sys.executable, xml_path))
        os.chmod(path, 0o755)
    return sys_root


def _device(sys_root, address, vendor, device, cls, sub_vendor, sub_device,
            driver, numa_node, cpulist, iommu_group, totalvfs=0):
    base = os.path.join(sys_root, 'bus/pci/devices', address)
    for name, value in (('vendor', vendor), ('device', device),
                        ('class', cls), ('subsystem_vendor', sub_vendor),
                        ('subsystem_device', sub_device),
                        ('numa_node', str(numa_node)),
                        ('local_cpulist', cpulist)):
        _write(os.path.join(base, name), value)
    if totalvfs:
        _write(os.path.join(base, 'sriov_totalvfs'), str(totalvfs))
        _write(os.path.join(base, 'sriov_numvfs'), '0')
    os.makedirs(os.path.join(sys_root, 'bus/pci/drivers', driver),
                exist_ok=True)
    os.makedirs(os.path.join(sys_root, 'kernel/iommu_groups',
                             str(iommu_group)), exist_ok=True)
    for link, target in (('driver', '../../drivers/' + driver),
                         ('iommu_group', '../../../../kernel/iommu_groups/'
                          + str(iommu_group))):
        path = os.path.join(base, link)
        if not os.path.islink(path):
            os.symlink(target, path)


def nvidia_smi_xml(gpus):
    """``nvidia-smi -q -x`` for ``gpus``: (address, product, vgpus) each.

    Each vGPU is a dict with id, vm_uuid, vm_name, type_name, fb_mib.
    """
    parts = ['<?xml version="1.0" ?>',
             '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v11.dtd">',
             '<nvidia_smi_log>',
             '  <timestamp>%s</timestamp>' % time.ctime(),
             '  <driver_version>430.99</driver_version>',
             '  <attached_gpus>%d</attached_gpus>' % len(gpus)]
    for address, product, vgpus in gpus:
        parts += _gpu_xml(address, product, vgpus)
    parts.append('</nvidia_smi_log>')
    return '\n'.join(parts) + '\n'


def _gpu_xml(address, product, vgpus):
    esc = xml.sax.saxutils.escape
    bus_id = '0000' + address.upper()
    parts = ['  <gpu id="%s">' % bus_id,
             '    <product_name>%s</product_name>' % esc(product),
             '    <pci><pci_bus_id>%s</pci_bus_id></pci>' % bus_id,
             '    <utilization><gpu_util>%d %%</gpu_util>'
             '<memory_util>%d %%</memory_util></utilization>' % (
                 7 * len(vgpus), 3 * len(vgpus)),
             '    <vgpus>']
    for vgpu in vgpus:
        parts += ['      <vgpu_instance id="%s">' % vgpu['id'],
                  '        <vm_id>%s</vm_id>' % vgpu['vm_uuid'],
                  '        <vm_name>%s</vm_name>' % esc(vgpu['vm_name']),
                  '        <vgpu_name>%s</vgpu_name>' % esc(
                      vgpu['type_name']),
                  '        <fb_memory_usage><total>%d MiB</total>'
                  '</fb_memory_usage>' % vgpu['fb_mib'],
                  '        <utilization><gpu_util>7 %</gpu_util>'
                  '</utilization>',
                  '      </vgpu_instance>']
    return parts + ['    </vgpus>', '  </gpu>']
