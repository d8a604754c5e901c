"""Keys this project writes in a VGPU's ``other_config``."""

HOST = 'nova_xenapi_vgpu_host'  # uuid of the host the claim was made on
INSTANCE = 'nova_instance_uuid'  # the Nova instance the VGPU belongs to
DEVICE = 'nova_xenapi_vgpu_device'  # the claimed slot's uuid
