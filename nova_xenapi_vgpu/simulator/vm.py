"""VM records and xapi's operation checks: create, destroy, clone, copy.

The checks follow xapi_vm_lifecycle.ml (check_operation_error): blocked
operations, the power states an operation needs, operations already in
progress, guest features, then the vGPU rule.
"""

import uuid as uuidlib

from nova_xenapi_vgpu.simulator import db as dblib
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import overhead
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
_FIELDS = schema.CLASSES['VM'].fields
_SET_BY_XAPI = frozenset({'uuid', 'power_state', 'resident_on',
                          'attached_PCIs', 'domain_type', 'domid',
                          'current_operations', 'snapshot_of', 'metrics',
                          'memory_overhead', 'suspend_VDI',
                          'is_default_template', 'guest_metrics'})
LIVE = ('Running', 'Paused')

# xapi_vm_lifecycle.ml, allowed_power_states: the states each operation
# needs, in xapi's order (VM_BAD_POWER_STATE lists them so).
POWER_STATES = {
    'start': ('Halted',), 'start_on': ('Halted',),
    'resume': ('Suspended',), 'resume_on': ('Suspended',),
    'clean_shutdown': ('Running',), 'clean_reboot': ('Running',),
    'pool_migrate': ('Running',), 'suspend': ('Running',),
    'pause': ('Running',), 'unpause': ('Paused',),
    'clone': ('Halted',), 'copy': ('Halted',),
    'destroy': ('Halted', 'Suspended'), 'export': ('Halted', 'Suspended'),
    'hard_reboot': ('Paused', 'Running'),
    'hard_shutdown': ('Paused', 'Suspended', 'Running'),
    'checkpoint': ('Paused', 'Suspended', 'Running'),
    'migrate_send': ('Halted', 'Suspended', 'Running'),
    'snapshot': ('Halted', 'Paused', 'Running', 'Suspended'),
    'provision': ('Halted',), 'make_into_template': ('Halted',),
    'changing_VCPUs': ('Halted',), 'changing_memory_limits': ('Halted',),
    'changing_static_range': ('Halted',),
}
# xapi_vm_lifecycle.ml, check_template: what a template allows (destroy
# and migrate_send only when it is not a default template).
_TEMPLATE_OPS = frozenset({
    'changing_dynamic_range', 'changing_static_range',
    'changing_memory_limits', 'changing_shadow_memory', 'changing_VCPUs',
    'changing_NVRAM', 'clone', 'copy', 'export', 'metadata_export',
    'provision'})
DEFAULT_TEMPLATE_KEY = 'default_template'
MAC_SEED = 'mac_seed'
# Operations that need the guest's help, and the guest feature asked for.
_GUEST_FEATURE_OPS = frozenset({'clean_shutdown', 'clean_reboot'})
_SUSPEND_LIKE = frozenset({'suspend', 'checkpoint', 'pool_migrate',
                           'migrate_send'})


def create(db, record):
    """VM.create: the fields given, xapi's defaults for the rest.

    ``domain_type`` follows ``HVM_boot_policy`` (xapi_vm_helpers.ml,
    derive_domain_type): ``hvm`` when it is set, else ``pv``.
    """
    fields = {}
    for name, value in record.items():
        default = _FIELDS.get(name)
        if default is None or name in _SET_BY_XAPI or schema.is_internal(
                name):
            continue
        fields[name] = _coerce(name, value, default)
    fields['domain_type'] = derive_domain_type(
        fields.get('HVM_boot_policy', ''))
    other = dict(fields.get('other_config', {}))
    other.setdefault(MAC_SEED, str(uuidlib.uuid4()))
    fields['other_config'] = other
    return finish_create(db, db.create('VM', **fields))


def finish_create(db, vm):
    """xapi_vm.ml, create: the VM's metrics record and memory overhead."""
    db.set('VM', vm, 'metrics', db.create('VM_metrics'))
    record = db.get('VM', vm)
    db.set('VM', vm, 'memory_overhead', overhead.vm_overhead(record))
    return vm


def derive_domain_type(hvm_boot_policy):
    """``hvm`` for a VM with an HVM boot policy, else ``pv``."""
    return 'hvm' if hvm_boot_policy else 'pv'


def set_hvm_boot_policy(db, vm, value):
    """VM.set_HVM_boot_policy: also sets ``domain_type`` (xapi_vm.ml)."""
    db.set('VM', vm, 'domain_type', derive_domain_type(value))
    db.set('VM', vm, 'HVM_boot_policy', value)


def _coerce(name, value, default):
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else value == 'true'
        if isinstance(default, (int, float)):
            return type(default)(value)
    except (TypeError, ValueError):
        raise XapiFailure('FIELD_TYPE_ERROR', name) from None
    return value


def operation_error(db, vm, op, strict=True):
    """Why ``op`` may not run on ``vm`` now, as a failure; None if it may."""
    record = db.get('VM', vm)
    blocked = record['blocked_operations'].get(op)
    if blocked is not None:
        return XapiFailure('OPERATION_BLOCKED', vm, blocked)
    allowed = POWER_STATES[op]
    if record['power_state'] not in allowed:
        return XapiFailure('VM_BAD_POWER_STATE', vm, ', '.join(
            s.lower() for s in allowed), record['power_state'].lower())
    if record['current_operations'] and not _concurrent_ok(record, op):
        (task, current), = sorted(record['current_operations'].items())[:1]
        return XapiFailure('OTHER_OPERATION_IN_PROGRESS', 'VM', vm,
                           current, task)
    template_error = _template_error(record, vm, op)
    if template_error is not None:
        return template_error
    if _lacks_feature(record, op, strict):
        return XapiFailure('VM_LACKS_FEATURE', vm)
    if not _vgpus_allow(db, record, op):
        return XapiFailure('VM_HAS_VGPU', vm)
    return None


def is_default_template(record):
    """is_default_template, or other_config:default_template true."""
    flag = record['other_config'].get(DEFAULT_TEMPLATE_KEY, '').lower()
    return record['is_default_template'] or flag in ('1', 'true')


def _template_error(record, vm, op):
    """check_template, check_snapshot and the provision rule."""
    if record['is_a_template'] and not record['is_a_snapshot']:
        if op in _TEMPLATE_OPS or (op in ('destroy', 'migrate_send')
                                   and not is_default_template(record)):
            return None
        return XapiFailure('VM_IS_TEMPLATE', vm, op)
    if record['is_a_snapshot'] and op not in (
            'revert', 'clone', 'copy', 'export', 'destroy', 'hard_shutdown',
            'metadata_export'):
        return XapiFailure('VM_IS_SNAPSHOT', vm, op)
    if op == 'provision' and not record['is_a_template']:
        return XapiFailure('ONLY_PROVISION_TEMPLATE')
    return None


def assert_operation_valid(db, vm, op):
    """Raise what ``operation_error`` finds."""
    error = operation_error(db, vm, op)
    if error is not None:
        raise error


def _concurrent_ok(record, op):
    """xapi_vm_lifecycle.ml, is_allowed_concurrently (its state machine)."""
    current = set(record['current_operations'].values())
    if op == 'hard_shutdown':
        return op not in current
    if op == 'hard_reboot':
        return not current & {'hard_shutdown', 'hard_reboot'}
    return False


def _lacks_feature(record, op, strict):
    """check_op_for_feature: an HVM guest without PV drivers."""
    implicit = (record['power_state'] not in LIVE
                or record['domain_type'] == 'pv' or record['_pv_drivers'])
    if implicit or not strict:
        return False
    return op in _GUEST_FEATURE_OPS or op in _SUSPEND_LIKE


def _vgpus_allow(db, record, op):
    """check_vgpu: only NVIDIA vGPUs on pGPUs with metadata move/suspend."""
    vgpus = db.field('VM', db.by_uuid('VM', record['uuid']), 'VGPUs')
    if not vgpus or op not in _SUSPEND_LIKE:
        return True
    if op == 'migrate_send' and record['power_state'] == 'Halted':
        return True
    if op == 'checkpoint' and record['power_state'] == 'Suspended':
        return True
    return all(gpu.is_suspendable(db, vgpu) for vgpu in vgpus)


def allowed_operations(db, vm):
    """The VM's ``allowed_operations``, as update_allowed_operations sets."""
    return sorted(op for op in POWER_STATES
                  if operation_error(db, vm, op) is None)


def begin(db, vm, op):
    """Check ``op`` and mark it in progress; returns the task ref."""
    assert_operation_valid(db, vm, op)
    task = dblib.new_ref()
    current = dict(db.get('VM', vm)['current_operations'], **{task: op})
    db.set('VM', vm, 'current_operations', current)
    return task


def end(db, vm, task):
    """The operation of ``task`` is over."""
    if vm in db.objects['VM']:
        current = dict(db.get('VM', vm)['current_operations'])
        current.pop(task, None)
        db.set('VM', vm, 'current_operations', current)


def destroy(db, vm):
    """VM.destroy: a halted or suspended VM, with its VGPUs."""
    with db.lock:
        if db.get('VM', vm)['is_control_domain']:
            raise XapiFailure('OPERATION_NOT_ALLOWED',
                              'cannot destroy a control domain')
        assert_operation_valid(db, vm, 'destroy')
        for vgpu in db.field('VM', vm, 'VGPUs'):
            db.destroy('VGPU', vgpu)
        db.destroy('VM', vm)


def clone(db, vm, new_name, op='clone'):
    """VM.clone / VM.copy / VM.snapshot: the record and VGPUs of a new VM.

    xapi_vm_clone.ml (copy_vm_record): a fresh mac_seed unless it is a
    snapshot, no default_template flag, a snapshot is a template too.
    xapi_vgpu.ml (copy): each VGPU keeps its group, type, device,
    other_config and compatibility metadata, never its placement.
    """
    with db.lock:
        assert_operation_valid(db, vm, op)
        record = db.get('VM', vm)
        fields = {name: value for name, value in record.items()
                  if name not in _SET_BY_XAPI and name != 'name_label'}
        fields['other_config'] = _cloned_other_config(record, op)
        new = db.create('VM', name_label=new_name,
                        domain_type=record['domain_type'], **fields)
        if op == 'snapshot':
            db.set('VM', new, 'is_a_snapshot', True)
            db.set('VM', new, 'is_a_template', True)
            db.set('VM', new, 'snapshot_of', vm)
        finish_create(db, new)
        for vgpu in db.field('VM', vm, 'VGPUs'):
            gpu.vgpu_copy(db, vgpu, new)
        return new


def _cloned_other_config(record, op):
    other = {key: value for key, value in record['other_config'].items()
             if key not in (DEFAULT_TEMPLATE_KEY, 'xensource_internal')}
    if op != 'snapshot':
        other[MAC_SEED] = str(uuidlib.uuid4())
    return other


def register_derived(db):
    """Teach ``db`` the VM fields xapi computes."""
    db.derived[('VM', 'allowed_operations')] = allowed_operations
