"""After ``pip install -e`` the driver's shim is found in this tree."""

import os


def find_driver_shim():
    """Make ``nova.virt.xenapi_vgpu`` importable from this tree when the
    install did not put it inside Nova's package (an editable install
    cannot; a plain one does)."""
    try:
        import nova.virt
    except ImportError:
        return
    try:
        import nova.virt.xenapi_vgpu  # noqa: F401
    except ImportError:
        nova.virt.__path__.append(os.path.join(
            os.path.dirname(os.path.abspath(__file__)), '..', 'nova',
            'virt'))
