"""Network faults: a link that loses packets, slows down or loses one direction, without going down.

A ``network_fault`` targets a link by its two ends (``target: {datacenters: [a, b]}``), at a time or at
random (``at``/``duration``, ``mtbf``/``mttr``), and does any of:

- ``packet_loss``: a share of the packets lost each way. TCP sends them again after a timeout that
  doubles (``retransmission_timeout``, at most ``retransmissions`` times), so crossings arrive late, and a
  few not at all (their try times out): :func:`sim.network.packet_loss`. Large requests suffer most (more
  packets, a longer wait for the slowest).
- ``extra_latency``: every crossing takes that much longer (a latency spike: a route change, a saturated
  transit provider).
- ``one_way``: the packets from this end to the other are dropped (an asymmetric partition: a firewall
  rule, a broken route one way). A request crosses both ways (the request and its answer), so every
  crossing is lost, as in a partition. What differs, the work the far side does for answers that never
  get back, is not modelled: the crossing is lost before the far side's work, in both engines.

Both engines see it through :class:`sim.network.Network` (the request engine per crossing, the flow engine
per step, at each request type's size), as they see congestion. Health checks, failover and the traffic
manager are out of band, so a network fault moves neither users nor databases by itself. The kinds it
records, ``link_impaired`` and ``link_repaired``, are registered here, when :mod:`sim.faults` imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from sim import events
from sim.events import EventKind
from sim.fault_base import FaultSpec
from sim.spec import Id
from sim.units import Percent, duration_range

if TYPE_CHECKING:
    from sim.cluster import Cluster

Latency = Annotated[float, *duration_range(0.0, 3600.0)]
Timeout = Annotated[float, *duration_range(0.001, 60.0)]

__all__ = ["NetworkFault", "Impairment", "LINK_IMPAIRED", "LINK_REPAIRED"]

LINK_IMPAIRED = events.register(EventKind(
    "link_impaired", "an inter-datacenter link loses packets, slows down or loses one direction",
    harm=True, symptom=True, affects=True, category="failure", tone="bad",
    ends="link_repaired", severity=2, label="impaired",
)).name
LINK_REPAIRED = events.register(EventKind(
    "link_repaired", "a network fault on a link is over", category="recovery", tone="good",
)).name


@dataclass(frozen=True, slots=True)
class Impairment:
    """What one ``network_fault`` does to a link while it acts: what :class:`sim.network.Network` reads."""

    packet_loss: float = 0.0  # share of packets lost, each way
    extra_latency: float = 0.0  # seconds added to every crossing
    cut_from: int | None = None  # a one-way partition: the datacenter whose packets to the other are dropped
    rto: float = 0.2  # the first retransmission timeout, seconds
    retransmissions: int = 3  # sends after the first before a crossing is given up

    def describe(self, datacenter_ids: Sequence[str], ends: tuple[int, int]) -> str:
        """The impairment in words, for the event log."""
        parts = []
        if self.cut_from is not None:
            to = ends[1] if ends[0] == self.cut_from else ends[0]
            parts.append(f"one-way partition: packets from {datacenter_ids[self.cut_from]} to "
                         f"{datacenter_ids[to]} dropped (no answer crosses either way)")
        if self.packet_loss:
            parts.append(f"{self.packet_loss * 100:.3g}% of packets lost (retransmitted after "
                         f"{self.rto * 1000:.0f} ms, doubling, {self.retransmissions} times at most)")
        if self.extra_latency:
            parts.append(f"{self.extra_latency * 1000:.0f} ms more latency")
        return "; ".join(parts)


class NetworkFault(FaultSpec):
    """A link loses packets (retransmitted late, some lost), takes longer, or loses one direction.

    Target the link by its two ends, ``target: {datacenters: [a, b]}``. Give at least one of
    ``packet_loss``, ``extra_latency`` and ``one_way``; faults acting together on one link add their
    latencies and combine their losses.
    """

    kind: Literal["network_fault"]
    targets: ClassVar[str] = "link"
    packet_loss: Percent = Field(
        0.0, lt=1.0, description="share of packets lost each way (retransmitted after a timeout), e.g. 2%")
    extra_latency: Latency = Field(0.0, description="added to every crossing while it acts, e.g. 300ms")
    one_way: Id | None = Field(
        None, description="a one-way partition: the datacenter (one of the two ends) whose packets to the other "
                          "are dropped; every crossing is lost, as a request needs its answer")
    retransmission_timeout: Timeout = Field(
        0.2, description="the first wait before a lost packet is sent again (it doubles each time); "
                         "TCP's minimum is 200ms")
    retransmissions: int = Field(
        3, ge=0, le=15, description="sends after the first before a crossing is given up (its try times out)")

    @model_validator(mode="after")
    def _does_something(self) -> NetworkFault:
        if not self.packet_loss and not self.extra_latency and self.one_way is None:
            raise ValueError("a network_fault needs packet_loss, extra_latency or one_way (got none of them); "
                             "a link cut both ways is a partition")
        ends = self.target.datacenters
        if self.one_way is not None and ends and self.one_way not in ends:
            raise ValueError(f"one_way names '{self.one_way}', which is not an end of the link "
                             f"(expected one of {', '.join(ends)})")
        return self

    def _impairment(self, cluster: Cluster) -> Impairment:
        cut = None if self.one_way is None else cluster.datacenter_ids.index(self.one_way)
        return Impairment(self.packet_loss, self.extra_latency, cut, self.retransmission_timeout,
                          self.retransmissions)

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.network.impair(target, self._impairment(cluster), True, LINK_IMPAIRED, cause, cluster.datacenter_ids)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.network.impair(target, self._impairment(cluster), False, LINK_REPAIRED, cause,
                               cluster.datacenter_ids)
