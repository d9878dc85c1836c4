"""The topology as the run unfolds: regions, datacenters, servers, links and dependencies coloured by state.

States come from the event log (:func:`node_states`): a server is *down* between ``server_down`` and
``server_up``, *ejected* between ``ejected`` and ``readmitted``, *overloaded* between ``overloaded`` and
``overload_cleared``; datacenters, dependencies, links and regions have their own pairs (see
:func:`sim.events.conditions`). The figure has a time slider: each step shows the worst state of every node during
that step (so a ten-second ejection still shows), and the first step, *whole run*, the worst state over
the run. Above :data:`MAX_SERVER_NODES` servers the servers are counted per datacenter and state
instead of drawn one by one, so a 10,000-server topology stays small.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import plotly.graph_objects as go

from sim.events import EJECTED as EJECTED_KIND
from sim.events import KINDS, SERVER_DOWN, TRAFFIC_SHIFT, conditions
from sim.report.style import DOWN, EJECTED, FONT, OK, OVERLOADED
from sim.units import format_bandwidth, format_clock, format_count, format_latency, format_span

__all__ = [
    "topology_figure",
    "topology_caption",
    "node_states",
    "MAX_SERVER_NODES",
    "MAX_STEPS",
    "STATE_NAMES",
    "server_trace_index",
]

MAX_SERVER_NODES = 300  # above this, the topology shows per-datacenter counts instead of servers
MAX_STEPS = 120  # slider steps (each a whole number of SLO windows)

STATE_NAMES = ("healthy", "overloaded / slow", "ejected / degraded / saturated", "down / SLO breached")
_COLORS = (OK, OVERLOADED, EJECTED, DOWN)
# A discrete colour scale for state codes 0..3 (cmin 0, cmax 3).
COLORSCALE = [
    [0.0, OK],
    [1 / 6, OK],
    [1 / 6, OVERLOADED],
    [0.5, OVERLOADED],
    [0.5, EJECTED],
    [5 / 6, EJECTED],
    [5 / 6, DOWN],
    [1.0, DOWN],
]


def node_states(
    events: Iterable[dict[str, Any]], duration: float
) -> dict[str, list[tuple[float, float, int]]]:
    """Per node, the intervals ``(start, end, severity)`` of every condition the event log records.

    A condition that never ends lasts to ``duration``; an end without a start is ignored; a second start
    while open (``link_degraded`` when another congestion stacks) changes nothing.

    >>> ev = [{"time": 60.0, "kind": "server_down", "node": "s"}, {"time": 90.0, "kind": "server_up", "node": "s"}]
    >>> node_states(ev, 600.0)
    {'s': [(60.0, 90.0, 3)]}
    """
    starts = conditions()  # start kind -> (end kind, severity: 3 down, 2 ejected/degraded, 1 overloaded/slow)
    ends = {end: start for start, (end, _) in starts.items()}
    open_: dict[tuple[str, str], float] = {}
    out: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (float(e["time"]), e.get("id", 0))):
        kind, node, t = e["kind"], str(e["node"]), float(e["time"])
        if kind in starts:
            open_.setdefault((node, kind), t)
        elif kind in ends:
            start = open_.pop((node, ends[kind]), None)
            if start is not None:
                out[node].append((start, t, starts[ends[kind]][1]))
    for (node, kind), start in open_.items():
        out[node].append((start, max(start, duration), starts[kind][1]))
    return {k: sorted(v) for k, v in out.items()}


def _severity(intervals: list[tuple[float, float, int]], edges: np.ndarray) -> np.ndarray:
    """Worst severity during each step ``[edges[i], edges[i+1])`` (an instant counts in its step)."""
    out = np.zeros(len(edges) - 1, dtype=np.int8)
    for a, b, sev in intervals:
        lo = max(0, int(np.searchsorted(edges, a, side="right")) - 1)
        hi = max(lo + 1, int(np.searchsorted(edges, b, side="left")))
        seg = out[lo:hi]
        np.maximum(seg, sev, out=seg)
    return out


@dataclass
class _History:
    """What happened to each node over the whole run (hover text)."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    first: dict[str, float] = field(default_factory=dict)
    faults: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    shifted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> _History:
        h = cls()
        starts = conditions()
        for e in events:
            kind, node = e["kind"], str(e["node"])
            if kind in starts:
                h.counts[node][kind] += 1
                h.first.setdefault(node, float(e["time"]))
                if e.get("fault"):
                    h.faults[node].add(str(e["fault"]))
            elif kind == TRAFFIC_SHIFT:
                h.shifted[node].append(f"{format_clock(e['time'])}: {str(e.get('detail', '')).split('.')[0]}")
        return h

    def describe(self, node: str) -> str:
        """Hover lines about what happened to ``node`` (escaped)."""
        c = self.counts.get(node)
        if not c:
            return "never affected"
        words = {k.name: k.label for k in KINDS.values() if k.label}
        lines = [", ".join(f"{words.get(k, k)} {n}×" for k, n in c.most_common())]
        lines.append(f"first at {format_clock(self.first[node])}")
        if self.faults.get(node):
            lines.append("fault: " + html.escape(", ".join(sorted(self.faults[node])[:4])))
        return "<br>".join(lines)


def _steps(duration: float, window: float) -> np.ndarray:
    """Step edges: whole SLO windows, at most :data:`MAX_STEPS` steps."""
    n_windows = max(1, math.ceil(duration / window - 1e-9))
    per = max(1, math.ceil(n_windows / MAX_STEPS))
    step = per * window
    n = max(1, math.ceil(duration / step - 1e-9))
    return np.array([min(i * step, duration) for i in range(n)] + [duration], dtype=float)


def server_trace_index(fig: dict) -> int:
    """Index of the trace whose colours are the servers' (or the datacenters' in aggregate mode)."""
    for i, t in enumerate(fig["data"]):
        if t.get("meta") == "states":
            return i
    raise LookupError("no state trace")


def topology_figure(result: Any, G: nx.Graph) -> go.Figure:
    """The topology, coloured by state, with a time slider (see the module docstring)."""
    duration = float(result.scenario.duration)
    window = result.stats.slo.window
    states = node_states(result.events, duration)
    history = _History.of(result.events)
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
    edges = _steps(duration, window)
    n_steps = len(edges) - 1

    def timeline(node: str) -> np.ndarray:  # [whole run, step 0, step 1, ...]
        per_step = _severity(states[node], edges) if node in states else np.zeros(n_steps, np.int8)
        whole = max((s for _, _, s in states.get(node, ())), default=0)
        return np.concatenate([[whole], per_step]).astype(np.int8)

    # Deterministic layout: datacenters on a row at y=0, their servers in a grid below, regions above,
    # dependencies at the bottom.
    pos: dict[str, tuple[float, float]] = {}
    blocks: dict[str, tuple[float, float, int]] = {}  # dc -> (left x, width, grid rows)
    left = 0.0
    for dc in dcs:
        n = len(servers_of[dc])
        cols = 4 if aggregate else min(12, max(1, math.ceil(math.sqrt(n))))
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
    link_names = {frozenset(link.between): "~".join(link.between) for link in result.scenario.topology.links}
    link_nodes = _edges(fig, G, pos, kind_of, link_names)
    shapes = []
    for box_left, box_width, grid_rows in blocks.values():
        shapes.append(
            dict(
                type="rect",
                x0=box_left - 0.6,
                x1=box_left + box_width - 0.4,
                y0=box_bottom(grid_rows),
                y1=-0.6,
                line=dict(color="#d0d7de", width=1),
                fillcolor="rgba(246,248,250,0.9)",
                layer="below",
            )
        )

    # Every state-coloured trace: (trace index, [code per node per step]).
    coloured: list[tuple[int, np.ndarray]] = []
    sized: list[tuple[int, np.ndarray, np.ndarray]] = []  # aggregate counts: (index, sizes, texts)

    def marker(codes: np.ndarray, **extra: Any) -> dict:
        return dict(color=codes[:, 0].tolist(), cmin=0, cmax=3, colorscale=COLORSCALE, **extra)

    # Links: a marker at the top of each arc.
    link_info = {
        "~".join(link.between): f"{format_bandwidth(link.capacity)}, {format_latency(link.latency)}"
        for link in result.scenario.topology.links
    }
    if link_nodes:
        names = [n for n, _, _ in link_nodes]
        codes = np.array([timeline(n) for n in names]).reshape(len(names), n_steps + 1)
        coloured.append((len(fig.data), codes))
        fig.add_scatter(
            x=[x for _, x, _ in link_nodes],
            y=[y for _, _, y in link_nodes],
            mode="markers",
            name="links",
            showlegend=False,
            hoverinfo="text",
            hovertext=[
                f"<b>link {html.escape(n)}</b><br>{link_info.get(n, '')}<br>{history.describe(n)}"
                for n in names
            ],
            marker=marker(codes, size=10, symbol="diamond-wide", line=dict(color="white", width=1)),
        )

    # Regions.
    if regions:
        codes = np.array([timeline(r) for r in regions]).reshape(len(regions), n_steps + 1)
        coloured.append((len(fig.data), codes))
        hover = []
        for r in regions:
            users = G.nodes[r].get("users") or 0
            shifts = "<br>".join(html.escape(s) for s in history.shifted.get(r, [])[:6])
            hover.append(
                f"<b>region {html.escape(r)}</b><br>{format_count(users, 'user')}<br>{history.describe(r)}"
                + (f"<br>{shifts}" if shifts else "")
            )
        fig.add_scatter(
            x=[pos[r][0] for r in regions],
            y=[pos[r][1] for r in regions],
            mode="markers+text",
            name="regions",
            showlegend=False,
            text=[html.escape(r) for r in regions],
            textposition="top center",
            hovertext=hover,
            hoverinfo="text",
            marker=marker(codes, size=24, symbol="circle", line=dict(color="white", width=2)),
        )

    # Servers: their worst state per step, per server or counted per datacenter.
    server_codes = {s: timeline(s) for dc in dcs for s in servers_of[dc]}
    dc_codes = []
    for dc in dcs:
        own = timeline(dc)
        member_codes = [server_codes[s] for s in servers_of[dc]]
        if member_codes:
            stack = np.vstack(member_codes)
            worst = np.minimum(stack.max(axis=0), 2)  # a server down or ejected degrades its datacenter
            own = np.maximum(own, worst)
            if len(member_codes) > 0:
                all_down = (stack == 3).all(axis=0)
                own = np.where(all_down, 3, own)
        dc_codes.append(own)
    codes = np.array(dc_codes, dtype=np.int8).reshape(len(dcs), n_steps + 1)
    dc_index = len(fig.data)
    coloured.append((dc_index, codes))
    text, hover = [], []
    for dc in dcs:
        members = servers_of[dc]
        location = G.nodes[dc].get("location") or ""
        where = f" ({html.escape(location)})" if location else ""
        down = sum(1 for s in members if history.counts.get(s, Counter()).get(SERVER_DOWN))
        ejected = sum(
            1
            for s in members
            if history.counts.get(s, Counter()).get(EJECTED_KIND)
            and not history.counts.get(s, Counter()).get(SERVER_DOWN)
        )
        text.append(f"<b>{html.escape(dc)}</b>" + (f"<br><i>{html.escape(location)}</i>" if location else ""))
        hover.append(
            f"<b>datacenter {html.escape(dc)}</b>{where}<br>{format_count(len(members), 'server')}: "
            f"{format_count(down)} went down, {format_count(ejected)} ejected while up<br>{history.describe(dc)}"
        )
    fig.add_scatter(
        x=[pos[d][0] for d in dcs],
        y=[pos[d][1] for d in dcs],
        mode="markers+text",
        name="datacenters",
        showlegend=False,
        text=text,
        textposition="top center",
        hovertext=hover,
        hoverinfo="text",
        meta="states" if aggregate else None,
        marker=marker(codes, size=22, symbol="square", line=dict(color="white", width=2)),
    )

    if aggregate:
        per_dc = {
            dc: np.vstack([server_codes[s] for s in servers_of[dc]])
            if servers_of[dc]
            else np.zeros((0, n_steps + 1), np.int8)
            for dc in dcs
        }
        biggest = max((len(v) for v in servers_of.values()), default=1) or 1
        for j, code in enumerate((3, 2, 1, 0)):
            counts = np.array([(per_dc[dc] == code).sum(axis=0) for dc in dcs]).reshape(len(dcs), n_steps + 1)
            sizes = np.where(counts > 0, 8 + 26 * np.sqrt(counts / biggest), 0).round(1)
            xs = [blocks[dc][0] + j + (blocks[dc][1] - 4) / 2 for dc in dcs]
            sized.append((len(fig.data), sizes, counts))
            fig.add_scatter(
                x=xs,
                y=[-1.4] * len(dcs),
                mode="markers+text",
                name=STATE_NAMES[code],
                text=[format_count(c) for c in counts[:, 0]],
                textposition="bottom center",
                hovertext=[f"<b>{html.escape(dc)}</b>: servers {STATE_NAMES[code]}" for dc in dcs],
                hoverinfo="text",
                showlegend=False,
                marker=dict(
                    size=sizes[:, 0].tolist(), color=_COLORS[code], line=dict(color="white", width=1)
                ),
            )
    else:
        servers = [s for dc in dcs for s in servers_of[dc]]
        if servers:
            codes = np.array([server_codes[s] for s in servers]).reshape(len(servers), n_steps + 1)
            coloured.append((len(fig.data), codes))
            hover = [
                f"<b>{html.escape(s)}</b><br>{html.escape(G.nodes[s]['datacenter'])} · group "
                f"{html.escape(str(G.nodes[s].get('group', '')))}<br>{history.describe(s)}"
                for s in servers
            ]
            fig.add_scatter(
                x=[pos[s][0] for s in servers],
                y=[pos[s][1] for s in servers],
                mode="markers",
                name="servers",
                showlegend=False,
                hovertext=hover,
                hoverinfo="text",
                meta="states",
                marker=marker(codes, size=12, symbol="circle", line=dict(color="white", width=1)),
            )

    # Dependencies.
    if deps:
        codes = np.array([timeline(d) for d in deps]).reshape(len(deps), n_steps + 1)
        coloured.append((len(fig.data), codes))
        hover = [
            f"<b>dependency {html.escape(d)}</b> ({html.escape(str(G.nodes[d].get('role', '')))})"
            f"<br>{history.describe(d)}"
            for d in deps
        ]
        fig.add_scatter(
            x=[pos[d][0] for d in deps],
            y=[pos[d][1] for d in deps],
            mode="markers+text",
            name="dependencies",
            showlegend=False,
            text=[html.escape(d) for d in deps],
            textposition="bottom center",
            hoverinfo="text",
            hovertext=hover,
            marker=marker(codes, size=20, symbol="diamond", line=dict(color="white", width=2)),
        )

    # The legend: one entry per state.
    for code in (0, 1, 2, 3):
        fig.add_scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=STATE_NAMES[code],
            hoverinfo="skip",
            marker=dict(size=11, color=_COLORS[code]),
        )

    steps: list[dict[str, Any]] = []
    labels = ["whole run", *(format_clock(edges[i]) for i in range(n_steps))]
    for k, label in enumerate(labels):
        indices = [i for i, _ in coloured] + [i for i, _, _ in sized]
        colours = [c[:, k].tolist() for _, c in coloured]
        update: dict[str, list] = {
            "marker.color": colours + [_COLORS[code] for code in (3, 2, 1, 0)][: len(sized)]
        }
        if sized:
            update["marker.size"] = [[None]] * len(coloured) + [s[:, k].tolist() for _, s, _ in sized]
            update["text"] = [None] * len(coloured) + [
                [format_count(c) for c in counts[:, k]] for _, _, counts in sized
            ]
        steps.append(dict(method="restyle", label=label, args=[update, indices]))
    if sized:  # restyle needs one entry per trace: keep the coloured traces' sizes and texts as they are
        for step in steps:
            upd, indices = step["args"]
            n_col = len(coloured)
            col_sizes = [fig.data[i].marker.size for i, _ in coloured]
            texts = [fig.data[i].text for i, _ in coloured]
            upd["marker.size"] = [col_sizes[j] for j in range(n_col)] + upd["marker.size"][n_col:]
            upd["text"] = [texts[j] for j in range(n_col)] + upd["text"][n_col:]

    bottom = lowest - (2.3 if deps else 0.3)
    top = 4.0
    x_range = [-1.0, span]
    unit = 1100 / (x_range[1] - x_range[0])  # px per layout unit on a wide screen
    square = unit >= 18
    unit = min(56.0, unit) if square else 50.0
    height = int(min(1000, max(340, 90 + unit * (top - bottom)))) + 90
    fig.update_layout(
        template="plotly_white",
        height=height,
        font=dict(family=FONT, size=12, color="#24292f"),
        margin=dict(l=10, r=10, t=30, b=110),
        shapes=shapes,
        hovermode="closest",
        legend=dict(orientation="h", x=0.5, xanchor="center", y=1.0, yanchor="bottom", font=dict(size=11)),
        xaxis=dict(visible=False, range=x_range, fixedrange=False),
        yaxis=dict(
            visible=False, range=[bottom, top], **({"scaleanchor": "x", "scaleratio": 1} if square else {})
        ),
        sliders=[
            dict(
                active=0,
                steps=steps,
                x=0.02,
                len=0.96,
                y=0,
                yanchor="top",
                pad=dict(t=10, b=10),
                currentvalue=dict(prefix="from ", font=dict(size=12)),
                font=dict(size=10),
                tickcolor="#d0d7de",
            )
        ],
    )
    return fig


def _edges(
    fig: go.Figure,
    G: Any,
    pos: dict[str, tuple[float, float]],
    kind_of: dict[str, str],
    link_names: dict[frozenset, str],
) -> list[tuple[str, float, float]]:
    """Draw region–datacenter and datacenter–datacenter edges (arcs above the row).

    Returns each link's name and the top of its arc.
    """
    lines: dict[str, tuple[list, list]] = {"serves": ([], []), "link": ([], [])}
    mid_x, mid_y, mid_text = [], [], []
    link_nodes = []
    for a, b, data in G.edges(data=True):
        kind = data.get("kind")
        if kind not in lines or a not in pos or b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        xs, ys = lines[kind]
        if kind == "link":  # an arc, so links between distant datacenters do not run through the others
            lift = min(1.6, 0.25 + 0.12 * abs(x1 - x0))
            ts = np.linspace(0, 1, 17)
            xs += [*(round(float(v), 4) for v in x0 + (x1 - x0) * ts), None]
            ys += [*(round(float(v), 4) for v in y0 + 4 * lift * ts * (1 - ts)), None]
            name = link_names.get(frozenset((a, b)), f"{a}~{b}")
            link_nodes.append((name, (x0 + x1) / 2, y0 + lift))
            continue
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        region, dc = (a, b) if kind_of.get(a) == "region" else (b, a)
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_text.append(
            f"{html.escape(region)} → {html.escape(dc)}: {format_latency(data.get('latency'))} round trip"
        )
    style = {"serves": ("#8fb3d9", 1.4, "solid"), "link": ("#9aa5b1", 1.4, "dash")}
    for kind, (xs, ys) in lines.items():
        if xs:
            color, width, dash = style[kind]
            fig.add_scatter(
                x=xs,
                y=ys,
                mode="lines",
                hoverinfo="skip",
                showlegend=False,
                line=dict(color=color, width=width, dash=dash),
            )
    if mid_x:
        fig.add_scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            hovertext=mid_text,
            hoverinfo="text",
            showlegend=False,
            marker=dict(size=8, color="rgba(0,0,0,0)"),
        )
    return link_nodes


def topology_caption(G: nx.Graph, window: float, duration: float) -> str:
    """What the topology figure shows and how to read it."""
    n = sum(1 for _, k in G.nodes(data="kind") if k == "server")
    step = (_steps(duration, window)[1] if duration > 0 else window) / 60
    how = (
        f"The {format_count(n)} servers are counted per datacenter and state (marker size follows the count)."
        if n > MAX_SERVER_NODES
        else "Each dot is a server; hover for what happened to it."
    )
    return (
        "Regions (top) and the datacenters that serve them, their servers below, shared dependencies at "
        f"the bottom; diamonds on the arcs are the links. {how} Colours: grey healthy, yellow overloaded "
        "or slow, orange ejected (a datacenter: some servers down or ejected; a link: saturated), red "
        "down (a region: breaching its SLO). Move the slider to watch the run unfold in "
        f"steps of {format_span(step * 60)} (each from the time it is labelled with, h:mm:ss since the start), "
        "each showing the worst state during it; “whole run” shows the worst "
        "state over the run. Databases are not drawn."
    )
