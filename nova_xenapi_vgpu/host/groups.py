"""Splitting GPU groups so that XAPI's choice keeps NUMA locality.

XAPI puts a vGPU on any pGPU of its group, so a group whose pGPUs span
NUMA nodes cannot promise locality. A split proposes one group per NUMA
node (or per pGPU, which makes XAPI's choice exact): the pGPUs of the
group's first node (or its first pGPU) stay, the others move to new
groups. Only idle pGPUs move (XAPI refuses to move a busy one), and none
of a group a stopped instance of this host owes vGPUs in.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Move:
    """One pGPU's fate in a split."""

    pgpu_ref: str
    address: str
    numa_node: int | None
    group_ref: str
    target: str | None  # the new group's name; None: it stays
    busy: bool


def propose(inventory, by='numa', short_name=str):
    """The moves that split every group of this host ``by`` numa|pgpu."""
    moves = []
    # A stopped instance may start on any pGPU of its group: none moves.
    owed_groups = {v.GPU_group for vgpus in inventory.stopped().values()
                   for v in vgpus}
    for group_ref, group in sorted(inventory.groups.items(),
                                   key=lambda g: g[1].name_label):
        members = sorted((p for p, r in inventory.pgpus.items()
                          if r.GPU_group == group_ref),
                         key=inventory.address)
        keys = [_key(inventory, p, by) for p in members]
        if len(set(keys)) < 2:
            continue
        owed = group_ref in owed_groups
        for pgpu, key in zip(members, keys, strict=True):
            target = None if key == keys[0] else '%s %s' % (
                short_name(group.name_label), _label(key, by))
            moves.append(Move(pgpu, inventory.address(pgpu),
                              inventory.numa_node(pgpu), group_ref, target,
                              owed or bool(inventory.allocated(pgpu))))
    return moves


def _key(inventory, pgpu, by):
    return inventory.numa_node(pgpu) if by == 'numa' else (
        inventory.address(pgpu))


def _label(key, by):
    return 'NUMA %s' % key if by == 'numa' else key


def apply(client, inventory, moves):
    """Make the moves: new groups (reused by name), idle pGPUs moved.

    :raises: XapiError, XapiConnectionError.
    """
    by_name = {g.name_label: ref for ref, g in inventory.groups.items()}
    done = []
    for move in moves:
        if move.target is None or move.busy:
            continue
        if move.target not in by_name:
            ref = client.call('GPU_group.create', move.target,
                              'split by nova-xenapi-vgpu', {})
            client.call('GPU_group.set_allocation_algorithm', ref,
                        inventory.groups[move.group_ref].allocation_algorithm)
            by_name[move.target] = ref
        client.call('PGPU.set_GPU_group', move.pgpu_ref, by_name[move.target])
        done.append(move)
    return done
