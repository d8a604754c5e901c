"""The provider tree written to the real Placement service and queried."""

import dataclasses
import subprocess
import sys
import uuid
import warnings

import pytest
from keystoneauth1 import session
from nova.compute import provider_tree

from nova_xenapi_vgpu.placement import service as placement_service
from nova_xenapi_vgpu.placement import sync
from nova_xenapi_vgpu.placement import tree
from nova_xenapi_vgpu.simulator import server
from tests.conftest import login
from tests.simhelpers import group_of
from tests.simhelpers import vgpu_type
from tests.simhelpers import vm_with_vgpu
from tests.test_cli import vgpu_cli
from tests.test_placement_tree import read

warnings.filterwarnings('ignore', category=DeprecationWarning)
VERSION = {'OpenStack-API-Version': 'placement 1.39'}
SYNC = ('placement', 'sync', '--os-token', 'admin', '--placement-url')


@pytest.fixture(scope='session')
def service():
    # One per process: placement's database layer is configured once.
    with placement_service.serve() as adapter:
        yield adapter


@pytest.fixture
def placement(service):
    """The service; each test reports a compute node of its own."""
    global NODE  # provider names are unique in one service
    NODE = 'compute-%s' % uuid.uuid4().hex[:8]
    yield service


def report(inventory, placement, providers=None):
    if providers is None:
        providers = provider_tree.ProviderTree()
        providers.new_root(NODE, str(uuid.uuid4()))
    tree.update_provider_tree(inventory, providers, NODE)
    reporter = sync.Reporter(placement)
    reporter.sync(providers, NODE)
    return providers, reporter


def candidates(placement, resources):
    root = placement.get('/resource_providers?name=%s' % NODE,
                         headers=VERSION).json()['resource_providers'][0]
    resp = placement.get('/allocation_candidates?resources=%s&in_tree=%s' % (
        resources, root['uuid']), headers=VERSION)
    assert resp.status_code == 200, resp.text
    summaries = resp.json()['provider_summaries']
    names = {u: placement.get('/resource_providers/%s' % u,
                              headers=VERSION).json()['name']
             for u in summaries}
    return {names[u] for a in resp.json()['allocation_requests']
            for u in a['allocations']}


def test_every_pgpu_that_can_start_a_type_is_a_candidate(sim, placement):
    inventory = read(sim)
    report(inventory, placement)
    for pgpu_ref in inventory.pgpus:
        name = tree.provider_name(NODE, inventory.address(pgpu_ref))
        for vgpu_type_ in inventory.enabled_types(pgpu_ref, ()):
            usage = inventory.usage(pgpu_ref, vgpu_type_)
            rc = tree.resource_class(vgpu_type_.model_name)
            found = candidates(placement, '%s:1' % rc)
            assert (name in found) == (usage.remaining > 0), (name, rc)


def test_a_pgpu_holding_one_type_is_no_candidate_for_another(sim,
                                                              placement):
    xapi = login(sim.url).xenapi
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-4Q'))
    providers, _ = report(read(sim), placement)
    xapi.VM.start(vm, False, False)
    address = xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(
        xapi.VGPU.get_resident_on(vgpu)))
    held = tree.provider_name(NODE, address)
    assert held in candidates(placement, 'CUSTOM_VGPU_GRID_M60_8Q:1')
    report(read(sim), placement, providers)
    assert held not in candidates(placement, 'CUSTOM_VGPU_GRID_M60_8Q:1')
    assert held in candidates(placement, 'CUSTOM_VGPU_GRID_M60_4Q:1')


def test_a_second_sync_of_the_same_host_writes_nothing(sim, placement):
    inventory = read(sim)
    providers, first = report(inventory, placement)
    assert first.writes > 0
    _, second = report(inventory, placement, providers)
    assert second.writes == 0


def test_a_gone_pgpu_leaves_placement(sim, placement):
    inventory = read(sim)
    providers, _ = report(inventory, placement)
    gone = tree.provider_name(NODE, '0000:86:00.0')
    fewer = dataclasses.replace(inventory, pgpus={
        r: p for r, p in inventory.pgpus.items()
        if inventory.address(r) != '0000:86:00.0'})
    report(fewer, placement, providers)
    names = {rp['name'] for rp in placement.get(
        '/resource_providers', headers=VERSION).json()['resource_providers']}
    assert gone not in names
    assert tree.provider_name(NODE, '0000:87:00.0') in names


def test_a_stale_generation_is_refused_with_its_status(sim, placement):
    inventory = read(sim)
    providers, _ = report(inventory, placement)
    name = tree.provider_name(NODE, '0000:86:00.0')
    rp_uuid = providers.data(name).uuid
    reporter = sync.Reporter(placement)
    with pytest.raises(sync.PlacementError) as error:
        reporter._call('put', '/resource_providers/%s/inventories' % rp_uuid,
                       {'resource_provider_generation': 99,
                        'inventories': {}})
    assert error.value.status == 409


def test_the_cli_syncs_a_host_and_then_writes_nothing(tmp_path, service):
    with server.Simulator() as sim:
        first = vgpu_cli(sim, tmp_path, *SYNC, service.endpoint_override)
        again = vgpu_cli(sim, tmp_path, *SYNC, service.endpoint_override)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert 'xs-gpu-01: 6 providers' in first.stdout
    assert again.stdout.strip().endswith(', 0 writes')


def test_the_cli_names_a_placement_it_cannot_reach(tmp_path):
    with server.Simulator() as sim:
        result = vgpu_cli(sim, tmp_path, *SYNC, 'http://127.0.0.1:9')
    assert result.returncode == 2
    assert 'placement sync:' in result.stderr
    assert 'Traceback' not in result.stderr


def test_placement_serve_answers_until_stopped(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'nova_xenapi_vgpu.cli.main', 'placement',
         'serve', '--db', str(tmp_path / 'p.db')],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()
        resp = session.Session().get(url + '/', raise_exc=False)
        assert resp.status_code == 200
        assert resp.json()['versions'][0]['id'] == 'v1.0'
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (tmp_path / 'p.db').exists()


class RacingReporter(sync.Reporter):
    """Another writer changes each provider once, between read and write."""

    raced = ()

    def _get(self, url):
        found = super()._get(url)
        rp_uuid = url.split('/')[2] if url.endswith('/inventories') else None
        if rp_uuid and rp_uuid not in self.raced:
            self.raced += (rp_uuid,)
            self.adapter.put('/traits/CUSTOM_OTHER_WRITER', headers=VERSION)
            self.adapter.put(
                '/resource_providers/%s/traits' % rp_uuid, headers=VERSION,
                json={'resource_provider_generation': found[
                    'resource_provider_generation'],
                    'traits': ['CUSTOM_OTHER_WRITER']})
        return found


def test_a_concurrent_writer_is_retried_not_overwritten_blindly(sim,
                                                                placement):
    providers = provider_tree.ProviderTree()
    providers.new_root(NODE, str(uuid.uuid4()))
    tree.update_provider_tree(read(sim), providers, NODE)
    reporter = RacingReporter(placement)
    reporter.sync(providers, NODE)
    assert len(reporter.raced) == len(providers.get_provider_uuids(NODE))
    name = tree.provider_name(NODE, '0000:86:00.0')
    rp_uuid = providers.data(name).uuid
    traits = placement.get('/resource_providers/%s/traits' % rp_uuid,
                           headers=VERSION).json()['traits']
    assert sorted(traits) == sorted(providers.data(name).traits)
