"""``event.from`` carries the classes a compute driver watches.

A driver's periodic task reads host metrics and VM power states with one
call (xapi's event.from over every class it names, xapi_event.ml).
"""

from nova_xenapi_vgpu.simulator import server
from tests.conftest import login

CLASSES = ['host_metrics', 'host_cpu', 'vm', 'vm_metrics', 'sr', 'pbd',
           'vdi', 'vbd', 'network', 'pif', 'vif']
GIB = 2 ** 30


def test_snapshot_and_changes_of_the_new_classes():
    with server.Simulator('m60') as sim:
        xapi = login(sim.url).xenapi
        first = xapi.event_from(CLASSES, '', 1.0)
        seen = {e['class'] for e in first['events']}
        assert seen == set(CLASSES) - {'vdi', 'vbd', 'vif'}
        assert first['valid_ref_counts']['host_cpu'] == 32
        (pool,) = xapi.pool.get_all()
        vm = xapi.VM.create({'name_label': 'watched', 'HVM_boot_policy':
                             'BIOS order', 'memory_static_max': str(GIB),
                             'memory_dynamic_min': str(GIB),
                             'memory_dynamic_max': str(GIB)})
        vdi = xapi.VDI.create({
            'name_label': 'd', 'name_description': '',
            'SR': xapi.pool.get_default_SR(pool), 'virtual_size': str(GIB),
            'type': 'user', 'sharable': False, 'read_only': False,
            'other_config': {}, 'xenstore_data': {}, 'sm_config': {},
            'tags': []})
        xapi.VBD.create({'VM': vm, 'VDI': vdi, 'userdevice': '0',
                         'bootable': True, 'mode': 'RW', 'type': 'Disk',
                         'unpluggable': True, 'empty': False,
                         'other_config': {}, 'qos_algorithm_type': '',
                         'qos_algorithm_params': {}})
        token = xapi.event_from(CLASSES, '', 1.0)['token']
        xapi.VM.start(vm, False, False)
        changes = xapi.event_from(CLASSES, token, 1.0)['events']
        by_class = {}
        for event in changes:
            by_class.setdefault(event['class'], []).append(event)
        assert {'vm', 'vm_metrics', 'host_metrics', 'vbd'} <= set(by_class)
        (metrics,) = [e['snapshot'] for e in by_class['vm_metrics']]
        assert metrics['memory_actual'] == str(GIB)
        vms = {e['ref']: e['snapshot'] for e in by_class['vm']}
        assert vms[vm]['power_state'] == 'Running'
        (host,) = [e['snapshot'] for e in by_class['host_metrics']]
        assert int(host['memory_free']) < int(host['memory_total'])
