"""Push a provider tree to a Placement service, as Nova's report client does.

``sync`` makes Placement match a ``ProviderTree`` under one root (the
compute node, which Nova itself creates): missing providers are created
parent first, custom resource classes and traits are ensured, inventories
and traits are written only when they differ (each write carries the
provider generation, so a concurrent writer gets a 409 rather than a lost
update), and providers Placement holds under the root but the tree no
longer names are deleted, children first.

``adapter`` is a keystoneauth1 ``Adapter`` for the placement service (or
anything with its ``get``/``put``/``post``/``delete``).
"""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
MICROVERSION = 'placement 1.39'


class PlacementError(Exception):
    """Placement refused a write; keeps the status and the body."""

    def __init__(self, method, url, status, body):
        super().__init__('%s %s: HTTP %s: %s' % (method, url, status, body))
        self.status = status


class Reporter:
    """Writes provider trees to one Placement endpoint."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.writes = 0

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
        resp = self._call('get', url, ok=(200, 404))
        return None if resp.status_code == 404 else resp.json()

    def sync(self, provider_tree, root):
        """Make Placement show ``provider_tree`` under the root ``root``."""
        wanted = provider_tree.get_provider_uuids(root)
        held = self._get('/resource_providers?in_tree=%s' % wanted[0])
        held = {rp['uuid']: rp for rp in (held or {}).get(
            'resource_providers', [])}
        for rp_uuid in wanted:
            data = provider_tree.data(rp_uuid)
            current = held.get(rp_uuid) or self._create(data)
            generation = self._sync_inventory(data, current['generation'])
            self._sync_traits(data, generation)
        gone = [u for u in held if u not in wanted]
        for rp_uuid in sorted(gone, key=lambda u: -_depth(held, u)):
            LOG.info('Removing resource provider %s', held[rp_uuid]['name'])
            self._call('delete', '/resource_providers/%s' % rp_uuid)

    def _create(self, data):
        body = {'uuid': data.uuid, 'name': data.name}
        if data.parent_uuid:
            body['parent_provider_uuid'] = data.parent_uuid
        LOG.info('Creating resource provider %s', data.name)
        return self._call('post', '/resource_providers', body).json()

    def _sync_inventory(self, data, generation):
        url = '/resource_providers/%s/inventories' % data.uuid
        current = self._get(url)
        if current['inventories'] == data.inventory:
            return current['resource_provider_generation']
        for name in data.inventory:
            if name.startswith('CUSTOM_'):
                self._call('put', '/resource_classes/%s' % name)
        body = {'resource_provider_generation': generation,
                'inventories': data.inventory}
        return self._call('put', url, body).json()[
            'resource_provider_generation']

    def _sync_traits(self, data, generation):
        url = '/resource_providers/%s/traits' % data.uuid
        current = self._get(url)
        if set(current['traits']) == set(data.traits):
            return
        for name in data.traits:
            if name.startswith('CUSTOM_'):
                self._call('put', '/traits/%s' % name)
        self._call('put', url, {'resource_provider_generation': generation,
                                'traits': sorted(data.traits)})


def _depth(held, rp_uuid):
    depth = 0
    while held.get(rp_uuid, {}).get('parent_provider_uuid'):
        rp_uuid = held[rp_uuid]['parent_provider_uuid']
        depth += 1
    return depth
