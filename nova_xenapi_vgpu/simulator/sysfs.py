"""A fake dom0 for one simulated host: sysfs, nvidia-smi and xl.

dom0 is a PV guest, so its sysfs shows what a PV dom0 shows: one NUMA node
holding dom0's own vCPUs, and -1 as every device's node. The host's real
layout comes from ``xl info -n``, printed in xen's format from the profile.
"""

import os
import sys
import time
import xml.sax.saxutils

from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import world

_PRINT_FILE = '''#!%s
import sys
with open(%r, encoding="utf-8") as stream:
    sys.stdout.write(stream.read())
'''
DOM0_VCPUS = '0-7'


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write(text + '\n')


def build(root, host):
    """Write ``root``/sys, ``root``/bin/xl (and nvidia-smi) for ``host``."""
    sys_root = os.path.join(root, 'sys')
    base = os.path.join(sys_root, 'devices/system/node/node0')
    _write(os.path.join(base, 'cpulist'), DOM0_VCPUS)
    _write(os.path.join(base, 'meminfo'), 'Node 0 MemTotal:        4194304 kB')
    _device(sys_root, world.NIC_ADDRESS, '0x8086', '0x1572', '0x020000',
            '0x8086', '0x0001', 'i40e', 1)
    for group, pgpu in enumerate(host['pgpus'], start=10):
        model = hardware.MODELS[pgpu['model']]
        _device(sys_root, pgpu['address'], '0x' + model.vendor_id,
                '0x' + model.device_id, '0x%s00' % model.class_id,
                '0x' + model.subsystem_vendor_id,
                '0x' + model.subsystem_device_id, model.driver, group,
                model.sriov_totalvfs)
    _print_file_command(root, 'xl', xl_info(host))
    if any(p['model'].startswith('tesla') for p in host['pgpus']):
        _print_file_command(root, 'nvidia-smi')
    return sys_root


def _print_file_command(root, name, text=None):
    """``root``/bin/``name``: prints ``root``/``name``.out."""
    out = os.path.join(root, name + '.out')
    if text is not None:
        _write(out, text)
    path = os.path.join(root, 'bin', name)
    _write(path, _PRINT_FILE % (sys.executable, out))
    os.chmod(path, 0o755)


# A host without numa_nodes in its profile: one node of 16 CPUs, 64 GiB.
DEFAULT_NUMA_NODES = ({'cpus': '0-15', 'memory_mib': 65536},)


def expand_cpulist(text):
    """'0-2,5' -> [0, 1, 2, 5]."""
    cpus = []
    for part in text.split(','):
        first, _, last = part.partition('-')
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def xl_info(host):
    """What ``xl info -n`` prints on ``host``: its topology tables.

    The format is xen's tools/xl/xl_info.c (output_topologyinfo and
    output_numainfo), among a few of its other lines.
    """
    nodes = host.get('numa_nodes', DEFAULT_NUMA_NODES)
    lines = ['host                   : %s' % host['name'],
             'nr_cpus                : %d' % sum(
                 len(expand_cpulist(n['cpus'])) for n in nodes),
             'nr_nodes               : %d' % len(nodes),
             'cpu_topology           :', 'cpu:    core    socket     node']
    for index, node in enumerate(nodes):
        for core, cpu in enumerate(expand_cpulist(node['cpus'])):
            lines.append('%3d:    %4d     %4d     %4d' % (
                cpu, core, node.get('socket', index), index))
    lines += ['device topology        :', 'device           node']
    devices = [(p['address'], p['numa_node']) for p in host['pgpus']
               if p.get('numa_node') is not None]
    if host.get('xl_device_topology', True) and devices:
        lines += ['%s      %d' % device for device in sorted(devices)]
    else:
        lines.append('No device topology data available')
    lines += ['numa_info              :',
              'node:    memsize    memfree    distances']
    for index, node in enumerate(nodes):
        distances = ','.join('10' if i == index else '21'
                             for i in range(len(nodes)))
        lines.append('%4d:    %6d     %6d      %s' % (
            index, node['memory_mib'], node['memory_mib'] // 2, distances))
    lines.append('xen_major              : 4')
    return '\n'.join(lines)


def _device(sys_root, address, vendor, device, cls, sub_vendor, sub_device,
            driver, iommu_group, totalvfs=0):
    """A PCI device as a PV dom0 sees it: no NUMA node, dom0's CPUs."""
    base = os.path.join(sys_root, 'bus/pci/devices', address)
    for name, value in (('vendor', vendor), ('device', device),
                        ('class', cls), ('subsystem_vendor', sub_vendor),
                        ('subsystem_device', sub_device),
                        ('numa_node', '-1'), ('local_cpulist', DOM0_VCPUS)):
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

    Each vGPU is a dict with id, vm_id (the domain id, as NVIDIA's driver
    may name a Xen guest), vm_name, type_name, fb_mib.
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
                  '        <vm_id>%s</vm_id>' % vgpu['vm_id'],
                  '        <vm_name>%s</vm_name>' % esc(vgpu['vm_name']),
                  '        <vgpu_name>%s</vgpu_name>' % esc(
                      vgpu['type_name']),
                  '        <fb_memory_usage><total>%d MiB</total>'
                  '</fb_memory_usage>' % vgpu['fb_mib'],
                  '        <utilization><gpu_util>7 %</gpu_util>'
                  '</utilization>',
                  '      </vgpu_instance>']
    return parts + ['    </vgpus>', '  </gpu>']
