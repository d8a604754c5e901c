"""Reading a host's GPU records from XAPI: the calls, nothing else."""

from nova_xenapi_vgpu import tags
from nova_xenapi_vgpu.host import inventory
from nova_xenapi_vgpu.xapi import records


def read_inventory(client, host_ref, dom0=None):
    """This host's inventory in six bulk calls (plus the dom0 plugin's).

    :raises: XapiError, XapiConnectionError, RecordError, PluginError.
    """
    on_host = 'field "host" = "%s"' % host_ref
    host = records.Host.from_xapi(host_ref, client.call('host.get_record',
                                                        host_ref))
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
        vgpus=_vgpus_on(client, pgpus, host.uuid),
        pcis=pcis, host=host)
    if dom0 is None:
        return model
    return model.with_topology(dom0.topology(
        [model.address(p) for p in pgpus]))


def _vgpus_on(client, pgpus, host_uuid):
    """VGPUs on ``pgpus`` (resident or scheduled) and VGPUs of stopped
    instances claimed on this host (tagged with its uuid), in one call."""
    vgpus = records.decode_all(records.Vgpu, client.call(
        'VGPU.get_all_records'))
    return {ref: v for ref, v in vgpus.items()
            if v.resident_on in pgpus or v.scheduled_to_be_resident_on in
            pgpus or v.other_config.get(tags.HOST) == host_uuid}
