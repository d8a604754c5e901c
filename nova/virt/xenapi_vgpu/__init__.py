"""Stock Nova loads ``compute_driver = xenapi_vgpu.XenAPIDriver`` from here.

Nova imports drivers only as ``nova.virt.<name>``; this shim is the one
file nova-xenapi-vgpu installs inside Nova's package (no
``nova/__init__.py``, no ``nova/virt/__init__.py``: those stay Nova's).
The driver lives in ``nova_xenapi_vgpu.virt``.
"""

from nova_xenapi_vgpu.virt.driver import XenAPIDriver

__all__ = ['XenAPIDriver']
