"""This host's vGPUs as the provider tree a compute driver reports.

``update_provider_tree`` fills Nova's own ``ProviderTree``: under the
compute node, one child provider per pGPU of this host, named as Nova's
libvirt driver names them (``<nodename>_pci_0000_86_00_0``), with an
inventory per enabled vGPU type (a custom resource class per type, e.g.
``CUSTOM_VGPU_GRID_M60_4Q``, or the standard ``VGPU`` for one type an
operator chooses), traits for the types, the GPU group and the NUMA node,
and ``reserved`` set so that a pGPU holding one type offers no other.

No reshape is needed with ``allocations``: this plugin never reported
vGPUs another way (on the root provider, or under other classes), so no
allocation has to move; the argument is accepted and left alone.
"""

import uuid

import os_resource_classes
import os_traits

NAMESPACE = uuid.UUID('0b5e9b5e-7a21-5c4b-9e4d-706c6163656d')


def provider_name(nodename, address):
    """``<nodename>_pci_0000_86_00_0``, as Nova's libvirt driver does."""
    return '%s_pci_%s' % (nodename, address.replace(':', '_').replace(
        '.', '_'))


def resource_class(model_name, standard=None):
    """The custom class of a type, or ``VGPU`` for the chosen one."""
    if standard and model_name == standard:
        return os_resource_classes.VGPU
    return os_resource_classes.normalize_name('VGPU_' + model_name)


def update_provider_tree(inventory, provider_tree, nodename, enabled=(),
                         standard_type=None, allocations=None):
    """Make ``provider_tree`` (Nova's ProviderTree, with the compute node
    ``nodename`` as a root) show this host's pGPUs and vGPU types."""
    wanted = {}
    for pgpu_ref in sorted(inventory.pgpus, key=inventory.address):
        name = provider_name(nodename, inventory.address(pgpu_ref))
        wanted[name] = pgpu_ref
        if not provider_tree.exists(name):
            provider_tree.new_child(name, nodename, uuid=str(uuid.uuid5(
                NAMESPACE, '%s/%s' % (inventory.host_uuid,
                                      inventory.pgpus[pgpu_ref].uuid))))
        provider_tree.update_inventory(name, _inventory(
            inventory, pgpu_ref, enabled, standard_type))
        provider_tree.update_traits(name, _traits(inventory, pgpu_ref,
                                                  enabled))
    prefix = '%s_pci_' % nodename
    for child in provider_tree.get_provider_uuids(nodename)[1:]:
        name = provider_tree.data(child).name
        if name.startswith(prefix) and name not in wanted:
            provider_tree.remove(child)
    return provider_tree


def _inventory(inventory, pgpu_ref, enabled, standard_type):
    result = {}
    for vgpu_type in inventory.enabled_types(pgpu_ref, enabled):
        usage = inventory.usage(pgpu_ref, vgpu_type)  # capacity.py's rule
        if not usage.capacity:
            continue
        result[resource_class(vgpu_type.model_name, standard_type)] = {
            'total': usage.capacity,
            'reserved': usage.capacity if usage.blocked_by else 0,
            'min_unit': 1, 'max_unit': usage.capacity, 'step_size': 1,
            'allocation_ratio': 1.0}
    return result


def _traits(inventory, pgpu_ref, enabled):
    pgpu = inventory.pgpus[pgpu_ref]
    group = inventory.groups.get(pgpu.GPU_group)
    traits = {os_traits.normalize_name('VGPU_TYPE_' + t.model_name)
              for t in inventory.enabled_types(pgpu_ref, enabled)}
    if group is not None:
        traits.add(os_traits.normalize_name('GPU_GROUP_' + group.uuid))
    numa = inventory.numa_node(pgpu_ref)
    if numa is not None:
        traits.add(os_traits.normalize_name('NUMA_NODE_%d' % numa))
    return sorted(traits)


