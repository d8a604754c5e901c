"""A running domain's devices and metrics: what a start plugs and a
halt unplugs besides the GPUs (xapi_xenops.ml keeps the VBDs', VIFs'
``currently_attached`` and the VM_metrics in step with the domain)."""

import xmlrpc.client

from nova_xenapi_vgpu.simulator import vbd as vbdlib


def attach(db, vm):
    """The domain runs: its disks and VIFs are plugged, metrics set."""
    record = db.get('VM', vm)
    for vbd in db.field('VM', vm, 'VBDs'):
        vbdlib.attach(db, vbd)
    for vif in db.field('VM', vm, 'VIFs'):
        db.set('VIF', vif, 'currently_attached', True)
    metrics = record['metrics']
    if metrics in db.objects['VM_metrics']:
        for field, value in (
                ('memory_actual', int(record['memory_dynamic_max'])),
                ('VCPUs_number', int(record['VCPUs_at_startup'])),
                ('start_time', xmlrpc.client.DateTime()),
                ('hvm', record['domain_type'] == 'hvm'),
                ('current_domain_type', record['domain_type'])):
            db.set('VM_metrics', metrics, field, value)
    touch_host(db, record['resident_on'])


def detach(db, vm, host):
    """The domain is gone: nothing of it is plugged any more."""
    for vbd in db.field('VM', vm, 'VBDs'):
        db.set('VBD', vbd, 'currently_attached', False)
    for vif in db.field('VM', vm, 'VIFs'):
        db.set('VIF', vif, 'currently_attached', False)
    metrics = db.get('VM', vm)['metrics']
    if metrics in db.objects['VM_metrics']:
        db.set('VM_metrics', metrics, 'memory_actual', 0)
        db.set('VM_metrics', metrics, 'VCPUs_number', 0)
        db.set('VM_metrics', metrics, 'current_domain_type', 'unspecified')
    touch_host(db, host)


def touch_host(db, host):
    """The host's metrics changed (its free memory is derived)."""
    if host in db.objects['host']:
        metrics = db.get('host', host)['metrics']
        if metrics in db.objects['host_metrics']:
            db.touch('host_metrics', metrics)


def memory_free(db, metrics):
    """host_metrics.memory_free (deprecated): total, less the host's
    overhead and what its domains hold now (memory_actual)."""
    for host, record in db.objects['host'].items():
        if record['metrics'] == metrics:
            used = sum(_actual(db, vm)
                       for vm in db.field('host', host, 'resident_VMs'))
            total = db.get('host_metrics', metrics)['memory_total']
            return max(0, total - record['memory_overhead'] - used)
    return 0


def _actual(db, vm):
    metrics = db.get('VM', vm)['metrics']
    if metrics in db.objects['VM_metrics']:
        return db.get('VM_metrics', metrics)['memory_actual']
    return 0


def register_derived(db):
    """Teach ``db`` the fields computed from running domains."""
    db.derived[('host_metrics', 'memory_free')] = memory_free
