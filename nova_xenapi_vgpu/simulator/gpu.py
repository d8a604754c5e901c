"""xapi's GPU rules: capacity, pGPU choice, VGPU, PGPU and GPU_group calls."""

from nova_xenapi_vgpu.simulator.errors import XapiFailure
from nova_xenapi_vgpu.simulator.schema import NULL

NVIDIA_KEY = 'nvidia'  # xapi_gpumon.ml, Nvidia.key

MIN_DEVICE, MAX_DEVICE = 0, 20


def implementation(db, vgpu_type):
    """The type's implementation: passthrough, nvidia, nvidia_sriov, ..."""
    return db.get('VGPU_type', vgpu_type)['implementation']


def is_passthrough(db, vgpu_type):
    """Whether ``vgpu_type`` hands over a whole pGPU."""
    return implementation(db, vgpu_type) == 'passthrough'


def requires_passthrough(db, vgpu_type):
    """xapi_vgpu_type.ml: ``PF`` for passthrough, ``VF`` for SR-IOV types."""
    impl = implementation(db, vgpu_type)
    if impl == 'passthrough':
        return 'PF'
    return 'VF' if impl in ('nvidia_sriov', 'mxgpu') else None


def is_nvidia(db, vgpu):
    """Whether a VGPU is of an NVIDIA type (xapi_gpumon.ml)."""
    return implementation(db, db.get('VGPU', vgpu)['type']) in (
        'nvidia', 'nvidia_sriov')


def is_suspendable(db, vgpu):
    """xapi_vm_lifecycle.ml, check_vgpu: an NVIDIA vGPU resident on a pGPU
    whose compatibility metadata carries NVIDIA's key."""
    pgpu = db.get('VGPU', vgpu)['resident_on']
    return (is_nvidia(db, vgpu) and pgpu in db.objects['PGPU']
            and NVIDIA_KEY in db.get('PGPU', pgpu)['compatibility_metadata'])


def attached_vms(db, pci):
    """PCI.attached_VMs (internal to xapi): running VMs holding ``pci``."""
    return [vm for vm, record in db.objects['VM'].items()
            if pci in record['attached_PCIs']]


def scheduled_vgpus(db, pgpu):
    """VGPUs scheduled onto ``pgpu`` (xapi_pgpu_helpers.ml)."""
    return db.field('PGPU', pgpu, 'scheduled_VGPUs')


def allocated(db, pgpu, pending=()):
    """VGPUs resident on, scheduled onto, or about to go onto ``pgpu``."""
    return (set(db.field('PGPU', pgpu, 'resident_VGPUs'))
            | set(db.field('PGPU', pgpu, 'scheduled_VGPUs'))
            | {vgpu for vgpu, target in pending if target == pgpu})


def remaining_capacity(db, pgpu, vgpu_type, pending=()):
    """How many more VGPUs of ``vgpu_type`` fit on ``pgpu``.

    :raises: XapiFailure VGPU_TYPE_NOT_SUPPORTED, VGPU_TYPE_NOT_ENABLED,
             VGPU_TYPE_NOT_COMPATIBLE_WITH_RUNNING_TYPE,
             PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU.
    """
    record = db.get('PGPU', pgpu)
    db.get('VGPU_type', vgpu_type)
    if vgpu_type not in record['supported_VGPU_types']:
        raise XapiFailure('VGPU_TYPE_NOT_SUPPORTED', vgpu_type,
                          *record['supported_VGPU_types'])
    if vgpu_type not in record['enabled_VGPU_types']:
        raise XapiFailure('VGPU_TYPE_NOT_ENABLED', vgpu_type,
                          *record['enabled_VGPU_types'])
    vgpus = allocated(db, pgpu, pending)
    running = sorted({db.get('VGPU', v)['type'] for v in vgpus})
    if any(t != vgpu_type or is_passthrough(db, t) for t in running):
        raise XapiFailure('VGPU_TYPE_NOT_COMPATIBLE_WITH_RUNNING_TYPE',
                          pgpu, vgpu_type, ';'.join(running))
    if is_passthrough(db, vgpu_type):
        # xapi_pgpu_helpers.ml: passthrough is binary, and a PCI device
        # attached to any VM (also through other_config:pci) takes it.
        remaining = 0 if (vgpus or attached_vms(db, record['PCI'])) else 1
    else:
        remaining = (record['supported_VGPU_max_capacities'].get(
            vgpu_type, 0) - len(vgpus))
    if remaining <= 0:
        raise XapiFailure('PGPU_INSUFFICIENT_CAPACITY_FOR_VGPU', pgpu,
                          vgpu_type)
    return remaining


def capacity_or_zero(db, pgpu, vgpu_type, pending=()):
    """remaining_capacity, with 0 where it would refuse."""
    try:
        return remaining_capacity(db, pgpu, vgpu_type, pending)
    except XapiFailure:
        return 0


def host_capacity(db, host, group, vgpu_type):
    """Remaining capacity summed over ``host``'s pGPUs of ``group``."""
    return sum(capacity_or_zero(db, pgpu, vgpu_type)
               for pgpu in group_pgpus_on(db, group, host))


def group_pgpus_on(db, group, host):
    """The pGPUs of ``group`` that sit on ``host``."""
    return [p for p in db.field('GPU_group', group, 'PGPUs')
            if db.get('PGPU', p)['host'] == host]


def choose_pgpu(db, vm, host, vgpu, pending=()):
    """The pGPU xapi would give ``vgpu`` on ``host``.

    :raises: XapiFailure VM_REQUIRES_VGPU, or VM_REQUIRES_GPU for
             passthrough.
    """
    record = db.get('VGPU', vgpu)
    group, vgpu_type = record['GPU_group'], record['type']
    candidates = [(capacity_or_zero(db, p, vgpu_type, pending), p)
                  for p in group_pgpus_on(db, group, host)]
    candidates = [c for c in candidates if c[0] > 0]
    if not candidates:
        if is_passthrough(db, vgpu_type):
            raise XapiFailure('VM_REQUIRES_GPU', vm, group)
        raise XapiFailure('VM_REQUIRES_VGPU', vm, group, vgpu_type)
    breadth = (db.get('GPU_group', group)['allocation_algorithm']
               == 'breadth_first')
    if db.tie_break:
        # Among equally good pGPUs xapi's order is its database's; tests
        # pin it to the PCI address, either way round.
        candidates.sort(key=lambda c: db.get('PCI', db.get(
            'PGPU', c[1])['PCI'])['pci_id'], reverse=db.tie_break ==
            'reverse-address')
    candidates.sort(key=lambda c: -c[0] if breadth else c[0])
    return candidates[0][1]


def feature_enabled(db, feature):
    """Pool_features: ``GPU`` or ``VGPU`` unless the pool restricts it."""
    restrictions = db.get('pool', db.pool)['restrictions']
    return restrictions.get('restrict_%s' % feature.lower()) != 'true'


def vgpu_create(db, vm, group, device, other_config, vgpu_type):
    """VGPU.create: checks the VM and types, then picks the device slot."""
    record = db.get('VM', vm)
    db.get('GPU_group', group)
    # xapi_vgpu.ml, create': the licence first, then the power state.
    if not feature_enabled(db, 'GPU'):
        raise XapiFailure('FEATURE_RESTRICTED')
    if not record['is_a_snapshot'] and record['power_state'] != 'Halted':
        raise XapiFailure('VM_BAD_POWER_STATE', vm, 'halted',
                          record['power_state'].lower())
    if vgpu_type == NULL:
        vgpu_type = _passthrough_type(db)
    elif vgpu_type not in db.objects['VGPU_type']:
        raise XapiFailure('INVALID_VALUE', 'type', vgpu_type)
    existing = db.field('VM', vm, 'VGPUs')
    for other in existing:
        other_type = db.get('VGPU', other)['type']
        if vgpu_type not in db.get('VGPU_type',
                                   other_type)['compatible_types_in_vm']:
            raise XapiFailure('VGPU_TYPE_NOT_COMPATIBLE', vgpu_type)
    device = _valid_device(db, vm, device, existing)
    return db.create('VGPU', VM=vm, GPU_group=group, device=device,
                     other_config=dict(other_config), type=vgpu_type)


def vgpu_copy(db, vgpu, vm):
    """xapi_vgpu.ml, copy: the same VGPU for another VM, unplaced."""
    record = db.get('VGPU', vgpu)
    return db.create(
        'VGPU', VM=vm, GPU_group=record['GPU_group'],
        device=record['device'], other_config=dict(record['other_config']),
        type=record['type'], currently_attached=record['currently_attached'],
        compatibility_metadata=dict(record['compatibility_metadata']))


def _passthrough_type(db):
    for ref, record in db.objects['VGPU_type'].items():
        if record['implementation'] == 'passthrough':
            return ref
    return db.create('VGPU_type', model_name='passthrough')


def _valid_device(db, vm, device, existing):
    try:
        number = int(device)
    except ValueError:
        # xapi_vgpu.ml calls int_of_string; exnHelper.ml reports the OCaml
        # exception as an internal error.
        raise XapiFailure('INTERNAL_ERROR',
                          'Failure("int_of_string")') from None
    used = {int(db.get('VGPU', v)['device']) for v in existing}
    if number == 0:
        for slot in range(MIN_DEVICE, MAX_DEVICE + 1):
            if slot not in used:
                return str(slot)
        raise XapiFailure('VM_PCI_BUS_FULL', vm)
    if number in used:
        raise XapiFailure('DEVICE_ALREADY_EXISTS', device)
    if not MIN_DEVICE <= number <= MAX_DEVICE:
        raise XapiFailure('INVALID_DEVICE', device)
    return device


def vgpu_destroy(db, vgpu):
    """VGPU.destroy: refused while its VM runs."""
    vm = db.get('VGPU', vgpu)['VM']
    if vm in db.objects['VM'] and db.get('VM', vm)['power_state'] in (
            'Running', 'Paused'):
        raise XapiFailure('OPERATION_NOT_ALLOWED',
                          'vGPU currently attached to a running VM')
    db.destroy('VGPU', vgpu)


def set_enabled_types(db, pgpu, value):
    """PGPU.set_enabled_VGPU_types with xapi's checks on what changes."""
    current = db.get('PGPU', pgpu)['enabled_VGPU_types']
    for vgpu_type in set(value) - set(current):
        _assert_supported(db, pgpu, vgpu_type)
    for vgpu_type in set(current) - set(value):
        _assert_not_resident(db, pgpu, vgpu_type)
    _store_enabled(db, pgpu, list(dict.fromkeys(value)), current)


def add_enabled_type(db, pgpu, vgpu_type):
    """PGPU.add_enabled_VGPU_types."""
    current = db.get('PGPU', pgpu)['enabled_VGPU_types']
    _assert_supported(db, pgpu, vgpu_type)
    if vgpu_type not in current:
        _store_enabled(db, pgpu, current + [vgpu_type], current)


def remove_enabled_type(db, pgpu, vgpu_type):
    """PGPU.remove_enabled_VGPU_types."""
    current = db.get('PGPU', pgpu)['enabled_VGPU_types']
    _assert_not_resident(db, pgpu, vgpu_type)
    _store_enabled(db, pgpu, [t for t in current if t != vgpu_type],
                   current)


def _store_enabled(db, pgpu, value, old):
    db.set('PGPU', pgpu, 'enabled_VGPU_types', value)
    db.touch('GPU_group', db.get('PGPU', pgpu)['GPU_group'])
    for vgpu_type in set(value) ^ set(old):
        db.touch('VGPU_type', vgpu_type)


def _assert_supported(db, pgpu, vgpu_type):
    supported = db.get('PGPU', pgpu)['supported_VGPU_types']
    if vgpu_type not in supported:
        raise XapiFailure('VGPU_TYPE_NOT_SUPPORTED', vgpu_type, *supported)


def _assert_not_resident(db, pgpu, vgpu_type):
    vms = [db.get('VGPU', v)['VM']
           for v in db.field('PGPU', pgpu, 'resident_VGPUs')
           if db.get('VGPU', v)['type'] == vgpu_type]
    if vms:
        raise XapiFailure('PGPU_IN_USE_BY_VM', *vms)


def set_gpu_group(db, pgpu, group):
    """PGPU.set_GPU_group: only an idle pGPU, only a compatible group."""
    record = db.get('PGPU', pgpu)
    db.get('GPU_group', group)
    resident = db.field('PGPU', pgpu, 'resident_VGPUs')
    if resident:
        raise XapiFailure('PGPU_IN_USE_BY_VM',
                          *[db.get('VGPU', v)['VM'] for v in resident])
    pci = db.get('PCI', record['PCI'])
    gpu_type = '%s/%s' % (pci['vendor_id'], pci['device_id'])
    group_types = db.get('GPU_group', group)['GPU_types']
    if group_types and gpu_type not in group_types:
        raise XapiFailure('PGPU_NOT_COMPATIBLE_WITH_GPU_GROUP', gpu_type,
                          '[%s]' % ', '.join(group_types))
    old = record['GPU_group']
    db.set('PGPU', pgpu, 'GPU_group', group)
    db.set('GPU_group', group, 'GPU_types', group_types or [gpu_type])
    if old in db.objects['GPU_group'] and not db.field(
            'GPU_group', old, 'PGPUs'):
        db.set('GPU_group', old, 'GPU_types', [])


def group_destroy(db, group):
    """GPU_group.destroy: refused while VGPUs are attached or pGPUs remain."""
    vgpus = db.field('GPU_group', group, 'VGPUs')
    attached = [v for v in vgpus if db.get('VGPU', v)['currently_attached']]
    if attached:
        raise XapiFailure('GPU_GROUP_CONTAINS_VGPU', *attached)
    pgpus = db.field('GPU_group', group, 'PGPUs')
    if pgpus:
        raise XapiFailure('GPU_GROUP_CONTAINS_PGPU', *pgpus)
    for vgpu in vgpus:
        db.destroy('VGPU', vgpu)
    db.destroy('GPU_group', group)


def pgpu_remaining_capacity(db, pgpu, vgpu_type):
    """PGPU.get_remaining_capacity: 0 where xapi's rule would refuse.

    xapi_pgpu.ml turns every error into 0, unknown refs included.
    """
    return capacity_or_zero(db, pgpu, vgpu_type)


def group_remaining_capacity(db, group, vgpu_type):
    """GPU_group.get_remaining_capacity: summed over the whole pool.

    xapi_gpu_group.ml reads the group's pGPUs before its error handling,
    so an unknown group is HANDLE_INVALID; an unknown type gives 0.

    :raises: XapiFailure HANDLE_INVALID for an unknown group.
    """
    return sum(capacity_or_zero(db, p, vgpu_type)
               for p in db.field('GPU_group', group, 'PGPUs'))


def register_derived(db):
    """Teach ``db`` the fields xapi computes from pGPUs."""
    def pgpus_with(field):
        return lambda db, ref: sorted(
            p for p, rec in db.objects['PGPU'].items() if ref in rec[field])

    def groups_with(field):
        return lambda db, ref: sorted(
            {rec['GPU_group'] for rec in db.objects['PGPU'].values()
             if ref in rec[field]} - {NULL})

    def group_union(field):
        return lambda db, ref: sorted(
            {t for p in db.field('GPU_group', ref, 'PGPUs')
             for t in db.get('PGPU', p)[field]})

    for field, suffix in (('supported_VGPU_types', 'supported_on'),
                          ('enabled_VGPU_types', 'enabled_on')):
        db.derived[('VGPU_type', suffix + '_PGPUs')] = pgpus_with(field)
        db.derived[('VGPU_type', suffix + '_GPU_groups')] = groups_with(
            field)
        db.derived[('GPU_group', field)] = group_union(field)


# xapi_pci_helpers.ml, determine_dom0_access_status: (hidden from dom0 at
# this boot, hidden after the next reboot) -> the access enum.
_DOM0_ACCESS = {(True, True): 'disabled', (False, True): 'disable_on_reboot',
                (False, False): 'enabled', (True, False): 'enable_on_reboot'}


def dom0_access_status(db, pci):
    """PCI.get_dom0_access_status."""
    record = db.get('PCI', pci)
    return _DOM0_ACCESS[(record['_hidden_at_boot'],
                         record['_hidden_after_reboot'])]


def update_dom0_access(db, pci, enable):
    """PCI/PGPU.enable_dom0_access and disable_dom0_access.

    The change takes effect at the host's next boot; the PGPU's
    deprecated ``dom0_access`` field follows (xapi_pci_helpers.ml).
    """
    db.set('PCI', pci, '_hidden_after_reboot', not enable)
    status = dom0_access_status(db, pci)
    for pgpu, record in db.objects['PGPU'].items():
        if record['PCI'] == pci:
            db.set('PGPU', pgpu, 'dom0_access', status)
    return status


def pgpu_update_dom0_access(db, pgpu, enable):
    """PGPU.enable/disable_dom0_access; disabling needs a licence.

    :raises: XapiFailure FEATURE_RESTRICTED (xapi_pgpu.ml).
    """
    if not enable and not feature_enabled(db, 'integrated_GPU'):
        raise XapiFailure('FEATURE_RESTRICTED')
    return update_dom0_access(db, db.get('PGPU', pgpu)['PCI'], enable)


def set_extra_args(db, vgpu, value):
    """VGPU.set_extra_args: a plain string field."""
    db.get('VGPU', vgpu)
    db.set('VGPU', vgpu, 'extra_args', value)
