"""Which servers a datacenter's load balancers send traffic to: shared by every engine."""

from __future__ import annotations

import numpy as np

from sim.cluster import Cluster

__all__ = ["pool"]


def pool(cluster: Cluster, dc: int) -> list[int]:
    """The servers of ``dc`` in the load balancers' pool.

    Normally the pool is the servers in rotation. While the balancers panic (``Cluster.panicking``: too
    few of their servers in rotation, as Envoy judges it), it is every server that operators have not
    drained. An autoscaler's parked spares are never in it.
    """
    members = np.asarray(cluster.servers_of_dc[dc], dtype=np.int64)
    members = members[~cluster.parked_mask[members]]  # an autoscaler's parked spares are not registered
    if cluster.panicking[dc]:
        return members[~cluster.drained_mask[members]].tolist()
    return members[cluster.rotation_mask[members]].tolist()
