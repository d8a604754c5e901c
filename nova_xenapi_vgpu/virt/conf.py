"""This project's [xenserver] and [vgpu] options on Nova's own CONF."""

from nova_xenapi_vgpu import conf as projectconf


def register(conf):
    """Register [xenserver] and [vgpu] on ``conf`` (Nova's CONF); a second
    call changes nothing."""
    projectconf.register_opts(conf)
