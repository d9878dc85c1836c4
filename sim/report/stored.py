"""A run read back from its folder, so a report can be rebuilt without running it again.

``cascadesim run`` writes ``summary.json``, ``events.jsonl``, ``timeseries.csv``, ``datacenters.csv``,
``links.csv`` and ``mail.csv`` (when the scenario has them) and ``scenario.json``. :func:`load_results`
reads them into a :class:`StoredResult` with the attributes the report renderers read from a live
:class:`~sim.result.Result` (``scenario``, ``seed``, ``stats`` and ``summary``, ``events``, the series
and ``graph``), so both render the same page.

Every file is checked on load, once, at the edge, like a scenario: ``scenario.json`` through the scenario
loader (references included), ``summary.json`` through the models of the run's own summary
(:class:`sim.summary.Summary`, which becomes ``stats``), the others against the models below. They are
strict about the type of every key the reports read (a number stored as text, a ``null`` list, a missing
key, a row with too few fields) and let any other key through, so the folders of older and newer versions
still load. A folder that fails raises :class:`ResultsError` naming the file, the line or row, the field
and the value::

    reports/x/summary.json: faults: expected a list (got null)
    reports/x/timeseries.csv:14: 5 fields, the header has 19

>>> stored = load_results("reports/quickstart")          # doctest: +SKIP
>>> from sim.report.html import render_html
>>> render_html(stored) == render_html(sim.run(...))     # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from sim.errors import CascadesimError, ScenarioError, format_path, show_value
from sim.loader import parse_scenario
from sim.result import Headline
from sim.scenario import Scenario
from sim.summary import Summary

__all__ = ["StoredResult", "load_results", "REQUIRED_FILES", "ResultsError"]

REQUIRED_FILES = ("summary.json", "events.jsonl", "timeseries.csv", "datacenters.csv", "scenario.json")
# Columns that hold names; every other column is a number (or empty: None).
_TEXT_COLUMNS = frozenset({"region", "datacenter", "link"})


class ResultsError(CascadesimError, ValueError):
    """A results folder that cannot be read: one line naming the file, the line or row, the field, the value."""


# ------------------------------------------------------------------------------------------ the records


class _Record(BaseModel):
    """A stored record: the keys the reports read, with strict types; any other key is let through.

    Strict: ``"0.99"`` is not a number, ``1.0`` not a count, ``0`` not a boolean. JSON holds no NaN
    (``summary.json`` and ``events.jsonl`` are written without); a CSV may (``nan``).
    """

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class _Row(_Record):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=True)


class _Event(_Record):
    """One line of ``events.jsonl``."""

    id: int
    time: float
    kind: str
    node: str
    cause: int | None = None
    fault: str | None = None
    detail: str | None = None


class _TimeseriesRow(_Row):
    time: float
    region: str
    requests: int
    ok: int
    failed: int
    attempts: int
    retries: int
    timeouts: int
    shed: int
    lb_retries: int = 0
    availability: float | None
    latency_p50: float | None
    latency_p99: float | None


class _DatacenterRow(_Row):
    time: float
    datacenter: str
    offered: float
    capacity: float
    healthy: int
    up: int
    servers: int


class _LinkRow(_Row):
    time: float
    link: str
    capacity_bps: float
    utilisation: float | None


class _MailRow(_Row):
    time: float
    region: str


# Per table: its row model (and a validator of a list of rows), the column naming its series (each series
# has the same windows), and whether a run always writes at least one row.
_TABLES: dict[str, tuple[type[_Row], TypeAdapter[Any], str, bool]] = {
    "timeseries.csv": (_TimeseriesRow, TypeAdapter(list[_TimeseriesRow]), "region", True),
    "datacenters.csv": (_DatacenterRow, TypeAdapter(list[_DatacenterRow]), "datacenter", True),
    "links.csv": (_LinkRow, TypeAdapter(list[_LinkRow]), "link", False),
    "mail.csv": (_MailRow, TypeAdapter(list[_MailRow]), "region", False),
}

_EXPECTED = {
    "float_type": "expected a number",
    "finite_number": "expected a finite number",
    "int_type": "expected a whole number",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
}


def _problem(err: Any, skip: int = 0) -> str:
    """One pydantic error as ``field: what is wrong (got value)``; ``skip`` leading parts of its path."""
    loc = tuple(err["loc"])[skip:]
    if err["type"] == "missing":
        where, text = format_path(loc[:-1]), f"missing required field '{loc[-1]}'"
    else:
        where = format_path(loc)
        text = f"{_EXPECTED.get(err['type'], str(err['msg']))} (got {show_value(err['input'])})"
    return f"{where}: {text}" if where else text


def _check(model: type[BaseModel], data: Any, where: str) -> Any:
    """Validate one record and return it as ``model``; raise a :class:`ResultsError` on its first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ResultsError(f"{where}: {_problem(exc.errors()[0])}{_more(exc)}") from None


def _check_rows(adapter: TypeAdapter[Any], path: Path, rows: list[tuple[int, Any]]) -> None:
    """Validate records read from numbered lines; the error names the line of the first bad one."""
    try:
        adapter.validate_python([row for _, row in rows])
    except ValidationError as exc:
        err = exc.errors()[0]
        line = rows[int(err["loc"][0])][0]  # the error's path starts with the record's place in the list
        raise ResultsError(f"{path}:{line}: {_problem(err, skip=1)}{_more(exc)}") from None


def _more(exc: ValidationError) -> str:
    n = exc.error_count() - 1
    return f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""


# ------------------------------------------------------------------------------------------ reading


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ResultsError(f"{path}: cannot read it: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text (byte {err.start} cannot be decoded)") from None


def _json(text: str, path: Path, line: int | None = None) -> Any:
    """Parse JSON; an error names the line (``line``: the line of a JSON Lines file) and the column."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        at = f"{path}:{line if line is not None else err.lineno}:{err.colno}"
        raise ResultsError(f"{at}: not valid JSON: {err.msg}") from None
    except (ValueError, RecursionError) as err:  # NaN or Infinity; nesting too deep to read
        at = f"{path}:{line}" if line is not None else str(path)
        raise ResultsError(f"{at}: not valid JSON: {err or 'nested too deeply'}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _scenario(path: Path) -> Scenario:
    """``scenario.json`` through the scenario loader: the same checks, references included, as a run's."""
    try:
        return parse_scenario(_text(path), str(path))
    except ScenarioError as err:
        problems = err.problems
        n = len(problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n > 0 else ""
        first = str(problems[0]) if problems else f"{path}: not a valid scenario"
        raise ResultsError(f"{first}{more}") from None


def _summary(path: Path) -> tuple[dict[str, Any], Summary]:
    """``summary.json`` as stored, and typed (validated by the models of a live run's summary)."""
    data = _json(_text(path), path)
    return data, _check(Summary, data, str(path))


_EVENTS = TypeAdapter(list[_Event])


def _events(path: Path) -> list[dict[str, Any]]:
    text = _text(path)
    lines = text.splitlines()
    numbered = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            numbered.append((n, _json(line, path, n)))
        except ResultsError as err:
            cut = n == len(lines) and not text.endswith("\n")
            raise ResultsError(f"{err} (the last line is incomplete: was the file cut short?)" if cut
                               else str(err)) from None
    _check_rows(_EVENTS, path, numbered)
    return [event for _, event in numbered]


def _number(text: str) -> int | float | str | None:
    """A CSV cell as a number (empty: ``None``); text that is no number stays text, for the check to name."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)  # 'nan', 'inf' and exponents included
        except ValueError:
            return text


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` per data row; a row with more or fewer fields than the header is an error."""
    reader = csv.reader(_text(path).splitlines())
    try:
        header = next(reader, None)
        if header is None:
            return
        for raw in reader:
            if not raw:
                continue
            if len(raw) != len(header):
                raise ResultsError(f"{path}:{reader.line_num}: {len(raw)} fields, the header has {len(header)}")
            yield reader.line_num, {
                k: (v if k in _TEXT_COLUMNS else _number(v)) for k, v in zip(header, raw, strict=True)
            }
    except csv.Error as err:
        raise ResultsError(f"{path}:{reader.line_num}: not valid CSV: {err}") from None


def read_csv(path: Path) -> list[dict[str, Any]]:
    """A CSV table written by :func:`sim.report.files.csv_text`, with its numbers as numbers."""
    return [row for _, row in _csv_rows(Path(path))]


def _table(path: Path) -> list[dict[str, Any]]:
    """A CSV table, checked: its columns, every row's types, and the same windows for every series."""
    model, rows, key, required = _TABLES[path.name]
    numbered = list(_csv_rows(path))
    if not numbered:
        if required:
            raise ResultsError(f"{path}: no rows (a run writes one per window and {key})")
        return []
    header = numbered[0][1]
    missing = [name for name, info in model.model_fields.items() if info.is_required() and name not in header]
    if missing:
        raise ResultsError(f"{path}:1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    _check_rows(rows, path, numbered)
    windows: dict[str, list[float]] = {}
    for _, row in numbered:
        windows.setdefault(row[key], []).append(row["time"])
    (first, times), *others = windows.items()
    for name, mine in others:
        if sorted(mine) != sorted(times):
            raise ResultsError(
                f"{path}: {key} {show_value(name)} has {len(mine)} rows and {key} {show_value(first)} "
                f"{len(times)}; every {key} has one row per window"
                if len(mine) != len(times)
                else f"{path}: {key} {show_value(name)} and {key} {show_value(first)} have different windows"
            )
    return [row for _, row in numbered]


@dataclass
class StoredResult(Headline):
    """The records of one run as stored in its folder; the report renderers accept it for a ``Result``.

    ``summary`` is ``summary.json`` as stored; ``stats`` the same through :class:`sim.summary.Summary`
    (built from ``summary`` when not given; ``pydantic.ValidationError`` if it does not fit).
    """

    folder: Path
    scenario: Scenario
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    timeseries: list[dict[str, Any]]
    datacenter_series: list[dict[str, Any]]
    link_series: list[dict[str, Any]] = field(default_factory=list)
    mail_series: list[dict[str, Any]] = field(default_factory=list)
    stats: Summary = field(default=None, repr=False)  # type: ignore[assignment]  # None: built from summary

    def __post_init__(self) -> None:
        if self.stats is None:
            self.stats = Summary.from_dict(self.summary)

    @property
    def seed(self) -> int:
        """The seed the run used (from the summary's manifest)."""
        manifest = self.stats.manifest
        return manifest.seed if "seed" in manifest.model_fields_set else self.scenario.seed


    @cached_property
    def graph(self) -> nx.Graph:
        """The topology, rebuilt from the stored scenario."""
        from sim.topology import build_topology

        return build_topology(self.scenario)


def load_results(folder: str | Path) -> StoredResult:
    """Read a run's folder (as written by ``cascadesim run``) into a :class:`StoredResult`.

    Every file is checked before anything is returned; raises :class:`ResultsError` naming the file, the
    line or row, the field and the value of the first problem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such folder (expected the output folder of 'cascadesim run')")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ResultsError(f"{folder}: not a run's results folder: missing {', '.join(missing)}")
    scenario = _scenario(folder / "scenario.json")
    summary, stats = _summary(folder / "summary.json")
    events = _events(folder / "events.jsonl")
    tables = {name: _table(folder / name) if (folder / name).is_file() else [] for name in _TABLES}
    return StoredResult(
        folder=folder,
        scenario=scenario,
        summary=summary,
        stats=stats,
        events=events,
        timeseries=tables["timeseries.csv"],
        datacenter_series=tables["datacenters.csv"],
        link_series=tables["links.csv"],
        mail_series=tables["mail.csv"],
    )
