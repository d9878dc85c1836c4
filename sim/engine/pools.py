"""Which servers a datacenter's load balancers send traffic to: shared by every engine."""

from __future__ import annotations

from sim.cluster import Cluster

__all__ = ["pool"]


def pool(cluster: Cluster, panic_threshold: float, dc: int, panicking: bool) -> tuple[list[int], bool]:
    """The servers of ``dc`` in the load balancers' pool, and whether the balancers panic.

    Normally the pool is the servers in rotation. When fewer than ``panic_threshold`` of the
    datacenter's servers are in rotation, the balancers panic, as Envoy does, and use every server
    that operators have not drained. Entering or leaving panic (``panicking`` is the state before) is
    recorded in the trace; panic counts as harm in the datacenter.
    """
    servers = cluster.servers
    members = cluster.servers_of_dc[dc]
    healthy = [i for i in members if servers[i].in_rotation]
    panic = panic_threshold > 0 and len(healthy) < panic_threshold * len(members)
    if panic != panicking:
        kind = "panic" if panic else "panic_over"
        detail = f"{len(healthy)} of {len(members)} servers healthy"
        rid = cluster.trace.record(cluster.now, kind, cluster.datacenter_ids[dc],
                                   cluster.last_harm[dc] if panic else None, detail)
        if panic:
            cluster.note_harm(dc, rid)
    if panic:
        return [i for i in members if not servers[i].drained], True
    return healthy, False
