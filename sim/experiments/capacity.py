"""Capacity, answered from the scenario alone: can the others absorb a datacenter's users.

At the scenario's peak (the moment in the run when the regions together offer the most requests, traffic
surges included), each region's users are served by their nearest datacenter, and each request's mailbox
work lands on the server holding the active copy of the user's database. When datacenters fail, users
move to their next nearest surviving datacenter and databases fail over to their next surviving copy
(placement order). :func:`capacity` works out every datacenter's utilisation — requests offered over the
requests its servers serve when busy (:func:`sim.sizing.server_capacity`, the one definition of capacity,
which the run report's load chart uses too) — for the normal state, each single datacenter lost (N+1) and
each pair lost (N+2), and the capacity each datacenter needs so that every such loss stays under
``max_utilisation``.

What is counted and what is not is listed in :attr:`CapacityReport.assumptions`, which the command and
the report print beside the verdict: traffic surges (scheduled ones where they fall; a random one at its
full multiplier, as it may strike at the peak); the client retries the availability objective allows
(each attempt fails with ``1 − objective``); not the retries of an overload, which only the simulation
shows; work spread evenly over a datacenter's servers; no warm-up or failover delays.

>>> from sim.loader import parse_scenario
>>> from sim.topology import EXAMPLE
>>> report = capacity(parse_scenario(EXAMPLE))
>>> [(loss.lost, loss.absorbed) for loss in report.losses]
[(('dc-a',), True), (('dc-b',), True)]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.scenario import Scenario
from sim.sizing import mix_work, server_capacity, surge_factor, surge_times
from sim.workload import rate_function

if TYPE_CHECKING:
    from sim.planner.headroom import Headroom

__all__ = ["capacity", "CapacityReport", "Loss", "peak_time", "format_headroom"]


def peak_time(scenario: Scenario, steps: int = 2000) -> float:
    """The time in the run when all regions together offer the most requests, traffic surges included
    (the first such time): sampled on ``steps`` steps and at every scheduled surge's start.
    """
    rates = {name: rate_function(load) for name, load in scenario.workload.regions.items()}
    step = scenario.duration / steps
    candidates = sorted({*(min(k * step, scenario.duration) for k in range(steps + 1)), *surge_times(scenario)})
    best_t, best = 0.0, -1.0
    for t in candidates:
        total = sum(r(t) * surge_factor(scenario, name, t) for name, r in rates.items())
        if total > best + 1e-12:
            best_t, best = t, total
    return best_t


def retry_factor(scenario: Scenario) -> float:
    """Client attempts per request when each fails with ``1 − objective``: ``Σ_{k=0..retries} (1 − a)^k``."""
    miss = 1.0 - scenario.slo.availability
    return sum(miss**k for k in range(scenario.policies.client.retries + 1))


@dataclass(frozen=True)
class Loss:
    """The state after the datacenters ``lost`` fail.

    Where each region's users go, each survivor's utilisation, who is left with nowhere to go, how many
    databases have no copy left. Absorbed: every user has a datacenter and a mailbox, and every survivor
    stays under the limit.
    """

    lost: tuple[str, ...]
    routes: dict[str, str | None]  # region -> datacenter its users reach (None: stranded)
    utilisation: dict[str, float]  # surviving datacenter -> work offered / workers
    absorbed: bool
    stranded: list[str]  # regions with no surviving datacenter
    unavailable_databases: int  # databases with no surviving copy

    @property
    def worst(self) -> tuple[str | None, float]:
        """The most loaded survivor and its utilisation."""
        if not self.utilisation:
            return None, math.inf
        name = max(self.utilisation, key=lambda d: (self.utilisation[d], d))
        return name, self.utilisation[name]

    def detail(self) -> str:
        """What the loss does, in a phrase: stranded regions or the busiest survivor, lost databases."""
        worst, u = self.worst
        text = f"stranded regions: {', '.join(self.stranded)}" if self.stranded else (
            f"busiest survivor {worst} at {u * 100:.1f}%"
        )
        if self.unavailable_databases:
            text += f"; {self.unavailable_databases:,} databases lose every copy"
        return text


@dataclass
class CapacityReport:
    """Peak load, capacities, every single and double datacenter loss, and the capacity needed."""

    scenario: str
    at: float  # the peak's time in the run, seconds
    max_utilisation: float
    load: dict[str, float]  # region -> requests/s at the peak (surges and the objective's retries counted)
    workers: dict[str, int]  # datacenter -> workers
    capacity: dict[str, float]  # datacenter -> requests/s it serves at full utilisation (the mix's work)
    normal: Loss
    losses: list[Loss]  # each single datacenter lost (N+1)
    pairs: list[Loss]  # each pair lost (N+2)
    needed: dict[str, dict[str, Any]] = field(default_factory=dict)  # datacenter -> N+1 / N+2 needs
    surges: dict[str, float] = field(default_factory=dict)  # region -> the surges' factor at the peak
    retries: float = 1.0  # client attempts per request at the objective (retry_factor)
    assumptions: list[str] = field(default_factory=list)  # what is counted and what is not, in words
    planned: Headroom | None = None  # with --years: the fleet sizes planned against the downtime budget

    @property
    def n_plus_1(self) -> bool:
        """Whether every single datacenter loss is absorbed."""
        return all(loss.absorbed for loss in self.losses)

    @property
    def n_plus_2(self) -> bool:
        """Whether every loss of two datacenters is absorbed."""
        return all(loss.absorbed for loss in self.pairs)

    def headroom(self, losses: int = 1) -> float | None:
        """Extra capacity, as a share of today's, that every datacenter needs for N+``losses``.

        0: none needed; None: impossible, some region would have no datacenter or some database no copy.
        """
        cases = self.losses if losses == 1 else self.pairs
        if not cases or any(c.stranded or c.unavailable_databases for c in cases):
            return None
        worst = max((c.worst[1] for c in cases), default=0.0)
        return max(0.0, worst / self.max_utilisation - 1.0)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""

        def loss(x: Loss) -> dict[str, Any]:
            return {
                "lost": list(x.lost),
                "routes": x.routes,
                "utilisation": x.utilisation,
                "absorbed": x.absorbed,
                "stranded": x.stranded,
                "unavailable_databases": x.unavailable_databases,
            }

        return {
            "scenario": self.scenario,
            "at": self.at,
            "max_utilisation": self.max_utilisation,
            "load": self.load,
            "workers": self.workers,
            "capacity": self.capacity,
            "normal": loss(self.normal),
            "n_plus_1": self.n_plus_1,
            "n_plus_2": self.n_plus_2,
            "headroom_n_plus_1": self.headroom(1),
            "headroom_n_plus_2": self.headroom(2),
            "losses": [loss(x) for x in self.losses],
            "pairs": [loss(x) for x in self.pairs],
            "needed": self.needed,
            "surges": self.surges,
            "retries": self.retries,
            "assumptions": self.assumptions,
            "planned": None if self.planned is None else self.planned.as_dict(),
        }


class _Model:
    """The scenario reduced to what capacity needs: loads, preferences, copies, work per request."""

    def __init__(self, scenario: Scenario, at: float):
        topo = scenario.topology
        self.dcs = [d.id for d in topo.datacenters]
        self.work = mix_work(scenario)  # mean work multiplier of the request mix
        self.surges = {name: surge_factor(scenario, name, at) for name in scenario.workload.regions}
        self.retries = retry_factor(scenario)
        self.load = {name: rate_function(load)(at) * self.surges[name] * self.retries
                     for name, load in scenario.workload.regions.items()}
        self.prefs = {r.id: sorted(r.datacenters, key=lambda d: (r.datacenters[d], d)) for r in topo.regions}
        self.workers = {d.id: sum(g.count * g.workers for g in d.servers) for d in topo.datacenters}
        self.servers = {d.id: sum(g.count for g in d.servers) for d in topo.datacenters}
        # Requests of the mix per second a datacenter's servers serve when busy (sim.sizing's definition).
        self.capacity = {
            d.id: sum(g.count * server_capacity(g.workers, g.service_time.mean, self.work) for g in d.servers)
            for d in topo.datacenters
        }
        self.frontend = {
            d.id: sum(g.count * g.workers * g.frontend_time for g in d.servers) / self.workers[d.id]
            for d in topo.datacenters
        }
        # Per region: (share of its databases, copy datacenters in activation order) per database group.
        all_regions = [r.id for r in topo.regions]
        self.databases: dict[str, list[tuple[float, list[str], int]]] = {}
        for r in all_regions:
            groups = [g for g in topo.databases if not g.regions or r in g.regions]
            total = sum(g.count for g in groups)
            self.databases[r] = [
                (g.count / total, [p.datacenter for p in g.placement], g.count) for g in groups
            ]

    def state(self, lost: tuple[str, ...], max_utilisation: float) -> Loss:
        gone = set(lost)
        busy = {d: 0.0 for d in self.dcs if d not in gone}
        routes: dict[str, str | None] = {}
        stranded, unavailable = [], 0
        for region, prefs in self.prefs.items():
            front = next((d for d in prefs if d not in gone), None)
            routes[region] = front
            rate = self.load.get(region, 0.0)
            if front is None:
                stranded.append(region)
                continue
            placements = self.databases[region]
            if not placements:
                busy[front] += rate / self.capacity[front]
                continue
            for share, copies, count in placements:
                home = next((d for d in copies if d not in gone), None)
                if home is None:
                    unavailable += count
                    continue
                busy[home] += rate * share / self.capacity[home]
                if home != front:  # the front end's proxy work, in worker-seconds over its workers
                    busy[front] += rate * share * self.frontend[front] / self.workers[front]
        utilisation = dict(busy)  # each a share of the datacenter's capacity
        absorbed = (
            not stranded and not unavailable and all(u <= max_utilisation for u in utilisation.values())
        )
        return Loss(tuple(lost), routes, utilisation, absorbed, stranded, unavailable)


def capacity(scenario: Scenario, max_utilisation: float = 1.0, at: float | None = None) -> CapacityReport:
    """Answer, for every datacenter, "can the others absorb its users if it fails?" at the peak.

    ``max_utilisation`` is the most a survivor may run at (1.0: just stable; 0.8 leaves room for bursts).
    ``at`` overrides the moment (seconds into the run). Also works out, per datacenter, the workers and
    servers it needs so that every single (N+1) and double (N+2) datacenter loss is absorbed.
    """
    if not 0 < max_utilisation <= 1.5:
        raise ValueError(f"max_utilisation must be in (0, 1.5] (got {max_utilisation})")
    when = peak_time(scenario) if at is None else at
    model = _Model(scenario, when)
    normal = model.state((), max_utilisation)
    singles = [model.state((d,), max_utilisation) for d in model.dcs]
    pairs = [model.state(p, max_utilisation) for p in itertools.combinations(model.dcs, 2)]
    needed: dict[str, dict[str, Any]] = {}
    for d in model.dcs:
        row: dict[str, Any] = {
            "workers": model.workers[d],
            "servers": model.servers[d],
            "utilisation": normal.utilisation[d],
        }
        for label, cases in (("n_plus_1", [normal, *singles]), ("n_plus_2", [normal, *singles, *pairs])):
            worst = max((c.utilisation[d] for c in cases if d in c.utilisation), default=0.0)
            workers = worst * model.workers[d] / max_utilisation
            per_server = model.workers[d] / model.servers[d]
            row[label] = {
                "utilisation": worst,
                "workers": math.ceil(workers - 1e-9),
                "servers": math.ceil(workers / per_server - 1e-9),
                "extra_servers": max(0, math.ceil(workers / per_server - 1e-9) - model.servers[d]),
            }
        needed[d] = row
    return CapacityReport(
        scenario=scenario.name,
        at=when,
        max_utilisation=max_utilisation,
        load=model.load,
        workers=model.workers,
        capacity=dict(model.capacity),
        normal=normal,
        losses=singles,
        pairs=pairs,
        needed=needed,
        surges=model.surges,
        retries=model.retries,
        assumptions=_assumptions(scenario, model),
    )


def _assumptions(scenario: Scenario, model: _Model) -> list[str]:
    """What the figures count and what they leave out, in words for the command and the report."""
    surging = {name: f for name, f in model.surges.items() if f != 1.0}
    retries = scenario.policies.client.retries
    return [
        ("traffic surges counted: " + ", ".join(f"{name} ×{f:g}" for name, f in surging.items()) + " at the peak"
         if surging else "no traffic surge at the peak"),
        f"client retries at the objective counted (×{model.retries:.4g}: {retries} retries, each attempt failing "
        f"with {(1 - scenario.slo.availability) * 100:.3g}%); the retries of an overload are not — they "
        "multiply the load once a survivor tips over, which only the simulation shows",
        "work spread evenly over a datacenter's servers; no warm-up or failover delays (the steady state "
        "after the loss)",
    ]


def format_capacity(report: CapacityReport) -> str:
    """The capacity report as text for the terminal."""
    from sim.units import format_clock, format_percent, format_rate

    lines = [
        f"{report.scenario}  capacity at the peak ({format_clock(report.at)} into the run, "
        f"{format_rate(sum(report.load.values()))}), survivors at most "
        f"{format_percent(report.max_utilisation)} utilised"
    ]
    lines.append("  datacenter     workers  capacity/s  normal   N+1 needs      N+2 needs")
    possible = {n: report.headroom(n) is not None for n in (1, 2)}
    for d, need in report.needed.items():
        n1, n2 = need["n_plus_1"], need["n_plus_2"]
        lines.append(
            f"  {d:<14} {need['workers']:>7,}  {report.capacity[d]:>10,.1f}  "
            f"{need['utilisation'] * 100:>5.1f}%  "
            f"{_extra(n1, possible[1]):<13}  {_extra(n2, possible[2])}"
        )
    lines.append("  if it fails     can the others absorb its users?")
    for loss in report.losses:
        verdict = "yes" if loss.absorbed else "NO"
        lines.append(f"  {loss.lost[0]:<14}  {verdict:<3}  {loss.detail()}")
    for n, ok in ((1, report.n_plus_1), (2, report.n_plus_2)):
        head = report.headroom(n)
        if ok:
            lines.append(f"  N+{n}: yes")
        elif head is None:
            lines.append(
                f"  N+{n}: impossible with this topology (some region has no datacenter, or some database "
                "no copy, left)"
            )
        else:
            lines.append(
                f"  N+{n}: needs {head * 100:.0f}% more capacity in the busiest survivor "
                "(per-datacenter needs above)"
            )
    if report.planned is not None:
        lines += format_headroom(report.planned)
    lines.append("  counted:")
    lines += [f"    - {a}" for a in report.assumptions]
    return "\n".join(lines)


def format_headroom(planned: Headroom) -> list[str]:
    """The fleet sizes planned against the downtime budget, as lines for the terminal."""
    from sim.experiments.report.planner import minutes
    from sim.units import format_percent, format_span

    today = planned.today.years
    per = today.unit
    lines = [f"  servers for the downtime budget ({minutes(planned.budget_minutes)} a {per} at "
             f"{format_percent(planned.slo_availability)} of {format_span(today.duration)}; "
             f"{today.years:,} {per}s planned at each size, the same failures)",
             f"  servers  scale  {f'downtime a {per} (95% interval)':<45}  {f'P95 {per}':>12}  {'over budget':>11}"
             "  vs today"]
    for size in planned.sizes:
        d, change = size.years.downtime, size.change
        between = "" if d.low is None or d.high is None else f"({minutes(d.low)} to {minutes(d.high)})"
        delta = "" if change is None or change.mean is None else f"{change.mean:+,.1f} min"
        lines.append(f"  {size.servers:>7,}  ×{size.scale:<4g}  {minutes(d.mean):>13} {between:<31}  "
                     f"{minutes(size.years.downtime_percentiles['p95']):>12}  "
                     f"{format_percent(size.years.over_budget.mean or 0.0):>11}  {delta}")
    for what, fit in ((f"its mean {per} (95% sure)", planned.enough("mean")),
                      (f"its P95 {per}", planned.enough("p95"))):
        lines.append(f"  enough for {what}: " + (
            f"{fit.servers:,} servers (×{fit.scale:g})" if fit is not None
            else f"none of the sizes planned (up to ×{planned.sizes[-1].scale:g})"))
    return lines


def _extra(need: dict[str, Any], possible: bool = True) -> str:
    if not possible:
        return "impossible"
    return "ok" if need["extra_servers"] == 0 else f"+{need['extra_servers']:,} servers"
