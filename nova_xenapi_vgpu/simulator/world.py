"""Fill a simulator database from a hardware profile."""

import base64
import dataclasses
import json

from nova_xenapi_vgpu.simulator import boot
from nova_xenapi_vgpu.simulator import db as dblib
from nova_xenapi_vgpu.simulator import devices
from nova_xenapi_vgpu.simulator import furnish
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import hardware
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NIC = dict(class_id='0200', class_name='Ethernet controller',
           vendor_id='8086', vendor_name='Intel Corporation',
           device_id='1572', device_name='Ethernet Controller X710 for '
           '10GbE SFP+', subsystem_vendor_id='8086',
           subsystem_vendor_name='Intel Corporation',
           subsystem_device_id='0001', subsystem_device_name='',
           driver_name='i40e')
NIC_ADDRESS = '0000:01:00.0'
DEFAULT_NVIDIA_DRIVER = '535.161.05'
# xapi_globs.ml, nvidia_multi_vgpu_enabled_driver_versions: host drivers
# with which NVIDIA types that support it may share a VM ("+": and later).
MULTI_VGPU_DRIVERS = ('430.42', '430.62', '440.00+')


def build(profile):
    """A Database holding the pool, hosts, PCIs, groups, types and pGPUs,
    and the profile's VMs, started where the profile says.

    :raises: ProfileError when a VM of the profile cannot be built.
    """
    db = dblib.Database()
    gpu.register_derived(db)
    vmlib.register_derived(db)
    devices.register_derived(db)
    types = {}
    groups = {}
    db.pool_network = furnish.pool_network(db)
    hosts = {host['name']: _host(db, host, index)
             for index, host in enumerate(profile['hosts'])}
    restricted = 'false' if profile.get('licensed', True) else 'true'
    master = hosts[profile['hosts'][0]['name']]
    db.pool = db.create('pool', name_label='simulated pool',
                        master=master,
                        restrictions={'restrict_gpu': restricted,
                                      'restrict_vgpu': restricted,
                                      'restrict_integrated_gpu': restricted,
                                      'restrict_dmc': 'false' if profile.get(
                                          'dmc') else 'true'})
    default_sr = db.get('host', master)['suspend_image_sr']
    for field in ('default_SR', 'suspend_image_SR', 'crash_dump_SR'):
        db.set('pool', db.pool, field, default_sr)
    furnish.templates(db)
    for host in profile['hosts']:
        for pgpu in host['pgpus']:
            group = _group(db, groups, profile.get('groups', {}), pgpu)
            _pgpu(db, hosts[host['name']], group, types, pgpu,
                  host.get('nvidia_driver', DEFAULT_NVIDIA_DRIVER))
    for index, spec in enumerate(profile.get('vms', ())):
        try:
            _vm(db, spec, hosts, groups, types, profile)
        except XapiFailure as exc:
            raise profiles.ProfileError('profile: $.vms[%d] (%s): XAPI says '
                                        '%s' % (index, spec['name'],
                                                exc.description)) from None
        except ValueError as exc:
            raise profiles.ProfileError('profile: $.vms[%d] (%s): %s' % (
                index, spec['name'], exc)) from None
    db.start_delay_ms = profile.get('start_delay_ms', 0)
    return db


def _vm(db, spec, hosts, groups, types, profile):
    if spec.get('host', profile['hosts'][0]['name']) not in hosts:
        raise ValueError('no host named %s' % spec['host'])
    ref = vmlib.create(db, {
        'name_label': spec['name'],
        'HVM_boot_policy': 'BIOS order' if spec.get('hvm', True) else ''})
    db.set('VM', ref, '_pv_drivers', spec.get('pv_drivers', True))
    db.set('VM', ref, '_guest_driver_migratable',
           spec.get('guest_driver_migratable', True))
    for vgpu in spec.get('vgpus', ()):
        group = vgpu.get('group') or _group_supporting(profile, vgpu['type'])
        if group not in groups or vgpu['type'] not in types:
            raise ValueError('no GPU group %s with type %s' % (
                group, vgpu['type']))
        gpu.vgpu_create(db, ref, groups[group], '0', {},
                        types[vgpu['type']])
    if spec.get('running', True):
        boot.start(db, ref, hosts.get(spec.get('host')))


def _group_supporting(profile, model_name):
    for host in profile['hosts']:
        for pgpu in host['pgpus']:
            specs = hardware.supported_types(hardware.MODELS[pgpu['model']],
                                             pgpu.get('system_display'))
            if model_name in {spec.model_name for spec in specs}:
                return pgpu.get('group', pgpu['model'])
    raise ValueError('no pGPU supports %s' % model_name)


def _host(db, host, index):
    ref = db.create('host', name_label=host['name'], hostname=host['name'],
                    software_version={'product_brand': 'XenServer',
                                      'product_version': '8.4.0',
                                      'xapi': '25.33'},
                    chipset_info={'iommu': 'true' if host.get('iommu', True)
                                  else 'false', 'hvm': 'true'})
    furnish.host_parts(db, ref, host, index)
    sr = furnish.local_sr(db, ref, host)
    db.set('host', ref, 'suspend_image_sr', sr)
    db.set('host', ref, 'crash_dump_sr', sr)
    db.create('PCI', host=ref, pci_id=NIC_ADDRESS, **NIC)
    return ref


def _group(db, groups, settings, pgpu):
    model = hardware.MODELS[pgpu['model']]
    key = pgpu.get('group', pgpu['model'])
    if key not in groups:
        config = settings.get(key, {})
        name = config.get('name') or 'Group of %s %s GPUs' % (
            model.vendor_name, model.device_name)
        groups[key] = db.create(
            'GPU_group', name_label=name,
            GPU_types=['%s/%s' % (model.vendor_id, model.device_id)],
            allocation_algorithm=config.get('allocation_algorithm',
                                            'depth_first'))
    return groups[key]


def _pci(db, host, address, model, physical_function=schema.NULL):
    return db.create(
        'PCI', host=host, pci_id=address, class_id=model.class_id,
        class_name=model.class_name, vendor_id=model.vendor_id,
        vendor_name=model.vendor_name, device_id=model.device_id,
        device_name=model.device_name,
        subsystem_vendor_id=model.subsystem_vendor_id,
        subsystem_vendor_name=model.vendor_name,
        subsystem_device_id=model.subsystem_device_id,
        driver_name=model.driver, _physical_function=physical_function)


def virtual_function_address(address, index):
    """The PCI address of a pGPU's ``index``-th virtual function."""
    base, function = address.rsplit(':', 1)[0], 4 + index
    return '%s:%02x.%d' % (base, function // 8, function % 8)


def _pgpu(db, host, group, types, pgpu, driver):
    model = hardware.MODELS[pgpu['model']]
    pci = _pci(db, host, pgpu['address'], model)
    specs = hardware.supported_types(model, pgpu.get('system_display'))
    if any(hardware.is_sriov(spec) for spec in specs):
        for index in range(model.sriov_totalvfs):
            _pci(db, host, virtual_function_address(pgpu['address'], index),
                 model, physical_function=pci)
    by_name = {spec.model_name: _vgpu_type(db, types, spec, driver)
               for spec in specs}
    supported = list(by_name.values())
    enabled = pgpu.get('enabled_types')
    db.create(
        'PGPU', PCI=pci, GPU_group=group, host=host,
        supported_VGPU_types=supported,
        enabled_VGPU_types=(supported if enabled is None
                            else [by_name[name] for name in enabled]),
        supported_VGPU_max_capacities={
            by_name[spec.model_name]: spec.per_pgpu for spec in specs},
        is_system_display_device=pgpu.get('system_display', False),
        compatibility_metadata=_pgpu_metadata(model, driver))


def _pgpu_metadata(model, driver):
    """NVIDIA pGPUs carry gpumon's metadata under xapi's ``nvidia`` key.

    The real value is NVIDIA's opaque blob, base64-encoded by xapi
    (xapi_gpumon.ml); here it is base64 of the facts the simulator's
    compatibility check compares.
    """
    if model.vendor_id != '10de':
        return {}
    blob = json.dumps({'device_id': model.device_id, 'driver': driver})
    return {gpu.NVIDIA_KEY: base64.b64encode(blob.encode()).decode()}


def _vgpu_type(db, types, spec, driver):
    if spec.model_name not in types:
        fields = dataclasses.asdict(spec)
        multiple = fields.pop('multiple_per_vm')
        fields.pop('per_pgpu')
        ref = db.create('VGPU_type', **fields)
        if multiple and supports_multi_vgpu(driver):
            db.set('VGPU_type', ref, 'compatible_types_in_vm', [ref])
        types[spec.model_name] = ref
    return types[spec.model_name]


def _version(text):
    return [int(part) for part in text.rstrip('+').split('.')]


def supports_multi_vgpu(driver):
    """xapi_vgpu_type.ml, host_driver_supports_multi_vgpu."""
    def compare(a, b):
        width = max(len(a), len(b))
        a, b = a + [0] * (width - len(a)), b + [0] * (width - len(b))
        return (a > b) - (a < b)
    version = _version(driver)
    return any(compare(version, _version(v)) == 0 or (
        v.endswith('+') and compare(version, _version(v)) > 0)
        for v in MULTI_VGPU_DRIVERS)
