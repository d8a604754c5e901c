"""The dom0 plugin, run the way xapi runs it: argv[1] is a methodCall."""

import ast
import json
import os
import shutil
import subprocess
import sys
import xmlrpc.client

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from nova_xenapi_vgpu import plugin_files
from nova_xenapi_vgpu.simulator import plugins
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import sysfs
from tests.conftest import failure
from tests.conftest import login

PLUGIN = plugin_files.plugin_path()
FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
SMI_XML = os.path.join(FIXTURES, 'nvidia-smi-m60.xml')


def fake_host(root, host=None):
    """A fake sysfs tree for the mixed profile's host, plus one pGPU
    whose NUMA node the firmware did not report."""
    host = host or profiles.load('mixed')['hosts'][0]
    host['pgpus'].append({'address': '0000:af:00.0', 'model': 'tesla-m60',
                          'numa_node': None})
    sysfs.build(str(root), host)
    return str(root)


def smi_script(root, body):
    """Replace the fake nvidia-smi with a Python script of ``body``."""
    path = os.path.join(root, 'bin', 'nvidia-smi')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write('#!%s\nimport sys\n%s\n' % (sys.executable, body))
    os.chmod(path, 0o755)


def call(root, fn, args=None):
    """Run the plugin; (status, value or error list)."""
    message = xmlrpc.client.dumps(('OpaqueRef:session', args or {}), fn)
    env = {'PYTHONPATH': plugins.STUB_DIR, 'PATH': os.path.join(root, 'bin'),
           'XENAPI_VGPU_SYSFS_ROOT': os.path.join(root, 'sys'),
           'XENAPI_VGPU_XL': os.path.join(root, 'bin', 'xl')}
    proc = subprocess.run([sys.executable, PLUGIN, message],
                          capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ''
    (reply,), _ = xmlrpc.client.loads(proc.stdout)
    if reply['Status'] == 'Success':
        return 'ok', json.loads(reply['Value'])
    return 'fail', reply['ErrorDescription']


@pytest.fixture
def root(tmp_path):
    return fake_host(tmp_path)


def test_version(root):
    status, value = call(root, 'version')
    assert status == 'ok'
    assert value['api_version'] == '1.1'
    assert value['functions'] == ['get_gpu_topology',
                                  'get_nvidia_vgpu_usage', 'version']


def test_topology_of_pgpus(root):
    status, value = call(root, 'get_gpu_topology',
                         {'addresses': '0000:87:00.0,0000:3B:00.0'})
    assert status == 'ok'
    m60 = value['devices']['0000:87:00.0']
    assert (m60['numa_node'], m60['numa_source']) == (1, 'xen')
    assert m60['local_cpulist'] == '16-31'
    assert (m60['vendor_id'], m60['device_id']) == ('10de', '13f2')
    assert (m60['subsystem_vendor_id'], m60['subsystem_device_id']) == (
        '10de', '113a')
    assert m60['class_id'] == '030000'
    assert m60['driver'] == 'nvidia'
    assert isinstance(m60['iommu_group'], int)
    assert 'sriov_totalvfs' not in m60
    t4 = value['devices']['0000:3b:00.0']
    assert (t4['sriov_totalvfs'], t4['sriov_numvfs']) == (16, 0)
    assert t4['class_id'] == '030200'
    assert value['numa_source'] == 'xen'
    assert value['numa_nodes'] == [
        {'id': 0, 'cpulist': '0-15', 'sockets': [0],
         'memory_kib': 131072 * 1024},
        {'id': 1, 'cpulist': '16-31', 'sockets': [1],
         'memory_kib': 131072 * 1024}]


def test_a_pv_dom0_sysfs_places_nothing(root):
    # dom0's sysfs says -1 for every device and shows one node of dom0's
    # own vCPUs: without xl, NUMA is unknown, never a guess.
    os.remove(os.path.join(root, 'bin', 'xl'))
    status, value = call(root, 'get_gpu_topology',
                         {'addresses': '0000:87:00.0'})
    assert status == 'ok'
    m60 = value['devices']['0000:87:00.0']
    assert (m60['numa_node'], m60['numa_source'],
            m60['local_cpulist']) == (None, None, None)
    assert value['numa_source'] == 'sysfs'
    assert [n['id'] for n in value['numa_nodes']] == [0]


def test_a_real_sysfs_node_is_used_when_xen_has_none(root):
    os.remove(os.path.join(root, 'bin', 'xl'))
    base = os.path.join(root, 'sys/bus/pci/devices/0000:87:00.0')
    for name, text in (('numa_node', '1'), ('local_cpulist', '16-31')):
        with open(os.path.join(base, name), 'w') as stream:
            stream.write(text + '\n')
    _, value = call(root, 'get_gpu_topology', {'addresses': '0000:87:00.0'})
    m60 = value['devices']['0000:87:00.0']
    assert (m60['numa_node'], m60['numa_source'],
            m60['local_cpulist']) == (1, 'sysfs', '16-31')


def test_no_device_topology_from_xen_means_unknown(tmp_path):
    host = profiles.load('mixed')['hosts'][0]
    host['xl_device_topology'] = False
    root = fake_host(tmp_path, host)
    _, value = call(root, 'get_gpu_topology',
                    {'addresses': '0000:86:00.0,0000:87:00.0'})
    assert {a: (d['numa_node'], d['numa_source'])
            for a, d in value['devices'].items()} == {
        '0000:86:00.0': (None, None), '0000:87:00.0': (None, None)}
    assert value['numa_source'] == 'xen'
    assert len(value['numa_nodes']) == 2


def test_unknown_numa_node_is_null(root):
    status, value = call(root, 'get_gpu_topology',
                         {'addresses': '0000:af:00.0'})
    assert status == 'ok'
    assert value['devices']['0000:af:00.0']['numa_node'] is None


def plugin_module():
    """The plugin file imported as a module, with the stub XenAPIPlugin."""
    import importlib.machinery
    import importlib.util
    sys.path.insert(0, plugins.STUB_DIR)
    try:
        loader = importlib.machinery.SourceFileLoader('xenapi_vgpu', PLUGIN)
        spec = importlib.util.spec_from_loader('xenapi_vgpu', loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    finally:
        sys.path.remove(plugins.STUB_DIR)
    return module


XL_INFO = '''host                   : xs-gpu-01
nr_nodes               : 2
cpu_topology           :
cpu:    core    socket     node
  0:       0        0        0
  1:       1        0        0
  2:       0        1        1
  3:       1        1        1
device topology        :
device           node
0000:86:00.0      0
0000:87:00.0      1
numa_info              :
node:    memsize    memfree    distances
   0:     65536      30000      10,21
   1:     65536      31000      21,10
xen_major              : 4
'''


def test_parse_xl_info():
    parsed = plugin_module().parse_xl_info(XL_INFO)
    assert parsed == {
        'nodes': {0: {'cpus': [0, 1], 'sockets': [0], 'memory_mib': 65536},
                  1: {'cpus': [2, 3], 'sockets': [1], 'memory_mib': 65536}},
        'devices': {'0000:86:00.0': 0, '0000:87:00.0': 1}}
    without = XL_INFO.replace('0000:86:00.0      0\n0000:87:00.0      1\n',
                              'No device topology data available\n')
    assert plugin_module().parse_xl_info(without)['devices'] == {}
    assert plugin_module().parse_xl_info('xl: command failed') is None


def test_sockets_are_not_nodes():
    # Node 0's CPUs on socket 1 and node 1's on socket 0: a parser that
    # reported the node as the socket would answer [0] and [1].
    swapped = XL_INFO.replace('  0:       0        0        0\n'
                              '  1:       1        0        0\n'
                              '  2:       0        1        1\n'
                              '  3:       1        1        1\n',
                              '  0:       0        1        0\n'
                              '  1:       1        1        0\n'
                              '  2:       0        0        1\n'
                              '  3:       1        0        1\n')
    nodes = plugin_module().parse_xl_info(swapped)['nodes']
    assert {n: v['sockets'] for n, v in nodes.items()} == {0: [1], 1: [0]}


def test_two_nodes_on_one_socket_end_to_end(tmp_path):
    # Sub-NUMA clustering: both nodes on socket 0, through the real
    # plugin subprocess and the simulated xl.
    host = profiles.load('mixed')['hosts'][0]
    host['numa_nodes'] = [dict(n, socket=0) for n in host['numa_nodes']]
    status, value = call(fake_host(tmp_path, host), 'get_gpu_topology',
                         {'addresses': '0000:87:00.0'})
    assert status == 'ok'
    assert [(n['id'], n['sockets']) for n in value['numa_nodes']] == [
        (0, [0]), (1, [0])]


def test_the_simulated_xl_prints_xens_format(tmp_path):
    host = profiles.load('m60')['hosts'][0]
    text = sysfs.xl_info(host)
    assert plugin_module().parse_xl_info(text)['devices'] == {
        '0000:86:00.0': 0, '0000:87:00.0': 1}
    assert '  0:       0        0        0' in text


@pytest.mark.parametrize('args, expected', [
    ({'addresses': '../../../etc/passwd'},
     ['XENAPI_VGPU_INVALID_ARGUMENT', 'addresses', '../../../etc/passwd']),
    ({'addresses': '0000:86:00.*'},
     ['XENAPI_VGPU_INVALID_ARGUMENT', 'addresses', '0000:86:00.*']),
    ({'addresses': '0000:86:00.0/../..'},
     ['XENAPI_VGPU_INVALID_ARGUMENT', 'addresses', '0000:86:00.0/../..']),
    ({'addresses': ''}, ['XENAPI_VGPU_INVALID_ARGUMENT', 'addresses', '']),
    ({}, ['XENAPI_VGPU_INVALID_ARGUMENT', 'addresses', '']),
    ({'addresses': '0000:86:00.0', 'root': '/etc'},
     ['XENAPI_VGPU_INVALID_ARGUMENT', 'root', '/etc']),
    ({'addresses': '0000:01:00.0'},
     ['XENAPI_VGPU_NOT_A_GPU', '0000:01:00.0', '020000']),
    ({'addresses': '0000:99:00.0'},
     ['XENAPI_VGPU_NO_SUCH_DEVICE', '0000:99:00.0']),
])
def test_topology_refusals(root, args, expected):
    assert call(root, 'get_gpu_topology', args) == ('fail', expected)


def test_huge_and_too_many_arguments_are_refused(root):
    huge = 'a' * 5000
    status, error = call(root, 'get_gpu_topology', {'addresses': huge})
    assert (status, error[:2]) == ('fail', ['XENAPI_VGPU_INVALID_ARGUMENT',
                                            'addresses'])
    assert len(error[2]) <= 64
    many = ','.join('0000:%02x:00.0' % i for i in range(65))
    status, error = call(root, 'get_gpu_topology', {'addresses': many})
    assert error[0] == 'XENAPI_VGPU_INVALID_ARGUMENT'


def test_functions_without_arguments_refuse_any(root):
    for fn in ('version', 'get_nvidia_vgpu_usage'):
        assert call(root, fn, {'x': '1'}) == (
            'fail', ['XENAPI_VGPU_INVALID_ARGUMENT', 'x', '1'])


def test_unknown_function(root):
    assert call(root, 'rm_rf', {}) == (
        'fail', ['UNKNOWN_XENAPI_PLUGIN_FUNCTION', 'rm_rf'])


def test_nvidia_usage_without_nvidia_smi(tmp_path):
    host = profiles.load('mixed')['hosts'][0]
    host['pgpus'] = [p for p in host['pgpus']
                     if not p['model'].startswith('tesla')]
    sysfs.build(str(tmp_path), host)
    assert call(str(tmp_path), 'get_nvidia_vgpu_usage') == (
        'ok', {'available': False, 'reason': 'nvidia-smi not found'})


def test_nvidia_usage_of_an_m60_running_two_vgpus(root):
    shutil.copy(SMI_XML, os.path.join(root, 'nvidia-smi.out'))
    status, value = call(root, 'get_nvidia_vgpu_usage')
    assert status == 'ok'
    assert value['available'] is True
    assert value['driver_version'] == '430.67'
    busy = value['gpus']['0000:86:00.0']
    assert (busy['product_name'], busy['gpu_util'], busy['memory_util']) == (
        'Tesla M60', 23, 7)
    assert [(v['vm_name'], v['vgpu_type'], v['fb_total_mib'], v['gpu_util'])
            for v in busy['vgpus']] == [
        ('instance-00000012', 'GRID M60-4Q', 4096, 19),
        ('instance-00000013', 'GRID M60-4Q', 4096, 4)]
    assert busy['vgpus'][0]['vm_uuid'] == (
        '7a3e9a62-5c2b-4b8f-9f43-0e4f3d6c1a10')
    assert busy['vgpus'][0]['domid'] is None
    assert value['gpus']['0000:87:00.0']['vgpus'] == []


def test_nvidia_usage_naming_vms_by_domain_id(root):
    with open(SMI_XML, encoding='utf-8') as stream:
        text = stream.read().replace(
            '7a3e9a62-5c2b-4b8f-9f43-0e4f3d6c1a10', '12')
    with open(os.path.join(root, 'nvidia-smi.out'), 'w') as stream:
        stream.write(text)
    _, value = call(root, 'get_nvidia_vgpu_usage')
    first = value['gpus']['0000:86:00.0']['vgpus'][0]
    assert (first['vm_id'], first['domid'], first['vm_uuid']) == (
        '12', 12, None)


def test_nvidia_smi_failure(root):
    smi_script(root, 'sys.stderr.write("NVML: driver not loaded")\n'
                     'sys.exit(9)')
    assert call(root, 'get_nvidia_vgpu_usage') == (
        'fail', ['XENAPI_VGPU_NVIDIA_SMI_FAILED', 'exit code 9',
                 'NVML: driver not loaded'])


def test_nvidia_smi_garbage(root):
    smi_script(root, 'print("<nvidia_smi_log><gpu")')
    status, error = call(root, 'get_nvidia_vgpu_usage')
    assert error[:2] == ['XENAPI_VGPU_NVIDIA_SMI_FAILED', 'unparsable output']


@settings(max_examples=25, deadline=None)
@given(st.text(st.characters(exclude_categories=('Cc', 'Cs')),
               max_size=80))
def test_any_address_text_gets_an_answer_not_a_crash(tmp_path_factory,
                                                     text):
    # XML-RPC cannot carry control characters, so xapi never sends them.
    root = getattr(test_any_address_text_gets_an_answer_not_a_crash,
                   'root', None)
    if root is None:
        root = fake_host(tmp_path_factory.mktemp('fuzz'))
        test_any_address_text_gets_an_answer_not_a_crash.root = root
    status, value = call(root, 'get_gpu_topology', {'addresses': text})
    if status == 'fail':
        assert value[0].startswith('XENAPI_VGPU_'), value


def test_file_is_an_executable_python3_script():
    assert os.access(PLUGIN, os.X_OK)
    with open(PLUGIN, encoding='utf-8') as stream:
        assert stream.readline() == '#!/usr/bin/env python3\n'


def test_parses_with_the_python_36_grammar():
    with open(PLUGIN, encoding='utf-8') as stream:
        tree = ast.parse(stream.read(), feature_version=(3, 6))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split('.')[0])
    assert imported - {'XenAPIPlugin'} <= set(sys.stdlib_module_names)


def test_vermin_says_python_36_is_enough():
    vermin = os.path.join(os.path.dirname(sys.executable), 'vermin')
    result = subprocess.run([vermin, '-t=3.6-', '--no-tips', PLUGIN],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Minimum required versions: 3.' in result.stdout


def test_through_the_simulator_end_to_end(sim, xapi):
    host = xapi.host.get_all()[0]
    answer = json.loads(xapi.host.call_plugin(
        host, 'xenapi_vgpu', 'get_gpu_topology',
        {'addresses': '0000:86:00.0,0000:d8:00.0'}))
    assert answer['devices']['0000:86:00.0']['numa_node'] == 0
    assert answer['devices']['0000:d8:00.0']['numa_node'] == 1
    assert answer['devices']['0000:d8:00.0']['class_id'] == '038000'
    details = failure(xapi.host.call_plugin, host, 'xenapi_vgpu',
                      'get_gpu_topology', {'addresses': '0000:01:00.0'})
    assert details == ['XENAPI_VGPU_NOT_A_GPU', '0000:01:00.0', '020000']


def test_simulated_nvidia_smi_follows_running_vms(sim, xapi):
    from tests.simhelpers import group_of
    from tests.simhelpers import vgpu_type
    from tests.simhelpers import vm_with_vgpu
    host = xapi.host.get_all()[0]
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-2Q'), 'busy-vm')
    xapi.VM.start(vm, False, False)
    usage = json.loads(xapi.host.call_plugin(
        host, 'xenapi_vgpu', 'get_nvidia_vgpu_usage', {}))
    running = [(address, v['vm_name'], v['vgpu_type'])
               for address, gpu in usage['gpus'].items()
               for v in gpu['vgpus']]
    pci = xapi.PGPU.get_PCI(xapi.VGPU.get_resident_on(vgpu))
    assert running == [(xapi.PCI.get_pci_id(pci), 'busy-vm', 'GRID M60-2Q')]
    products = {gpu['product_name'] for gpu in usage['gpus'].values()}
    assert products == {'Tesla M60', 'Tesla T4'}
    instance = next(v for gpu in usage['gpus'].values()
                    for v in gpu['vgpus'])
    assert instance['domid'] == int(xapi.VM.get_domid(vm))


def test_plugin_crash_is_xenapi_plugin_failure(tmp_path):
    folder = tmp_path / 'plugins'
    folder.mkdir()
    (folder / 'broken').write_text('import sys\nsys.exit(3)\n')
    from nova_xenapi_vgpu.simulator import server
    with server.Simulator('m60', plugin_dir=str(folder)) as simulator:
        xapi = login(simulator.url).xenapi
        host = xapi.host.get_all()[0]
        details = failure(xapi.host.call_plugin, host, 'broken', 'version',
                          {})
    assert details[:2] == ['XENAPI_PLUGIN_FAILURE',
                                      'non-zero exit']
