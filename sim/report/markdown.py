"""``report.md``: the headline and the incident timeline in Markdown, for tickets and postmortems.

The same story as the HTML report (:func:`sim.report.story.tell`), as text that pastes into an issue
tracker or a postmortem document. Names from the scenario are escaped for Markdown (a name cannot start
a heading, a link or an HTML tag).
"""

from __future__ import annotations

import re
from typing import Any

from sim.report.story import Story, chain_text, tell
from sim.report.style import clock, latency, objective, pct, span

__all__ = ["render_markdown", "md_escape"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def md_escape(text: Any) -> str:
    r"""Escape Markdown and HTML specials so a name reads as itself.

    >>> md_escape("<b>db_1</b> | x")
    '\\<b\\>db\\_1\\</b\\> \\| x'
    """
    return _SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def render_markdown(result: Any, story: Story | None = None) -> str:
    """The Markdown report of ``result`` (a ``Result`` or a ``StoredResult``): read from its ``stats``."""
    s = result.stats
    scenario = result.scenario
    story = story or tell(result)
    h = story.headline
    slo = s.slo
    lines = [f"# {md_escape(scenario.name)}: {'SLO met' if h.slo_met else 'SLO breached'}", ""]
    if scenario.description.strip():
        lines += [md_escape(scenario.description.strip()), ""]
    m = s.manifest
    lines += [
        f"seed {result.seed} · {span(scenario.duration)} simulated · engine {md_escape(m.engine)} "
        f"· cascadesim {md_escape(m.version)}",
        "",
    ]
    goals = f"availability ≥ {objective(slo.availability)}"
    if slo.latency_p99 is not None:
        goals += f", p99 ≤ {latency(slo.latency_p99)}"
    if not h.breached:
        recovery = "no window below the objective"
    elif h.recovered and h.recovered_at is not None:
        after = span(h.recovered_at - (story.trigger_time or 0))
        recovery = f"yes, at {clock(h.recovered_at)} ({after} after the trigger)"
    else:
        recovery = "**no**: still below the objective at the end (metastable)"
    worst = h.worst_region
    lat = s.latency
    rows = [
        ("SLO", f"{'met' if h.slo_met else '**breached**'} ({goals})"),
        ("Availability", "— (no requests)" if h.availability is None or h.nines is None
         else f"{pct(h.availability)} ({h.nines:.2f} nines)"),
        ("Downtime", f"{h.downtime_minutes:,.1f} min in {span(slo.window)} windows below the objective"),
        ("Users affected", _users(h.users_affected, h.users_total)),
        ("Worst region", f"{md_escape(worst)} ({pct(h.worst_region_availability)})" if worst else "—"),
        (
            "Peak retry amplification",
            f"{h.peak_amplification:.2f}× at {clock(h.peak_amplification_at or 0)}"
            if h.peak_amplification
            else "—",
        ),
        ("Recovered", recovery),
        ("Latency", f"p50 {latency(lat.p50)}, p99 {latency(lat.p99)}"),
        (
            "Requests",
            f"{s.requests:,} ({s.counts.get('failed', 0):,} failed, {s.counts.get('retries', 0):,} retries)",
        ),
    ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += ["## Incident timeline", ""]
    if not story.milestones:
        lines += ["No fault was injected and nothing failed.", ""]
    else:
        lines += ["| When | Since start | Milestone | What | Caused by |", "|---|---|---|---|---|"]
        for ms in story.milestones:
            when = story.offset(ms.time) if ms.time is not None else "—"
            since = clock(ms.time) if ms.time is not None else "—"
            cause = md_escape(chain_text(ms.chain)) if ms.chain else ("root" if ms.key == "trigger" else "—")
            event = f" (event {ms.event['id']})" if ms.event is not None else ""
            lines.append(
                f"| {when} | {since} | {md_escape(ms.label)} | {md_escape(ms.text)}{event} | {cause} |"
            )
        lines.append("")
    if s.faults:
        lines += [
            "## Faults",
            "",
            "| Fault | Kind | Downtime | Detected after | Recovered after | Users affected (est.) | Cascade depth |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in s.faults:
            rec = span(f.time_to_recover) if f.recovered else "**not recovered**"
            lines.append(
                f"| {md_escape(f.id)} | {md_escape(f.kind)} | {f.downtime_minutes:,.1f} min | "
                f"{span(f.time_to_detect)} | {rec} | {f.blast_radius.users:,} | {f.cascade_depth} |"
            )
        lines.append("")
    lines += ["Every event, with its cause, is in `events.jsonl`; the figures are in `report.html`.", ""]
    return "\n".join(lines)


def _users(affected: int | None, total: int | None) -> str:
    """``~1,234 of 2,000,000 (distinct users with a failed request, estimated)``; ``—`` when not known."""
    if affected is None or not total:
        return "—"
    return f"~{affected:,} of {total:,} (distinct users with a failed request, estimated)"
