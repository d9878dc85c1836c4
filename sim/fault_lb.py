"""Load-balancer failure: a datacenter's front door stops taking traffic while its servers run on.

The datacenter's load balancers fail (``at``/``duration``, or at random with ``mtbf``/``mttr``). Its
servers stay up, and still hold their mailbox databases for requests that reach them from another
datacenter, but no server is in the balancers' pool: a try that arrives fails at once (no route through
the front door). The global traffic manager sees a datacenter with no server in rotation and, after its
``datacenter_delay``, moves the datacenter's users to the next one of their regions.

It acts through the operators' drain (:meth:`sim.cluster.Cluster.drain`): both engines build their pools
from it (:func:`sim.engine.pools.pool` — a drained server is left out even in panic mode), health checks
never readmit a drained server, and the traffic manager counts drained servers as not serving. The
kinds it records, ``lb_down`` and ``lb_up``, are registered here, when :mod:`sim.faults` imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from sim import events
from sim.events import EventKind
from sim.fault_base import FaultSpec

if TYPE_CHECKING:
    from sim.cluster import Cluster

__all__ = ["LoadBalancerFailure", "LB_DOWN", "LB_UP"]

LB_DOWN = events.register(EventKind(
    "lb_down", "a datacenter's load balancers fail: it takes no traffic until they are back",
    harm=True, symptom=True, major=True, affects=True, category="failure", tone="bad",
    ends="lb_up", severity=3, label="load balancers down",
)).name
LB_UP = events.register(EventKind(
    "lb_up", "a datacenter's load balancers take traffic again", major=True, category="recovery", tone="good",
)).name


class LoadBalancerFailure(FaultSpec):
    """A datacenter's load balancers fail: tries to it fail at once until the traffic manager moves its users.

    Target datacenters (``target: {datacenters: [west]}``). Its servers stay up and out of rotation (health
    checks do not bring them back); the fault's end puts them back in the pool.
    """

    kind: Literal["load_balancer_failure"]
    targets: ClassVar[str] = "datacenter"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        rid = cluster.trace.record(cluster.now, LB_DOWN, cluster.datacenter_ids[target], cause,
                                   "no route through the front door")
        cluster.note_harm(target, rid)
        for server in cluster.servers_of_dc[target]:
            cluster.drain(server, True, rid, "behind a failed load balancer")

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        rid = cluster.trace.record(cluster.now, LB_UP, cluster.datacenter_ids[target], cause,
                                   "load balancers back")
        for server in cluster.servers_of_dc[target]:
            cluster.drain(server, False, rid, "load balancers back")
