"""oslo.config options, registered on a ConfigOpts the caller passes in."""

import json
import urllib.parse

from oslo_config import cfg

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.conf import vgpu
from nova_xenapi_vgpu.conf import xenserver

_MODULES = (xenserver, vgpu)


def register_opts(conf):
    """Register every option of this project on ``conf``."""
    for module in _MODULES:
        # A fresh OptGroup: oslo.config keeps registered options on the
        # group object, so a shared one would leak between ConfigOpts.
        group = cfg.OptGroup(module.GROUP.name, title=module.GROUP.title,
                             help=module.GROUP.help)
        conf.register_group(group)
        conf.register_opts(module.OPTS, group=group)


def list_opts():
    """All option groups, for the ``oslo.config.opts`` entry point."""
    return [(module.GROUP, module.OPTS) for module in _MODULES]


def validate(conf):
    """Read every option once and apply this project's own checks.

    :raises: ConfigError naming the first bad option.
    """
    for group, opts in list_opts():
        for opt in opts:
            try:
                getattr(conf[group.name], opt.dest)
            except (cfg.Error, ValueError) as exc:
                raise exception.ConfigError(
                    group=group.name, option=opt.name, reason=exc) from None
    _validate_url(conf.xenserver.connection_url)
    for value in conf.vgpu.alias:
        parse_alias(value)


def _validate_url(url):
    if url and urllib.parse.urlsplit(url).password is not None:
        raise exception.ConfigError(
            group='xenserver', option='connection_url',
            reason='credentials must not be part of the URL; use '
                   'connection_username and connection_password')


def parse_alias(value):
    """Decode one ``[vgpu] alias`` value.

    :raises: ConfigError when it is not a JSON object with a ``name``.
    """
    try:
        alias = json.loads(value)
    except ValueError as exc:
        raise _alias_error(value, 'not valid JSON (%s)' % exc) from None
    if not isinstance(alias, dict):
        raise _alias_error(value, 'not a JSON object')
    if not isinstance(alias.get('name'), str) or not alias['name']:
        raise _alias_error(value, '"name" is required')
    return alias


def _alias_error(value, reason):
    return exception.ConfigError(
        group='vgpu', option='alias', reason='%r: %s' % (value, reason))
