"""The replications, comparison, sweep and capacity reports: self-contained HTML pages with every number's
interval (the capacity report's numbers come from the scenario alone: they have none).

Built from the experiment's rows and intervals only, in the frame every report shares
(:mod:`sim.report.page`: plotly.js once, each figure a JSON block, names escaped) and its visual language
(:mod:`sim.report.style`: green is good on every colour scale; :func:`colorscale` decides which way a
metric's scale runs, from the metric). Each page opens with its finding, one paragraph of what the numbers
support (:mod:`sim.experiments.findings`). Numbers go through the formatters of :mod:`sim.units` (via
:mod:`sim.experiments.text` for metrics); metrics and parameters are named in words with their units
(:func:`_axis`, :class:`~sim.experiments.findings.Axis`). Figures are written as plotly JSON (plain dicts), so
this module does not import plotly. Every name and value from the files goes into a figure through
:func:`_plain`.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.experiments.findings import (
    Axis,
    capacity_finding,
    comparison_finding,
    parameter_unit,
    parameter_words,
    replications_finding,
    rerun_command,
    sweep_finding,
    weakest_datacenter,
    worst_runs,
)
from sim.experiments.metrics import Metric
from sim.experiments.stats import Interval, min_replications
from sim.experiments.text import ci_label, fmt, fmt_interval, metric_title, quantity, seconds_of, verdict_mark
from sim.report.files import to_json, write_files
from sim.report.folders import check_output_folder
from sim.report.page import figure_section, plotly_page, table
from sim.report.style import FONT, MISSING, SERIES_COLORS, good_bad_scale
from sim.units import (
    NONE,
    format_clock,
    format_count,
    format_number,
    format_percent,
    format_rate,
    format_span,
    span_unit,
)
from sim.version import VERSION

if TYPE_CHECKING:
    from sim.experiments.capacity import CapacityReport, Loss
    from sim.experiments.compare import Comparison
    from sim.experiments.replicate import Replications
    from sim.experiments.sweep import Parameter, SweepResult

__all__ = [
    "render_replications",
    "render_comparison",
    "render_sweep",
    "replications_files",
    "replications_data",
    "write_replications_report",
    "write_comparison_report",
    "write_sweep_report",
    "render_capacity",
    "capacity_data",
    "capacity_files",
    "write_capacity_report",
    "colorscale",
    "parameter_unit",
    "parameter_words",
    "Axis",
]

MAX_BINS = 8  # a numeric axis with more distinct values is binned (sampled designs)


# ------------------------------------------------------------------------------------------ formatting


def _axis(metric: Metric, values: Iterable[float | None] = ()) -> tuple[float, str]:
    """The factor that puts a metric's values on a readable axis, and the axis title: the metric in words
    with its unit (``time to recover (min)``, ``latency p99 (ms)``, ``availability (%)``).
    """
    kind = quantity(metric)
    if kind == "percent":
        factor, unit = 100.0, "%"
    elif kind == "share":
        factor, unit = 100.0, "% of runs"
    elif kind == "latency":
        factor, unit = 1000.0, "ms"
    elif kind == "span":
        scale = seconds_of(metric)
        largest = max((abs(v) * scale for v in values if v is not None), default=scale)
        unit, size = span_unit(largest)
        factor = scale / size
    elif kind == "ratio":
        factor, unit = 1.0, "×"
    else:
        factor, unit = 1.0, ""
    return factor, _plain(f"{metric_title(metric)} ({unit})" if unit else metric_title(metric))


def colorscale(metric: Metric) -> list[list[float | str]]:
    """The colour scale of a metric: the one place that decides which way it runs. Green where the metric
    is good — high availability, low downtime, latency and time to recover — red where it is bad, as on
    the run report (:func:`sim.report.style.good_bad_scale`); a metric that is neither (``better`` is
    ``None``) gets a neutral scale.
    """
    return good_bad_scale(metric.better)


def _plain(value: Any) -> str:
    """``value`` as text in a figure. plotly draws ``<a href>``, ``<b>`` and ``<br>`` in trace names, ticks,
    titles and hover text; written as entities (which plotly shows as the characters) they are only text.
    Quotes stay: outside a tag they are harmless, and plotly would show ``&quot;`` as it is.

    >>> _plain('<a href="javascript:alert(1)">x</a> & <b>')
    '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt; &amp; &lt;b&gt;'
    """
    return html.escape(str(value), quote=False)


# ------------------------------------------------------------------------------------------ page


def _layout(height: int = 360, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 70, "r": 24, "t": 36, "b": 56},
        "font": {"family": FONT, "size": 12, "color": "#24292f"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 11}},
        "xaxis": {"gridcolor": "#eaeef2", "zeroline": False, "automargin": True},
        "yaxis": {"gridcolor": "#eaeef2", "zeroline": False, "automargin": True},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


_CSS = (
    ".ci { color: var(--muted); font-size: 12px; white-space: nowrap; }\n"
    "td .ci, td.num > .muted { display: block; } th { white-space: normal; min-width: 6em; }\n"
    "#points td.num, #points .ci { white-space: normal; }\n"
    "td.win { font-weight: 650; } .sig { color: var(--good); } .nosig { color: var(--muted); }\n"
    ".bad { color: var(--bad); font-weight: 600; }\n"
    "#finding { margin: 18px 0 0; padding: 10px 16px; border: 1px solid var(--line); border-left: 4px solid "
    "#0969da; border-radius: 6px; background: var(--bg); max-width: 110ch; overflow-wrap: anywhere; }\n"
    "#finding p { margin: 0; } code { overflow-wrap: anywhere; }\n"
)
_INTERVALS = (
    "Intervals are two-sided 95% confidence intervals over replications, each within what its metric can "
    "be: Wilson score intervals for shares of runs (recovered, SLO met), an expanded percentile bootstrap for "
    "availability, durations and counts from 8 replications on (Student t clipped to the metric's range "
    "below 8)"
)
_COMPARISON_FOOTER = (
    f"Generated by cascadesim. Self-contained: works offline. {_INTERVALS}, paired t for differences between "
    "layouts, which are paired by replication (common random numbers). Each table and figure says which. "
    "Every row is in the results store next to this file (Parquet; load it with sim.load_results)."
)
_REPLICATIONS_FOOTER = (
    f"Generated by cascadesim. Self-contained: works offline. {_INTERVALS}. Each table and figure says which. "
    "Replication i runs with the seed SeedSequence(root seed, spawn_key=(i,)), shown beside it: cascadesim run "
    "with that --seed reruns it alone. When the command wrote a results store, every replication is a row of "
    "runs/ next to this file (Parquet; load it with sim.load_results)."
)
_SWEEP_FOOTER = (
    f"Generated by cascadesim. Self-contained: works offline. {_INTERVALS}; a cell of a heatmap pools the "
    "replications of every point that falls in it. Each table and figure says which. Every run is a row of "
    "the results store in runs/ (Parquet; load it with sim.load_results)."
)


def _methods(ivs: Iterable[Interval]) -> str:
    """What the intervals are, once for all: ``95% CI, bootstrap`` (``95% CI, Student t / bootstrap`` when
    they differ, e.g. by the number of values). Empty when there is no interval.
    """
    shown = [iv for iv in ivs if iv.low is not None and iv.high is not None]
    if not shown:
        return ""
    methods = " / ".join(dict.fromkeys(iv.method for iv in shown))
    return f"{format_percent(shown[0].confidence)} CI, {methods}"


def _page(title: str, header: str, sections: list[str], figures: dict[str, dict[str, Any]], footer: str) -> str:
    return plotly_page(title, header + "\n" + "".join(sections), figures, css=_CSS, footer=footer)


def _header(title: str, subtitle: str, meta: list[str]) -> str:
    return (
        f'<header><h1><span class="muted">cascadesim ·</span> {html.escape(title)}</h1>'
        f'<p class="description">{html.escape(subtitle)}</p>'
        f'<p class="meta">{" · ".join(html.escape(m) for m in meta)}</p></header>'
    )


def _finding(text: str) -> str:
    """The page's finding (:mod:`sim.experiments.findings`), first under the header."""
    return f'<section id="finding"><p><strong>Finding.</strong> {html.escape(text)}</p></section>'


def _write(directory: Path, kind: str, files: Callable[[], dict[str, str]]) -> Path:
    """Write ``files()`` into ``directory``, all or nothing, if it is new, empty or ``kind`` output (checked
    before they are rendered). Raises :class:`sim.report.folders.OutputError` otherwise, or when writing fails.
    """
    check_output_folder(directory, kind)
    return write_files(directory, files())


# ------------------------------------------------------------------------------------------ replications


def render_replications(reps: Replications) -> str:
    """The replications page: the finding, each metric's interval and range, the distributions of
    availability and downtime over the replications, and the worst replications with the seed to rerun them.
    """
    objective = reps.scenario.slo.availability
    meta = [
        format_count(reps.n, "replication"),
        f"root seed {reps.root_seed}",
        f"engine {reps.scenario.engine}",
        f"availability objective {format_percent(objective)}",
        f"cascadesim {VERSION}",
    ]
    subtitle = reps.scenario.description or f"Independent replications of {reps.scenario.name}, each with its own seed."
    header = _header(f"{reps.scenario.name}: replications", subtitle, meta)
    sections = [_finding(replications_finding(reps)), _intervals_table(reps)]
    figures: dict[str, dict[str, Any]] = {}
    by_name = {m.name: m for m in reps.metrics}
    captions = {
        "availability": "The colour says where each run is against the availability objective (green at or above "
        "it, red below, darker the further below).",
        "downtime_minutes": "Time below the SLO in each run: green none, red the most of these runs.",
    }
    for name in ("availability", "downtime_minutes"):
        if name not in reps.intervals:
            continue
        m = by_name[name]
        fid = f"fig-{_slug(name)}"
        figures[fid] = _strip_figure(reps, m, objective if name == "availability" else None)
        how = _methods([reps.intervals[name]])
        sections.append(
            figure_section(
                _capital(f"{metric_title(m)} over the replications"),
                fid,
                "Each dot is one replication (hover for its number and seed; the height only spreads them out); "
                f"the diamond is the mean with its interval ({how or 'none: too few replications'}). "
                + captions[name],
            )
        )
    sections.append(_worst_replications(reps))
    if reps.stopped:
        sections.append(f'<p class="caption">Stopped adding replications: {html.escape(reps.stopped)}.</p>')
    return _page(f"{reps.scenario.name} replications — cascadesim", header, sections, figures, _REPLICATIONS_FOOTER)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _intervals_table(reps: Replications) -> str:
    rows = []
    for m in reps.metrics:
        if m.domain is None:
            continue
        iv = reps.intervals[m.name]
        values: list[Any] = [r[m.name] for r in reps.rows if r.get(m.name) is not None]
        if m.unit == "flag":
            spread = f"true in {sum(bool(v) for v in values)} of {format_count(len(values), 'run')}"
        elif values and min(values) == max(values):
            spread = f"{fmt(m, values[0])} in every run"
        elif values:
            spread = f"{fmt(m, min(values))} – {fmt(m, max(values))}"
        else:
            spread = NONE
        missing = reps.n - len(values)
        note = f'<span class="sub">{format_count(missing, "run")} without a value</span>' if missing else ""
        method = iv.method if iv.low is not None and not iv.collapsed else ""
        rows.append(
            f"<tr><td>{_metric_cell(m)}</td><td class=\"num\">{fmt_interval(m, iv, markup=True)}</td>"
            f"<td>{html.escape(method)}</td><td class=\"num\">{html.escape(spread)}{note}</td></tr>"
        )
    pct = format_percent(reps.confidence)
    return (
        f'<section><h2>Every metric</h2><p class="caption">Mean over {format_count(reps.n, "replication")} with '
        f"its {pct} interval, by the method beside it; and the lowest and highest replication (a share of runs: how "
        "many runs it was true in).</p>"
        f"{table('intervals', ['Metric', f'Mean [{pct} interval]', 'Interval', 'Lowest – highest run'], rows)}"
        "</section>"
    )


def _strip_figure(reps: Replications, m: Metric, objective: float | None) -> dict[str, Any]:
    """One dot per replication along the metric's axis, coloured good to bad, with the mean and its interval
    (and the objective, for availability).
    """
    rows = [r for r in reps.rows if r.get(m.name) is not None]
    values = [float(r[m.name]) for r in rows]
    factor, title = _axis(m, values)
    low, high = min(values, default=0.0), max(values, default=0.0)
    if objective is not None:
        low, high = min(low, objective), max(high, objective)
        high = high if high > low else low + 1e-9
        scale = good_bad_scale("higher", cut=min(1.0, max(0.0, (objective - low) / (high - low))))
    else:
        low = 0.0 if m.domain in ("nonnegative", "bounded") else low
        high = high if high > low else low + 1.0
        scale = colorscale(m)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "one replication",
            "x": [v * factor for v in values],
            "y": [0.12 + 0.76 * ((i * 0.6180339887) % 1.0) for i in range(len(values))],
            "text": [f"replication {r['replication']} · seed {r['seed']}<br>{_plain(metric_title(m))} "
                     f"{_plain(fmt(m, r[m.name]))}" for r in rows],
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": 8, "color": values, "colorscale": scale, "cmin": low, "cmax": high,
                       "showscale": False, "line": {"width": 0.5, "color": "#57606a"}},
            "showlegend": True,
        }
    ]
    iv = reps.intervals[m.name]
    if iv.mean is not None:
        known = iv.low is not None and iv.high is not None
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": _plain(f"mean, {ci_label(iv)}") if known else "mean",
                "x": [iv.mean * factor],
                "y": [0.5],
                "text": [_plain(fmt_interval(m, iv, label=True))],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"symbol": "diamond", "size": 12, "color": "#24292f"},
                "error_x": {"type": "data", "symmetric": False, "array": [_half(iv, "high") * factor],
                            "arrayminus": [_half(iv, "low") * factor], "thickness": 2, "width": 8,
                            "color": "#24292f", "visible": known},
            }
        )
    if objective is not None:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": _plain(f"objective {format_percent(objective)}"),
                "x": [objective * factor, objective * factor],
                "y": [0.0, 1.0],
                "line": {"color": "#cf222e", "dash": "dash", "width": 1.5},
                "hoverinfo": "skip",
            }
        )
    layout = _layout(
        250,
        xaxis={"title": {"text": title}},
        yaxis={"range": [0, 1], "showticklabels": False, "showgrid": False, "fixedrange": True},
        margin={"l": 24, "r": 24, "t": 36, "b": 56},
    )
    return {"data": traces, "layout": layout}


def _worst_replications(reps: Replications, k: int = 5) -> str:
    by_name = {m.name: m for m in reps.metrics}
    cols = [c for c in ("availability", "downtime_minutes", "cascade_depth", "users_affected", "worst_fault")
            if c in by_name]
    rows = []
    for r in worst_runs(reps.rows, k):
        cells = "".join(f'<td class="num">{_cell(by_name[c], r.get(c))}</td>' for c in cols)
        rows.append(
            f'<tr><td class="num">{r["replication"]}</td><td class="num">{r["seed"]}</td>{cells}'
            f"<td><code>{html.escape(rerun_command(r))}</code></td></tr>"
        )
    headers = ["Replication", "Seed", *(metric_title(by_name[c]) for c in cols), "Rerun it alone"]
    return (
        '<section><h2>Worst replications</h2><p class="caption">The replications with the most downtime (then '
        "the lowest availability). Each ran with its own seed, drawn from the root seed; the command beside it, "
        f"with SCENARIO the file of scenario {html.escape(reps.scenario.name)}, reruns that replication alone "
        "with its full report (the engine it ran on included).</p>"
        f"{table('worst', headers, rows)}</section>"
    )


def replications_data(reps: Replications) -> dict[str, Any]:
    """Plain data for ``replications.json``: the intervals (as ``intervals.json``), the objective, the
    finding, and the worst replications with their seeds and the command that reruns each.
    """
    names = [m.name for m in reps.metrics]
    return {
        **reps.summary(),
        "engine": reps.scenario.engine,
        "objective": {"availability": reps.scenario.slo.availability},
        "finding": replications_finding(reps),
        "worst_runs": [
            {"replication": r["replication"], "seed": r["seed"], "rerun": rerun_command(r),
             **{n: r.get(n) for n in names}}
            for r in worst_runs(reps.rows)
        ],
    }


def replications_files(reps: Replications) -> dict[str, str]:
    """The report's files, rendered in memory: ``replications.json``, ``report.html``, and ``intervals.json``
    (the intervals alone, as earlier versions wrote them: the record that marks the folder as replications').
    """
    return {
        "intervals.json": to_json(reps.summary()),
        "replications.json": to_json(replications_data(reps)),
        "report.html": render_replications(reps),
    }


def write_replications_report(reps: Replications, directory: Path) -> Path:
    """Write ``replications.json``, ``report.html`` and ``intervals.json`` into ``directory`` (all or none)."""
    return _write(directory, "replications", lambda: replications_files(reps))


# ------------------------------------------------------------------------------------------ comparison


def render_comparison(cmp: Comparison) -> str:
    """The comparison page: verdicts, differences, distributions, downtime per year, worst runs, capacity."""
    common, own = cmp.shared_faults()
    numeric = [m for m in cmp.metrics if m.domain is not None]
    meta = [
        f"{len(cmp.layouts)} layouts",
        f"{format_count(cmp.replications, 'replication')} each",
        f"root seed {cmp.root_seed}",
        f"baseline {cmp.baseline}",
        f"cascadesim {VERSION}",
    ]
    crn = (
        f"The same failures hit every layout: faults {', '.join(common)} draw from the same random "
        "streams in "
        "each replication."
        if common
        else "The layouts share no fault ids, so their failures are not matched."
    )
    extra = "; ".join(f"only in {n}: {', '.join(f)}" for n, f in own.items() if f)
    header = _header(
        "layout comparison", f"{' vs '.join(cmp.layouts)}. {crn}" + (f" ({extra})" if extra else ""), meta
    )
    sections = [_finding(comparison_finding(cmp)), _verdict_table(cmp, numeric), _differences_table(cmp, numeric)]
    figures: dict[str, dict[str, Any]] = {}
    if any(m.name == "availability" for m in cmp.metrics):
        figures["fig-availability"] = _distribution_figure(cmp, "availability")
        how = _methods(cmp.intervals[n]["availability"] for n in cmp.layouts)
        sections.append(
            figure_section(
                "Availability per replication",
                "fig-availability",
                "Each dot is one replication; boxes show the quartiles, the diamond the mean with its "
                f"interval ({how or 'none: too few replications'}). "
                + ("Replication i of every layout saw the same failures of the faults they share."
                   if common else "The layouts share no fault ids: replication i of each saw failures of its own."),
            )
        )
    if any(m.name == "downtime_minutes" for m in cmp.metrics):
        figures["fig-downtime"] = _downtime_figure(cmp)
        how = _methods(cmp.downtime_per_year(n) for n in cmp.layouts)
        sections.append(
            figure_section(
                "Downtime per year",
                "fig-downtime",
                "Time below the SLO, scaled from the run's length to a year, with their intervals "
                f"({how or 'none: too few replications'}; never below zero). "
                "Meaningful when the scenario is a typical slice of time (random faults with mtbf/mttr); "
                "a scripted outage is not.",
            )
        )
    figures["fig-differences"] = _differences_figure(cmp, numeric)
    sections.append(
        figure_section(
            f"Differences from {cmp.baseline}",
            "fig-differences",
            "Each layout minus the baseline, paired by replication, in units of the baseline's own spread "
            "(difference / baseline standard deviation) so metrics share an axis; bars are 95% paired t "
            "intervals. "
            "Right of "
            "zero is more, not necessarily better: see the table for which way each metric is better.",
        )
    )
    sections.append(_worst_runs(cmp))
    sections.append(_capacity_section(cmp.capacity))
    return _page(f"{' vs '.join(cmp.layouts)} — cascadesim comparison", header, sections, figures,
                 _COMPARISON_FOOTER)


def _verdict_table(cmp: Comparison, metrics: list[Metric]) -> str:
    rows = []
    for m in metrics:
        w = cmp.winners[m.name]
        cells = []
        for name in cmp.layouts:
            cls = ' class="num win"' if w.layout == name and w.significant else ' class="num"'
            cells.append(f"<td{cls}>{fmt_interval(m, cmp.intervals[name][m.name], markup=True)}</td>")
        if m.better is None:
            verdict, diff = '<span class="muted">—</span>', ""
        elif w.layout is None or w.verdict is None:
            verdict, diff = "tie", ""
        else:
            v = w.verdict
            mark = (
                f'<span class="sig">significant, {html.escape(v.test)}</span>'
                if v.significant
                else f'<span class="nosig">{html.escape(v.text)}</span>'
            )
            verdict = f"{html.escape(w.layout)} ({mark})"
            diff = fmt_interval(m, w.difference, diff=True, markup=True) if w.difference else ""
        arrow = {"higher": "↑", "lower": "↓"}.get(m.better or "", "")
        how = _methods(cmp.intervals[n][m.name] for n in cmp.layouts)
        method = f'<span class="sub method">{html.escape(how)}</span>' if how else ""
        rows.append(
            f"<tr><td>{_metric_cell(m, arrow)}{method}</td>{''.join(cells)}"
            f'<td>{verdict}</td><td class="num">{diff}</td></tr>'
        )
    headers = ["Metric", *cmp.layouts, "Wins", "Winner − runner-up (95% CI, paired t)"]
    return (
        f'<section><h2>Which layout wins</h2><p class="caption">Mean and 95% interval per layout over '
        f"{format_count(cmp.replications, 'replication')}, by the method under each metric's name; ↑ higher is "
        "better, ↓ "
        "lower is better. A win is significant when the paired interval of the difference to the runner-up "
        "excludes zero, or every pair differs alike (sign test); a verdict needs at least "
        f"{min_replications(cmp.confidence)} replications.</p>"
        f"{table('verdicts', headers, rows)}</section>"
    )


def _differences_table(cmp: Comparison, metrics: list[Metric]) -> str:
    if len(cmp.layouts) < 2:
        return ""
    rows = []
    for m in metrics:
        cells = []
        for name in cmp.layouts[1:]:
            iv = cmp.differences[name][m.name]
            v = cmp.verdicts[name][m.name]
            sig = v.significant
            better = None
            if sig and m.better is not None and iv.mean is not None:
                better = (iv.mean > 0) == (m.better == "higher")
            tag = (
                f' <span class="nosig">{html.escape(verdict_mark(v))}</span>'
                if v.status == "not enough replications"
                else ""
                if not sig
                else (
                    ' <span class="sig">better</span>'
                    if better
                    else ' <span class="bad">worse</span>'
                    if better is False
                    else " *"
                )
            )
            cells.append(f'<td class="num">{fmt_interval(m, iv, diff=True, markup=True)}{tag}</td>')
        rows.append(f"<tr><td>{_metric_cell(m)}</td>{''.join(cells)}</tr>")
    headers = ["Metric", *(f"{n} − {cmp.baseline}" for n in cmp.layouts[1:])]
    return (
        f"<section><h2>Paired differences from {html.escape(cmp.baseline)}</h2>"
        '<p class="caption">Mean of the '
        "per-replication differences with its 95% interval (paired t); marked where the difference is "
        "significant: the interval excludes zero, or every pair differs alike (sign test), on at least "
        f"{min_replications(cmp.confidence)} replications.</p>"
        f"{table('differences', headers, rows)}</section>"
    )


def _distribution_figure(cmp: Comparison, metric: str) -> dict[str, Any]:
    traces = []
    for i, name in enumerate(cmp.layouts):
        values = [None if v is None else v * 100 for v in cmp.values(name, metric)]
        iv = cmp.intervals[name][metric]
        traces.append(
            {
                "type": "box",
                "name": _plain(name),
                "y": values,
                "boxpoints": "all",
                "jitter": 0.35,
                "pointpos": 0,
                "marker": {"color": SERIES_COLORS[i % len(SERIES_COLORS)], "size": 5},
                "line": {"width": 1},
                "fillcolor": "rgba(0,0,0,0)",
                "hoverinfo": "y",
                "showlegend": False,
            }
        )
        if iv.mean is not None:
            err = (
                {
                    "type": "data",
                    "symmetric": False,
                    "array": [(iv.high - iv.mean) * 100],
                    "arrayminus": [(iv.mean - iv.low) * 100],
                }
                if iv.low is not None and iv.high is not None
                else {"visible": False}
            )
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [_plain(name)],
                    "y": [iv.mean * 100],
                    "error_y": {**err, "thickness": 2, "width": 10, "color": "#24292f"},
                    "marker": {"symbol": "diamond", "size": 10, "color": "#24292f"},
                    "name": _plain(f"mean, {ci_label(iv)}") if iv.low is not None else "mean",
                    "showlegend": i == 0,
                }
            )
    return {"data": traces, "layout": _layout(380, yaxis={"title": {"text": "availability (%)"}})}


def _downtime_figure(cmp: Comparison) -> dict[str, Any]:
    ivs = [cmp.downtime_per_year(n) for n in cmp.layouts]
    unit, size = span_unit(max((iv.high or iv.mean or 0.0 for iv in ivs), default=0.0) * 60)
    scale = 60 / size  # minutes to the axis' unit

    def on_axis(x: float | None) -> float | None:
        return None if x is None else x * scale

    means = [on_axis(iv.mean) for iv in ivs]
    plus = [(iv.high - iv.mean) * scale if iv.high is not None and iv.mean is not None else 0 for iv in ivs]
    minus = [(iv.mean - iv.low) * scale if iv.low is not None and iv.mean is not None else 0 for iv in ivs]
    # Each bar's value under its name (not on the bar, where the interval's whisker would cross it).
    names = [f"{_plain(n)}<br>{format_span(iv.mean * 60) if iv.mean is not None else NONE} a year"
             for n, iv in zip(cmp.layouts, ivs, strict=True)]
    trace = {
        "type": "bar",
        "x": names,
        "y": means,
        "marker": {"color": [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(cmp.layouts))]},
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": plus,
            "arrayminus": minus,
            "thickness": 1.5,
            "color": "#24292f",
        },
        "hovertemplate": "%{x}<extra></extra>",
        "showlegend": False,
    }
    return {
        "data": [trace],
        "layout": _layout(
            340, yaxis={"title": {"text": f"downtime below the SLO per year ({unit})"}, "rangemode": "tozero"}
        ),
    }


def _differences_figure(cmp: Comparison, metrics: list[Metric]) -> dict[str, Any]:
    traces = []
    labels = [_plain(metric_title(m)) for m in metrics]
    for i, name in enumerate(cmp.layouts[1:], start=1):
        xs, lo, hi = [], [], []
        for m in metrics:
            iv = cmp.differences[name][m.name]
            sd = cmp.intervals[cmp.baseline][m.name].std or cmp.intervals[name][m.name].std or 0.0
            if iv.mean is None or not sd:
                xs.append(None if iv.mean is None else 0.0)
                lo.append(0.0)
                hi.append(0.0)
                continue
            xs.append(iv.mean / sd)
            lo.append((iv.mean - iv.low) / sd if iv.low is not None else 0.0)
            hi.append((iv.high - iv.mean) / sd if iv.high is not None else 0.0)
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": _plain(f"{name} − {cmp.baseline}"),
                "x": xs,
                "y": labels,
                "marker": {"size": 9, "color": SERIES_COLORS[i % len(SERIES_COLORS)]},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": hi,
                    "arrayminus": lo,
                    "thickness": 1.5,
                },
            }
        )
    layout = _layout(
        max(260, 28 * len(labels) + 90),
        xaxis={"title": {"text": "difference / baseline std"}, "zeroline": True, "zerolinecolor": "#57606a"},
        yaxis={"autorange": "reversed"},
    )
    return {"data": traces, "layout": layout}


def _worst_runs(cmp: Comparison) -> str:
    cols = [
        c
        for c in ("availability", "downtime_minutes", "cascade_depth", "users_affected", "worst_fault")
        if any(m.name == c for m in cmp.metrics)
    ]
    by_name = {m.name: m for m in cmp.metrics}
    blocks = []
    for name in cmp.layouts:
        rows = []
        for r in cmp.worst_runs(name):
            cells = "".join(f'<td class="num">{_cell(by_name[c], r.get(c))}</td>' for c in cols)
            rows.append(
                f'<tr><td class="num">{r["replication"]}</td><td class="num">{r["seed"]}</td>{cells}</tr>'
            )
        blocks.append(
            f"<h3>{html.escape(name)}</h3>"
            + table(f"worst-{_slug(name)}", ["Replication", "Seed", *(metric_title(by_name[c]) for c in cols)], rows)
        )
    return (
        f'<section><h2>Worst cascades</h2><p class="caption">The replications with the most downtime in each '
        "layout. Re-run one with <code>cascadesim run LAYOUT --seed SEED</code> for its full report.</p>"
        f"{''.join(blocks)}</section>"
    )


def _cell(metric: Metric, value: Any) -> str:
    return html.escape(str(value or NONE)) if metric.domain is None else fmt(metric, value)


def _metric_cell(m: Metric, arrow: str = "") -> str:
    """A metric in a table: its name in words (and which way is better), under it the name experiment files
    and ``--metrics`` use.
    """
    title = metric_title(m)
    mark = f' <span class="muted">{arrow}</span>' if arrow else ""
    return html.escape(title) + mark + (f'<span class="sub">{html.escape(m.name)}</span>' if title != m.name else "")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def _capacity_section(caps: dict[str, CapacityReport]) -> str:
    if not caps:
        return ""
    blocks = []
    for name, rep in caps.items():
        rows = []
        for loss in rep.losses:
            dc = loss.lost[0]
            need = rep.needed[dc]
            verdict = "yes" if loss.absorbed else '<span class="bad">no</span>'
            n1, n2 = need["n_plus_1"], need["n_plus_2"]
            rows.append(
                f'<tr><td>{html.escape(dc)}</td><td class="num">{format_count(need["workers"])}</td>'
                f'<td class="num">{format_rate(rep.capacity[dc])}</td>'
                f'<td class="num">{format_percent(need["utilisation"], decimals=1)}</td>'
                f"<td>{verdict}</td><td>{html.escape(_loss_detail(loss))}</td>"
                f'<td class="num">{_need(n1)}</td><td class="num">{_need(n2)}</td></tr>'
            )
        h1, h2 = rep.headroom(1), rep.headroom(2)
        summary = (
            f"N+1 {'yes' if rep.n_plus_1 else 'no'}"
            + ("" if rep.n_plus_1 else f" ({'impossible' if h1 is None else f'needs +{format_percent(h1, 0)}'})")
            + f"; N+2 {'yes' if rep.n_plus_2 else 'no'}"
            + ("" if rep.n_plus_2 else f" ({'impossible' if h2 is None else f'needs +{format_percent(h2, 0)}'})")
        )
        blocks.append(
            f'<h3>{html.escape(name)} <span class="muted">· peak load {format_rate(sum(rep.load.values()))} at '
            f"{format_clock(rep.at)} · {html.escape(summary)}</span></h3>"
            + table(
                f"capacity-{_slug(name)}",
                [
                    "Datacenter",
                    "Workers",
                    "Capacity",
                    "Normal",
                    "If it fails, absorbed?",
                    "",
                    "N+1 needs",
                    "N+2 needs",
                ],
                rows,
            )
        )
    first = next(iter(caps.values()))
    return (
        '<section><h2>Capacity: can the others absorb a datacenter\'s users?</h2><p class="caption">At the '
        "scenario's peak load (its time since the start of the run): users move to their next nearest "
        f"datacenter, databases to their next copy; survivors may run at most "
        f"{format_percent(first.max_utilisation, 0)} utilised. N+1 / N+2 needs: servers each datacenter must "
        "have so that any one / two losses are absorbed. Counted, for each layout as for the first: "
        f"{html.escape('; '.join(first.assumptions))}.</p>{''.join(blocks)}</section>"
    )


def _loss_detail(loss: Loss) -> str:
    """What a datacenter's loss does, in a phrase: stranded regions or the busiest survivor, lost databases."""
    worst, u = loss.worst
    text = (f"stranded regions: {', '.join(loss.stranded)}" if loss.stranded
            else f"busiest survivor {worst} at {format_percent(u, decimals=1)}")
    if loss.unavailable_databases:
        text += f"; {format_count(loss.unavailable_databases, 'database')} lose every copy"
    return text


def _need(need: dict[str, Any]) -> str:
    return "ok" if need["extra_servers"] == 0 else f"+{format_count(need['extra_servers'], 'server')}"


def write_comparison_report(cmp: Comparison, directory: Path) -> Path:
    """Write ``comparison.json`` and ``report.html`` into ``directory`` (both or neither)."""
    return _write(
        directory,
        "compare",
        lambda: {"comparison.json": to_json(cmp.summary()), "report.html": render_comparison(cmp)},
    )


# ------------------------------------------------------------------------------------------ capacity

_CAPACITY_FOOTER = (
    "Generated by cascadesim. Self-contained: works offline. Worked out from the scenario alone, without a run "
    "(cascadesim capacity): no random draws, so no intervals. Utilisation is the requests a datacenter is "
    "offered over those its servers serve when busy. capacity.json next to this file holds every number."
)
MAX_PAIRS_SHOWN = 20  # losses of two datacenters drawn and listed; beyond, the worst of them


def render_capacity(report: CapacityReport) -> str:
    """The capacity page: the finding, the utilisation of every datacenter in every state (normal, each
    datacenter lost, each pair lost), what each datacenter needs for N+1 and N+2, what each loss does, the
    load at the peak, and what is counted and what is not.
    """
    limit = format_percent(report.max_utilisation, decimals=0)
    meta = [
        f"peak {format_rate(sum(report.load.values()))} at {format_clock(report.at)} into the run",
        f"survivors at most {limit} utilised",
        f"N+1 {'holds' if report.n_plus_1 else 'does not hold'}",
        f"N+2 {'holds' if report.n_plus_2 else 'does not hold'}",
        f"cascadesim {VERSION}",
    ]
    header = _header(f"{report.scenario}: capacity",
                     "Can the other datacenters absorb each one's users at the peak? Headroom for N+1 and N+2.", meta)
    pairs = _shown_pairs(report)
    more = len(report.pairs) - len(pairs)
    fid = "fig-utilisation"
    sections = [
        _finding(capacity_finding(report)),
        figure_section(
            "Utilisation at the peak, in every state",
            fid,
            f"Each row is a state of the datacenters (normal, one lost, two lost), each column a datacenter: "
            f"the requests it is offered over those its servers serve, surges and the objective's retries "
            f"counted. Green up to the {limit} limit, red beyond it, darker the further; a grey cell is a "
            "datacenter lost in that state."
            + (f" Of the {format_count(len(report.pairs))} pairs, the {len(pairs)} that load a survivor most "
               "are drawn." if more else ""),
        ),
        _capacity_datacenters(report),
        _capacity_losses("single", "If a datacenter fails", report.losses, report),
    ]
    if pairs:
        sections.append(_capacity_losses("pairs", "If two datacenters fail", pairs, report, more))
    sections += [_capacity_load(report), _capacity_counted(report)]
    figures = {fid: _utilisation_figure(report, pairs)}
    return _page(f"{report.scenario} capacity — cascadesim", header, sections, figures, _CAPACITY_FOOTER)


def _shown_pairs(report: CapacityReport) -> list[Loss]:
    """The pairs of datacenters lost that the page shows: all, or the :data:`MAX_PAIRS_SHOWN` that load
    a survivor most (those that strand users or databases first), in their order.
    """
    if len(report.pairs) <= MAX_PAIRS_SHOWN:
        return list(report.pairs)
    key = {id(p): (bool(p.stranded or p.unavailable_databases), p.worst[1] if p.utilisation else 0.0)
           for p in report.pairs}
    kept = {id(p) for p in sorted(report.pairs, key=lambda p: key[id(p)], reverse=True)[:MAX_PAIRS_SHOWN]}
    return [p for p in report.pairs if id(p) in kept]


def _state_name(loss: Loss) -> str:
    return "normal" if not loss.lost else "without " + " + ".join(loss.lost)


def _utilisation_figure(report: CapacityReport, pairs: list[Loss]) -> dict[str, Any]:
    """A heatmap: states (rows) × datacenters (columns), the utilisation in each cell."""
    dcs = list(report.workers)
    states = [report.normal, *report.losses, *pairs]
    values = [u for s in states for u in s.utilisation.values()]
    top = max([report.max_utilisation * 1.5, *values])
    z, text, gone = [], [], []
    for state in states:
        z.append([state.utilisation[d] * 100 if d in state.utilisation else None for d in dcs])
        text.append([format_percent(state.utilisation[d], decimals=1) if d in state.utilisation else "lost"
                     for d in dcs])
        gone.append([None if d in state.utilisation else 1.0 for d in dcs])
    x = [_plain(d) for d in dcs]
    y = [_plain(_state_name(s)) for s in states]
    data: list[dict[str, Any]] = [
        {
            "type": "heatmap", "x": x, "y": y, "z": z, "zmin": 0.0, "zmax": top * 100,
            "text": text, "texttemplate": "%{text}", "textfont": {"size": 12},
            "hovertemplate": "%{y}<br>%{x}: %{text} of its capacity<extra></extra>",
            "colorscale": good_bad_scale("lower", report.max_utilisation / top),
            "colorbar": {"title": {"text": "utilisation (%)", "side": "right"}, "thickness": 14},
            "xgap": 2, "ygap": 2,
        },
        {
            "type": "heatmap", "x": x, "y": y, "z": gone, "zmin": 0, "zmax": 1, "showscale": False,
            "colorscale": [[0.0, MISSING], [1.0, MISSING]], "hoverinfo": "skip", "xgap": 2, "ygap": 2,
            "name": "lost",
        },
    ]
    layout = _layout(
        max(260, 110 + 34 * len(states)),
        xaxis={"title": {"text": "datacenter"}, "type": "category", "side": "top"},
        yaxis={"type": "category", "autorange": "reversed"},
        margin={"t": 60},
    )
    return {"data": data, "layout": layout}


def _capacity_datacenters(report: CapacityReport) -> str:
    limit = report.max_utilisation
    weakest = weakest_datacenter(report)
    rows = []
    for dc, need in report.needed.items():
        n1, n2 = need["n_plus_1"], need["n_plus_2"]
        head = limit - n1["utilisation"]
        left = (f'<span class="bad">over by {format_percent(-head, decimals=1)}</span>' if head < 0
                else format_percent(head, decimals=1))
        mark = ' class="worst"' if weakest is not None and weakest[0] == dc else ""
        rows.append(
            f'<tr{mark}><td>{html.escape(dc)}</td><td class="num">{format_count(need["workers"])}</td>'
            f'<td class="num">{format_rate(report.capacity[dc])}</td>'
            f'<td class="num">{format_percent(need["utilisation"], decimals=1)}</td>'
            f'<td class="num">{format_percent(n1["utilisation"], decimals=1)}</td><td class="num">{left}</td>'
            f'<td class="num">{_capacity_need(n1, report.headroom(1) is not None)}</td>'
            f'<td class="num">{format_percent(n2["utilisation"], decimals=1)}</td>'
            f'<td class="num">{_capacity_need(n2, report.headroom(2) is not None)}</td></tr>'
        )
    headers = ["Datacenter", "Workers", "Capacity", "Normal", "Worst, one lost", "Headroom left", "N+1 needs",
               "Worst, two lost", "N+2 needs"]
    return (
        '<section id="datacenters"><h2>Datacenters</h2><p class="caption">Per datacenter: its workers, the '
        "requests of the mix it serves per second when busy (its capacity), its utilisation at the peak in "
        "the normal state and at worst after one or two datacenters are lost, the headroom left under the "
        f"{format_percent(limit, decimals=0)} limit after the worst single loss, and the servers it would need "
        "so that every such loss is absorbed (impossible: some loss leaves a region without a datacenter or a "
        "database without a copy, whatever the servers). The weakest datacenter is highlighted.</p>"
        f"{table('capacity-datacenters', headers, rows)}</section>"
    )


def _capacity_need(need: dict[str, Any], possible: bool) -> str:
    return "impossible" if not possible else _need(need)


def _capacity_losses(tid: str, title: str, losses: list[Loss], report: CapacityReport, more: int = 0) -> str:
    rows = []
    for loss in losses:
        verdict = "yes" if loss.absorbed else '<span class="bad">no</span>'
        normal = report.normal.routes
        moved = [f"{html.escape(r)} → {html.escape(d)}" for r, d in loss.routes.items()
                 if d is not None and d != normal.get(r)]
        rows.append(
            f"<tr><td>{html.escape(' + '.join(loss.lost))}</td><td>{verdict}</td>"
            f"<td>{html.escape(_loss_detail(loss))}</td><td>{', '.join(moved) or 'none'}</td></tr>"
        )
    caption = ("What each loss does at the peak: whether the survivors absorb it (every user has a datacenter "
               "and a mailbox, every survivor under the limit), the busiest survivor, and the regions whose "
               "users move to another datacenter (the others stay where they are).")
    if more:
        caption += f" {format_count(more, 'other pair')} load the survivors less and are in capacity.json."
    return (f'<section id="{tid}"><h2>{html.escape(title)}</h2><p class="caption">{html.escape(caption)}</p>'
            f"{table(f'capacity-{tid}', ['Lost', 'Absorbed?', 'What it does', 'Users moved'], rows)}</section>")


def _capacity_load(report: CapacityReport) -> str:
    rows = []
    for region, offered in report.load.items():
        surge = report.surges.get(region, 1.0)
        base = offered / surge / report.retries if surge and report.retries else offered
        rows.append(
            f"<tr><td>{html.escape(region)}</td><td class=\"num\">{format_rate(base)}</td>"
            f'<td class="num">×{format_number(surge)}</td><td class="num">×{report.retries:.4g}</td>'
            f'<td class="num">{format_rate(offered)}</td>'
            f"<td>{html.escape(report.normal.routes.get(region) or NONE)}</td></tr>"
        )
    headers = ["Region", "Requests at the peak", "Surges", "Retries at the objective", "Offered", "Served by"]
    return (
        '<section id="load"><h2>Load at the peak</h2><p class="caption">Per region, at '
        f"{format_clock(report.at)} into the run: its requests per second from its daily profile, times the "
        "traffic surges active then, times the client attempts per request when each fails as often as the "
        "availability objective allows; and the datacenter that serves it normally.</p>"
        f"{table('capacity-load', headers, rows)}</section>"
    )


def _capacity_counted(report: CapacityReport) -> str:
    items = "".join(f"<li>{html.escape(a)}</li>" for a in report.assumptions)
    return (f'<section id="counted"><h2>What is counted, and what is not</h2><ul class="caption">{items}</ul>'
            "</section>")


def capacity_data(report: CapacityReport) -> dict[str, Any]:
    """Plain data for ``capacity.json``: every figure of the report, its assumptions and its finding."""
    weakest = weakest_datacenter(report)
    return {
        **report.as_dict(),
        "finding": capacity_finding(report),
        "weakest": None if weakest is None else {
            "datacenter": weakest[0], "lost": weakest[1], "utilisation": weakest[2],
            "headroom": report.max_utilisation - weakest[2],
        },
    }


def capacity_files(report: CapacityReport) -> dict[str, str]:
    """The report's files, rendered in memory: ``capacity.json`` and ``report.html``."""
    return {"capacity.json": to_json(capacity_data(report)), "report.html": render_capacity(report)}


def write_capacity_report(report: CapacityReport, directory: Path) -> Path:
    """Write ``capacity.json`` and ``report.html`` into ``directory`` (both or neither)."""
    return _write(directory, "capacity", lambda: capacity_files(report))


# ------------------------------------------------------------------------------------------ sweep


def _levels(values: list[Any], numeric: bool) -> tuple[list[Any], Any]:
    """The axis values of a parameter and a function from a value to its axis value (bins when many)."""
    distinct = (
        sorted(set(values), key=lambda v: (str(type(v)), v)) if numeric else list(dict.fromkeys(values))
    )
    if not numeric or len(distinct) <= MAX_BINS:
        return distinct, lambda v: v
    lo, hi = min(distinct), max(distinct)
    width = (hi - lo) / MAX_BINS or 1.0
    centers = [float(f"{lo + (k + 0.5) * width:.4g}") for k in range(MAX_BINS)]
    return centers, lambda v: centers[min(MAX_BINS - 1, int((v - lo) / width))]


def _pooled(
    rows: list[dict[str, Any]], keys: Sequence[str], metric: Metric, axes: Sequence[Any], confidence: float
) -> dict[tuple[Any, ...], tuple[Interval, int]]:
    """Per cell (the axis values of ``keys``): the metric's interval and how many runs fell in it."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        groups.setdefault(tuple(ax(r[k]) for k, ax in zip(keys, axes, strict=True)), []).append(r[metric.name])
    return {k: (metric.interval(v, confidence), len(v)) for k, v in groups.items()}


def _no_value(metric: Metric) -> str:
    """What a run without a value of ``metric`` means: a recovery time is missing when it never recovered."""
    return "never recovered" if metric.name.endswith("time_to_recover") else "no value"


def render_sweep(result: SweepResult) -> str:
    """The sweep page: each metric against each parameter, heatmaps over pairs, the metastability map."""
    sweep = result.sweep
    rows = result.rows
    params = sweep.parameters
    axes = {p.path: Axis(p, sweep.base, (r[p.path] for r in rows)) for p in params}
    metrics = [m for m in sweep.metrics if m.domain is not None]
    meta = [
        f"{sweep.design} design",
        f"{format_count(len(sweep.points), 'point')} × {format_count(sweep.replications, 'replication')} = "
        f"{format_count(len(rows), 'run')}",
        f"root seed {sweep.seed}",
        f"base {sweep.base_file.name}",
        f"cascadesim {VERSION}",
    ]
    header = _header(sweep.name, sweep.description or f"A sweep of {sweep.base.name}.", meta)
    sections: list[str] = [_finding(sweep_finding(result))]
    figures: dict[str, dict[str, Any]] = {}
    if sweep.metastability:
        size, length = sweep.metastability
        figures["fig-metastability"] = _metastability_figure(rows, axes[size], axes[length])
        sections.append(
            figure_section(
                "Metastability map",
                "fig-metastability",
                f"Trigger size ({axes[size].words}, {size}) against trigger duration ({axes[length].words}, "
                f"{length}): the colour is the share of replications that recovered once the trigger was "
                "over (green: all, red: none — the service stayed down: metastable); the text is the mean "
                "time to recover of those that did (“at once”: back above the objective when the trigger "
                "ended), or “never recovered”.",
            )
        )
    for m in metrics:
        for p in params:
            fid = f"fig-{_slug(m.name)}-{_slug(p.path)}"
            figures[fid], methods = _line_figure(result, m, p, axes)
            others = [q.path for q in params if q is not p]
            how = (
                ("one line per value of " + axes[others[0]].words)
                if len(others) == 1 and _few(result, others[0])
                else ("pooled over " + ", ".join(axes[o].words for o in others) if others else "")
            )
            sections.append(
                figure_section(
                    f"{metric_title(m)} against {axes[p.path].words}",
                    fid,
                    f"Mean of the replications with its interval ({methods or 'none: one run each'})"
                    + (f"; {how}" if how else "") + f". Parameter {p.path}, metric {m.name}.",
                )
            )
    for p, q in itertools.islice(itertools.combinations(params, 2), 3):
        for m in metrics:
            fid = f"fig-heat-{_slug(m.name)}-{_slug(p.path)}-{_slug(q.path)}"
            figures[fid] = _heatmap(rows, m, axes[p.path], axes[q.path], result.confidence)
            gap = (f" Grey: every run of the cell {_no_value(m)}." if m.name.endswith("time_to_recover") else "")
            sections.append(
                figure_section(
                    f"{metric_title(m)} over {axes[p.path].words} × {axes[q.path].words}",
                    fid,
                    "Mean per cell (pooled over any other parameter); green is good, red is bad; hover for its "
                    f"interval and method.{gap}",
                )
            )
    sections.append(_points_table(result, metrics, axes))
    return _page(f"{sweep.name} — cascadesim sweep", header, sections, figures, _SWEEP_FOOTER)


def _few(result: SweepResult, path: str) -> bool:
    return len({r[path] for r in result.rows}) <= MAX_BINS


def _line_figure(
    result: SweepResult, m: Metric, p: Parameter, axes: dict[str, Axis]
) -> tuple[dict[str, Any], str]:
    """The metric against the parameter, with error bars; and what the bars are (:func:`_methods`)."""
    rows = result.rows
    factor, title = _axis(m, (r[m.name] for r in rows))
    axis = axes[p.path]
    others = [q for q in result.sweep.parameters if q is not p]
    x_levels, x_axis = _levels([r[p.path] for r in rows], p.numeric)
    traces = []
    shown: list[Interval] = []
    if len(others) == 1 and _few(result, others[0].path):
        q = others[0]
        groups = list(dict.fromkeys(r[q.path] for r in result.rows))
        series = [(_plain(f"{axes[q.path].words} = {axes[q.path].text(g)}"), [r for r in rows if r[q.path] == g])
                  for g in groups]
    else:
        series = [("all runs" if not others else "pooled", rows)]
    for i, (name, subset) in enumerate(series):
        cells = _pooled(subset, [p.path], m, [x_axis], result.confidence)
        ivs = {k: iv for k, (iv, _) in cells.items()}
        xs = [x for x in x_levels if (x,) in ivs and ivs[(x,)].mean is not None]
        shown += [ivs[(x,)] for x in xs]
        ys = [float(ivs[(x,)].mean or 0.0) * factor for x in xs]
        plus = [_half(ivs[(x,)], "high") * factor for x in xs]
        minus = [_half(ivs[(x,)], "low") * factor for x in xs]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": [x * axis.factor for x in xs] if p.numeric else [_plain(axis.text(x)) for x in xs],
                "y": ys,
                "text": [_plain(fmt_interval(m, ivs[(x,)])) for x in xs],
                "hovertemplate": "%{text}<extra></extra>",
                "line": {"color": SERIES_COLORS[i % len(SERIES_COLORS)], "width": 2},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": plus,
                    "arrayminus": minus,
                    "thickness": 1.2,
                    "width": 4,
                },
            }
        )
    ticks = _ticks(p, axis, x_levels)
    named = "ticktext" in ticks or not p.numeric  # ticks that say their unit, or the title does
    layout = _layout(
        340,
        xaxis={"title": {"text": _plain(axis.words if named else axis.title)}, **ticks},
        yaxis={"title": {"text": title}},
        showlegend=len(series) > 1,
    )
    return {"data": traces, "layout": layout}, _methods(shown)


def _ticks(p: Parameter, axis: Axis, levels: list[Any]) -> dict[str, Any]:
    """A numeric parameter's ticks at its values (whole numbers stay whole: no 0.5 retries)."""
    if not p.numeric:
        return {"type": "category"}
    if len(levels) <= MAX_BINS:
        return {"tickmode": "array", "tickvals": [x * axis.factor for x in levels],
                "ticktext": [_plain(axis.text(x)) for x in levels]}
    return {}


def _half(iv: Interval, side: str) -> float:
    """Distance from the mean to one end of the interval (0 when there is none)."""
    end = iv.high if side == "high" else iv.low
    if end is None or iv.mean is None:
        return 0.0
    return abs(end - iv.mean)


def _missing_trace(x: list[str], y: list[str], z: list[list[float | None]], name: str) -> list[dict[str, Any]]:
    """Cells with runs but no value, in grey, and a legend entry that names them (``never recovered``)."""
    return [
        {
            "type": "heatmap", "x": x, "y": y, "z": z, "zmin": 0, "zmax": 1, "showscale": False,
            "colorscale": [[0.0, MISSING], [1.0, MISSING]], "hoverinfo": "skip", "xgap": 1, "ygap": 1,
        },
        {
            "type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": _plain(name),
            "marker": {"symbol": "square", "size": 12, "color": MISSING}, "showlegend": True, "hoverinfo": "skip",
        },
    ]


def _heatmap(rows: list[dict[str, Any]], m: Metric, px: Axis, py: Axis, confidence: float) -> dict[str, Any]:
    factor, title = _axis(m, (r[m.name] for r in rows))
    xs, x_axis = _levels([r[px.path] for r in rows], px.numeric)
    ys, y_axis = _levels([r[py.path] for r in rows], py.numeric)
    cells = _pooled(rows, [px.path, py.path], m, [x_axis, y_axis], confidence)
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    gaps: list[list[float | None]] = []
    missing = _no_value(m)
    for y in ys:
        z_row: list[float | None] = []
        t_row: list[str] = []
        g_row: list[float | None] = []
        for x in xs:
            iv, runs = cells.get((x, y), (None, 0))
            g_row.append(None)
            if iv is None or not runs:
                z_row.append(None)
                t_row.append("no runs")
                continue
            if iv.mean is None:
                z_row.append(None)
                g_row[-1] = 1.0
                t_row.append(_plain(f"{missing} ({format_count(runs, 'run')})"))
                continue
            z_row.append(iv.mean * factor)
            part = f"; {runs - iv.n} of {format_count(runs, 'run')} {missing}" if iv.n < runs else ""
            t_row.append(_plain(f"{fmt_interval(m, iv, label=True)} (n={iv.n}{part})"))
        z.append(z_row)
        text.append(t_row)
        gaps.append(g_row)
    x_text = [_plain(px.text(x)) for x in xs]
    y_text = [_plain(py.text(y)) for y in ys]
    trace = {
        "type": "heatmap",
        "x": x_text,
        "y": y_text,
        "z": z,
        "text": text,
        "hovertemplate": f"{_plain(px.words)} %{{x}}<br>{_plain(py.words)} %{{y}}<br>%{{text}}<extra></extra>",
        "colorscale": colorscale(m),
        "colorbar": {"title": {"text": title, "side": "right"}, "thickness": 14},
        "xgap": 1,
        "ygap": 1,
    }
    data = [trace]
    if any(v is not None for row in gaps for v in row):
        data += _missing_trace(x_text, y_text, gaps, missing)
    layout = _layout(
        max(380, 140 + 44 * len(ys)),
        xaxis={"title": {"text": _plain(px.words)}, "type": "category"},  # the ticks say the unit
        yaxis={"title": {"text": _plain(py.words)}, "type": "category"},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    )
    return {"data": data, "layout": layout}


def _metastability_figure(rows: list[dict[str, Any]], size: Axis, length: Axis) -> dict[str, Any]:
    xs, x_axis = _levels([r[length.path] for r in rows], length.numeric)
    ys, y_axis = _levels([r[size.path] for r in rows], size.numeric)
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for y in ys:
        z_row: list[float | None] = []
        t_row: list[str] = []
        for x in xs:
            cell = [r for r in rows if x_axis(r[length.path]) == x and y_axis(r[size.path]) == y]
            known = [r["recovery.recovered"] for r in cell if r.get("recovery.recovered") is not None]
            if not known:
                z_row.append(None)
                t_row.append("")
                continue
            share = sum(bool(v) for v in known) / len(known)
            times = [
                float(r["recovery.time_to_recover"])
                for r in cell
                if r.get("recovery.recovered") and r.get("recovery.time_to_recover") is not None
            ]
            z_row.append(share)
            mean = sum(times) / len(times) if times else None
            t_row.append("never recovered" if mean is None else "at once" if mean == 0 else format_span(mean))
        z.append(z_row)
        text.append(t_row)
    scale = good_bad_scale("higher")
    trace = {
        "type": "heatmap",
        "x": [_plain(length.text(x)) for x in xs],
        "y": [_plain(size.text(y)) for y in ys],
        "z": z,
        "text": text,
        "texttemplate": "%{text}",
        "textfont": {"size": 11},
        "zmin": 0,
        "zmax": 1,
        "colorscale": scale,
        "xgap": 1,
        "ygap": 1,
        "hovertemplate": f"{_plain(length.words)} %{{x}}<br>{_plain(size.words)} %{{y}}<br>recovered in "
        "%{z:.0%} of runs<br>mean time to recover %{text}<extra></extra>",
        "colorbar": {"title": {"text": "share of runs recovered", "side": "right"}, "tickformat": ".0%",
                     "thickness": 14},
    }
    legend = {
        "type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": "never recovered (0% of runs)",
        "marker": {"symbol": "square", "size": 12, "color": scale[0][1]}, "showlegend": True, "hoverinfo": "skip",
    }
    layout = _layout(
        max(420, 140 + 44 * len(ys)),
        xaxis={"title": {"text": _plain(f"trigger duration: {length.words}")}, "type": "category"},
        yaxis={"title": {"text": _plain(f"trigger size: {size.words}")}, "type": "category"},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    )
    return {"data": [trace, legend], "layout": layout}


def _points_table(result: SweepResult, metrics: list[Metric], axes: dict[str, Axis]) -> str:
    params = [p.path for p in result.sweep.parameters]
    rows = []
    for point in result.sweep.points:
        ivs = result.intervals[point.index]
        cells = "".join(f'<td class="num">{html.escape(axes[k].text(point.params[k]))}</td>' for k in params)
        cells += "".join(f'<td class="num">{fmt_interval(m, ivs[m.name], markup=True)}</td>' for m in metrics)
        rows.append(f'<tr><td class="num">{point.index}</td>{cells}</tr>')
    heads = [axes[k].words for k in params]
    for m in metrics:
        how = _methods(result.intervals[p.index][m.name] for p in result.sweep.points)
        heads.append(f"{metric_title(m)} ({how})" if how else metric_title(m))
    return (
        f'<section><h2>Every point</h2><p class="caption">Mean and interval over '
        f"{format_count(result.sweep.replications, 'replication')} per point; each column names its interval. "
        f"Parameters: {html.escape(', '.join(params))}.</p>"
        f"{table('points', ['Point', *heads], rows)}</section>"
    )


def write_sweep_report(result: SweepResult, directory: Path) -> Path:
    """Write ``sweep.json`` and ``report.html`` into ``directory`` (both or neither)."""
    return _write(
        directory, "sweep", lambda: {"sweep.json": to_json(result.summary()), "report.html": render_sweep(result)}
    )
