"""XML-RPC transports that know whether a request left, with verified TLS.

Each request is sent once. A failure before the request was written
(refused, DNS, TLS handshake, connect timeout) is raised as ``NotSent``;
one after (timeout, reset, dropped reply) as ``Sent``, because XAPI may
have acted on it. ``xmlrpc.client`` would silently resend a request whose
kept-alive connection failed, which could run a ``VGPU.create`` twice;
here a connection the peer already closed is replaced before sending.
"""

import select
import socket
import ssl
import xmlrpc.client

DEFAULT_CONNECT_TIMEOUT = 10.0


class TransportError(Exception):
    """A request failed in transit; ``cause`` is the original error."""

    def __init__(self, cause):
        super().__init__('%s: %s' % (type(cause).__name__, cause))
        self.cause = cause


class NotSent(TransportError):
    """Nothing reached XAPI: safe to try again."""


class Sent(TransportError):
    """The request was written, then no (whole) answer came back."""


def _closed_by_peer(sock):
    """Whether a kept-alive socket was closed (or reset) by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and not sock.recv(1, socket.MSG_PEEK)
    except (OSError, ValueError):
        return True


class _Mixin:
    """Connect (bounded by ``connect_timeout``), then send once."""

    timeout = None
    connect_timeout = DEFAULT_CONNECT_TIMEOUT

    def request(self, host, handler, request_body, verbose=False):
        conn = self.make_connection(host)
        if conn.sock is not None and _closed_by_peer(conn.sock):
            self.close()
            conn = self.make_connection(host)
        if conn.sock is None:
            conn.timeout = min(self.connect_timeout, self.timeout or
                               self.connect_timeout)
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as exc:
                self.close()
                raise NotSent(exc) from None
        conn.sock.settimeout(self.timeout)
        try:
            return self.single_request(host, handler, request_body, verbose)
        except (xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            raise  # XAPI (or whatever listens) answered
        except Exception as exc:  # noqa: BLE001 - any loss in transit
            self.close()
            raise Sent(exc) from None


class TimeoutTransport(_Mixin, xmlrpc.client.Transport):
    """Plain HTTP."""

    def __init__(self, timeout, connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        super().__init__()
        self.timeout = timeout
        self.connect_timeout = connect_timeout


class TimeoutSafeTransport(_Mixin, xmlrpc.client.SafeTransport):
    """HTTPS, verified by ``context``."""

    def __init__(self, timeout, context,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        super().__init__(context=context)
        self.timeout = timeout
        self.connect_timeout = connect_timeout


def tls_context(ca_file=None, insecure=False):
    """An SSL context that verifies XAPI unless ``insecure`` is set.

    :raises: OSError or ssl.SSLError for an unreadable ``ca_file``.
    """
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def make_transport(url, timeout, context,
                   connect_timeout=DEFAULT_CONNECT_TIMEOUT):
    """The transport for ``url``: HTTPS ones use ``context``."""
    if url.lower().startswith('https:'):
        return TimeoutSafeTransport(timeout, context, connect_timeout)
    return TimeoutTransport(timeout, connect_timeout)


def speaks_tls(host, port, timeout):
    """Whether a TLS handshake with ``host:port`` gets anywhere."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except (OSError, ssl.SSLError):
        return False
