"""The wire types of the parameters of login, the VM operations and
VGPU.create, as xapi unmarshals them (wire-protocol.md): a ``ref`` is a
``<string>``, a ``bool`` a ``<boolean>``, a map a ``<struct>`` (of
``<string>``s for a ``(string -> string) map``). A value of another type
(``<nil/>`` for a bool, say) fails before the call runs, with
``XMLRPC_UNMARSHAL_FAILURE [expected, received]`` (datamodel_errors.ml).
"""

from nova_xenapi_vgpu.simulator.errors import XapiFailure

_WIRE = {'ref': str, 'string': str, 'bool': bool, 'map': dict,
         'string map': dict}
_VM_PAIR = ('ref', 'ref')
_MIGRATE = ('ref', 'map', 'bool', 'map', 'map', 'map', 'map')

# Parameters after the session (login has none before them), as xapi's
# datamodel declares them; login's version is read, then ignored.
PARAMS = {
    'session.login_with_password': ('string',) * 4,
    'VM.start': ('ref', 'bool', 'bool'),
    'VM.start_on': _VM_PAIR + ('bool', 'bool'),
    'VM.resume': ('ref', 'bool', 'bool'),
    'VM.resume_on': _VM_PAIR + ('bool', 'bool'),
    'VM.clean_shutdown': ('ref',),
    'VM.hard_shutdown': ('ref',),
    'VM.suspend': ('ref',),
    'VM.assert_can_boot_here': _VM_PAIR,
    'VM.pool_migrate': _VM_PAIR + ('map',),
    'VM.migrate_send': _MIGRATE,
    'VM.assert_can_migrate': _MIGRATE,
    'VGPU.create': ('ref', 'ref', 'string', 'string map', 'ref'),
}


def check(method, args):
    """:raises: XapiFailure XMLRPC_UNMARSHAL_FAILURE for the first
    argument of ``method`` whose wire type is not the declared one."""
    for kind, value in zip(PARAMS.get(method, ()), args,
                           strict=False):
        if not isinstance(value, _WIRE[kind]):
            raise XapiFailure('XMLRPC_UNMARSHAL_FAILURE', kind,
                              repr(value))
        if kind == 'string map':
            _check_strings(v for pair in value.items() for v in pair)


def _check_strings(values):
    """:raises: XapiFailure XMLRPC_UNMARSHAL_FAILURE for a key or value
    of a ``(string -> string) map`` that is no string."""
    for value in values:
        if not isinstance(value, str):
            raise XapiFailure('XMLRPC_UNMARSHAL_FAILURE', 'string',
                              repr(value))
