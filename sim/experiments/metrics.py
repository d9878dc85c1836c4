"""Which numbers of a run's summary an experiment keeps, by dotted name.

A metric is a path into the run's :class:`~sim.summary.Summary` — the fields of ``summary.json``
(``availability``, ``users_affected``, ``latency.p99``, ``recovery.recovered``,
``regions.europe.availability``, ``faults.burst.time_to_recover``, ``mail.delay.p99``) — or
``cascade_depth``, derived from the fault list (the deepest cascade of any fault). ``users_affected`` is
the summary's own figure (distinct users with a failed request, never more than the users there are;
see :mod:`sim.summary`), not recomputed here. Each metric has a type (the column type of the results
store), a direction (``higher`` or ``lower`` is better, or neither), which is how a comparison decides
which layout wins, and a domain — what values it can take — which is how its interval over replications
is chosen (:func:`sim.experiments.stats.interval_for`): ``proportion`` (true or false per run, a share of
runs: Wilson), ``bounded`` (a fraction in [0, 1]: availability), ``nonnegative`` (durations, latencies,
counts, nines) or ``unbounded``.

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

from sim.experiments.stats import DOMAINS, Domain, Interval, interval_for
from sim.scenario import Scenario
from sim.summary import SIGN_IN, Summary, type_label

__all__ = ["Metric", "METRICS", "DEFAULT_METRICS", "default_metrics", "metric", "metric_names", "unknown_metric",
           "extract"]

Kind = Literal["float", "int", "bool", "str"]
Better = Literal["higher", "lower"] | None
Unit = Literal["ratio", "percent", "minutes", "seconds", "count", "number", "flag", "text"]


@dataclass(frozen=True)
class Metric:
    """One kept number: its ``name`` (dotted path), column ``kind``, which way is ``better``, ``unit``, and
    its ``domain``: the values it can take, which choose its interval (``None`` for text, which has none).
    """

    name: str
    kind: Kind
    better: Better
    unit: Unit
    label: str
    domain: Domain | None

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The range every value and interval of the metric lies within (``None`` for text)."""
        return None if self.domain is None else DOMAINS[self.domain]

    def interval(self, values: list[Any], confidence: float = 0.95) -> Interval:
        """The mean of ``values`` (one per replication) with the interval its domain calls for."""
        if self.domain is None:
            raise ValueError(f"metric '{self.name}' is text: it has no mean or interval")
        return interval_for(values, self.domain, confidence)


def _m(name: str, kind: Kind, better: Better, unit: Unit, label: str, domain: Domain | None) -> Metric:
    return Metric(name, kind, better, unit, label, domain)


# Domains: "proportion" for what is true or false per run, "bounded" for fractions in [0, 1], "nonnegative"
# for durations, latencies, counts, ratios and nines. Nothing here is unbounded; differences are.
_TOP = [
    _m("availability", "float", "higher", "percent", "availability", "bounded"),
    _m("availability_strict", "float", "higher", "percent", "strict availability (degraded answers left out)",
       "bounded"),
    _m("nines", "float", "higher", "number", "nines", "nonnegative"),
    _m("downtime_minutes", "float", "lower", "minutes", "downtime below the SLO (min)", "nonnegative"),
    _m("requests", "int", None, "count", "user requests", "nonnegative"),
    _m("succeeded", "int", "higher", "count", "requests succeeded", "nonnegative"),
    _m("latency.p50", "float", "lower", "seconds", "latency p50", "nonnegative"),
    _m("latency.p99", "float", "lower", "seconds", "latency p99", "nonnegative"),
    _m("latency.mean", "float", "lower", "seconds", "mean latency", "nonnegative"),
    _m("amplification", "float", "lower", "ratio", "attempts per request", "nonnegative"),
    _m("worst_region", "str", None, "text", "worst region", None),
    _m("worst_fault", "str", None, "text", "worst fault", None),
    _m("recovery.last_fault_end", "float", None, "seconds", "last fault ended", "nonnegative"),
    _m("recovery.recovered", "bool", "higher", "flag", "recovered", "proportion"),
    _m("recovery.metastable", "bool", "lower", "flag", "metastable", "proportion"),
    _m("recovery.time_to_recover", "float", "lower", "seconds", "time to recover", "nonnegative"),
    _m("slo.met", "bool", "higher", "flag", "SLO met", "proportion"),
    _m("slo.availability_met", "bool", "higher", "flag", "availability objective met", "proportion"),
    _m("slo.latency_met", "bool", "higher", "flag", "latency objective met", "proportion"),
    _m("cascade_depth", "int", "lower", "count", "deepest cascade", "nonnegative"),
    _m("users_affected", "int", "lower", "count", "users affected", "nonnegative"),
    _m("impact.user_minutes", "float", "lower", "minutes", "user-minutes without service", "nonnegative"),
    _m("impact.requests_failed", "int", "lower", "count", "user requests failed", "nonnegative"),
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
    "degraded",
)

_Field = tuple[str, Kind, Better, Unit, Domain]
_REGION: list[_Field] = [
    ("availability", "float", "higher", "percent", "bounded"),
    ("nines", "float", "higher", "number", "nonnegative"),
    ("requests", "int", None, "count", "nonnegative"),
    ("downtime_minutes", "float", "lower", "minutes", "nonnegative"),
    ("users_affected", "int", "lower", "count", "nonnegative"),
    ("latency_p50", "float", "lower", "seconds", "nonnegative"),
    ("latency_p99", "float", "lower", "seconds", "nonnegative"),
]
_FAULT: list[_Field] = [
    ("occurrences", "int", None, "count", "nonnegative"),
    ("downtime_minutes", "float", "lower", "minutes", "nonnegative"),
    ("time_to_detect", "float", "lower", "seconds", "nonnegative"),
    ("time_to_recover", "float", "lower", "seconds", "nonnegative"),
    ("recovered", "bool", "higher", "flag", "proportion"),
    ("cascade_depth", "int", "lower", "count", "nonnegative"),
    ("blast_radius.users", "int", "lower", "count", "nonnegative"),
    ("blast_radius.servers", "int", "lower", "count", "nonnegative"),
]
_MAIL: list[_Field] = [
    ("messages", "int", None, "count", "nonnegative"),
    ("delivered", "int", "higher", "count", "nonnegative"),
    ("delayed", "int", "lower", "count", "nonnegative"),
    ("undelivered_at_end", "int", "lower", "count", "nonnegative"),
    ("lost.queue_full", "int", "lower", "count", "nonnegative"),
    ("lost.expired", "int", "lower", "count", "nonnegative"),
    ("delay.p50", "float", "lower", "seconds", "nonnegative"),
    ("delay.p99", "float", "lower", "seconds", "nonnegative"),
    ("delay.max", "float", "lower", "seconds", "nonnegative"),
    ("backlog.peak", "int", "lower", "count", "nonnegative"),
]

METRICS: dict[str, Metric] = {m.name: m for m in _TOP}
for _name in _COUNTS_LOWER + _COUNTS_OTHER:
    METRICS[f"counts.{_name}"] = _m(
        f"counts.{_name}",
        "int",
        "lower" if _name in _COUNTS_LOWER else None,
        "count",
        _name.replace("_", " "),
        "nonnegative",
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
    "impact.user_minutes",
    "worst_fault",
)
"""What an experiment keeps when it is not told (and the sign-ins failed, where there are sign-ins:
:func:`default_metrics`)."""

SIGN_INS_FAILED = "impact.sign_ins_failed"


def default_metrics(*scenarios: Scenario) -> tuple[str, ...]:
    """What an experiment over ``scenarios`` keeps when it is not told: :data:`DEFAULT_METRICS`, and the
    sign-ins failed after the user-minutes when every scenario's mix has sign-ins.
    """
    if not scenarios or any(SIGN_IN not in s.workload.requests for s in scenarios):
        return DEFAULT_METRICS
    at = DEFAULT_METRICS.index("impact.user_minutes") + 1
    return (*DEFAULT_METRICS[:at], SIGN_INS_FAILED, *DEFAULT_METRICS[at:])


def metric_names(scenario: Scenario) -> dict[str, Metric]:
    """Every metric ``scenario``'s runs report: the common ones, per region, per fault, per request type
    (``impact.failed_by_type.<type>``, and ``impact.sign_ins_failed`` when the mix has sign-ins), the cost
    when the scenario gives one, and mail.
    """
    out = dict(METRICS)
    for region in scenario.topology.regions:
        for field, kind, better, unit, domain in _REGION:
            name = f"regions.{region.id}.{field}"
            out[name] = Metric(name, kind, better, unit, f"{region.id} {field.replace('_', ' ')}", domain)
    for i in range(len(scenario.faults)):
        fid = scenario.fault_id(i)
        for field, kind, better, unit, domain in _FAULT:
            name = f"faults.{fid}.{field}"
            out[name] = Metric(name, kind, better, unit, f"{fid} {field.replace('_', ' ')}", domain)
    for name in scenario.workload.requests:
        out[f"impact.failed_by_type.{name}"] = Metric(f"impact.failed_by_type.{name}", "int", "lower", "count",
                                                      f"{type_label(name)} failed", "nonnegative")
    if SIGN_IN in scenario.workload.requests:
        out[SIGN_INS_FAILED] = Metric(SIGN_INS_FAILED, "int", "lower", "count", "sign-ins failed", "nonnegative")
    if scenario.impact is not None:
        currency = f" ({scenario.impact.currency})" if scenario.impact.currency else ""
        out["impact.cost"] = Metric("impact.cost", "float", "lower", "number", f"cost of the outage{currency}",
                                    "nonnegative")
    if scenario.workload.mail is not None:
        for field, kind, better, unit, domain in _MAIL:
            name = f"mail.{field}"
            out[name] = Metric(name, kind, better, unit, f"mail {field.replace('_', ' ')}", domain)
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
