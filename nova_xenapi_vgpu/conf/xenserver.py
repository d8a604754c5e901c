"""Options of the [xenserver] group: how to reach and trust XAPI."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'xenserver',
    title='XenServer options',
    help='How this compute service connects to XAPI, the XenServer API.')

OPTS = [
    cfg.URIOpt(
        'connection_url',
        schemes=['http', 'https'],
        help="""
URL of XAPI on the XenServer host this compute service manages.

Possible values:

* ``https://<host address>/`` (the XenServer default) or ``http://...``.
  Credentials must not be part of the URL.
* Unset: the command line's read-only commands run against a built-in
  simulator and say so; commands that change things refuse to, unless
  ``--simulator`` asks for it.

Related options:

* ``connection_username``, ``connection_password``, ``ca_file``,
  ``insecure``.
"""),
    cfg.StrOpt(
        'connection_username',
        default='root',
        help='User name for logging in to XAPI.'),
    cfg.StrOpt(
        'connection_password',
        secret=True,
        help="""
Password for logging in to XAPI.

It never appears in a log, an exception message or a repr.
"""),
    cfg.StrOpt(
        'ca_file',
        help="""
CA bundle (PEM file) used to verify XAPI's TLS certificate.

Possible values:

* Unset: the system trust store is used.
* A path to a PEM file, e.g. a copy of the host's ``xapi-ssl.pem``
  certificate.

Related options:

* ``insecure``
"""),
    cfg.BoolOpt(
        'insecure',
        default=False,
        help="""
Skip verification of XAPI's TLS certificate.

This is an explicit opt-in for test beds with self-signed certificates: it
makes the connection open to a man in the middle, and a warning is logged
once. Prefer ``ca_file``.
"""),
    cfg.IntOpt(
        'connection_concurrent',
        default=5,
        min=1,
        max=100,
        help="""
Size of the pool of XAPI sessions shared by concurrent operations.

A compute host builds several instances at once; each operation borrows a
logged-in session from this pool and waits when all are busy.
"""),
    cfg.FloatOpt(
        'call_timeout',
        default=60.0,
        min=0.1,
        help="""
Seconds to wait for XAPI to answer one call before it counts as failed.

``event.from`` calls add their own timeout to this value.
"""),
    cfg.FloatOpt(
        'connect_timeout',
        default=10.0,
        min=0.1,
        help="""
Seconds to wait for a TCP connection (and TLS handshake) to XAPI, and for
XAPI to answer a login.

Kept short so that an unreachable or hung XAPI is reported within seconds
rather than after ``call_timeout`` times the retries.

Related options:

* ``call_timeout``, ``connection_retries``
"""),
    cfg.FloatOpt(
        'task_timeout',
        default=600.0,
        min=1.0,
        help="""
Seconds a long XAPI operation (VM start, shutdown, suspend, resume,
migration) may run as an ``Async`` task before it is cancelled.

Related options:

* ``call_timeout``
"""),
    cfg.IntOpt(
        'connection_retries',
        default=3,
        min=0,
        help="""
How many times a call is retried after a connection error.

A call that never reached XAPI (connection refused, name not resolved,
connect timeout) is retried whatever it does. A call that was sent and then
lost its answer is retried only when it reads; a write fails at once with
``XapiOutcomeUnknown``, because XAPI may have done it. TLS errors are never
retried. After the last retry the call fails with ``XapiUnreachable``.

Related options:

* ``connection_retry_interval``, ``connect_timeout``
"""),
    cfg.FloatOpt(
        'connection_retry_interval',
        default=1.0,
        min=0.0,
        help="""
Seconds before the first retry; each further retry waits twice as long,
capped at 30 seconds.

Related options:

* ``connection_retries``
"""),
    cfg.StrOpt(
        'host_uuid',
        help="""
UUID of the XenServer host whose GPUs this compute service reports.

Possible values:

* Unset: the host that ``connection_url`` points at, even when that host is
  a pool member and the session was redirected to the pool master.
* The UUID of a host of the pool (``xe host-list``).
"""),
    cfg.StrOpt(
        'default_network_bridge',
        help="""
Bridge of the XenServer network that a Neutron port's VIF goes on when no
network of the pool has the bridge the port's binding names (Neutron's
Open vSwitch agent names its integration bridge, ``br-int`` by default,
which a XenServer pool rarely has under that name).

Possible values:

* Unset: a port whose bridge no network of the pool has fails the build,
  naming the bridge.
* The ``bridge`` of a pool network (``xe network-list params=bridge``),
  e.g. ``xenbr0``.
"""),
]

