"""Fault windows and per-window series, bucketed to a few hundred points per trace.

A day of one-minute windows is 1,440 points per trace; the page keeps at most :data:`MAX_POINTS`
per trace by reducing consecutive windows to their worst value (the minimum of an availability, the
maximum of a latency), so short dips stay visible. Values are rounded to a few significant digits; the
CSV files beside the report keep every digit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.report.style import FAULT_COLORS, round_sig, span

__all__ = ["FaultWindow", "fault_windows", "FaultShading", "Series", "bucket", "MAX_POINTS",
           "MAX_FAULT_SHAPES", "time_layout"]

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


class FaultShading:
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
        return (f" Each point is the worst of {self.k} consecutive {span(self.window)} windows "
                f"({span(self.k * self.window)}) so short dips stay visible; full series in the CSV files.")


def time_layout(title: str, height: int, duration: float) -> dict:
    """The layout of a time-series figure: minutes since the start on x, one range for every figure."""
    from sim.report.style import FONT

    return dict(
        template="plotly_white",
        height=height,
        margin=dict(l=64, r=24, t=36, b=44),
        font=dict(family=FONT, size=12, color="#24292f"),
        hovermode="x unified",
        legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom", font=dict(size=11)),
        xaxis=dict(title=dict(text="minutes since start"), range=[0, duration / 60], zeroline=False),
        yaxis=dict(title=dict(text=title), zeroline=False),
    )
