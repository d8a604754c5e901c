"""The XAPI classes the simulator models: fields, defaults, relations."""

import dataclasses

NULL = 'OpaqueRef:NULL'


@dataclasses.dataclass(frozen=True)
class Relation:
    """``cls.field`` holds a ref; ``target.reverse`` lists who points."""

    cls: str
    field: str
    target: str
    reverse: str


@dataclasses.dataclass
class XapiClass:
    """One class: stored fields with their defaults, and writable ones."""

    name: str
    fields: dict
    writable: frozenset = frozenset()

    @property
    def event_name(self):
        """The lowercase name event.from uses."""
        return self.name.lower()


_NAMED = {'uuid': '', 'name_label': '', 'name_description': ''}
_NAME_RW = frozenset({'name_label', 'name_description', 'other_config'})

CLASSES = {c.name: c for c in [
    XapiClass('pool', dict(_NAMED, master=NULL, other_config={},
                           restrictions={}), _NAME_RW),
    XapiClass('host', dict(
        _NAMED, address='', hostname='', enabled=True,
        API_version_major=2, API_version_minor=21, software_version={},
        cpu_info={}, chipset_info={}, other_config={}), _NAME_RW),
    XapiClass('network', dict(_NAMED, bridge='', other_config={}),
              _NAME_RW),
    XapiClass('task', dict(
        _NAMED, allowed_operations=['cancel'], current_operations={},
        created=None, finished=None, status='pending', resident_on=NULL,
        progress=0.0, type='', result='', error_info=[], other_config={},
        subtask_of=NULL, subtasks=[], backtrace='()'),
        frozenset({'other_config'})),
    XapiClass('PCI', dict(
        uuid='', class_id='', class_name='', vendor_id='', vendor_name='',
        device_id='', device_name='', host=NULL, pci_id='',
        subsystem_vendor_id='', subsystem_vendor_name='',
        subsystem_device_id='', subsystem_device_name='', driver_name='',
        dependencies=[], other_config={}, _physical_function=NULL,
        _hidden_at_boot=False, _hidden_after_reboot=False),
        frozenset({'other_config'})),
    XapiClass('GPU_group', dict(
        _NAMED, GPU_types=[], other_config={},
        allocation_algorithm='depth_first'),
        _NAME_RW | {'allocation_algorithm'}),
    XapiClass('PGPU', dict(
        uuid='', PCI=NULL, GPU_group=NULL, host=NULL, other_config={},
        supported_VGPU_types=[], enabled_VGPU_types=[],
        supported_VGPU_max_capacities={}, dom0_access='enabled',
        is_system_display_device=False, compatibility_metadata={}),
        frozenset({'other_config'})),
    XapiClass('VGPU_type', dict(
        uuid='', vendor_name='', model_name='', framebuffer_size=0,
        max_heads=0, max_resolution_x=0, max_resolution_y=0,
        implementation='passthrough', identifier='', experimental=False,
        compatible_types_in_vm=[])),
    XapiClass('VGPU', dict(
        uuid='', VM=NULL, GPU_group=NULL, device='0',
        currently_attached=False, other_config={}, type=NULL,
        resident_on=NULL, scheduled_to_be_resident_on=NULL,
        compatibility_metadata={}, extra_args='', PCI=NULL),
        frozenset({'other_config'})),
    XapiClass('VM', dict(
        _NAMED, power_state='Halted', user_version=1, is_a_template=False,
        is_a_snapshot=False, is_control_domain=False, resident_on=NULL,
        scheduled_to_be_resident_on=NULL, affinity=NULL,
        memory_static_max=0, memory_static_min=0, memory_dynamic_max=0,
        memory_dynamic_min=0, VCPUs_max=1, VCPUs_at_startup=1,
        VCPUs_params={}, actions_after_shutdown='destroy',
        actions_after_reboot='restart', actions_after_crash='restart',
        PV_bootloader='', PV_kernel='', PV_ramdisk='', PV_args='',
        PV_bootloader_args='', PV_legacy_args='', HVM_boot_policy='',
        HVM_boot_params={}, HVM_shadow_multiplier=1.0, platform={},
        PCI_bus='', other_config={}, xenstore_data={}, recommendations='',
        ha_restart_priority='', tags=[], blocked_operations={},
        attached_PCIs=[], domain_type='pv', domid=-1,
        current_operations={}, snapshot_of=NULL, _pv_drivers=True,
        _guest_driver_migratable=True),
        _NAME_RW | {'affinity', 'platform', 'xenstore_data', 'VCPUs_max',
                    'VCPUs_at_startup', 'VCPUs_params', 'HVM_boot_policy',
                    'HVM_boot_params', 'PV_args', 'recommendations',
                    'blocked_operations', 'tags'}),
]}

RELATIONS = [
    Relation('PCI', 'host', 'host', 'PCIs'),
    Relation('PGPU', 'host', 'host', 'PGPUs'),
    Relation('PGPU', 'GPU_group', 'GPU_group', 'PGPUs'),
    Relation('VGPU', 'GPU_group', 'GPU_group', 'VGPUs'),
    Relation('VGPU', 'VM', 'VM', 'VGPUs'),
    Relation('VGPU', 'type', 'VGPU_type', 'VGPUs'),
    Relation('VGPU', 'resident_on', 'PGPU', 'resident_VGPUs'),
    Relation('VGPU', 'scheduled_to_be_resident_on', 'PGPU',
             'scheduled_VGPUs'),
    Relation('VM', 'resident_on', 'host', 'resident_VMs'),
]

# Reverse fields kept for the simulator's own use; xapi does not show them.
HIDDEN = {('PGPU', 'scheduled_VGPUs')}


def is_internal(name):
    """Whether a stored field is the simulator's own (never shown).

    Such fields stand for xapi's internal state (``PCI.attached_VMs``,
    ``physical_function``, guest metrics): xapi keeps them from clients.
    """
    return name.startswith('_')


def class_by_event_name(name):
    """The XapiClass event.from calls ``name``, or None."""
    for xapi_class in CLASSES.values():
        if xapi_class.event_name == name:
            return xapi_class
    return None
