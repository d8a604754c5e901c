"""XML-RPC transports with a call timeout and verified TLS."""

import ssl
import xmlrpc.client

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class TimeoutTransport(xmlrpc.client.Transport):
    """Plain HTTP transport whose connections time out."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class TimeoutSafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS transport whose connections time out."""

    def __init__(self, timeout, context):
        super().__init__(context=context)
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


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
