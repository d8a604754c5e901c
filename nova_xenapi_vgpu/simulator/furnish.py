"""What every simulated host has besides GPUs: memory and CPU records,
dom0, a local SR, a NIC on the pool's network, and the templates.

The shapes follow what xapi creates at start-up (xapi_host.ml,
create_host_cpu and the host_metrics; dbsync_slave.ml, the local SR's
PBD; xapi_network.ml, a bridge per PIF) and what XenServer ships.
"""

from nova_xenapi_vgpu.simulator import sysfs
from nova_xenapi_vgpu.simulator import vm as vmlib

MIB = 1024 ** 2
GIB = 1024 ** 3
DOM0_MIB = 4096
# The host's own use (Xen, its frame tables), not counted for guests.
HOST_OVERHEAD_FRACTION = 128
LOCAL_SR_GIB = 1024
_SR_NAMES = {'lvm': ('Local storage', 'LVHD'), 'ext': ('Local storage',
                                                       'EXT')}
CPU = dict(vendor='GenuineIntel', speed=2600, modelname='Intel(R) Xeon(R) '
           'Gold 6240R CPU @ 2.40GHz', family=6, model=85, stepping='7')


def host_memory_mib(host):
    """The host's memory: ``memory_mib`` or the NUMA nodes' sum."""
    nodes = host.get('numa_nodes', sysfs.DEFAULT_NUMA_NODES)
    return host.get('memory_mib', sum(n['memory_mib'] for n in nodes))


def host_cpus(host):
    """The host's CPU numbers and sockets, from its NUMA nodes."""
    nodes = host.get('numa_nodes', sysfs.DEFAULT_NUMA_NODES)
    cpus = [c for n in nodes for c in sysfs.expand_cpulist(n['cpus'])]
    sockets = {n.get('socket', i) for i, n in enumerate(nodes)}
    return sorted(cpus), len(sockets)


def host_parts(db, ref, host, index):
    """Metrics, CPUs, dom0 and the NIC of one host."""
    total = host_memory_mib(host) * MIB
    db.set('host', ref, 'metrics', db.create(
        'host_metrics', memory_total=total))
    db.set('host', ref, 'memory_overhead', total // HOST_OVERHEAD_FRACTION)
    cpus, sockets = host_cpus(host)
    for number in cpus:
        db.create('host_CPU', host=ref, number=number, **CPU)
    db.set('host', ref, 'cpu_info', dict(
        {k: str(v) for k, v in CPU.items()}, cpu_count=str(len(cpus)),
        socket_count=str(sockets), threads_per_core='1'))
    _dom0(db, ref, host)
    db.create('PIF', host=ref, network=db.pool_network, device='eth0',
              MAC='00:16:3e:%02x:%02x:01' % (index // 256, index % 256),
              management=True, ip_configuration_mode='DHCP')


def _dom0(db, ref, host):
    dom0 = db.create('VM', name_label='Control domain on host: %s' %
                     host['name'], is_control_domain=True,
                     power_state='Running', resident_on=ref, domid=0,
                     memory_static_max=DOM0_MIB * MIB,
                     memory_dynamic_max=DOM0_MIB * MIB,
                     memory_dynamic_min=DOM0_MIB * MIB,
                     memory_static_min=DOM0_MIB * MIB,
                     VCPUs_max=min(16, len(host_cpus(host)[0])))
    vmlib.finish_create(db, dom0)
    record = db.get('VM', dom0)
    db.set('VM', dom0, 'VCPUs_at_startup', record['VCPUs_max'])
    db.set('VM_metrics', record['metrics'], 'memory_actual',
           DOM0_MIB * MIB)


def local_sr(db, ref, host):
    """The host's local SR and its PBD; returns the SR."""
    spec = host.get('local_sr', {})
    sr_type = spec.get('type', 'lvm')
    label, kind = _SR_NAMES[sr_type]
    sr = db.create('SR', name_label=label, type=sr_type,
                   name_description='%s on %s' % (kind, host['name']),
                   content_type='user', shared=False,
                   physical_size=spec.get('size_gib', LOCAL_SR_GIB) * GIB,
                   sm_config={'devserial': 'scsi-local-%s' % host['name']},
                   other_config={'i18n-key': 'local-storage'})
    db.create('PBD', host=ref, SR=sr, currently_attached=True,
              device_config={'device': '/dev/sda3'})
    return sr


def pool_network(db):
    """The pool-wide network of every host's eth0, on xenbr0."""
    return db.create(
        'network', name_label='Pool-wide network associated with eth0',
        bridge='xenbr0', other_config={'automatic': 'true'})


# The templates every host ships: name -> (HVM, VCPUs, memory MiB, disk
# GiB or None). "Other install media" has no disk.
TEMPLATES = {
    'Other install media': (True, 1, 512, None),
    'Debian Bookworm 12': (True, 1, 1024, 10),
}


def templates(db):
    """The default templates (is_a_template, other_config:default_template;
    a disk in other_config:disks with ``sr=""``, as XenServer ships)."""
    for name, (hvm, vcpus, mib, disk_gib) in TEMPLATES.items():
        other = {vmlib.DEFAULT_TEMPLATE_KEY: 'true',
                 'install-methods': 'cdrom'}
        if disk_gib:
            other['disks'] = (
                '<provision><disk device="0" size="%d" sr="" '
                'bootable="true" type="system"/></provision>'
                % (disk_gib * GIB))
        ref = vmlib.create(db, {
            'name_label': name, 'is_a_template': True,
            'name_description': 'Template shipped with the simulator',
            'HVM_boot_policy': 'BIOS order' if hvm else '',
            'HVM_boot_params': {'order': 'dc'} if hvm else {},
            'VCPUs_max': vcpus, 'VCPUs_at_startup': vcpus,
            'memory_static_min': mib * MIB, 'memory_static_max': mib * MIB,
            'memory_dynamic_min': mib * MIB,
            'memory_dynamic_max': mib * MIB,
            'platform': {'viridian': 'true', 'device-model': 'qemu-upstream'
                         '-compat'}, 'other_config': other})
        db.set('VM', ref, 'is_default_template', True)
