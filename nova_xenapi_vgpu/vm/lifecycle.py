"""Building, starting and stopping an instance's VM with its vGPUs.

The build: claim (the pools' rule: XAPI honours it in every start order),
check the VM, create the VGPUs, ``VM.start_on`` this host (a plain
``VM.start`` could pick another host of the pool), then move the claim
to the pGPUs XAPI chose. If anything fails, every VGPU this build made is
destroyed, the claim is freed, and the error is raised again with its
XAPI code: nothing is left behind and the same build can be retried.
Because accepted claims hold in every start order, concurrent builds on
one host need no ordering among themselves.
"""

from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vm import vgpus as vgpulib

LOG = logging.getLogger(__name__)
# clean_shutdown failures after which hard_shutdown is right.
_NEEDS_HARD = ('VM_LACKS_FEATURE', 'VM_LACKS_FEATURE_SHUTDOWN')


class Builder:
    """What a compute driver calls for one host's vGPUs."""

    def __init__(self, client, stats, host_ref):
        self.client = client
        self.stats = stats
        self.host_ref = host_ref

    @property
    def host_uuid(self):
        """This host's uuid."""
        return self.stats.inventory.host_uuid

    def attach(self, instance, vm, requests, numa_cells=None):
        """Claim ``requests`` and create the VM's VGPUs for the claim.

        :raises: ClaimRefused, VgpuAttachRefused (before any change),
                 XapiError, XapiConnectionError (after a rollback).
        """
        record = vgpulib.read_vm(self.client, vm)
        slots = self.stats.consume_requests(requests, numa_cells, instance)
        try:
            vgpulib.check_attachable(self.stats.inventory, record, slots)
            return vgpulib.create(self.client, self.host_uuid, instance, vm,
                                  slots)
        except BaseException:
            self._roll_back(instance, vm)
            raise

    def start(self, instance, vm):
        """Start the VM on this host; the claim follows XAPI's choice.

        :raises: XapiError with XAPI's code (after a rollback of this
                 build's VGPUs and claim), XapiConnectionError.
        """
        try:
            self.client.call_async('VM.start_on', vm, self.host_ref, False,
                                   False)
        except BaseException:
            self._roll_back(instance, vm)
            raise
        claim = self.stats.claims.get(instance)
        try:
            placed = vgpulib.of_instance(self.client, vm, instance)
            pgpus = [v.resident_on for v in sorted(
                placed.values(), key=lambda v: int(v.device))]
        except (exception.XapiError, exception.XapiConnectionError) as exc:
            # It runs: keep the claim where it was expected until the next
            # refresh shows where XAPI put the vGPUs.
            LOG.warning('%s started but its vGPUs could not be read (%s)',
                        vm, exc)
            pgpus = list(claim.pgpus) if claim else []
        if claim is not None:
            self.stats.rebind(instance, pgpus)
        return pgpus

    def build(self, instance, vm, requests, numa_cells=None):
        """attach, then start: the whole spawn of a vGPU instance."""
        self.attach(instance, vm, requests, numa_cells)
        return self.start(instance, vm)

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

    def detach(self, instance, vm):
        """Destroy the instance's VGPUs (a halted VM) and free its claim.

        :raises: VgpuAttachRefused when the VM runs.
        """
        destroyed = vgpulib.destroy(self.client, vm, instance)
        self.stats.free(instance)
        return destroyed

    def _roll_back(self, instance, vm):
        """Undo a build: its VGPUs destroyed, its claim freed."""
        self.stats.free(instance)
        try:
            gone = vgpulib.destroy(self.client, vm, instance)
        except (exception.XapiError, exception.XapiConnectionError,
                exception.VgpuAttachRefused) as exc:
            LOG.error('Rolling back instance %s: its VGPUs on %s may '
                      'remain (%s); find_orphans reports them', instance,
                      vm, exc)
            return
        LOG.info('Rolled back instance %s: destroyed %d VGPU(s)', instance,
                 len(gone))
