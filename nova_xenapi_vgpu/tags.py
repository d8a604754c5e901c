"""Keys this project writes in a VGPU's ``other_config``."""

HOST = 'nova_xenapi_vgpu_host'  # uuid of the host the claim was made on
INSTANCE = 'nova_instance_uuid'  # the Nova instance the VGPU belongs to
DEVICE = 'nova_xenapi_vgpu_device'  # the claimed slot's uuid
# The OpaqueRef of the VM the VGPU was made for. XAPI keeps a VM's ref
# for the object's life; VM.snapshot / VM.clone / VM.copy copy the VGPU
# with its other_config onto a new VM, whose ref differs.
VM = 'nova_xenapi_vgpu_vm'
OURS = (HOST, INSTANCE, DEVICE, VM)


def owed_to(vgpu, host_uuid):
    """Whether ``host_uuid``'s claims count ``vgpu`` (a records.Vgpu)
    while it is not running: tagged for that host, and not a copy."""
    return (not is_copy(vgpu)
            and vgpu.other_config.get(HOST) == host_uuid)


def is_copy(vgpu):
    """Whether ``vgpu`` (a records.Vgpu) is a copy XAPI made of one of
    this project's VGPUs (a snapshot's, a clone's, a template's): made
    for another VM than the one it is on. VGPUs of older versions carry
    no VM tag and are never copies."""
    made_for = vgpu.other_config.get(VM)
    return made_for is not None and made_for != vgpu.VM
