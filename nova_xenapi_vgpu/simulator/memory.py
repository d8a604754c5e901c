"""Host memory and CPUs: xapi's memory check, overheads, VCPU limits.

The sizes follow xapi-idl's memory.ml (a domain's overhead: extra
internal and external MiB, shadow pages, Xen's per-vCPU pages) and
memory_check.ml (a host's free memory is its total, less the host's
own overhead, less what every VM resident on or scheduled onto it
needs at its dynamic minimum plus its overhead; dom0 is one of them).
"""

from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import overhead
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator.errors import XapiFailure
from nova_xenapi_vgpu.simulator.overhead import MIB


def update_overhead(db, vm):
    """xapi_vm_helpers.ml, update_memory_overhead."""
    db.set('VM', vm, 'memory_overhead', overhead.vm_overhead(db.get('VM', vm)))


def start_memory(record):
    """memory_check.ml, vm_compute_start_memory (Dynamic_min policy): the
    footprint in bytes, normal plus shadow.

    A PV guest uses Linux's shadow multiplier (1.0), the others their own.
    """
    multiplier = 1.0 if record['domain_type'] == 'pv' else None
    target = overhead.mib_used(record['memory_dynamic_min'])
    return (target + overhead.overhead_mib(record, multiplier)) * MIB


def used_memory(record):
    """memory_check.ml, vm_compute_used_memory (Dynamic_min policy)."""
    return int(record['memory_dynamic_min']) + int(record['memory_overhead'])


def host_free(db, host, ignore_vm=None):
    """memory_check.ml, host_compute_free_memory_with_maximum_compression.

    Counts the VMs resident on ``host`` and scheduled onto it (but not
    ``ignore_vm`` as scheduled), never below zero.
    """
    metrics = db.get('host_metrics', db.get('host', host)['metrics'])
    total = metrics['memory_total'] - db.get('host', host)['memory_overhead']
    vms = list(db.field('host', host, 'resident_VMs')) + [
        ref for ref, rec in db.objects['VM'].items()
        if rec['scheduled_to_be_resident_on'] == host and ref != ignore_vm]
    used = sum(used_memory(db.get('VM', ref)) for ref in vms)
    return max(0, total - used)


def assert_enough_memory(db, vm, host):
    """xapi_vm_helpers.ml, assert_enough_memory_available.

    :raises: XapiFailure HOST_NOT_ENOUGH_FREE_MEMORY [needed; available].
    """
    needed = start_memory(db.get('VM', vm))
    available = host_free(db, host, ignore_vm=vm)
    if available < needed:
        raise XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', needed, available)


def assert_domain_fits(db, vm, host):
    """squeeze.ml: building the domain on a host short of memory fails
    with Cannot_free_this_much_memory, in KiB, which xapi_xenops.ml
    reports as HOST_NOT_ENOUGH_FREE_MEMORY.

    :raises: XapiFailure HOST_NOT_ENOUGH_FREE_MEMORY [needed; free] KiB.
    """
    needed = start_memory(db.get('VM', vm))
    available = host_free(db, host, ignore_vm=vm)
    if available < needed:
        raise XapiFailure('HOST_NOT_ENOUGH_FREE_MEMORY', needed // 1024,
                          available // 1024)


def cpu_count(db, host):
    """The host's physical CPUs (host.cpu_info:cpu_count)."""
    return int(db.get('host', host)['cpu_info'].get('cpu_count', 0))


def assert_enough_pcpus(db, vm, host):
    """xapi_vm_helpers.ml, assert_enough_pcpus; platform:vcpu-unrestricted
    lets a VM have more vCPUs than the host has CPUs.

    :raises: XapiFailure HOST_NOT_ENOUGH_PCPUS [vcpus; pcpus].
    """
    record = db.get('VM', vm)
    vcpus, pcpus = int(record['VCPUs_max']), cpu_count(db, host)
    unrestricted = record['platform'].get('vcpu-unrestricted', '').lower()
    if vcpus > pcpus and unrestricted not in ('1', 'true'):
        raise XapiFailure('HOST_NOT_ENOUGH_PCPUS', vcpus, pcpus)


def dmc_enabled(db):
    """Pool_features DMC: off unless pool.restrictions lifts it."""
    restrictions = db.get('pool', db.pool)['restrictions']
    return restrictions.get('restrict_dmc', 'true') == 'false'


def assert_valid_limits(db, vm, limits):
    """xapi_vm_memory_constraints.ml, assert_valid_for_current_context.

    :raises: XapiFailure MEMORY_CONSTRAINT_VIOLATION_MAXPIN [reason],
             MEMORY_CONSTRAINT_VIOLATION_ORDER.
    """
    smin, dmin, dmax, smax = limits
    reason = None
    if not dmc_enabled(db):
        reason = 'DMC disabled'
    elif db.get('VM', vm)['is_control_domain']:
        reason = 'control domain'
    if reason is not None:
        if not (smin <= dmin and dmin == dmax == smax):
            raise XapiFailure('MEMORY_CONSTRAINT_VIOLATION_MAXPIN', reason)
    elif not smin <= dmin <= dmax <= smax:
        raise XapiFailure('MEMORY_CONSTRAINT_VIOLATION_ORDER')


def assert_start_constraints(db, vm):
    """xapi_vm.ml, assert_memory_constraints (a start with ``force``
    skips it): nested-virt, or an SR-IOV vGPU (no populate-on-demand),
    needs memory valid and pinned at static max.

    :raises: XapiFailure MEMORY_CONSTRAINT_VIOLATION_MAXPIN [reason].
    """
    record = db.get('VM', vm)
    nested = record['platform'].get('nested-virt', '').lower() == 'true'
    sriov = any(gpu.implementation(db, db.get('VGPU', v)['type'])
                == 'nvidia_sriov' for v in db.field('VM', vm, 'VGPUs'))
    smin, dmin, dmax, smax = (int(record['memory_%s' % name]) for name in (
        'static_min', 'dynamic_min', 'dynamic_max', 'static_max'))
    pinned = smin <= dmin and dmin == dmax == smax
    for reason, applies in (('nested virt', nested), ('SRIOV vGPU', sriov)):
        if applies and not pinned:
            raise XapiFailure('MEMORY_CONSTRAINT_VIOLATION_MAXPIN', reason)


def set_memory_limits(db, vm, static_min, static_max, dynamic_min,
                      dynamic_max):
    """VM.set_memory_limits (xapi_vm.ml): a halted VM's four limits."""
    vmlib.assert_operation_valid(db, vm, 'changing_memory_limits')
    limits = [_int64(v) for v in (static_min, dynamic_min, dynamic_max,
                                  static_max)]
    assert_valid_limits(db, vm, limits)
    for name, value in zip(('memory_static_min', 'memory_dynamic_min',
                            'memory_dynamic_max', 'memory_static_max'),
                           limits, strict=True):
        db.set('VM', vm, name, value)
    db.set('VM', vm, 'memory_target', limits[1])
    update_overhead(db, vm)


def set_memory(db, vm, value):
    """VM.set_memory: static_max and both dynamic limits to ``value``."""
    static_min = db.get('VM', vm)['memory_static_min']
    set_memory_limits(db, vm, static_min, value, value, value)


def _int64(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise XapiFailure('FIELD_TYPE_ERROR', value) from None


def _vcpu_range_error(value):
    return XapiFailure('INVALID_VALUE', 'VCPU values must satisfy: 0 < '
                       'VCPUs_at_startup \u2264 VCPUs_max', value)


def set_vcpus_max(db, vm, value):
    """VM.set_VCPUs_max: needs Halted (op changing_VCPUs), and
    1 <= VCPUs_at_startup <= value (xapi_vm.ml)."""
    vmlib.assert_operation_valid(db, vm, 'changing_VCPUs')
    value = _int64(value)
    if value < 1 or value < db.get('VM', vm)['VCPUs_at_startup']:
        raise _vcpu_range_error(value)
    db.set('VM', vm, 'VCPUs_max', value)
    update_overhead(db, vm)


def set_vcpus_at_startup(db, vm, value):
    """VM.set_VCPUs_at_startup: 1 <= value <= VCPUs_max, in any power
    state (xapi_vm.ml; message_forwarding.ml takes no operation)."""
    if db.get('VM', vm)['is_control_domain']:
        raise XapiFailure('OPERATION_NOT_ALLOWED',
                          'set_VCPUs_at_startup is not allowed on dom0')
    value = _int64(value)
    if value < 1 or value > db.get('VM', vm)['VCPUs_max']:
        raise _vcpu_range_error(value)
    db.set('VM', vm, 'VCPUs_at_startup', value)
    update_overhead(db, vm)


def handlers():
    """The XAPI calls of this module."""
    return {
        'host.compute_free_memory': lambda ctx, host: host_free(
            ctx.db, _host(ctx.db, host)),
        'host.compute_memory_overhead': lambda ctx, host: ctx.db.get(
            'host', host)['memory_overhead'],
        'VM.compute_memory_overhead': lambda ctx, vm: overhead.vm_overhead(
            ctx.db.get('VM', vm)),
        'VM.set_memory_limits': lambda ctx, vm, smin, smax, dmin, dmax: _(
            set_memory_limits(ctx.db, vm, smin, smax, dmin, dmax)),
        'VM.set_memory': lambda ctx, vm, value: _(set_memory(
            ctx.db, vm, value)),
        'VM.set_VCPUs_max': lambda ctx, vm, value: _(set_vcpus_max(
            ctx.db, vm, value)),
        'VM.set_VCPUs_at_startup': lambda ctx, vm, value: _(
            set_vcpus_at_startup(ctx.db, vm, value)),
    }


def _host(db, host):
    db.get('host', host)
    return host


def _(_result):
    return ''
