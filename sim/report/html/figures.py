"""The time-series figures of the run report, on one time axis (minutes since the start).

Each figure is built from the per-window tables only (:class:`~sim.report.html.series.Series`) and
shades the fault windows the same way, so the eye can run down the page at one moment: availability per
region (lines, and a region × minute heatmap), latency, retry amplification, traffic, offered load
against capacity per datacenter, healthy servers per datacenter and link utilisation.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.report.html.series import FaultShading, Series, time_layout
from sim.report.style import DOWN, SERIES_COLORS, good_bad_scale
from sim.summary import Summary
from sim.units import format_latency, format_percent

__all__ = [
    "availability_figure",
    "heatmap_figure",
    "latency_figure",
    "amplification_figure",
    "traffic_figure",
    "load_figure",
    "healthy_figure",
    "links_figure",
    "MAX_LINKS",
]

MAX_LINKS = 12  # link utilisation lines; the busiest links are kept


def availability_figure(series: Series, s: Summary, shading: FaultShading) -> go.Figure:
    """Availability per window: all regions, each region, the windows below the objective."""
    objective = s.slo.availability * 100
    fig = go.Figure()
    ok, req = series.totals("ok"), series.totals("requests")
    overall = [float(o / r * 100) if r else None for o, r in zip(ok, req, strict=True)]
    x = series.x(step=True)
    names = list(series.regions)
    if len(names) > 1:
        for i, name in enumerate(names):
            values = [
                None if r["availability"] is None else r["availability"] * 100 for r in series.regions[name]
            ]
            color = SERIES_COLORS[(i + 1) % len(SERIES_COLORS)]
            fig.add_scatter(
                x=x,
                y=series.reduce(values, "min", step=True, digits=8),
                name=html.escape(name),
                mode="lines",
                line=dict(width=1.2, shape="hv", color=color),
                hovertemplate="%{y:.3f}%",
            )
    label = "all regions" if len(names) > 1 else html.escape(names[0]) if names else "availability"
    fig.add_scatter(
        x=x,
        y=series.reduce(overall, "min", step=True, digits=8),
        name=label,
        mode="lines",
        line=dict(width=2.2, shape="hv", color=SERIES_COLORS[0]),
        hovertemplate="%{y:.3f}%",
    )
    below = [v if v is not None and v < objective else None for v in series.reduce(overall, "min", digits=8)]
    if any(v is not None for v in below):
        fig.add_scatter(
            x=series.x(),
            y=below,
            name=f"below {format_percent(s.slo.availability)}",
            mode="markers",
            marker=dict(color=DOWN, size=6, symbol="x"),
            hovertemplate="%{y:.3f}%",
        )
    layout = time_layout("availability (%)", series.duration, shading, legend=_names(fig))
    layout["shapes"].append(
        {**_hline(objective, f"objective {format_percent(s.slo.availability)}"), "name": "objective"})
    fig.update_layout(**layout)
    return fig


def _names(fig: go.Figure) -> list[str]:
    """The names the figure's legend will show (to size the figure so the legend leaves the plot its room)."""
    return [str(t.name) for t in fig.data if t.name and t.showlegend is not False]


def latency_figure(series: Series, s: Summary, shading: FaultShading) -> go.Figure:
    """p50 and p99 latency of successful requests per region, with the p99 objective."""
    fig = go.Figure()
    x = series.x(step=True)
    for i, (name, rows) in enumerate(series.regions.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        label = html.escape(name)
        for q, dash, width in (("p99", None, 1.8), ("p50", "dot", 1.2)):
            values = [None if r[f"latency_{q}"] is None else r[f"latency_{q}"] * 1000 for r in rows]
            fig.add_scatter(
                x=x,
                y=series.reduce(values, "max", step=True),
                name=f"{label} {q}",
                mode="lines",
                legendgroup=label,
                line=dict(color=color, width=width, dash=dash, shape="hv"),
                hovertemplate="%{y:.1f} ms",
            )
    # The legend stacks each region's p99 over its p50: two lines per row of regions.
    layout = time_layout("latency (ms)", series.duration, shading, legend=_names(fig)[::2], legend_lines=2)
    target = s.slo.latency_p99
    if target is not None:
        layout["shapes"].append(_hline(target * 1000, f"p99 objective {format_latency(target)}"))
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


def traffic_figure(series: Series, shading: FaultShading) -> go.Figure:
    """User requests, attempts, retries, failures, timeouts and shed requests per second."""
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
        fig.add_scatter(
            x=x,
            y=series.reduce(values.tolist(), "max", step=True),
            name=label,
            mode="lines",
            line=dict(color=color, width=1.6, dash=dash, shape="hv"),
            hovertemplate="%{y:.1f}",
        )
    layout = time_layout("per second", series.duration, shading, legend=_names(fig))
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


def load_figure(series: Series, shading: FaultShading) -> go.Figure:
    """Offered attempts against capacity, one panel per datacenter (one plot of shares when many)."""
    names = list(series.dcs)
    if len(names) > 16:
        return utilisation_figure(series, shading)
    cols = 1 if len(names) == 1 else 2 if len(names) <= 4 else 3
    rows = max(1, math.ceil(len(names) / cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[html.escape(n) for n in names],
        vertical_spacing=min(0.12, 0.5 / rows),
        horizontal_spacing=0.06,
    )
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
        fig.add_scatter(
            x=x,
            y=capacity,
            name="capacity (req/s)",
            legendgroup="capacity",
            showlegend=i == 0,
            mode="lines",
            line=dict(color="#57606a", width=1.6, dash="dash", shape="hv"),
            hovertemplate="capacity %{y:.0f}/s",
            row=r + 1,
            col=c + 1,
        )
        fig.add_scatter(
            x=x,
            y=offered,
            name="offered (attempts/s)",
            legendgroup="offered",
            showlegend=i == 0,
            mode="lines",
            fill=None if log else "tozeroy",
            line=dict(color=SERIES_COLORS[0], width=1.8, shape="hv"),
            fillcolor="rgba(78,121,167,0.18)",
            hovertemplate="offered %{y:.1f}/s",
            row=r + 1,
            col=c + 1,
        )
        axis = "" if i == 0 else str(i + 1)
        shapes += shading.shapes(xref=f"x{axis}", yref=f"y{axis} domain")
    fig.update_xaxes(range=[0, series.duration / 60], matches="x", zeroline=False)
    fig.layout.xaxis.matches = None  # the first axis is the one the others match
    fig.update_xaxes(title_text="minutes since start", row=rows)
    if log:
        fig.update_yaxes(type="log", dtick=1, zeroline=False)  # a tick per power of ten
    else:
        fig.update_yaxes(rangemode="tozero", zeroline=False)
    fig.update_yaxes(title_text="per second" + (" (log)" if log else ""), col=1)
    height = 130 + 220 * rows
    layout = time_layout("per second", series.duration)
    del layout["xaxis"], layout["yaxis"]
    layout["height"] = height
    layout["margin"] = dict(l=64, r=24, t=64, b=44)
    layout["legend"]["y"] = 1 + 30 / (height - 64 - 44)  # above the subplot titles
    layout["shapes"] = shapes
    del layout["annotations"]  # the subplot titles
    fig.update_layout(**layout)
    for ann in fig.layout.annotations:
        ann.font = dict(size=12, color="#24292f")
    return fig


def utilisation_figure(series: Series, shading: FaultShading) -> go.Figure:
    """Many datacenters: offered load as a share of capacity, one line each, in one plot."""
    fig = go.Figure()
    x = series.x(step=True)
    for i, (name, dc) in enumerate(series.dcs.items()):
        values = [row["offered"] / row["capacity"] * 100 if row["capacity"] else None for row in dc]
        fig.add_scatter(
            x=x,
            y=series.reduce(values, "max", step=True),
            name=html.escape(name),
            mode="lines",
            line=dict(width=1.2, shape="hv", color=SERIES_COLORS[i % len(SERIES_COLORS)]),
            hovertemplate="%{y:.0f}%",
        )
    layout = time_layout("offered load / capacity (%)", series.duration, shading, legend=_names(fig), plot=280)
    layout["shapes"].append(_full_line())
    fig.update_layout(**layout)
    return fig


def _hline(y: float, label: str | None = None, color: str = "#57606a") -> dict:
    """A dashed reference line across the plot at ``y`` (an objective, 1x, 100% of capacity)."""
    line = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                line=dict(color=color, width=1, dash="dash"))
    if label:  # below the line, at its right end: inside the plot, clear of the fault lanes above it
        line["label"] = dict(text=label, textposition="end", yanchor="top", font=dict(size=10, color=color))
    return line


def _full_line(label: str | None = None) -> dict:
    """The 100% line (capacity, a link's bandwidth), in the colour of trouble."""
    return _hline(100, label, DOWN)


def healthy_figure(series: Series, shading: FaultShading) -> go.Figure:
    """Servers in rotation per datacenter (hover: how many are up)."""
    fig = go.Figure()
    x = series.x(step=True)
    for i, (name, dc) in enumerate(series.dcs.items()):
        healthy = series.reduce([row["healthy"] for row in dc], "min", step=True)
        up = series.reduce([row["up"] for row in dc], "min", step=True)
        total = dc[0]["servers"] if dc else 0
        fig.add_scatter(
            x=x,
            y=healthy,
            name=html.escape(name),
            mode="lines",
            customdata=up,
            line=dict(width=1.8, shape="hv", color=SERIES_COLORS[i % len(SERIES_COLORS)]),
            hovertemplate=f"%{{y}} in rotation, %{{customdata}} up, of {total:,}",
        )
    layout = time_layout("servers in rotation", series.duration, shading, legend=_names(fig))
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


def heatmap_figure(series: Series, s: Summary, shading: FaultShading) -> go.Figure:
    """Availability per region and time bucket: which region hurt, when, and how badly."""
    target = s.slo.availability * 100
    names = list(series.regions)
    z = []
    for name in names:
        values = [
            None if r["availability"] is None else r["availability"] * 100 for r in series.regions[name]
        ]
        z.append(series.reduce(values, "min", digits=8))
    lowest = min((v for row in z for v in row if v is not None), default=100.0)
    zmin = min(lowest, target - max(0.1, (100 - target)))  # the objective sits inside the scale
    cut = (target - zmin) / (100 - zmin) if 100 > zmin else 0.5
    colorscale = good_bad_scale("higher", cut)
    width = series.k * series.window / 60
    x = [round(t + width / 2, 4) for t in series.x()]
    fig = go.Figure(
        go.Heatmap(
            x=x,
            y=[html.escape(n) for n in names],
            z=z,
            zmin=zmin,
            zmax=100,
            colorscale=colorscale,
            xgap=0,
            ygap=2,
            hoverongaps=False,
            colorbar=dict(title=dict(text="%", side="top"), thickness=12, len=1.0, tickformat=".4~g"),
            hovertemplate="%{y}<br>minute %{x}<br>%{z:.3f}% available<extra></extra>",
        )
    )
    layout = time_layout("region", series.duration)
    layout["height"] = 16 + 60 + min(520, max(160, 36 * len(names)))  # at least 160 px of cells
    layout["hovermode"] = "closest"
    layout["yaxis"]["autorange"] = "reversed"
    layout["yaxis"]["title"] = None
    layout["margin"] = dict(l=90, r=24, t=16, b=60)
    layout["shapes"] = [
        {
            **sh,
            "fillcolor": "rgba(0,0,0,0)",
            "opacity": 1,
            "line": {"width": 1.5, "color": sh["fillcolor"], "dash": "dot"},
            "layer": "above",
        }
        for sh in shading.shapes()
    ]
    del layout["annotations"]
    fig.update_layout(**layout)
    return fig


def amplification_figure(series: Series, shading: FaultShading) -> go.Figure:
    """Attempts per user request over time: retries multiplying the load during the outage."""
    fig = go.Figure()
    x = series.x(step=True)
    req = series.totals("requests")
    att = series.totals("attempts")
    with np.errstate(divide="ignore", invalid="ignore"):
        overall = np.where(req > 0, att / np.maximum(req, 1), np.nan)
    names = list(series.regions)
    if len(names) > 1:
        for i, name in enumerate(names):
            values = [r["attempts"] / r["requests"] if r["requests"] else None for r in series.regions[name]]
            fig.add_scatter(
                x=x,
                y=series.reduce(values, "max", step=True, digits=4),
                name=html.escape(name),
                mode="lines",
                line=dict(width=1.2, shape="hv", color=SERIES_COLORS[(i + 1) % len(SERIES_COLORS)]),
                hovertemplate="%{y:.3f}×",
            )
    values = [None if math.isnan(v) else float(v) for v in overall]
    fig.add_scatter(
        x=x,
        y=series.reduce(values, "max", step=True, digits=4),
        name="client attempts per request" + (" (all regions)" if len(names) > 1 else ""),
        mode="lines",
        line=dict(width=2.2, shape="hv", color=SERIES_COLORS[0]),
        hovertemplate="%{y:.3f}×",
    )
    lb = (
        series.totals("lb_retries")
        if all("lb_retries" in r[0] for r in series.regions.values() if r)
        else None
    )
    if lb is not None and lb.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            both = np.where(req > 0, (att + lb) / np.maximum(req, 1), np.nan)
        fig.add_scatter(
            x=x,
            y=series.reduce([None if math.isnan(v) else float(v) for v in both], "max", step=True, digits=4),
            name="with load-balancer retries",
            mode="lines",
            line=dict(width=1.6, dash="dot", shape="hv", color=DOWN),
            hovertemplate="%{y:.3f}×",
        )
    layout = time_layout("attempts per user request", series.duration, shading, legend=_names(fig))
    layout["shapes"].append(_hline(1))
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig


def links_figure(series: Series, shading: FaultShading) -> tuple[go.Figure, int]:
    """Utilisation of the inter-datacenter links (the busiest :data:`MAX_LINKS`).

    Returns the figure and how many links were left out.
    """
    peaks = {}
    for name, rows in series.links.items():
        peaks[name] = max((r["utilisation"] for r in rows if r["utilisation"] is not None), default=0.0)
    shown = sorted(peaks, key=lambda n: (-peaks[n], n))[:MAX_LINKS]
    shown = [n for n in series.links if n in shown]  # keep the scenario's order
    fig = go.Figure()
    x = series.x(step=True)
    for i, name in enumerate(shown):
        rows = series.links[name]
        values = [None if r["utilisation"] is None else r["utilisation"] * 100 for r in rows]
        down = [r["capacity_bps"] == 0 for r in rows]
        values = [100.0 * 1.5 if d else v for v, d in zip(values, down, strict=True)] if any(down) else values
        fig.add_scatter(
            x=x,
            y=series.reduce(values, "max", step=True, digits=4),
            name=html.escape(name),
            mode="lines",
            line=dict(width=1.6, shape="hv", color=SERIES_COLORS[i % len(SERIES_COLORS)]),
            hovertemplate="%{y:.1f}%",
        )
    layout = time_layout("utilisation (%)", series.duration, shading, legend=_names(fig))
    layout["shapes"].append(_full_line(label="saturated"))
    layout["yaxis"]["rangemode"] = "tozero"
    fig.update_layout(**layout)
    return fig, len(series.links) - len(shown)
