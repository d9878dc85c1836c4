r"""The interactive report: one self-contained, offline ``report.html`` per run.

Everything on the page is built from the run's flat records: the summary (headline, fault and region
tables), the event log (fault windows, incident timeline, what failed in the topology) and the per-window
series (the time-series figures). The page needs no network: plotly.js is inlined once, each figure is
JSON in a ``<script type="application/json">`` block drawn by ``Plotly.newPlot``, and the fonts are the
system's. This is the only module of the package that imports plotly.

Every name on the page comes from a user's scenario, so text is escaped with :func:`html.escape` and
JSON embedded in ``<script>`` has ``<``, ``>`` and ``&`` written as ``\u003c``-style escapes, so no
string can close the script block.

>>> import sim
>>> from sim.topology import EXAMPLE
>>> page = render_html(sim.run(sim.parse_scenario(EXAMPLE), seed=1))   # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from sim.result import Result

__all__ = [
    "render_html",
    "FaultWindow",
    "fault_windows",
    "EventRow",
    "collapse_events",
    "bucket",
    "FIGURES",
    "MAX_POINTS",
    "MAX_EVENT_ROWS",
    "MAX_SERVER_NODES",
]

# Ids of the figures' <div>s, in page order; the first five share the time axis (minutes).
FIGURES = ("fig-availability", "fig-latency", "fig-traffic", "fig-load", "fig-healthy", "fig-topology")
TIME_FIGURES = FIGURES[:5]
MAX_POINTS = 1500  # points per time-series trace; longer series are bucketed
MAX_EVENT_ROWS = 300  # rows of the incident timeline
MAX_SERVER_NODES = 300  # above this, the topology shows per-datacenter counts instead of servers
MAX_FAULT_SHAPES = 120  # shaded fault windows per figure (per subplot); nearby windows are merged

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
FAULT_COLORS = ("#e15759", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#59a14f")
SERIES_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
                 "#e15759", "#bab0ac")
DOWN, EJECTED, OK = "#d62728", "#f28e2b", "#9fb3c8"
# Event kinds kept first when the timeline has to be cut to MAX_EVENT_ROWS rows.
MAJOR_KINDS = ("fault_start", "fault_end", "datacenter_down", "datacenter_up", "dependency_down",
               "dependency_up", "traffic_shift")


def render_html(result: Result) -> str:
    """Return the self-contained HTML report of ``result``: headline, figures, tables, timeline."""
    s = result.summary
    scenario = result.scenario
    duration = float(scenario.duration)
    windows = fault_windows(result.events, duration)
    shading = _FaultShading(windows, duration)
    series = _Series(result.timeseries, result.datacenter_series, float(s["slo"]["window"]), duration)
    figures = {
        "fig-availability": _availability_figure(series, s, shading),
        "fig-latency": _latency_figure(series, s, shading),
        "fig-traffic": _traffic_figure(series, shading),
        "fig-load": _load_figure(series, shading),
        "fig-healthy": _healthy_figure(series, shading),
        "fig-topology": _topology_figure(result),
    }
    rows, total_rows = collapse_events(result.events, MAX_EVENT_ROWS)
    note = series.note()
    sections = [
        _section("Availability", "fig-availability",
                 f"Share of user requests that succeeded, per {_span(series.window)} window. "
                 "Shaded bands are fault windows; the dashed line is the objective." + note),
        _section("Latency", "fig-latency", "Latency of successful requests (p50 and p99 per window)." + note),
        _section("Traffic and retries", "fig-traffic",
                 "User requests, attempts (requests plus retries) and failures per second." + note),
        _section("Offered load and capacity per datacenter", "fig-load",
                 "Attempts per second sent to each datacenter against the capacity of its servers in "
                 "rotation (workers / mean service time)." + note),
        _section("Healthy servers", "fig-healthy",
                 "Servers up and in the load balancers' rotation, per datacenter (sampled mid-window)."
                 + note),
        _section("Topology: what failed", "fig-topology", _topology_caption(result)),
    ]
    body = "\n".join(
        [
            _header(result),
            _headline(s),
            *sections,
            _faults_table(s),
            _regions_table(s),
            _events_table(rows, total_rows, len(result.events)),
            _footer(),
        ]
    )
    data = "\n".join(
        f'<script type="application/json" id="data-{fid}" data-figure="{fid}">{_script_json(_to_json(fig))}'
        "</script>"
        for fid, fig in figures.items()
    )
    title = html.escape(f"{scenario.name} — cascadesim report")
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"{data}\n"
        f'<script type="text/javascript">{_init_js()}</script>\n'
        "</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------------------ fault windows


@dataclass(frozen=True)
class FaultWindow:
    """When one fault acted on one target: ``start`` to ``end`` seconds (``open``: it never ended)."""

    fault: str
    node: str
    start: float
    end: float
    open: bool


def fault_windows(events: Iterable[dict[str, Any]], duration: float) -> list[FaultWindow]:
    """Pair ``fault_start`` and ``fault_end`` events into windows, in order of start.

    An end names its start as ``cause``; an end without one closes the oldest open start of the same
    fault and node. A fault that never ends lasts to ``duration``.

    >>> ev = [{"id": 0, "time": 60.0, "kind": "fault_start", "node": "f", "cause": None, "fault": "f"},
    ...       {"id": 1, "time": 90.0, "kind": "fault_end", "node": "f", "cause": 0, "fault": "f"}]
    >>> fault_windows(ev, 600.0)
    [FaultWindow(fault='f', node='f', start=60.0, end=90.0, open=False)]
    """
    starts: dict[int, dict[str, Any]] = {}
    ended: dict[int, float] = {}
    pending: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for e in events:
        key = (e.get("fault"), e.get("node"))
        if e["kind"] == "fault_start":
            starts[e["id"]] = e
            pending[key].append(e["id"])
        elif e["kind"] == "fault_end":
            sid = e.get("cause")
            if sid not in starts or sid in ended:
                sid = next((i for i in pending[key] if i not in ended), None)
            if sid is not None:
                ended[sid] = float(e["time"])
                if sid in pending[key]:
                    pending[key].remove(sid)
    out = []
    for sid, e in starts.items():
        start = float(e["time"])
        end = ended.get(sid)
        out.append(FaultWindow(str(e.get("fault") or e["node"]), str(e["node"]), start,
                               max(start, end if end is not None else duration), end is None))
    return sorted(out, key=lambda w: (w.start, w.fault, w.node))


def _merge(intervals: list[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    """Union of intervals, also joining those less than ``gap`` apart."""
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


class _FaultShading:
    """Fault windows as shaded rectangles (in minutes), one colour per fault, merged per fault."""

    def __init__(self, windows: list[FaultWindow], duration: float):
        by_fault: dict[str, list[tuple[float, float]]] = {}
        for w in windows:
            by_fault.setdefault(w.fault, []).append((w.start, w.end))
        self.min_width = duration / 2000  # an instantaneous fault still shows as a thin band
        budget = max(1, MAX_FAULT_SHAPES // max(1, len(by_fault)))
        self.spans: dict[str, list[tuple[float, float]]] = {}
        for fault, spans in by_fault.items():
            gap = 0.0
            merged = _merge(spans)
            while len(merged) > budget:  # too many windows to draw: join the closest ones
                gap = gap * 2 if gap else duration / 1000
                merged = _merge(spans, gap)
            self.spans[fault] = merged
        self.color = {f: FAULT_COLORS[i % len(FAULT_COLORS)] for i, f in enumerate(self.spans)}

    def shapes(self, xref: str = "x", yref: str = "paper", legend: bool = False, label: bool = False) -> list:
        """Rectangles for one plot area; ``legend``/``label`` name each fault once."""
        out = []
        for fault, spans in self.spans.items():
            for k, (a, b) in enumerate(spans):
                shape: dict[str, Any] = dict(
                    type="rect", xref=xref, yref=yref, y0=0, y1=1,
                    x0=a / 60, x1=max(b, a + self.min_width) / 60,
                    fillcolor=self.color[fault], opacity=0.16, line={"width": 0}, layer="below",
                    name=f"fault {fault}", legendgroup=f"fault:{fault}",
                )
                if legend:
                    shape["showlegend"] = k == 0
                if label and k == 0:
                    shape["label"] = {"text": fault, "textposition": "top left",
                                      "font": {"size": 10, "color": self.color[fault]}}
                out.append(shape)
        return out


# ------------------------------------------------------------------------------------------ time series


def bucket(values: Sequence[float | None], k: int, how: str) -> list[float | None]:
    """Reduce consecutive groups of ``k`` values to one (``min``, ``max`` or ``mean``), skipping ``None``.

    >>> bucket([1, None, 3, 4, 5], 2, "min")
    [1.0, 3.0, 5.0]
    >>> bucket([None, None, 2], 2, "max")
    [None, 2.0]
    """
    if k <= 1:
        return [None if v is None else float(v) for v in values]
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    pad = (-arr.size) % k
    arr = np.concatenate([arr, np.full(pad, np.nan)]).reshape(-1, k)
    valid = ~np.isnan(arr)
    filled = np.where(valid, arr, {"min": np.inf, "max": -np.inf, "mean": 0.0}[how])
    if how == "min":
        red = filled.min(axis=1)
    elif how == "max":
        red = filled.max(axis=1)
    elif how == "mean":
        red = filled.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    else:
        raise ValueError(f"bucket: how must be 'min', 'max' or 'mean', not {how!r}")
    return [float(v) if ok else None for v, ok in zip(red, valid.any(axis=1), strict=True)]


class _Series:
    """The per-window tables by region and by datacenter, bucketed to ``MAX_POINTS`` points per trace."""

    def __init__(self, timeseries: list[dict], dc_series: list[dict], window: float, duration: float):
        self.window, self.duration = window, duration
        self.regions: dict[str, list[dict]] = {}
        for row in timeseries:
            self.regions.setdefault(row["region"], []).append(row)
        self.dcs: dict[str, list[dict]] = {}
        for row in dc_series:
            self.dcs.setdefault(row["datacenter"], []).append(row)
        for table in (*self.regions.values(), *self.dcs.values()):
            table.sort(key=lambda r: r["time"])
        first = next(iter(self.regions.values()), None) or next(iter(self.dcs.values()), [])
        self.n = len(first)
        self.k = max(1, math.ceil(self.n / MAX_POINTS))
        self.times = [r["time"] for r in first]

    def x(self, step: bool = False) -> list[float]:
        """Bucket start times in minutes; ``step`` adds the end of the run for a step line's last level."""
        xs = [t / 60 for t in self.times[:: self.k]]
        return xs + [self.duration / 60] if step and xs else xs

    def reduce(self, values: Sequence[float | None], how: str, step: bool = False) -> list[float | None]:
        """Bucket ``values`` (one per window) like :meth:`x`."""
        out = bucket(values, self.k, how)
        return out + out[-1:] if step else out

    def totals(self, name: str) -> np.ndarray:
        """Sum a counter over regions, per window."""
        total = np.zeros(self.n)
        for rows in self.regions.values():
            total += np.array([r[name] for r in rows], dtype=float)
        return total

    def note(self) -> str:
        """Caption suffix when points are buckets of several windows."""
        if self.k == 1:
            return ""
        return (f" Each point is the worst of {self.k} consecutive {_span(self.window)} windows "
                f"({_span(self.k * self.window)}) so short dips stay visible; full series in the CSV files.")


def _time_layout(title: str, height: int, duration: float) -> dict:
    layout = dict(
        template="plotly_white",
        height=height,
        margin=dict(l=64, r=24, t=36, b=44),
        font=dict(family=FONT, size=12, color="#24292f"),
        hovermode="x unified",
        legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom", font=dict(size=11)),
        xaxis=dict(title=dict(text="minutes since start"), range=[0, duration / 60], zeroline=False),
        yaxis=dict(title=dict(text=title), zeroline=False),
    )
    return layout


def _availability_figure(series: _Series, s: dict, shading: _FaultShading) -> go.Figure:
    objective = float(s["slo"]["availability"]) * 100
    fig = go.Figure()
    ok, req = series.totals("ok"), series.totals("requests")
    overall = [float(o / r * 100) if r else None for o, r in zip(ok, req, strict=True)]
    x = series.x(step=True)
    names = list(series.regions)
    if len(names) > 1:
        for i, name in enumerate(names):
            values = [None if r["availability"] is None else r["availability"] * 100
                      for r in series.regions[name]]
            color = SERIES_COLORS[(i + 1) % len(SERIES_COLORS)]
            fig.add_scatter(x=x, y=series.reduce(values, "min", step=True), name=html.escape(name),
                            mode="lines", line=dict(width=1.2, shape="hv", color=color),
                            hovertemplate="%{y:.3f}%")
    label = "all regions" if len(names) > 1 else html.escape(names[0]) if names else "availability"
    fig.add_scatter(x=x, y=series.reduce(overall, "min", step=True), name=label, mode="lines",
                    line=dict(width=2.2, shape="hv", color=SERIES_COLORS[0]), hovertemplate="%{y:.3f}%")
    below = [v if v is not None and v < objective else None for v in series.reduce(overall, "min")]
    if any(v is not None for v in below):
        fig.add_scatter(x=series.x(), y=below, name=f"below {_objective(s['slo']['availability'])}",
                        mode="markers", marker=dict(color=DOWN, size=6, symbol="x"),
                        hovertemplate="%{y:.3f}%")
    layout = _time_layout("availability (%)", 360, series.duration)
    layout["shapes"] = [
        *shading.shapes(legend=True, label=True),
        dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=objective, y1=objective,
             line=dict(color="#57606a", width=1, dash="dash"), name="objective",
             label=dict(text=f"objective {_objective(s['slo']['availability'])}", textposition="end",
                        yanchor="bottom", font=dict(size=10, color="#57606a"))),
    ]
    fig.update_layout(**layout)
    return fig


def _latency_figure(series: _Series, s: dict, shading: _FaultShading) -> go.Figure:
    fig = go.Figure()
    x = series.x(step=True)
    for i, (name, rows) in enumerate(series.regions.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        label = html.escape(name)
        for q, dash, width in (("p99", None, 1.8), ("p50", "dot", 1.2)):
            values = [None if r[f"latency_{q}"] is None else r[f"latency_{q}"] * 1000 for r in rows]
            fig.add_scatter(x=x, y=series.reduce(values, "max", step=True), name=f"{label} {q}", mode="lines",
                            legendgroup=label, line=dict(color=color, width=width, dash=dash, shape="hv"),
                            hovertemplate="%{y:.1f} ms")
    layout = _time_layout("latency (ms)", 300, series.duration)
    shapes = shading.shapes()
    target = s["slo"].get("latency_p99")
    if target is not None:
        y = target * 1000
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                           line=dict(color="#57606a", width=1, dash="dash"),
                           label=dict(text=f"p99 objective {_latency(target)}", textposition="end",
                                      yanchor="bottom", font=dict(size=10, color="#57606a"))))
    layout["shapes"] = shapes
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


def _traffic_figure(series: _Series, shading: _FaultShading) -> go.Figure:
    fig = go.Figure()
    x = series.x(step=True)
    per_s = 1.0 / series.window
    for name, label, color, dash in (
        ("requests", "user requests/s", SERIES_COLORS[0], None),
        ("attempts", "attempts/s", "#57606a", "dot"),
        ("retries", "retries/s", SERIES_COLORS[1], None),
        ("failed", "failed requests/s", DOWN, None),
        ("timeouts", "timeouts/s", SERIES_COLORS[3], None),
        ("shed", "shed/s", SERIES_COLORS[5], None),
    ):
        values = series.totals(name) * per_s
        if name in ("timeouts", "shed") and not values.any():
            continue
        fig.add_scatter(x=x, y=series.reduce(values.tolist(), "max", step=True), name=label, mode="lines",
                        line=dict(color=color, width=1.6, dash=dash, shape="hv"), hovertemplate="%{y:.1f}")
    layout = _time_layout("per second", 300, series.duration)
    layout["shapes"] = shading.shapes()
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


def _load_figure(series: _Series, shading: _FaultShading) -> go.Figure:
    names = list(series.dcs)
    if len(names) > 16:
        return _utilisation_figure(series, shading)
    cols = 1 if len(names) == 1 else 2 if len(names) <= 4 else 3
    rows = max(1, math.ceil(len(names) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[html.escape(n) for n in names],
                        vertical_spacing=min(0.12, 0.5 / rows), horizontal_spacing=0.06)
    x = series.x(step=True)
    offered_max = max((row["offered"] for dc in series.dcs.values() for row in dc), default=0.0)
    capacity_max = max((row["capacity"] for dc in series.dcs.values() for row in dc), default=0.0)
    # Capacity is often far above the load: a log axis keeps both readable.
    log = offered_max > 0 and capacity_max > 20 * offered_max
    shapes = []
    for i, name in enumerate(names):
        r, c = divmod(i, cols)
        dc = series.dcs[name]
        offered = series.reduce([row["offered"] for row in dc], "max", step=True)
        capacity = series.reduce([row["capacity"] for row in dc], "min", step=True)
        if log:  # zero has no place on a log axis: leave a gap
            offered = [v if v else None for v in offered]
            capacity = [v if v else None for v in capacity]
        fig.add_scatter(x=x, y=capacity, name="capacity (req/s)", legendgroup="capacity", showlegend=i == 0,
                        mode="lines", line=dict(color="#57606a", width=1.6, dash="dash", shape="hv"),
                        hovertemplate="capacity %{y:.0f}/s", row=r + 1, col=c + 1)
        fig.add_scatter(x=x, y=offered, name="offered (attempts/s)", legendgroup="offered", showlegend=i == 0,
                        mode="lines", fill=None if log else "tozeroy",
                        line=dict(color=SERIES_COLORS[0], width=1.8, shape="hv"),
                        fillcolor="rgba(78,121,167,0.18)", hovertemplate="offered %{y:.1f}/s", row=r + 1,
                        col=c + 1)
        axis = "" if i == 0 else str(i + 1)
        shapes += shading.shapes(xref=f"x{axis}", yref=f"y{axis} domain")
    fig.update_xaxes(range=[0, series.duration / 60], matches="x", zeroline=False)
    fig.update_xaxes(title_text="minutes since start", row=rows)
    if log:
        fig.update_yaxes(type="log", dtick=1, zeroline=False)  # a tick per power of ten
    else:
        fig.update_yaxes(rangemode="tozero", zeroline=False)
    fig.update_yaxes(title_text="per second" + (" (log)" if log else ""), col=1)
    height = 130 + 210 * rows
    layout = _time_layout("per second", height, series.duration)
    del layout["xaxis"], layout["yaxis"]
    layout["margin"] = dict(l=64, r=24, t=64, b=44)
    layout["legend"]["y"] = 1 + 30 / (height - 64 - 44)  # above the subplot titles
    layout["shapes"] = shapes
    fig.update_layout(**layout)
    for ann in fig.layout.annotations:
        ann.font = dict(size=12, color="#24292f")
    return fig


def _utilisation_figure(series: _Series, shading: _FaultShading) -> go.Figure:
    """Many datacenters: offered load as a share of capacity, one line each, in one plot."""
    fig = go.Figure()
    x = series.x(step=True)
    for i, (name, dc) in enumerate(series.dcs.items()):
        values = [row["offered"] / row["capacity"] * 100 if row["capacity"] else None for row in dc]
        fig.add_scatter(x=x, y=series.reduce(values, "max", step=True), name=html.escape(name), mode="lines",
                        line=dict(width=1.2, shape="hv", color=SERIES_COLORS[i % len(SERIES_COLORS)]),
                        hovertemplate="%{y:.0f}%")
    layout = _time_layout("offered load / capacity (%)", 380, series.duration)
    layout["shapes"] = [*shading.shapes(),
                        dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=100, y1=100,
                             line=dict(color=DOWN, width=1, dash="dash"))]
    fig.update_layout(**layout)
    return fig


def _healthy_figure(series: _Series, shading: _FaultShading) -> go.Figure:
    fig = go.Figure()
    x = series.x(step=True)
    for i, (name, dc) in enumerate(series.dcs.items()):
        healthy = series.reduce([row["healthy"] for row in dc], "min", step=True)
        up = series.reduce([row["up"] for row in dc], "min", step=True)
        total = dc[0]["servers"] if dc else 0
        fig.add_scatter(x=x, y=healthy, name=html.escape(name), mode="lines",
                        customdata=[[u, total] for u in up],
                        line=dict(width=1.8, shape="hv", color=SERIES_COLORS[i % len(SERIES_COLORS)]),
                        hovertemplate="%{y} in rotation, %{customdata[0]} up, of %{customdata[1]}")
    layout = _time_layout("servers in rotation", 320, series.duration)
    layout["shapes"] = shading.shapes()
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


# ------------------------------------------------------------------------------------------ topology


@dataclass
class _Failures:
    """What the event log says failed, per node."""

    down: Counter = field(default_factory=Counter)
    ejected: Counter = field(default_factory=Counter)
    first: dict[str, float] = field(default_factory=dict)
    faults: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    dark: set = field(default_factory=set)
    deps_down: set = field(default_factory=set)
    shifted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lost: set = field(default_factory=set)

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> _Failures:
        f = cls()
        for e in events:
            kind, node = e["kind"], e["node"]
            if kind in ("server_down", "ejected", "datacenter_down", "dependency_down"):
                f.first.setdefault(node, e["time"])
                if e.get("fault"):
                    f.faults[node].add(e["fault"])
            if kind == "server_down":
                f.down[node] += 1
            elif kind == "ejected":
                f.ejected[node] += 1
            elif kind == "datacenter_down":
                f.dark.add(node)
            elif kind == "dependency_down":
                f.deps_down.add(node)
            elif kind == "traffic_shift":
                f.shifted[node].append(f"{_minutes(e['time'])} min: {e['detail'].split('.')[0]}")
                if "-> nowhere" in e["detail"]:
                    f.lost.add(node)
        return f

    def server_state(self, server: str) -> str:
        """``down``, ``ejected`` or ``ok``."""
        return "down" if self.down[server] else "ejected" if self.ejected[server] else "ok"

    def describe(self, node: str) -> str:
        """Hover lines about what happened to ``node`` (escaped)."""
        lines = []
        if self.down[node]:
            lines.append(f"went down {self.down[node]}×")
        if self.ejected[node]:
            lines.append(f"ejected {self.ejected[node]}×")
        if node in self.first:
            lines.append(f"first at {_minutes(self.first[node])} min")
        if self.faults.get(node):
            lines.append("fault: " + html.escape(", ".join(sorted(self.faults[node])[:4])))
        return "<br>".join(lines) if lines else "never affected"


def _topology_figure(result: Result) -> go.Figure:
    G = result.cluster.graph
    failures = _Failures.of(result.events)
    kind_of = dict(G.nodes(data="kind"))
    regions = [n for n, k in kind_of.items() if k == "region"]
    dcs = [n for n, k in kind_of.items() if k == "datacenter"]
    deps = [n for n, k in kind_of.items() if k == "dependency"]
    servers_of: dict[str, list[str]] = {dc: [] for dc in dcs}
    for n, k in kind_of.items():
        if k == "server":
            servers_of.setdefault(G.nodes[n]["datacenter"], []).append(n)
    total_servers = sum(len(v) for v in servers_of.values())
    aggregate = total_servers > MAX_SERVER_NODES

    # Deterministic layout: datacenters on a row at y=0, their servers in a grid below, regions above,
    # dependencies at the bottom.
    pos: dict[str, tuple[float, float]] = {}
    blocks: dict[str, tuple[float, float, int]] = {}  # dc -> (left x, width, grid rows)
    left = 0.0
    for dc in dcs:
        n = len(servers_of[dc])
        cols = 3 if aggregate else min(12, max(1, math.ceil(math.sqrt(n))))
        grid_rows = 1 if aggregate else max(1, math.ceil(n / cols))
        width = max(cols, 3)
        blocks[dc] = (left, width, grid_rows)
        pos[dc] = (left + (width - 1) / 2, 0.0)
        if not aggregate:
            offset = left + (width - cols) / 2
            for j, server in enumerate(servers_of[dc]):
                grid_row, grid_col = divmod(j, cols)
                pos[server] = (offset + grid_col, -1.4 - grid_row)
        left += width + 1.5
    span = max(left - 1.5, 1.0)
    max_rows = max((b[2] for b in blocks.values()), default=1)

    def spread(names: list[str], y: float) -> None:
        for i, name in enumerate(names):
            pos[name] = ((i + 0.5) * span / len(names) - 0.5, y)

    def mean_dc_x(region: str) -> float:
        xs = [pos[d][0] for d in G[region] if kind_of.get(d) == "datacenter"]
        return sum(xs) / len(xs) if xs else 0.0

    def box_bottom(grid_rows: int) -> float:  # below the last row of servers (and the counts' text)
        return -2.4 if aggregate else -0.4 - grid_rows - 0.6

    lowest = box_bottom(max_rows)
    spread(sorted(regions, key=lambda r: (mean_dc_x(r), regions.index(r))), 2.8)
    spread(deps, lowest - 1.4)

    fig = go.Figure()
    _edges(fig, G, pos, kind_of)
    shapes = []
    for box_left, box_width, grid_rows in blocks.values():
        shapes.append(dict(type="rect", x0=box_left - 0.6, x1=box_left + box_width - 0.4,
                           y0=box_bottom(grid_rows), y1=-0.6, line=dict(color="#d0d7de", width=1),
                           fillcolor="rgba(246,248,250,0.9)", layer="below"))

    # Regions.
    states: dict[str, list[str]] = {"lost service": [], "traffic shifted": [], "served": []}
    for r in regions:
        state = ("lost service" if r in failures.lost else
                 "traffic shifted" if failures.shifted.get(r) else "served")
        states[state].append(r)
    for state, color in (("served", "#4e79a7"), ("traffic shifted", EJECTED), ("lost service", DOWN)):
        names = states[state]
        if not names:
            continue
        hover = []
        for r in names:
            users = G.nodes[r].get("users") or 0
            shifts = "<br>".join(html.escape(s) for s in failures.shifted.get(r, [])[:6])
            hover.append(f"<b>region {html.escape(r)}</b><br>{users:,} users"
                         + (f"<br>{shifts}" if shifts else ""))
        fig.add_scatter(x=[pos[r][0] for r in names], y=[pos[r][1] for r in names], mode="markers+text",
                        name=f"region: {state}", text=[html.escape(r) for r in names],
                        textposition="top center",
                        hovertext=hover, hoverinfo="text",
                        marker=dict(size=24, color=color, symbol="circle", line=dict(color="white", width=2)))

    # Datacenters.
    dc_states: dict[str, list[str]] = {"went dark": [], "servers failed": [], "unaffected": []}
    for dc in dcs:
        hit = any(failures.down[s] or failures.ejected[s] for s in servers_of[dc])
        state = "went dark" if dc in failures.dark else "servers failed" if hit else "unaffected"
        dc_states[state].append(dc)
    for state, color in (("unaffected", "#57606a"), ("servers failed", EJECTED), ("went dark", DOWN)):
        names = dc_states[state]
        if not names:
            continue
        hover, text = [], []
        for dc in names:
            members = servers_of[dc]
            n_down = sum(1 for s in members if failures.down[s])
            n_ej = sum(1 for s in members if failures.ejected[s] and not failures.down[s])
            location = G.nodes[dc].get("location") or ""
            where = f" ({html.escape(location)})" if location else ""
            text.append(f"<b>{html.escape(dc)}</b>"
                        + (f"<br><i>{html.escape(location)}</i>" if location else ""))
            hover.append(f"<b>datacenter {html.escape(dc)}</b>{where}<br>{len(members)} servers: "
                         f"{n_down} went down, {n_ej} ejected while up"
                         + ("<br>went dark" if dc in failures.dark else ""))
        fig.add_scatter(x=[pos[d][0] for d in names], y=[pos[d][1] for d in names], mode="markers+text",
                        name=f"datacenter: {state}", text=text, textposition="top center", hovertext=hover,
                        hoverinfo="text", marker=dict(size=22, symbol="square", color=color,
                                                       line=dict(color="white", width=2)))

    # Servers, one marker each or three count markers per datacenter.
    labels = {"down": "servers: went down", "ejected": "servers: ejected while up",
              "ok": "servers: never affected"}
    colors = {"down": DOWN, "ejected": EJECTED, "ok": OK}
    if aggregate:
        counts = {dc: Counter(failures.server_state(s) for s in servers_of[dc]) for dc in dcs}
        biggest = max((c for cs in counts.values() for c in cs.values()), default=1)
        for j, state in enumerate(("down", "ejected", "ok")):
            xs, ys, sizes, text, hover = [], [], [], [], []
            for dc in dcs:
                count = counts[dc][state]
                x0 = blocks[dc][0]
                xs.append(x0 + j + (blocks[dc][1] - 3) / 2)
                ys.append(-1.4)
                sizes.append(8 + 26 * math.sqrt(count / biggest) if count else 6)
                text.append(f"{count:,}")
                names = [s for s in servers_of[dc] if failures.server_state(s) == state]
                more = f", … (+{len(names) - 12})" if len(names) > 12 else ""
                sample = html.escape(", ".join(names[:12]) + more)
                hover.append(f"<b>{html.escape(dc)}</b>: {count:,} {labels[state].split(': ')[1]}"
                             + (f"<br>{sample}" if names and state != "ok" else ""))
            fig.add_scatter(x=xs, y=ys, mode="markers+text", name=labels[state], text=text,
                            textposition="bottom center", hovertext=hover, hoverinfo="text",
                            marker=dict(size=sizes, color=colors[state], line=dict(color="white", width=1)))
    else:
        for state in ("down", "ejected", "ok"):
            names = [s for dc in dcs for s in servers_of[dc] if failures.server_state(s) == state]
            if not names:
                continue
            hover = [f"<b>{html.escape(s)}</b><br>{html.escape(G.nodes[s]['datacenter'])} · group "
                     f"{html.escape(str(G.nodes[s].get('group', '')))}<br>{failures.describe(s)}"
                     for s in names]
            fig.add_scatter(x=[pos[s][0] for s in names], y=[pos[s][1] for s in names], mode="markers",
                            name=labels[state], hovertext=hover, hoverinfo="text",
                            marker=dict(size=12, color=colors[state], symbol="circle",
                                        line=dict(color="white", width=1)))

    # Dependencies.
    for state, color in (("up", "#8e6c8a"), ("went down", DOWN)):
        names = [d for d in deps if (d in failures.deps_down) == (state == "went down")]
        if names:
            hover = [f"<b>dependency {html.escape(d)}</b> ({html.escape(str(G.nodes[d].get('role', '')))})"
                     f"<br>{failures.describe(d) if d in failures.deps_down else 'never down'}"
                     for d in names]
            fig.add_scatter(x=[pos[d][0] for d in names], y=[pos[d][1] for d in names], mode="markers+text",
                            name=f"dependency: {state}", text=[html.escape(d) for d in names],
                            textposition="bottom center", hoverinfo="text", hovertext=hover,
                            marker=dict(size=20, symbol="diamond", color=color,
                                        line=dict(color="white", width=2)))

    bottom = lowest - (2.3 if deps else 0.3)
    top = 4.0
    x_range = [-1.0, span]
    unit = 1100 / (x_range[1] - x_range[0])  # px per layout unit on a wide screen
    square = unit >= 18
    unit = min(56.0, unit) if square else 50.0
    height = int(min(1000, max(320, 90 + unit * (top - bottom))))
    fig.update_layout(
        template="plotly_white", height=height, font=dict(family=FONT, size=12, color="#24292f"),
        margin=dict(l=10, r=10, t=30, b=60), shapes=shapes, hovermode="closest",
        legend=dict(orientation="h", x=0.5, xanchor="center", y=0, yanchor="top", font=dict(size=11)),
        xaxis=dict(visible=False, range=x_range, fixedrange=False),
        yaxis=dict(visible=False, range=[bottom, top],
                   **({"scaleanchor": "x", "scaleratio": 1} if square else {})),
    )
    return fig


def _edges(fig: go.Figure, G: Any, pos: dict[str, tuple[float, float]], kind_of: dict[str, str]) -> None:
    """Region–datacenter, datacenter–datacenter (arcs above the row) and dependency edges, with hover."""
    lines: dict[str, tuple[list, list]] = {"serves": ([], []), "link": ([], []), "uses": ([], [])}
    mid_x, mid_y, mid_text = [], [], []
    for a, b, data in G.edges(data=True):
        kind = data.get("kind")
        if kind not in lines or a not in pos or b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        xs, ys = lines[kind]
        if kind == "link":  # an arc, so links between distant datacenters do not run through the others
            lift = min(1.6, 0.25 + 0.12 * abs(x1 - x0))
            ts = np.linspace(0, 1, 17)
            xs += [*(x0 + (x1 - x0) * ts), None]
            ys += [*(y0 + 4 * lift * ts * (1 - ts)), None]
            mx, my = (x0 + x1) / 2, y0 + lift
            text = (f"link {html.escape(a)} — {html.escape(b)}<br>{_bandwidth(data.get('capacity'))}, "
                    f"{_latency(data.get('latency'))}")
        else:
            xs += [x0, x1, None]
            ys += [y0, y1, None]
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            if kind == "serves":
                region, dc = (a, b) if kind_of.get(a) == "region" else (b, a)
                text = (f"{html.escape(region)} → {html.escape(dc)}: "
                        f"{_latency(data.get('latency'))} round trip")
            else:
                continue
        mid_x.append(mx)
        mid_y.append(my)
        mid_text.append(text)
    style = {"serves": ("#8fb3d9", 1.4, "solid", "region → datacenter"),
             "link": ("#9aa5b1", 1.4, "dash", "link"),
             "uses": ("#d8c5d6", 0.8, "dot", "uses dependency")}
    for kind, (xs, ys) in lines.items():
        if xs:
            color, width, dash, name = style[kind]
            fig.add_scatter(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip",
                            line=dict(color=color, width=width, dash=dash), showlegend=False)
    if mid_x:
        fig.add_scatter(x=mid_x, y=mid_y, mode="markers", hovertext=mid_text, hoverinfo="text",
                        showlegend=False, name="edges", marker=dict(size=8, color="rgba(0,0,0,0)"))


def _topology_caption(result: Result) -> str:
    G = result.cluster.graph
    n = sum(1 for _, k in G.nodes(data="kind") if k == "server")
    how = (f"The {n:,} servers are counted per datacenter (red: went down, orange: ejected while up, grey: "
           "never affected); marker size follows the count."
           if n > MAX_SERVER_NODES else
           "Each dot is a server (red: went down, orange: ejected while up, grey: never affected); hover for "
           "details.")
    return ("Regions (top) and the datacenters that serve them, their servers below, shared dependencies at "
            f"the bottom. {how} Databases are not drawn.")


# ------------------------------------------------------------------------------------------ event timeline


@dataclass
class EventRow:
    """Events of one kind at one time caused by one fault, collapsed into a timeline row."""

    time: float
    kind: str
    fault: str | None
    ids: list[int] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    details: Counter = field(default_factory=Counter)
    causes: list[int] = field(default_factory=list)  # event ids, in order, without repeats

    @property
    def anchor(self) -> str:
        """The row's element id: ``ev-<first event id>``."""
        return f"ev-{self.ids[0]}"

    @property
    def count(self) -> int:
        """How many events the row stands for."""
        return len(self.ids)


def collapse_events(
    events: Sequence[dict[str, Any]], max_rows: int = MAX_EVENT_ROWS
) -> tuple[list[EventRow], int]:
    """Build the incident timeline: events of one kind, time and fault in one row, ``max_rows`` at most.

    Returns the rows in time order and how many rows there were before cutting. When cutting, fault
    starts and ends, datacenter and dependency changes and traffic shifts are kept first, then the
    earliest of the rest.
    """
    rows: dict[tuple[float, str, Any], EventRow] = {}
    for e in events:
        key = (float(e["time"]), e["kind"], e.get("fault"))
        row = rows.get(key)
        if row is None:
            row = rows[key] = EventRow(float(e["time"]), e["kind"], e.get("fault"))
        row.ids.append(e["id"])
        row.nodes.append(str(e["node"]))
        row.details[str(e.get("detail") or "")] += 1
        cause = e.get("cause")
        if cause is not None and cause not in row.causes:
            row.causes.append(cause)
    ordered = sorted(rows.values(), key=lambda r: (r.time, r.ids[0]))
    total = len(ordered)
    if total > max_rows:
        major = [r for r in ordered if r.kind in MAJOR_KINDS][:max_rows]
        rest = [r for r in ordered if r.kind not in MAJOR_KINDS][: max_rows - len(major)]
        ordered = sorted(major + rest, key=lambda r: (r.time, r.ids[0]))
    return ordered, total


def _events_table(rows: list[EventRow], total_rows: int, total_events: int) -> str:
    row_of = {i: row for row in rows for i in row.ids}
    body = []
    for row in rows:
        nodes = row.nodes if row.count <= 4 else [*row.nodes[:3], f"… +{row.count - 3} more"]
        every = ", ".join(row.nodes[:100]) + (", …" if row.count > 100 else "")
        detail = _details(row.details)
        # The rows of the causes, once each; a cause whose row was cut is named by its event id.
        targets: dict[str, EventRow | int] = {}
        for cid in row.causes:
            target = row_of.get(cid, cid)
            targets.setdefault(target.anchor if isinstance(target, EventRow) else str(target), target)
        causes = []
        for target in list(targets.values())[:3]:
            if isinstance(target, int):
                causes.append(f"event #{target}")
                continue
            label = f"{html.escape(target.kind)} {html.escape(target.nodes[0])}"
            if target.count > 1:
                label = f"{html.escape(target.kind)} ×{target.count}"
            causes.append(f'<a href="#{target.anchor}">{label}</a> <span class="muted">at '
                          f"{_minutes(target.time)}</span>")
        if len(targets) > 3:
            causes.append(f'<span class="muted">+{len(targets) - 3} more</span>')
        count = f' <span class="count">×{row.count}</span>' if row.count > 1 else ""
        body.append(
            f'<tr id="{row.anchor}" class="k-{html.escape(row.kind)}">'
            f'<td class="num">{_minutes(row.time)}<span class="clock">{_clock(row.time)}</span></td>'
            f'<td><span class="kind">{html.escape(row.kind.replace("_", " "))}</span>{count}</td>'
            f'<td title="{html.escape(every)}">{html.escape(", ".join(nodes))}</td>'
            f"<td>{detail}</td>"
            f"<td>{'<br>'.join(causes) if causes else '<span class=muted>—</span>'}</td>"
            f"<td>{html.escape(row.fault) if row.fault else '<span class=muted>—</span>'}</td></tr>"
        )
    shown = (f"Showing {len(rows)} of {total_rows} rows ({total_events:,} events); fault, datacenter, "
             "dependency and traffic events are kept first. The full log is in events.jsonl."
             if total_rows > len(rows) else f"{total_events:,} events in {total_rows} rows.")
    if not rows:
        return _table_section("Incident timeline", "No events: nothing failed and nothing was injected.", "")
    return (
        '<section id="timeline"><h2>Incident timeline</h2>'
        f'<p class="caption">Events of one kind at one moment are collapsed into one row with a count. '
        f"“Caused by” links to the row of the event that led to it. {shown}</p>"
        '<input id="event-filter" type="search" placeholder="Filter events (kind, node, fault…)" '
        'aria-label="Filter events">'
        + _table("events", ("Minute", "Event", "Node", "Detail", "Caused by", "Fault"), body)
        + "</section>"
    )


def _details(details: Counter) -> str:
    common = details.most_common()
    if not common or (len(common) == 1 and not common[0][0]):
        return ""
    if len(common) == 1:
        return html.escape(common[0][0])
    shown = "; ".join(f"{html.escape(d) or '—'} ({n})" for d, n in common[:2])
    return shown + (f' <span class="muted">+{len(common) - 2} others</span>' if len(common) > 2 else "")


# ------------------------------------------------------------------------------------------ page parts


def _header(result: Result) -> str:
    s, scenario = result.summary, result.scenario
    m = s.get("manifest", {})
    meta = [
        f"seed {html.escape(str(result.seed))}",
        f"duration {_span(scenario.duration)}",
        f"engine {html.escape(str(m.get('engine', scenario.engine)))}",
        f"cascadesim {html.escape(str(m.get('version', '')))}",
    ]
    if m.get("scenario_hash"):
        meta.append(f"scenario hash {html.escape(str(m['scenario_hash'])[:12])}")
    description = (f'<p class="description">{html.escape(scenario.description.strip())}</p>'
                   if scenario.description.strip() else "")
    return (
        f'<header><h1><span class="muted">cascadesim ·</span> {html.escape(scenario.name)}</h1>{description}'
        f'<p class="meta">{" · ".join(meta)}</p></header>'
    )


def _kpi(key: str, label: str, value: str, sub: str = "", data: Any = None, cls: str = "") -> str:
    raw = repr(data) if isinstance(data, float) else str(data)
    attr = "" if data is None else f' data-value="{html.escape(raw)}"'
    sub_html = f'<div class="sub">{sub}</div>' if sub else ""
    return (f'<div class="kpi {cls}" id="kpi-{key}"{attr}><div class="label">{label}</div>'
            f'<div class="value">{value}</div>{sub_html}</div>')


def _headline(s: dict) -> str:
    slo = s["slo"]
    met = bool(slo["met"])
    word = "met" if met else "breached"
    objective = [f"availability ≥ {_objective(slo['availability'])}"]
    if slo.get("latency_p99") is not None:
        objective.append(f"p99 latency ≤ {_latency(slo['latency_p99'])}")
    parts = [f"availability {_pct(s['availability'])} "
             f"{'≥' if slo.get('availability_met', s['availability'] >= slo['availability']) else '<'} "
             f"{_objective(slo['availability'])}"]
    if slo.get("latency_p99") is not None:
        parts.append(f"p99 {_latency(s['latency']['p99'])} {'≤' if slo.get('latency_met', True) else '>'} "
                     f"{_latency(slo['latency_p99'])}")
    verdict = (
        f'<div class="verdict {word}" id="kpi-slo" data-value="{word}"><strong>SLO {word}</strong>'
        f'<span>objective: {html.escape(" and ".join(objective))}</span>'
        f'<span class="muted">{html.escape("; ".join(parts))}</span></div>'
    )
    counts = s.get("counts", {})
    worst_region = s.get("worst_region")
    region = s.get("regions", {}).get(worst_region, {}) if worst_region else {}
    faults = {f["id"]: f for f in s.get("faults", [])}
    worst_fault = s.get("worst_fault")
    wf = faults.get(worst_fault, {})
    lat = s.get("latency", {})
    cards = [
        _kpi("availability", "Availability", _pct(s["availability"]),
             f"{s['succeeded']:,} of {s['requests']:,} requests succeeded", s["availability"],
             "good" if slo.get("availability_met", True) else "bad"),
        _kpi("nines", "Nines", f"{s['nines']:.2f}", "−log₁₀(1 − availability)", s["nines"]),
        _kpi("downtime", "Downtime", f"{s['downtime_minutes']:,.1f} min",
             f"{_span(slo['window'])} windows below {_objective(slo['availability'])}",
             s["downtime_minutes"]),
        _kpi("requests", "Requests", f"{s['requests']:,}",
             f"{counts.get('failed', s['requests'] - s['succeeded']):,} failed · "
             f"{counts.get('timeouts', 0):,} timeouts", s["requests"]),
        _kpi("retries", "Retries", f"{counts.get('retries', 0):,}",
             f"amplification <span id=\"kpi-amplification\" data-value=\"{s['amplification']!r}\">"
             f"{s['amplification']:.3f}×</span> ({counts.get('attempts', 0):,} attempts)",
             counts.get("retries", 0)),
        _kpi("latency", "Latency", f"p50 {_latency(lat.get('p50'))}<br>p99 {_latency(lat.get('p99'))}",
             f"mean {_latency(lat.get('mean'))}", None),
        _kpi("worst-region", "Worst region", html.escape(worst_region) if worst_region else "—",
             f"{_pct(region['availability'])} available · {region.get('downtime_minutes', 0):,.1f} min down"
             if region else "", worst_region or ""),
        _kpi("worst-fault", "Worst fault", html.escape(worst_fault) if worst_fault else "none",
             f"{html.escape(str(wf.get('kind', '')))} · {wf.get('downtime_minutes', 0):,.1f} min of downtime"
             if wf else "", worst_fault or ""),
    ]
    return f'<section class="headline">{verdict}<div class="kpis">{"".join(cards)}</div></section>'


def _section(title: str, fid: str, caption: str) -> str:
    return (f'<section><h2>{html.escape(title)}</h2><p class="caption">{html.escape(caption)}</p>'
            f'<div id="{fid}" class="fig"></div></section>')


def _table_section(title: str, caption: str, table: str) -> str:
    return (f'<section><h2>{html.escape(title)}</h2><p class="caption">{html.escape(caption)}</p>'
            f"{table}</section>")


def _faults_table(s: dict) -> str:
    faults = s.get("faults", [])
    if not faults:
        return _table_section("Faults", "The scenario injects no faults.", "")
    rows = []
    for f in faults:
        affected = f.get("affected", [])
        n = f.get("affected_count", len(affected))
        shown = ", ".join(affected[:6]) + (f", … (+{n - 6})" if n > 6 else "")
        worst = ' class="worst"' if f["id"] == s.get("worst_fault") else ""
        rows.append(
            f"<tr{worst}><td>{html.escape(f['id'])}</td><td>{html.escape(f['kind'])}</td>"
            f'<td class="num">{f.get("occurrences", 0)}</td>'
            f'<td class="num">{_minutes(f.get("start"))}</td><td class="num">{_minutes(f.get("end"))}</td>'
            f'<td class="num">{f.get("downtime_minutes", 0):,.1f}</td>'
            f'<td class="num">{_span(f.get("time_to_detect"))}</td>'
            f'<td class="num">{_span(f.get("time_to_recover"))}</td>'
            f"<td>{'yes' if f.get('recovered') else '<strong>no</strong>'}</td>"
            f'<td><span class="num">{n}</span> {html.escape(shown)}</td></tr>'
        )
    table = _table("faults", ("Fault", "Kind", "Times", "Start (min)", "End (min)", "Downtime (min)",
                              "Detected after", "Recovered after", "Recovered", "Affected"), rows)
    return _table_section("Faults", "Per injected fault: when it acted, the SLO windows it breached, how "
                          "long until the control plane reacted and until availability recovered.", table)


def _regions_table(s: dict) -> str:
    rows = []
    for name, r in s.get("regions", {}).items():
        worst = ' class="worst"' if name == s.get("worst_region") else ""
        rows.append(
            f"<tr{worst}><td>{html.escape(name)}</td><td class=\"num\">{_pct(r['availability'])}</td>"
            f'<td class="num">{r.get("nines", 0):.2f}</td><td class="num">{r.get("requests", 0):,}</td>'
            f'<td class="num">{r.get("downtime_minutes", 0):,.1f}</td>'
            f'<td class="num">{_latency(r.get("latency_p50"))}</td>'
            f'<td class="num">{_latency(r.get("latency_p99"))}</td></tr>'
        )
    table = _table("regions", ("Region", "Availability", "Nines", "Requests", "Downtime (min)", "p50", "p99"),
                   rows)
    return _table_section("Regions", "Availability and latency as each region's users saw them.", table)


def _table(tid: str, headers: Sequence[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return (f'<div class="scroll"><table id="{tid}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table></div>")


def _footer() -> str:
    return ("<footer>Generated by cascadesim. Self-contained: works offline; the numbers behind every "
            "figure are in summary.json, events.jsonl, timeseries.csv and datacenters.csv next to this file."
            "</footer>")


# ------------------------------------------------------------------------------------------ formatting


def _pct(a: float | None) -> str:
    """Availability as a percentage with enough decimals to show its nines: ``99.857%``."""
    if a is None:
        return "—"
    if a >= 1.0:
        return "100%"
    decimals = max(1, min(6, math.ceil(-math.log10(max(1.0 - a, 1e-12)))))
    text = f"{a * 100:.{decimals}f}"
    while text.startswith("100") and decimals < 9:  # never round a failure up to 100%
        decimals += 1
        text = f"{a * 100:.{decimals}f}"
    return text + "%"


def _objective(a: float) -> str:
    return f"{a * 100:.6g}%"


def _latency(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _span(seconds: float | None) -> str:
    """Format a duration in the unit that reads best: ``45 s``, ``2.5 min``, ``3 h``."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:,.2f}"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    frac = seconds - whole
    return f"{h}:{m:02d}:{sec:02d}" + (f".{int(frac * 10)}" if frac >= 0.05 else "")


def _bandwidth(bits: float | None) -> str:
    if not bits:
        return "—"
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.3g} bit/s"


# ------------------------------------------------------------------------------------------ embedding


def _to_json(fig: go.Figure) -> str:
    return pio.to_json(fig, validate=False, pretty=False, remove_uids=True)


def _script_json(text: str) -> str:
    r"""Make JSON safe inside ``<script>``: no ``</script>``, ``<!--`` or line separators can break out.

    ``<``, ``>`` and ``&`` only occur inside JSON strings, where ``\\u003c`` means the same.
    """
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _init_js() -> str:
    ids = ", ".join(f'"{f}"' for f in TIME_FIGURES)
    return """
(function () {
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"]};
  var blocks = document.querySelectorAll('script[type="application/json"][data-figure]');
  for (var i = 0; i < blocks.length; i++) {
    var spec = JSON.parse(blocks[i].textContent);
    Plotly.newPlot(blocks[i].getAttribute("data-figure"), spec.data, spec.layout, config);
  }
  // One time axis: zooming or panning one time-series figure moves the others.
  var timeFigs = [%IDS%].map(function (id) { return document.getElementById(id); });
  var syncing = false;
  timeFigs.forEach(function (el) {
    if (!el || !el.on) return;
    el.on("plotly_relayout", function (ev) {
      if (syncing) return;
      var r0, r1, reset = false;
      Object.keys(ev).forEach(function (k) {
        var m = k.match(/^xaxis\\d*\\.range\\[([01])\\]$/);
        if (m) { if (m[1] === "0") r0 = ev[k]; else r1 = ev[k]; }
        else if (/^xaxis\\d*\\.range$/.test(k)) { r0 = ev[k][0]; r1 = ev[k][1]; }
        else if (/^xaxis\\d*\\.autorange$/.test(k)) reset = true;
      });
      if (r0 === undefined && !reset) return;
      var update = reset ? {"xaxis.autorange": true} : {"xaxis.range": [r0, r1]};
      syncing = true;
      Promise.all(timeFigs.filter(function (o) { return o && o !== el; })
        .map(function (o) { return Plotly.relayout(o, update); }))
        .then(function () { syncing = false; }, function () { syncing = false; });
    });
  });
  // Filter the incident timeline.
  var filter = document.getElementById("event-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      var rows = document.querySelectorAll("#events tbody tr");
      for (var i = 0; i < rows.length; i++) {
        rows[i].style.display = rows[i].textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      }
    });
  }
})();
""".replace("%IDS%", ids)


_CSS = """
:root { --fg: #24292f; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; --good: #1a7f37; --bad: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header .description { margin: 6px 0; max-width: 80ch; white-space: pre-line; }
header .meta, .muted { color: var(--muted); }
header .meta { font-size: 12px; margin: 4px 0 0; }
h2 { font-size: 18px; margin: 32px 0 4px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.caption { color: var(--muted); margin: 4px 0 8px; font-size: 13px; max-width: 110ch; }
.headline { margin-top: 20px; }
.verdict { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: baseline; padding: 12px 16px;
  border-radius: 8px; border: 1px solid; }
.verdict strong { font-size: 18px; }
.verdict.met { background: #dafbe1; border-color: #8fd19e; } .verdict.met strong { color: var(--good); }
.verdict.breached { background: #ffebe9; border-color: #ff9b93; }
.verdict.breached strong { color: var(--bad); }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px;
  margin-top: 12px; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; background: var(--bg); }
.kpi .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.kpi .value { font-size: 22px; font-weight: 650; line-height: 1.25; font-variant-numeric: tabular-nums;
  overflow-wrap: anywhere; }
.kpi .sub { font-size: 12px; color: var(--muted); }
.kpi.good .value { color: var(--good); } .kpi.bad .value { color: var(--bad); }
.fig { width: 100%; min-height: 200px; }
.scroll { overflow: auto; max-height: 640px; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { position: sticky; top: 0; background: var(--bg); font-weight: 600; white-space: nowrap; }
td.num, .num { font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.worst td { background: #fff8c5; }
tr:target td { background: #ddf4ff; }
.clock { display: block; color: var(--muted); font-size: 11px; }
.kind { display: inline-block; padding: 0 7px; border-radius: 10px; background: #eaeef2;
  white-space: nowrap; }
.count { font-weight: 600; color: var(--muted); }
tr.k-fault_start .kind, tr.k-server_down .kind, tr.k-datacenter_down .kind, tr.k-dependency_down .kind,
tr.k-database_unavailable .kind { background: #ffebe9; color: #a40e26; }
tr.k-ejected .kind, tr.k-traffic_shift .kind, tr.k-failover .kind { background: #fff1e5; color: #953800; }
tr.k-fault_end .kind, tr.k-server_up .kind, tr.k-datacenter_up .kind, tr.k-dependency_up .kind,
tr.k-readmitted .kind { background: #dafbe1; color: #116329; }
#event-filter { margin: 0 0 8px; padding: 6px 10px; width: min(420px, 100%); border: 1px solid var(--line);
  border-radius: 6px; font: inherit; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""
