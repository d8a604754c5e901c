"""Values and envelopes as xapi puts them on the wire."""


class Int32(int):
    """An int32 field: the one kind of integer xapi sends as ``<int>``."""


def to_wire(value):
    """int64 values as strings, recursively, as xapi sends them."""
    if isinstance(value, str) or isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Int32):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def success(value):
    """The Success envelope."""
    return {'Status': 'Success', 'Value': to_wire(value)}


def failure(description):
    """The Failure envelope."""
    return {'Status': 'Failure', 'ErrorDescription': description}
