"""What a scenario asks of an engine, from the numbers in its file: nothing is built or simulated.

:func:`expected_load` integrates each region's profile (exactly: the profiles are piecewise linear),
traffic surges included, and bounds the tries the retry layers can make of those requests;
:func:`choose_engine` says which engine ``engine: auto`` stands for. The scenario resolves ``auto`` with
it as it is validated, and :mod:`sim.validate` judges the request engine's limits by the same numbers.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim.faults import TrafficSurge
from sim.profiles import DAY, profile_points
from sim.reliability import expected_down

if TYPE_CHECKING:
    from sim.scenario import RegionLoad, RetryBudget, Scenario, Topology

__all__ = ["ENGINE_AUTO_THRESHOLD", "ExpectedLoad", "choose_engine", "expected_load", "total_workers", "mix_work",
           "server_capacity", "surge_factor", "surge_times"]

ENGINE_AUTO_THRESHOLD = 2e6
"""``engine: auto`` uses the flow engine above this many expected user requests, traffic surges included
(about 20 s of the request engine), or when the request engine's limits would refuse the run; the
request engine otherwise."""


def choose_engine(s: Scenario) -> str:
    """The engine ``engine: auto`` stands for: the flow engine above :data:`ENGINE_AUTO_THRESHOLD` expected
    user requests (traffic surges included), or when the request engine's limits (``max_requests``,
    ``max_workers``) would refuse the run; the request engine otherwise. Other values are returned as they are.
    """
    if s.engine != "auto":
        return s.engine
    load = expected_load(s)
    if load.users > ENGINE_AUTO_THRESHOLD or load.tries > s.limits.max_requests:
        return "flow"
    return "flow" if total_workers(s.topology) > s.limits.max_workers else "requests"


def total_workers(topo: Topology) -> int:
    """Workers of every server and dependency together (the request engine holds each one)."""
    return sum(g.slots * g.workers for d in topo.datacenters for g in d.servers) + sum(
        d.workers for d in topo.dependencies
    )


@dataclass(frozen=True)
class ExpectedLoad:
    """What a run asks of an engine, from the numbers in the scenario (nothing is simulated).

    ``base``: expected user requests without traffic surges; ``users``: with them (a scheduled surge
    multiplies its regions' load over its interval; a random one by its expected factor, ``1 + (m - 1) ×
    mttr / (mtbf + mttr)`` — more when it has repair crews — over the whole run; surges that overlap
    multiply). ``surges[i]``: the requests fault ``i`` adds by itself. ``tries``: the most tries the retry
    layers allow for those requests, the bound the request engine's work is judged by: client attempts
    ``users × (retries + 1)`` (or what its retry budget pays for, if less), each sent by the load balancer
    up to ``retries + 1`` times (or its budget), each try making its request type's dependency calls, each
    up to ``dependency_retries + 1`` times. A surge's mode (one, a count, a percentage of the regions) is
    taken as all the regions it may pick.
    """

    base: float
    users: float
    tries: float
    surges: dict[int, float]

    @property
    def amplification(self) -> float:
        """Tries per user request, at most."""
        return self.tries / self.users if self.users > 0 else 1.0


def mix_work(s: Scenario) -> float:
    """Mean work of a request of the scenario's mix: its service time is the server's times this."""
    return sum(r.share * r.work for r in s.workload.requests.values())


def server_capacity(workers: int, mean_service: float, work: float) -> float:
    """Requests of the mix per second a server serves when busy: ``workers / (mean service × work)``.

    The one definition of capacity: the capacity command, the report's load chart and the recorder use it.

    >>> server_capacity(4, 0.020, 1.25)
    160.0
    """
    return workers / (mean_service * work)


def _surges(s: Scenario) -> tuple[dict[str, list[tuple[float, float, float, int]]], dict[str, list[tuple[float, int]]]]:
    """Per region: its scheduled surges ``(start, end, multiplier, fault)`` and its random ones
    ``(multiplier, fault)``. A surge's mode (one, a count, a share of the regions) counts as all it may pick.
    """
    duration, regions = s.duration, s.workload.regions
    region_ids = [r.id for r in s.topology.regions]
    scheduled: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in regions}
    random: dict[str, list[tuple[float, int]]] = {name: [] for name in regions}
    for i, fault in enumerate(s.faults):
        if not isinstance(fault, TrafficSurge):
            continue
        for name in fault.target.ids or region_ids:
            if name not in regions:
                continue
            if fault.at is not None:
                end = duration if fault.duration is None else min(duration, fault.at + fault.duration)
                if end > fault.at:
                    scheduled[name].append((fault.at, end, fault.multiplier, i))
            elif fault.mtbf is not None and fault.mttr is not None:
                random[name].append((fault.multiplier, i))
    return scheduled, random


def surge_factor(s: Scenario, region: str, t: float) -> float:
    """The factor traffic surges put on ``region``'s load at ``t``: the scheduled ones active then, and
    every random one at its full multiplier (it may strike at that moment); overlapping surges multiply.
    """
    scheduled, random = _surges(s)
    factor = math.prod(m for a, b, m, _ in scheduled.get(region, []) if a <= t < b)
    return factor * math.prod(m for m, _ in random.get(region, []))


def surge_times(s: Scenario) -> list[float]:
    """The moments a scheduled surge starts: where a peak of the surged load may fall between samples."""
    scheduled, _ = _surges(s)
    return sorted({a for spans in scheduled.values() for a, _, _, _ in spans})


def expected_load(s: Scenario) -> ExpectedLoad:
    """Expected user requests of ``s`` (traffic surges included) and the most tries they can make.

    Exact for the piecewise-linear profiles; quick however long the run (nothing is stepped through).

    >>> from sim.loader import parse_scenario
    >>> from sim.topology import EXAMPLE
    >>> load = expected_load(parse_scenario(EXAMPLE))
    >>> load.users == load.base, load.amplification
    (True, 3.0)
    """
    duration, regions = s.duration, s.workload.regions
    scheduled, surging = _surges(s)
    random: dict[str, list[tuple[float, int]]] = {  # (expected factor, fault)
        name: [(1.0 + (m - 1.0) * _down_share(s, i), i) for m, i in spans] for name, spans in surging.items()
    }
    base = users = 0.0
    surges: dict[int, float] = {}
    for name, load in regions.items():
        area = _Area(load)
        steady = math.prod(f for f, _ in random[name])
        cuts = sorted({0.0, duration, *(t for a, b, _, _ in scheduled[name] for t in (a, b))})
        for a, b in zip(cuts, cuts[1:], strict=False):
            piece = area(a, b)
            active = [(m, i) for lo, hi, m, i in scheduled[name] if lo <= a and b <= hi]
            base += piece
            users += piece * steady * math.prod(m for m, _ in active)
            for m, i in active:
                surges[i] = surges.get(i, 0.0) + piece * (m - 1.0)
            for f, i in random[name]:
                surges[i] = surges.get(i, 0.0) + piece * (f - 1.0)
    return ExpectedLoad(base, users, users * _amplification(s, users), surges)


def _down_share(s: Scenario, i: int) -> float:
    """The share of the time random surge ``i`` is active on a region: ``mttr / (mtbf + mttr)``, or with
    ``repair`` crews the machine-repairman chain's mean down over its regions (all it may pick: an upper
    bound when its mode picks fewer, since fewer targets wait less for a crew).
    """
    fault = s.faults[i]
    assert fault.mtbf is not None and fault.mttr is not None
    if fault.repair is None:
        return fault.mttr / (fault.mtbf + fault.mttr)
    n = len(set(fault.target.ids) or s.topology.regions)
    return expected_down(n, fault.mtbf, fault.mttr, fault.repair.crews) / n


def _amplification(s: Scenario, users: float) -> float:
    """The most tries per user request the client, load-balancer and dependency layers allow."""
    if users <= 0:
        return 1.0
    p, duration = s.policies, s.duration

    def layer(first: float, retries: int, budget: RetryBudget | None, holders: int) -> float:
        most = first * (retries + 1)
        if budget is None:
            return most
        burst = 10.0 * budget.min_per_second + max(1.0, 10.0 * budget.ratio)
        paid = first * (1.0 + budget.ratio) + holders * (budget.min_per_second * duration + burst)
        return min(most, max(first, paid))

    attempts = layer(users, p.client.retries, p.client.budget, len(s.workload.regions))
    tries = layer(attempts, p.load_balancer.retries, p.load_balancer.budget, len(s.topology.datacenters))
    calls = sum(r.share * len(r.dependencies) for r in s.workload.requests.values())
    return tries * (1.0 + calls * (p.server.dependency_retries + 1)) / users


class _Area:
    """``area(a, b)``: the requests a region offers between ``a`` and ``b`` seconds into the run, exactly
    (its profile is piecewise linear over a day).
    """

    def __init__(self, load: RegionLoad):
        self.points = profile_points(load)
        self.cum = [0.0]
        for (t0, f0), (t1, f1) in zip(self.points, self.points[1:], strict=False):
            self.cum.append(self.cum[-1] + (t1 - t0) * (f0 + f1) / 2.0)
        self.day, self.peak, self.start = DAY, load.peak, load.start

    def _upto(self, x: float) -> float:
        """The integral of the profile's factor from the start of a day to ``x`` seconds into it."""
        times = [t for t, _ in self.points]
        i = min(max(bisect.bisect_right(times, x) - 1, 0), len(times) - 2)
        (t0, f0), (t1, f1) = self.points[i], self.points[i + 1]
        fx = f0 + (f1 - f0) * (x - t0) / (t1 - t0) if t1 > t0 else f0
        return self.cum[i] + (x - t0) * (f0 + fx) / 2.0

    def _total(self, y: float) -> float:
        days, x = divmod(y, self.day)
        return days * self.cum[-1] + self._upto(x)

    def __call__(self, a: float, b: float) -> float:
        return self.peak * (self._total(self.start + b) - self._total(self.start + a))
