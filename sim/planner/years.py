"""Many planned years: the distribution of a layout's annual availability and downtime, and two layouts paired.

A "year" is one run of the scenario's ``duration`` (365 days in a planner's scenario), run ``i`` with
replication ``i``'s seed. :func:`plan_years` plans them in chunks on an executor (this process, the local
process pool or Dask; one chunk of years per task), each kept in a plan folder the moment it is planned
when there is one (:mod:`~sim.planner.store`: a plan that was stopped resumes there); :class:`YearsSummary`
gives the mean with its 95% interval, the P50/P95/P99 year, the share of years over the downtime budget
that the availability objective allows, per region, and where the loss comes from; :func:`paired` the
difference between two layouts year by year (the same failures where they share servers: common random
numbers).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.bounds import structure_bound
from sim.experiments.plan import Task
from sim.experiments.stats import Domain, Interval, interval_for, paired_interval, verdict
from sim.planner.year import MECHANISMS, Fleet
from sim.scenario import Scenario

if TYPE_CHECKING:
    from sim.planner.store import YearsStore

__all__ = ["CHUNK", "YEAR_LIKE", "YearsSummary", "paired", "plan_years"]

YEAR_LIKE = 360 * 86400.0
"""From this scenario duration on, a planned run is called a year (:attr:`YearsSummary.unit`)."""

CHUNK = 10
"""Years per task: enough to amortise a worker's set-up of the fleet (cached per process), few enough to
spread over the workers."""


@lru_cache(maxsize=2)
def _fleet(scenario_json: str) -> Fleet:
    """A worker's fleet for a scenario, built once per process."""
    return Fleet(Scenario.model_validate_json(scenario_json))


def plan_chunk(task: Task) -> dict[str, Any]:
    """Plan the years of ``task`` (``columns``: ``first`` and ``years``) and return them as plain data."""
    from sim.planner import plan

    fleet = _fleet(task.scenario_json)
    cols = dict(task.columns)
    years = plan(fleet.scenario, int(cols["years"]), seed=task.seed, first=int(cols["first"]), fleet=fleet)
    return {"years": [y._asdict() for y in years]}


def plan_years(scenario: Scenario, years: int, *, seed: int | None = None, executor: Any = None,
               progress: Callable[[int, int], None] | None = None, store: YearsStore | None = None,
               layout: str | None = None) -> list[dict[str, Any]]:
    """Plan ``years`` runs of ``scenario`` on ``executor`` (``None``: this process), in year order.

    With ``store`` (a plan folder, :class:`~sim.planner.store.YearsStore`) each chunk is kept there as
    ``layout`` (default: the scenario's name) the moment it is planned, and the years already there are
    read instead of planned again (``progress`` counts them as done).
    """
    from sim.experiments.replicate import resolve_executor
    from sim.planner.curve import measure_curve

    root = scenario.seed if seed is None else seed
    name = scenario.name if layout is None else layout
    wanted = {k: min(CHUNK, years - k) for k in range(0, years, CHUNK)}
    out = {k: store.read(name, k)[:n] for k, n in wanted.items()} if store is not None else {}
    missing = {k: n for k, n in wanted.items() if len(out.get(k, [])) < n}
    if missing:  # the curves measured (or read) here once, not by every worker at once
        for dc in scenario.topology.datacenters:
            for group in dc.servers:
                measure_curve(scenario, group.model_dump())
    if progress:
        progress(sum(len(v) for v in out.values()), years)
    scenario_json = json.dumps(scenario.model_dump(mode="json"), sort_keys=True)
    tasks = [Task(run_id=f"years-{k}", point=0, replication=k // CHUNK, seed=root, scenario_json=scenario_json,
                  metrics=(), columns=(("chunk", k), ("first", k + len(out.get(k, []))),
                                       ("years", n - len(out.get(k, [])))))
             for k, n in missing.items()]
    runner, own = resolve_executor(executor if executor is not None else "here")
    try:
        for task, result in runner.map(plan_chunk, tasks):
            k = dict(task.columns)["chunk"]
            out[k] = out.get(k, []) + result["years"]
            if store is not None:
                store.write(name, k, out[k])
            if progress:
                progress(sum(len(v) for v in out.values()), years)
    finally:
        if own:
            runner.close()
    return [y for k in sorted(out) for y in out[k]]


def _percentiles(values: list[float]) -> dict[str, float]:
    xs = np.array(values, dtype=float)
    return {f"p{q}": float(np.percentile(xs, q)) for q in (50, 95, 99)} | {"max": float(xs.max())}


@dataclass
class YearsSummary:
    """What the planned years of one scenario say (see the module docstring)."""

    scenario: str
    years: int
    duration: float  # seconds per year
    slo_availability: float
    budget_minutes: float  # the downtime the availability objective allows per year
    availability: Interval
    downtime: Interval
    downtime_percentiles: dict[str, float]
    over_budget: Interval  # share of years with more downtime than the budget
    regions: dict[str, dict[str, Any]]
    lost_by_mechanism: dict[str, float]  # mean requests lost per year
    rows: list[dict[str, Any]]
    structure: dict[str, float | None]  # per region: the structure-only bound, minutes a year (sim.bounds)

    @classmethod
    def of(cls, scenario: Scenario, rows: list[dict[str, Any]]) -> YearsSummary:
        """Summarize ``rows`` (from :func:`plan_years`) of ``scenario``."""
        target = scenario.slo.availability
        budget = (1.0 - target) * scenario.duration / 60.0
        down = [r["downtime_minutes"] for r in rows]
        regions: dict[str, dict[str, Any]] = {}
        for name in [r.id for r in scenario.topology.regions if r.id in rows[0]["region_availability"]]:
            r_down = [r["region_downtime_minutes"][name] for r in rows]
            regions[name] = {
                "availability": interval_for([r["region_availability"][name] for r in rows], "bounded"),
                "downtime": interval_for(r_down, "nonnegative"),
                "downtime_percentiles": _percentiles(r_down),
                "over_budget": interval_for([d > budget for d in r_down], "proportion"),
            }
        return cls(
            scenario=scenario.name, years=len(rows), duration=scenario.duration, slo_availability=target,
            budget_minutes=budget,
            availability=interval_for([r["availability"] for r in rows], "bounded"),
            downtime=interval_for(down, "nonnegative"),
            downtime_percentiles=_percentiles(down),
            over_budget=interval_for([d > budget for d in down], "proportion"),
            regions=regions,
            lost_by_mechanism={m: float(np.mean([r["lost_by_mechanism"][m] for r in rows])) for m in MECHANISMS},
            rows=rows,
            structure={r.region: r.minutes_per_year for r in structure_bound(scenario).regions},
        )

    @property
    def unit(self) -> str:
        """What one planned run is called: ``year`` from 360 days on (a planner's scenario), else ``run``."""
        return "year" if self.duration >= YEAR_LIKE else "run"

    def structure_worst(self) -> float | None:
        """The structure-only bound of the region where it is largest (minutes a year; ``None``: no databases)."""
        known = [m for m in self.structure.values() if m is not None]
        return max(known) if known else None

    def worst_region(self) -> str:
        """The region with the lowest mean availability."""
        return min(self.regions, key=lambda r: (self.regions[r]["availability"].mean, r))

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for ``plan.json``."""
        def plain(x: Any) -> Any:
            if isinstance(x, Interval):
                return x.as_dict()
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            return x
        return {k: plain(v) for k, v in self.__dict__.items()}

    def pareto(self) -> Iterator[tuple[str, float, float]]:
        """The mechanisms by their share of the lost requests, largest first: (name, lost a year, share)."""
        total = sum(self.lost_by_mechanism.values())
        for name, lost in sorted(self.lost_by_mechanism.items(), key=lambda kv: -kv[1]):
            if lost > 0:
                yield name, lost, lost / total


def paired(a: YearsSummary, b: YearsSummary) -> dict[str, Any]:
    """``b − a`` year by year (the same seeds): availability and downtime, with intervals and verdicts."""
    n = min(a.years, b.years)
    out = {}
    pairs: tuple[tuple[str, Domain], ...] = (("availability", "bounded"), ("downtime_minutes", "nonnegative"))
    for key, domain in pairs:
        diff = paired_interval([r[key] for r in a.rows[:n]], [r[key] for r in b.rows[:n]], domain=domain)
        out[key] = {"difference": diff, "verdict": verdict(diff).text}
    return out
