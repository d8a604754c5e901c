"""The failure the simulator raises to answer a call with XAPI's error."""


class XapiFailure(Exception):
    """Becomes ``{"Status": "Failure", "ErrorDescription": [code, ...]}``."""

    def __init__(self, code, *params):
        super().__init__(code, *params)
        self.code = code
        self.params = [str(p) for p in params]

    @property
    def description(self):
        """The ErrorDescription list."""
        return [self.code] + self.params
