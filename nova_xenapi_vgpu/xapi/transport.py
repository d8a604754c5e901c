"""XML-RPC transports with a call timeout and verified TLS."""

import ssl
import xmlrpc.client


class _TimeoutMixin:
    """Applies ``self.timeout`` to new and kept-alive connections alike."""

    timeout = None

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        return conn


class TimeoutTransport(_TimeoutMixin, xmlrpc.client.Transport):
    """Plain HTTP transport whose calls time out."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout


class TimeoutSafeTransport(_TimeoutMixin, xmlrpc.client.SafeTransport):
    """HTTPS transport whose calls time out."""

    def __init__(self, timeout, context):
        super().__init__(context=context)
        self.timeout = timeout


def tls_context(ca_file=None, insecure=False):
    """An SSL context that verifies XAPI unless ``insecure`` is set."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def make_transport(url, timeout, context):
    """The transport for ``url``: HTTPS ones use ``context``."""
    if url.lower().startswith('https:'):
        return TimeoutSafeTransport(timeout, context)
    return TimeoutTransport(timeout)
