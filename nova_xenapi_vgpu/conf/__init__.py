"""oslo.config options, registered on a ConfigOpts the caller passes in."""

import configparser
import difflib
import os
import re
import ssl
import urllib.parse

from oslo_config import cfg

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.conf import vgpu
from nova_xenapi_vgpu.conf import xenserver
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import partition

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
                    group=group.name, option=opt.name,
                    reason=plain_reason(exc)) from None
    _validate_url(conf.xenserver.connection_url)
    _validate_ca_file(conf.xenserver.ca_file)
    aliaslib.parse_aliases(conf.vgpu.alias, conf.vgpu.numa_policy)
    partition.parse(conf.vgpu.pgpu_types)


def plain_reason(exc):
    """oslo.config's message without its ``LocationInfo(...)`` repr."""
    text = str(exc)
    match = re.search(r' is not valid: (.*)$', text, re.S)
    if match:
        return match.group(1)
    return re.sub(r' from LocationInfo\(.*?\)(?=\s|$)', '', text)


def cut(value, limit=60):
    """``value`` for a message: quoted, at most ``limit`` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return '%s... (%d characters)' % (text[:limit], len(value))


def check_url(url):
    """Why ``url`` cannot be XAPI's URL, or None when it can."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ('http', 'https') or (
            not parts.hostname):
        return '%s: expected http://<host>/ or https://<host>/' % cut(url)
    if parts.password is not None:
        return ('credentials must not be part of the URL; use '
                'connection_username and connection_password')
    return None


def _validate_url(url):
    reason = url and check_url(url)
    if reason:
        raise exception.ConfigError(group='xenserver',
                                    option='connection_url', reason=reason)


def _validate_ca_file(path):
    if not path:
        return
    expected = ("; expected a PEM file of the CA that signed XAPI's "
                "certificate (e.g. a copy of the host's xapi-ssl.pem)")
    if not os.path.isfile(path):
        reason = '%s: no such file' % cut(path)
    else:
        try:
            ssl.create_default_context(cafile=path)
            return
        except (ssl.SSLError, ValueError, OSError) as exc:
            reason = '%s: not a PEM certificate bundle (%s)' % (
                cut(path), getattr(exc, 'reason', None) or exc)
    raise exception.ConfigError(group='xenserver', option='ca_file',
                                reason=reason + expected)


def check_config_file(path):
    """Why ``path`` cannot be a config file, or None when it can be."""
    if not os.path.exists(path):
        return 'no such file'
    if os.path.isdir(path):
        return 'is a directory; expected an oslo.config (ini) file'
    try:
        with open(path, 'rb') as stream:
            data = stream.read(1 << 20)
        if b'\0' in data:
            raise ValueError('NUL byte')
        data.decode('utf-8')
    except OSError as exc:
        return 'cannot be read (%s)' % exc.strerror
    except ValueError:
        return 'is not a text file; expected an oslo.config (ini) file'
    return None


def check_config_dir(path):
    """Why ``path`` cannot be a config directory, or None when it can be."""
    if not os.path.exists(path):
        return 'no such directory'
    if not os.path.isdir(path):
        return 'is not a directory; expected a directory of *.conf files'
    return None


def files_of(files, dirs):
    """The files oslo.config reads: ``files``, then each directory's
    ``*.conf`` in name order."""
    found = list(files)
    for directory in dict.fromkeys(dirs):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        found.extend(os.path.join(directory, n) for n in names
                     if n.endswith('.conf'))
    return _unique(found)


def default_sources():
    """Nova's own config files and directories, found as ``nova-manage``
    finds them (``~/.nova/``, ``~/``, ``/etc/nova/``, ``/etc/``)."""
    return (_unique(cfg.find_config_files(project='nova', prog='nova')),
            _unique(cfg.find_config_dirs(project='nova', prog='nova')))


def _unique(paths):
    return list(dict.fromkeys(paths))


def _read_ini(path):
    """The file's sections, ``[DEFAULT]`` as an ordinary one; None if
    it cannot be parsed."""
    parser = configparser.RawConfigParser(
        strict=False, interpolation=None, default_section='\0')
    try:
        parser.read(path, encoding='utf-8')
    except configparser.Error:
        return None
    return parser


def unknown_options(paths):
    """``(path, group, option, close match or None)`` for each option of
    this project's groups in ``paths`` that no option of the group is.

    ``[DEFAULT]`` and the sections of other projects (nova.conf holds
    them all) are not this project's and are not looked at.
    """
    known = {group.name: {opt.name for opt in opts}
             for group, opts in list_opts()}
    found = []
    for path in paths:
        parser = _read_ini(path)
        if parser is None:
            continue
        for group, names in known.items():
            if not parser.has_section(group):
                continue
            for option in parser.options(group):
                if option not in names:
                    close = difflib.get_close_matches(option, names, 1)
                    found.append((path, group, option,
                                  close[0] if close else None))
    return found


def nova_pci_aliases(paths):
    """The files among ``paths`` that set Nova's own ``[pci] alias``."""
    found = []
    for path in paths:
        parser = _read_ini(path)
        if parser is not None and parser.has_option('pci', 'alias'):
            found.append(path)
    return found
