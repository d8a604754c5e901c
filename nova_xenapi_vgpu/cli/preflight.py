"""What ``check-config`` and ``plan`` check before Nova finds out: each
problem in one sentence naming the option, the type and the fix."""

from nova_xenapi_vgpu.cli import context
from nova_xenapi_vgpu.vgpu_types import types as typeslib

ENABLED = '[vgpu] enabled_vgpu_types'


class Checks:
    """The checks of one host's inventory, enabled types and pools."""

    def __init__(self, inventory, enabled, stats):
        self.inventory, self.enabled, self.stats = inventory, enabled, stats

    def enabled_types(self):
        """Enabled types the host does not offer."""
        return typeslib.missing(self.inventory, self.enabled, ENABLED)

    def aliases(self, aliases):
        """Alias types the host lacks or that are not enabled; required
        aliases no GPU group can meet."""
        problems = []
        for alias in (a for a in aliases.values() if a.is_vgpu):
            types = _types_of(alias.specs)
            problems += self.types(types, 'alias %s' % alias.name)
            if alias.numa_policy == 'required':
                problems += self._required(alias.name, types)
        return problems

    def types(self, types, where):
        """Types among ``types`` the host lacks or does not enable."""
        problems = typeslib.missing(self.inventory, types, where)
        offered = {n for n in types if not typeslib.missing(
            self.inventory, [n], where)}
        for name in sorted(offered):
            if self.enabled and name not in self.enabled:
                problems.append('%s: %s is not in %s (%s)' % (
                    where, name, ENABLED, ', '.join(self.enabled)))
        return problems

    def _required(self, name, types):
        pools = [p for p in self.stats.pools() if p.key.vgpu_type in types]
        if not pools or any(p.key.numa_node is not None for p in pools):
            return []
        if self.inventory.topology is None:
            why = ("this host's NUMA nodes are unknown (see plugin check: "
                   'the dom0 plugin tells them)')
        else:
            why = ('every GPU group offering it spans NUMA nodes on %s, so '
                   'XAPI may put it on either (gpu-groups split --by numa '
                   'makes one group per node)' % self.inventory.host_name)
        return ['alias %s: numa_policy required cannot be met: %s' % (
            name, why)]

    def flavor(self, spec, requests):
        """Requests asking more vGPUs than a VM may hold of their type."""
        problems = []
        for request in requests:
            maximum = typeslib.per_vm_maximum(self.inventory,
                                              request.vgpu_types)
            if maximum is not None and request.count > maximum:
                problems.append(
                    '%s: alias %s asks for %d vGPUs in one VM; XAPI allows '
                    'at most %d of %s per VM (compatible_types_in_vm)' % (
                        spec, request.alias_name, request.count, maximum,
                        ' or '.join(request.vgpu_types)))
        return problems

    def explain(self, refusal, requests):
        """A refusal's reason, with what the configuration says about
        the types asked for."""
        hints = []
        for request in requests:
            hints += self.types(request.vgpu_types,
                                'alias %s' % request.alias_name)
        return '; '.join([str(refusal)] + hints)


def _types_of(specs):
    return tuple(dict.fromkeys(t for spec in specs
                               for t in spec.get('vgpu_types', ())))


def known_cells(inventory, nodes):
    """The NUMA nodes asked for (--numa-node, flattened), each a node of
    the host; exit 2 naming the host's nodes otherwise."""
    if not nodes:
        return None
    cells = sorted({n for group in nodes for n in group})
    topology = inventory.topology
    if topology is None or not topology.numa_nodes:
        return cells  # unknown nodes: the refusal says so
    ids = sorted(n.id for n in topology.numa_nodes)
    unknown = [n for n in cells if n not in ids]
    if unknown:
        context.usage_error('--numa-node %s: host %s has no such NUMA node; '
                            'its nodes are %s' % (
                                ','.join(map(str, unknown)),
                                inventory.host_name,
                                ', '.join(map(str, ids))))
    return cells
