"""Exceptions raised by nova-xenapi-vgpu."""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class NovaXenapiVgpuException(Exception):
    """Base exception: formats ``msg_fmt`` with the keyword arguments.

    Formatting never raises: with a missing or mistyped argument the bare
    ``msg_fmt`` is the message, as in Nova.
    """

    msg_fmt = "An unknown error occurred"

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                LOG.debug('Cannot format %s with %s', type(self).__name__,
                          sorted(kwargs))
                message = self.msg_fmt
        super().__init__(message)


class ConfigError(NovaXenapiVgpuException):
    """An option has a value this project cannot use."""

    msg_fmt = "Invalid value for [%(group)s] %(option)s: %(reason)s"


class InvalidAlias(ConfigError):
    """A ``[vgpu] alias`` value that Nova's rules (or vgpu_type) refuse."""

    msg_fmt = "Invalid [vgpu] alias %(alias)s: %(key)s: %(reason)s"


class InvalidVgpuRequest(NovaXenapiVgpuException):
    """A flavor's vGPU request that cannot be read."""

    msg_fmt = "Invalid vGPU request %(spec)s: %(reason)s"


class ClaimRefused(NovaXenapiVgpuException):
    """vGPUs that this host cannot promise (Nova's PciDeviceRequestFailed)."""

    msg_fmt = "vGPU claim refused: %(reason)s"


class VgpuAttachRefused(NovaXenapiVgpuException):
    """vGPUs that XAPI would refuse for this VM, refused before any call."""

    msg_fmt = "Cannot give VM %(vm)s vGPUs: %(reason)s"


class OperationRefused(NovaXenapiVgpuException):
    """An operation on a vGPU VM that XAPI would refuse, refused first."""

    msg_fmt = "Cannot %(operation)s VM %(vm)s: %(reason)s"


class XapiError(NovaXenapiVgpuException):
    """XAPI answered with a failure; keeps its error code and params."""

    msg_fmt = "XAPI error %(code)s %(params)s"

    def __init__(self, code, params=()):
        self.code = code
        self.params = [str(p) for p in params]
        super().__init__(code=code, params=self.params)

    @property
    def details(self):
        """The failure as XAPI sent it: ``[code, param, ...]``."""
        return [self.code] + self.params


class AuthenticationFailed(XapiError):
    """XAPI refused the configured credentials."""


class HandleInvalid(XapiError):
    """A reference named an object XAPI does not have."""


class SessionInvalid(XapiError):
    """XAPI kept refusing the session, even after logging in again."""


class HostIsSlave(XapiError):
    """The host called is a pool member; ``params[0]`` is the master."""


class XapiConnectionError(NovaXenapiVgpuException):
    """A call did not complete because of the connection to XAPI."""

    msg_fmt = "Connection to XAPI at %(url)s failed calling %(method)s: " \
              "%(reason)s"


class XapiUnreachable(XapiConnectionError):
    """Nothing reached XAPI, even after the configured retries."""

    msg_fmt = ("Cannot reach XAPI at %(url)s after %(attempts)d attempt(s) "
               "calling %(method)s: %(reason)s")


class XapiTlsError(XapiUnreachable):
    """TLS cannot work as configured: retrying would not help."""

    msg_fmt = "TLS with XAPI at %(url)s failed: %(reason)s"


class XapiOutcomeUnknown(XapiConnectionError):
    """A call was sent but no answer came: it may have taken effect.

    ``method`` and ``args`` (secrets masked) let the caller find out.
    """

    msg_fmt = ("XAPI at %(url)s did not answer %(method)s%(args)s "
               "(%(reason)s); it may have taken effect")

    def __init__(self, url, method, args, reason):
        self.method, self.call_args = method, tuple(args)
        super().__init__(url=url, method=method, args=_short(args),
                         reason=reason)


def _short(args, limit=200):
    text = repr(tuple(args))
    return text if len(text) <= limit else text[:limit - 4] + '...)'


class XapiTaskTimeout(XapiConnectionError):
    """A long operation overran its time and was cancelled: not done."""

    msg_fmt = ("%(method)s did not finish within %(seconds)s s; its task "
               "%(task)s was cancelled and it did not take effect")


class HostNotFound(NovaXenapiVgpuException):
    """This compute host is not a host of the XAPI pool."""

    msg_fmt = "No XenServer host matches %(wanted)s; tried %(tried)s"


class PluginError(NovaXenapiVgpuException):
    """The dom0 plugin is missing, too old, or answered nonsense."""

    msg_fmt = "dom0 plugin %(plugin)s on host %(host)s: %(reason)s"


class RecordError(NovaXenapiVgpuException):
    """A XAPI record lacks a field this project relies on."""

    msg_fmt = "XAPI %(cls)s %(ref)s has no field %(field)s"


_XAPI_ERRORS = {
    'SESSION_AUTHENTICATION_FAILED': AuthenticationFailed,
    'HANDLE_INVALID': HandleInvalid,
    'SESSION_INVALID': SessionInvalid,
    'HOST_IS_SLAVE': HostIsSlave,
}


def from_failure(details):
    """Build the XapiError subclass matching a ``[code, param...]`` list."""
    details = list(details) or ['UNKNOWN_ERROR']
    cls = _XAPI_ERRORS.get(details[0], XapiError)
    return cls(details[0], details[1:])
