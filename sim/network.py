"""Inter-datacenter links: capacity, load, congestion and partitions.

A link joins two datacenters (``topology.links``). Its identity is the unordered pair of datacenters;
its name in the event log and the reports is ``<a>~<b>``, in the order ``between`` lists them. A link is
one pipe shared by both directions. A request whose front-end server and mailbox server sit in two
datacenters joined by a link *crosses* it and puts ``size`` bytes on it (the request and its answer;
``workload.requests.<type>.size``). Datacenters with no link between them exchange traffic freely, as
before: only direct links are modelled.

**Load.** Each link keeps an exponentially weighted estimate of the bits per second crossing it, with
time constant ``averaging`` (τ): at each crossing of ``b`` bits, ``r ← r·exp(−Δt/τ) + b/τ``, so a steady
stream of ``λ`` crossings per second averages ``λ·b``. A crossing sees the estimate from just before
it (arrivals see time averages). Utilisation is ``ρ = (r + background) / (capacity × factor)``, where a
``congestion`` fault sets ``factor`` (capacity left) and ``background`` (other traffic).

**Congestion** (:func:`congestion`), per crossing, added to the link's own ``latency``:

- ``ρ < 1``: the M/M/1 queueing wait ``S·ρ/(1−ρ)``, where ``S`` is the crossing's transmission time
  (its bits over the effective capacity), capped at the buffer; no loss.
- ``ρ ≥ 1``: the buffer is full: the delay is the buffer, and the link drops the excess: loss
  ``1 − 1/ρ`` (it carries its capacity whatever is offered).

Both are non-decreasing in ρ and continuous at 1. The buffer is ``buffer`` of time at nominal capacity,
so a link cut to a fraction ``f`` of its capacity drains it in ``buffer / f``. A lost crossing gets no
answer: whoever waits for it times out. A link that is down (``partition``) loses every crossing.

**Impairments** (a ``network_fault``, :mod:`sim.fault_network`), on top of congestion: packets lost
(``packet_loss`` of them, each way), extra latency per crossing (a spike), or one direction cut (a
one-way partition). A crossing is ``k = ⌈bits / 12,000⌉`` packets of 1,500 bytes sent together; a lost
packet is sent again after a retransmission timeout that doubles each time (TCP's backoff). The
crossing arrives when its slowest packet does, after ``M`` retransmissions (``M`` the largest of ``k``
geometric counts, ``P(M ≤ j) = (1 − p^(j+1))^k``), and is given up past ``retransmissions`` (its try
times out): loss ``1 − (1 − p^(R+1))^k``; the crossings that arrive are late by the retransmission
timeouts' mean given arrival (:func:`packet_loss`). A request needs both directions (the request and
its answer), so a one-way partition loses every crossing, as a partition does; it differs in what the
far side sees, which the engines do not model yet (the answers' work is not charged: see the fault).

**Events.** ``link_saturated`` when ρ reaches 1, ``link_recovered`` when it falls below
:data:`RECOVERED_BELOW` (checked at each crossing and every ``averaging`` while saturated);
``link_degraded`` / ``link_restored`` when a congestion fault starts / ends; ``link_down`` / ``link_up``
for partitions. A saturation names as its cause the latest of: the congestion acting on the link, and
the latest event that moved traffic onto it (:attr:`Network.load_cause`, given by the cluster: a traffic
shift involving either end, a failover onto a server at either end).

Limits, stated: the model is fluid and memoryless — a crossing's delay and loss follow from the current
estimate of ρ, not from a simulated packet queue; senders do not back off the way TCP would (the offered
load is what requests offer, retries included); both directions share one capacity; health checks,
database failover and the traffic manager do not use the links (an out-of-band control plane), so a
partition does not by itself move users or databases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import simpy

from sim.events import LINK_DEGRADED, LINK_DOWN, LINK_RECOVERED, LINK_RESTORED, LINK_SATURATED, LINK_UP

if TYPE_CHECKING:
    from sim.fault_network import Impairment
    from sim.scenario import Link
    from sim.trace import Trace

__all__ = ["Network", "LinkState", "congestion", "packet_loss", "link_name", "RECOVERED_BELOW", "PACKET_BITS"]

RECOVERED_BELOW = 0.9
"""A saturated link is recovered once its utilisation falls below this (hysteresis against flapping)."""


def link_name(a: str, b: str) -> str:
    """Return the name of the link between datacenters ``a`` and ``b``: ``a~b``."""
    return f"{a}~{b}"


def congestion(rho: float, transmission: float, buffer: float) -> tuple[float, float]:
    """Extra delay (seconds) and loss probability of one crossing at utilisation ``rho``.

    ``transmission`` is the crossing's own transmission time at the effective capacity; ``buffer`` the
    most queueing delay the link's buffers hold. See the module docstring for the model.

    >>> congestion(0.5, 0.01, 1.0)
    (0.01, 0.0)
    >>> congestion(2.0, 0.01, 0.25)
    (0.25, 0.5)
    """
    if rho >= 1.0:
        return buffer, 1.0 - 1.0 / rho
    if rho <= 0.0:
        return 0.0, 0.0
    return min(buffer, transmission * rho / (1.0 - rho)), 0.0


PACKET_BITS = 1500 * 8
"""A packet: 1,500 bytes (an Ethernet frame's payload)."""


def packet_loss(p: float, packets: int, rto: float, retransmissions: int) -> tuple[float, float]:
    """Extra delay (seconds, the mean of the crossings that arrive) and loss probability of a crossing of
    ``packets`` packets sent together, each lost with probability ``p`` at every send and sent again after
    ``rto``, ``2 rto``, ``4 rto``… (given up after ``retransmissions``). See the module docstring.

    >>> packet_loss(0.0, 10, 0.2, 3)
    (0.0, 0.0)
    >>> delay, loss = packet_loss(0.1, 1, 0.2, 3)
    >>> round(loss, 6), round(delay, 4)      # lost: 0.1^4; late by 0.2, 0.6, 1.4 s w.p. 0.09, 0.009, 0.0009
    (0.0001, 0.0247)
    """
    if p <= 0.0:
        return 0.0, 0.0
    if p >= 1.0:
        return 0.0, 1.0
    arrived = (1.0 - p ** (retransmissions + 1)) ** packets  # P(M <= R)
    mean, below = 0.0, 0.0
    for j in range(retransmissions + 1):
        upto = (1.0 - p ** (j + 1)) ** packets  # P(M <= j)
        mean += rto * (2.0**j - 1.0) * (upto - below)
        below = upto
    return (mean / arrived if arrived > 0 else 0.0), 1.0 - arrived


def _bps(value: float) -> str:
    for unit, scale in (("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}bps"


@dataclass(slots=True)
class LinkState:
    """One link: what it is, what faults did to it, and its load estimate."""

    index: int
    name: str
    ends: tuple[int, int]  # datacenter indices
    capacity: float  # nominal, bit/s
    latency: float
    buffer: float  # seconds of traffic at nominal capacity
    averaging: float  # time constant of the load estimate, seconds
    factor: float = 1.0  # capacity left (congestion faults multiply it)
    background: float = 0.0  # bit/s of other traffic (congestion faults add to it)
    degradations: int = 0  # congestion faults acting now
    degraded_event: int | None = None  # the latest link_degraded event
    down: int = 0  # partitions acting now; up when 0
    impairments: list[Impairment] = field(default_factory=list)  # network faults acting now
    cut: int = 0  # one-way partitions among them
    rate: float = 0.0  # load estimate, bit/s, as of ``since``
    since: float = 0.0
    saturated: int | None = None  # while saturated: the link_saturated event

    @property
    def effective_capacity(self) -> float:
        """Bits per second it carries now (0 while down)."""
        return 0.0 if self.down else self.capacity * self.factor

    def load(self, now: float) -> float:
        """Return the estimate of the bits per second crossing it, decayed to ``now``."""
        dt = now - self.since
        return self.rate * math.exp(-dt / self.averaging) if dt > 0 else self.rate


class Network:
    """The links of a run and their state; engines call :meth:`cross`, faults the state changes.

    ``load_cause(a, b)`` and ``harm(dc, event)`` connect it to the cluster: the first names the latest
    event that moved traffic between datacenters ``a`` and ``b``; the second is told of every harmful
    link event, so later events in either datacenter can hang off it. Both default to doing nothing.
    """

    def __init__(
        self, env: simpy.Environment, trace: Trace, links: Sequence[Link], datacenter_ids: list[str]
    ):
        self.env = env
        self.trace = trace
        index = {name: i for i, name in enumerate(datacenter_ids)}
        n = len(datacenter_ids)
        self.links: list[LinkState] = []
        self.between = [[-1] * n for _ in range(n)]  # link index per pair of datacenters, -1 if none
        for i, link in enumerate(links):
            a, b = (index[x] for x in link.between)
            self.links.append(
                LinkState(i, link_name(*link.between), (a, b), link.capacity, link.latency, link.buffer,
                          link.averaging)
            )
            self.between[a][b] = self.between[b][a] = i
        self.load_cause: Callable[[int, int], int | None] = lambda a, b: None
        self.harm: Callable[[int, int], None] = lambda dc, event: None
        self.before_change: list[Callable[[], None]] = []  # called before a fault changes a link

    def find(self, a: int, b: int) -> int:
        """Return the index of the link between datacenters ``a`` and ``b`` (indices), -1 if none."""
        return self.between[a][b]

    def utilisation(self, link: int) -> float:
        """ρ now: (estimated load + background) / effective capacity; infinite while down."""
        state = self.links[link]
        capacity = state.effective_capacity
        offered = state.load(self.env.now) + state.background
        return offered / capacity if capacity > 0 else math.inf

    def conditions(self, link: int, bits: float) -> tuple[float, float]:
        """The extra delay and the loss probability a crossing of ``bits`` would see now, from the
        utilisation (:meth:`utilisation`), without putting anything on the link (what :meth:`cross` returns).
        """
        state = self.links[link]
        if state.down or state.cut:
            return 0.0, 1.0
        capacity = state.effective_capacity
        delay, loss = congestion(self.utilisation(link), bits / capacity, state.buffer / state.factor)
        return self._impaired(state, bits, delay, loss)

    # ---------------------------------------------------------------------------------- traffic

    def cross(self, link: int, bits: float) -> tuple[float, float]:
        """Put a request's ``bits`` on ``link`` now; return its extra delay and its loss probability."""
        state = self.links[link]
        if state.down or state.cut:
            return 0.0, 1.0
        now = self.env.now
        tau = state.averaging
        rate = state.load(now)
        capacity = state.capacity * state.factor
        rho = (rate + state.background) / capacity
        state.rate = rate + bits / tau
        state.since = now
        return self._seen(state, rho, bits, capacity)

    def carry(self, link: int, bps: float, dt: float, bits: float) -> tuple[float, float]:
        """A rate-based engine's step: ``bps`` bits/s cross ``link`` for the next ``dt`` seconds, in
        crossings of ``bits`` each. Returns the extra delay and the loss probability they see (from the
        load estimate at the start of the step, as :meth:`cross` does), and moves the estimate on to the
        end of the step: exactly what a steady stream of crossings does to it.
        """
        state = self.links[link]
        if state.down or state.cut:
            return 0.0, 1.0
        now = self.env.now
        rate = state.load(now)
        capacity = state.capacity * state.factor
        rho = (rate + state.background) / capacity
        keep = math.exp(-dt / state.averaging)
        state.rate = rate * keep + bps * (1.0 - keep)
        state.since = now + dt
        return self._seen(state, rho, bits, capacity)

    def _seen(self, state: LinkState, rho: float, bits: float, capacity: float) -> tuple[float, float]:
        """Traffic saw utilisation ``rho``: note a saturation or a recovery; return its delay and loss."""
        if rho >= 1.0:
            if state.saturated is None:
                self._saturate(state, rho)
        elif state.saturated is not None and rho < RECOVERED_BELOW:
            self._recover(state, rho)
        delay, loss = congestion(rho, bits / capacity, state.buffer / state.factor)
        return self._impaired(state, bits, delay, loss)

    @staticmethod
    def _impaired(state: LinkState, bits: float, delay: float, loss: float) -> tuple[float, float]:
        """A crossing's ``delay`` and ``loss`` from congestion, with the link's impairments added: their
        latencies, and their packet losses together (``1 − Π(1 − pᵢ)``; the longest first timeout and the
        fewest retransmissions of those acting).
        """
        if not state.impairments:
            return delay, loss
        kept, extra = 1.0, 0.0
        for imp in state.impairments:
            kept *= 1.0 - imp.packet_loss
            extra += imp.extra_latency
        if kept < 1.0:
            rto = max(imp.rto for imp in state.impairments if imp.packet_loss)
            tries = min(imp.retransmissions for imp in state.impairments if imp.packet_loss)
            late, lost = packet_loss(1.0 - kept, max(1, math.ceil(bits / PACKET_BITS)), rto, tries)
            delay, loss = delay + late, 1.0 - (1.0 - loss) * (1.0 - lost)
        return delay + extra, loss

    def check(self, link: int) -> None:
        """Re-evaluate saturation now (after a state change, and periodically while saturated)."""
        state = self.links[link]
        if state.down or state.cut:
            return
        rho = self.utilisation(link)
        if rho >= 1.0 and state.saturated is None:
            self._saturate(state, rho)
        elif rho < RECOVERED_BELOW and state.saturated is not None:
            self._recover(state, rho)

    def _saturate(self, state: LinkState, rho: float) -> None:
        candidates = [state.degraded_event if state.degradations else None, self.load_cause(*state.ends)]
        known = [c for c in candidates if c is not None]
        detail = f"utilisation {rho:.0%} of {_bps(state.effective_capacity)}"
        if state.background:
            detail += f" (background {_bps(state.background)})"
        cause = max(known) if known else None
        rid = self.trace.record(self.env.now, LINK_SATURATED, state.name, cause, detail)
        state.saturated = rid
        for dc in state.ends:
            self.harm(dc, rid)
        self.env.process(self._watch(state))

    def _recover(self, state: LinkState, rho: float) -> None:
        self.trace.record(self.env.now, LINK_RECOVERED, state.name, state.saturated,
                          f"utilisation {rho:.0%} of {_bps(state.effective_capacity)}")
        state.saturated = None

    def _watch(self, state: LinkState) -> Generator[simpy.Event, None, None]:
        """While saturated, check every ``averaging``: the load may fall with no crossing to notice."""
        while state.saturated is not None:
            yield self.env.timeout(state.averaging)
            self.check(state.index)

    # ---------------------------------------------------------------------------------- faults

    def congest(self, link: int, factor: float, background: float, cause: int | None) -> None:
        """Start a congestion: capacity × ``factor``, ``background`` bit/s more other traffic."""
        for hook in self.before_change:
            hook()
        state = self.links[link]
        state.factor *= factor
        state.background += background
        state.degradations += 1
        state.degraded_event = self.trace.record(self.env.now, LINK_DEGRADED, state.name, cause,
                                                 self._describe(state))
        self.check(link)

    def decongest(self, link: int, factor: float, background: float, cause: int | None) -> None:
        """End a congestion that applied ``factor`` and ``background``."""
        for hook in self.before_change:
            hook()
        state = self.links[link]
        state.factor /= factor
        state.background = max(0.0, state.background - background)
        state.degradations -= 1
        if state.degradations == 0:
            state.factor, state.background = 1.0, 0.0  # no rounding left over
        self.trace.record(self.env.now, LINK_RESTORED if state.degradations == 0 else LINK_DEGRADED,
                          state.name, cause, self._describe(state))
        self.check(link)

    def set_down(self, link: int, down: bool, cause: int | None) -> None:
        """Cut the link (``down=True``, a partition starts) or end a partition; partitions stack."""
        for hook in self.before_change:
            hook()
        state = self.links[link]
        state.down += 1 if down else -1
        if down and state.down == 1:
            rid = self.trace.record(self.env.now, LINK_DOWN, state.name, cause,
                                    "partitioned: no traffic crosses")
            for dc in state.ends:
                self.harm(dc, rid)
        elif not down and state.down == 0:
            self.trace.record(self.env.now, LINK_UP, state.name, cause, "partition over")
            self.check(link)

    def impair(self, link: int, impairment: Impairment, on: bool, kind: str, cause: int | None,
               datacenter_ids: Sequence[str]) -> int:
        """Start (``on``) or end one network fault's ``impairment`` of ``link``; record ``kind`` (the
        fault module's event) naming ``cause``, and return the event's id.
        """
        for hook in self.before_change:
            hook()
        state = self.links[link]
        if on:
            state.impairments.append(impairment)
        else:
            state.impairments.remove(impairment)
        state.cut += (1 if on else -1) * (impairment.cut_from is not None)
        detail = impairment.describe(datacenter_ids, state.ends)
        rid = self.trace.record(self.env.now, kind, state.name, cause, detail if on else f"over: {detail}")
        if on:
            for dc in state.ends:
                self.harm(dc, rid)
        self.check(link)
        return rid

    @staticmethod
    def _describe(state: LinkState) -> str:
        text = f"capacity {state.factor:.0%} of {_bps(state.capacity)}"
        return text + (f", background {_bps(state.background)}" if state.background else "")
