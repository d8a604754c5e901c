"""Where the installed package keeps the dom0 plugin files."""

import os
import sys
import sysconfig

PLUGIN_NAME = 'xenapi_vgpu'
_SHARE = os.path.join('share', 'nova-xenapi-vgpu', 'dom0_plugins')


def plugin_dirs():
    """Candidate folders: the install's data dir, then a source checkout."""
    roots = [sysconfig.get_path('data'), sys.prefix,
             sysconfig.get_path('data', scheme=_user_scheme())]
    dirs = [os.path.join(root, _SHARE) for root in roots if root]
    dirs.append(os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), 'dom0_plugins'))
    return dirs


def _user_scheme():
    return '%s_user' % os.name


def plugin_dir():
    """The first folder that holds the plugin.

    :raises: FileNotFoundError naming every folder looked at.
    """
    for folder in plugin_dirs():
        if os.path.isfile(os.path.join(folder, PLUGIN_NAME)):
            return folder
    raise FileNotFoundError('dom0 plugin %s not found in: %s' % (
        PLUGIN_NAME, ', '.join(plugin_dirs())))


def plugin_path(name=PLUGIN_NAME):
    """Full path of the plugin file ``name``."""
    return os.path.join(plugin_dir(), name)
