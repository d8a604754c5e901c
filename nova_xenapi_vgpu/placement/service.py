"""The real openstack-placement service, in-process, on SQLite, no auth.

For tests, the demo and CI: ``nova-xenapi-vgpu placement serve``.
"""

import contextlib
import tempfile
import threading
from wsgiref import simple_server

from keystoneauth1 import adapter
from keystoneauth1 import session
from oslo_config import cfg
from placement import conf as placement_conf
from placement import db_api
from placement import deploy
from placement.objects import resource_class
from placement.objects import trait


class _Quiet(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(host='127.0.0.1', port=0, db=None):
    """Serve Placement (noauth2); yield an Adapter to it (token admin).

    ``db`` is the SQLite file (default: a temporary one). Each service
    has a database of its own, so one process can start one again.
    """
    conf = cfg.ConfigOpts()
    placement_conf.register_opts(conf)
    with tempfile.TemporaryDirectory() as tmp:
        conf.set_default('connection', 'sqlite:///%s' % (
            db or '%s/placement.db' % tmp), group='placement_database')
        conf.set_default('sync_on_startup', True, group='placement_database')
        conf([], default_config_files=[])
        conf.set_override('auth_strategy', 'noauth2', group='api')
        with _database(conf):
            server = simple_server.make_server(
                host, port, deploy.loadapp(conf), handler_class=_Quiet)
            threading.Thread(target=server.serve_forever,
                             daemon=True).start()
            try:
                yield adapter.Adapter(
                    session.Session(), service_type='placement',
                    endpoint_override='http://%s:%d' % (
                        server.server_address[:2]),
                    additional_headers={'X-Auth-Token': 'admin'})
            finally:
                server.shutdown()
                server.server_close()


@contextlib.contextmanager
def _database(conf):
    """Point Placement's process-wide database context at ``conf``'s
    database until the end, as placement's own test fixtures do: a fresh
    transaction factory patched in, and the traits and resource classes
    synced again into the new database."""
    manager = db_api.placement_context_manager
    fresh = manager.make_new_manager()
    fresh.configure(connection=conf.placement_database.connection)
    restore = manager.patch_factory(fresh)
    trait._TRAITS_SYNCED = False
    resource_class._RESOURCE_CLASSES_SYNCED = False
    try:
        yield
    finally:
        fresh.dispose_pool()
        restore()
