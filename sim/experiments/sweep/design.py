"""What a sweep is once read: its parameters and their values (:class:`Parameter`, :class:`Level`), the
validated :class:`Sweep`, and the points its design makes (grid, random or Latin hypercube), each checked
by the scenario loader.

Sobol sensitivity indices are not offered: they need N·(2d+2) runs of a noisy simulator to separate
parameter effects from replication noise, and the grid and Latin hypercube designs with per-point
intervals answer the questions the shipped sweeps ask.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from sim.errors import Problem, ScenarioError
from sim.experiments.metrics import Metric
from sim.experiments.plan import ColumnKind, Experiment, Point
from sim.experiments.sweep.checks import Checker, Loc, scenario_problems
from sim.experiments.sweep.paths import Segment, assign
from sim.scenario import Scenario
from sim.validate import check_references

__all__ = ["DESIGNS", "Level", "Parameter", "Sweep", "range_value", "design_points"]


DESIGNS = ("grid", "random", "latin_hypercube")


@dataclass(frozen=True)
class Level:
    """One value of a parameter: what is put into the scenario, what the results column shows, and
    where it is written in the sweep file (for messages).
    """

    value: Any
    stored: Any
    loc: Loc


@dataclass(frozen=True)
class Parameter:
    """A parameter of the sweep: its path, its values (``choice``) or its numeric range (``range``)."""

    path: str
    parts: tuple[Segment, ...]
    kind: str  # "choice" or "range"
    levels: tuple[Level, ...]  # the grid's values
    column: ColumnKind
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    @property
    def numeric(self) -> bool:
        """Whether the values are numbers (a line or a heatmap axis, not categories)."""
        return self.column in ("float", "int")


@dataclass
class Sweep:
    """A validated sweep: the base scenario (with ``set`` applied), the parameters, the design points."""

    name: str
    file: str
    description: str
    base_file: Path
    base: Scenario
    base_data: dict[str, Any]
    parameters: list[Parameter]
    design: str
    samples: int | None
    replications: int
    seed: int
    metrics: list[Metric]
    metastability: tuple[str, str] | None
    points: list[Point] = field(default_factory=list)

    def experiment(self) -> Experiment:
        """The sweep as an experiment: its points, metrics, seed and parameter columns."""
        info = {
            "sweep": self.file,
            "design": self.design,
            "metastability": self.metastability,
            "parameters": [p.path for p in self.parameters],
        }
        kinds = {p.path: p.column for p in self.parameters}
        return Experiment("sweep", self.name, self.points, self.metrics, self.seed, kinds, info)

    @property
    def runs(self) -> int:
        """Points × replications."""
        return len(self.points) * self.replications

    def subset(self, values: int = 2, replications: int = 1, samples: int | None = None) -> Sweep:
        """A smaller sweep of the same shape (for a smoke run): at most ``values`` values per parameter
        (evenly picked, ends included), ``replications`` each, ``samples`` points for sampled designs.
        """
        params = []
        for p in self.parameters:
            k = len(p.levels)
            if k <= values:
                params.append(p)
                continue
            picks = (
                sorted({round(j * (k - 1) / max(1, values - 1)) for j in range(values)})
                if values > 1
                else [0]
            )
            params.append(replace(p, levels=tuple(p.levels[j] for j in picks)))
        small = replace(
            self,
            parameters=params,
            replications=replications,
            samples=min(self.samples, samples or self.samples) if self.samples else None,
            points=[],
        )
        small.points = design_points(small, None)
        return small


def range_value(x: float, param: Parameter) -> float | int:
    """A number of a range parameter as it goes into the scenario (rounded for ``integer: true``)."""
    return int(round(x)) if param.integer else float(x)


def _design(sweep: Sweep) -> list[list[Level]]:
    params = sweep.parameters
    if sweep.design == "grid":
        return [list(combo) for combo in itertools.product(*(p.levels for p in params))]
    n = sweep.samples or 1
    rng = np.random.default_rng(np.random.SeedSequence(sweep.seed, spawn_key=(0x5EED,)))
    columns: list[list[Level]] = []
    for p in params:
        if sweep.design == "latin_hypercube":
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        if p.kind == "range":
            lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
            xs = [lo + float(x) * (hi - lo) for x in u]
            xs = [math.exp(x) if p.log else x for x in xs]
            vals = [range_value(float(f"{x:.6g}"), p) for x in xs]
            columns.append([Level(v, v, p.levels[0].loc) for v in vals])
        else:
            k = len(p.levels)
            columns.append([p.levels[min(k - 1, int(x * k))] for x in u])
    return [[col[i] for col in columns] for i in range(n)]


def design_points(sweep: Sweep, check: Checker | None) -> list[Point]:
    """The points of ``sweep``'s design that make a valid scenario; each one that does not is a problem
    of ``check`` (at the sweep file's parameters), or raises when there is no ``check``.
    """
    points = []
    label = str(sweep.base_file)
    for index, levels in enumerate(_design(sweep)):
        data = copy.deepcopy(sweep.base_data)
        for p, level in zip(sweep.parameters, levels, strict=True):
            assign(data, p.parts, level.value)
        params = {p.path: level.stored for p, level in zip(sweep.parameters, levels, strict=True)}
        try:
            scenario = Scenario.model_validate(data)
            invalid = bool(check_references(scenario))
        except ValidationError:
            invalid = True
        if invalid:
            message = scenario_problems(data, label)
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            if check is None:
                raise ScenarioError(
                    [Problem(sweep.file, 1, 1, "parameters", f"point {index} ({shown}): {message}")]
                )
            check.at(
                ("parameters",), f"point {index} ({shown}) makes the scenario invalid: {message}", key=True
            )
            continue
        points.append(Point(index, scenario, params))
    return points
