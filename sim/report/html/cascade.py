"""The cascade graph: from each root fault, the events it caused, left to right in time.

The event log is a forest (each event names its cause). Drawn as it is, a crash that takes 64 databases
down is 64 dots; so events are collapsed into *groups*: the children of one group that share a kind and
a place (a datacenter, else the region, link or dependency, else the kind of node) form one group with a
count. Occurrences of one fault (a random fault strikes many times) share one root. Each root keeps at
most :data:`MAX_GROUPS_PER_ROOT` groups — its deepest chain first, then the groups with the most events
below them — and at most :data:`MAX_ROOTS` roots are drawn, the largest first; what is left out is
counted in the hover text and the caption.

A group is drawn at the time of its first event, nudged right of its cause when both happened at the
same instant, so every edge points forward in time.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import plotly.graph_objects as go

from sim.events import CATEGORY_COLORS, FAULT_START, categories
from sim.report.story import datacenter_of
from sim.report.style import FONT
from sim.summary import FaultSummary
from sim.units import format_clock, format_count, format_span

__all__ = [
    "cascade_groups",
    "cascade_figure",
    "Group",
    "MAX_GROUPS_PER_ROOT",
    "MAX_ROOTS",
    "MAX_ROWS",
]

MAX_GROUPS_PER_ROOT = 30
MAX_ROOTS = 10
MAX_ROWS = 90  # groups drawn in all

_OTHER = ("other", "#8c959f")  # the category of a kind the event table gives none (sim.events)


@dataclass
class Group:
    """Events of one kind and place caused by one group (or the occurrences of one root fault)."""

    gid: int
    parent: int | None
    root: int
    kind: str
    place: str
    depth: int
    ids: list[int] = field(default_factory=list)
    first: float = math.inf
    last: float = -math.inf
    nodes: Counter = field(default_factory=Counter)
    causes: Counter = field(default_factory=Counter)  # "kind node" of the events' causes
    children: list[int] = field(default_factory=list)
    below: int = 0  # events in the groups below this one
    fault: str | None = None  # a root's fault id

    @property
    def count(self) -> int:
        """How many events the group stands for."""
        return len(self.ids)


def _place(G: nx.Graph, node: str) -> str:
    dc = datacenter_of(G, node)
    if dc is not None:
        return dc
    kind = G.nodes[node].get("kind") if node in G.nodes else None
    if kind in ("region", "dependency"):
        return node
    if kind is None and "~" in node:  # a link's name
        return node
    return kind or "—"


def cascade_groups(events: list[dict[str, Any]], G: nx.Graph) -> tuple[dict[int, Group], list[int]]:
    """Collapse the event forest into groups; return them by id and the root groups, largest first."""
    by_id = {e["id"]: e for e in events}
    kids: dict[int, list[int]] = defaultdict(list)
    for e in events:
        if e.get("cause") is not None and e["cause"] in by_id:
            kids[e["cause"]].append(e["id"])
    groups: dict[int, Group] = {}
    index: dict[tuple, int] = {}
    group_of: dict[int, int] = {}
    keys: dict[int, tuple] = {}

    def add(key: tuple, parent: int | None, root: int | None, e: dict[str, Any], depth: int) -> int:
        gid = index.get(key)
        if gid is None:
            gid = index[key] = len(groups)
            keys[gid] = key
            g = groups[gid] = Group(
                gid, parent, gid if root is None else root, e["kind"], _place(G, str(e["node"])), depth
            )
            if parent is not None:
                groups[parent].children.append(gid)
        g = groups[gid]
        g.ids.append(e["id"])
        t = float(e["time"])
        g.first, g.last = min(g.first, t), max(g.last, t)
        g.nodes[str(e["node"])] += 1
        cause = by_id.get(e.get("cause")) if e.get("cause") is not None else None
        if cause is not None:
            g.causes[f"{cause['kind']} {cause['node']}"] += 1
        group_of[e["id"]] = gid
        return gid

    roots: list[int] = []
    recovery = frozenset(k for k, (name, _) in categories().items() if name == "recovery")
    for e in sorted(events, key=lambda e: (float(e["time"]), e["id"])):
        if e.get("cause") is not None or (e["kind"] != FAULT_START and not kids.get(e["id"])):
            continue
        key: tuple = ("root", e.get("fault") or f"{e['kind']} {e['node']}")
        new = key not in index
        gid = add(key, None, None, e, 0)
        groups[gid].fault = e.get("fault")
        if new:
            roots.append(gid)
        # Breadth first, so a group's parent always exists before it. A recovery (a server back up, an
        # overload cleared) is not drawn: what it led to hangs off the group above it.
        frontier = [(e["id"], gid)]
        while frontier:
            nxt = []
            for eid, parent in frontier:
                for cid in kids.get(eid, ()):
                    child = by_id[cid]
                    if child["kind"] in recovery:
                        nxt.append((cid, parent))
                        continue
                    place = _place(G, str(child["node"]))
                    up = groups[parent]
                    if child["kind"] == up.kind and place == up.place and up.parent is not None:
                        key = keys[parent]  # a repeat of its cause (an overload feeding the next): one group
                    else:
                        key = (parent, child["kind"], place)
                    cg = add(key, parent, up.root, child, up.depth + 1)
                    nxt.append((cid, cg))
            frontier = nxt
    for g in sorted(groups.values(), key=lambda g: -g.depth):  # deepest first: children are done
        if g.parent is not None:
            groups[g.parent].below += g.count + g.below
    roots.sort(key=lambda r: (-(groups[r].count + groups[r].below), groups[r].first))
    return groups, roots


def _keep(groups: dict[int, Group], root: int, cap: int) -> list[int]:
    """The groups of one root to draw: the deepest chain, then the biggest subtrees, ancestors included."""
    members = [root]
    stack = [root]
    while stack:
        g = groups[stack.pop()]
        members.extend(g.children)
        stack.extend(g.children)
    kept: dict[int, None] = {}

    def take(gid: int) -> None:
        path = []
        cur: int | None = gid
        while cur is not None and cur not in kept:
            path.append(cur)
            cur = groups[cur].parent
        if len(kept) + len(path) <= cap:
            for p in reversed(path):
                kept[p] = None

    take(root)
    deepest = max(members, key=lambda m: (groups[m].depth, -groups[m].first))
    take(deepest)
    for gid in sorted(members, key=lambda m: (-(groups[m].count + groups[m].below), groups[m].first, m)):
        if len(kept) >= cap:
            break
        take(gid)
    return list(kept)


def cascade_figure(
    result: Any,
    G: nx.Graph,
    anchor: Callable[[int], str | None],
) -> tuple[go.Figure, dict[str, int]]:
    """The cascade graph of ``result``, and counts for its caption (roots, groups, events drawn/left out).

    ``anchor(event id)`` names the incident-timeline row of an event (``"#ev-12"``), for click-through.
    """
    events = result.events
    groups, roots = cascade_groups(events, G)
    faults = {f.id: f for f in result.stats.faults}
    duration = float(result.scenario.duration) / 60
    shown_roots = roots[:MAX_ROOTS]
    drawn: list[int] = []  # in row order: a root, then its groups depth first, children by time
    hidden: dict[int, int] = {}
    for root in shown_roots:
        budget = min(MAX_GROUPS_PER_ROOT, MAX_ROWS - len(drawn))
        if budget <= 0:
            break
        kept = set(_keep(groups, root, budget))
        stack = [root]
        while stack:
            gid = stack.pop()
            g = groups[gid]
            drawn.append(gid)
            children = sorted((c for c in g.children if c in kept), key=lambda c: (groups[c].first, c))
            hidden[gid] = sum(groups[c].count + groups[c].below for c in g.children if c not in kept)
            stack.extend(reversed(children))
    row_of = {gid: i for i, gid in enumerate(drawn)}
    x_of = {gid: round(groups[gid].first / 60, 4) for gid in drawn}
    right = max((groups[g].last / 60 for g in drawn), default=duration)
    right = max(right, duration)
    fig = go.Figure()
    ex: list[float | None] = []
    ey: list[float | None] = []
    bx: list[float | None] = []
    by: list[float | None] = []
    for gid in drawn:
        g = groups[gid]
        if g.parent is not None and g.parent in row_of:  # an elbow: down from the cause, then right
            px, py, cx, cy = x_of[g.parent], row_of[g.parent], x_of[gid], row_of[gid]
            ex += [px, px, cx, None]
            ey += [py, cy, cy, None]
        if g.last > g.first:  # how long the group's events went on
            bx += [x_of[gid], round(g.last / 60, 4), None]
            by += [row_of[gid], row_of[gid], None]
    if ex:
        fig.add_scatter(
            x=ex, y=ey, mode="lines", hoverinfo="skip", showlegend=False, line=dict(color="#afb8c1", width=1)
        )
    if bx:
        fig.add_scatter(
            x=bx,
            y=by,
            mode="lines",
            hoverinfo="skip",
            showlegend=False,
            line=dict(color="rgba(87,96,106,0.22)", width=3),
        )
    by_category: dict[tuple[str, str], list[int]] = {}
    category = categories()
    for gid in drawn:
        by_category.setdefault(category.get(groups[gid].kind, _OTHER), []).append(gid)
    order = [c for c in (*CATEGORY_COLORS.items(), _OTHER) if c in by_category]
    for name, color in order:
        members = by_category[(name, color)]
        hover, text, sizes, links, where = [], [], [], [], []
        for gid in members:
            g = groups[gid]
            hover.append(_hover(g, faults, hidden.get(gid, 0)))
            if g.parent is None:
                root_name = g.fault or f"{g.kind.replace('_', ' ')} {g.nodes.most_common(1)[0][0]}"
                label = f"<b>{html.escape(root_name)}</b>"
            else:
                label = html.escape(g.kind.replace("_", " ")) + (f" ×{format_count(g.count)}" if g.count > 1 else "")
                label += f" · {html.escape(g.place)}" if g.place != "—" else ""
            text.append(label)
            sizes.append(round(8 + 3 * math.log2(g.count), 1))
            links.append(anchor(g.ids[0]) or "")
            end = max(g.last, g.first) / 60
            where.append("middle left" if end > 0.72 * right else "middle right")
        fig.add_scatter(
            x=[x_of[g] for g in members],
            y=[row_of[g] for g in members],
            mode="markers+text",
            name=name,
            text=text,
            textposition=where,
            textfont=dict(size=10, color="#24292f"),
            hovertext=hover,
            hoverinfo="text",
            customdata=links,
            cliponaxis=False,
            marker=dict(size=sizes, color=color, line=dict(color="white", width=1)),
        )
    rows = max(1, len(drawn))
    height = int(max(240, 110 + 19 * rows))
    pad = right * 0.01
    fig.update_layout(
        template="plotly_white",
        height=height,
        font=dict(family=FONT, size=12, color="#24292f"),
        margin=dict(l=24, r=24, t=40, b=44),
        hovermode="closest",
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=11)),
        xaxis=dict(title=dict(text="minutes since start"), range=[-pad, right + pad], zeroline=False),
        yaxis=dict(visible=False, range=[rows - 0.4, -0.8], fixedrange=True),
    )
    stats = {
        "roots": len(roots),
        "roots_drawn": len(shown_roots),
        "groups": len(groups),
        "groups_drawn": len(drawn),
        "events": sum(g.count for g in groups.values()),
        "events_drawn": sum(groups[g].count for g in drawn),
    }
    return fig, stats


def _hover(g: Group, faults: dict[str, FaultSummary], hidden: int) -> str:
    when = format_clock(g.first) + (f" – {format_clock(g.last)}" if g.last > g.first else "")
    nodes = [n for n, _ in g.nodes.most_common(4)]
    more = f" (+{format_count(len(g.nodes) - 4)} more)" if len(g.nodes) > 4 else ""
    lines = [
        f"<b>{html.escape(g.kind)}</b>" + (f" ×{format_count(g.count)}" if g.count > 1 else ""),
        f"time {when}",
        "node " + html.escape(", ".join(nodes)) + more,
        f"where {html.escape(g.place)}",
    ]
    if g.causes:
        cause, n = g.causes.most_common(1)[0]
        lines.append(
            "caused by "
            + html.escape(cause)
            + (f" (+{len(g.causes) - 1} others)" if len(g.causes) > 1 else "")
        )
    impact = f"impact: {format_count(g.below, 'event')} followed"
    if hidden:
        impact += f" ({format_count(hidden)} not drawn)"
    lines.append(impact)
    if g.parent is None:
        fault = faults.get(g.fault or "")
        if fault:
            br = fault.blast_radius
            lines.append(
                f"{format_span(fault.downtime_minutes * 60)} below the SLO; ~{format_count(br.users, 'user')} "
                f"affected; {format_count(br.servers, 'server')}; cascade depth {fault.cascade_depth}"
            )
            if fault.time_to_detect is not None:
                lines.append(f"detected after {format_span(fault.time_to_detect)}")
    return "<br>".join(lines)
