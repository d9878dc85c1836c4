"""Servers for a downtime budget: the layout planned at several fleet sizes over the same years.

``cascadesim capacity --years N`` asks the capacity question in the planner's terms: not only "can the
others absorb a datacenter at the peak?" but "how many servers keep the year's downtime within what the
availability objective allows?". Every server group is scaled by each factor of ``scales`` (at least one
server each, :func:`sim.planner.sensitivity.scale_servers`) and planned over the same ``years`` with the
same seeds (:func:`sim.planner.years.plan_years`): the failures of the servers two sizes share are common
random numbers, so each size's change against today's fleet is a paired difference with its interval.

:meth:`Headroom.enough` names the smallest size that meets the budget, by one of two rules:
``mean`` — the 95% interval of the mean annual downtime is within the budget; ``p95`` — the P95 year is.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sim.experiments.stats import Interval, paired_interval
from sim.planner.sensitivity import scale_servers
from sim.planner.years import YearsSummary, plan_years
from sim.scenario import Scenario

__all__ = ["SCALES", "Size", "Headroom", "headroom"]

SCALES = (0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)
"""The fleet sizes planned by default, as factors of each server group's count."""

Rule = Literal["mean", "p95"]


@dataclass
class Size:
    """One fleet size: its scale, servers in all, its planned years and its change in downtime minutes a
    year against today's fleet (paired year by year; ``None`` for today's fleet itself).
    """

    scale: float
    servers: int
    years: YearsSummary
    change: Interval | None

    def meets(self, rule: Rule) -> bool:
        """Whether this size's years are within the budget by ``rule`` (see the module docstring)."""
        budget = self.years.budget_minutes
        if rule == "p95":
            return self.years.downtime_percentiles["p95"] <= budget
        high = self.years.downtime.high
        return high is not None and high <= budget

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for ``capacity.json``."""
        y = self.years
        return {"scale": self.scale, "servers": self.servers, "years": y.years,
                "availability": y.availability.as_dict(), "downtime": y.downtime.as_dict(),
                "downtime_percentiles": y.downtime_percentiles, "over_budget": y.over_budget.as_dict(),
                "change": None if self.change is None else self.change.as_dict(),
                "meets_mean": self.meets("mean"), "meets_p95": self.meets("p95")}


@dataclass
class Headroom:
    """The fleet sizes planned, smallest first, and the budget they are held to (minutes a year)."""

    scenario: str
    budget_minutes: float
    slo_availability: float
    sizes: list[Size]

    @property
    def today(self) -> Size:
        """Today's fleet (scale 1)."""
        return next(s for s in self.sizes if s.scale == 1.0)

    def enough(self, rule: Rule) -> Size | None:
        """The smallest size planned that meets the budget by ``rule`` (``None``: none of them does)."""
        return next((s for s in self.sizes if s.meets(rule)), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for ``capacity.json``."""
        def scale(s: Size | None) -> float | None:
            return None if s is None else s.scale

        return {"scenario": self.scenario, "budget_minutes": self.budget_minutes,
                "slo_availability": self.slo_availability, "sizes": [s.as_dict() for s in self.sizes],
                "enough_for_mean": scale(self.enough("mean")), "enough_for_p95": scale(self.enough("p95"))}


def _servers(scenario: Scenario) -> int:
    return sum(g.count for d in scenario.topology.datacenters for g in d.servers)


def headroom(scenario: Scenario, years: int, *, scales: tuple[float, ...] = SCALES, seed: int | None = None,
             executor: Any = None, progress: Callable[[int, int], None] | None = None) -> Headroom:
    """Plan ``years`` of ``scenario`` at each fleet size of ``scales`` (1 is always among them) with the
    same seeds, and pair each with today's fleet. A factor that gives a fleet already planned (groups of
    a few servers round alike) is left out.
    """
    models: dict[float, Scenario] = {1.0: scenario}
    seen = {_servers(scenario)}
    for factor in sorted(set(scales) - {1.0}, key=lambda f: abs(f - 1.0)):  # nearest today's first
        d = copy.deepcopy(scenario.model_dump(mode="json"))
        scale_servers(d, factor)
        d["name"] = f"{scenario.name}-servers-x{factor:g}"
        model = Scenario.model_validate(d)
        if _servers(model) not in seen:  # small groups round two factors to the same fleet: plan it once
            seen.add(_servers(model))
            models[factor] = model
    factors = sorted(models)
    total = years * len(factors)
    planned: dict[float, tuple[int, YearsSummary]] = {}
    for i, factor in enumerate(factors):
        model = models[factor]

        def step(done: int, _: int, before: int = i * years) -> None:
            if progress:
                progress(before + done, total)

        rows = plan_years(model, years, seed=seed, executor=executor, progress=step)
        planned[factor] = (_servers(model), YearsSummary.of(model, rows))
    base = planned[1.0][1]
    sizes = [Size(f, n, s, None if f == 1.0 else paired_interval([r["downtime_minutes"] for r in base.rows],
                                                                 [r["downtime_minutes"] for r in s.rows]))
             for f, (n, s) in planned.items()]
    return Headroom(scenario.name, base.budget_minutes, base.slo_availability, sizes)
