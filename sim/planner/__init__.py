"""The capacity planner: a scenario's availability and downtime over many years, in seconds a year.

Instead of stepping through the year, the planner replays what changes the fleet (servers and datacenters
down, databases failing over and back: :mod:`~sim.planner.outages`, :mod:`~sim.planner.fleet`, drawn from
the scenario's own random streams, so the same seed gives the engines' failure times) and prices each
state with what the flow engine measured once per server group (:mod:`~sim.planner.curve`), window by
window (:mod:`~sim.planner.year`). Year ``i`` runs with replication ``i``'s seed (the engines'
replications), so a planned year and a simulated one can be paired, and two layouts share their draws.

Only server crashes and datacenter outages are planned; servers with a memory limit (crash under
overload) are refused: their cascades need an engine.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.experiments.plan import replication_seed
from sim.planner.outages import unplannable
from sim.planner.year import MECHANISMS, Fleet, YearLoss, plan_year
from sim.scenario import Scenario

__all__ = ["MECHANISMS", "Fleet", "PlannedYear", "plan", "plan_year", "refusals"]


class PlannedYear(NamedTuple):
    """One planned run of the scenario: its seed, availability (overall and per region), downtime minutes
    (SLO windows below target, overall and per region), and the requests lost by mechanism.
    """

    seed: int
    availability: float
    downtime_minutes: float
    region_availability: dict[str, float]
    region_downtime_minutes: dict[str, float]
    lost_by_mechanism: dict[str, float]
    requests: float
    lost: float


def refusals(scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Why the planner cannot plan ``scenario``, as (field path, message); empty: it can."""
    from sim.policies import unsupported_on_flow  # the curves are measured on the flow engine

    out: list[tuple[tuple[str | int, ...], str]] = [
        (("faults", i, "kind"), f"the planner models server_crash and datacenter_outage faults, not {kind} "
                                f"('{fid}'): use engine: flow or requests")
        for i, fid, kind in unplannable(scenario)
    ]
    for d, dc in enumerate(scenario.topology.datacenters):
        for g, group in enumerate(dc.servers):
            if group.memory is not None:
                out.append((("topology", "datacenters", d, "servers", g, "memory"),
                            f"servers '{group.id}' crash when they run out of memory, a cascade the planner "
                            "cannot price: use engine: flow, or remove memory"))
            if group.autoscale is not None:
                out.append((("topology", "datacenters", d, "servers", g, "autoscale"),
                            f"servers '{group.id}' autoscale: the planner prices fixed fleets only; use engine: "
                            "flow or requests, or remove autoscale"))
    if scenario.workload.mail is not None:
        out.append((("workload", "mail"), "the planner does not model mail: use engine: flow or requests"))
    out += [(path, message.replace("the flow engine cannot", "the planner (which measures on it) cannot"))
            for path, message in unsupported_on_flow(scenario)]
    return out


def summarize_year(fleet: Fleet, seed: int, loss: YearLoss) -> PlannedYear:
    """Availability and downtime of one planned run, as the engines' summary computes them."""
    scenario, cluster = fleet.scenario, fleet.cluster
    target = scenario.slo.availability
    req, lost = loss.requests, loss.lost
    minutes = fleet.length / 60.0
    total_req = req.sum(axis=1)
    per_window = np.where(total_req > 0, 1.0 - lost.sum(axis=1) / np.maximum(total_req, 1e-300), 1.0)
    region_window = np.where(req > 0, 1.0 - lost / np.maximum(req, 1e-300), 1.0)
    region_req = req.sum(axis=0)
    region_avail = np.where(region_req > 0, 1.0 - lost.sum(axis=0) / np.maximum(region_req, 1e-300), 1.0)
    names = cluster.region_ids
    return PlannedYear(
        seed=seed,
        availability=float(1.0 - lost.sum() / req.sum()) if req.sum() > 0 else 1.0,
        downtime_minutes=float(minutes[per_window < target].sum()),
        region_availability={r: float(a) for r, a in zip(names, region_avail, strict=True)},
        region_downtime_minutes={r: float(minutes[region_window[:, i] < target].sum()) for i, r in enumerate(names)},
        lost_by_mechanism={m: float(x) for m, x in zip(MECHANISMS, loss.by_mechanism.sum(axis=1), strict=True)},
        requests=float(req.sum()),
        lost=float(lost.sum()),
    )


def plan(scenario: Scenario, years: int = 1, *, seed: int | None = None, first: int = 0,
         fleet: Fleet | None = None) -> list[PlannedYear]:
    """Plan ``years`` runs of ``scenario`` (its ``duration`` each): run ``i`` with replication ``i``'s seed
    (from ``seed``, default the scenario's), for ``i`` from ``first``.
    """
    problems = refusals(scenario)
    if problems:
        raise ValueError("the planner cannot plan this scenario:\n" + "\n".join(
            f"{'.'.join(str(p) for p in path)}: {message}" for path, message in problems))
    fleet = fleet or Fleet(scenario)
    root = scenario.seed if seed is None else seed
    out = []
    for i in range(first, first + years):
        s = replication_seed(root, i)
        out.append(summarize_year(fleet, s, plan_year(fleet, s)))
    return out
