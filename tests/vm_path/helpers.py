"""What the VM path regression tests share: a Builder per host of a
simulator, reached over XML-RPC with the real client."""

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import reader
from nova_xenapi_vgpu.pci import stats as statslib
from nova_xenapi_vgpu.vgpu_types import alias as aliaslib
from nova_xenapi_vgpu.vgpu_types import requests as requestslib
from nova_xenapi_vgpu.vm import lifecycle
from nova_xenapi_vgpu.xapi import session as sessionlib

ALIASES = aliaslib.parse_aliases([
    '{"name": "4q", "vgpu_type": "GRID M60-4Q"}',
    '{"name": "8q", "vgpu_type": "GRID M60-8Q"}',
    '{"name": "t4", "vgpu_type": "GRID T4-8Q"}',
    '{"name": "t4-16q", "vgpu_type": "GRID T4-16Q"}',
    '{"name": "t4-4q", "vgpu_type": "GRID T4-4Q"}'])


def ask(spec):
    """The vGPU requests of an alias spec such as ``4q:1``."""
    return requestslib.requests_from_spec(spec, ALIASES)[0]


def client_of(sim):
    """A pooled client to the simulator, retrying fast."""
    return sessionlib.XapiClient(sim.url, 'root', 'xenroot',
                                 retry_interval=0.01)


def builder(client, host_ref):
    """A fresh Builder over ``host_ref``'s inventory."""
    stats = statslib.VgpuStats(reader.read_inventory(client, host_ref))
    return lifecycle.Builder(client, stats, host_ref)


def tagged(xapi, instance):
    """VGPU refs tagged with ``instance`` (anywhere)."""
    return sorted(r for r, v in xapi.VGPU.get_all_records().items()
                  if v['other_config'].get(tags.INSTANCE) == instance)


def models(xapi, vm):
    """The model names of the VM's VGPUs, in device order."""
    vgpus = sorted(xapi.VM.get_VGPUs(vm),
                   key=lambda v: int(xapi.VGPU.get_device(v)))
    return [xapi.VGPU_type.get_model_name(xapi.VGPU.get_type(v))
            for v in vgpus]


def sorting_after(make, undo, floor):
    """``make()`` again (``undo`` the last) until its ref sorts after
    ``floor``: XAPI's refs are random, the code under test walks them
    in sorted order, and a test must see a skipped record first."""
    ref = make()
    while ref <= floor:
        undo(ref)
        ref = make()
    return ref


def racing(client, after, action):
    """``client`` runs ``action()`` once, right after its first call of
    ``after`` returns: another writer acting between two reads."""
    call = client.call
    pending = [action]

    def racing_call(method, *args, **kwargs):
        result = call(method, *args, **kwargs)
        if method == after and pending:
            pending.pop()()
        return result
    client.call = racing_call
    return client
