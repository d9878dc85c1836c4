"""Running a sweep: every point ``replications`` times, each run stored the moment it finishes (so a killed
sweep resumes with only what is missing), and the result: per point, each metric's mean with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.experiments.executors import Executor
from sim.experiments.replicate import close_sink, open_sink, resolve_executor
from sim.experiments.runner import Progress, run_experiment
from sim.experiments.stats import Interval
from sim.experiments.sweep.design import Sweep
from sim.experiments.sweep.loader import load_sweep

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SweepResult", "run_sweep"]


@dataclass
class SweepResult:
    """The rows of a sweep and, per point, each metric's mean with the interval its domain calls for."""

    sweep: Sweep
    rows: list[dict[str, Any]]
    confidence: float = 0.95
    store: Path | None = None

    def __post_init__(self) -> None:
        by_point: dict[int, list[dict[str, Any]]] = {}
        for row in self.rows:
            by_point.setdefault(row["point"], []).append(row)
        numeric = [m for m in self.sweep.metrics if m.domain is not None]
        self.intervals: dict[int, dict[str, Interval]] = {
            p.index: {
                m.name: m.interval([r[m.name] for r in by_point.get(p.index, [])], self.confidence)
                for m in numeric
            }
            for p in self.sweep.points
        }

    def dataframe(self) -> pd.DataFrame:
        """One row per run."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict[str, Any]:
        """Plain data for ``sweep.json``: per point, its parameters and each metric's interval."""
        return {
            "sweep": self.sweep.name,
            "base": str(self.sweep.base_file),
            "design": self.sweep.design,
            "replications": self.sweep.replications,
            "root_seed": self.sweep.seed,
            "confidence": self.confidence,
            "parameters": [p.path for p in self.sweep.parameters],
            "metrics": [m.name for m in self.sweep.metrics],
            "points": [
                {
                    "point": p.index,
                    "params": p.params,
                    "metrics": {k: v.as_dict() for k, v in self.intervals[p.index].items()},
                }
                for p in self.sweep.points
            ],
        }

    def write_report(self, directory: str | Path) -> Path:
        """Write ``sweep.json`` and ``report.html`` into ``directory``."""
        from sim.experiments.report import write_sweep_report

        return write_sweep_report(self, Path(directory))


def run_sweep(
    sweep: Sweep | str | Path,
    *,
    executor: Executor | str | int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """Run every point of ``sweep`` (a :class:`Sweep` or a sweep file) ``sweep.replications`` times.

    ``out`` is a results folder: each run is written there the moment it finishes; with ``resume`` the
    runs already there are skipped, so a sweep killed at any point completes with only what is missing.
    """
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    experiment = sweep.experiment()
    runner, own = resolve_executor(executor)
    sink = open_sink(experiment, out, resume)
    try:
        rows = run_experiment(experiment, range(sweep.replications), sink, runner, progress)
    finally:
        close_sink(sink)
        if own:
            runner.close()
    return SweepResult(sweep, rows, store=Path(out) if out else None)
