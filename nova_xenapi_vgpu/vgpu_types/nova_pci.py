"""``[pci] device_spec`` and ``[pci] alias`` that make stock Nova track
this host's vGPU slots (``synthetic``), from ``[vgpu] alias``: a device
spec for every type an alias names and every type this host reports now.

Without PCI in Placement a type is told apart by its synthetic product
id; with it (``placement=True``) by a resource class per type, which the
device spec gives and the alias asks for, beside the ids (Nova's claim
on a move's destination sees only those). Alias names and NUMA policies
are those of ``[vgpu] alias``; an alias without ``vgpu_type`` is Nova's
own PCI passthrough and is written back unchanged.
"""

import dataclasses
import json

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import synthetic

PASSTHROUGH = 'passthrough'
NVIDIA = '10de'  # PCI vendor id


@dataclasses.dataclass(frozen=True)
class NovaPci:
    """What to paste: device specs, aliases and (placement) flags."""

    device_specs: list
    aliases: list
    placement: bool


def vendors(inventory):
    """``{model name: {(vendor id, pGPU product id)}}`` of every type some
    pGPU of this host supports."""
    found = {}
    for ref, pgpu in inventory.pgpus.items():
        vendor, _, product = inventory.vendor_device(ref).partition(':')
        for type_ref in pgpu.supported_VGPU_types:
            vgpu_type = inventory.types.get(type_ref)
            if vgpu_type is not None:
                found.setdefault(vgpu_type.model_name, set()).add(
                    (vendor, product))
    return found


def build(inventory, aliases, placement=False):
    """The device specs and aliases for ``aliases`` (parse_aliases').

    :raises: InvalidAlias for a vGPU type this host does not know, or
             two types whose synthetic product ids collide.
    """
    known = vendors(inventory)
    specs, result = {}, []
    for alias in sorted(aliases.values(), key=lambda a: a.name):
        for spec in alias.specs:
            if aliaslib.VGPU_TAG not in spec:
                result.append(_plain(alias, spec))
                continue
            for model in spec[aliaslib.VGPU_TAG]:
                if model not in known:
                    raise exception.InvalidAlias(
                        alias=alias.name, key='vgpu_type',
                        reason='%s: no pGPU of this host supports it' %
                        model)
                for vendor, product in sorted(known[model]):
                    spec_, entry = _entries(alias, model, vendor, product,
                                            placement)
                    if 'live_migratable' in spec:
                        entry['live_migratable'] = spec['live_migratable']
                    specs[_key(spec_)] = spec_
                    if entry not in result:
                        result.append(entry)
    for model, vendor, product in reported(inventory):
        spec_, _ = _entries(None, model, vendor, product, placement)
        specs.setdefault(_key(spec_), spec_)
    _check_collisions(specs.values())
    if placement:
        _check_one_class(result)
    return NovaPci(sorted(specs.values(), key=_key), result, placement)


def reported(inventory):
    """``(model, vendor id, pGPU product id)`` of what this host reports
    to Nova now (the types of its pinned pGPUs, passthrough)."""
    found = set()
    devices, _ = synthetic.nova_devices(inventory)
    for device in devices:
        parent = device['parent_addr'] or device['address']
        ref = next(r for r in inventory.pgpus
                   if inventory.address(r) == parent)
        vendor, _, product = inventory.vendor_device(ref).partition(':')
        found.add((device['vgpu_type'], vendor, product))
    return sorted(found)


def _entries(alias, model, vendor, product, placement):
    if model == PASSTHROUGH:  # xapi's one passthrough type (passthrough_gpu)
        spec = {'vendor_id': vendor, 'product_id': product}
        dev_type = 'type-PF'
    else:
        spec = {'address': {'domain': synthetic.DOMAIN_PATTERN},
                'vendor_id': vendor,
                'product_id': synthetic.product_id(model)}
        if vendor == NVIDIA:
            # XAPI live-migrates NVIDIA vGPUs only (xapi_vm_lifecycle.ml,
            # check_vgpu); an alias with live_migratable asks for these.
            spec['live_migratable'] = 'yes'
        dev_type = 'type-VF'
    entry = {'name': alias.name if alias else None,
             'device_type': dev_type,
             'numa_policy': alias.numa_policy if alias else None}
    if placement:
        spec['resource_class'] = resource_class(model)
        entry['resource_class'] = spec['resource_class']
    if not placement or dev_type == 'type-VF':
        # Nova 34's move claim (resource_tracker._move_claim) rebuilds
        # the PCI requests from the flavor without Placement's provider
        # mapping and matches pools ignoring resource_class: only the
        # ids keep a resize or cold migration on the flavor's type.
        entry.update(vendor_id=spec['vendor_id'],
                     product_id=spec['product_id'])
    return spec, entry


def resource_class(model):
    """The custom resource class of a type's slots (``passthrough``: of
    every whole pGPU, whatever its model, as the type means)."""
    return 'CUSTOM_' + ''.join(c if c.isalnum() else '_'
                               for c in ('VGPU_' + model).upper())


def _plain(alias, spec):
    entry = {'name': alias.name, 'numa_policy': alias.numa_policy}
    for key, value in spec.items():
        entry['device_type' if key == 'dev_type' else key] = value
    return entry


def _key(spec):
    return (spec.get('vendor_id', ''), spec.get('product_id', ''),
            'address' in spec)


def _check_collisions(specs):
    seen = {}
    for spec in specs:
        ids = (spec['vendor_id'], spec['product_id'])
        if ids in seen and seen[ids] != ('address' in spec):
            raise exception.InvalidAlias(
                alias='(all)', key='vgpu_type', reason='a vGPU type\'s '
                'synthetic product id %s:%s equals a pGPU\'s' % ids)
        seen[ids] = 'address' in spec


def _check_one_class(aliases):
    """PCI in Placement takes one spec per alias: one vGPU type."""
    classes = {}
    for entry in aliases:
        classes.setdefault(entry['name'], set()).add(
            entry.get('resource_class'))
    for name, found in sorted(classes.items()):
        if len(found) > 1:
            raise exception.InvalidAlias(
                alias=name, key='vgpu_type', reason='with PCI in Placement '
                'an alias names one vGPU type (Nova takes one spec per '
                'alias); found %d' % len(found))


def config_lines(result):
    """The nova.conf text to paste."""
    lines = ['[pci]']
    lines += ['device_spec = %s' % json.dumps(s, sort_keys=True)
              for s in result.device_specs]
    lines += ['alias = %s' % json.dumps(a, sort_keys=True)
              for a in result.aliases]
    if result.placement:
        lines += ['report_in_placement = True', '',
                  '[filter_scheduler]', 'pci_in_placement = True']
    return '\n'.join(lines) + '\n'
