"""A VIF per Neutron port, on the pool network whose bridge the port's
binding names (else ``[xenserver] default_network_bridge``).

The VIF's MAC is the port's, its device the port's index in Nova's
network info, its ``other_config`` names the instance and the port.
Networks are pool-wide in XenServer, so a VM keeps its VIFs when it
moves inside the pool.
"""

from nova import exception as novaexc

NOVA_UUID = 'nova_uuid'
PORT = 'neutron_port_id'
DEFAULT_MTU = 1500


class NoNetworkForBridge(novaexc.NovaException):
    """No pool network has the port's bridge, nor the default one."""

    msg_fmt = ("No XenServer network has bridge %(bridge)s (port "
               "%(port)s); set [xenserver] default_network_bridge to the "
               "bridge of a pool network (now: %(default)s)")


def network_for(networks, vif, default_bridge):
    """The network ref for ``vif`` among ``{bridge: ref}``.

    :raises: NoNetworkForBridge.
    """
    bridge = (vif.get('network') or {}).get('bridge')
    ref = networks.get(bridge) or networks.get(default_bridge)
    if ref is None:
        raise NoNetworkForBridge(bridge=bridge, port=vif.get('id'),
                                 default=default_bridge or 'unset')
    return ref


def create(client, vm, instance, network_info, default_bridge=None):
    """One VIF per port; the VIF refs.

    :raises: NoNetworkForBridge (before any VIF is made), XapiError,
             XapiConnectionError.
    """
    if not network_info:
        return []
    networks = {record['bridge']: ref for ref, record in client.call(
        'network.get_all_records').items()}
    chosen = [network_for(networks, vif, default_bridge)
              for vif in network_info]
    return [client.call('VIF.create', _record(vm, instance, device, vif,
                                              network))
            for device, (vif, network) in enumerate(zip(network_info,
                                                        chosen, strict=True))]


def _record(vm, instance, device, vif, network):
    meta = (vif.get('network') or {}).get('meta') or {}
    return {'device': str(device), 'network': network, 'VM': vm,
            'MAC': vif['address'], 'MTU': str(meta.get('mtu') or
                                               DEFAULT_MTU),
            'other_config': {NOVA_UUID: instance.uuid, PORT: vif['id']},
            'qos_algorithm_type': '', 'qos_algorithm_params': {},
            'locking_mode': 'network_default'}
