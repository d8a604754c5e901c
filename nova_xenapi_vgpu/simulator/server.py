"""The simulator's XML-RPC listeners: one per host, HTTP or HTTPS."""

import http.server
import ipaddress
import socket
import ssl
import threading
import xml.parsers.expat
import xmlrpc.client

from oslo_log import log as logging

from nova_xenapi_vgpu import plugin_files
from nova_xenapi_vgpu.simulator import api as apilib
from nova_xenapi_vgpu.simulator import import_vdi
from nova_xenapi_vgpu.simulator import plugins
from nova_xenapi_vgpu.simulator import power
from nova_xenapi_vgpu.simulator import profiles
from nova_xenapi_vgpu.simulator import world
from nova_xenapi_vgpu.simulator.faults import DropConnection

LOG = logging.getLogger(__name__)
PATHS = ('/', '/RPC2')


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 - http.server's naming
        if self.path not in PATHS:
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        try:
            params, method = xmlrpc.client.loads(body)
        except (xml.parsers.expat.ExpatError, ValueError):
            self.send_error(400, 'malformed XML-RPC request')
            return
        try:
            reply = self.server.api.dispatch(method, params,
                                             self.server.host_ref)
        except DropConnection:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = xmlrpc.client.dumps((reply,), methodresponse=True,
                                   allow_none=True).encode('utf-8')
        self.send_response(200)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):  # noqa: N802 - http.server's naming
        if self.path.split('?', 1)[0] != import_vdi.PATH:
            self.send_error(404)
            return
        import_vdi.handle(self, self.server.api, self.server.host_ref)

    def log_message(self, format, *args):  # noqa: A002
        LOG.debug('%s %s', self.address_string(), format % args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, api, host_ref, tls):
        super().__init__(address, _Handler)
        self.api, self.host_ref, self.tls = api, host_ref, tls

    def finish_request(self, request, client_address):
        """TLS handshake in the worker thread, so no client stalls accept."""
        if self.tls is None:
            return super().finish_request(request, client_address)
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            LOG.debug('TLS handshake with %s failed', client_address,
                      exc_info=True)
            return None
        try:
            return super().finish_request(request, client_address)
        finally:
            request.close()

    def handle_error(self, request, client_address):
        LOG.debug('Connection from %s ended abruptly', client_address,
                  exc_info=True)


class Simulator:
    """A simulated XenServer pool serving XAPI over XML-RPC.

    The master listens on ``listen_host:port`` (port 0: a free one); each
    pool member on the next loopback address with the same port, so that
    ``HOST_IS_SLAVE`` names a real address.
    """

    def __init__(self, profile=profiles.DEFAULT, listen_host='127.0.0.1',
                 port=0, username='root', password='xenroot',
                 tls_cert=None, tls_key=None, latency_ms=0,
                 plugin_dir=None, start_delay_ms=None):
        self.profile = (profiles.load(profile) if isinstance(profile, str)
                        else profiles.validate(profile))
        self.listen_host, self.port = listen_host, port
        self.username, self.password = username, password
        self.db = world.build(self.profile)
        if start_delay_ms is not None:
            self.start_delay_ms = start_delay_ms
        self.plugins = plugins.PluginRunner(
            plugin_dir or _default_plugin_dir(), self.db, self.profile)
        self.api = apilib.Api(self.db, username, password, self.plugins,
                              latency_ms)
        self._tls = _tls_context(tls_cert, tls_key)
        self._servers = []

    def __repr__(self):
        return '<Simulator %s as %s>' % (
            self.url if self._servers else 'stopped', self.username)

    @property
    def scheme(self):
        """``https`` when serving TLS, else ``http``."""
        return 'https' if self._tls else 'http'

    @property
    def urls(self):
        """One URL per host, the master first."""
        return ['%s://%s/' % (self.scheme, _netloc(*s.server_address[:2]))
                for s in self._servers]

    @property
    def url(self):
        """The pool master's URL."""
        return self.urls[0]

    @property
    def start_delay_ms(self):
        """The boot window of each VM start or move, in milliseconds."""
        return self.db.start_delay_ms

    @start_delay_ms.setter
    def start_delay_ms(self, value):
        self.db.start_delay_ms = value

    @property
    def guest_shutdown_ms(self):
        """How long a guest takes to halt on a clean shutdown, in
        milliseconds; None: guests ignore it (it runs until xapi's
        shutdown timeout, ``db.shutdown_timeout_s``)."""
        return self.db.guest_shutdown_ms

    @guest_shutdown_ms.setter
    def guest_shutdown_ms(self, value):
        self.db.guest_shutdown_ms = value

    def set_cpu_vendor(self, host, vendor):
        """``host`` (a ref) has a CPU of ``vendor`` now (host.cpu_info)."""
        with self.db.lock:
            info = dict(self.db.get('host', host)['cpu_info'], vendor=vendor)
            self.db.set('host', host, 'cpu_info', info)

    def set_guest(self, vm, pv_drivers=None, guest_driver_migratable=None):
        """What the guest of ``vm`` (a ref) runs: PV drivers, and whether
        its NVIDIA guest driver allows migration."""
        with self.db.lock:
            for name, value in (('_pv_drivers', pv_drivers),
                                ('_guest_driver_migratable',
                                 guest_driver_migratable)):
                if value is not None:
                    self.db.set('VM', vm, name, value)

    def guest_stopped(self, vm, reason):
        """The guest of ``vm`` (a ref) shut down, rebooted or crashed by
        itself (``reason``); returns the power state its actions_after_*
        lead to."""
        return power.guest_stopped(self.db, vm, reason)

    @property
    def faults(self):
        """Fault injection and call counters (see faults.Faults)."""
        return self.api.faults

    def start(self):
        """Bind every host's listener and serve in background threads."""
        master = self.db.get('pool', self.db.pool)['master']
        hosts = [master] + [h for h in self.db.objects['host']
                            if h != master]
        address = self.listen_host
        try:
            for index, host in enumerate(hosts):
                if index:
                    address = _next_address(address)
                self._serve(host, address)
        except (OSError, ValueError):
            self.stop()
            raise
        return self

    def _serve(self, host, address):
        server = _Server((address, self.port), self.api, host, self._tls)
        self.port = server.server_address[1]
        self.db.set('host', host, 'address', address)
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,),
                         daemon=True, name='xapi-sim-%s' % address).start()

    def stop(self):
        """Stop serving and remove the fake dom0 trees."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []
        self.plugins.close()

    def expire_sessions(self):
        """Invalidate every session (clients get SESSION_INVALID)."""
        self.api.expire_sessions()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _default_plugin_dir():
    try:
        return plugin_files.plugin_dir()
    except FileNotFoundError:
        return plugin_files.plugin_dirs()[-1]


def _tls_context(cert, key):
    if not cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _next_address(address):
    ip = ipaddress.ip_address(address)
    if not ip.is_loopback or ip.version != 4:
        raise ValueError('a pool needs a loopback IPv4 listen address to '
                         'give each member its own, not %s' % address)
    return str(ip + 1)


def _netloc(host, port):
    return '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host,
                                                                   port)
