"""``[vgpu] pgpu_types``: which pGPUs (PCI addresses) serve which type.

The XenServer form of Nova's libvirt ``[devices] enabled_mdev_types`` plus
``[mdev_<type>] device_addresses``: each value is
``<model name> = <address>[, <address>...]``; pGPUs not named keep every
enabled type.
"""

import re

from nova_xenapi_vgpu import exception

ADDRESS = re.compile(r'^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')


def parse(values):
    """``{PCI address: model name}`` from the option's values.

    :raises: ConfigError naming the value and what is wrong with it.
    """
    partition = {}
    for value in values:
        model, sep, addresses = value.partition('=')
        model = model.strip()
        if not sep or not model:
            _refuse(value, 'expected "<model name> = <PCI address>[, ...]"')
        for address in (a.strip().lower() for a in addresses.split(',')):
            if not ADDRESS.match(address):
                _refuse(value, '%r is not a PCI address like 0000:86:00.0'
                        % address)
            if partition.get(address, model) != model:
                _refuse(value, '%s is already given to %s' % (
                    address, partition[address]))
            partition[address] = model
    return partition


def _refuse(value, reason):
    raise exception.ConfigError(group='vgpu', option='pgpu_types',
                                reason='%.80r: %s' % (value, reason))
