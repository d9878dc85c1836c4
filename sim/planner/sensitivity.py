"""How annual downtime moves with the layout's assumptions: a small built-in sweep, one factor at a time.

Each :class:`Factor` changes one thing of the scenario, once down and once up: the mean time between
failures and to repair of every random fault, the copies of each database, the failover delay, and the
servers of each group (headroom). Each variant is planned over the same years with the same seeds as the
layout itself (:func:`sim.planner.years.plan_years`), so the failures are common random numbers and the
change in downtime is a paired difference with its interval. :func:`sensitivity` returns them; drawn as a
tornado (largest swing on top) in the planner's report.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.experiments.stats import Interval, paired_interval
from sim.planner.years import YearsSummary, plan_years
from sim.scenario import Scenario

if TYPE_CHECKING:
    from sim.planner.store import YearsStore

__all__ = ["FACTORS", "Factor", "Swing", "Sensitivity", "scale_servers", "sensitivity", "variant",
           "variant_name"]

Dump = dict[str, Any]


@dataclass(frozen=True)
class Factor:
    """One assumption of a layout, changed down and up: ``apply(dump, up)`` edits a scenario's plain data
    in place, or returns why the variant cannot be made (``None``: made).
    """

    name: str
    label: str
    low: str  # how the low variant changes it, for people
    high: str
    apply: Callable[[Dump, bool], str | None]


def _random_faults(d: Dump) -> list[Dump]:
    return [f for f in d["faults"] if f.get("mtbf") is not None and f.get("mttr") is not None]


def _scale_faults(key: str, d: Dump, up: bool) -> str | None:
    faults = _random_faults(d)
    if not faults:
        return "no random faults"
    for f in faults:
        f[key] *= 2.0 if up else 0.5
    return None


def _copies(d: Dump, up: bool) -> str | None:
    for db in d["topology"]["databases"]:
        placement = db["placement"]
        if up:
            placement[0]["copies"] += 1
        elif sum(p["copies"] for p in placement) <= 1:
            return f"databases '{db['id']}' have one copy already"
        else:
            placement[-1]["copies"] -= 1
            if placement[-1]["copies"] == 0:
                placement.pop()
    return None


def _failover_delay(d: Dump, up: bool) -> str | None:
    d["policies"]["failover"]["database_delay"] *= 2.0 if up else 0.5
    return None


def scale_servers(d: Dump, factor: float) -> None:
    """Every server group of the scenario dump ``d`` with ``factor`` times its servers (at least one)."""
    for dc in d["topology"]["datacenters"]:
        for group in dc["servers"]:
            group["count"] = max(1, round(group["count"] * factor))


def _servers(d: Dump, up: bool) -> str | None:
    scale_servers(d, 1.25 if up else 0.8)
    return None


FACTORS: tuple[Factor, ...] = (
    Factor("mtbf", "time between failures", "×0.5", "×2", lambda d, up: _scale_faults("mtbf", d, up)),
    Factor("mttr", "time to repair", "×0.5", "×2", lambda d, up: _scale_faults("mttr", d, up)),
    Factor("copies", "copies of each database", "one fewer (the last placed)", "one more (where the first is)",
           _copies),
    Factor("failover_delay", "failover delay", "×0.5", "×2", _failover_delay),
    Factor("servers", "servers per group (headroom)", "×0.8", "×1.25", _servers),
)
"""The factors of the sweep, in the order the report lists them before sorting by swing."""


def variant(scenario: Scenario, factor: Factor, up: bool) -> Scenario | str:
    """``scenario`` with ``factor`` changed down or up, or why it cannot be (a message)."""
    d = copy.deepcopy(scenario.model_dump(mode="json"))
    why = factor.apply(d, up)
    if why is not None:
        return why
    d["name"] = f"{scenario.name}-{factor.name}-{'high' if up else 'low'}"
    try:
        return Scenario.model_validate(d)
    except ValueError as exc:  # e.g. more copies than a datacenter has servers
        return str(exc).splitlines()[0]


@dataclass
class Swing:
    """One factor's variants: each side's years (``None`` when it could not be made, with ``why``) and its
    change in downtime minutes a year against the layout, paired year by year.
    """

    factor: Factor
    low: YearsSummary | None
    high: YearsSummary | None
    low_change: Interval | None
    high_change: Interval | None
    why_not: dict[str, str]

    @property
    def width(self) -> float:
        """The largest change of mean downtime either side makes (minutes a year)."""
        means = [iv.mean for iv in (self.low_change, self.high_change) if iv is not None and iv.mean is not None]
        return max((abs(m) for m in means), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``plan.json``."""
        return {
            "factor": self.factor.name, "label": self.factor.label, "low": self.factor.low, "high": self.factor.high,
            "low_change": None if self.low_change is None else self.low_change.as_dict(),
            "high_change": None if self.high_change is None else self.high_change.as_dict(),
            "low_downtime": None if self.low is None else self.low.downtime.as_dict(),
            "high_downtime": None if self.high is None else self.high.downtime.as_dict(),
            "why_not": self.why_not,
        }


@dataclass
class Sensitivity:
    """A layout's years and each factor's swing, largest first."""

    base: YearsSummary
    swings: list[Swing]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``plan.json``."""
        return {"scenario": self.base.scenario, "years": self.base.years, "swings": [s.as_dict() for s in self.swings]}


def variant_name(layout: str, factor: Factor, up: bool) -> str:
    """The name a variant's years are kept under in a plan folder: ``two-copies~mtbf-high``."""
    return f"{layout}~{factor.name}-{'high' if up else 'low'}"


def sensitivity(scenario: Scenario, base: YearsSummary, years: int, *, seed: int | None = None,
                executor: Any = None, factors: tuple[Factor, ...] = FACTORS,
                progress: Callable[[int, int], None] | None = None, store: YearsStore | None = None,
                layout: str | None = None) -> Sensitivity:
    """Plan each factor's variants of ``scenario`` over ``years`` with ``seed`` (those of ``base``, the
    layout's own years) and pair each with ``base``.

    With ``store`` (the plan folder) each variant's chunks are kept as they are planned, under
    :func:`variant_name` of ``layout`` (default: the scenario's name), and those already there are read:
    a stopped sensitivity resumes too. A variant is made from its layout alone, so the manifest's hash of
    the layout's scenario stands for its variants.
    """
    n = min(years, base.years)
    name = scenario.name if layout is None else layout
    done, total = 0, 2 * len(factors) * n
    swings = []
    for factor in factors:
        sides: dict[bool, YearsSummary | None] = {}
        why_not: dict[str, str] = {}
        for up in (False, True):
            model = variant(scenario, factor, up)
            if isinstance(model, str):
                sides[up], why_not["high" if up else "low"] = None, model
            else:

                def step(k: int, _: int, before: int = done) -> None:
                    if progress:
                        progress(before + k, total)

                rows = plan_years(model, n, seed=seed, executor=executor, store=store,
                                  layout=variant_name(name, factor, up), progress=step)
                sides[up] = YearsSummary.of(model, rows)
            done += n
            if progress:
                progress(done, total)
        changes = [None if s is None else paired_interval([r["downtime_minutes"] for r in base.rows[:n]],
                                                          [r["downtime_minutes"] for r in s.rows[:n]])
                   for s in (sides[False], sides[True])]
        swings.append(Swing(factor, sides[False], sides[True], changes[0], changes[1], why_not))
    swings.sort(key=lambda s: -s.width)
    return Sensitivity(base, swings)
