"""Parameter sweeps: a base scenario, the parameters to vary as dotted paths into it, a design.

A sweep file::

    name: retry-storm-retries-load
    base: ../mechanisms/retry-storm.yaml         # relative to this file
    set: {duration: 10m}                          # fixed changes to the base (optional)

Parameters
----------
      policies.client.retries: [0, 1, 2, 3]                     # values
      workload.regions.users.peak: {range: [6, 14], steps: 5}   # numbers in base units (here: per second)
      topology.databases.db.placement: {values: {two-dc: [...], three-dc: [...]}}   # labelled values
    design: grid                                  # grid, random or latin_hypercube (with samples: N)
    replications: 5
    seed: 1                                       # root seed (default: the base scenario's)
    metrics: [availability, recovery.recovered, recovery.time_to_recover]
    report: {metastability: {size: faults.burst.multiplier, duration: faults.burst.duration}}

Paths go through mappings by key and through lists by position (``faults[0]``), by the ``id`` of an
item (``faults.burst``; a fault without an id is ``<kind>-<position>``), by a placement's datacenter, or
all items at once (``placement.*.copies``). Parameters are applied in the file's order.

Everything is checked before anything runs, and every problem names the sweep file's line: the file's
fields, each path (it must lead somewhere in the base), each value (substituted alone into the base, it
must pass the scenario loader — the loader's own message is quoted), the metric names, and finally
every design point.

Sobol sensitivity indices are not offered: they need N·(2d+2) runs of a noisy simulator to separate
parameter effects from replication noise, and the grid and Latin hypercube designs with per-point
intervals answer the questions the shipped sweeps ask.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from sim.errors import Problem, ScenarioError, format_path, printable, show_value
from sim.experiments.executors import Executor
from sim.experiments.metrics import DEFAULT_METRICS, Metric, metric_names, unknown_metric
from sim.experiments.plan import ColumnKind, Experiment, Point
from sim.experiments.replicate import close_sink, open_sink, resolve_executor
from sim.experiments.runner import Progress, run_experiment
from sim.experiments.stats import Interval
from sim.loader import Locator, load_scenario, read_bounded, read_yaml, scenario_data, validate_data
from sim.scenario import Scenario
from sim.sizing import expected_load
from sim.validate import check_references

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Sweep",
    "Parameter",
    "Level",
    "SweepResult",
    "load_sweep",
    "parse_sweep",
    "run_sweep",
    "parse_path",
    "assign",
    "DESIGNS",
    "MAX_RUNS",
    "NAME_RULE",
    "valid_name",
    "is_sweep",
    "estimate_sweep",
    "SweepEstimate",
    "Pilot",
]

DESIGNS = ("grid", "random", "latin_hypercube")
MAX_RUNS = 1_000_000
"""A sweep may ask for at most this many runs (points × replications)."""
DEFAULT_REPLICATIONS = 5
_FIELDS = (
    "name",
    "description",
    "base",
    "set",
    "parameters",
    "design",
    "samples",
    "replications",
    "seed",
    "metrics",
    "report",
)
_RESERVED = {
    "run_id",
    "point",
    "replication",
    "seed",
    "scenario",
    "scenario_hash",
    "engine",
    "version",
    "name",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
NAME_RULE = "letters, digits and _ . : - starting with a letter or digit, at most 64"
"""What a sweep's name, a value's label and a compared layout's name may hold (the rule of scenario ids)."""


def valid_name(value: Any) -> bool:
    r"""Whether ``value`` may name a sweep, a labelled value or a layout: it becomes a folder, a file name,
    a value in the results and text in reports and on the terminal, so it follows the rule of scenario ids.

    >>> valid_name("retry-storm.v2"), valid_name("two-dc\n"), valid_name("../x"), valid_name("a b")
    (True, False, False, False)
    """
    return isinstance(value, str) and _NAME.fullmatch(value) is not None

Loc = tuple[Any, ...]
Segment = str | int


# ------------------------------------------------------------------------------------------------- paths


_SEGMENT = re.compile(r"""\[(?:'([^']*)'|"([^"]*)"|([^\]]*))\]|([^.\[\]]+)""")


def parse_path(text: str) -> tuple[Segment, ...]:
    """Split a dotted path: ``faults[0].at`` → ``('faults', 0, 'at')``; ``regions['eu.west']`` keeps the dot.

    >>> parse_path("topology.databases.db.placement.*.copies")
    ('topology', 'databases', 'db', 'placement', '*', 'copies')
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"not a path (got {show_value(text)}, expected dotted names such as policies.client.retries)"
        )
    if printable(text) != text:  # a path names a results column and report axes
        raise ValueError(f"not a path (got {show_value(text)}: control characters are not allowed)")
    out: list[Segment] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise ValueError(
                f"cannot read the path '{text}' at character {pos + 1} (expected a name, [n] or "
                "['key'] between dots)"
            )
        quoted = m.group(1) if m.group(1) is not None else m.group(2)
        bare = m.group(3) if m.group(3) is not None else m.group(4)
        if quoted is not None:
            out.append(quoted)
        else:
            assert bare is not None
            bare = bare.strip()
            if not bare:
                raise ValueError(f"empty part in the path '{text}'")
            out.append(int(bare) if bare.isdigit() else bare)
        pos = m.end()
        if pos < len(text):
            if text[pos] == ".":
                pos += 1
                if pos == len(text):
                    raise ValueError(f"the path '{text}' ends with a dot")
            elif text[pos] != "[":
                raise ValueError(f"cannot read the path '{text}' at character {pos + 1}")
    return tuple(out)


def _show_path(parts: tuple[Segment, ...]) -> str:
    return format_path(tuple(p for p in parts)) if parts else "(the scenario)"


def _item_names(items: list[Any], top: str | None) -> list[str]:
    names = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            if isinstance(item.get("id"), str):
                names.append(item["id"])
            elif top == "faults" and isinstance(item.get("kind"), str):
                names.append(f"{item['kind']}-{i}")
            if isinstance(item.get("datacenter"), str):
                names.append(item["datacenter"])
    return names


def _matches(item: Any, i: int, name: str, top: str | None) -> bool:
    if not isinstance(item, dict):
        return False
    if item.get("id") == name or item.get("datacenter") == name:
        return True
    return top == "faults" and "id" not in item and f"{item.get('kind')}-{i}" == name


def assign(data: Any, parts: tuple[Segment, ...], value: Any) -> None:
    """Set ``value`` at ``parts`` inside ``data`` (nested dicts and lists), in place.

    Missing mapping keys are created (the scenario models then say whether such a field exists); list
    items are found by position, id, datacenter or ``*``. Raise ``ValueError`` when the path cannot go on.
    """
    if not parts:
        raise ValueError("an empty path")
    targets: list[tuple[Any, Segment]] = []

    def walk(node: Any, i: int, done: tuple[Segment, ...]) -> None:
        part = parts[i]
        last = i == len(parts) - 1
        top = done[0] if len(done) == 1 and isinstance(done[0], str) else None
        if isinstance(node, dict):
            key: Segment = part if isinstance(part, str) else str(part)
            if key == "*":
                raise ValueError(f"{_show_path(done)} is a mapping: * selects every item of a list")
            if last:
                targets.append((node, key))
                return
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            walk(child, i + 1, (*done, key))
        elif isinstance(node, list):
            if part == "*":
                if not node:
                    raise ValueError(f"{_show_path(done)} is an empty list: * selects nothing")
                chosen = list(range(len(node)))
            elif isinstance(part, int):
                if not 0 <= part < len(node):
                    raise ValueError(
                        f"{_show_path(done)} has {len(node)} items (got position {part}, expected "
                        f"0 to {len(node) - 1})"
                    )
                chosen = [part]
            else:
                chosen = [j for j, item in enumerate(node) if _matches(item, j, part, top)]
                if not chosen:
                    known = _item_names(node, top)
                    close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    listed = ", ".join(known) if known else "none by name; use a position such as [0]"
                    raise ValueError(f"no item '{part}' in {_show_path(done)}{hint}; known: {listed}")
            for j in chosen:
                if last:
                    targets.append((node, j))
                else:
                    walk(node[j], i + 1, (*done, j))
        else:
            raise ValueError(
                f"{_show_path(done)} is a value ({show_value(node)}), not a mapping or a list: the "
                f"path cannot go on to '{part}'"
            )

    walk(data, 0, ())
    for container, key in targets:
        container[key] = copy.deepcopy(value)


# ------------------------------------------------------------------------------------------------ the file


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
        small.points = _points(small, None)
        return small


def load_sweep(
    path: str | Path, *, replications: int | None = None, seed: int | None = None, engine: str | None = None
) -> Sweep:
    """Read and validate a sweep file; raise :class:`~sim.errors.ScenarioError` listing every problem.

    ``replications``, ``seed`` and ``engine`` override the file's replications, its root seed and the base
    scenario's engine (the command line's ``--replications``, ``--seed``, ``--engine``).
    """
    path = Path(path)
    data = read_bounded(path)  # at most the scenario size limit, whatever the file claims to be
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [Problem(str(path), 1, 1, "", f"not UTF-8 text (byte {exc.start} cannot be decoded)")]
        ) from None
    return parse_sweep(text, str(path), path.parent, replications=replications, seed=seed, engine=engine)


def is_sweep(data: Any) -> bool:
    """Whether the plain data of a YAML file is a sweep rather than a scenario: a sweep names its ``base``
    scenario and its ``parameters``, which no scenario has.

    >>> is_sweep({"base": "x.yaml", "parameters": {}}), is_sweep({"name": "x", "topology": {}})
    (True, False)
    """
    return isinstance(data, dict) and ("base" in data or "parameters" in data)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class _Checker:
    """Collects the problems of one sweep file, each at its line."""

    def __init__(self, locator: Locator, problems: list[Problem]):
        self.locator = locator
        self.problems = problems

    def at(self, loc: Loc, message: str, key: bool = False) -> None:
        self.problems.append(self.locator.at(loc, message, key=key))


def parse_sweep(
    text: str,
    filename: str = "<string>",
    directory: str | Path = ".",
    *,
    replications: int | None = None,
    seed: int | None = None,
    engine: str | None = None,
) -> Sweep:
    """Validate sweep YAML given as text; ``directory`` is where ``base`` is looked for. ``replications``,
    ``seed`` and ``engine`` override the file's (see :func:`load_sweep`).
    """
    # The sweep file's data, safely, with the scenario loader's own checks and locator.
    data, locator, problems = read_yaml(text, filename, "sweep fields", "base, parameters, ...")
    check = _Checker(locator, problems)
    for key in data:
        if key not in _FIELDS:
            close = difflib.get_close_matches(str(key), _FIELDS, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            check.at((key,), f"unknown field '{key}' ({hint}allowed: {', '.join(_FIELDS)})", key=True)
    name = data.get("name", Path(filename).stem)
    if not valid_name(name):
        hint = "" if "name" in data else "; without a name: field, the sweep is named after its file"
        check.at(("name",), f"not a valid name (got {show_value(name)}, expected {NAME_RULE}){hint}")
        name = "sweep"
    description = data.get("description", "")
    if not isinstance(description, str):
        check.at(("description",), f"not a string (got {show_value(description)})")
        description = ""
    design = data.get("design", "grid")
    if design not in DESIGNS:
        close = difflib.get_close_matches(str(design), DESIGNS, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        check.at(
            ("design",),
            f"unknown design (got {show_value(design)}, expected one of {', '.join(DESIGNS)}{hint})",
        )
        design = "grid"
    samples = data.get("samples")
    if design == "grid":
        if samples is not None:
            check.at(
                ("samples",),
                "samples goes with design: random or latin_hypercube (a grid runs every "
                "combination of the values)",
                key=True,
            )
        samples = None
    elif not (isinstance(samples, int) and not isinstance(samples, bool) and samples >= 1):
        what = "missing" if samples is None else f"got {show_value(samples)}"
        check.at(
            ("samples",) if "samples" in data else ("design",),
            f"a {design} design needs samples: the number of points ({what}, expected a whole number ≥ 1)",
        )
        samples = 1
    given = data.get("replications", DEFAULT_REPLICATIONS)
    if not (isinstance(given, int) and not isinstance(given, bool) and given >= 1):
        check.at(
            ("replications",),
            f"not a valid count (got {show_value(given)}, expected a whole number ≥ 1)",
        )
        given = 1
    replications = given if replications is None else replications

    # The base scenario: its own problems are reported in its own file.
    base_name = data.get("base")
    if not isinstance(base_name, str) or not base_name.strip():
        check.at(
            ("base",) if "base" in data else (),
            "missing required field 'base' (the scenario file to vary, relative to this file)"
            if "base" not in data
            else f"not a file name (got {show_value(base_name)})",
        )
        raise ScenarioError(check.problems)
    base_file = (Path(directory) / base_name).resolve()
    if not base_file.is_file():
        check.at(("base",), f"no scenario file '{base_name}' (looked for {base_file})")
        raise ScenarioError(check.problems)
    engine_override = {"engine": engine} if engine else None
    try:
        base = load_scenario(base_file, engine_override)
    except ScenarioError as err:  # its problems at the base file's own lines, after the sweep file's
        count = len(err.problems)
        check.at(
            ("base",),
            f"the base scenario has {count} problem{'s' if count > 1 else ''} (each given at its line in "
            f"{printable(base_file.name)})",
        )
        raise ScenarioError(check.problems + err.problems) from None
    base_data = scenario_data(base_file)
    if engine:
        base_data["engine"] = engine
    base_label = str(base_file)

    root = data.get("seed", base.seed)
    if not (isinstance(root, int) and not isinstance(root, bool) and root >= 0):
        check.at(("seed",), f"not a valid seed (got {show_value(root)}, expected a whole number ≥ 0)")
        root = base.seed
    seed = root if seed is None else seed

    # set: fixed changes, each checked alone, then together.
    fixed = data.get("set", {}) or {}
    if not isinstance(fixed, dict):
        check.at(("set",), f"wrong type (got {show_value(fixed)}, expected a mapping of path: value)")
        fixed = {}
    before = len(check.problems)
    for key, value in fixed.items():
        try:
            parts = parse_path(key)
            trial = copy.deepcopy(base_data)
            assign(trial, parts, value)
        except ValueError as exc:
            check.at(("set", key), str(exc), key=True)
            continue
        bad = _scenario_problems(trial, base_label)
        if bad:
            check.at(("set", key), f"{show_value(value)} does not fit the base scenario: {bad}")
        else:
            assign(base_data, parts, value)
    if len(check.problems) == before:
        bad = _scenario_problems(base_data, base_label)
        if bad:
            check.at(("set",), f"together, these changes make the base scenario invalid: {bad}", key=True)
    if len(check.problems) > before:  # the parameters can only be judged against a valid base
        raise ScenarioError(check.problems)
    if engine:  # the command line's engine wins over one that set gave
        base_data["engine"] = engine
    base = Scenario.model_validate(base_data)

    parameters = _parameters(data, check, base_data, base_label)
    metrics = _metrics(data, check, base)
    names = {p.path for p in parameters}
    clashes = sorted(names & {m.name for m in metrics})
    for clash in clashes:
        check.at(
            ("parameters", clash),
            f"'{clash}' is both a parameter and a metric; results keep one column per name",
            key=True,
        )
    metastability = _metastability(data, check, parameters)
    if check.problems:
        raise ScenarioError(check.problems)

    sweep = Sweep(
        name,
        filename,
        description,
        base_file,
        base,
        base_data,
        parameters,
        design,
        samples,
        replications,
        seed,
        metrics,
        metastability,
    )
    count = math.prod(len(p.levels) for p in parameters) if design == "grid" else (samples or 1)
    if count * replications > MAX_RUNS:
        check.at(
            ("parameters",),
            f"too many runs (got {count:,} points × {replications} replications = "
            f"{count * replications:,}, expected at most {MAX_RUNS:,})",
            key=True,
        )
        raise ScenarioError(check.problems)
    sweep.points = _points(sweep, check)
    if check.problems:
        raise ScenarioError(check.problems)
    return sweep


def _scenario_problems(data: Any, label: str) -> str:
    """The scenario loader's verdict on ``data``, as one line ("" when it is valid)."""
    try:
        scenario = Scenario.model_validate(data)
        if not check_references(scenario):
            return ""
    except ValidationError:
        pass
    try:
        validate_data(data, label)
    except ScenarioError as err:
        return "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in err.problems)
    except (ValueError, TypeError) as exc:  # pragma: no cover - data from YAML dumps back
        return f"cannot build the scenario ({exc})"
    return ""  # pragma: no cover - the fast check and the loader agree


def _column(values: list[Any]) -> ColumnKind:
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if values and all(_is_number(v) for v in values):
        return "float"
    return "str"


def _stored(value: Any, column: ColumnKind) -> Any:
    if column == "str":
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if column == "float":
        return float(value)
    return value


def _parameters(data: dict[str, Any], check: _Checker, base_data: Any, base_label: str) -> list[Parameter]:
    spec = data.get("parameters")
    if not isinstance(spec, dict) or not spec:
        what = (
            "missing required field 'parameters'"
            if spec is None
            else f"wrong type (got {show_value(spec)}, expected a mapping of path: values)"
        )
        check.at(("parameters",) if spec is not None else (), what)
        return []
    out = []
    for key, value in spec.items():
        loc: Loc = ("parameters", key)
        try:
            parts = parse_path(key)
        except ValueError as exc:
            check.at(loc, str(exc), key=True)
            continue
        if key in _RESERVED or (len(parts) == 1 and parts[0] in _RESERVED):
            check.at(
                loc,
                f"'{key}' cannot be swept (vary replications instead of the seed; results keep "
                f"columns named {', '.join(sorted(_RESERVED))})",
                key=True,
            )
            continue
        param = _parameter(key, parts, value, loc, check)
        if param is None:
            continue
        # Each value alone in the base scenario: where the path does not lead, or a value does not fit.
        verdicts: list[tuple[Level, str]] = []
        for level in param.levels if param.kind == "choice" else _ends(param):
            trial = copy.deepcopy(base_data)
            try:
                assign(trial, parts, level.value)
            except ValueError as exc:
                check.at(loc, str(exc), key=True)
                verdicts = []
                break
            verdicts.append((level, _scenario_problems(trial, base_label)))
        failing = [(lv, msg) for lv, msg in verdicts if msg]
        if failing and len(failing) == len(verdicts) > 1 and len({m for _, m in failing}) == 1:
            check.at(loc, f"no value fits the base scenario here: {failing[0][1]}", key=True)
        else:
            for level, msg in failing:
                check.at(level.loc, f"{show_value(level.value)} does not fit the base scenario: {msg}")
        out.append(param)
    return out


def _ends(param: Parameter) -> list[Level]:
    """For a range: its two ends (and the grid's values in between)."""
    lo, hi = param.low, param.high
    ends = [
        Level(_range_value(lo, param), _range_value(lo, param), (*param.levels[0].loc[:2], "range", 0)),
        Level(_range_value(hi, param), _range_value(hi, param), (*param.levels[0].loc[:2], "range", 1)),
    ]
    return ends + [lv for lv in param.levels[1:-1]]


def _range_value(x: float, param: Parameter) -> float | int:
    return int(round(x)) if param.integer else float(x)


def _parameter(
    key: str, parts: tuple[Segment, ...], value: Any, loc: Loc, check: _Checker
) -> Parameter | None:
    if isinstance(value, list):
        if not value:
            check.at(
                loc, "no values (expected a list of at least one value, or {range: [low, high], steps: n})"
            )
            return None
        column = _column(value)
        levels = tuple(Level(v, _stored(v, column), (*loc, i)) for i, v in enumerate(value))
        stored = [lv.stored for lv in levels]
        if len(set(map(repr, stored))) != len(stored):
            check.at(loc, "a value is listed twice")
            return None
        return Parameter(key, parts, "choice", levels, column)
    if isinstance(value, dict) and "values" in value:
        extra = [k for k in value if k != "values"]
        if extra:
            check.at(
                (*loc, extra[0]), f"unknown field '{extra[0]}' (labelled values take only values)", key=True
            )
        labelled = value["values"]
        if not isinstance(labelled, dict) or not labelled:
            check.at(
                (*loc, "values"),
                f"wrong type (got {show_value(labelled)}, expected a mapping of label: value)",
            )
            return None
        labelled_levels: list[Level] = []
        for label, v in labelled.items():
            if not valid_name(label):
                check.at(
                    (*loc, "values", label),
                    f"not a valid label (got {show_value(label)}, expected {NAME_RULE})",
                    key=True,
                )
                return None
            labelled_levels.append(Level(v, label, (*loc, "values", label)))
        return Parameter(key, parts, "choice", tuple(labelled_levels), "str")
    if isinstance(value, dict) and "range" in value:
        allowed = ("range", "steps", "log", "integer")
        for k in value:
            if k not in allowed:
                check.at((*loc, k), f"unknown field '{k}' (allowed: {', '.join(allowed)})", key=True)
        rng = value["range"]
        if not (isinstance(rng, list) and len(rng) == 2 and all(_is_number(x) for x in rng)):
            check.at(
                (*loc, "range"),
                f"not a range (got {show_value(rng)}, expected [low, high]: two numbers in "
                "base units — seconds, per second, fractions)",
            )
            return None
        lo, hi = float(rng[0]), float(rng[1])
        if not lo < hi:
            check.at((*loc, "range"), f"low is not below high (got [{rng[0]}, {rng[1]}])")
            return None
        steps = value.get("steps", 5)
        if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 2):
            check.at(
                (*loc, "steps"),
                f"not a valid number of steps (got {show_value(steps)}, expected a whole number ≥ 2)",
            )
            return None
        log = value.get("log", False)
        integer = value.get("integer", False)
        for flag, v in (("log", log), ("integer", integer)):
            if not isinstance(v, bool):
                check.at((*loc, flag), f"not true or false (got {show_value(v)})")
                return None
        if log and lo <= 0:
            check.at((*loc, "range"), f"a log range needs low above 0 (got {rng[0]})")
            return None
        grid = np.geomspace(lo, hi, steps) if log else np.linspace(lo, hi, steps)
        kind: ColumnKind = "int" if integer else "float"
        values = [int(round(x)) if integer else float(f"{x:.10g}") for x in grid]
        if integer and len(set(values)) != len(values):
            values = list(dict.fromkeys(values))
        levels = tuple(Level(v, v, (*loc, "range")) for v in values)
        return Parameter(key, parts, "range", levels, kind, lo, hi, bool(log), bool(integer))
    check.at(
        loc,
        f"not a parameter (got {show_value(value)}, expected a list of values, {{range: [low, high], "
        "steps: n}} or {values: {label: value}})",
    )
    return None


def _metrics(data: dict[str, Any], check: _Checker, base: Scenario) -> list[Metric]:
    known = metric_names(base)
    names = data.get("metrics")
    if names is None:
        return [known[n] for n in DEFAULT_METRICS]
    if not isinstance(names, list) or not names:
        check.at(("metrics",), f"wrong type (got {show_value(names)}, expected a list of metric names)")
        return []
    out = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in known:
            check.at(("metrics", i), unknown_metric(str(name), known))
        elif known[name] not in out:
            out.append(known[name])
    return out


def _metastability(data: dict[str, Any], check: _Checker, params: list[Parameter]) -> tuple[str, str] | None:
    paths = [p.path for p in params]
    report = data.get("report")
    if report is None:
        # A surge's size and length, swept together, make a metastability map without being asked.
        for p in params:
            if p.parts[-1] == "multiplier" and p.numeric:
                twin = [q for q in params if q.parts[:-1] == p.parts[:-1] and q.parts[-1] == "duration"]
                if twin:
                    return p.path, twin[0].path
        return None
    if not isinstance(report, dict):
        check.at(("report",), f"wrong type (got {show_value(report)}, expected a mapping)")
        return None
    for k in report:
        if k != "metastability":
            check.at(("report", k), f"unknown field '{k}' (allowed: metastability)", key=True)
    meta = report.get("metastability")
    if meta is None:
        return None
    if not isinstance(meta, dict) or set(meta) != {"size", "duration"}:
        check.at(
            ("report", "metastability"),
            "expected {size: <parameter path>, duration: <parameter path>}: "
            "the trigger's size and how long it lasts",
        )
        return None
    for k in ("size", "duration"):
        if meta[k] not in paths:
            close = difflib.get_close_matches(str(meta[k]), paths, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            check.at(
                ("report", "metastability", k),
                f"not a parameter of this sweep (got {show_value(meta[k])})"
                f"{hint}; parameters: {', '.join(paths)}",
            )
            return None
    return meta["size"], meta["duration"]


# ------------------------------------------------------------------------------------------------ design


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
            vals = [_range_value(float(f"{x:.6g}"), p) for x in xs]
            columns.append([Level(v, v, p.levels[0].loc) for v in vals])
        else:
            k = len(p.levels)
            columns.append([p.levels[min(k - 1, int(x * k))] for x in u])
    return [[col[i] for col in columns] for i in range(n)]


def _points(sweep: Sweep, check: _Checker | None) -> list[Point]:
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
            message = _scenario_problems(data, label)
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


# ------------------------------------------------------------------------------------------------ estimate


@dataclass(frozen=True)
class Pilot:
    """A timed run of one point: ``seconds`` for the whole run, of which ``share`` was actually run."""

    point: int
    engine: str
    seconds: float
    share: float


@dataclass(frozen=True)
class SweepEstimate:
    """How long a sweep's runs should take together (``seconds`` of run time, before any parallelism), and
    the pilot runs it was scaled from.
    """

    seconds: float
    pilots: tuple[Pilot, ...]


def _size(scenario: Scenario) -> float:
    """What a run's time grows with: on the request engine the tries its requests may make (expected user
    requests times the retry layers' amplification), on the flow engine simulated time (its cost does not
    depend on the request rate).
    """
    if scenario.engine == "flow":
        return scenario.duration
    return max(expected_load(scenario).tries, 1.0)


def estimate_sweep(sweep: Sweep, pilot: Callable[[Scenario], tuple[float, float]]) -> SweepEstimate:
    """Estimate the run time of ``sweep`` from pilot runs of its smallest and largest points per engine.

    ``pilot(scenario)`` times one run and returns (seconds for the whole run, share actually run); the
    caller holds the clock (nothing here reads it). Every other point's time is interpolated between the
    two pilots by its size (:func:`_size`), or scaled from the one pilot when all points are the same size.
    A rough guide: a retry storm makes a point slower than its size says, a quiet run faster.
    """
    by_engine: dict[str, list[Point]] = {}
    for point in sweep.points:
        by_engine.setdefault(point.scenario.engine, []).append(point)
    total, pilots = 0.0, []
    for engine, points in by_engine.items():
        sizes = {p.index: _size(p.scenario) for p in points}
        small = min(points, key=lambda p: sizes[p.index])
        large = max(points, key=lambda p: sizes[p.index])
        timed = [(p, *pilot(p.scenario)) for p in ([large] if sizes[small.index] == sizes[large.index] else
                                                   [small, large])]
        pilots += [Pilot(p.index, engine, seconds, share) for p, seconds, share in timed]
        (p0, t0, _), (p1, t1, _) = timed[0], timed[-1]
        s0, s1 = sizes[p0.index], sizes[p1.index]
        for p in points:
            s = sizes[p.index]
            each = t1 * s / s1 if s1 == s0 else t0 + (t1 - t0) * (s - s0) / (s1 - s0)
            total += max(each, 0.0) * sweep.replications
    return SweepEstimate(total, tuple(pilots))


# ------------------------------------------------------------------------------------------------ running


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
