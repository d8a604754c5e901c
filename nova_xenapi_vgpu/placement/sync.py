"""Push a provider tree to a Placement service, as Nova's report client does.

``sync`` makes Placement match a ``ProviderTree`` under one root (the
compute node, which Nova itself creates): missing providers are created
parent first, custom resource classes and traits are ensured, inventories
and traits are written only when they differ (each write carries the
provider generation: a concurrent writer's 409 makes it read the
provider again and retry, up to ``RETRIES`` times). Providers Placement
holds under the root but the tree no longer names (a pGPU removed or
replaced) are deleted first, children first, so a new pGPU can take the
name of the one it replaced.

``adapter`` is a keystoneauth1 ``Adapter`` for the placement service (or
anything with its ``get``/``put``/``post``/``delete``).
"""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
MICROVERSION = 'placement 1.39'
RETRIES = 3


class PlacementError(Exception):
    """Placement refused a write; keeps the status and the body."""

    def __init__(self, method, url, status, body):
        super().__init__('%s %s: HTTP %s: %s' % (method, url, status, body))
        self.status = status
        self.method, self.url, self.body = method, url, body


class Reporter:
    """Writes provider trees to one Placement endpoint."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.writes = 0
        self._ensured = set()  # custom classes and traits put already

    def _call(self, method, url, body=None, ok=(200, 201, 204)):
        kwargs = {'headers': {'OpenStack-API-Version': MICROVERSION},
                  'raise_exc': False}
        if body is not None:
            kwargs['json'] = body
        resp = getattr(self.adapter, method)(url, **kwargs)
        if method != 'get':
            self.writes += 1
        if resp.status_code not in ok:
            raise PlacementError(method.upper(), url, resp.status_code,
                                 resp.text)
        return resp

    def _get(self, url):
        return self._call('get', url, ok=(200,)).json()

    def sync(self, provider_tree, root):
        """Make Placement show ``provider_tree`` under the root ``root``."""
        wanted = provider_tree.get_provider_uuids(root)
        held = {rp['uuid']: rp for rp in self._get(
            '/resource_providers?in_tree=%s' % wanted[0])[
                'resource_providers']}
        gone = [u for u in held if u not in wanted]
        for rp_uuid in sorted(gone, key=lambda u: -_depth(held, u)):
            LOG.info('Removing resource provider %s', held[rp_uuid]['name'])
            self._call('delete', '/resource_providers/%s' % rp_uuid)
        for rp_uuid in wanted:
            data = provider_tree.data(rp_uuid)
            if rp_uuid not in held:
                self._create(data)
            self._sync_provider(data)

    def find(self, name):
        """The uuid of the provider named ``name``, or None."""
        providers = self._get('/resource_providers?name=%s' % name)[
            'resource_providers']
        return providers[0]['uuid'] if providers else None

    def _create(self, data):
        body = {'uuid': data.uuid, 'name': data.name}
        if data.parent_uuid:
            body['parent_provider_uuid'] = data.parent_uuid
        LOG.info('Creating resource provider %s', data.name)
        self._call('post', '/resource_providers', body)

    def _sync_provider(self, data):
        for attempt in range(RETRIES + 1):
            try:
                self._sync_inventory(data)
                return self._sync_traits(data)
            except PlacementError as exc:
                if exc.status != 409 or attempt == RETRIES:
                    raise
                LOG.info('Provider %s changed meanwhile; retrying',
                         data.name)

    def _sync_inventory(self, data):
        """Write the inventories if they differ (read gives the generation)."""
        url = '/resource_providers/%s/inventories' % data.uuid
        current = self._get(url)
        if current['inventories'] != data.inventory:
            self._ensure('/resource_classes/%s', data.inventory)
            self._call('put', url, {
                'resource_provider_generation': current[
                    'resource_provider_generation'],
                'inventories': data.inventory})

    def _sync_traits(self, data):
        """Write the traits if they differ (read gives the generation)."""
        url = '/resource_providers/%s/traits' % data.uuid
        current = self._get(url)
        if set(current['traits']) != set(data.traits):
            self._ensure('/traits/%s', data.traits)
            self._call('put', url, {
                'resource_provider_generation': current[
                    'resource_provider_generation'],
                'traits': sorted(data.traits)})

    def _ensure(self, url, names):
        for name in sorted(names):
            if name.startswith('CUSTOM_') and url % name not in self._ensured:
                self._call('put', url % name)
                self._ensured.add(url % name)


def _depth(held, rp_uuid):
    depth = 0
    while held.get(rp_uuid, {}).get('parent_provider_uuid'):
        rp_uuid = held[rp_uuid]['parent_provider_uuid']
        depth += 1
    return depth
