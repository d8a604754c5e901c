"""The XenServer host a compute service drives, as Nova's compute node.

Each pool member is its own compute node, named by its ``name_label``;
its node uuid is the XenServer host's uuid. Which member: ``[xenserver]
host_uuid``, else the member whose ``name_label`` is Nova's ``[DEFAULT]
host``, else the host the connection URL names.
"""

import json

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.host import dom0 as dom0lib
from nova_xenapi_vgpu.host import identity
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.vgpu_types import synthetic
from nova_xenapi_vgpu.virt import disks
from nova_xenapi_vgpu.virt import numa

LOG = logging.getLogger(__name__)
MIB = 1024 * 1024


def resolve(client, host_uuid, nova_host):
    """The ref of the host to drive.

    :raises: HostNotFound, XapiError, XapiConnectionError.
    """
    if host_uuid:
        return identity.resolve_host(client, host_uuid)
    named = client.call('host.get_by_name_label', nova_host or '')
    if len(named) == 1:
        return named[0]
    return identity.resolve_host(client)


class XenHost:
    """One pool member: its inventory, resources and Nova devices."""

    def __init__(self, client, host_ref, enabled=(), placement=False):
        self.client = client
        self.host_ref = host_ref
        self.enabled = tuple(enabled)
        self.placement = placement  # [pci] report_in_placement
        self.dom0 = dom0lib.Dom0Plugin(client, host_ref)
        self.inventory = reader.read_inventory(client, host_ref, self.dom0)
        self._told = set()

    @property
    def nodename(self):
        """The compute node's hypervisor_hostname: the name label."""
        return self.inventory.host_name

    @property
    def uuid(self):
        """The compute node's uuid: the XenServer host's."""
        return self.inventory.host_uuid

    def refresh(self):
        """The inventory after what changed (one event.from).

        :raises: XapiError, XapiConnectionError, PluginError.
        """
        try:
            self.inventory = reader.refresh(self.client, self.inventory,
                                            self.dom0)
        except exception.XapiError as exc:
            if exc.code != 'EVENT_FROM_TOKEN_INVALID':
                raise
            self.inventory = reader.read_inventory(
                self.client, self.host_ref, self.dom0)
        return self.inventory

    def nova_devices(self):
        """pci_passthrough_devices' list; skipped pGPUs logged once each."""
        devices, skipped = synthetic.nova_devices(
            self.inventory, self.enabled, self.placement)
        for item in skipped:
            if item not in self._told:
                self._told.add(item)
                LOG.warning('pGPU %s of %s is not reported to Nova: %s',
                            item.address, self.nodename, item.reason)
        return devices

    def cpus_and_memory(self):
        """``(VCPUs, memory MB)`` of the host as XAPI counts them: its
        ``host_CPUs`` and its ``host_metrics.memory_total`` (dom0's share
        is Nova's ``reserved_host_memory_mb``); no dom0 plugin needed.

        :raises: XapiError, XapiConnectionError.
        """
        cpus = len(self.client.call('host.get_host_CPUs', self.host_ref))
        metrics = self.client.call('host.get_metrics', self.host_ref)
        memory = int(self.client.call('host_metrics.get_memory_total',
                                      metrics)) // MIB
        return cpus, memory

    def resources(self):
        """get_available_resource's answer for this node (disk: the
        local SR's size and use).

        :raises: XapiError, XapiConnectionError, PluginError.
        """
        self.refresh()
        cpus, memory = self.cpus_and_memory()
        topology = numa.host_topology(self.inventory.topology)
        disk_gb, disk_used = disks.usage_gb(
            disks.local_sr(self.client, self.host_ref)[1])
        return {
            'vcpus': cpus, 'memory_mb': memory, 'local_gb': disk_gb,
            'vcpus_used': 0, 'memory_mb_used': 0,
            'local_gb_used': disk_used,
            'disk_available_least': disk_gb - disk_used,
            'hypervisor_type': 'xen', 'hypervisor_version': 0,
            'hypervisor_hostname': self.nodename, 'uuid': self.uuid,
            'cpu_info': json.dumps({'arch': 'x86_64'}),
            'supported_instances': [('x86_64', 'xen', 'hvm')],
            'numa_topology': topology._to_json() if topology else None,
            'pci_passthrough_devices': json.dumps(self.nova_devices()),
        }
