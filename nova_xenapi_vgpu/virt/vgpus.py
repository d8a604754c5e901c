"""spawn's vGPUs: one VGPU per PCI device Nova allocated to the instance.

Nova's resource tracker has claimed the devices before ``spawn``; each is
a slot of a pinned pGPU (a synthetic address, see
``vgpu_types.synthetic``) or a whole pGPU (its real address). The VGPU
goes in the pGPU's own GPU group, so XAPI has no choice of pGPU to
make, tagged with Nova's device uuid and the instance (``vm.vgpus``).
"""

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import synthetic
from nova_xenapi_vgpu.vm import vgpus as vgpulib


class NotOurDevice(exception.NovaXenapiVgpuException):
    """A device Nova allocated that is no vGPU slot of this host."""

    msg_fmt = ("PCI device %(address)s is no vGPU slot or pGPU of host "
               "%(host)s as it stands now")


def slots(xen, instance):
    """The NovaSlot of each device of ``instance``, in address order.

    :raises: NotOurDevice.
    """
    found = []
    devices = sorted(instance.pci_devices or [], key=lambda d: d.address)
    for device in devices:
        slot = synthetic.slot_of(xen.inventory, device.address, device.uuid,
                                 xen.enabled)
        if slot is None:
            raise NotOurDevice(address=device.address, host=xen.nodename)
        found.append(slot)
    return found


def create(xen, instance, vm):
    """The instance's VGPUs on its halted VM.

    :raises: NotOurDevice, XapiError, XapiConnectionError.
    """
    return vgpulib.create(xen.client, xen.uuid, instance.uuid, vm,
                          slots(xen, instance))
