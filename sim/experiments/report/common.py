"""What every experiment report shares: the page's header and finding, the figures' layout and axes, the
intervals' methods, names made plain text for figures, and the folder written all or nothing.

Each report (:mod:`~sim.experiments.report.replications`, :mod:`~sim.experiments.report.comparison`,
:mod:`~sim.experiments.report.sweep`, :mod:`~sim.experiments.report.capacity`) builds its page from these,
in the frame every HTML report shares (:mod:`sim.report.page`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sim.experiments.metrics import Metric
from sim.experiments.stats import Interval
from sim.experiments.text import fmt, metric_title, quantity, seconds_of
from sim.report.files import write_files
from sim.report.folders import check_output_folder
from sim.report.page import plotly_page
from sim.report.style import FONT, good_bad_scale
from sim.units import NONE, format_percent, span_unit

__all__ = [
    "metric_axis",
    "colorscale",
    "plain",
    "figure_layout",
    "INTERVALS",
    "interval_methods",
    "experiment_page",
    "page_header",
    "finding_section",
    "write_report_files",
    "half_width",
    "value_cell",
    "metric_cell",
    "slug",
]


# ------------------------------------------------------------------------------------------ formatting


def metric_axis(metric: Metric, values: Iterable[float | None] = ()) -> tuple[float, str]:
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
    return factor, plain(f"{metric_title(metric)} ({unit})" if unit else metric_title(metric))


def colorscale(metric: Metric) -> list[list[float | str]]:
    """The colour scale of a metric: the one place that decides which way it runs. Green where the metric
    is good — high availability, low downtime, latency and time to recover — red where it is bad, as on
    the run report (:func:`sim.report.style.good_bad_scale`); a metric that is neither (``better`` is
    ``None``) gets a neutral scale.
    """
    return good_bad_scale(metric.better)


def plain(value: Any) -> str:
    """``value`` as text in a figure. plotly draws ``<a href>``, ``<b>`` and ``<br>`` in trace names, ticks,
    titles and hover text; written as entities (which plotly shows as the characters) they are only text.
    Quotes stay: outside a tag they are harmless, and plotly would show ``&quot;`` as it is.

    >>> plain('<a href="javascript:alert(1)">x</a> & <b>')
    '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt; &amp; &lt;b&gt;'
    """
    return html.escape(str(value), quote=False)


# ------------------------------------------------------------------------------------------ page


def figure_layout(height: int = 360, **extra: Any) -> dict[str, Any]:
    """The plotly layout every figure starts from, with ``extra`` merged in (dicts key by key)."""
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
INTERVALS = (
    "Intervals are two-sided 95% confidence intervals over replications, each within what its metric can "
    "be: Wilson score intervals for shares of runs (recovered, SLO met), an expanded percentile bootstrap for "
    "availability, durations and counts from 8 replications on (Student t clipped to the metric's range "
    "below 8)"
)


def interval_methods(ivs: Iterable[Interval]) -> str:
    """What the intervals are, once for all: ``95% CI, bootstrap`` (``95% CI, Student t / bootstrap`` when
    they differ, e.g. by the number of values). Empty when there is no interval.
    """
    shown = [iv for iv in ivs if iv.low is not None and iv.high is not None]
    if not shown:
        return ""
    methods = " / ".join(dict.fromkeys(iv.method for iv in shown))
    return f"{format_percent(shown[0].confidence)} CI, {methods}"


def experiment_page(
    title: str, header: str, sections: list[str], figures: dict[str, dict[str, Any]], footer: str
) -> str:
    """The whole page: the header, then the sections, in the frame every report shares."""
    return plotly_page(title, header + "\n" + "".join(sections), figures, css=_CSS, footer=footer)


def page_header(title: str, subtitle: str, meta: list[str]) -> str:
    """The page's header: the title, a subtitle, and the line of facts (``meta``) under it."""
    return (
        f'<header><h1><span class="muted">cascadesim ·</span> {html.escape(title)}</h1>'
        f'<p class="description">{html.escape(subtitle)}</p>'
        f'<p class="meta">{" · ".join(html.escape(m) for m in meta)}</p></header>'
    )


def finding_section(text: str) -> str:
    """The page's finding (:mod:`sim.experiments.findings`), first under the header."""
    return f'<section id="finding"><p><strong>Finding.</strong> {html.escape(text)}</p></section>'


def write_report_files(directory: Path, kind: str, files: Callable[[], dict[str, str]]) -> Path:
    """Write ``files()`` into ``directory``, all or nothing, if it is new, empty or ``kind`` output (checked
    before they are rendered). Raises :class:`sim.report.folders.OutputError` otherwise, or when writing fails.
    """
    check_output_folder(directory, kind)
    return write_files(directory, files())


# ------------------------------------------------------------------------------------------ tables and bars


def half_width(iv: Interval, side: str) -> float:
    """Distance from the mean to one end of the interval (0 when there is none)."""
    end = iv.high if side == "high" else iv.low
    if end is None or iv.mean is None:
        return 0.0
    return abs(end - iv.mean)


def value_cell(metric: Metric, value: Any) -> str:
    """A value in a table: formatted by its metric, or as text for a metric without a domain."""
    return html.escape(str(value or NONE)) if metric.domain is None else fmt(metric, value)


def metric_cell(m: Metric, arrow: str = "") -> str:
    """A metric in a table: its name in words (and which way is better), under it the name experiment files
    and ``--metrics`` use.
    """
    title = metric_title(m)
    mark = f' <span class="muted">{arrow}</span>' if arrow else ""
    return html.escape(title) + mark + (f'<span class="sub">{html.escape(m.name)}</span>' if title != m.name else "")


def slug(name: str) -> str:
    """``name`` as part of an element id: every character but letters and digits becomes ``-``."""
    return "".join(c if c.isalnum() else "-" for c in name)
