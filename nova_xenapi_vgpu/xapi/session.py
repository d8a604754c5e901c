"""A bounded, thread-safe pool of logged-in XAPI sessions."""

import contextlib
import http.client
import queue
import ssl
import threading
import time
import urllib.parse
import xmlrpc.client

import XenAPI
from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import transport

LOG = logging.getLogger(__name__)

API_VERSION = '1.2'
ORIGINATOR = 'nova-xenapi-vgpu'
MAX_RETRY_DELAY = 30.0
# Errors after which the same request may succeed: the host restarted,
# a load balancer dropped the connection, the network hiccupped.
TRANSIENT_ERRORS = (ConnectionError, TimeoutError,
                    http.client.RemoteDisconnected,
                    http.client.IncompleteRead, http.client.BadStatusLine)
_insecure_warned = set()


class XapiClient:
    """Calls XAPI through a pool of sessions; the one entry to XAPI."""

    def __init__(self, url, username, password, pool_size=5, timeout=60.0,
                 retries=3, retry_interval=1.0, ca_file=None,
                 insecure=False):
        self.url = url
        self.username = username
        self.__password = password
        self.master_url = None
        self.retries = retries
        self.retry_interval = retry_interval
        self._timeout = timeout
        self._context = transport.tls_context(ca_file, insecure)
        self._idle = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        if insecure and url.lower().startswith('https:'):
            _warn_insecure(url)

    @classmethod
    def from_conf(cls, conf):
        """Build a client from the [xenserver] options of ``conf``."""
        opts = conf.xenserver
        return cls(opts.connection_url, opts.connection_username,
                   opts.connection_password or '',
                   pool_size=opts.connection_concurrent,
                   timeout=opts.call_timeout,
                   retries=opts.connection_retries,
                   retry_interval=opts.connection_retry_interval,
                   ca_file=opts.ca_file, insecure=opts.insecure)

    def __repr__(self):
        return '<XapiClient %s as %s>' % (self.url, self.username)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def call(self, method, *args):
        """Call ``Class.method`` with a pooled session prepended to args.

        :raises: XapiError with XAPI's code and params,
                 XapiConnectionError when XAPI cannot be reached.
        """
        with self._session() as session:
            return self._request(session, method, args)

    def this_host(self):
        """The host the session is logged in to (``session.get_this_host``).

        :raises: XapiError, XapiConnectionError.
        """
        with self._session() as session:
            try:
                return self._request(session, 'session.get_this_host',
                                     (session.handle,))
            except exception.SessionInvalid:
                # The SDK logged in again but resent the stale handle as
                # the argument: ask once more with the fresh one.
                return self._request(session, 'session.get_this_host',
                                     (session.handle,))

    def event_from(self, classes, token, timeout):
        """``event.from``: wait up to ``timeout`` s for changes after token.

        :raises: XapiError, XapiConnectionError.
        """
        with self._session() as session:
            session.transport.timeout = self._timeout + timeout
            try:
                return self._request(session, 'event.from',
                                     (classes, token, float(timeout)))
            finally:
                session.transport.timeout = self._timeout

    def close(self):
        """Log out every idle session; borrowed ones log out on return."""
        self._closed = True
        while True:
            try:
                self._logout(self._idle.get_nowait())
            except queue.Empty:
                return

    @contextlib.contextmanager
    def _session(self):
        with self._slots:
            try:
                session = self._idle.get_nowait()
            except queue.Empty:
                session = self._login()
            try:
                yield session
            finally:
                if self._closed:
                    self._logout(session)
                else:
                    self._idle.put(session)

    def _request(self, session, method, args):
        return self._retrying(
            method, lambda: session.xenapi_request(method, tuple(args)))

    def _login(self):
        url = self.master_url or self.url
        try:
            return self._login_at(url)
        except exception.XapiError as exc:
            if exc.code != 'HOST_IS_SLAVE' or self.master_url:
                raise
            self.master_url = master_url(url, exc.params[0])
        LOG.info('%s is a pool member; using the pool master at %s',
                 url, self.master_url)
        return self._login_at(self.master_url)

    def _login_at(self, url):
        session = self._new_session(url)
        self._retrying('session.login_with_password',
                       lambda: session.login_with_password(
                           self.username, self.__password,
                           API_VERSION, ORIGINATOR))
        LOG.debug('Logged in to %s as %s', url, self.username)
        return session

    def _new_session(self, url):
        session = XenAPI.Session(
            url, transport=transport.make_transport(
                url, self._timeout, self._context))
        session.url = url
        return session

    def _logout(self, session):
        try:
            session.xenapi.session.logout()
        except (XenAPI.Failure, xmlrpc.client.Error, OSError) as exc:
            LOG.debug('Ignoring failed logout from %s: %s', session.url, exc)

    def _retrying(self, method, func):
        """Run one XAPI request with retries; every failure leaves here as
        XapiError or XapiConnectionError."""
        attempt = 0
        while True:
            try:
                return func()
            except XenAPI.Failure as failure:
                raise exception.from_failure(failure.details) from None
            except xmlrpc.client.Fault as fault:
                raise _fault_error(fault) from None
            except ssl.SSLError as exc:
                raise self._unreachable(method, 1, exc) from None
            except (*TRANSIENT_ERRORS, OSError) as exc:
                if not _retriable(method, exc) or attempt >= self.retries:
                    raise self._unreachable(method, attempt + 1,
                                            exc) from None
                delay = min(self.retry_interval * 2 ** attempt,
                            MAX_RETRY_DELAY)
                attempt += 1
                LOG.warning('%s to %s failed (%s); retry %d of %d in %.1fs',
                            method, self.master_url or self.url, exc,
                            attempt, self.retries, delay)
                time.sleep(delay)
            except xmlrpc.client.ProtocolError as exc:
                raise self._unreachable(method, attempt + 1, exc) from None

    def _unreachable(self, method, attempts, exc):
        reason = '%s: %s' % (type(exc).__name__, exc)
        return exception.XapiConnectionError(
            url=self.master_url or self.url, attempts=attempts,
            method=method, reason=reason)


def _retriable(method, exc):
    """Refused: the request never left; others only for read-only calls."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    if not isinstance(exc, TRANSIENT_ERRORS):
        return False
    name = method.rsplit('.', 1)[-1]
    return name.startswith('get_') or name in ('from', 'login_with_password')


def _fault_error(fault):
    if 'valid session' in fault.faultString or 'SESSION_INVALID' in (
            fault.faultString):
        return exception.SessionInvalid('SESSION_INVALID',
                                        [fault.faultString])
    return exception.XapiError('XMLRPC_FAULT',
                               [fault.faultCode, fault.faultString])


def master_url(url, address):
    """``url`` pointed at the pool master ``address`` (same scheme, port)."""
    parts = urllib.parse.urlsplit(url)
    host = '[%s]' % address if ':' in address else address
    if parts.port:
        host = '%s:%d' % (host, parts.port)
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _warn_insecure(url):
    if url not in _insecure_warned:
        _insecure_warned.add(url)
        LOG.warning('TLS certificate verification is disabled for %s '
                    '([xenserver] insecure = True)', url)
