"""Options of the [vgpu] group: which vGPUs to offer and how to ask."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'vgpu',
    title='vGPU options',
    help='Which vGPU types this host offers and how flavors request them.')

OPTS = [
    cfg.ListOpt(
        'enabled_vgpu_types',
        default=[],
        help="""
vGPU types this host offers, by model name.

Possible values:

* Empty (default): every vGPU type enabled on the host's pGPUs.
* A list of model names as XAPI reports them, e.g.
  ``GRID M60-4Q,GRID M60-8Q`` or ``passthrough``.

Related options:

* ``alias``
"""),
    cfg.MultiStrOpt(
        'alias',
        default=[],
        help="""
A vGPU alias: a JSON object in the format of Nova's ``[pci] alias`` plus a
``vgpu_type`` key naming the vGPU model, or a list of models any of which
will do.

Give the option once per alias, e.g.
``{"name": "m60-4q", "vgpu_type": "GRID M60-4Q", "numa_policy": "required"}``.
Values are checked as Nova checks ``[pci] alias``: ``name`` is required;
unknown keys are refused; aliases with the same name are alternatives and
must then each set the same ``device_type`` and NUMA policy. An alias with
``vgpu_type`` needs no ``vendor_id``/``product_id``; one without them is
left to Nova's own PCI passthrough. A flavor asks for vGPUs with
``<flavor_extra_spec_key>=m60-4q:2``.

Related options:

* ``flavor_extra_spec_key``, ``numa_policy``
"""),
    cfg.MultiStrOpt(
        'pgpu_types',
        default=[],
        help="""
Which pGPUs serve which vGPU type, as Nova's libvirt driver partitions
pGPUs (``[devices] enabled_mdev_types`` and ``[mdev_<type>]
device_addresses``). ``gpu-groups pin --apply`` enables only that type on
each named pGPU, so that a pinned pGPU holds one type and the PCI devices
reported for it say so.

Give the option once per type:
``GRID M60-4Q = 0000:86:00.0, 0000:87:00.0``. Addresses are those of the
pGPUs on every pool member (identical boards share them); pGPUs not named
keep every enabled type.

Related options:

* ``enabled_vgpu_types``
"""),
    cfg.StrOpt(
        'flavor_extra_spec_key',
        default='pci_passthrough:alias',
        help="""
Flavor extra spec holding vGPU requests as ``alias:count[,alias:count]``.

The default shares Nova's PCI passthrough key, so one spec can ask for PCI
devices and vGPUs together.
"""),
    cfg.StrOpt(
        'placement_standard_type',
        help="""
The vGPU type reported to Placement as the standard ``VGPU`` resource
class; every other type keeps its own class, ``CUSTOM_VGPU_<model>``.

For hosts that offer one type, so that flavors ask for ``resources:VGPU=1``
as with Nova's libvirt driver.

Possible values:

* Unset (default): every type is reported under its own custom class.
* A model name as XAPI reports it, e.g. ``GRID M60-4Q``.

Related options:

* ``enabled_vgpu_types``
"""),
    cfg.StrOpt(
        'numa_policy',
        default='legacy',
        choices=[
            ('required', 'vGPUs must sit on the NUMA nodes of the instance'),
            ('legacy', 'like required, but vGPUs of unknown NUMA node fit'),
            ('preferred', 'NUMA-local vGPUs first, any other otherwise'),
            ('socket', 'vGPUs on the same socket as the instance'),
        ],
        help="""
NUMA policy for aliases that do not set ``numa_policy``.

Related options:

* ``alias``
"""),
]

