"""Layout comparison: the same failures hit every layout, and the differences are paired.

Replication ``i`` of every layout runs with the same seed, and every fault draws from its own stream
named by its id (``fault/<id>``), so the same fault hits the same components at the same times in every
layout that has them — common random numbers. The difference between two layouts is then taken
replication by replication (a paired t interval): the noise the layouts share cancels, and far fewer
replications tell them apart than independent runs would need. A difference is called significant only
from :func:`~sim.experiments.stats.min_replications` pairs on (6 at 95%; see
:func:`~sim.experiments.stats.verdict`); with fewer the verdict is "not enough replications".

>>> import sim                                                                     # doctest: +SKIP
>>> cmp = sim.compare({"two-dc": a, "three-dc": b}, replications=20)               # doctest: +SKIP
>>> cmp.winners["availability"]                                                    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.experiments.capacity import CapacityReport, capacity
from sim.experiments.executors import Executor
from sim.experiments.metrics import METRICS, Metric, default_metrics, metric_names
from sim.experiments.plan import Experiment, Point
from sim.experiments.replicate import close_sink, open_sink, resolve_executor, resolve_metrics
from sim.experiments.runner import Progress, run_experiment
from sim.experiments.stats import Interval, Verdict, paired_interval, verdict
from sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Comparison", "Winner", "compare", "layout_names"]

YEAR_MINUTES = 365.25 * 24 * 60


@dataclass(frozen=True)
class Winner:
    """Which layout is best on a metric, by how much over the runner-up, and the ``verdict`` on that
    difference (significant, not significant, or not enough replications to say).
    """

    metric: str
    layout: str | None  # None: every layout did the same, or the metric has no better direction
    runner_up: str | None
    difference: Interval | None  # winner minus runner-up, paired
    verdict: Verdict | None  # None when there is no difference to judge

    @property
    def significant(self) -> bool:
        """Whether the winner's lead is significant."""
        return self.verdict is not None and self.verdict.significant


def layout_names(paths_or_names: list[str]) -> list[str]:
    """Distinct names for the layouts (a repeated name gets ``-2``, ``-3``...)."""
    out: list[str] = []
    for name in paths_or_names:
        candidate, k = name, 2
        while candidate in out:
            candidate, k = f"{name}-{k}", k + 1
        out.append(candidate)
    return out


@dataclass
class Comparison:
    """Every layout's replications, each metric's interval, and the paired differences.

    ``differences[layout][metric]`` is the interval of (layout − baseline), the baseline being the first
    layout, and ``verdicts[layout][metric]`` whether it is significant; ``winners[metric]`` says which
    layout is best and whether significantly. Each layout's intervals are those of the metric's domain.
    """

    layouts: list[str]
    scenarios: list[Scenario]
    metrics: list[Metric]
    rows: list[dict[str, Any]]
    root_seed: int
    confidence: float = 0.95
    capacity: dict[str, CapacityReport] = field(default_factory=dict)
    store: Path | None = None

    def __post_init__(self) -> None:
        self.by_layout: dict[str, list[dict[str, Any]]] = {name: [] for name in self.layouts}
        for row in self.rows:
            self.by_layout[row["layout"]].append(row)
        for rows in self.by_layout.values():
            rows.sort(key=lambda r: r["replication"])
        numeric = [m for m in self.metrics if m.domain is not None]
        self.intervals = {
            name: {m.name: m.interval(self.values(name, m.name), self.confidence) for m in numeric}
            for name in self.layouts
        }
        base = self.layouts[0]
        self.differences = {
            name: {m.name: self._paired(base, name, m) for m in numeric} for name in self.layouts[1:]
        }
        self.verdicts = {
            name: {k: verdict(iv) for k, iv in ivs.items()} for name, ivs in self.differences.items()
        }
        self.winners = {m.name: self._winner(m) for m in numeric}

    @property
    def baseline(self) -> str:
        """The layout the differences are taken against (the first)."""
        return self.layouts[0]

    @property
    def replications(self) -> int:
        """Replications per layout."""
        return min(len(rows) for rows in self.by_layout.values())

    def values(self, layout: str, metric: str) -> list[Any]:
        """``metric`` of ``layout``, by replication (``None`` where a run had no value)."""
        return [r[metric] for r in self.by_layout[layout]]

    def _paired(self, a: str, b: str, m: Metric) -> Interval:
        """The paired interval of ``b − a`` on ``m``."""
        domain = m.domain or "unbounded"
        return paired_interval(self.values(a, m.name), self.values(b, m.name), self.confidence, domain)

    def _winner(self, m: Metric) -> Winner:
        if m.better is None or len(self.layouts) < 2:
            return Winner(m.name, None, None, None, None)
        sign = 1.0 if m.better == "higher" else -1.0
        ranked = sorted(
            (name for name in self.layouts if self.intervals[name][m.name].mean is not None),
            key=lambda name: (
                -sign * float(self.intervals[name][m.name].mean or 0.0),
                self.layouts.index(name),
            ),
        )
        if len(ranked) < 2:
            return Winner(m.name, ranked[0] if ranked else None, None, None, None)
        best, second = ranked[0], ranked[1]
        diff = self._paired(second, best, m)
        if diff.mean == 0 and (diff.std or 0.0) == 0:
            return Winner(m.name, None, None, diff, None)  # a tie on every replication
        return Winner(m.name, best, second, diff, verdict(diff))

    def shared_faults(self) -> tuple[list[str], dict[str, list[str]]]:
        """Fault ids every layout has (the failures common random numbers match up), and each layout's own."""
        ids = {
            name: [s.fault_id(i) for i in range(len(s.faults))]
            for name, s in zip(self.layouts, self.scenarios, strict=True)
        }
        common = [f for f in ids[self.layouts[0]] if all(f in v for v in ids.values())]
        return common, {name: [f for f in v if f not in common] for name, v in ids.items()}

    def downtime_per_year(self, layout: str) -> Interval:
        """Minutes below the SLO per year at this run's rate: downtime × (a year / the run's duration).

        Meaningful when the scenario is a typical slice of time (random faults with mtbf/mttr). Its
        interval is downtime's (non-negative: never below zero).
        """
        scenario = self.scenarios[self.layouts.index(layout)]
        scale = YEAR_MINUTES * 60 / scenario.duration
        return METRICS["downtime_minutes"].interval(
            [None if v is None else v * scale for v in self.values(layout, "downtime_minutes")],
            self.confidence,
        )

    def worst_runs(self, layout: str, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` replications of ``layout`` with the most downtime (then lowest availability)."""
        rows = self.by_layout[layout]
        return sorted(
            rows,
            key=lambda r: (
                -(r.get("downtime_minutes") or 0.0),
                r.get("availability") or 0.0,
                r["replication"],
            ),
        )[:k]

    def dataframe(self) -> pd.DataFrame:
        """One row per (layout, replication)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict[str, Any]:
        """Plain data for ``comparison.json``."""
        common, own = self.shared_faults()
        return {
            "layouts": self.layouts,
            "baseline": self.baseline,
            "replications": self.replications,
            "root_seed": self.root_seed,
            "confidence": self.confidence,
            "shared_faults": common,
            "own_faults": own,
            "intervals": {n: {k: v.as_dict() for k, v in ivs.items()} for n, ivs in self.intervals.items()},
            "differences": {
                n: {k: {**v.as_dict(), **_verdict_dict(self.verdicts[n][k])} for k, v in ivs.items()}
                for n, ivs in self.differences.items()
            },
            "winners": {
                k: {
                    "layout": w.layout,
                    "runner_up": w.runner_up,
                    "significant": w.significant,
                    **_verdict_dict(w.verdict),
                    "difference": w.difference.as_dict() if w.difference else None,
                }
                for k, w in self.winners.items()
            },
            "downtime_per_year": {n: self.downtime_per_year(n).as_dict() for n in self.layouts}
            if any(m.name == "downtime_minutes" for m in self.metrics)
            else {},
            "capacity": {n: c.as_dict() for n, c in self.capacity.items()},
        }

    def write_report(self, directory: str | Path) -> Path:
        """Write ``comparison.json`` and the side-by-side ``report.html`` into ``directory``."""
        from sim.experiments.report import write_comparison_report

        return write_comparison_report(self, Path(directory))


def _verdict_dict(v: Verdict | None) -> dict[str, str | None]:
    return {"verdict": v.status if v else None, "test": (v.test or None) if v else None}


def compare(
    scenarios: dict[str, Scenario] | list[Scenario],
    replications: int = 30,
    *,
    seed: int | None = None,
    metrics: list[str] | None = None,
    confidence: float = 0.95,
    max_utilisation: float = 1.0,
    executor: Executor | str | int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> Comparison:
    """Run every layout ``replications`` times under the same failures; compare them pair by pair.

    ``scenarios`` maps layout names to scenarios (a list is named by scenario name). ``seed`` is the root
    seed (default: the first layout's). Fault ids are what match failures across layouts: give the same
    failure the same id in every layout file.
    """
    if isinstance(scenarios, dict):
        names, models = list(scenarios), list(scenarios.values())
    else:
        models = list(scenarios)
        names = layout_names([s.name for s in models])
    if len(models) < 2:
        raise ValueError(f"compare needs at least two layouts (got {len(models)})")
    if replications < 2:
        raise ValueError(f"compare needs at least two replications for an interval (got {replications})")
    chosen = resolve_metrics(models[0], metrics or list(default_metrics(*models)),
                             extra=("downtime_minutes", "availability"))
    for name, model in zip(names[1:], models[1:], strict=True):
        known = metric_names(model)
        missing = [m.name for m in chosen if m.name not in known]
        if missing:
            raise ValueError(
                f"layout '{name}' has no metric {', '.join(missing)} (per-region, per-fault and "
                "mail metrics must exist in every layout)"
            )
    root = models[0].seed if seed is None else seed
    points = [Point(i, s, {"layout": n}) for i, (n, s) in enumerate(zip(names, models, strict=True))]
    experiment = Experiment("compare", " vs ".join(names), points, chosen, root, {"layout": "str"})
    runner, own = resolve_executor(executor)
    sink = open_sink(experiment, out, resume)
    try:
        rows = run_experiment(experiment, range(replications), sink, runner, progress)
    finally:
        close_sink(sink)
        if own:
            runner.close()
    caps = {n: capacity(s, max_utilisation) for n, s in zip(names, models, strict=True)}
    return Comparison(names, models, chosen, rows, root, confidence, caps, Path(out) if out else None)
