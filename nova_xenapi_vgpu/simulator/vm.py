"""VM records and xapi's operation checks: create, destroy, clone, copy.

The checks follow xapi_vm_lifecycle.ml (check_operation_error): blocked
operations, the power states an operation needs, operations already in
progress, guest features, then the vGPU rule.
"""

from nova_xenapi_vgpu.simulator import db as dblib
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
_FIELDS = schema.CLASSES['VM'].fields
_SET_BY_XAPI = frozenset({'uuid', 'power_state', 'resident_on',
                          'attached_PCIs', 'domain_type', 'domid',
                          'current_operations', 'snapshot_of'})
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
}
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
    return db.create('VM', **fields)


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
    if _lacks_feature(record, op, strict):
        return XapiFailure('VM_LACKS_FEATURE', vm)
    if not _vgpus_allow(db, record, op):
        return XapiFailure('VM_HAS_VGPU', vm)
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
    """VM.clone / VM.copy / VM.snapshot: a new VM with copies of the VGPUs.

    xapi_vgpu.ml (copy): each VGPU keeps its group, type, device,
    other_config and compatibility metadata, never its placement.
    """
    with db.lock:
        assert_operation_valid(db, vm, op)
        record = db.get('VM', vm)
        fields = {name: value for name, value in record.items()
                  if name not in _SET_BY_XAPI and name != 'name_label'}
        new = db.create('VM', name_label=new_name,
                        domain_type=record['domain_type'], **fields)
        if op == 'snapshot':
            db.set('VM', new, 'is_a_snapshot', True)
            db.set('VM', new, 'snapshot_of', vm)
        for vgpu in db.field('VM', vm, 'VGPUs'):
            gpu.vgpu_copy(db, vgpu, new)
        return new


def register_derived(db):
    """Teach ``db`` the VM fields xapi computes."""
    db.derived[('VM', 'allowed_operations')] = allowed_operations
