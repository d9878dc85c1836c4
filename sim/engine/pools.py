"""Which servers a datacenter's load balancers send traffic to: shared by every engine."""

from __future__ import annotations

import numpy as np

from sim.cluster import Cluster
from sim.events import PANIC, PANIC_OVER

__all__ = ["pool"]


def pool(cluster: Cluster, panic_threshold: float, dc: int, panicking: bool) -> tuple[list[int], bool]:
    """The servers of ``dc`` in the load balancers' pool, and whether the balancers panic.

    Normally the pool is the servers in rotation. When fewer than ``panic_threshold`` of the
    datacenter's servers are in rotation, the balancers panic, as Envoy does, and use every server
    that operators have not drained. Entering or leaving panic (``panicking`` is the state before) is
    recorded in the trace; panic counts as harm in the datacenter.
    """
    members = np.asarray(cluster.servers_of_dc[dc], dtype=np.int64)
    members = members[~cluster.parked_mask[members]]  # an autoscaler's parked spares are not registered
    healthy = members[cluster.rotation_mask[members]].tolist()
    panic = panic_threshold > 0 and len(healthy) < panic_threshold * len(members)
    if panic != panicking:
        kind = PANIC if panic else PANIC_OVER
        detail = f"{len(healthy)} of {len(members)} servers healthy"
        rid = cluster.trace.record(cluster.now, kind, cluster.datacenter_ids[dc],
                                   cluster.last_harm[dc] if panic else None, detail)
        if panic:
            cluster.note_harm(dc, rid)
    if panic:
        return members[~cluster.drained_mask[members]].tolist(), True
    return healthy, False
