"""Building, starting and stopping an instance's VM with its vGPUs.

The build: under the host's writer lease (``writer``: one writer per
host, across processes) the pools are read afresh, the claim made, the
VM checked and the VGPUs created (only those the instance lacks: attach
is idempotent), whose tags make them count for this host in place of
the claim; then ``VM.start_on`` this host (a plain ``VM.start`` could
pick another host of the pool). If anything fails, the VGPUs this
build made are destroyed, the claim is freed and the first error is
raised again with its XAPI code: nothing is left behind and the same
build can be retried. A start or move whose answer was lost is settled
by asking XAPI (``settle``) before anything is undone. Resizes and
cold migrations record their progress on the VM (``moves``) before
they destroy anything.
"""

from oslo_log import log as logging
from oslo_utils import excutils

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import dom0 as dom0lib
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vm import moves
from nova_xenapi_vgpu.vm import settle
from nova_xenapi_vgpu.vm import vgpus as vgpulib
from nova_xenapi_vgpu.vm import writer as writerlib
from nova_xenapi_vgpu.xapi import records

LOG = logging.getLogger(__name__)
# clean_shutdown failures after which hard_shutdown is right.
_NEEDS_HARD = ('VM_LACKS_FEATURE', 'VM_LACKS_FEATURE_SHUTDOWN')


class Builder:
    """What a compute driver calls for one host's vGPUs."""

    def __init__(self, client, stats, host_ref, dom0=None):
        self.client = client
        self.stats = stats
        self.host_ref = host_ref
        self.dom0 = dom0
        # One writer per host (this process's threads, other processes):
        # a claim and the VGPUs made for it, a move's destroy and the
        # hold that replaces it.
        self.writer = writerlib.HostWriter(client, host_ref)

    @classmethod
    def for_host(cls, client, host_ref, enabled=()):
        """A Builder over this host's pools, NUMA from its dom0 plugin.

        :raises: XapiError, XapiConnectionError, RecordError, PluginError.
        """
        dom0 = dom0lib.Dom0Plugin(client, host_ref)
        inventory = reader.read_inventory(client, host_ref, dom0)
        return cls(client, statslib.VgpuStats(inventory, enabled), host_ref,
                   dom0)

    @property
    def host_uuid(self):
        """This host's uuid."""
        return self.stats.inventory.host_uuid

    def attach(self, instance, vm, requests, numa_cells=None):
        """Claim ``requests`` and create the VM's VGPUs for the claim.

        Idempotent per instance: VGPUs the instance already has on the VM
        are looked at first; when they fulfil ``requests`` nothing is
        made and they are returned, when some are missing (a killed or
        half rolled back attach) only those are made, on devices the VM
        has free. A rollback destroys only what this call made.

        :raises: ClaimRefused, VgpuAttachRefused (before any change),
                 XapiError, XapiConnectionError (after a rollback).
        """
        return self._attach(instance, vm, requests, numa_cells)[0]

    def _attach(self, instance, vm, requests, numa_cells):
        """attach; returns (every VGPU of the instance, those made now)."""
        with self.writer.held():
            return self._attach_locked(instance, vm, requests, numa_cells)

    def _attach_locked(self, instance, vm, requests, numa_cells):
        """attach while holding the host (the pools read afresh)."""
        self.sync()
        record = vgpulib.read_vm(self.client, vm)
        present = vgpulib.on_vm(self.client, vm)
        mine = vgpulib.owned(present, instance)
        done = vgpulib.already_attached(self.stats.inventory, vm, mine,
                                        requests)
        if done is not None:
            LOG.info('Instance %s already has its %d VGPU(s) on %s',
                     instance, len(done), vm)
            return done, []
        claim = instance if not mine else '%s (completing)' % instance
        slots = self.stats.consume_requests(vgpulib.still_wanted(
            self.stats.inventory, mine, requests), numa_cells, claim)
        made = self._make(instance, vm, slots, lambda: (
            vgpulib.check_attachable(self.stats.inventory, record, slots,
                                     list(present.values()))),
            vgpulib.free_devices(present, len(slots)), claim)
        if not mine:
            return made, made
        self.stats.free(claim)  # the VGPUs it became count now
        return vgpulib.in_device_order(vgpulib.of_instance(
            self.client, vm, instance)), made

    def _make(self, instance, vm, slots, check=None, devices=None,
              claim=None):
        """The VGPUs of a claim's slots; on any failure, the rollback of
        what this call made and of the claim (``claim``, default the
        instance's)."""
        made = []
        try:
            if check:
                check()
            vgpulib.create(self.client, self.host_uuid, instance, vm,
                           slots, devices, made)
        except BaseException:
            with excutils.save_and_reraise_exception():
                self._roll_back(claim or instance, vm, made)
        self.sync()
        return made

    def sync(self):
        """Bring the pools up to date after this Builder's own writes (one
        event.from): a claim whose VGPUs now show gives way to them."""
        self.stats.update(lambda inventory: reader.refresh(
            self.client, inventory, self.dom0))

    def start(self, instance, vm, made=None):
        """Start the VM on this host; returns the pGPUs XAPI chose (in
        device order). The claim ended when attach's refresh saw its
        VGPUs: tagged, they count for this host, running or not.
        ``made``: the VGPUs this build created, all a failed start
        destroys (default: every VGPU of the instance on the VM).

        :raises: XapiError with XAPI's code (after a rollback of this
                 build's VGPUs and claim), XapiConnectionError.
        """
        try:
            self.client.call_async('VM.start_on', vm, self.host_ref, False,
                                   False)
        except exception.XapiConnectionError as exc:
            with excutils.save_and_reraise_exception() as error:
                error.reraise = not self._settle_start(instance, vm, made,
                                                       exc)
        except BaseException:
            with excutils.save_and_reraise_exception():
                self._roll_back(instance, vm, made)
        try:
            placed = vgpulib.of_instance(self.client, vm, instance)
            pgpus = [v.resident_on for v in sorted(
                placed.values(), key=lambda v: int(v.device))]
        except (exception.XapiError, exception.XapiConnectionError) as exc:
            # It runs: the next refresh shows where XAPI put the vGPUs.
            LOG.warning('%s started but its vGPUs could not be read (%s)',
                        vm, exc)
            pgpus = []
        self.sync()
        return pgpus

    def _settle_start(self, instance, vm, made, cause):
        """A start whose outcome was lost: XAPI says whether the VM runs
        (True: it started, nothing is undone). Halted with no start under
        way, the build is rolled back; when XAPI cannot say, nothing is
        touched (a starting VM never loses a vGPU)."""
        outcome = settle.outcome_or_none(self.client, vm, settle.STARTS,
                                         cause)
        if outcome is not None and outcome.runs:
            LOG.warning('%s started although the answer was lost (%s)',
                        vm, cause)
            return True
        if outcome is not None:
            self._roll_back(instance, vm, made)
        return False

    def build(self, instance, vm, requests, numa_cells=None):
        """attach, then start: the whole spawn of a vGPU instance."""
        made = self._attach(instance, vm, requests, numa_cells)[1]
        return self.start(instance, vm, made)

    def start_again(self, vm):
        """Start a stopped instance: its VGPUs are still there (and its
        claim counted as a stopped instance's)."""
        self.client.call_async('VM.start_on', vm, self.host_ref, False,
                               False)

    def stop(self, vm):
        """clean_shutdown, or hard_shutdown when XAPI refuses the clean
        one or it times out; the instance keeps its VGPUs and claim."""
        try:
            self.client.call_async('VM.clean_shutdown', vm)
        except (exception.XapiError, exception.XapiTaskTimeout) as exc:
            code = getattr(exc, 'code', 'timeout')
            if code not in _NEEDS_HARD + ('timeout',):
                raise
            LOG.warning('Clean shutdown of %s failed (%s): hard shutdown',
                        vm, code)
            self.client.call_async('VM.hard_shutdown', vm)

    def suspend(self, instance, vm):
        """Suspend where XAPI allows it (NVIDIA vGPUs on pGPUs with
        NVIDIA's metadata); refused before any call otherwise. The
        instance keeps its VGPUs and its claim.

        :raises: OperationRefused, XapiError, XapiConnectionError.
        """
        vgpus = vgpulib.of_instance(self.client, vm, instance)
        vgpulib.assert_movable(self.stats.inventory, vm, vgpus,
                               'suspend')
        self.client.call_async('VM.suspend', vm)

    def resume(self, vm):
        """Resume on this host: XAPI places the vGPUs again."""
        self.client.call_async('VM.resume_on', vm, self.host_ref, False,
                               False)

    def live_migrate(self, instance, vm, destination):
        """Move a running instance to ``destination`` (another Builder of
        the pool): check, claim there by the same rule, move; the source
        gives up nothing unless the move succeeds, and a failed move
        leaves both hosts as they were.

        :raises: OperationRefused (before anything moves), ClaimRefused,
                 XapiError, XapiConnectionError.
        """
        vgpus = vgpulib.of_instance(self.client, vm, instance)
        vgpulib.assert_movable(self.stats.inventory, vm, vgpus,
                               'live-migrate')
        with destination.writer.held():  # until XAPI reserves there
            destination.sync()
            destination.stats.claim_demand(instance,
                                           vgpulib.demand_of(vgpus))
            self.run_move(instance, vm, destination, lambda: (
                self._pool_migrate(vm, destination)))
        self.moved(instance, vm, destination)

    def _pool_migrate(self, vm, destination):
        self.client.call('VM.assert_can_boot_here', vm,
                         destination.host_ref)
        self.client.call_async('VM.pool_migrate', vm, destination.host_ref,
                               {'live': 'true'})

    def run_move(self, instance, vm, destination, move):
        """Run ``move()`` (the XAPI calls of a live move: pool_migrate,
        or migrate_send with a vgpu_map) after the destination's claim.
        A lost answer is settled by asking XAPI where the VM runs (on the
        destination: the move happened); any other failure frees the
        destination's claim and is raised. Then call ``moved``.

        :raises: XapiError, XapiConnectionError.
        """
        try:
            move()
        except exception.XapiConnectionError as exc:
            with excutils.save_and_reraise_exception() as error:
                error.reraise = not self._settle_move(instance, vm,
                                                      destination, exc)
        except BaseException:
            with excutils.save_and_reraise_exception():
                destination.stats.free(instance)

    def _settle_move(self, instance, vm, destination, cause):
        """A live move whose outcome was lost: XAPI says where the VM
        runs (True: on the destination, the move happened)."""
        outcome = settle.outcome_or_none(self.client, vm, settle.MOVES,
                                         cause)
        if outcome is not None and (
                outcome.resident_on == destination.host_ref):
            LOG.warning('%s moved to %s although the answer was lost (%s)',
                        vm, destination.host_uuid, cause)
            return True
        if outcome is not None:
            destination.stats.free(instance)
        return False

    def moved(self, instance, vm, destination):
        """After a live move (pool_migrate, or migrate_send with a
        vgpu_map): the VGPUs' host tag follows where XAPI says the VM
        runs, one write per VGPU; claims end on both sides."""
        try:
            vgpulib.follow_vm(self.client, vm, instance)
        except (exception.XapiError, exception.XapiConnectionError) as exc:
            # The tag names the source or the destination, never none;
            # reconcile (follow_running) settles it from where it runs.
            LOG.warning('%s moved but its VGPUs may still name the source '
                        'host (%s); reconcile puts them right', vm, exc)
        self.stats.free(instance)
        destination.sync()
        self.sync()

    def cold_migrate(self, instance, vm, destination):
        """Move a halted instance's vGPUs to ``destination`` as they are
        (same groups and types). The move is recorded on the VM before
        anything is destroyed (see ``moves``) and this host holds the
        demand until it ends: if the destination cannot take them they
        are put back here; if the process dies, a retry finishes it.
        Returns the VGPUs made on the destination.

        :raises: OperationRefused (a VM that runs, nothing of the
                 instance to move, or no move at all), ClaimRefused,
                 XapiError,
                 XapiConnectionError (the first error, after the put-back).
        """
        if destination.host_ref == self.host_ref:
            raise exception.OperationRefused(
                operation='cold migration', vm=vm, reason='it is already '
                'on this host (a resize on one host is move_out + move_in)')
        record = vgpulib.read_vm(self.client, vm)
        vgpus = vgpulib.of_instance(self.client, vm, instance)
        demand = self._demand_to_move(instance, vm, record, vgpus)
        with destination.writer.held():
            destination.sync()
            destination.stats.claim_demand(instance, demand)
            try:
                self.move_out(instance, vm, destination.host_uuid)
                made = destination._make(
                    instance, vm, destination.stats.devices_of(instance))
            except BaseException:
                with excutils.save_and_reraise_exception():
                    destination.stats.free(instance)
                    self._put_back(instance, vm, demand)
        self.confirm_move(instance, vm)
        return made

    def _demand_to_move(self, instance, vm, record, vgpus):
        """What a cold migration moves: the instance's VGPUs, or those an
        open move of it recorded (a retry).

        :raises: OperationRefused.
        """
        if record.power_state != 'Halted':
            raise exception.OperationRefused(
                operation='cold migration', vm=vm, reason='it is %s; a '
                'cold migration moves a halted VM' % record.power_state)
        move = moves.of_vm(record)
        if move is not None and move.instance == instance:
            return move.demand
        if not vgpus:
            raise exception.OperationRefused(
                operation='cold migration', vm=vm, reason='nothing to move:'
                ' no VGPU of instance %s on it (VGPUs this project did not '
                'make are not moved)' % instance)
        return vgpulib.demand_of(vgpus)

    def _put_back(self, instance, vm, demand):
        """After a failed move: the vGPUs back here (from the held
        demand). A failure is logged; the open move stays on the VM."""
        try:
            self.restore(instance, vm, demand)
        except Exception as exc:  # noqa: BLE001 - the move's error wins
            LOG.error('Could not put the vGPUs of %s back on %s (%s); the '
                      'move stays recorded on the VM: retry it', instance,
                      vm, exc)

    def move_out(self, instance, vm, destination=''):
        """Resize, cold migration: the halted VM's vGPUs leave this host,
        which holds their demand (a claim only ``confirm_move`` or
        ``restore`` releases), so a revert always fits. The move is
        recorded on the VM first.

        Returns what they were, for ``restore`` on a revert.

        :raises: OperationRefused for a VM that runs.
        """
        record = vgpulib.read_vm(self.client, vm)
        vgpus = vgpulib.of_instance(self.client, vm, instance)
        if record.power_state != 'Halted' or any(
                v.currently_attached for v in vgpus.values()):
            raise exception.OperationRefused(
                operation='move', vm=vm, reason='it runs; resize and cold '
                'migration move a stopped VM')
        move = moves.of_vm(record)
        if move is None or move.instance != instance:
            if not vgpus:
                return ()
            move = moves.record(self.client, vm, moves.Move(
                instance, self.host_uuid, destination,
                vgpulib.demand_of(vgpus)))
        with self.writer.held():
            vgpulib.destroy(self.client, vm, instance, vgpus)
            self.stats.free(instance)
            self.sync()
            self._hold(instance, move.demand)
        return move.demand

    def _hold(self, instance, demand):
        """This host keeps ``demand`` for the instance's open move."""
        try:
            self.stats.claim_demand(moves.held(instance), demand)
        except exception.ClaimRefused as exc:
            LOG.warning('Could not hold the vGPUs of %s for its move (%s)',
                        instance, exc)

    def hold_open_moves(self):
        """At start-up: hold again what this host's open moves (recorded
        on their VMs) held before a restart. Returns their instances.

        :raises: XapiError, XapiConnectionError, RecordError.
        """
        vms = records.decode_all(records.Vm, self.client.call(
            'VM.get_all_records'))
        held = []
        for ref, record in sorted(vms.items()):
            move = moves.of_vm(record)
            if move is None or move.source != self.host_uuid:
                continue
            mine = vgpulib.of_instance(self.client, ref, move.instance)
            if any(v.other_config.get(tags.HOST) == self.host_uuid
                   for v in mine.values()):
                continue  # never left: its VGPUs count
            self._hold(move.instance, move.demand)
            held.append(move.instance)
        return held

    def confirm_move(self, instance, vm):
        """A resize is confirmed (or a cold migration done): the source
        releases what it held and the move's record goes.

        :raises: XapiError, XapiConnectionError.
        """
        self.stats.free(moves.held(instance))
        move = moves.of_vm(vgpulib.read_vm(self.client, vm))
        if move is not None and move.instance == instance:
            moves.clear(self.client, vm)
        self.sync()

    def move_in(self, instance, vm, requests, numa_cells=None):
        """Resize, cold migration, evacuation: the VM's vGPUs are made
        anew from a claim on this host (upstream Nova lost them here).
        VGPUs another host tagged for the instance are replaced."""
        vgpulib.destroy(self.client, vm, instance)
        return self.attach(instance, vm, requests, numa_cells)

    def restore(self, instance, vm, demand):
        """Revert: the vGPUs the VM had here before ``move_out``, from
        the demand this host held (so they fit); the instance's other
        VGPUs on the VM (the destination's) are destroyed; the move's
        record goes. VGPUs that never left are kept.

        :raises: ClaimRefused only when something outside this project
                 took the held pGPUs; XapiError, XapiConnectionError.
        """
        with self.writer.held():
            present = vgpulib.of_instance(self.client, vm, instance)
            if vgpulib.demand_of(present) == tuple(demand) and all(
                    v.other_config.get(tags.HOST) == self.host_uuid
                    for v in present.values()):
                made = vgpulib.in_device_order(present)  # never left
                self.stats.free(moves.held(instance))
            else:
                made = self._restore(instance, vm, demand, present)
        self.confirm_move(instance, vm)
        return made

    def _restore(self, instance, vm, demand, present):
        """The held demand becomes the instance's claim again; the VGPUs
        there are replaced by the claim's."""
        self.stats.free(moves.held(instance))
        try:
            self.stats.claim_demand(instance, demand)
            vgpulib.destroy(self.client, vm, instance, present)
            return self._make(instance, vm, self.stats.devices_of(instance))
        except BaseException:
            with excutils.save_and_reraise_exception():
                self.stats.free(instance)
                self._hold(instance, demand)

    def detach(self, instance, vm, vgpus=None):
        """Destroy the instance's VGPUs (a halted VM) and free its claim.

        :raises: VgpuAttachRefused when the VM runs.
        """
        destroyed = vgpulib.destroy(self.client, vm, instance, vgpus)
        self.stats.free(instance)
        self.sync()
        return destroyed

    def _roll_back(self, instance, vm, made=None):
        """Undo a build: the VGPUs it made (``made``; None: every VGPU of
        the instance on the VM) destroyed, its claim freed. A failure
        here is logged; the caller raises the error that caused it."""
        self.stats.free(instance)
        try:
            if made is None:
                gone = vgpulib.destroy(self.client, vm, instance)
            else:
                gone = vgpulib.destroy_made(self.client, made)
        except (exception.XapiError, exception.XapiConnectionError,
                exception.VgpuAttachRefused) as exc:
            LOG.error('Rolling back instance %s: its VGPUs on %s may '
                      'remain (%s); find_orphans reports them', instance,
                      vm, exc)
            return
        LOG.info('Rolled back instance %s: destroyed %d VGPU(s)', instance,
                 len(gone))
        try:
            self.sync()
        except (exception.XapiError, exception.XapiConnectionError) as exc:
            LOG.warning('Pools not refreshed after the rollback of %s: %s',
                        instance, exc)
