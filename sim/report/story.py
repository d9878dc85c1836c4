"""The outage as a story: the headline numbers and the postmortem milestones, read from a run's records.

Pure data, no HTML: the HTML report and ``report.md`` both tell this story. A milestone is one row of
a postmortem timeline — the trigger, the first symptom, users feeling it, the first ejection and crash,
the cascade reaching another datacenter, detection, mitigation, recovery — each pointing at the event
that marks it and that event's chain of causes back to the root fault.

>>> s = tell(result)                                          # doctest: +SKIP
>>> [m.label for m in s.milestones]                           # doctest: +SKIP
['Trigger', 'First symptom · first crash', 'Detected (automatically)', ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import networkx as nx

from sim.events import (
    ALERT,
    CRASHED,
    EJECTED,
    FAULT_END,
    FAULT_START,
    KINDS,
    SERVER_DOWN,
    SLO_BREACH,
    SLO_RECOVERED,
    names,
)
from sim.summary import FaultSummary, Summary
from sim.units import format_clock, format_count, format_span

__all__ = [
    "Story",
    "Headline",
    "Milestone",
    "tell",
    "datacenter_of",
    "graph_of",
    "RunRecords",
    "root_label",
    "chain_text",
    "affected_count",
]


class RunRecords(Protocol):
    """What the reports read: a live :class:`~sim.result.Result` or a stored one.

    A :class:`~sim.report.stored.StoredResult` has ``graph``; a live result has ``cluster.graph``. Both
    have ``stats``, the typed summary the reports read (``summary`` is its JSON form).
    """

    scenario: Any
    seed: int
    stats: Summary
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    timeseries: list[dict[str, Any]]
    datacenter_series: list[dict[str, Any]]
    link_series: list[dict[str, Any]]
    mail_series: list[dict[str, Any]]


def graph_of(result: Any) -> nx.Graph:
    """The topology graph of a run: a stored result's own, or the live cluster's."""
    graph = getattr(result, "graph", None)
    return graph if graph is not None else result.cluster.graph


def datacenter_of(G: nx.Graph, node: str) -> str | None:
    """The datacenter a node of an event lives in (a server's, a datacenter itself), else ``None``."""
    data = G.nodes.get(node)
    if data is None:
        return None
    if data.get("kind") == "datacenter":
        return node
    return data.get("datacenter")


@dataclass(frozen=True)
class Headline:
    """The numbers a reader wants first (``users_affected`` and ``users_total`` are the summary's
    ``users_affected`` and ``users``; ``None`` in a summary written before they were counted).
    """

    availability: float | None  # None: no user requests, nothing to judge
    nines: float | None
    downtime_minutes: float
    slo_met: bool
    worst_region: str | None
    worst_region_availability: float | None
    users_affected: int | None
    users_total: int | None
    peak_amplification: float | None
    peak_amplification_at: float | None
    recovered: bool
    recovered_at: float | None  # the end of the last window below the objective, when it recovered
    time_to_recover: float | None
    last_fault_end: float | None
    breached: bool  # any window below the objective


@dataclass(frozen=True)
class Milestone:
    """One row of the postmortem timeline."""

    key: str  # trigger, symptom, impact, ejection, crash, spread, detection, mitigation, recovery
    label: str
    time: float | None
    text: str
    event: dict[str, Any] | None = None
    chain: list[dict[str, Any]] = field(default_factory=list)  # the event's causes, nearest first
    also: tuple[str, ...] = ()  # keys of other milestones the same event marks

    @property
    def keys(self) -> tuple[str, ...]:
        """Every milestone this row stands for (``("symptom", "crash")``)."""
        return (self.key, *self.also)

    @property
    def cause(self) -> dict[str, Any] | None:
        """The event that directly caused this one."""
        return self.chain[0] if self.chain else None

    @property
    def root(self) -> dict[str, Any] | None:
        """The root of the chain (usually a ``fault_start``)."""
        return self.chain[-1] if self.chain else None


@dataclass(frozen=True)
class Story:
    """The headline and the milestones, in time order."""

    headline: Headline
    milestones: list[Milestone]
    trigger_time: float | None

    def offset(self, t: float | None) -> str:
        """``t+12:30`` relative to the trigger (``t-…`` before it)."""
        if t is None:
            return "—"
        base = self.trigger_time or 0.0
        d = t - base
        sign = "+" if d >= 0 else "-"
        d = abs(d)
        h, rest = divmod(int(round(d)), 3600)
        m, s = divmod(rest, 60)
        return f"t{sign}{h}:{m:02d}:{s:02d}" if h else f"t{sign}{m}:{s:02d}"


def _describe(e: dict[str, Any]) -> str:
    detail = str(e.get("detail") or "")
    text = f"{e['kind'].replace('_', ' ')} {e['node']}"
    return f"{text}: {detail}" if detail else text


def _chain(by_id: dict[int, dict[str, Any]], e: dict[str, Any]) -> list[dict[str, Any]]:
    out, seen = [], {e["id"]}
    cur = e.get("cause")
    while cur is not None and cur in by_id and cur not in seen:
        seen.add(cur)
        out.append(by_id[cur])
        cur = by_id[cur].get("cause")
    return out


def _headline(result: RunRecords) -> Headline:
    s = result.stats
    target = s.slo.availability
    by_time: dict[float, list[dict[str, Any]]] = {}
    for row in result.timeseries:
        by_time.setdefault(float(row["time"]), []).append(row)
    peak, peak_at = None, None
    breached = False
    last_bad: float | None = None
    for t in sorted(by_time):
        rows = by_time[t]
        req = sum(int(r["requests"] or 0) for r in rows)
        ok = sum(int(r["ok"] or 0) for r in rows)
        att = sum(int(r["attempts"] or 0) for r in rows)
        if req:
            amp = att / req
            if peak is None or amp > peak:
                peak, peak_at = amp, t
        if req and ok / req < target:  # a window below the objective
            breached = True
            last_bad = t
    recovered = s.recovery.recovered
    window = s.slo.window or 60.0
    recovered_at = last_bad + window if (recovered and last_bad is not None) else None
    worst = s.worst_region
    region = s.regions.get(worst) if worst else None
    return Headline(
        availability=s.availability,
        nines=s.nines,
        downtime_minutes=s.downtime_minutes,
        slo_met=s.slo.met,
        worst_region=worst,
        worst_region_availability=region.availability if region else None,
        users_affected=s.users_affected,
        users_total=s.users,
        peak_amplification=peak,
        peak_amplification_at=peak_at,
        recovered=recovered,
        recovered_at=recovered_at,
        time_to_recover=s.recovery.time_to_recover,
        last_fault_end=s.recovery.last_fault_end,
        breached=breached,
    )


def tell(result: RunRecords, graph: nx.Graph | None = None) -> Story:
    """Read the story of ``result``: its headline and the postmortem milestones."""
    G = graph if graph is not None else graph_of(result)
    head = _headline(result)
    events = sorted(result.events, key=lambda e: (float(e["time"]), e["id"]))
    by_id = {e["id"]: e for e in events}
    kinds = {f.id: f.kind for f in result.stats.faults}

    def first(pred: Any, after: float = float("-inf")) -> dict[str, Any] | None:
        return next((e for e in events if float(e["time"]) >= after and pred(e)), None)

    symptoms, spreading, reactions = names("symptom"), names("spread"), names("reaction")
    found: list[tuple[str, str, dict[str, Any] | None, str, float | None]] = []
    trigger = first(lambda e: e["kind"] == FAULT_START)
    if trigger is None:
        return Story(head, [], None)
    t0 = float(trigger["time"])
    kind = kinds.get(trigger.get("fault") or "", "")
    found.append(
        (
            "trigger",
            "Trigger",
            trigger,
            f"fault {trigger.get('fault') or trigger['node']}"
            + (f" ({kind})" if kind else "")
            + (f" starts: {trigger['detail']}" if trigger.get("detail") else " starts"),
            None,
        )
    )
    symptom = first(lambda e: e["kind"] in symptoms, t0)
    if symptom:
        found.append(("symptom", "First symptom", symptom, _describe(symptom), None))
    breach = first(lambda e: e["kind"] == SLO_BREACH, t0)
    if breach:
        found.append(
            (
                "impact",
                "Users affected",
                breach,
                f"{breach['node']} falls below the availability objective",
                None,
            )
        )
    eject = first(lambda e: e["kind"] == EJECTED, t0)
    if eject:
        found.append(("ejection", "First ejection", eject, _describe(eject), None))
    crash = first(lambda e: e["kind"] == CRASHED, t0) or first(lambda e: e["kind"] == SERVER_DOWN, t0)
    if crash:
        found.append(
            (
                "crash",
                "First crash"
                if crash["kind"] == CRASHED or "crash" in str(crash.get("detail"))
                else "First server down",
                crash,
                _describe(crash),
                None,
            )
        )
    origin = next(
        (
            datacenter_of(G, str(e["node"]))
            for e in events
            if float(e["time"]) >= t0 and e["kind"] in spreading and datacenter_of(G, str(e["node"]))
        ),
        None,
    )
    if origin is not None:
        spread = first(
            lambda e: e["kind"] in spreading and datacenter_of(G, str(e["node"])) not in (None, origin), t0
        )
        if spread:
            dc = datacenter_of(G, str(spread["node"]))
            found.append(
                ("spread", f"Cascade reaches {dc}", spread, f"from {origin}: {_describe(spread)}", None)
            )
    alert = first(lambda e: e["kind"] == ALERT, t0)
    reaction = alert or first(lambda e: e["kind"] in reactions, t0)
    if reaction:
        how = "Detected (alert)" if alert else "Detected (automatically)"
        found.append(("detection", how, reaction, _describe(reaction), None))
    labels = {
        "rollout_halted": "Rollout halted",
        "rollback": "Rollback",
        "weights_restored": "Weights restored",
    }
    mitigating = [k.name for k in KINDS.values() if k.mitigation]  # the table's order: it breaks ties
    mitigations = [
        e for e in (first(lambda e, k=k: e["kind"] == k, t0) for k in mitigating) if e is not None
    ]
    if not mitigations and head.last_fault_end is not None:
        ends = [e for e in events if e["kind"] == FAULT_END and float(e["time"]) == head.last_fault_end]
        mitigations = ends[:1]
    for m in mitigations:
        found.append(("mitigation", labels.get(m["kind"], "Trigger removed"), m, _describe(m), None))
    if head.breached:
        if head.recovered and head.recovered_at is not None:
            back = [
                e for e in events if e["kind"] == SLO_RECOVERED and float(e["time"]) <= head.recovered_at
            ]
            after = (
                ""
                if not head.time_to_recover
                else f", {format_span(head.time_to_recover)} after the last fault ended"
            )
            found.append(
                (
                    "recovery",
                    "Recovered",
                    back[-1] if back else None,
                    f"availability back above the objective for good{after}"
                    + _before_the_end(events, head.recovered_at, result.stats.slo.window or 60.0),
                    head.recovered_at,
                )
            )
        elif not head.recovered:
            found.append(
                (
                    "recovery",
                    "Not recovered",
                    None,
                    "still below the objective when the run ended, after every fault had ended: metastable",
                    float(result.scenario.duration),
                )
            )
    else:
        found.append(
            ("recovery", "No user impact", None, "no window fell below the availability objective", None)
        )

    # One row per event: milestones marked by the same event share it.
    rows: list[Milestone] = []
    index: dict[int, int] = {}
    for key, label, e, text, when in found:
        if e is not None and e["id"] in index:
            i = index[e["id"]]
            prev = rows[i]
            rows[i] = Milestone(
                prev.key,
                f"{prev.label} · {label[0].lower()}{label[1:]}",
                prev.time,
                prev.text,
                prev.event,
                prev.chain,
                (*prev.also, key),
            )
            continue
        t = when if when is not None else (float(e["time"]) if e is not None else None)
        if e is not None:
            index[e["id"]] = len(rows)
        rows.append(Milestone(key, label, t, text, e, _chain(by_id, e) if e is not None else []))
    order = {
        k: i
        for i, k in enumerate(
            (
                "trigger",
                "symptom",
                "impact",
                "ejection",
                "crash",
                "spread",
                "detection",
                "mitigation",
                "recovery",
            )
        )
    }
    rows.sort(key=lambda m: (m.time if m.time is not None else float("inf"), order[m.key]))
    return Story(head, rows, t0)


def _before_the_end(events: Sequence[dict[str, Any]], at: float, window: float) -> str:
    """Why the service could come back at ``at`` while a fault was still active: which faults, until
    when, and what changed in the objective's window before it (the control plane's reactions: ejections,
    failovers, traffic shifts; and good news: restarts, readmissions).

    Recovery is what the users saw — every window from then on met the objective — so it may come
    before the fault that caused the breach is over (a crashed server restarts and is readmitted before
    the bad version is rolled back); the story says so instead of hiding it. Empty when every fault had
    ended.
    """
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    for e in events:
        fault = e.get("fault") or e["node"]
        if e["kind"] == FAULT_START:
            started.setdefault(fault, float(e["time"]))
        elif e["kind"] == FAULT_END:
            ended[fault] = float(e["time"])
    active = sorted((ended.get(f, float("inf")), f) for f, t in started.items()
                    if t <= at < ended.get(f, float("inf")))
    if not active:
        return ""
    names_ = ", ".join(f"{f} (until {format_clock(end)})" if end != float("inf") else f"{f} (to the end)"
                       for end, f in active)
    since = at - window
    good: dict[str, int] = {}
    for e in events:
        kind = KINDS.get(e["kind"])
        helped = kind is not None and (kind.tone == "good" or kind.reaction) and kind.name != SLO_RECOVERED
        if helped and since <= float(e["time"]) <= at:
            good[e["kind"]] = good.get(e["kind"], 0) + 1
    text = f", while {names_} still active"
    if good:
        changes = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(good.items(), key=lambda kv: -kv[1]))
        text += f"; in the {format_span(window)} before: {changes}"
    return text


def root_label(e: dict[str, Any] | None) -> str:
    """``fault_start bad-update`` style name of an event (for links and Markdown)."""
    return "—" if e is None else f"{e['kind']} {e['node']}"


def chain_text(chain: Sequence[dict[str, Any]], limit: int = 3) -> str:
    """The causes of an event as ``server_down mbx-1 ← fault_start f`` (nearest first, root last)."""
    if not chain:
        return ""
    parts = [root_label(e) for e in chain[:limit]]
    if len(chain) > limit:
        parts.append("…")
        parts.append(root_label(chain[-1]))
    return " ← ".join(parts)


_NOUNS = {"server": ("server", "servers"), "database": ("database", "databases"),
          "datacenter": ("datacenter", "datacenters"), "region": ("region", "regions"),
          "dependency": ("dependency", "dependencies"), "load_balancer": ("load balancer", "load balancers"),
          "link": ("link", "links")}


def affected_count(f: FaultSummary, G: nx.Graph | None = None) -> str:
    """What a fault affected, counted by kind of node, most first: ``64 databases, 8 servers`` (``G``, the
    topology, says the kinds; without it, or when the summary kept only the first names, ``72 nodes``).
    """
    names = list(f.affected)
    n = f.affected_count if "affected_count" in f.model_fields_set else len(names)
    kinds: dict[str, int] = {}
    for name in names:
        kind = G.nodes[name].get("kind") if G is not None and name in G.nodes else None
        kind = "link" if kind is None and G is not None and "~" in name else kind
        kinds[str(kind)] = kinds.get(str(kind), 0) + 1
    if len(names) < n or any(k not in _NOUNS for k in kinds):
        return format_count(n, "node")
    return ", ".join(format_count(k, *_NOUNS[kind]) for kind, k in sorted(kinds.items(), key=lambda kv: -kv[1]))
