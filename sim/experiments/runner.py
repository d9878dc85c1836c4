"""Running an experiment: the work each worker does, and the loop that stores rows as runs finish.

:func:`execute` is what a worker runs: rebuild the scenario from its JSON, run it with the task's seed,
keep the experiment's metrics — a flat row. :func:`run_experiment` sends the runs not yet stored to an
executor and writes each row the moment it arrives, so an experiment stopped at any point (an error, a
kill, Ctrl-C) keeps every finished run, and the next ``resume`` runs only what is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import pyarrow as pa

from sim.experiments.executors import Executor, ProcessPool
from sim.experiments.metrics import extract
from sim.experiments.plan import Experiment, Task
from sim.experiments.store import arrow_schema
from sim.version import VERSION

__all__ = ["execute", "run_experiment", "MemoryStore", "Sink", "Progress"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: runs finished (stored ones included) out of all the experiment's runs."""


@functools.lru_cache(maxsize=16)
def _scenario(text: str) -> Any:
    from sim.scenario import Scenario

    return Scenario.model_validate_json(text)


def execute(task: Task) -> dict[str, Any]:
    """Run one task and return its row: identifiers, parameters, metrics, engine and version.

    Deterministic: the same task gives the same row in any process, on any machine with the same
    cascadesim version.
    """
    from sim.run import run

    scenario = _scenario(task.scenario_json)
    stats = run(scenario, seed=task.seed).stats
    row: dict[str, Any] = {
        "run_id": task.run_id,
        "point": task.point,
        "replication": task.replication,
        "seed": task.seed,
    }
    row.update(task.columns)
    row.update(extract(stats, task.metrics))
    row["engine"] = scenario.engine
    row["version"] = VERSION
    return row


class Sink(Protocol):
    """Where rows go: a :class:`~sim.experiments.store.ResultStore` or a :class:`MemoryStore`."""

    def write(self, row: dict[str, Any]) -> None: ...  # noqa: D102

    def done(self) -> set[str]: ...  # noqa: D102

    def table(self) -> pa.Table: ...  # noqa: D102

    def compact(self) -> int: ...  # noqa: D102


class MemoryStore:
    """Rows kept in memory, for experiments run without an output folder."""

    def __init__(self, experiment: Experiment):
        self.schema = arrow_schema(experiment.columns())
        self.rows: dict[str, dict[str, Any]] = {}

    def write(self, row: dict[str, Any]) -> None:
        """Keep ``row``."""
        self.rows[row["run_id"]] = {name: row.get(name) for name in self.schema.names}

    def done(self) -> set[str]:
        """The run ids kept."""
        return set(self.rows)

    def table(self) -> pa.Table:
        """Every row, sorted by point and replication."""
        rows = sorted(self.rows.values(), key=lambda r: (r["point"], r["replication"]))
        return pa.Table.from_pylist(rows, schema=self.schema)

    def compact(self) -> int:
        """Nothing to gather."""
        return 0


def run_experiment(
    experiment: Experiment,
    replications: Iterable[int],
    sink: Sink,
    executor: Executor | None = None,
    progress: Progress | None = None,
    work: Callable[[Task], dict[str, Any]] = execute,
) -> list[dict[str, Any]]:
    """Run every (point, replication) not yet in ``sink``; return the rows of all of them, sorted.

    ``executor`` defaults to a process pool of all cores (closed afterwards). ``work`` is what each
    worker runs (tests replace it to make workers fail).
    """
    tasks = experiment.tasks(list(replications))
    done = sink.done()
    todo = [t for t in tasks if t.run_id not in done]
    total = len(tasks)
    finished = total - len(todo)
    if progress:
        progress(finished, total)
    own = executor is None
    runner = executor or ProcessPool()
    try:
        if todo:
            for _, row in runner.map(work, todo):
                sink.write(row)
                finished += 1
                if progress:
                    progress(finished, total)
    finally:
        sink.compact()
        if own:
            runner.close()
    wanted = {t.run_id for t in tasks}
    table = sink.table()
    ids = table.column("run_id").to_pylist()
    rows = [r for r, rid in zip(table.to_pylist(), ids, strict=True) if rid in wanted]
    return sorted(rows, key=lambda r: (r["point"], r["replication"]))
