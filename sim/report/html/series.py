"""Fault windows and per-window series, bucketed to a few hundred points per trace.

A day of one-minute windows is 1,440 points per trace; the page keeps at most :data:`MAX_POINTS`
per trace by reducing consecutive windows to their worst value (the minimum of an availability, the
maximum of a latency), so short dips stay visible. Values are rounded to a few significant digits; the
CSV files beside the report keep every digit.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.report.style import FAULT_COLORS, FONT, MUTED, round_sig
from sim.units import format_span

__all__ = ["FaultWindow", "fault_windows", "FaultShading", "Series", "bucket", "MAX_POINTS",
           "MAX_FAULT_SHAPES", "MAX_LANES", "time_layout"]

MAX_POINTS = 600  # points per time-series trace; longer series are bucketed
MAX_FAULT_SHAPES = 120  # shaded fault windows per figure (per subplot); nearby windows are merged

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


MAX_LANES = 8  # rows of fault lanes above a figure; faults past the eighth share the last row
LANE_PX = 17  # the height of one lane: a 10-px label with room to spare
PLOT_PX = 240  # the least height of a figure's plot area, whatever its legend and lanes take


class FaultShading:
    """Fault windows (in minutes), one colour per fault, merged per fault: shaded across a plot
    (:meth:`shapes`) and as *lanes* above it (:meth:`lanes`), one row per fault with its name, so
    overlapping windows stay apart and no two names overlap.
    """

    def __init__(self, windows: list[FaultWindow], duration: float):
        by_fault: dict[str, list[tuple[float, float]]] = {}
        for w in windows:
            by_fault.setdefault(w.fault, []).append((w.start, w.end))
        self.duration = duration
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

    def _band(self, a: float, b: float) -> tuple[float, float]:
        """A window in minutes, at least :attr:`min_width` wide."""
        return a / 60, max(b, a + self.min_width) / 60

    def shapes(self, xref: str = "x", yref: str = "paper", y0: float = 0.0, y1: float = 1.0) -> list:
        """Rectangles across one plot area, from ``y0`` to ``y1`` (in ``yref``), in each fault's colour."""
        out = []
        for fault, spans in self.spans.items():
            for a, b in spans:
                x0, x1 = self._band(a, b)
                out.append(dict(
                    type="rect", xref=xref, yref=yref, y0=y0, y1=y1, x0=x0, x1=x1,
                    fillcolor=self.color[fault], opacity=0.12, line={"width": 0}, layer="below",
                    name=f"fault {fault}",
                ))
        return out

    def rows(self) -> list[tuple[str, list[str]]]:
        """The lanes, top to bottom: (label, faults in it); past :data:`MAX_LANES` faults the last lane
        holds the rest.
        """
        faults = list(self.spans)
        if len(faults) <= MAX_LANES:
            return [(f, [f]) for f in faults]
        rest = faults[MAX_LANES - 1:]
        return [(f, [f]) for f in faults[: MAX_LANES - 1]] + [(f"+{len(rest)} more faults", rest)]

    def lanes(self, y0: float, y1: float) -> tuple[list, list]:
        """The fault lanes between ``y0`` and ``y1`` (paper coordinates, above the plot): one row per
        fault, its windows as bars and its name at its first window — inside the plot's width, so a name
        never runs off the figure. Returns (shapes, annotations).
        """
        rows = self.rows()
        if not rows:
            return [], []
        shapes, notes = [], []
        height = (y1 - y0) / len(rows)
        end = self.duration / 60
        for i, (label, faults) in enumerate(rows):
            top = y1 - i * height
            low, high = top - height * 0.85, top - height * 0.15
            grouped = len(faults) > 1
            first = min(a for f in faults for a, _ in self.spans[f]) / 60
            for f in faults:
                for a, b in self.spans[f]:
                    x0, x1 = self._band(a, b)
                    shapes.append(dict(
                        type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=low, y1=high,
                        fillcolor=MUTED if grouped else self.color[f], opacity=0.55, line={"width": 0},
                        layer="above", name=f"fault lane {f}",
                    ))
            # A name that would run past the end of the run is drawn leftwards from there instead.
            right = end > 0 and first / end + _text_width(label) > 0.98
            notes.append(dict(
                text=html.escape(label, quote=False), x=end if right else first, xref="x",
                xanchor="right" if right else "left",
                y=(low + high) / 2, yref="paper", yanchor="middle", showarrow=False,
                font={"size": 10, "color": "#24292f"}, name=f"fault label {label}",
                bgcolor="rgba(255,255,255,0.6)", borderpad=0,
            ))
        return shapes, notes


def _text_width(text: str) -> float:
    """How much of a narrow plot (700 px) a 10-px label takes, generously."""
    return (6.2 * len(text) + 6) / 700


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



class Series:
    """The per-window tables by region, datacenter and link, bucketed to ``MAX_POINTS`` points per trace.

    ``regions`` lists the regions in the scenario's order (a stored summary's keys are sorted), so a
    live run and its reloaded folder draw the same page.
    """

    def __init__(
        self,
        timeseries: list[dict],
        dc_series: list[dict],
        window: float,
        duration: float,
        link_series: list[dict] | None = None,
        order: Sequence[str] = (),
        max_points: int = MAX_POINTS,
    ):
        self.window, self.duration = window, duration
        self.regions: dict[str, list[dict]] = {name: [] for name in order}
        for row in timeseries:
            self.regions.setdefault(row["region"], []).append(row)
        self.regions = {k: v for k, v in self.regions.items() if v}
        self.dcs: dict[str, list[dict]] = {}
        for row in dc_series:
            self.dcs.setdefault(row["datacenter"], []).append(row)
        self.links: dict[str, list[dict]] = {}
        for row in link_series or []:
            self.links.setdefault(row["link"], []).append(row)
        for table in (*self.regions.values(), *self.dcs.values(), *self.links.values()):
            table.sort(key=lambda r: r["time"])
        first = next(iter(self.regions.values()), None) or next(iter(self.dcs.values()), [])
        self.n = len(first)
        self.k = max(1, math.ceil(self.n / max_points))
        self.times = [float(r["time"]) for r in first]

    def x(self, step: bool = False) -> list[float]:
        """Bucket start times in minutes; ``step`` adds the end of the run for a step line's last level."""
        xs = [round(t / 60, 4) for t in self.times[:: self.k]]
        return xs + [round(self.duration / 60, 4)] if step and xs else xs

    def reduce(self, values: Sequence[float | None], how: str, step: bool = False,
               digits: int | None = 5) -> list[float | None]:
        """Bucket ``values`` (one per window) like :meth:`x`; round to ``digits`` significant digits."""
        out = bucket(values, self.k, how)
        if digits is not None:
            out = round_sig(out, digits)
        return out + out[-1:] if step else out

    def totals(self, name: str) -> np.ndarray:
        """Sum a counter over regions, per window."""
        total = np.zeros(self.n)
        for rows in self.regions.values():
            total += np.array([r[name] or 0 for r in rows], dtype=float)
        return total

    def note(self) -> str:
        """Caption suffix when points are buckets of several windows."""
        if self.k == 1:
            return ""
        return (f" Each point is the worst of {self.k} consecutive {format_span(self.window)} windows "
                f"({format_span(self.k * self.window)}) so short dips stay visible; full series in the CSV files.")


def _legend_rows(names: Sequence[str], width: float = 1000.0) -> int:
    """How many rows a horizontal legend of ``names`` takes on a page about ``width`` px wide."""
    rows, used = 1, 0.0
    for name in names:
        item = 44 + 6.6 * len(name)
        if used and used + item > width:
            rows, used = rows + 1, 0.0
        used += item
    return rows if names else 0


def time_layout(
    title: str,
    duration: float,
    shading: FaultShading | None = None,
    legend: Sequence[str] = (),
    plot: int = PLOT_PX,
    legend_lines: int = 1,
) -> dict:
    """The layout of a time-series figure: minutes since the start on x, one range for every figure.

    The plot area keeps ``plot`` px whatever the legend (``legend``: the names it shows, each group of
    ``legend_lines`` entries stacked) and the fault lanes above the plot take: the figure grows instead.
    ``shading`` shades the fault windows across the plot and draws the lanes; the layout's ``shapes`` and
    ``annotations`` hold them (append to them).
    """
    lanes = len(shading.rows()) if shading is not None else 0
    lanes_px = lanes * LANE_PX + (6 if lanes else 0)
    top = 20 + 22 * legend_lines * _legend_rows(legend)
    bottom = 58  # the ticks and the axis title
    paper = plot + lanes_px
    domain = plot / paper
    shapes: list = []
    notes: list = []
    if shading is not None:
        shapes = shading.shapes(y1=domain)
        if lanes:
            lane_shapes, notes = shading.lanes(domain + 6 / paper, 1.0)
            shapes += lane_shapes
    return dict(
        template="plotly_white",
        height=paper + top + bottom,
        margin=dict(l=64, r=24, t=top, b=bottom),
        font=dict(family=FONT, size=12, color="#24292f"),
        hovermode="x unified",
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=11)),
        xaxis=dict(title=dict(text="minutes since start"), range=[0, duration / 60], zeroline=False),
        yaxis=dict(title=dict(text=title), zeroline=False, domain=[0, domain]),
        shapes=shapes,
        annotations=notes,
    )
