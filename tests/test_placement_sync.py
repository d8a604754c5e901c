"""The provider tree written to the real Placement service and queried."""

import dataclasses
import json
import subprocess
import sys
import uuid
import warnings

import pytest
from keystoneauth1 import session
from nova.compute import provider_tree

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.placement import service as placement_service
from nova_xenapi_vgpu.placement import sync
from nova_xenapi_vgpu.placement import tree
from nova_xenapi_vgpu.simulator import server
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
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
    # One for the session: each start makes a database (and syncs its
    # traits and classes), a second or two.
    with placement_service.serve() as adapter:
        yield adapter


class Compute:
    """A compute node of its own reporting to the service."""

    def __init__(self, placement):
        self.placement = placement
        self.node = 'compute-%s' % uuid.uuid4().hex[:8]

    def provider(self, address):
        """The provider name of the pGPU at ``address``."""
        return tree.provider_name(self.node, address)

    def report(self, inventory, providers=None):
        """Sync ``inventory``; the tree (to sync again) and the reporter."""
        if providers is None:
            providers = provider_tree.ProviderTree()
            providers.new_root(self.node, str(uuid.uuid4()))
        tree.update_provider_tree(inventory, providers, self.node)
        reporter = sync.Reporter(self.placement)
        reporter.sync(providers, self.node)
        return providers, reporter

    def candidates(self, resources):
        """The provider names of this node's allocation candidates."""
        root = self.placement.get(
            '/resource_providers?name=%s' % self.node,
            headers=VERSION).json()['resource_providers'][0]
        resp = self.placement.get(
            '/allocation_candidates?resources=%s&in_tree=%s' % (
                resources, root['uuid']), headers=VERSION)
        assert resp.status_code == 200, resp.text
        summaries = resp.json()['provider_summaries']
        names = {u: self.placement.get('/resource_providers/%s' % u,
                                       headers=VERSION).json()['name']
                 for u in summaries}
        return {names[u] for a in resp.json()['allocation_requests']
                for u in a['allocations']}


@pytest.fixture
def compute(service):
    """Provider names are unique in one service: a node per test."""
    return Compute(service)


def test_every_pgpu_that_can_start_a_type_is_a_candidate(sim, compute):
    inventory = read(sim)
    compute.report(inventory)
    for pgpu_ref in inventory.pgpus:
        name = compute.provider(inventory.address(pgpu_ref))
        for vgpu_type_ in inventory.enabled_types(pgpu_ref, ()):
            usage = inventory.usage(pgpu_ref, vgpu_type_)
            rc = tree.resource_class(vgpu_type_.model_name)
            found = compute.candidates('%s:1' % rc)
            assert (name in found) == (usage.remaining > 0), (name, rc)


def test_candidates_agree_with_plan_for_every_single_type_alias(sim,
                                                               compute):
    # The host in use: one M60 pGPU full of 8Q, a T4 holding 4Q.
    xapi = login(sim.url).xenapi
    for name, group in (('GRID M60-8Q', 'Tesla M60'),
                        ('GRID T4-4Q', 'Tesla T4')):
        vm, _ = vm_with_vgpu(xapi, group_of(xapi, group),
                             vgpu_type(xapi, name), name)
        xapi.VM.start(vm, False, False)
    inventory = read(sim)
    compute.report(inventory)
    stats = statslib.VgpuStats(inventory)
    names = sorted({t.model_name for t in inventory.types.values()
                    if t.model_name != 'passthrough'})
    fits = {}
    for name in names:  # what Placement can express: one type, no NUMA
        aliases = aliaslib.parse_aliases(
            ['{"name": "a", "vgpu_type": "%s"}' % name])
        requests = requestslib.requests_from_spec('a:1', aliases)[0]
        found = compute.candidates('%s:1' % tree.resource_class(name))
        try:
            _, pgpus = stats.explain(requests)
        except exception.ClaimRefused:
            fits[name] = False
            assert not found, name
            continue
        fits[name] = True
        assert {compute.provider(inventory.address(p))
                for p in pgpus} <= found, name
    assert set(fits.values()) == {True, False}, fits  # both compared
    assert fits['GRID T4-4Q'] and not fits['GRID T4-8Q'], fits


def test_a_pgpu_holding_one_type_is_no_candidate_for_another(sim, compute):
    xapi = login(sim.url).xenapi
    vm, vgpu = vm_with_vgpu(xapi, group_of(xapi, 'Tesla M60'),
                            vgpu_type(xapi, 'GRID M60-4Q'))
    providers, _ = compute.report(read(sim))
    xapi.VM.start(vm, False, False)
    address = xapi.PCI.get_pci_id(xapi.PGPU.get_PCI(
        xapi.VGPU.get_resident_on(vgpu)))
    held = compute.provider(address)
    assert held in compute.candidates('CUSTOM_VGPU_GRID_M60_8Q:1')
    compute.report(read(sim), providers)
    assert held not in compute.candidates('CUSTOM_VGPU_GRID_M60_8Q:1')
    assert held in compute.candidates('CUSTOM_VGPU_GRID_M60_4Q:1')


def test_a_second_sync_of_the_same_host_writes_nothing(sim, compute):
    inventory = read(sim)
    providers, first = compute.report(inventory)
    assert first.writes > 0
    _, second = compute.report(inventory, providers)
    assert second.writes == 0


def test_a_gone_pgpu_leaves_placement(sim, compute):
    inventory = read(sim)
    providers, _ = compute.report(inventory)
    gone = compute.provider('0000:86:00.0')
    fewer = dataclasses.replace(inventory, pgpus={
        r: p for r, p in inventory.pgpus.items()
        if inventory.address(r) != '0000:86:00.0'})
    compute.report(fewer, providers)
    names = {rp['name'] for rp in compute.placement.get(
        '/resource_providers', headers=VERSION).json()['resource_providers']}
    assert gone not in names
    assert compute.provider('0000:87:00.0') in names


def test_a_stale_generation_is_refused_with_its_status(sim, compute):
    inventory = read(sim)
    providers, _ = compute.report(inventory)
    name = compute.provider('0000:86:00.0')
    rp_uuid = providers.data(name).uuid
    reporter = sync.Reporter(compute.placement)
    with pytest.raises(sync.PlacementError) as error:
        reporter._call('put', '/resource_providers/%s/inventories' % rp_uuid,
                       {'resource_provider_generation': 99,
                        'inventories': {}})
    assert error.value.status == 409
    assert str(error.value).startswith(
        'PUT /resource_providers/%s/inventories: HTTP 409: ' % rp_uuid)
    assert 'placement.concurrent_update' in str(error.value)


def test_the_cli_syncs_a_host_and_then_writes_nothing(tmp_path, service):
    with server.Simulator() as sim:
        first = vgpu_cli(sim, tmp_path, *SYNC, service.endpoint_override,
                         '-f', 'json')
        again = vgpu_cli(sim, tmp_path, *SYNC, service.endpoint_override,
                         '-f', 'json')
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert json.loads(first.stdout)['Providers'] == 6
    assert json.loads(again.stdout)['Writes'] == 0


def test_the_cli_refuses_a_standard_type_the_host_lacks(tmp_path, service):
    with server.Simulator() as sim:
        result = vgpu_cli(sim, tmp_path, *SYNC, service.endpoint_override,
                          extra='placement_standard_type = GRID M60-4B\n')
    assert result.returncode == 2
    assert ('[vgpu] placement_standard_type: this host offers no GRID '
            'M60-4B; did you mean') in result.stderr
    assert 'Traceback' not in result.stderr


def test_the_cli_names_a_placement_it_cannot_reach(tmp_path):
    with server.Simulator() as sim:
        result = vgpu_cli(sim, tmp_path, *SYNC, 'http://127.0.0.1:9')
    assert result.returncode == 1  # a service down, as XAPI down
    assert 'placement sync: Cannot reach Placement at http://127.0.0.1:9: ' \
        'Connection refused' in result.stderr
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


def test_a_concurrent_writer_is_retried_not_overwritten_blindly(sim, compute):
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    tree.update_provider_tree(read(sim), providers, compute.node)
    reporter = RacingReporter(compute.placement)
    reporter.sync(providers, compute.node)
    assert len(reporter.raced) == len(
        providers.get_provider_uuids(compute.node))
    name = compute.provider('0000:86:00.0')
    rp_uuid = providers.data(name).uuid
    traits = compute.placement.get(
        '/resource_providers/%s/traits' % rp_uuid,
        headers=VERSION).json()['traits']
    assert sorted(traits) == sorted(providers.data(name).traits)


def test_placement_starts_again_on_a_database_of_its_own(service):
    def providers(placement):
        return [rp['name'] for rp in placement.get(
            '/resource_providers', headers=VERSION).json()[
                'resource_providers']]
    traits = None
    for name in ('first', 'second'):
        with placement_service.serve() as placement:
            assert providers(placement) == []
            resp = placement.post('/resource_providers', json={'name': name},
                                  headers=VERSION)
            assert resp.status_code == 200, resp.text
            assert providers(placement) == [name]
            found = placement.get('/traits', headers=VERSION).json()[
                'traits']
            assert 'COMPUTE_DEVICE_TAGGING' in found
            assert traits in (None, found)
            traits = found
    # The session's service is back on its own database.
    assert 'first' not in providers(service)


def test_a_node_is_found_by_name(sim, compute):
    providers, reporter = compute.report(read(sim))
    assert reporter.find(compute.node) == providers.data(compute.node).uuid
    assert reporter.find(compute.provider('0000:86:00.0')) == (
        providers.data(compute.provider('0000:86:00.0')).uuid)
    assert reporter.find('no-such-node-%s' % uuid.uuid4().hex) is None


def test_gone_providers_leave_children_first(compute):
    # Placement refuses to delete a provider that still has children.
    providers = provider_tree.ProviderTree()
    root = str(uuid.uuid4())
    providers.new_root(compute.node, root)
    # uuids in parent-first order: no order but by depth deletes them.
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    parent = providers.new_child(compute.node + '-card', root, uuid=ids[0])
    child = providers.new_child(compute.node + '-card-fn', parent,
                                uuid=ids[1])
    grandchild = providers.new_child(compute.node + '-card-fn-0', child,
                                     uuid=ids[2])
    reporter = sync.Reporter(compute.placement)
    reporter.sync(providers, compute.node)
    assert len(reporter._get('/resource_providers?in_tree=%s' % root)[
        'resource_providers']) == 4
    for gone in (grandchild, child, parent):
        providers.remove(gone)
    reporter.sync(providers, compute.node)
    held = reporter._get('/resource_providers?in_tree=%s' % root)
    assert [rp['uuid'] for rp in held['resource_providers']] == [root]


class Counting:
    """The service's adapter, counting the requests sent through it."""

    def __init__(self, placement):
        self.placement = placement
        self.sent, self.urls = [], []

    def __getattr__(self, method):
        def send(url, **kwargs):
            self.sent.append(method)
            self.urls.append((method, url))
            return getattr(self.placement, method)(url, **kwargs)
        return send

    def puts_to(self, prefix):
        """How many PUTs went to URLs starting with ``prefix``."""
        return sum(1 for m, u in self.urls if m == 'put'
                   and u.startswith(prefix))


def test_writes_counts_every_write_sent(sim, compute):
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    tree.update_provider_tree(read(sim), providers, compute.node)
    counting = Counting(compute.placement)
    reporter = sync.Reporter(counting)
    reporter.sync(providers, compute.node)
    writes = [m for m in counting.sent if m != 'get']
    assert 'post' in writes and 'put' in writes
    assert reporter.writes == len(writes)


class VanishingReporter(sync.Reporter):
    """Another writer deletes a provider between listing and reading it."""

    deleted = False

    def _get(self, url):
        if url.endswith('/inventories') and not self.deleted:
            self.deleted = True
            self.adapter.delete(url.rsplit('/', 1)[0], headers=VERSION)
        return super()._get(url)


def test_a_provider_deleted_meanwhile_is_a_placement_error(compute):
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    reporter = VanishingReporter(compute.placement)
    with pytest.raises(sync.PlacementError) as info:
        reporter.sync(providers, compute.node)
    assert (info.value.method, info.value.status) == ('GET', 404)


def test_only_the_named_root_is_synced(compute):
    # A tree holding two roots (Nova's can): one compute node synced.
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    other = compute.node + '-other'
    providers.new_root(other, str(uuid.uuid4()))
    reporter = sync.Reporter(compute.placement)
    reporter.sync(providers, compute.node)
    assert reporter.find(compute.node) == providers.data(compute.node).uuid
    assert reporter.find(other) is None


class Racing(sync.Reporter):
    """Another writer bumps a provider's generation ``races`` times,
    each time between this reporter's read and write."""

    def __init__(self, placement, races):
        super().__init__(placement)
        self.races, self.raced = races, 0

    def _get(self, url):
        found = super()._get(url)
        if url.endswith('/inventories') and self.races:
            self.races -= 1
            self.raced += 1  # its traits change each time: none, one, none
            self.adapter.put('/traits/CUSTOM_OTHER_WRITER', headers=VERSION)
            self.adapter.put(
                url.replace('/inventories', '/traits'), headers=VERSION,
                json={'resource_provider_generation': found[
                    'resource_provider_generation'],
                    'traits': ['CUSTOM_OTHER_WRITER'][:self.raced % 2]})
        return found


@pytest.mark.parametrize('races, synced', [(sync.RETRIES, True),
                                           (sync.RETRIES + 1, False)])
def test_a_provider_is_written_again_at_most_retries_times(compute, races,
                                                           synced):
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    providers.update_inventory(compute.node, {
        'CUSTOM_RACED': {'total': 1}})
    reporter = Racing(compute.placement, races)
    if synced:
        reporter.sync(providers, compute.node)
    else:
        with pytest.raises(sync.PlacementError) as info:
            reporter.sync(providers, compute.node)
        assert info.value.status == 409
    assert reporter.races == 0


def test_a_refused_write_is_not_retried(compute):
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    providers.update_inventory(compute.node, {
        'CUSTOM_REFUSED': {'total': -1}})  # Placement's schema: total >= 1
    counting = Counting(compute.placement)
    with pytest.raises(sync.PlacementError) as info:
        sync.Reporter(counting).sync(providers, compute.node)
    assert info.value.status == 400
    assert counting.sent.count('put') == 2  # the class, the inventory


def test_a_custom_class_is_put_once_per_reporter(sim, compute):
    providers = provider_tree.ProviderTree()
    providers.new_root(compute.node, str(uuid.uuid4()))
    tree.update_provider_tree(read(sim), providers, compute.node)
    counting = Counting(compute.placement)
    sync.Reporter(counting).sync(providers, compute.node)
    classes = {name for uuid_ in providers.get_provider_uuids(compute.node)
               for name in providers.data(uuid_).inventory}
    shared = [c for c in classes if sum(
        c in providers.data(u).inventory
        for u in providers.get_provider_uuids(compute.node)) > 1]
    assert shared  # several pGPUs offer the same type
    assert counting.puts_to('/resource_classes/') == len(classes)
