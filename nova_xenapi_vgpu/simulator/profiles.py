"""Hardware profiles: the hosts, NUMA nodes and pGPUs a simulator has.

A profile is a mapping (JSON or YAML) with this schema::

    licensed: true               # false: the pool lacks the GPU/vGPU
                                 # features (VGPU.create FEATURE_RESTRICTED)
    dmc: false                   # true: pool.restrictions allow dynamic
                                 # memory control (unpinned memory limits)
    start_delay_ms: 0            # the boot window of every VM.start
    hosts:                       # first host is the pool master
      - name: xs-gpu-01
        iommu: true              # false: passthrough/SR-IOV VMs get
                                 # VM_REQUIRES_IOMMU
        nvidia_driver: "535.161.05"  # host driver (multi-vGPU support)
        xl_device_topology: true # false: xl gives no device topology
        memory_mib: 262144       # host memory xapi counts (host_metrics
                                 # memory_total); default: the NUMA nodes'
        local_sr: {type: lvm, size_gib: 1024}  # lvm (thick) or ext (thin)
        numa_nodes:              # optional, default one node of 16 CPUs
          - {cpus: "0-11", memory_mib: 131072, socket: 0}
        pgpus:
          - address: "0000:86:00.0"   # PCI address, unique per host
            model: tesla-m60          # see hardware.MODELS
            numa_node: 0              # index into numa_nodes, or null
            group: M60                # GPU group key (default: model)
            enabled_types: [...]      # default: every supported type
            system_display: false
    groups:                      # optional, per group key
      M60: {name: "...", allocation_algorithm: breadth_first}
    vms:                         # optional: VMs made when the pool starts
      - name: instance-00000001
        host: xs-gpu-01          # VM.start_on it; default VM.start
        running: true            # default true; false leaves it halted
        hvm: true                # default true; false makes a PV VM
        pv_drivers: true         # false: clean_shutdown VM_LACKS_FEATURE
        guest_driver_migratable: true  # false: VGPU_GUEST_DRIVER_LIMIT
        vgpus: [{type: GRID M60-4Q, group: M60}]   # group optional
"""

import copy
import json
import os

import jsonschema
import yaml

from nova_xenapi_vgpu.simulator import hardware

ALGORITHMS = ('depth_first', 'breadth_first')
PCI_ADDRESS = r'^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$'

_NAME = {'type': 'string', 'minLength': 1}


def _strict(required=(), **properties):
    """A JSON-schema object with these properties and no others."""
    return {'type': 'object', 'required': list(required),
            'additionalProperties': False, 'properties': properties}


def _array(items, **extra):
    return dict({'type': 'array', 'items': items}, **extra)


_BOOL = {'type': 'boolean'}
SCHEMA = _strict(
    ['hosts'],
    licensed=_BOOL,
    dmc=_BOOL,
    start_delay_ms={'type': 'integer', 'minimum': 0},
    hosts=_array(_strict(
        ['name', 'pgpus'], name=_NAME, iommu=_BOOL,
        nvidia_driver={'type': 'string', 'pattern': r'^\d+(\.\d+)*$'},
        xl_device_topology=_BOOL,
        memory_mib={'type': 'integer', 'minimum': 1},
        local_sr=_strict(type={'enum': ['lvm', 'ext']},
                         size_gib={'type': 'integer', 'minimum': 1}),
        numa_nodes=_array(_strict(
            ['cpus', 'memory_mib'],
            cpus={'type': 'string', 'pattern': r'^\d+(-\d+)?(,\d+(-\d+)?)*$'},
            memory_mib={'type': 'integer', 'minimum': 1},
            socket={'type': 'integer', 'minimum': 0}), minItems=1),
        pgpus=_array(_strict(
            ['address', 'model'],
            address={'type': 'string', 'pattern': PCI_ADDRESS},
            model={'enum': sorted(hardware.MODELS)},
            numa_node={'type': ['integer', 'null'], 'minimum': 0},
            group=_NAME,
            enabled_types=_array({'type': 'string'}),
            system_display={'type': 'boolean'}))), minItems=1),
    vms=_array(_strict(
        ['name'], name=_NAME, host=_NAME, running=_BOOL, hvm=_BOOL,
        pv_drivers=_BOOL, guest_driver_migratable=_BOOL,
        vgpus=_array(_strict(['type'], type=_NAME, group=_NAME)))),
    groups={'type': 'object', 'additionalProperties': _strict(
        name=_NAME, allocation_algorithm={'enum': list(ALGORITHMS)})},
)

_M60_GROUP = {'name': 'Group of NVIDIA Corporation GM204GL [Tesla M60] GPUs'}
_TWO_NODES = [{'cpus': '0-15', 'memory_mib': 131072},
              {'cpus': '16-31', 'memory_mib': 131072}]


def _m60_board(bus0, bus1):
    return [{'address': '0000:%02x:00.0' % bus0, 'model': 'tesla-m60',
             'numa_node': 0, 'group': 'M60'},
            {'address': '0000:%02x:00.0' % bus1, 'model': 'tesla-m60',
             'numa_node': 1, 'group': 'M60'}]


BUILTIN = {
    'm60': {
        'hosts': [{'name': 'xs-m60-01', 'numa_nodes': _TWO_NODES,
                   'pgpus': _m60_board(0x86, 0x87)}],
        'groups': {'M60': _M60_GROUP},
    },
    'mixed': {
        'hosts': [{'name': 'xs-gpu-01', 'numa_nodes': _TWO_NODES, 'pgpus': [
            *_m60_board(0x86, 0x87),
            {'address': '0000:00:02.0', 'model': 'intel-uhd630',
             'numa_node': 0, 'group': 'GVT-g', 'system_display': True},
            {'address': '0000:3b:00.0', 'model': 'tesla-t4',
             'numa_node': 0, 'group': 'T4'},
            {'address': '0000:d8:00.0', 'model': 'amd-s7150',
             'numa_node': 1, 'group': 'S7150'},
        ]}],
        'groups': {
            'M60': _M60_GROUP,
            'T4': {'name': 'Group of NVIDIA Corporation TU104GL [Tesla T4] '
                           'GPUs', 'allocation_algorithm': 'breadth_first'},
            'GVT-g': {'name': 'Group of Intel Corporation CoffeeLake-S GT2 '
                              '[UHD Graphics 630] GPUs'},
            'S7150': {'name': 'Group of Advanced Micro Devices, Inc. '
                              '[AMD/ATI] Tonga XTGL [FirePro S7150] GPUs',
                      'allocation_algorithm': 'breadth_first'},
        },
    },
    'pool': {
        'hosts': [{'name': 'xs-pool-%02d' % i, 'numa_nodes': _TWO_NODES,
                   'pgpus': _m60_board(0x86, 0x87) + _m60_board(0xaf, 0xb0)}
                  for i in (1, 2, 3)],
        'groups': {'M60': _M60_GROUP},
    },
}
DEFAULT = 'mixed'


class ProfileError(ValueError):
    """A profile that does not follow the schema, with where and why."""


def load(name_or_path):
    """A validated profile: a built-in name or a YAML/JSON file path.

    :raises: ProfileError naming the file, the place and the problem.
    """
    if name_or_path in BUILTIN:
        return copy.deepcopy(BUILTIN[name_or_path])
    if not os.path.isfile(name_or_path):
        raise ProfileError('profile %r: not a built-in profile (%s) nor a '
                           'file' % (name_or_path, ', '.join(BUILTIN)))
    try:
        with open(name_or_path, encoding='utf-8') as stream:
            text = stream.read()
        data = (json.loads(text) if name_or_path.endswith('.json')
                else yaml.safe_load(text))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ProfileError('profile %s: %s' % (name_or_path, exc)) from None
    return validate(data, name_or_path)


def validate(data, source='<profile>'):
    """Check ``data`` against the schema and cross-field rules.

    :raises: ProfileError.
    """
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(SCHEMA).iter_errors(data))
    if error is not None:
        raise ProfileError('profile %s: %s: %s' % (
            source, error.json_path, error.message))
    for h, host in enumerate(data['hosts']):
        _validate_host(host, 'profile %s: $.hosts[%d]' % (source, h))
    return data


def _validate_host(host, where):
    nodes = len(host.get('numa_nodes', [None]))
    seen = set()
    for p, pgpu in enumerate(host['pgpus']):
        place = '%s.pgpus[%d]' % (where, p)
        if pgpu['address'] in seen:
            raise ProfileError('%s.address: %s appears twice' % (
                place, pgpu['address']))
        seen.add(pgpu['address'])
        node = pgpu.get('numa_node')
        if node is not None and node >= nodes:
            raise ProfileError('%s.numa_node: %d but the host has %d NUMA '
                               'node(s)' % (place, node, nodes))
        names = {t.model_name for t in hardware.supported_types(
            hardware.MODELS[pgpu['model']], pgpu.get('system_display'))}
        unknown = sorted(set(pgpu.get('enabled_types', ())) - names)
        if unknown:
            raise ProfileError('%s.enabled_types: %s not supported by %s' % (
                place, ', '.join(unknown), pgpu['model']))


def generate(hosts, pgpus_per_host, algorithm='depth_first'):
    """A profile of ``hosts`` hosts with ``pgpus_per_host`` M60 pGPUs each."""
    def pgpu(i):
        return {'address': '0000:%02x:%02x.0' % (0x10 + i // 32, i % 32),
                'model': 'tesla-m60', 'numa_node': i % 2, 'group': 'M60'}
    return {
        'hosts': [{'name': 'xs-bench-%03d' % h, 'numa_nodes': _TWO_NODES,
                   'pgpus': [pgpu(i) for i in range(pgpus_per_host)]}
                  for h in range(hosts)],
        'groups': {'M60': dict(_M60_GROUP, allocation_algorithm=algorithm)},
    }
