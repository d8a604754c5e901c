"""Stand-in for dom0's XenAPIPlugin module, which PyPI does not ship.

It follows xapi's plugin protocol: argv[1] is an XML-RPC methodCall
``fn(session_ref, args)``; the reply is printed as a methodResponse holding
a Success or Failure struct.
"""

import sys
import xmlrpc.client


class Failure(Exception):
    """A plugin's refusal: reaches the caller as ``[code] + params``."""

    def __init__(self, code, params):
        super().__init__(code, params)
        if not isinstance(params, list) or not all(
                isinstance(p, str) for p in params):
            raise TypeError('Failure params must be a list of strings')
        self.code = code
        self.params = params


def _reply(struct):
    print(xmlrpc.client.dumps((struct,), methodresponse=True,
                              allow_none=True))


def dispatch(fn_table):
    """Run the function named by the methodCall in argv[1]."""
    if len(sys.argv) != 2:
        raise SystemExit('usage: %s <XML-RPC methodCall>' % sys.argv[0])
    params, name = xmlrpc.client.loads(sys.argv[1])
    session, args = params[0], params[1]
    if name not in fn_table:
        _reply({'Status': 'Failure',
                'ErrorDescription': ['UNKNOWN_XENAPI_PLUGIN_FUNCTION', name]})
        return
    try:
        result = fn_table[name](session, args)
    except Failure as exc:
        _reply({'Status': 'Failure',
                'ErrorDescription': [exc.code] + exc.params})
    except Exception as exc:  # noqa: BLE001 - reported as xapi does
        _reply({'Status': 'Failure',
                'ErrorDescription': ['XENAPI_PLUGIN_FAILURE', name,
                                     type(exc).__name__, str(exc)]})
    else:
        _reply({'Status': 'Success', 'Value': result})
