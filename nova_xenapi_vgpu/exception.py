"""Exceptions raised by nova-xenapi-vgpu."""


class NovaXenapiVgpuException(Exception):
    """Base exception: formats ``msg_fmt`` with the keyword arguments."""

    msg_fmt = "An unknown error occurred"

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            message = self.msg_fmt % kwargs
        super().__init__(message)


class ConfigError(NovaXenapiVgpuException):
    """An option has a value this project cannot use."""

    msg_fmt = "Invalid value for [%(group)s] %(option)s: %(reason)s"


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


class XapiConnectionError(NovaXenapiVgpuException):
    """XAPI could not be reached, even after the configured retries."""

    msg_fmt = ("Cannot reach XAPI at %(url)s after %(attempts)d attempt(s) "
               "calling %(method)s: %(reason)s")


class PluginError(NovaXenapiVgpuException):
    """The dom0 plugin is missing, too old, or answered nonsense."""

    msg_fmt = "dom0 plugin %(plugin)s on host %(host)s: %(reason)s"


_XAPI_ERRORS = {
    'SESSION_AUTHENTICATION_FAILED': AuthenticationFailed,
    'HANDLE_INVALID': HandleInvalid,
    'SESSION_INVALID': SessionInvalid,
}


def from_failure(details):
    """Build the XapiError subclass matching a ``[code, param...]`` list."""
    details = list(details) or ['UNKNOWN_ERROR']
    cls = _XAPI_ERRORS.get(details[0], XapiError)
    return cls(details[0], details[1:])
