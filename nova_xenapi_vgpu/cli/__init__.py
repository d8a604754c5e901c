"""The ``nova-xenapi-vgpu`` command line (cliff)."""
