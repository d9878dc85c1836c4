"""The incident timelines: the postmortem milestones on top, every event (collapsed) below.

The full timeline collapses events of one kind at one moment from one fault into one row with a count,
and keeps at most :data:`MAX_EVENT_ROWS` rows (fault, datacenter, dependency and traffic events and the
milestones' events first). Every "caused by" links to the row of the cause.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.events import names
from sim.report.page import table, table_section
from sim.report.story import Story
from sim.units import NONE, format_clock, format_count

__all__ = [
    "EventRow",
    "collapse_events",
    "events_table",
    "story_table",
    "Anchors",
    "MAX_EVENT_ROWS",
]

MAX_EVENT_ROWS = 300  # rows of the incident timeline
_table = table
_table_section = table_section


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
    events: Sequence[dict[str, Any]], max_rows: int = MAX_EVENT_ROWS, keep: Iterable[int] = ()
) -> tuple[list[EventRow], int]:
    """Build the incident timeline: events of one kind, time and fault in one row, ``max_rows`` at most.

    Returns the rows in time order and how many rows there were before cutting. When cutting, the rows
    holding an event of ``keep`` come first, then fault starts and ends, datacenter and dependency
    changes, traffic shifts, alerts, rollbacks and SLO breaches, then the earliest of the rest.
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
        wanted = set(keep)
        pinned = [r for r in ordered if wanted.intersection(r.ids)][:max_rows]
        taken = {id(r) for r in pinned}
        majors = names("major")  # kept first when cutting (sim.events)
        major = [r for r in ordered if r.kind in majors and id(r) not in taken][: max_rows - len(pinned)]
        taken |= {id(r) for r in major}
        rest = [r for r in ordered if id(r) not in taken][: max_rows - len(pinned) - len(major)]
        ordered = sorted(pinned + major + rest, key=lambda r: (r.time, r.ids[0]))
    return ordered, total


class Anchors:
    """Which timeline row shows which event: ``anchor(event id)`` is ``"#ev-12"`` or ``None`` (cut)."""

    def __init__(self, rows: Sequence[EventRow]):
        self.row_of = {i: row for row in rows for i in row.ids}

    def __call__(self, event_id: int) -> str | None:
        """The anchor of the row showing ``event_id``, or ``None`` when that row was cut."""
        row = self.row_of.get(event_id)
        return f"#{row.anchor}" if row is not None else None

    def link(self, e: dict[str, Any] | None, text: str | None = None) -> str:
        """An escaped link to the row of ``e`` (plain text when its row was cut)."""
        if e is None:
            return '<span class="muted">—</span>'
        label = html.escape(text if text is not None else f"{e['kind']} {e['node']}")
        target = self(e["id"])
        return f'<a href="{target}">{label}</a>' if target else label


def story_table(story: Story, anchors: Anchors) -> str:
    """The postmortem milestones: when, what, the event and its chain of causes, each linked."""
    if not story.milestones:
        return _table_section("What happened", "No fault was injected and nothing failed.", "", sid="story")
    body = []
    for m in story.milestones:
        when = (
            f'<td class="num">{html.escape(story.offset(m.time))}'
            f'<span class="clock">{format_clock(m.time)}</span></td>'
            if m.time is not None
            else f'<td class="num">{NONE}</td>'
        )
        what = anchors.link(m.event, m.text) if m.event is not None else html.escape(m.text)
        if m.chain:
            links = [anchors.link(c) for c in m.chain[:2]]
            if len(m.chain) > 2:
                links.append("…")
                links.append(anchors.link(m.chain[-1]))
            cause = " ← ".join(links)
        else:
            cause = (
                '<span class="muted">root</span>' if m.key == "trigger" else '<span class="muted">—</span>'
            )
        body.append(
            f'<tr class="m-{html.escape(m.key)}">{when}<td><strong>{html.escape(m.label)}</strong></td>'
            f"<td>{what}</td><td>{cause}</td></tr>"
        )
    return (
        '<section id="story"><h2>What happened</h2><p class="caption">The outage in postmortem order, from the '
        "event log. Times are from the trigger (and since the start of the run). “Caused by” follows the "
        "chain of causes back to the root fault; every entry links to its row in the incident timeline "
        "below.</p>" + _table("milestones", ("When", "Milestone", "What", "Caused by"), body) + "</section>"
    )


def events_table(rows: list[EventRow], total_rows: int, total_events: int) -> str:
    """The full incident timeline (collapsed rows, causes linked, a filter box)."""
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
            causes.append(
                f'<a href="#{target.anchor}">{label}</a> <span class="muted">at '
                f"{format_clock(target.time)}</span>"
            )
        if len(targets) > 3:
            causes.append(f'<span class="muted">+{len(targets) - 3} more</span>')
        count = f' <span class="count">×{row.count}</span>' if row.count > 1 else ""
        body.append(
            f'<tr id="{row.anchor}" class="k-{html.escape(row.kind)}">'
            f'<td class="num">{format_clock(row.time)}</td>'
            f'<td><span class="kind">{html.escape(row.kind.replace("_", " "))}</span>{count}</td>'
            f'<td title="{html.escape(every)}">{html.escape(", ".join(nodes))}</td>'
            f"<td>{detail}</td>"
            f"<td>{'<br>'.join(causes) if causes else '<span class=muted>—</span>'}</td>"
            f"<td>{html.escape(row.fault) if row.fault else '<span class=muted>—</span>'}</td></tr>"
        )
    shown = (
        f"Showing {format_count(len(rows))} of {format_count(total_rows)} rows "
        f"({format_count(total_events, 'event')}); fault, datacenter, dependency and traffic events are kept "
        "first. The full log is in events.jsonl."
        if total_rows > len(rows)
        else f"{format_count(total_events, 'event')} in {format_count(total_rows, 'row')}."
    )
    if not rows:
        return _table_section("Incident timeline", "No events: nothing failed and nothing was injected.", "")
    return (
        '<section id="timeline"><h2>Incident timeline</h2>'
        f'<p class="caption">Times are since the start of the run (h:mm:ss). Events of one kind at one moment '
        "are collapsed into one row with a count. "
        f"“Caused by” links to the row of the event that led to it. {shown}</p>"
        '<input id="event-filter" type="search" placeholder="Filter events (kind, node, fault…)" '
        'aria-label="Filter events">'
        + _table("events", ("Time", "Event", "Node", "Detail", "Caused by", "Fault"), body)
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
