"""``report.md``: the headline and the incident timeline in Markdown, for tickets and postmortems.

The same story as the HTML report (:func:`sim.report.story.tell`), as text that pastes into an issue
tracker or a postmortem document. Names from the scenario are escaped for Markdown (a name cannot start
a heading, a link or an HTML tag).
"""

from __future__ import annotations

import re
from typing import Any

from sim.report.story import Story, affected_count, chain_text, graph_of, tell
from sim.summary import Summary
from sim.units import (
    NONE,
    format_clock,
    format_count,
    format_latency,
    format_nines,
    format_number,
    format_percent,
    format_ratio,
    format_span,
)

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
        f"seed {result.seed} · {format_span(scenario.duration)} simulated · engine {md_escape(m.engine)} "
        f"· cascadesim {md_escape(m.version)}",
        "",
    ]
    goals = f"availability ≥ {format_percent(slo.availability)}"
    if slo.latency_p99 is not None:
        goals += f", p99 ≤ {format_latency(slo.latency_p99)}"
    if not h.breached:
        recovery = "no window below the objective"
    elif h.recovered and h.recovered_at is not None:
        after = format_span(h.recovered_at - (story.trigger_time or 0))
        recovery = f"yes, at {format_clock(h.recovered_at)} ({after} after the trigger)"
    else:
        recovery = "**no**: still below the objective at the end (metastable)"
    worst = h.worst_region
    lat = s.latency
    rows = [
        ("SLO", f"{'met' if h.slo_met else '**breached**'} ({goals})"),
        ("Availability", f"{NONE} (no requests)" if h.availability is None or h.nines is None
         else f"{format_percent(h.availability)} ({format_nines(h.nines)} nines)"
         + (f"; strict {format_percent(s.availability_strict)} ({format_count(s.counts['degraded'])} answers "
            "degraded by a fallback left out)" if s.counts.get("degraded") and s.availability_strict is not None
            else "")),
        ("Downtime", f"{format_span(h.downtime_minutes * 60)} in {format_span(slo.window)} windows below the "
         "objective"),
        ("Users affected", _users(h.users_affected, h.users_total)),
        *_impact(s),
        ("Worst region", f"{md_escape(worst)} ({format_percent(h.worst_region_availability)})" if worst else NONE),
        (
            "Peak retry amplification",
            f"{format_ratio(h.peak_amplification)} at {format_clock(h.peak_amplification_at or 0)}"
            if h.peak_amplification
            else NONE,
        ),
        ("Recovered", recovery),
        ("Latency", f"p50 {format_latency(lat.p50)}, p99 {format_latency(lat.p99)}"),
        (
            "Requests",
            f"{format_count(s.requests)} ({format_count(s.counts.get('failed', 0))} failed, "
            f"{format_count(s.counts.get('retries', 0), 'retry', 'retries')})",
        ),
    ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += ["## Incident timeline", ""]
    if not story.milestones:
        lines += ["No fault was injected and nothing failed.", ""]
    else:
        lines += ["| When | Since start | Milestone | What | Caused by |", "|---|---|---|---|---|"]
        for ms in story.milestones:
            when = story.offset(ms.time) if ms.time is not None else NONE
            since = format_clock(ms.time)
            cause = md_escape(chain_text(ms.chain)) if ms.chain else ("root" if ms.key == "trigger" else NONE)
            event = f" (event {ms.event['id']})" if ms.event is not None else ""
            lines.append(
                f"| {when} | {since} | {md_escape(ms.label)} | {md_escape(ms.text)}{event} | {cause} |"
            )
        lines.append("")
    if s.faults:
        lines += [
            "## Faults",
            "",
            "| Fault | Kind | Downtime | Detected after | Recovered after | Users affected (est.) | Cascade depth "
            "| Affected |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in s.faults:
            if not f.recovered:
                rec = "**not recovered**"
            elif f.start is None or not f.downtime_minutes:
                rec = "no impact"
            else:
                rec = format_span(f.time_to_recover)
            detected = "not detected" if f.start is not None and f.time_to_detect is None else format_span(
                f.time_to_detect)
            n = f.affected_count if "affected_count" in f.model_fields_set else len(f.affected)
            affected = (NONE if not n else md_escape(", ".join(f.affected)) if n <= 3 and len(f.affected) == n
                        else md_escape(affected_count(f, graph_of(result))))
            downtime = NONE if f.start is None else format_span(f.downtime_minutes * 60)
            lines.append(
                f"| {md_escape(f.id)} | {md_escape(f.kind)} | {downtime} | "
                f"{detected} | {rec} | {format_count(f.blast_radius.users)} | {f.cascade_depth} | {affected} |"
            )
        lines.append("")
    lines += ["Every event, with its cause, is in `events.jsonl`; the figures are in `report.html`.", ""]
    return "\n".join(lines)


def _users(affected: int | None, total: int | None) -> str:
    """``~1,234 of 2,000,000 (distinct users with a failed request, estimated)``; ``—`` when not known."""
    if affected is None or not total:
        return NONE
    return f"~{format_count(affected)} of {format_count(total)} (distinct users with a failed request, estimated)"


def _impact(s: Summary) -> list[tuple[str, str]]:
    """The impact rows of the headline (as the terminal's, :func:`sim.cli.text.impact_lines`)."""
    i, rows = s.impact, []
    if s.users:
        rows.append(("User-minutes without service", f"{format_count(round(i.user_minutes))} "
                     f"({format_count(i.requests_failed)} user requests failed)"))
    by_type = [f"{md_escape(name)} {format_count(n)}" for name, n in i.by_type()]
    if i.sign_ins_failed is not None:
        others = f" (other types: {' · '.join(by_type[1:])})" if by_type[1:] else ""
        rows.append(("Sign-ins failed", f"{format_count(i.sign_ins_failed)}{others}"))
    elif by_type:
        rows.append(("Failed by type", " · ".join(by_type)))
    if i.mail_delayed is not None:
        delay = (f" (p99 delay {format_span(i.mail_delay_p99)}, longest {format_span(i.mail_delay_max)})"
                 if i.mail_delayed and i.mail_delay_p99 is not None and i.mail_delay_max is not None else "")
        rows.append(("Mail", f"{format_count(i.mail_delayed)} delayed{delay}, {format_count(i.mail_lost or 0)} lost"))
    if i.cost is not None:
        rows.append(("Estimated cost", f"{format_number(round(i.cost))} ({md_escape(i.cost_basis or '')})"))
    return rows
