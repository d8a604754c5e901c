"""An instance's VGPU objects: created for a claim, destroyed, reconciled.

Every VGPU this plugin creates carries, in its ``other_config``, this
host's uuid, the Nova instance uuid and the claimed slot's uuid; that is
how stopped instances keep their claims, how a lost ``VGPU.create``
answer is reconciled, and how orphans are found.
"""

import dataclasses

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.xapi import records
from nova_xenapi_vgpu.xapi import writes

LOG = logging.getLogger(__name__)
MAX_DEVICE = 20  # xapi_vgpu.ml: device numbers 0..20 on a VM


def read_vm(client, vm):
    """The VM's record.

    :raises: XapiError (HANDLE_INVALID for an unknown VM), RecordError.
    """
    return records.Vm.from_xapi(vm, client.call('VM.get_record', vm))


def check_attachable(inventory, vm_record, slots, present=()):
    """Refuse, before any XAPI call that changes state, what XAPI would
    refuse later: a running or PV VM, a mix of types no VM may hold
    (with ``present``, the VGPUs already on the VM), more vGPUs than
    device numbers.

    :raises: VgpuAttachRefused saying why.
    """
    name = vm_record.name_label or vm_record.uuid
    if vm_record.power_state != 'Halted':
        raise exception.VgpuAttachRefused(
            vm=name, reason='it is %s; vGPUs are added to halted VMs only'
            % vm_record.power_state.lower())
    if vm_record.domain_type == 'pv' or (
            not vm_record.domain_type and not vm_record.HVM_boot_policy):
        raise exception.VgpuAttachRefused(
            vm=name, reason='it is not HVM; XAPI gives vGPUs to HVM guests '
                            'only (FEATURE_REQUIRES_HVM)')
    types = [s.vgpu_type for s in slots] + [
        inventory.types[v.type] for v in present
        if v.type in inventory.types]
    reason = incompatible(types) or too_many(len(present), len(slots))
    if reason:
        raise exception.VgpuAttachRefused(vm=name, reason=reason)


def too_many(present, more):
    """Why ``more`` vGPUs do not fit beside ``present`` ones, or None."""
    if present + more > MAX_DEVICE + 1:
        return ('XAPI numbers a VM\'s vGPUs 0 to %d: %d more do not fit '
                'beside %d' % (MAX_DEVICE, more, present))
    return None


def already_attached(inventory, vm, mine, requests):
    """What an attach of ``requests`` finds done: the refs (device order)
    when ``mine`` (the instance's VGPUs on the VM) fulfil them, None
    when some or none are there and the rest can be made.

    :raises: VgpuAttachRefused when the instance holds other vGPUs.
    """
    wanted = sum(r.count for r in requests)
    allowed = {t for r in requests for t in r.vgpu_types}
    names = [inventory.types[v.type].model_name if v.type in
             inventory.types else v.type for v in mine.values()]
    if len(mine) > wanted or any(n not in allowed for n in names):
        raise exception.VgpuAttachRefused(
            vm=vm, reason='the instance already has vGPU(s) on it (%s); '
            'detach them first' % ', '.join(sorted(names)))
    if len(mine) == wanted:
        return in_device_order(mine)
    return None


def still_wanted(inventory, mine, requests):
    """``requests`` less the vGPUs ``mine`` (the instance's VGPUs on the
    VM, of the requested types) already give: what a retry completes."""
    left = [inventory.types[v.type].model_name for v in mine.values()
            if v.type in inventory.types]
    wanted = []
    for request in requests:
        count = request.count
        for name in list(left):
            if count and name in request.vgpu_types:
                left.remove(name)
                count -= 1
        if count:
            wanted.append(dataclasses.replace(request, count=count))
    return wanted


def in_device_order(vgpus):
    """The refs of ``{ref: Vgpu}`` by device number."""
    return [ref for ref, _ in sorted(vgpus.items(),
                                     key=lambda i: int(i[1].device or 0))]


def free_devices(present, count):
    """``count`` device numbers no VGPU of the VM uses, lowest first."""
    used = {int(v.device or 0) for v in present.values()}
    free = [n for n in range(MAX_DEVICE + 1) if n not in used]
    return [str(n) for n in free[:count]]


def incompatible(types):
    """Why XAPI gives no VM these vGPU types together (VGPU.create's
    VGPU_TYPE_NOT_COMPATIBLE, compatible_types_in_vm), or None."""
    if len(types) > 1 and any(
            t.ref != types[0].ref or t.ref not in t.compatible_types_in_vm
            for t in types):
        return ('XAPI allows no VM these vGPUs together: %s '
                '(compatible_types_in_vm)' % ', '.join(
                    t.model_name for t in types))
    return None


def create(client, host_uuid, instance, vm, slots, devices=None,
           made=None):
    """One VGPU per claimed slot on ``devices`` (default 0, 1, ...),
    tagged; each ref is appended to ``made`` as soon as XAPI made it,
    so a rollback knows exactly what this call created.

    A lost answer to a VGPU.create is reconciled through its tag, so a
    VGPU is made once. Returns the VGPU refs in device order.

    :raises: XapiError, XapiConnectionError.
    """
    made = [] if made is None else made
    devices = devices or [str(n) for n in range(len(slots))]
    for device, slot in zip(devices, slots, strict=True):
        config = {tags.HOST: host_uuid, tags.INSTANCE: instance,
                  tags.DEVICE: slot.uuid, tags.VM: vm}
        made.append(writes.create_vgpu(
            client, vm, slot.group_ref, device, config,
            slot.vgpu_type.ref, '%s/%s' % (instance, device)))
    return made


def on_vm(client, vm):
    """``{ref: Vgpu}`` of every VGPU of ``vm``."""
    return records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records_where', 'field "VM" = "%s"' % vm))


def owned(vgpus, instance):
    """The VGPUs of ``{ref: Vgpu}`` that ``instance`` owns (copies that
    snapshots and clones carry are not its)."""
    return {ref: v for ref, v in vgpus.items()
            if v.other_config.get(tags.INSTANCE) == instance
            and not tags.is_copy(v)}


def of_instance(client, vm, instance):
    """``{ref: Vgpu}`` of ``vm`` tagged with ``instance``."""
    return owned(on_vm(client, vm), instance)


def destroy(client, vm, instance, vgpus=None):
    """Destroy the instance's VGPUs on ``vm`` (a halted VM); idempotent.
    ``vgpus``: ``of_instance``'s answer, where the caller has it.

    :raises: VgpuAttachRefused for a running VM; XapiError.
    """
    if vgpus is None:
        vgpus = of_instance(client, vm, instance)
    if any(v.currently_attached for v in vgpus.values()):
        raise exception.VgpuAttachRefused(
            vm=vm, reason='it runs; stop it first (its vGPUs stay)')
    return destroy_made(client, vgpus)


def destroy_made(client, refs):
    """Destroy VGPUs by ref (those one call made); idempotent.

    :raises: XapiError (OPERATION_NOT_ALLOWED while the VM runs).
    """
    for ref in sorted(refs):
        try:
            client.call('VGPU.destroy', ref)
        except exception.HandleInvalid:
            LOG.debug('VGPU %s was already gone', ref)
    return sorted(refs)


@dataclasses.dataclass(frozen=True)
class Orphan:
    """A VGPU this plugin made that no known instance owns, or a copy
    of one (``copy``) that XAPI made with the VM's snapshot or clone."""

    vgpu: str
    vm: str
    instance: str
    reason: str
    vm_power_state: str | None
    copy: bool = False


def find_orphans(client, host_uuid, known_instances):
    """This host's tagged VGPUs of instances not in ``known_instances``,
    of VMs that no longer exist, and copies (snapshots, clones,
    templates) carrying this project's tags.

    :raises: XapiError, XapiConnectionError, RecordError.
    """
    vgpus = records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records'))
    vms = records.decode_all(records.Vm, client.call('VM.get_all_records'))
    known = set(known_instances)
    orphans = []
    for ref, vgpu in sorted(vgpus.items()):
        instance = vgpu.other_config.get(tags.INSTANCE)
        if vgpu.other_config.get(tags.HOST) != host_uuid or not instance:
            continue
        vm = vms.get(vgpu.VM)
        if vm is None:
            orphans.append(Orphan(ref, vgpu.VM or '', instance,
                                  'its VM no longer exists', None))
        elif tags.is_copy(vgpu):
            made_for = vgpu.other_config[tags.VM]
            orphans.append(Orphan(
                ref, vgpu.VM, instance, 'a copy (%s) of a VGPU made for %s: '
                'its tags are no claim' % (_kind(vm), made_for),
                vm.power_state, copy=True))
        elif instance not in known:
            orphans.append(Orphan(ref, vgpu.VM, instance,
                                  'instance unknown to Nova',
                                  vm.power_state))
    return orphans


def _kind(vm):
    if vm.is_a_snapshot:
        return 'snapshot'
    return 'template' if vm.is_a_template else 'clone or copy'


def reap_orphans(client, orphans):
    """Destroy the orphans on halted (or vanished) VMs; the rest stay.
    A copy keeps its VGPU (the snapshot or clone needs it) and loses
    this project's tags, in one write.

    Returns (destroyed or untagged, kept).
    """
    destroyed, kept = [], []
    for orphan in orphans:
        if orphan.copy:
            untag(client, orphan.vgpu)
        elif orphan.vm_power_state not in (None, 'Halted'):
            kept.append(orphan)
            continue
        else:
            try:
                client.call('VGPU.destroy', orphan.vgpu)
            except exception.HandleInvalid:
                pass
        destroyed.append(orphan)
    return destroyed, kept


def untag(client, vgpu):
    """Drop this project's keys from a VGPU's other_config (one write).

    :raises: XapiError, XapiConnectionError.
    """
    config = client.call('VGPU.get_other_config', vgpu)
    client.call('VGPU.set_other_config', vgpu, {
        k: v for k, v in config.items() if k not in tags.OURS})


def demand_of(vgpus):
    """The (group, type) of each VGPU, in device order."""
    return tuple((v.GPU_group, v.type) for v in sorted(
        vgpus.values(), key=lambda v: int(v.device)))


def assert_movable(inventory, vm, vgpus, operation):
    """Only NVIDIA vGPUs on pGPUs with NVIDIA's compatibility metadata
    suspend or live-migrate (xapi_vm_lifecycle.ml, check_vgpu); the
    inventory of the host the VM runs on has both.

    :raises: OperationRefused naming the vGPU type and the way out.
    """
    for vgpu in vgpus.values():
        vgpu_type = inventory.types[vgpu.type]
        nvidia = vgpu_type.implementation in ('nvidia', 'nvidia_sriov')
        pgpu = inventory.pgpus.get(vgpu.resident_on)
        metadata = pgpu.compatibility_metadata if pgpu else {}
        if not nvidia or 'nvidia' not in metadata:
            hint = ('; use a cold migration' if operation == 'live-migrate'
                    else '; stop it instead')
            raise exception.OperationRefused(
                operation=operation, vm=vm, reason='XAPI cannot %s a VM '
                'with a %s vGPU (%s)%s' % (operation, vgpu_type.model_name,
                                           vgpu_type.implementation, hint))


def retag_host(client, vgpus, host_uuid):
    """The VGPUs (``{ref: Vgpu}``) now belong to ``host_uuid``'s claims:
    one VGPU.set_other_config each, so a tag names the old host or the
    new one, never none. Returns the refs retagged.

    :raises: XapiError, XapiConnectionError.
    """
    changed = []
    for ref, vgpu in sorted(vgpus.items()):
        if vgpu.other_config.get(tags.HOST) == host_uuid:
            continue
        client.call('VGPU.set_other_config', ref, dict(
            vgpu.other_config, **{tags.HOST: host_uuid}))
        changed.append(ref)
    return changed


def follow_vm(client, vm, instance):
    """Settle a move: the instance's VGPUs on ``vm`` are tagged with the
    host XAPI says the VM runs on (a halted VM's stay as they are). The
    one place a live move (pool_migrate or migrate_send), its lost
    answer, and a kill in the middle end. Returns the refs retagged.

    :raises: XapiError, XapiConnectionError.
    """
    host = client.call('VM.get_resident_on', vm)
    if host in (None, '', records.NULL_REF):
        return []
    return retag_host(client, of_instance(client, vm, instance),
                      client.call('host.get_uuid', host))


def follow_running(client):
    """``follow_vm`` for every tagged VGPU of a running VM in the pool
    (at start-up: a move killed before its retag). Returns the refs
    retagged.

    :raises: XapiError, XapiConnectionError, RecordError.
    """
    vgpus = records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records'))
    hosts = {ref: h['uuid'] for ref, h in client.call(
        'host.get_all_records').items()}
    vms = records.decode_all(records.Vm, client.call('VM.get_all_records'))
    changed = []
    for ref, vgpu in sorted(vgpus.items()):
        vm = vms.get(vgpu.VM)
        if (vm is None or vm.resident_on not in hosts
                or tags.INSTANCE not in vgpu.other_config
                or tags.is_copy(vgpu)):
            continue
        changed += retag_host(client, {ref: vgpu}, hosts[vm.resident_on])
    return changed
