"""Monte Carlo: independent replications of one scenario, each metric's mean and confidence interval.

>>> import sim
>>> from sim.topology import EXAMPLE
>>> reps = sim.replicate(sim.parse_scenario(EXAMPLE), replications=3, executor="here")  # doctest: +SKIP
>>> reps.interval("availability").mean                                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.experiments.executors import Executor, InProcess, ProcessPool
from sim.experiments.findings import worst_runs
from sim.experiments.metrics import Metric, default_metrics, metric_names, unknown_metric
from sim.experiments.plan import Experiment, Point
from sim.experiments.runner import MemoryStore, Progress, Sink, run_experiment
from sim.experiments.stats import Interval
from sim.experiments.store import ResultStore
from sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Replications",
    "replicate",
    "resolve_metrics",
    "resolve_executor",
    "open_sink",
    "close_sink",
    "MAX_REPLICATIONS",
]

MAX_REPLICATIONS = 1000
"""Cap on replications when adding them until an interval is narrow enough."""
SAME_VALUE_REPLICATIONS = 30
"""Replications that must all give the same value before ``until_ci`` takes a single point for an answer:
a point is no spread to estimate from, not certainty. By the rule of three, after ``n`` agreeing
replications one that differs has under ``3 / n`` chance (95%): under 10% here."""


def resolve_metrics(
    scenario: Scenario, names: list[str] | tuple[str, ...] | None, extra: tuple[str, ...] = ()
) -> list[Metric]:
    """The :class:`Metric` s called ``names`` (default: :func:`default_metrics`), plus ``extra``."""
    known = metric_names(scenario)
    chosen = list(names) if names else list(default_metrics(scenario))
    chosen += [n for n in extra if n not in chosen]
    bad = [n for n in chosen if n not in known]
    if bad:
        raise ValueError("; ".join(unknown_metric(n, known) for n in bad))
    return [known[n] for n in dict.fromkeys(chosen)]


def resolve_executor(executor: Executor | str | int | None) -> tuple[Executor, bool]:
    """An executor from what the caller gave: one, ``"here"`` (this process), a worker count, or None
    (all cores). Also whether the caller must close it.
    """
    if isinstance(executor, Executor):
        return executor, False
    if executor == "here":
        return InProcess(), True
    if executor is None or isinstance(executor, int):
        return ProcessPool(executor), True
    raise ValueError(f"not an executor (got {executor!r}; expected an Executor, 'here' or a worker count)")


def open_sink(experiment: Experiment, out: str | Path | None, resume: bool) -> Sink:
    """The results store at ``out``, locked for this writer until :func:`close_sink` (rows in memory when
    there is no folder).
    """
    if out is None:
        if resume:
            raise ValueError("resume needs a results folder (out)")
        return MemoryStore(experiment)
    return ResultStore.create(out, experiment, resume=resume, lock=True)


def close_sink(sink: Sink) -> None:
    """Let another writer have the results folder of ``sink`` (rows in memory need nothing)."""
    if isinstance(sink, ResultStore):
        sink.close()


@dataclass
class Replications:
    """The rows of every replication of one scenario, and each metric's mean with its interval (the one its
    domain calls for: :func:`~sim.experiments.stats.interval_for`).
    """

    scenario: Scenario
    metrics: list[Metric]
    rows: list[dict[str, Any]]
    root_seed: int
    confidence: float = 0.95
    stopped: str = ""  # why replications stopped being added (with a target width)
    store: Path | None = None
    intervals: dict[str, Interval] = field(init=False)

    def __post_init__(self) -> None:
        self.intervals = {
            m.name: m.interval([r[m.name] for r in self.rows], self.confidence)
            for m in self.metrics
            if m.domain is not None
        }

    @property
    def n(self) -> int:
        """How many replications ran."""
        return len(self.rows)

    def interval(self, metric: str = "availability") -> Interval:
        """Mean and confidence interval of ``metric`` over the replications."""
        return self.intervals[metric]

    def worst_runs(self, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` replications with the most downtime (then the lowest availability). Each row's ``seed``
        reruns it alone: ``cascadesim run SCENARIO --seed SEED`` (:func:`~sim.experiments.findings.rerun_command`).
        """
        return worst_runs(self.rows, k)

    def dataframe(self) -> pd.DataFrame:
        """One row per replication."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict[str, Any]:
        """Plain data for ``intervals.json``."""
        return {
            "scenario": self.scenario.name,
            "replications": self.n,
            "root_seed": self.root_seed,
            "confidence": self.confidence,
            "stopped": self.stopped,
            "metrics": {name: iv.as_dict() for name, iv in self.intervals.items()},
        }

    def write_report(self, directory: str | Path) -> Path:
        """Write ``replications.json`` and ``report.html`` (and ``intervals.json``, :meth:`summary`) into
        ``directory``, all or nothing: the finding, each metric's interval, the distributions of availability
        and downtime, the worst replications and the seed that reruns each.
        """
        from sim.experiments.report import write_replications_report

        return write_replications_report(self, Path(directory))


def replicate(
    scenario: Scenario,
    replications: int = 30,
    *,
    seed: int | None = None,
    metrics: list[str] | None = None,
    until_ci: float | None = None,
    ci_metric: str = "availability",
    max_replications: int = MAX_REPLICATIONS,
    confidence: float = 0.95,
    executor: Executor | str | int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> Replications:
    """Run ``replications`` independent replications of ``scenario``; return the rows and intervals.

    Replication ``i`` runs with the seed ``SeedSequence(seed, spawn_key=(i,))`` (``seed`` defaults to the
    scenario's): the same run whatever the order, the executor or the machine.

    With ``until_ci`` (an absolute half-width: ``0.0005`` is ±0.05 percentage points of availability),
    replications are added until the ``ci_metric`` interval is that narrow or ``max_replications`` ran.
    Each round adds what the current spread says is needed (at most doubling), independently of the
    executor, so the final count is the same everywhere.

    ``out`` is a results folder (Parquet, one row per replication, written as each finishes); with
    ``resume`` the replications already there are not run again.
    """
    root = scenario.seed if seed is None else seed
    chosen = resolve_metrics(scenario, metrics, extra=(ci_metric,) if until_ci is not None else ())
    if replications < 1:
        raise ValueError(f"replications must be at least 1 (got {replications})")
    if until_ci is not None and until_ci <= 0:
        raise ValueError(f"until_ci must be more than 0 (got {until_ci})")
    experiment = Experiment(
        "replications",
        scenario.name,
        [Point(0, scenario)],
        chosen,
        root,
        info={"until_ci": until_ci, "ci_metric": ci_metric},
    )
    target = next(m for m in chosen if m.name == ci_metric) if until_ci is not None else None
    if target is not None and target.domain is None:
        raise ValueError(f"ci_metric '{ci_metric}' is text: it has no interval to narrow")
    runner, own = resolve_executor(executor)
    sink = open_sink(experiment, out, resume)
    n = min(replications, max_replications) if until_ci is not None else replications
    stopped = ""
    try:
        rows = run_experiment(experiment, range(n), sink, runner, progress)
        while until_ci is not None and target is not None:
            iv = target.interval([r[ci_metric] for r in rows], confidence)
            half = iv.half_width
            if iv.collapsed and n < SAME_VALUE_REPLICATIONS:  # no spread seen yet is not a narrow interval
                half = None
            if half is not None and half <= until_ci:
                stopped = (f"{ci_metric} interval ±{half:.3g} ≤ ±{until_ci:.3g} after {n} replications"
                           if not iv.collapsed else
                           f"every one of {n} replications gave the same {ci_metric}: no spread to narrow "
                           f"(a replication that differs has under {3 / n:.0%} chance, 95%)")
                break
            if n >= max_replications:
                shown = ("a single value (every replication the same)" if iv.collapsed else
                         "unknown" if half is None else f"±{half:.3g}")
                stopped = (
                    f"reached the cap of {max_replications} replications; {ci_metric} interval still "
                    f"{shown} (target ±{until_ci:.3g})"
                )
                break
            wanted = (SAME_VALUE_REPLICATIONS if iv.collapsed else n + 1) if half is None else \
                math.ceil(n * (half / until_ci) ** 2 * 1.1)
            n_next = min(max_replications, max(n + 1, min(2 * n, wanted)))
            rows = run_experiment(experiment, range(n_next), sink, runner, progress)
            n = n_next
    finally:
        close_sink(sink)
        if own:
            runner.close()
    store = Path(out) if out is not None else None
    return Replications(scenario, chosen, rows, root, confidence, stopped, store)
