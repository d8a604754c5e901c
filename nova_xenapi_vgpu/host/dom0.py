"""Client of the ``xenapi_vgpu`` dom0 plugin: NUMA, PCI and NVIDIA facts."""

import dataclasses
import json

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import plugin_files

LOG = logging.getLogger(__name__)

PLUGIN = plugin_files.PLUGIN_NAME
API_MAJOR = 1


@dataclasses.dataclass(frozen=True)
class DeviceTopology:
    """Where one pGPU sits: NUMA node, local CPUs, PCI identity."""

    address: str
    numa_node: int | None
    local_cpulist: str | None
    vendor_id: str | None
    device_id: str | None
    class_id: str | None
    driver: str | None
    iommu_group: int | None
    sriov_totalvfs: int | None = None
    sriov_numvfs: int | None = None
    numa_source: str | None = None


@dataclasses.dataclass(frozen=True)
class NumaNode:
    """One NUMA node of the host."""

    id: int
    cpulist: str
    memory_kib: int | None
    sockets: tuple = ()


@dataclasses.dataclass(frozen=True)
class Topology:
    """The host's NUMA nodes and its pGPUs' places."""

    devices: dict
    numa_nodes: tuple
    numa_source: str | None = None

    def numa_node_of(self, address):
        """The NUMA node of the pGPU at ``address``, or None."""
        device = self.devices.get(address)
        return device.numa_node if device else None


class Dom0Plugin:
    """Calls the plugin on one host; caches its topology answers."""

    def __init__(self, client, host_ref):
        self.client = client
        self.host_ref = host_ref
        self._version = None
        self._missing = False
        self._topology = {}
        self._label = None

    @property
    def host_label(self):
        """The host's name (its ref if XAPI will not say), for messages."""
        if self._label is None:
            try:
                self._label = self.client.call('host.get_name_label',
                                               self.host_ref)
            except (exception.XapiError, exception.XapiConnectionError):
                self._label = self.host_ref
        return self._label

    def topology(self, addresses):
        """Topology of the pGPUs at ``addresses``; None without plugin.

        :raises: PluginError for an incompatible plugin or bad answer.
        """
        key = tuple(sorted(addresses))
        if key not in self._topology:
            if not key:
                return Topology({}, ())
            data = self._call('get_gpu_topology',
                              {'addresses': ','.join(key)})
            if data is None:
                return None
            try:
                self._topology[key] = _decode_topology(data)
            except (TypeError, KeyError, AttributeError, ValueError) as exc:
                raise self._malformed('get_gpu_topology', data,
                                      exc) from None
        return self._topology[key]

    def version(self):
        """The plugin's ``version`` answer; None when it is missing.

        :raises: PluginError for an incompatible plugin.
        """
        return self._version if self._checked() else None

    def vgpu_usage(self):
        """NVIDIA vGPU usage per pGPU address; None without plugin.

        Where NVIDIA names a VM by its domain id, ``vm_uuid`` is filled in
        from the VMs running on this host (one more XAPI call).
        """
        usage = self._call('get_nvidia_vgpu_usage', {})
        try:
            vgpus = _vgpu_entries(usage or {})
        except (TypeError, AttributeError) as exc:
            raise self._malformed('get_nvidia_vgpu_usage', usage,
                                  exc) from None
        if any(v.get('domid') is not None for v in vgpus):
            by_domid = self._vm_uuids_by_domid()
            for vgpu in vgpus:
                if vgpu.get('domid') is not None:
                    vgpu['vm_uuid'] = by_domid.get(str(vgpu['domid']))
        return usage

    def _vm_uuids_by_domid(self):
        records = self.client.call(
            'VM.get_all_records_where',
            'field "resident_on" = "%s"' % self.host_ref)
        return {str(r['domid']): r['uuid'] for r in records.values()}

    def _call(self, fn, args):
        return self._invoke(fn, args) if self._checked() else None

    def _checked(self):
        """Ask ``version`` once; False when the plugin is missing."""
        if self._version is None and not self._missing:
            answer = self._invoke('version', {})
            if answer is None:
                return False
            found = str(answer.get('api_version', ''))
            if found.split('.')[0] != str(API_MAJOR):
                raise exception.PluginError(
                    plugin=PLUGIN, host=self.host_label,
                    reason='API version %s, this client needs %d.x: install '
                           'the plugin shipped with this package (%s)' % (
                               found or 'unknown', API_MAJOR,
                               _shipped_path()))
            self._version = answer
        return not self._missing

    def _invoke(self, fn, args):
        """One plugin call, decoded; None (and one warning) when missing."""
        try:
            return self._decode(self.client.call(
                'host.call_plugin', self.host_ref, PLUGIN, fn, args))
        except exception.XapiError as exc:
            if exc.code != 'XENAPI_MISSING_PLUGIN':
                raise
        self._missing = True
        LOG.warning('dom0 plugin %s is not installed on host %s: NUMA '
                    'placement of vGPUs is unknown. Fix: copy %s to '
                    '/etc/xapi.d/plugins/%s (mode 0755) on the host',
                    PLUGIN, self.host_label, _shipped_path(), PLUGIN)
        return None

    def _malformed(self, fn, data, exc):
        return exception.PluginError(
            plugin=PLUGIN, host=self.host_label,
            reason='%s answered an unexpected shape (%s: %s): %.80r' % (
                fn, type(exc).__name__, exc, data))

    def _decode(self, text):
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            raise exception.PluginError(
                plugin=PLUGIN, host=self.host_label,
                reason='answer is not JSON: %.80r' % (text,)) from None
        if not isinstance(data, dict):
            raise exception.PluginError(plugin=PLUGIN, host=self.host_label,
                                        reason='answer is not an object')
        return data


def _vgpu_entries(usage):
    """The vGPU entries of a usage answer.

    :raises: TypeError, AttributeError for a malformed one.
    """
    entries = []
    for gpu in usage.get('gpus', {}).values():
        for vgpu in gpu.get('vgpus', ()):
            if not isinstance(vgpu, dict):
                raise TypeError('a vGPU entry is a %s' % type(
                    vgpu).__name__)
            entries.append(vgpu)
    return entries


def _decode_topology(data):
    fields = {f.name for f in dataclasses.fields(DeviceTopology)}
    devices = {
        address: DeviceTopology(**{k: v for k, v in info.items()
                                   if k in fields})
        for address, info in data.get('devices', {}).items()}
    nodes = tuple(NumaNode(n['id'], n.get('cpulist', ''),
                           n.get('memory_kib'), tuple(n.get('sockets', ())))
                  for n in data.get('numa_nodes', ()))
    return Topology(devices, nodes, data.get('numa_source'))


def _shipped_path():
    try:
        return plugin_files.plugin_path()
    except FileNotFoundError:
        return 'dom0_plugins/%s' % PLUGIN
