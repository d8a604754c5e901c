"""Fixtures of the VM path regression tests: Builders over a simulator."""

import pytest

from nova_xenapi_vgpu.host import identity
from tests.conftest import login
from tests.vm_path.helpers import builder
from tests.vm_path.helpers import client_of


@pytest.fixture
def world(sim):
    """(simulator, plain SDK API, a Builder of its one host)."""
    client = client_of(sim)
    yield sim, login(sim.url).xenapi, builder(
        client, identity.resolve_host(client))
    client.close()


@pytest.fixture
def pool(pool_sim):
    """(simulator, plain SDK API, Builders of the first two members)."""
    client = client_of(pool_sim)
    xapi = login(pool_sim.url).xenapi
    hosts = [xapi.host.get_by_name_label('xs-pool-0%d' % i)[0]
             for i in (1, 2)]
    yield pool_sim, xapi, [builder(client, h) for h in hosts]
    client.close()
