"""A domain's memory overhead, as xapi-idl's memory.ml computes it.

Extra internal and external MiB per memory model, shadow pages for the
vCPUs and twice static_max, Xen's pages per vCPU; memory_check.ml turns
it into bytes (vm_compute_memory_overhead).
"""

import math

MIB = 1024 ** 2
PAGES_PER_MIB = 256
# memory.ml: (extra_internal_mib, extra_external_mib) per memory model.
_EXTRA_MIB = {'hvm': (1, 1), 'pvh': (1, 1), 'pv': (0, 1)}


def mib_used(value):
    return -(-int(value) // MIB)


def overhead_mib(record, multiplier=None):
    """memory.ml, overhead_mib for the VM's domain type."""
    static_max = mib_used(record['memory_static_max'])
    vcpus = int(record['VCPUs_max'])
    if multiplier is None:
        multiplier = float(record['HVM_shadow_multiplier'])
    pages = PAGES_PER_MIB * vcpus + 2 * static_max
    shadow = max(1, int(math.floor(-(-pages // PAGES_PER_MIB)
                                   * multiplier)))
    internal, external = _EXTRA_MIB.get(record['domain_type'], (1, 1))
    xen_vcpu = -(-38 * vcpus // PAGES_PER_MIB)  # CA-423172
    return internal + external + shadow + xen_vcpu


def vm_overhead(record):
    """memory_check.ml, vm_compute_memory_overhead, in bytes."""
    return overhead_mib(record) * MIB


