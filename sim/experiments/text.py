"""Numbers with their intervals as people read them, and the terminal summaries of experiments.

Names and values from the files are shown with :func:`~sim.errors.printable`: no control character of
theirs reaches the terminal.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Literal

from sim.errors import printable
from sim.experiments.metrics import Metric
from sim.experiments.stats import Interval, Verdict, min_replications
from sim.units import (
    NONE,
    format_count,
    format_latency,
    format_nines,
    format_number,
    format_percent,
    format_ratio,
    format_span,
)

if TYPE_CHECKING:
    from sim.experiments.compare import Comparison
    from sim.experiments.replicate import Replications
    from sim.experiments.sweep import Sweep, SweepResult

__all__ = [
    "quantity",
    "seconds_of",
    "metric_title",
    "fmt",
    "fmt_diff",
    "fmt_interval",
    "ci_label",
    "verdict_mark",
    "format_replications",
    "format_comparison",
    "format_sweep",
]


Quantity = Literal["percent", "share", "span", "latency", "count", "ratio", "nines", "number", "text"]


def quantity(metric: Metric) -> Quantity:
    """What kind of quantity a metric is, which picks its formatter in :mod:`sim.units` (and its axis):
    a latency (seconds, named ``latency``) reads in milliseconds, every other duration as a span;
    user-minutes (users × minutes) are a count.

    >>> from sim.experiments.metrics import METRICS
    >>> [quantity(METRICS[n]) for n in ("latency.p99", "recovery.time_to_recover", "downtime_minutes")]
    ['latency', 'span', 'span']
    """
    unit = metric.unit
    if unit == "minutes" and "user-minutes" in metric.label:  # users × minutes: a count, not a duration
        return "count"
    if unit == "seconds":
        return "latency" if "latency" in metric.name else "span"
    if unit == "number":
        return "nines" if metric.name.split(".")[-1] == "nines" else "number"
    return _QUANTITIES.get(unit, "number")


_QUANTITIES: dict[str, Quantity] = {"percent": "percent", "flag": "share", "minutes": "span", "ratio": "ratio",
                                    "count": "count", "text": "text"}


def seconds_of(metric: Metric) -> float:
    """How many seconds one unit of a duration metric is (60 for ``downtime_minutes``)."""
    return 60.0 if metric.unit == "minutes" else 1.0


_UNIT_WORDS = re.compile(r"\s*\((min|s|ms|%|per second)\)$")


def metric_title(metric: Metric) -> str:
    """A metric's name as words, without a unit (the value or the axis says it): ``downtime below the SLO``.

    >>> from sim.experiments.metrics import METRICS
    >>> metric_title(METRICS["downtime_minutes"]), metric_title(METRICS["latency.p99"])
    ('downtime below the SLO', 'latency p99')
    """
    return _UNIT_WORDS.sub("", metric.label) or metric.name


def fmt(metric: Metric, value: float | None) -> str:
    """A metric's value through the formatter of its quantity: ``99.951%``, ``231 ms``, ``4 min``,
    ``62% of runs``, ``1.02×``.

    >>> from sim.experiments.metrics import METRICS
    >>> fmt(METRICS["availability"], 0.99951), fmt(METRICS["recovery.recovered"], 0.5)
    ('99.951%', '50% of runs')
    >>> fmt(METRICS["downtime_minutes"], 10.17), fmt(METRICS["counts.retries"], 2100.96)
    ('10 min 10 s', '2,101')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    kind = quantity(metric)
    if kind == "percent":
        return format_percent(value)
    if kind == "share":
        return f"{format_percent(value, decimals=0)} of runs"
    if kind == "span":
        return format_span(value * seconds_of(metric))
    if kind == "latency":
        return format_latency(value)
    if kind == "ratio":
        return format_ratio(value)
    if kind == "count":
        return format_count(value)
    if kind == "nines":
        return format_nines(value)
    return format_number(value)


def fmt_diff(metric: Metric, value: float | None) -> str:
    """A difference, signed, in the metric's unit (percentage points for shares).

    >>> from sim.experiments.metrics import METRICS
    >>> fmt_diff(METRICS["counts.retries"], -13570.4), fmt_diff(METRICS["availability"], 0.0005)
    ('−13,570', '+0.05 pp')
    """
    if value is None:
        return NONE
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    v = abs(value)
    kind = quantity(metric)
    if kind == "percent":
        return f"{sign}{format_number(v * 100)} pp"
    if kind == "share":
        return f"{sign}{round(v * 100)} pp of runs"
    return sign + fmt(metric, v)


def ci_label(iv: Interval) -> str:
    """What an interval is, for a reader: ``95% CI, Wilson``.

    >>> from sim.experiments.stats import interval_for
    >>> ci_label(interval_for([True, False], "proportion"))
    '95% CI, Wilson'
    """
    return f"{format_number(iv.confidence * 100, 4)}% CI, {iv.method}"


def _bounds(metric: Metric, iv: Interval, diff: bool) -> str:
    """``[low, high]`` (a share of runs without repeating "of runs")."""
    if diff:
        return f"[{fmt_diff(metric, iv.low)}, {fmt_diff(metric, iv.high)}]"
    if metric.unit == "flag" and iv.low is not None and iv.high is not None:
        return f"[{format_percent(iv.low, decimals=0)}, {format_percent(iv.high, decimals=0)}]"
    return f"[{fmt(metric, iv.low)}, {fmt(metric, iv.high)}]"


def _note(iv: Interval) -> str | None:
    """Why there is no interval to show: one value, or every value the same (no spread is no certainty)."""
    if iv.low is None or iv.high is None:
        return f"(n={iv.n})"
    if iv.collapsed:
        return f"(all {iv.n} equal: no spread)"
    return None


def fmt_interval(
    metric: Metric, iv: Interval, diff: bool = False, markup: bool = False, label: bool = False
) -> str:
    """``mean [low, high]``; ``mean (n=1)`` when there is no interval, ``mean (all 5 equal: no spread)``
    when every value was the same. ``label`` adds what the interval is (``95% CI, Wilson``); ``markup``
    gives HTML.

    >>> from sim.experiments.metrics import METRICS
    >>> from sim.experiments.stats import interval_for
    >>> fmt_interval(METRICS["recovery.recovered"], interval_for([1, 1, 1, 0], "proportion"), label=True)
    '75% of runs [30%, 95%] (95% CI, Wilson)'
    """
    show = fmt_diff if diff else fmt
    if iv.mean is None:
        return NONE
    note = _note(iv)
    shown = show(metric, iv.mean)
    if note is not None:
        return f'{shown} <span class="muted">{note}</span>' if markup else f"{shown} {note}"
    bounds = _bounds(metric, iv, diff)
    text = f'{shown} <span class="ci">{bounds}</span>' if markup else f"{shown} {bounds}"
    if label:
        text += f' <span class="muted">({ci_label(iv)})</span>' if markup else f" ({ci_label(iv)})"
    return text


def verdict_mark(v: Verdict | None) -> str:
    """A verdict in a table: ``*``, ``(n.s.)``, ``(not enough replications: 2 of 6)``."""
    if v is None:
        return ""
    if v.status == "not enough replications":
        return f"(not enough replications: {v.n} of {v.needed})"
    return "*" if v.significant else "(n.s.)"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_replications(reps: Replications, where: str = "") -> str:
    """The one-screen summary of replications: each metric's mean and interval."""
    head = (
        f"{printable(reps.scenario.name)}  ({format_count(reps.n, 'replication')}, root seed {reps.root_seed}, "
        f"engine {reps.scenario.engine}{', ' + printable(where) if where else ''})"
    )
    rows = [["metric", "mean", f"{format_percent(reps.confidence, decimals=0)} interval", "method"]]
    for m in reps.metrics:
        if m.domain is None:
            continue
        iv = reps.intervals[m.name]
        note = _note(iv)
        rows.append([metric_title(m), fmt(m, iv.mean), note or _bounds(m, iv, False), "" if note else iv.method])
    lines = [head, *_table(rows)]
    if reps.stopped:
        lines.append(f"  stopped       {reps.stopped}")
    return "\n".join(lines)


def shared_faults_text(cmp: Comparison) -> str:
    """Which faults the layouts share by id (replication i of each draws them alike: common random
    numbers pair them) and which each has alone.
    """
    common, own = cmp.shared_faults()
    alone = {name: ids for name, ids in own.items() if ids}
    if not common and not any(own.values()):
        return "no faults in any layout"
    text = (f"the same in every layout: {', '.join(printable(f) for f in common)} (paired by fault id)" if common
            else "no fault shared by id: the layouts' failures are drawn independently, not paired")
    if alone:
        text += "".join(f"; only in {printable(n)}: {', '.join(printable(f) for f in ids)}" for n, ids in alone.items())
    return text


def format_comparison(cmp: Comparison) -> str:
    """Winners per metric, with the paired difference to the runner-up."""
    names = {n: printable(n) for n in cmp.layouts}
    lines = [
        f"{' vs '.join(names.values())}  ({format_count(cmp.replications, 'replication')} each, root seed "
        f"{cmp.root_seed})",
        f"  failures      {shared_faults_text(cmp)}",
    ]
    rows = [["metric", *names.values(), "wins", "winner − runner-up"]]
    for m in cmp.metrics:
        if m.domain is None:
            continue
        w = cmp.winners[m.name]
        cells = [fmt(m, cmp.intervals[n][m.name].mean) for n in cmp.layouts]
        if m.better is None:
            wins, diff = "", ""
        elif w.layout is None:
            wins, diff = "tie", ""
        else:
            wins = f"{names[w.layout]} {verdict_mark(w.verdict)}"
            diff = fmt_interval(m, w.difference, diff=True) if w.difference else ""
        rows.append([metric_title(m), *cells, wins, diff])
    lines += _table(rows)
    pct = format_percent(cmp.confidence)
    lines.append(
        f"  * significant: the paired {pct} interval of the difference (paired t) excludes zero, or every pair "
        "differs alike (sign test); n.s.: not"
    )
    lines.append(
        f"  a verdict needs at least {min_replications(cmp.confidence)} replications (with fewer, no test that "
        f"does not assume normal differences can reach {pct})"
    )
    for name, rep in cmp.capacity.items():
        lost = [printable(x.lost[0]) for x in rep.losses if not x.absorbed]
        verdict = (
            "every datacenter's users can be absorbed"
            if not lost
            else f"cannot absorb the loss of {', '.join(lost)}"
        )
        lines.append(
            f"  capacity      {printable(name)}: {verdict} (N+1 {'yes' if rep.n_plus_1 else 'no'}, "
            f"N+2 {'yes' if rep.n_plus_2 else 'no'})"
        )
    return "\n".join(lines)


def format_sweep(result: SweepResult | None, sweep: Sweep) -> str:
    """What a sweep is (and, once run, its best and worst points on its first metric)."""
    params = ", ".join(
        printable(f"{p.path} ({len(p.levels)} values)" if sweep.design == "grid" else p.path)
        for p in sweep.parameters
    )
    lines = [
        f"{printable(sweep.name)}  ({sweep.design} design over {params}; {format_count(len(sweep.points), 'point')}"
        f" × {format_count(sweep.replications, 'replication')} = {format_count(sweep.runs, 'run')}; base "
        f"{printable(sweep.base_file.name)})"
    ]
    if result is None:
        return "\n".join(lines)
    first = next((m for m in sweep.metrics if m.domain is not None), None)
    if first is not None:
        scored = [
            (result.intervals[p.index][first.name], p)
            for p in sweep.points
            if result.intervals[p.index][first.name].mean is not None
        ]
        if scored:
            sign = -1.0 if first.better == "lower" else 1.0
            scored.sort(key=lambda t: sign * float(t[0].mean or 0.0))
            for label, (iv, p) in (("worst", scored[0]), ("best", scored[-1])):
                shown = fmt_interval(first, iv, label=True)
                lines.append(f"  {label:<5} {metric_title(first)} {shown} at {printable(p.label())}")
    return "\n".join(lines)
