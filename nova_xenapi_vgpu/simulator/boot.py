"""Starting and stopping VMs: host choice, the boot window, GPU devices.

A start reserves first (xapi's allocate_vm_to_host, under the global
lock: ``scheduled_to_be_resident_on`` on VM and VGPUs, the PCI devices),
then plugs the devices after the boot window (``resident_on``,
``currently_attached``, ``attached_PCIs``, power state). During the
window other calls see the reservation and the VM still ``Halted``; a
failure there releases it.
"""

import base64
import itertools
import json
import time

from nova_xenapi_vgpu.simulator import devices
from nova_xenapi_vgpu.simulator import gpu
from nova_xenapi_vgpu.simulator import memory
from nova_xenapi_vgpu.simulator import network
from nova_xenapi_vgpu.simulator import schema
from nova_xenapi_vgpu.simulator import storage
from nova_xenapi_vgpu.simulator import vm as vmlib
from nova_xenapi_vgpu.simulator.errors import XapiFailure

NULL = schema.NULL
_domids = itertools.count(1)


def vgpus_of(db, vm):
    """The VM's VGPUs by device number."""
    return sorted(db.field('VM', vm, 'VGPUs'),
                  key=lambda v: int(db.get('VGPU', v)['device']))


def plan(db, vm, host):
    """Which pGPU each VGPU would take on ``host`` (a dry run).

    xapi_vm_helpers.ml, assert_gpus_available: each VGPU in turn, counting
    the ones placed before it.

    :raises: XapiFailure VM_REQUIRES_VGPU / VM_REQUIRES_GPU.
    """
    pending = []
    for vgpu in vgpus_of(db, vm):
        pending.append((vgpu, gpu.choose_pgpu(db, vm, host, vgpu, pending)))
    return pending


def assert_can_boot_here(db, vm, host, memory_check=True, sr_check=True):
    """VM.assert_can_boot_here (xapi_vm_helpers.ml, in its order): the
    SRs, the networks, IOMMU, the GPUs, memory, CPUs; returns the plan.

    :raises: XapiFailure HANDLE_INVALID, VM_REQUIRES_SR,
             VM_REQUIRES_NETWORK, VM_REQUIRES_IOMMU, VM_REQUIRES_VGPU,
             VM_REQUIRES_GPU, HOST_NOT_ENOUGH_FREE_MEMORY,
             HOST_NOT_ENOUGH_PCPUS.
    """
    db.get('host', host)
    if sr_check:
        storage.assert_can_see_srs(db, vm, host)
    network.assert_can_see_networks(db, vm, host)
    needs_iommu = any(gpu.requires_passthrough(db, db.get('VGPU', v)['type'])
                      for v in vgpus_of(db, vm))
    if needs_iommu and db.get('host', host)['chipset_info'].get(
            'iommu') != 'true':
        raise XapiFailure('VM_REQUIRES_IOMMU', host)
    placement = plan(db, vm, host)
    if memory_check:
        memory.assert_enough_memory(db, vm, host)
    memory.assert_enough_pcpus(db, vm, host)
    return placement


def choose_host(db, vm):
    """VM.start's host, as xapi_vm_helpers.ml chooses it.

    Keep the hosts where every VGPU fits; group them by equal remaining
    capacity for the first VGPU (fullest group first for depth_first,
    emptiest for breadth_first); in each group the VM's ``affinity``
    host first, then the others by name (xapi picks among them by load).
    When no host passes every check, choose_host_for_vm_no_wlb tries
    again without the memory check; the third value says so.

    :raises: XapiFailure NO_HOSTS_AVAILABLE.
    """
    hosts = _ranked_hosts(db, vm)
    for memory_check in (True, False):
        for host in hosts:
            try:
                return host, assert_can_boot_here(
                    db, vm, host, memory_check), memory_check
            except XapiFailure:
                continue
    raise XapiFailure('NO_HOSTS_AVAILABLE')


def _ranked_hosts(db, vm):
    affinity = db.get('VM', vm)['affinity']
    hosts = sorted(db.objects['host'], key=lambda h: (
        h != affinity, db.get('host', h)['name_label']))
    vgpus = vgpus_of(db, vm)
    if not vgpus:
        return hosts
    record = db.get('VGPU', vgpus[0])
    group, vgpu_type = record['GPU_group'], record['type']
    fits = [h for h in hosts if _fits(db, vm, h)]
    breadth = (db.get('GPU_group', group)['allocation_algorithm']
               == 'breadth_first')
    capacity = {h: gpu.host_capacity(db, h, group, vgpu_type) for h in fits}
    # sorted() is stable: within a capacity group the affinity order stays.
    return sorted(fits, key=lambda h: -capacity[h] if breadth
                  else capacity[h])


def _fits(db, vm, host):
    try:
        plan(db, vm, host)
    except XapiFailure:
        return False
    return True


def start(db, vm, host=None, paused=False, op='start', plug_fault=None,
          force=False):
    """VM.start (``host`` None), start_on, resume and resume_on; a start
    not forced checks the memory constraints first, a resume the CPU
    (xapi_vm.ml).

    :raises: XapiFailure with xapi's code; nothing stays reserved.
    """
    unforced = None if force else op.split('_')[0]  # start or resume
    in_two_phases(db, vm, op, lambda: _reserve(db, vm, host, unforced),
                  lambda chosen: _plug(db, vm, chosen, paused), plug_fault)


def in_two_phases(db, vm, op, reserve, commit, plug_fault=None):
    """Run ``op``: ``reserve()`` under the lock, the boot window if it
    reserved anything, then ``commit(reserved)`` under the lock. Any
    failure (an injected ``METHOD@plug`` fault, a cancelled task)
    releases the reservation.

    :raises: XapiFailure.
    """
    with db.lock:
        task = vmlib.begin(db, vm, op)
        try:
            reserved = reserve()
        except XapiFailure:
            release(db, vm)
            vmlib.end(db, vm, task)
            raise
    if reserved and db.start_delay_ms:
        time.sleep(db.start_delay_ms / 1000.0)
    with db.lock:
        try:
            error = plug_fault() if plug_fault else None
            if error:
                raise XapiFailure(*error)
            commit(reserved)
        except XapiFailure:
            release(db, vm)
            raise
        finally:
            vmlib.end(db, vm, task)


def _reserve(db, vm, host, unforced=None):
    """allocate_vm_to_host: the host, then vgpuops.ml's create_vgpus;
    ``unforced``: 'start' or 'resume' runs that operation's checks."""
    if unforced == 'start':
        memory.assert_start_constraints(db, vm)
    if host is None:
        host, placement, memory_checked = choose_host(db, vm)
        if not memory_checked:
            memory.assert_domain_fits(db, vm, host)
    else:
        placement = assert_can_boot_here(db, vm, host)
    if unforced == 'resume':
        assert_cpu_compatible(db, vm, host)
    if placement and db.get('VM', vm)['domain_type'] != 'hvm':
        raise XapiFailure('FEATURE_REQUIRES_HVM',
                          'vGPU- and GPU-passthrough needs HVM')
    for vgpu, pgpu in placement:
        needs = gpu.requires_passthrough(db, db.get('VGPU', vgpu)['type'])
        if needs != 'PF' and not gpu.feature_enabled(db, 'VGPU'):
            raise XapiFailure('LICENCE_RESTRICTION', 'VGPU')
        db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', pgpu)
        if needs:
            db.set('VGPU', vgpu, 'PCI', device_for(db, pgpu, needs))
    db.set('VM', vm, 'scheduled_to_be_resident_on', host)
    return host


def assert_cpu_compatible(db, vm, host):
    """cpuid_helpers.ml, assert_vm_is_compatible (the vendor part; the
    simulated CPUs have no feature sets): a VM last booted on another
    vendor's CPU may not resume here.

    :raises: XapiFailure VM_INCOMPATIBLE_WITH_THIS_HOST [vm, host, why].
    """
    booted = db.get('VM', vm)['last_boot_CPU_flags'].get('vendor')
    if booted is not None and booted != _vendor(db, host):
        raise XapiFailure(
            'VM_INCOMPATIBLE_WITH_THIS_HOST', vm, host,
            'VM last booted on a host which had a CPU from a different '
            'vendor.')


def _vendor(db, host):
    return db.get('host', host)['cpu_info'].get('vendor')


def device_for(db, pgpu, needs):
    """The pGPU's own PCI device, or a free virtual function of it."""
    pf = db.get('PGPU', pgpu)['PCI']
    if needs == 'PF':
        return pf
    taken = {db.get('VGPU', v)['PCI'] for v in db.objects['VGPU']}
    for vf in sorted(db.objects['PCI'], key=lambda p: db.get(
            'PCI', p)['pci_id']):
        record = db.get('PCI', vf)
        if (record['_physical_function'] == pf and vf not in taken
                and not gpu.attached_vms(db, vf)):
            return vf
    # vgpuops.ml: capacity said yes, so no free function is xapi's bug too.
    raise XapiFailure('INTERNAL_ERROR', 'No free virtual function found')


def _plug(db, vm, host, paused):
    """The devices are plugged: the VM runs where it was scheduled."""
    pcis = []
    for vgpu in vgpus_of(db, vm):
        record = db.get('VGPU', vgpu)
        pgpu = record['scheduled_to_be_resident_on']
        db.set('VGPU', vgpu, 'resident_on', pgpu)
        db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', NULL)
        db.set('VGPU', vgpu, 'currently_attached', True)
        if gpu.is_nvidia(db, vgpu):
            db.set('VGPU', vgpu, 'compatibility_metadata',
                   vgpu_metadata(db, vm, pgpu))
        if record['PCI'] != NULL:
            pcis.append(record['PCI'])
    pcis += other_config_pcis(db, vm, host)
    db.set('VM', vm, 'attached_PCIs', pcis)
    db.set('VM', vm, 'resident_on', host)
    db.set('VM', vm, 'scheduled_to_be_resident_on', NULL)
    db.set('VM', vm, 'domid', next(_domids))
    db.set('VM', vm, 'last_boot_CPU_flags', {'vendor': _vendor(db, host)})
    db.set('VM', vm, 'power_state', 'Paused' if paused else 'Running')
    devices.attach(db, vm)


def vgpu_metadata(db, vm, pgpu):
    """What gpumon reports of a running NVIDIA vGPU (an opaque blob)."""
    pgpu_blob = _decode(db.get('PGPU', pgpu)['compatibility_metadata'])
    blob = dict(pgpu_blob, guest_driver_migratable=db.get(
        'VM', vm)['_guest_driver_migratable'])
    return {gpu.NVIDIA_KEY: base64.b64encode(
        json.dumps(blob, sort_keys=True).encode()).decode()}


def _decode(metadata):
    return json.loads(base64.b64decode(metadata[gpu.NVIDIA_KEY]))


def other_config_pcis(db, vm, host):
    """PCI devices passed through by ``other_config:pci`` (pciops.ml).

    The value is ``N/dddd:bb:dd.f`` entries separated by commas.
    """
    wanted = set()
    for entry in db.get('VM', vm)['other_config'].get('pci', '').split(','):
        _, _, address = entry.strip().partition('/')
        wanted.add(address.lower())
    return sorted(p for p, r in db.objects['PCI'].items()
                  if r['host'] == host and r['pci_id'] in wanted)


def release(db, vm):
    """Clear what a start reserved and the plug did not take."""
    for vgpu in vgpus_of(db, vm):
        record = db.get('VGPU', vgpu)
        if record['scheduled_to_be_resident_on'] != NULL:
            db.set('VGPU', vgpu, 'scheduled_to_be_resident_on', NULL)
            if record['resident_on'] == NULL:
                db.set('VGPU', vgpu, 'PCI', NULL)
    db.set('VM', vm, 'scheduled_to_be_resident_on', NULL)


def unplug(db, vm, power_state):
    """The domain is gone: free the pGPUs and devices (force_state_reset).

    Halting also clears NVIDIA's vGPU metadata; suspending keeps it.
    """
    for vgpu in vgpus_of(db, vm):
        for field, value in (('resident_on', NULL),
                             ('scheduled_to_be_resident_on', NULL),
                             ('currently_attached', False), ('PCI', NULL)):
            db.set('VGPU', vgpu, field, value)
        if power_state == 'Halted':
            db.set('VGPU', vgpu, 'compatibility_metadata', {})
    host = db.get('VM', vm)['resident_on']
    db.set('VM', vm, 'attached_PCIs', [])
    db.set('VM', vm, 'resident_on', NULL)
    db.set('VM', vm, 'domid', -1)
    db.set('VM', vm, 'power_state', power_state)
    devices.detach(db, vm, host)


def shutdown(db, vm, hard=False, cancelled=None):
    """VM.clean_shutdown / hard_shutdown. A clean one waits for the guest
    (``db.guest_shutdown_ms``; None: the guest ignores the request) up to
    xapi's domain_shutdown_total_timeout (``db.shutdown_timeout_s``), then
    fails VM_SHUTDOWN_TIMEOUT [vm, timeout] (xapi_xenops.ml); a cancelled
    task stops waiting (TASK_CANCELLED) and the VM runs on."""
    wait = 0 if hard else db.guest_shutdown_ms
    with db.lock:
        task = vmlib.begin(db, vm, 'hard_shutdown' if hard
                           else 'clean_shutdown')
        if wait == 0:
            return _halt(db, vm, task)
    try:
        _await_guest(db, vm, wait, cancelled)
    except XapiFailure:
        with db.lock:
            vmlib.end(db, vm, task)
        raise
    with db.lock:
        _halt(db, vm, task)


def _halt(db, vm, task):
    if db.get('VM', vm)['power_state'] != 'Halted':
        unplug(db, vm, 'Halted')
    vmlib.end(db, vm, task)


def _await_guest(db, vm, wait_ms, cancelled):
    """Until the guest halts (``wait_ms``) or xapi gives up waiting."""
    limit = db.shutdown_timeout_s
    halts = wait_ms is not None and wait_ms / 1000.0 <= limit
    deadline = time.monotonic() + (wait_ms / 1000.0 if halts else limit)
    while time.monotonic() < deadline:
        error = cancelled() if cancelled else None
        if error:
            raise XapiFailure(*error)
        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
    if not halts:
        # OCaml's string_of_float: 1200. for 1200.0
        raise XapiFailure('VM_SHUTDOWN_TIMEOUT', vm,
                          repr(float(limit)).rstrip('0'))


def suspend(db, vm):
    """VM.suspend: NVIDIA vGPUs with pGPU metadata only (check_vgpu)."""
    with db.lock:
        task = vmlib.begin(db, vm, 'suspend')
        unplug(db, vm, 'Suspended')
        vmlib.end(db, vm, task)
