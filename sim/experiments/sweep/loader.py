"""A sweep file read and checked into a :class:`~sim.experiments.sweep.design.Sweep` (the file's fields are
shown in :mod:`sim.experiments.sweep`).

Everything is checked before anything runs, and every problem names the sweep file's line: the file's
fields, each path (it must lead somewhere in the base), each value (substituted alone into the base, it
must pass the scenario loader — the loader's own message is quoted), the metric names, and finally
every design point.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import Problem, ScenarioError, printable, show_value
from sim.experiments.metrics import DEFAULT_METRICS, Metric, metric_names, unknown_metric
from sim.experiments.plan import ColumnKind
from sim.experiments.sweep.checks import Checker, Loc, scenario_problems
from sim.experiments.sweep.design import DESIGNS, Level, Parameter, Sweep, design_points, range_value
from sim.experiments.sweep.paths import Segment, assign, parse_path
from sim.loader import load_scenario, read_bounded, read_yaml, scenario_data
from sim.scenario import Scenario

__all__ = ["load_sweep", "parse_sweep", "is_sweep", "MAX_RUNS", "NAME_RULE", "valid_name"]


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
    check = Checker(locator, problems)
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
        bad = scenario_problems(trial, base_label)
        if bad:
            check.at(("set", key), f"{show_value(value)} does not fit the base scenario: {bad}")
        else:
            assign(base_data, parts, value)
    if len(check.problems) == before:
        bad = scenario_problems(base_data, base_label)
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
    sweep.points = design_points(sweep, check)
    if check.problems:
        raise ScenarioError(check.problems)
    return sweep


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


def _parameters(data: dict[str, Any], check: Checker, base_data: Any, base_label: str) -> list[Parameter]:
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
            verdicts.append((level, scenario_problems(trial, base_label)))
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
        Level(range_value(lo, param), range_value(lo, param), (*param.levels[0].loc[:2], "range", 0)),
        Level(range_value(hi, param), range_value(hi, param), (*param.levels[0].loc[:2], "range", 1)),
    ]
    return ends + [lv for lv in param.levels[1:-1]]


def _parameter(
    key: str, parts: tuple[Segment, ...], value: Any, loc: Loc, check: Checker
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


def _metrics(data: dict[str, Any], check: Checker, base: Scenario) -> list[Metric]:
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


def _metastability(data: dict[str, Any], check: Checker, params: list[Parameter]) -> tuple[str, str] | None:
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
