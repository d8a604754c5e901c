"""A bounded, thread-safe pool of logged-in XAPI sessions.

What is retried: a call that never reached XAPI (refused, DNS, connect
timeout), whatever it does; a read whose answer was lost. What is not: a
write whose answer was lost (``XapiOutcomeUnknown``: XAPI may have done
it), TLS failures (``XapiTlsError``). ``HOST_IS_SLAVE``, at login or on
any later call, sends the client to the pool master and the call is made
again there (XAPI did not run it).
"""

import contextlib
import http.client
import queue
import re
import ssl
import threading
import time
import urllib.parse
import xmlrpc.client

import XenAPI
from oslo_log import log as logging

from nova_xenapi_vgpu import exception
from nova_xenapi_vgpu.xapi import tasks
from nova_xenapi_vgpu.xapi import transport

LOG = logging.getLogger(__name__)

API_VERSION = '1.2'
ORIGINATOR = 'nova-xenapi-vgpu'
MAX_RETRY_DELAY = 30.0
MASK = '***'
# A session handle carried in a URL (migrate_receive's SM and xenops).
_SESSION_IN_URL = re.compile(r'(session_id=)[^&#\s]+')
# Calls that change nothing, so that repeating one is harmless.
_READS = frozenset({'event.from', 'session.login_with_password',
                    'session.get_this_host'})
# What an HTTP client sees when it talks to a TLS server.
_PLAIN_TO_TLS = (http.client.RemoteDisconnected, http.client.BadStatusLine,
                 ConnectionResetError)
_insecure_warned = set()


def is_read(method):
    """Whether ``method`` only reads (``Class.get_*`` and a few more)."""
    return method in _READS or method.rpartition('.')[2].startswith('get_')


class XapiClient:
    """Calls XAPI through a pool of sessions; the one entry to XAPI."""

    def __init__(self, url, username, password, pool_size=5, timeout=60.0,
                 retries=3, retry_interval=1.0, ca_file=None,
                 insecure=False, connect_timeout=10.0, task_timeout=600.0,
                 sleep=time.sleep):
        self.url = url
        self.username = username
        self.__password = password
        self.master_url = None
        self.retries = retries
        self.retry_interval = retry_interval
        self.connect_timeout = connect_timeout
        self.task_timeout = task_timeout
        self.sleep = sleep
        self._timeout = timeout
        self._context = transport.tls_context(ca_file, insecure)
        self._idle = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        if insecure and url.lower().startswith('https:'):
            _warn_insecure(url)

    @classmethod
    def from_conf(cls, conf):
        """Build a client from the [xenserver] options of ``conf``.

        :raises: OSError, ssl.SSLError for an unusable ``ca_file``.
        """
        opts = conf.xenserver
        return cls(opts.connection_url, opts.connection_username,
                   opts.connection_password or '',
                   pool_size=opts.connection_concurrent,
                   timeout=opts.call_timeout,
                   retries=opts.connection_retries,
                   retry_interval=opts.connection_retry_interval,
                   ca_file=opts.ca_file, insecure=opts.insecure,
                   connect_timeout=opts.connect_timeout,
                   task_timeout=opts.task_timeout)

    def __repr__(self):
        return '<XapiClient %s as %s>' % (self.url, self.username)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def target_url(self):
        """Where calls go: the pool master once known, else the URL."""
        return self.master_url or self.url

    def call(self, method, *args):
        """Call ``Class.method`` with a pooled session prepended to args.

        :raises: XapiError with XAPI's code and params; XapiUnreachable,
                 XapiTlsError, XapiOutcomeUnknown.
        """
        return self._on_master(
            lambda session: self._request(session, method, args))

    def call_async(self, method, *args):
        """A long operation through ``Async.`` and its task.

        :raises: XapiError, XapiTaskTimeout, XapiOutcomeUnknown,
                 XapiConnectionError.
        """
        return tasks.run(self, method, *args, timeout=self.task_timeout)

    def this_host(self):
        """The host the session is logged in to (``session.get_this_host``).

        :raises: XapiError, XapiConnectionError.
        """
        def ask(session):
            try:
                return self._request(session, 'session.get_this_host',
                                     (session.handle,))
            except exception.SessionInvalid:
                # The SDK logged in again but resent the stale handle as
                # the argument: ask once more with the fresh one.
                return self._request(session, 'session.get_this_host',
                                     (session.handle,))
        return self._on_master(ask)

    def event_from(self, classes, token, timeout):
        """``event.from``: wait up to ``timeout`` s for changes after token.

        :raises: XapiError, XapiConnectionError.
        """
        def wait(session):
            session.transport.timeout = self._timeout + timeout
            try:
                return self._request(session, 'event.from',
                                     (classes, token, float(timeout)))
            finally:
                session.transport.timeout = self._timeout
        return self._on_master(wait)

    @contextlib.contextmanager
    def lend_handle(self):
        """A logged-in session's handle for an HTTP request to XAPI (such
        as ``PUT /import_raw_vdi``), kept out of the pool until it ends.

        :raises: XapiConnectionError, AuthenticationFailed.
        """
        with self._session() as session:
            yield session.handle

    def http_connection(self, address, timeout=None):
        """An HTTP(S) connection to the pool host at ``address``, with the
        scheme, port and TLS verification of ``connection_url``."""
        url = master_url(self.url, address)
        host, port = urllib.parse.urlsplit(url).hostname, port_of(url)
        if url.lower().startswith('https:'):
            return http.client.HTTPSConnection(
                host, port, context=self._context,
                timeout=timeout or self._timeout)
        return http.client.HTTPConnection(host, port,
                                          timeout=timeout or self._timeout)

    def close(self):
        """Log out every idle session; borrowed ones log out on return."""
        self._closed = True
        for session in self._drain():
            self._logout(session)

    def _on_master(self, func):
        """Run ``func(session)``; after HOST_IS_SLAVE, again on the master."""
        for _ in range(2):
            try:
                with self._session() as session:
                    return func(session)
            except exception.HostIsSlave as exc:
                self._follow_master(exc.params[0])
        with self._session() as session:
            return func(session)

    def _follow_master(self, address):
        new = master_url(self.url, address)
        if new == self.target_url:
            return
        LOG.info('%s is a pool member; using the pool master at %s',
                 self.target_url, new)
        self.master_url = new
        for session in self._drain():
            self._logout(session)

    def _drain(self):
        while True:
            try:
                yield self._idle.get_nowait()
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
            except (exception.XapiConnectionError,
                    exception.AuthenticationFailed,
                    exception.SessionInvalid, exception.HostIsSlave):
                # Its connection or login is in doubt: never reuse it.
                raise
            except BaseException:
                self._release(session)
                raise
            else:
                self._release(session)

    def _release(self, session):
        if self._closed or session.url != self.target_url:
            self._logout(session)
        else:
            self._idle.put(session)

    def _request(self, session, method, args):
        return self._retrying(
            method, args,
            lambda: session.xenapi_request(method, tuple(args)), session.url)

    def _login(self):
        for _ in range(3):
            url = self.target_url
            try:
                return self._login_at(url)
            except exception.HostIsSlave as exc:
                self._follow_master(exc.params[0])
        raise exception.XapiUnreachable(
            url=self.url, attempts=3, method='session.login_with_password',
            reason='HOST_IS_SLAVE kept pointing elsewhere')

    def _login_at(self, url):
        session = XenAPI.Session(url, transport=transport.make_transport(
            url, self.connect_timeout, self._context, self.connect_timeout))
        session.url = url
        self._retrying('session.login_with_password', (), lambda: (
            session.login_with_password(self.username, self.__password,
                                        API_VERSION, ORIGINATOR)), url)
        session.transport.timeout = self._timeout
        LOG.debug('Logged in to %s as %s', url, self.username)
        return session

    def _logout(self, session):
        try:
            session.transport.timeout = self.connect_timeout
            session.xenapi.session.logout()
        except (XenAPI.Failure, xmlrpc.client.Error, OSError,
                transport.TransportError) as exc:
            LOG.debug('Ignoring failed logout from %s: %s', session.url, exc)

    def _retrying(self, method, args, func, url):
        """Run one XAPI request to ``url``, retrying what is safe to
        retry; every failure leaves here as a project exception."""
        attempt = 0
        while True:
            try:
                return func()
            except XenAPI.Failure as failure:
                raise exception.from_failure(failure.details) from None
            except xmlrpc.client.Fault as fault:
                raise _fault_error(fault) from None
            except xmlrpc.client.ProtocolError as exc:
                raise exception.XapiUnreachable(
                    url=url, attempts=attempt + 1, method=method,
                    reason='HTTP %s %s: is this XAPI?' % (
                        exc.errcode, exc.errmsg)) from None
            except transport.NotSent as exc:
                if isinstance(exc.cause, ssl.SSLError):
                    raise _tls_error(url, exc.cause) from None
                reason = exc
            except transport.Sent as exc:
                self._check_scheme(url, exc.cause)
                if not is_read(method):
                    raise exception.XapiOutcomeUnknown(
                        url, method, self.mask(args),
                        _describe(exc.cause)) from None
                reason = exc
            if attempt >= self.retries:
                raise exception.XapiUnreachable(
                    url=url, attempts=attempt + 1, method=method,
                    reason=_describe(reason.cause))
            delay = min(self.retry_interval * 2 ** attempt, MAX_RETRY_DELAY)
            attempt += 1
            LOG.warning('%s to %s failed (%s); retry %d of %d in %.1fs',
                        method, url, _describe(reason.cause), attempt,
                        self.retries, delay)
            self.sleep(delay)

    def _check_scheme(self, url, cause):
        """http:// to a TLS server: say so instead of retrying."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == 'http' and isinstance(cause, _PLAIN_TO_TLS) and (
                transport.speaks_tls(parts.hostname, port_of(url),
                                     self.connect_timeout)):
            raise exception.XapiTlsError(
                url=url, reason='the server speaks HTTPS; use https:// in '
                '[xenserver] connection_url (or --url)')

    def mask(self, args):
        """``args`` with the password and session handles (a
        ``session_id`` entry, ``session_id=`` in a URL: what
        ``host.migrate_receive`` gives ``VM.migrate_send``) replaced
        wherever they appear."""
        def mask(value, key=None):
            if isinstance(value, str):
                if value == self.__password or key == 'session_id':
                    return MASK
                return _SESSION_IN_URL.sub(r'\g<1>' + MASK, value)
            if isinstance(value, dict):
                return {k: mask(v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(mask(v) for v in value)
            return value
        return tuple(mask(a) for a in args)


def _describe(cause):
    if isinstance(cause, TimeoutError):
        return 'no answer in time (%s)' % (str(cause) or 'timed out')
    return '%s: %s' % (type(cause).__name__, cause)


def _tls_error(url, cause):
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = ('untrusted certificate (%s); set [xenserver] ca_file to '
                  'the CA that signed it, or --insecure to skip '
                  'verification' % cause.verify_message)
    elif 'WRONG_VERSION_NUMBER' in str(cause) or 'record' in str(cause):
        reason = ('the server does not speak TLS (%s); use http:// in '
                  '[xenserver] connection_url, or check the port'
                  % cause.reason)
    else:
        reason = 'handshake failed (%s); check [xenserver] ca_file' % cause
    return exception.XapiTlsError(url=url, reason=reason)


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


def port_of(url):
    """The port ``url`` names, else its scheme's (80 or 443)."""
    parts = urllib.parse.urlsplit(url)
    return parts.port or {'http': 80, 'https': 443}[parts.scheme.lower()]


def _warn_insecure(url):
    if url not in _insecure_warned:
        _insecure_warned.add(url)
        LOG.warning('TLS certificate verification is disabled for %s '
                    '([xenserver] insecure = True)', url)
