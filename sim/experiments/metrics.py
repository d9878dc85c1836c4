"""Which numbers of a run's summary an experiment keeps, by dotted name.

A metric is a path into the run's :class:`~sim.summary.Summary` — the fields of ``summary.json``
(``availability``, ``users_affected``, ``latency.p99``, ``recovery.recovered``,
``regions.europe.availability``, ``faults.burst.time_to_recover``, ``mail.delay.p99``) — or
``cascade_depth``, derived from the fault list (the deepest cascade of any fault). ``users_affected`` is
the summary's own figure (distinct users with a failed request, never more than the users there are;
see :mod:`sim.summary`), not recomputed here. Each metric has a type (the column type of the results
store) and a direction (``higher`` or ``lower`` is better, or neither), which is how a comparison decides
which layout wins.

The names a scenario offers are known before anything runs (:func:`metric_names`), so a sweep asking for
``latency.p95`` fails at once, with "did you mean".

>>> import sim
>>> from sim.topology import EXAMPLE
>>> stats = sim.run(sim.parse_scenario(EXAMPLE), seed=1).stats
>>> row = extract(stats, ["availability", "latency.p99", "users_affected", "cascade_depth"])
>>> row["availability"] == stats.availability and row["users_affected"] == stats.users_affected
True
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from sim.scenario import Scenario
from sim.summary import Summary

__all__ = ["Metric", "METRICS", "DEFAULT_METRICS", "metric", "metric_names", "unknown_metric", "extract"]

Kind = Literal["float", "int", "bool", "str"]
Better = Literal["higher", "lower"] | None
Unit = Literal["ratio", "percent", "minutes", "seconds", "count", "number", "flag", "text"]


@dataclass(frozen=True)
class Metric:
    """One kept number: its ``name`` (dotted path), column ``kind``, which way is ``better``, ``unit``."""

    name: str
    kind: Kind
    better: Better
    unit: Unit
    label: str


def _m(name: str, kind: Kind, better: Better, unit: Unit, label: str) -> Metric:
    return Metric(name, kind, better, unit, label)


_TOP = [
    _m("availability", "float", "higher", "percent", "availability"),
    _m("nines", "float", "higher", "number", "nines"),
    _m("downtime_minutes", "float", "lower", "minutes", "downtime below the SLO (min)"),
    _m("requests", "int", None, "count", "user requests"),
    _m("succeeded", "int", "higher", "count", "requests succeeded"),
    _m("latency.p50", "float", "lower", "seconds", "latency p50"),
    _m("latency.p99", "float", "lower", "seconds", "latency p99"),
    _m("latency.mean", "float", "lower", "seconds", "mean latency"),
    _m("amplification", "float", "lower", "ratio", "attempts per request"),
    _m("worst_region", "str", None, "text", "worst region"),
    _m("worst_fault", "str", None, "text", "worst fault"),
    _m("recovery.last_fault_end", "float", None, "seconds", "last fault ended"),
    _m("recovery.recovered", "bool", "higher", "flag", "recovered"),
    _m("recovery.metastable", "bool", "lower", "flag", "metastable"),
    _m("recovery.time_to_recover", "float", "lower", "seconds", "time to recover"),
    _m("slo.met", "bool", "higher", "flag", "SLO met"),
    _m("slo.availability_met", "bool", "higher", "flag", "availability objective met"),
    _m("slo.latency_met", "bool", "higher", "flag", "latency objective met"),
    _m("cascade_depth", "int", "lower", "count", "deepest cascade"),
    _m("users_affected", "int", "lower", "count", "users affected"),
]

# Counts in ``summary["counts"]``: attempts that went wrong are better lower; the rest are neutral.
_COUNTS_LOWER = (
    "failed",
    "retries",
    "timeouts",
    "errors",
    "shed",
    "wasted",
    "budget_exhausted",
    "breaker_rejected",
    "server_down",
    "database_unavailable",
    "link_lost",
    "lb_retries",
    "dep_retries",
)
_COUNTS_OTHER = (
    "attempts",
    "dep_attempts",
    "ejected",
    "readmitted",
    "failover",
    "traffic_shift",
    "queued",
    "link_saturated",
    "link_down",
)

_REGION = [
    ("availability", "float", "higher", "percent"),
    ("nines", "float", "higher", "number"),
    ("requests", "int", None, "count"),
    ("downtime_minutes", "float", "lower", "minutes"),
    ("users_affected", "int", "lower", "count"),
    ("latency_p50", "float", "lower", "seconds"),
    ("latency_p99", "float", "lower", "seconds"),
]
_FAULT = [
    ("occurrences", "int", None, "count"),
    ("downtime_minutes", "float", "lower", "minutes"),
    ("time_to_detect", "float", "lower", "seconds"),
    ("time_to_recover", "float", "lower", "seconds"),
    ("recovered", "bool", "higher", "flag"),
    ("cascade_depth", "int", "lower", "count"),
    ("blast_radius.users", "int", "lower", "count"),
    ("blast_radius.servers", "int", "lower", "count"),
]
_MAIL = [
    ("messages", "int", None, "count"),
    ("delivered", "int", "higher", "count"),
    ("delayed", "int", "lower", "count"),
    ("undelivered_at_end", "int", "lower", "count"),
    ("lost.queue_full", "int", "lower", "count"),
    ("lost.expired", "int", "lower", "count"),
    ("delay.p50", "float", "lower", "seconds"),
    ("delay.p99", "float", "lower", "seconds"),
    ("delay.max", "float", "lower", "seconds"),
    ("backlog.peak", "int", "lower", "count"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _TOP}
for _name in _COUNTS_LOWER + _COUNTS_OTHER:
    METRICS[f"counts.{_name}"] = _m(
        f"counts.{_name}",
        "int",
        "lower" if _name in _COUNTS_LOWER else None,
        "count",
        _name.replace("_", " "),
    )
"""The metrics every scenario offers (per region, per fault and mail ones come from :func:`metric_names`)."""

DEFAULT_METRICS = (
    "availability",
    "nines",
    "downtime_minutes",
    "latency.p50",
    "latency.p99",
    "amplification",
    "counts.failed",
    "counts.retries",
    "recovery.recovered",
    "recovery.time_to_recover",
    "slo.met",
    "cascade_depth",
    "users_affected",
    "worst_fault",
)
"""What an experiment keeps when it is not told."""


def metric_names(scenario: Scenario) -> dict[str, Metric]:
    """Every metric ``scenario``'s runs report: the common ones, per region, per fault, and mail."""
    out = dict(METRICS)
    for region in scenario.topology.regions:
        for field, kind, better, unit in _REGION:
            name = f"regions.{region.id}.{field}"
            out[name] = Metric(name, kind, better, unit, f"{region.id} {field.replace('_', ' ')}")  # type: ignore[arg-type]
    for i in range(len(scenario.faults)):
        fid = scenario.fault_id(i)
        for field, kind, better, unit in _FAULT:
            name = f"faults.{fid}.{field}"
            out[name] = Metric(name, kind, better, unit, f"{fid} {field.replace('_', ' ')}")  # type: ignore[arg-type]
    if scenario.workload.mail is not None:
        for field, kind, better, unit in _MAIL:
            name = f"mail.{field}"
            out[name] = Metric(name, kind, better, unit, f"mail {field.replace('_', ' ')}")  # type: ignore[arg-type]
    return out


def metric(name: str, scenario: Scenario | None = None) -> Metric:
    """The :class:`Metric` called ``name``; raise ``KeyError`` with a readable message if there is none."""
    known = metric_names(scenario) if scenario is not None else METRICS
    if name not in known:
        raise KeyError(unknown_metric(name, known))
    return known[name]


def unknown_metric(name: str, known: dict[str, Metric] | list[str]) -> str:
    """Say that ``name`` is no metric, with the closest match and the common names."""
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    common = ", ".join(m.name for m in _TOP)
    return (
        f"no metric '{name}'{hint}; metrics are paths into summary.json such as {common}, counts.<name>, "
        "regions.<region>.availability, faults.<fault id>.time_to_recover, mail.delay.p99"
    )


def _lookup(summary: Summary, path: str) -> Any:
    """The field at a dotted ``path`` of the typed summary (``faults.<id>`` and ``regions.<id>`` by id)."""
    parts = path.split(".")
    node: Any
    if parts[0] == "faults" and len(parts) >= 3:
        node, parts = summary.fault(parts[1]), parts[2:]
    elif parts[0] == "regions" and len(parts) >= 3:
        node, parts = summary.regions.get(parts[1]), parts[2:]
    else:
        node = summary
    for part in parts:
        if isinstance(node, BaseModel):
            node = getattr(node, part, None)
        elif isinstance(node, dict):  # counts, and keys a newer summary has that these models do not
            node = node.get(part)
        else:
            return None
    return node


def extract(summary: Summary | Mapping[str, Any], names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The values of the metrics ``names`` in a run's summary (``None`` where the run has no value).

    ``summary`` is the typed :class:`~sim.summary.Summary` (``Result.stats``) or its JSON form
    (``Result.summary``), read through the same model.
    """
    stats = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
    out: dict[str, Any] = {}
    for name in names:
        if name == "cascade_depth":
            out[name] = max((f.cascade_depth for f in stats.faults), default=0)
        else:
            out[name] = _lookup(stats, name)
    return out
