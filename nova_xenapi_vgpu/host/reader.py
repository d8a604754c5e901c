"""Reading a host's GPU records from XAPI: the calls, nothing else."""

from nova_xenapi_vgpu.host import inventory
from nova_xenapi_vgpu.xapi import records


def read_inventory(client, host_ref, dom0=None):
    """This host's inventory in five bulk calls (plus the dom0 plugin's).

    :raises: XapiError, XapiConnectionError, RecordError, PluginError.
    """
    on_host = 'field "host" = "%s"' % host_ref
    pgpus = records.decode_all(records.Pgpu, client.call(
        'PGPU.get_all_records_where', on_host))
    pcis = records.decode_all(records.PciDevice, client.call(
        'PCI.get_all_records_where', on_host))
    model = inventory.HostInventory(
        host_ref=host_ref,
        groups=records.decode_all(records.GpuGroup, client.call(
            'GPU_group.get_all_records')),
        pgpus=pgpus,
        types=records.decode_all(records.VgpuType, client.call(
            'VGPU_type.get_all_records')),
        vgpus=_vgpus_on(client, pgpus),
        pcis=pcis)
    if dom0 is None:
        return model
    return model.with_topology(dom0.topology(
        [model.address(p) for p in pgpus]))


def _vgpus_on(client, pgpus):
    """VGPUs resident on or scheduled onto ``pgpus``, in one call."""
    if not pgpus:
        return {}
    terms = ['field "%s" = "%s"' % (field, ref) for ref in sorted(pgpus)
             for field in ('resident_on', 'scheduled_to_be_resident_on')]
    return records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records_where', ' or '.join(terms)))
