"""``host.call_plugin``: run the real dom0 plugin files as xapi does."""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import xml.parsers.expat
import xmlrpc.client

from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import sysfs
from nova_xenapi_vgpu.simulator.errors import XapiFailure

STUB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'dom0_stub')
TIMEOUT = 60


class PluginRunner:
    """Runs plugins from ``plugin_dir`` against per-host fake sysfs trees."""

    def __init__(self, plugin_dir, db, profile):
        self.plugin_dir = plugin_dir
        self.db = db
        by_name = {host['name']: host for host in profile['hosts']}
        self.hosts = {ref: by_name[record['name_label']]
                      for ref, record in db.objects['host'].items()}
        self.workdir = tempfile.mkdtemp(prefix='xapi-sim-dom0-')
        self._lock = threading.Lock()

    def close(self):
        """Remove the fake host trees."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def call(self, session, host, plugin, fn, args):
        """The plugin's string result, or its failure as XapiFailure."""
        names = os.listdir(self.plugin_dir) if os.path.isdir(
            self.plugin_dir) else []
        if plugin not in names:
            raise XapiFailure('XENAPI_MISSING_PLUGIN', plugin)
        root = self._host_root(host)
        call = xmlrpc.client.dumps((session, dict(args)), fn)
        env = {'PYTHONPATH': STUB_DIR, 'PATH': os.path.join(root, 'bin'),
               'XENAPI_VGPU_SYSFS_ROOT': os.path.join(root, 'sys'),
               'XENAPI_VGPU_XL': os.path.join(root, 'bin', 'xl'),
               'LANG': 'C.UTF-8'}
        try:
            proc = subprocess.run(
                [sys.executable, os.path.join(self.plugin_dir, plugin),
                 call], capture_output=True, text=True, env=env,
                timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise XapiFailure('XENAPI_PLUGIN_FAILURE', 'task stopped',
                              exc.stdout or '', exc.stderr or '') from None
        if proc.returncode != 0:
            raise XapiFailure('XENAPI_PLUGIN_FAILURE', 'non-zero exit',
                              proc.stdout, proc.stderr)
        return _parse_reply(proc.stdout)

    def _host_root(self, host):
        root = os.path.join(self.workdir, host.split(':')[-1])
        with self._lock:
            if not os.path.isdir(root):
                sysfs.build(root, self.hosts[host])
            with self.db.lock:
                gpus = _nvidia_gpus(self.db, host)
            with open(os.path.join(root, 'nvidia-smi.out'), 'w',
                      encoding='utf-8') as stream:
                stream.write(sysfs.nvidia_smi_xml(gpus))
        return root


def _parse_reply(output):
    try:
        (reply,), _ = xmlrpc.client.loads(output)
    except (xml.parsers.expat.ExpatError, ValueError) as exc:
        raise XapiFailure('XENAPI_PLUGIN_FAILURE',
                          'failed to parse plugin output', output,
                          str(exc)) from None
    except xmlrpc.client.Fault as fault:
        raise XapiFailure('XENAPI_PLUGIN_FAILURE', 'fault',
                          fault.faultCode, fault.faultString) from None
    if reply.get('Status') == 'Success' and isinstance(
            reply.get('Value'), str):
        return reply['Value']
    if reply.get('Status') == 'Failure':
        raise XapiFailure(*reply['ErrorDescription'])
    raise XapiFailure('XENAPI_PLUGIN_FAILURE', 'unexpected XMLRPC result',
                      output)


def _nvidia_gpus(db, host):
    gpus = []
    for pgpu in db.field('host', host, 'PGPUs'):
        pci = db.get('PCI', db.get('PGPU', pgpu)['PCI'])
        model = hardware.model_of(pci['vendor_id'], pci['device_id'])
        if pci['vendor_id'] != '10de':
            continue
        vgpus = []
        for vgpu in db.field('PGPU', pgpu, 'resident_VGPUs'):
            record = db.get('VGPU', vgpu)
            vm = db.get('VM', record['VM'])
            vgpu_type = db.get('VGPU_type', record['type'])
            vgpus.append({
                'id': str(int(record['uuid'][:8], 16)),
                'vm_id': str(vm['domid']), 'vm_name': vm['name_label'],
                'type_name': vgpu_type['model_name'],
                'fb_mib': vgpu_type['framebuffer_size'] // hardware.MIB})
        gpus.append((pci['pci_id'], model.product_name, vgpus))
    return gpus
