"""spawn's vGPUs: one VGPU per PCI device Nova allocated to the instance.

Nova's resource tracker has claimed the devices before ``spawn``; each is
a slot of a pinned pGPU (a synthetic address, see
``vgpu_types.synthetic``) or a whole pGPU (its real address). The VGPU
goes in the pGPU's own GPU group, so XAPI has no choice of pGPU to
make, tagged with Nova's device uuid and the instance (``vm.vgpus``).
"""

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import synthetic
from nova_xenapi_vgpu.vm import vgpus as vgpulib


class NotOurDevice(exception.NovaXenapiVgpuException):
    """A device Nova allocated that is no vGPU slot of this host."""

    msg_fmt = ("PCI device %(address)s is no vGPU slot or pGPU of host "
               "%(host)s as it stands now")


class WrongType(exception.NovaXenapiVgpuException):
    """A device Nova allocated of a type its alias does not ask for."""

    msg_fmt = ("Nova allocated %(address)s, a %(vgpu_type)s slot, for "
               "alias %(alias)s, which asks for %(wanted)s: does its [pci] "
               "alias lack the type's vendor_id/product_id (nova-xenapi-vgpu "
               "nova-conf prints them)?")


def slots(xen, devices):
    """The NovaSlot of each of Nova's ``devices``, in address order.

    :raises: NotOurDevice.
    """
    found = []
    for device in sorted(devices or [], key=lambda d: d.address):
        slot = synthetic.slot_of(xen.inventory, device.address, device.uuid,
                                 xen.enabled)
        if slot is None:
            raise NotOurDevice(address=device.address, host=xen.nodename)
        found.append(slot)
    return found


def incompatible(xen, devices):
    """Why XAPI gives no VM the vGPUs of ``devices`` together, or None
    (the same on every member: no reschedule can help).

    :raises: NotOurDevice.
    """
    return vgpulib.incompatible([s.vgpu_type for s in slots(xen, devices)])


def check_types(xen, requests, devices, aliases):
    """Each device's vGPU type is one its request's ``[vgpu] alias``
    (``aliases``, parse_aliases') asks for. Nova's claim on a move's
    destination matches devices by ids alone, not by Placement's
    resource class.

    :raises: WrongType, NotOurDevice.
    """
    names = {r.request_id: r.alias_name for r in requests or ()}
    devices = sorted(devices or [], key=lambda d: d.address)
    for device, slot in zip(devices, slots(xen, devices), strict=True):
        alias = aliases.get(names.get(device.request_id))
        if alias is None or not alias.is_vgpu:
            continue
        wanted = [t for spec in alias.specs
                  for t in spec.get(aliaslib.VGPU_TAG, ())]
        if slot.vgpu_type.model_name not in wanted:
            raise WrongType(address=device.address, alias=alias.name,
                            vgpu_type=slot.vgpu_type.model_name,
                            wanted=' or '.join(wanted))


def create(xen, instance, vm, devices=None):
    """The instance's VGPUs on its halted VM, for ``devices`` (default:
    ``instance.pci_devices``; a move passes its migration context's).

    :raises: NotOurDevice, XapiError, XapiConnectionError.
    """
    if devices is None:
        devices = instance.pci_devices
    return vgpulib.create(xen.client, xen.uuid, instance.uuid, vm,
                          slots(xen, devices))


def replace(xen, instance, vm, devices):
    """A moved instance's VGPUs made anew here: the old ones (another
    member's pGPU groups) destroyed, one per device Nova claimed here.

    :raises: NotOurDevice, XapiError, XapiConnectionError.
    """
    vgpulib.destroy(xen.client, vm, instance.uuid)
    return create(xen, instance, vm, devices)
