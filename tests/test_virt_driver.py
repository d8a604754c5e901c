"""XenAPIDriver's surface: loading by name, what it refuses and says so."""

import warnings

import pytest
from nova import conf as novaconf
from nova import objects
from nova.virt import driver as novadriver

from nova_xenapi_vgpu.virt import driver
from nova_xenapi_vgpu.virt import guest
from nova_xenapi_vgpu.virt import numa

warnings.filterwarnings('ignore', category=DeprecationWarning)
objects.register_all()


def instance(root_gb=0, ephemeral_gb=0):
    flavor = objects.Flavor(memory_mb=512, vcpus=1, root_gb=root_gb,
                            ephemeral_gb=ephemeral_gb, extra_specs={})
    return objects.Instance(uuid='3f1a7a5e-0000-4000-8000-000000000001',
                            flavor=flavor, numa_topology=None)


def test_stock_nova_loads_it_by_name():
    novaconf.CONF.set_override('compute_driver', 'xenapi_vgpu.XenAPIDriver')
    try:
        loaded = novadriver.load_compute_driver(None)
    finally:
        novaconf.CONF.clear_override('compute_driver')
    assert isinstance(loaded, driver.XenAPIDriver)
    assert novaconf.CONF.xenserver.connection_concurrent == 5
    assert novaconf.CONF.vgpu.numa_policy == 'legacy'


@pytest.mark.parametrize('hook', ['suspend', 'live_migration',
                                  'pause', 'snapshot'])
def test_hooks_not_implemented_say_so(hook):
    with pytest.raises(NotImplementedError, match='does not'):
        getattr(driver.XenAPIDriver(None), hook)(None, None)


def test_disks_and_ports_are_refused_clearly():
    with pytest.raises(NotImplementedError, match='disk 0'):
        guest.build(None, None, instance(root_gb=10))
    with pytest.raises(NotImplementedError, match='VIFs'):
        guest.build(None, None, instance(), network_info=[{'id': 'port'}])


def test_no_numa_topology_without_the_nodes():
    assert numa.host_topology(None) is None
    assert numa.cpu_mask(None, instance()) is None
