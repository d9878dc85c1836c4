"""A run read back from its folder, so a report can be rebuilt without running it again.

``cascadesim run`` writes ``summary.json``, ``events.jsonl``, ``timeseries.csv``, ``datacenters.csv``,
``links.csv`` and ``mail.csv`` (when the scenario has them) and ``scenario.json``. :func:`load_results`
reads them into a :class:`StoredResult` with the attributes the report renderers read from a live
:class:`~sim.result.Result` (``scenario``, ``seed``, ``summary``, ``events``, the series and ``graph``),
so both render the same page.

>>> stored = load_results("reports/quickstart")          # doctest: +SKIP
>>> from sim.report.html import render_html
>>> render_html(stored) == render_html(sim.run(...))     # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import networkx as nx

from sim.result import Headline
from sim.scenario import Scenario

__all__ = ["StoredResult", "load_results", "REQUIRED_FILES", "ResultsError"]

REQUIRED_FILES = ("summary.json", "events.jsonl", "timeseries.csv", "datacenters.csv", "scenario.json")
# Columns that hold names; every other column is a number (or empty: None).
_TEXT_COLUMNS = frozenset({"region", "datacenter", "link"})


class ResultsError(ValueError):
    """A results folder that cannot be read: the message names the folder and the file."""


def _number(text: str) -> int | float | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)  # 'nan', 'inf' and exponents included


def read_csv(path: Path) -> list[dict[str, Any]]:
    """A CSV table written by :func:`sim.report.files.csv_text`, with its numbers as numbers."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = []
        for raw in csv.DictReader(f):
            rows.append({k: (v if k in _TEXT_COLUMNS else _number(v)) for k, v in raw.items()})
        return rows


@dataclass
class StoredResult(Headline):
    """The records of one run as stored in its folder; the report renderers accept it for a ``Result``."""

    folder: Path
    scenario: Scenario
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    timeseries: list[dict[str, Any]]
    datacenter_series: list[dict[str, Any]]
    link_series: list[dict[str, Any]] = field(default_factory=list)
    mail_series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seed(self) -> int:
        """The seed the run used (from the summary's manifest)."""
        return int(self.summary.get("manifest", {}).get("seed", self.scenario.seed))


    @cached_property
    def graph(self) -> nx.Graph:
        """The topology, rebuilt from the stored scenario."""
        from sim.topology import build_topology

        return build_topology(self.scenario)


def load_results(folder: str | Path) -> StoredResult:
    """Read a run's folder (as written by ``cascadesim run``) into a :class:`StoredResult`.

    Raises :class:`ResultsError` naming the folder and what is missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such folder (expected the output folder of 'cascadesim run')")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ResultsError(f"{folder}: not a run's results folder: missing {', '.join(missing)}")
    current = ""
    try:
        current = "scenario.json"
        scenario = Scenario.model_validate(json.loads((folder / current).read_text(encoding="utf-8")))
        current = "summary.json"
        summary = json.loads((folder / current).read_text(encoding="utf-8"))
        current = "events.jsonl"
        with (folder / current).open(encoding="utf-8") as f:
            events = [json.loads(line) for line in f if line.strip()]
        tables = {}
        for name in ("timeseries.csv", "datacenters.csv", "links.csv", "mail.csv"):
            current = name
            tables[name] = read_csv(folder / name) if (folder / name).is_file() else []
    except (OSError, ValueError) as err:  # pydantic's ValidationError and JSONDecodeError are ValueErrors
        raise ResultsError(f"{folder / current}: cannot read it: {err}") from err
    return StoredResult(
        folder=folder,
        scenario=scenario,
        summary=summary,
        events=events,
        timeseries=tables["timeseries.csv"],
        datacenter_series=tables["datacenters.csv"],
        link_series=tables["links.csv"],
        mail_series=tables["mail.csv"],
    )
