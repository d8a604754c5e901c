"""Nova's functional tests need its extra; an editable install needs the
shim found in this tree (a non-editable install puts it inside Nova)."""

import os

import pytest

nova_virt = pytest.importorskip('nova.virt')

try:
    import nova.virt.xenapi_vgpu  # noqa: F401
except ImportError:
    # pip install -e cannot put files inside another distribution's
    # package; the shim is the file of this tree.
    nova_virt.__path__.append(os.path.join(
        os.path.dirname(__file__), '..', '..', 'nova', 'virt'))
