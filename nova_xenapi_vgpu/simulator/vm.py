"""VM calls a compute driver makes: create, start, shutdown, destroy."""

from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
_FIELDS = schema.CLASSES['VM'].fields
_RUNNING = ('Running', 'Paused')


def create(db, record):
    """VM.create: the fields given, xapi's defaults for the rest."""
    fields = {}
    for name, value in record.items():
        default = _FIELDS.get(name)
        if default is None or name in ('uuid', 'power_state',
                                       'resident_on', 'attached_PCIs'):
            continue
        fields[name] = _coerce(name, value, default)
    return db.create('VM', **fields)


def _coerce(name, value, default):
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else value == 'true'
        if isinstance(default, (int, float)):
            return type(default)(value)
    except (TypeError, ValueError):
        raise XapiFailure('FIELD_TYPE_ERROR', name) from None
    return value


def _assert_state(db, vm, expected, allowed):
    actual = db.get('VM', vm)['power_state']
    if actual not in allowed:
        raise XapiFailure('VM_BAD_POWER_STATE', vm, expected, actual.lower())


def _vgpus(db, vm):
    return sorted(db.field('VM', vm, 'VGPUs'),
                  key=lambda v: int(db.get('VGPU', v)['device']))


def _plan(db, vm, host):
    """Which pGPU each of the VM's VGPUs would take on ``host``."""
    pending = []
    for vgpu in _vgpus(db, vm):
        pending.append((vgpu, gpu.choose_pgpu(db, vm, host, vgpu, pending)))
    return pending


def start_on(db, vm, host, start_paused=False):
    """VM.start_on: vGPUs must fit on ``host``."""
    with db.lock:
        _assert_state(db, vm, 'halted', ('Halted',))
        db.get('host', host)
        _run(db, vm, host, _plan(db, vm, host), start_paused)


def assert_can_boot_here(db, vm, host):
    """VM.assert_can_boot_here: the vGPU part, a dry run of start_on."""
    with db.lock:
        db.get('host', host)
        _plan(db, vm, host)


def start(db, vm, start_paused=False):
    """VM.start: the pool's hosts ranked by remaining vGPU capacity."""
    with db.lock:
        _assert_state(db, vm, 'halted', ('Halted',))
        for host in _rank_hosts(db, vm):
            try:
                plan = _plan(db, vm, host)
            except XapiFailure:
                continue
            return _run(db, vm, host, plan, start_paused)
        raise XapiFailure('NO_HOSTS_AVAILABLE')


def _rank_hosts(db, vm):
    hosts = sorted(db.objects['host'],
                   key=lambda h: db.get('host', h)['name_label'])
    vgpus = _vgpus(db, vm)
    affinity = db.get('VM', vm)['affinity']
    if not vgpus:
        return sorted(hosts, key=lambda h: h != affinity)
    record = db.get('VGPU', vgpus[0])
    group, vgpu_type = record['GPU_group'], record['type']
    breadth = (db.get('GPU_group', group)['allocation_algorithm']
               == 'breadth_first')
    capacity = {h: gpu.host_capacity(db, h, group, vgpu_type)
                for h in hosts}
    return sorted(hosts, key=lambda h: -capacity[h] if breadth
                  else capacity[h])


def _run(db, vm, host, plan, start_paused):
    for vgpu, pgpu in plan:
        db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', pgpu)
    for vgpu, pgpu in plan:
        db.set('VGPU', vgpu, 'resident_on', pgpu)
        db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', NULL)
        db.set('VGPU', vgpu, 'currently_attached', True)
    db.set('VM', vm, 'resident_on', host)
    db.set('VM', vm, 'power_state', 'Paused' if start_paused else 'Running')


def shutdown(db, vm, hard=False):
    """VM.clean_shutdown / hard_shutdown: halts and frees the pGPUs."""
    with db.lock:
        allowed = _RUNNING if hard else ('Running',)
        _assert_state(db, vm, 'running', allowed)
        for vgpu in _vgpus(db, vm):
            db.set('VGPU', vgpu, 'resident_on', NULL)
            db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', NULL)
            db.set('VGPU', vgpu, 'currently_attached', False)
        db.set('VM', vm, 'resident_on', NULL)
        db.set('VM', vm, 'power_state', 'Halted')


def destroy(db, vm):
    """VM.destroy: a halted VM, with its VGPUs."""
    with db.lock:
        if db.get('VM', vm)['is_control_domain']:
            raise XapiFailure('OPERATION_NOT_ALLOWED',
                              'cannot destroy a control domain')
        _assert_state(db, vm, 'halted', ('Halted',))
        for vgpu in db.field('VM', vm, 'VGPUs'):
            db.destroy('VGPU', vgpu)
        db.destroy('VM', vm)
