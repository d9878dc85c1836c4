"""Numbers with their intervals as people read them, and the terminal summaries of experiments.

Names and values from the files are shown with :func:`~sim.errors.printable`: no control character of
theirs reaches the terminal.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.errors import printable
from sim.experiments.metrics import Metric
from sim.experiments.stats import Interval, Verdict, min_replications

if TYPE_CHECKING:
    from sim.experiments.compare import Comparison
    from sim.experiments.replicate import Replications
    from sim.experiments.sweep import Sweep, SweepResult

__all__ = [
    "fmt",
    "fmt_diff",
    "fmt_interval",
    "ci_label",
    "verdict_mark",
    "format_replications",
    "format_comparison",
    "format_sweep",
]


def _pct(a: float) -> str:
    """Availability with enough decimals to show its nines (never rounded up to 100%)."""
    if a >= 1.0:
        return "100%"
    decimals = max(1, min(6, math.ceil(-math.log10(max(1.0 - a, 1e-12)))))
    text = f"{a * 100:.{decimals}f}"
    while text.startswith("100") and decimals < 9:
        decimals += 1
        text = f"{a * 100:.{decimals}f}"
    return text + "%"


def _seconds(x: float) -> str:
    if x == 0:
        return "0 s"
    if abs(x) < 1:
        return f"{x * 1000:.3g} ms"
    if abs(x) < 120:
        return f"{x:.3g} s"
    if abs(x) < 7200:
        return f"{x / 60:.3g} min"
    return f"{x / 3600:.3g} h"


def fmt(metric: Metric, value: float | None) -> str:
    """A metric's value: ``99.95%``, ``231 ms``, ``4.00 min``, ``62% of runs``, ``1.021×``.

    >>> from sim.experiments.metrics import METRICS
    >>> fmt(METRICS["availability"], 0.99951), fmt(METRICS["recovery.recovered"], 0.5)
    ('99.9510%', '50% of runs')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    unit = metric.unit
    if unit == "percent":
        return _pct(value) if 0 <= value <= 1 else f"{value * 100:.4g}%"
    if unit == "seconds":
        return _seconds(value)
    if unit == "minutes":
        return f"{value:,.2f} min"
    if unit == "flag":
        return f"{value * 100:.0f}% of runs"
    if unit == "ratio":
        return f"{value:.3f}×"
    if unit == "count":
        return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"
    return f"{value:.4g}"


def fmt_diff(metric: Metric, value: float | None) -> str:
    """A difference, signed, in the metric's unit (percentage points for shares)."""
    if value is None:
        return "—"
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    v = abs(value)
    if metric.unit == "percent":
        return f"{sign}{v * 100:.4g} pp"
    if metric.unit == "flag":
        return f"{sign}{v * 100:.0f} pp of runs"
    if metric.unit == "seconds":
        return sign + _seconds(v)
    if metric.unit == "minutes":
        return f"{sign}{v:,.2f} min"
    if metric.unit == "ratio":
        return f"{sign}{v:.3f}×"
    return f"{sign}{v:,.4g}"


def ci_label(iv: Interval) -> str:
    """What an interval is, for a reader: ``95% CI, Wilson``.

    >>> from sim.experiments.stats import interval_for
    >>> ci_label(interval_for([True, False], "proportion"))
    '95% CI, Wilson'
    """
    return f"{iv.confidence * 100:.4g}% CI, {iv.method}"


def _bounds(metric: Metric, iv: Interval, diff: bool) -> str:
    """``[low, high]`` (a share of runs without repeating "of runs")."""
    if diff:
        return f"[{fmt_diff(metric, iv.low)}, {fmt_diff(metric, iv.high)}]"
    if metric.unit == "flag" and iv.low is not None and iv.high is not None:
        return f"[{iv.low * 100:.0f}%, {iv.high * 100:.0f}%]"
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
        return "—"
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
        f"{printable(reps.scenario.name)}  ({reps.n} replications, root seed {reps.root_seed}, engine "
        f"{reps.scenario.engine}{', ' + printable(where) if where else ''})"
    )
    rows = [["metric", "mean", f"{reps.confidence * 100:.0f}% interval", "method"]]
    for m in reps.metrics:
        if m.domain is None:
            continue
        iv = reps.intervals[m.name]
        note = _note(iv)
        rows.append([m.name, fmt(m, iv.mean), note or _bounds(m, iv, False), "" if note else iv.method])
    lines = [head, *_table(rows)]
    if reps.stopped:
        lines.append(f"  stopped       {reps.stopped}")
    return "\n".join(lines)


def format_comparison(cmp: Comparison) -> str:
    """Winners per metric, with the paired difference to the runner-up."""
    names = {n: printable(n) for n in cmp.layouts}
    lines = [
        f"{' vs '.join(names.values())}  ({cmp.replications} replications each, root seed {cmp.root_seed}, "
        "same failures in every layout)"
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
        rows.append([m.name, *cells, wins, diff])
    lines += _table(rows)
    pct = f"{cmp.confidence * 100:.4g}%"
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
        f"{printable(sweep.name)}  ({sweep.design} design over {params}; {len(sweep.points)} points × "
        f"{sweep.replications} replications = {sweep.runs} runs; base {printable(sweep.base_file.name)})"
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
                lines.append(f"  {label:<5} {first.name} {shown} at {printable(p.label())}")
    return "\n".join(lines)
