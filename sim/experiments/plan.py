"""What an experiment runs: design points, replications, their seeds, and the work sent to workers.

An :class:`Experiment` is a list of :class:`Point` s — one scenario each, with the parameter values that
made it (a sweep), its layout name (a comparison) or nothing (replications of one scenario) — and the
metrics to keep. Run ``(point, replication)`` is a :class:`Task`: plain, picklable data (the validated
scenario as JSON, the seed, the metric names), never live SimPy objects, so any executor on any machine
can run it and gets the same row.

Seeds: replication ``i`` runs with the seed drawn from ``SeedSequence(root, spawn_key=(i,))``, the same
for every point, so replication ``i`` is the same run whatever the order or the machine, and every
point (every layout) of replication ``i`` sees the same failures wherever they share components (the
fault streams are named by fault id: common random numbers).

>>> replication_seed(42, 0) == replication_seed(42, 0) != replication_seed(42, 1)
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sim.experiments.metrics import Metric
from sim.loader import scenario_hash
from sim.scenario import Scenario
from sim.version import VERSION

__all__ = ["Point", "Task", "Experiment", "replication_seed", "run_id", "ColumnKind"]

ColumnKind = Literal["float", "int", "bool", "str"]


def replication_seed(root: int, replication: int) -> int:
    """The seed of replication ``replication`` under root seed ``root`` (63 bits, so it fits int64)."""
    state = np.random.SeedSequence(int(root), spawn_key=(int(replication),)).generate_state(1, np.uint64)
    return int(state[0]) & (2**63 - 1)


def run_id(point: int, scenario_digest: str, seed: int, version: str) -> str:
    """The key of a run in the results store: the point and what determines its result, hashed.

    Runs are deterministic per (scenario, seed) and cascadesim version, so a stored row with this key is
    the row a new run would write: ``--resume`` may skip it. The point is part of the key so that two
    points that happen to give the same scenario still get a row each.
    """
    return hashlib.sha256(f"{point}:{scenario_digest}:{seed}:{version}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Point:
    """One scenario of an experiment and the parameter values (column -> value) that describe it."""

    index: int
    scenario: Scenario
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """SHA-256 of the validated scenario."""
        return scenario_hash(self.scenario)

    def label(self) -> str:
        """``retries=2, peak=12`` (or the point's index when it has no parameters)."""
        if not self.params:
            return f"point {self.index}"
        return ", ".join(f"{k}={v}" for k, v in self.params.items())


@dataclass(frozen=True)
class Task:
    """One run, as plain data: the worker rebuilds the scenario from ``scenario_json`` and runs it."""

    run_id: str
    point: int
    replication: int
    seed: int
    scenario_json: str
    metrics: tuple[str, ...]
    columns: tuple[tuple[str, Any], ...]  # copied into the row as they are: parameters, scenario name, hash


@dataclass
class Experiment:
    """Points × replications, the metrics kept, and the types of the parameter columns.

    ``kind`` is ``replications``, ``compare`` or ``sweep``; ``root_seed`` gives every replication's seed.
    """

    kind: str
    name: str
    points: list[Point]
    metrics: list[Metric]
    root_seed: int
    param_kinds: dict[str, ColumnKind] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # what the reports need to know (sweep spec, files)

    def __post_init__(self) -> None:
        self._json = {
            p.index: json.dumps(p.scenario.model_dump(mode="json"), sort_keys=True) for p in self.points
        }
        self._digest = {p.index: p.digest for p in self.points}

    def tasks(self, replications: range | list[int]) -> list[Task]:
        """The runs of every point for these replication numbers, point by point."""
        names = tuple(m.name for m in self.metrics)
        seeds = {i: replication_seed(self.root_seed, i) for i in replications}
        out = []
        for p in self.points:
            digest = self._digest[p.index]
            columns = (
                *((k, v) for k, v in p.params.items()),
                ("scenario", p.scenario.name),
                ("scenario_hash", digest),
            )
            for i in replications:
                out.append(
                    Task(
                        run_id(p.index, digest, seeds[i], VERSION),
                        p.index,
                        i,
                        seeds[i],
                        self._json[p.index],
                        names,
                        columns,
                    )
                )
        return out

    def fingerprint(self) -> str:
        """What makes two experiments the same one (replication counts aside): the store checks it."""
        body = {
            "kind": self.kind,
            "root_seed": self.root_seed,
            "metrics": [m.name for m in self.metrics],
            "params": self.param_kinds,
            "points": [[p.params, self._digest[p.index]] for p in self.points],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def columns(self) -> list[tuple[str, ColumnKind]]:
        """Every column of a row, in order, with its type."""
        cols: list[tuple[str, ColumnKind]] = [
            ("run_id", "str"),
            ("point", "int"),
            ("replication", "int"),
            ("seed", "int"),
        ]
        cols += list(self.param_kinds.items())
        cols += [(m.name, m.kind) for m in self.metrics]
        cols += [("scenario", "str"), ("scenario_hash", "str"), ("engine", "str"), ("version", "str")]
        return cols
