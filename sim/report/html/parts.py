"""The text parts of the run report: header, headline, fault and region tables. Every name is escaped."""

from __future__ import annotations

import html
from typing import Any

import networkx as nx

from sim.report.page import table, table_section
from sim.report.story import Story, affected_count
from sim.summary import FaultSummary, Summary
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

__all__ = ["header", "headline", "faults_table", "affected_list", "regions_table", "kpi"]


def header(result: Any) -> str:
    """Title, description and the run's identity (seed, duration, engine, version, scenario hash)."""
    scenario = result.scenario
    m = result.stats.manifest
    meta = [
        f"seed {html.escape(str(result.seed))}",
        f"duration {format_span(scenario.duration)}",
        f"engine {html.escape(m.engine if 'engine' in m.model_fields_set else scenario.engine)}",
        f"cascadesim {html.escape(m.version)}",
    ]
    if m.scenario_hash:
        meta.append(f"scenario hash {html.escape(m.scenario_hash[:12])}")
    description = (f'<p class="description">{html.escape(scenario.description.strip())}</p>'
                   if scenario.description.strip() else "")
    return (
        f'<header><h1><span class="muted">cascadesim ·</span> {html.escape(scenario.name)}</h1>{description}'
        f'<p class="meta">{" · ".join(meta)}</p></header>'
    )


def kpi(key: str, label: str, value: str, sub: str = "", data: Any = None, cls: str = "") -> str:
    """A headline card ``id="kpi-<key>"``; ``data`` becomes its ``data-value`` (for tests and scripts)."""
    raw = repr(data) if isinstance(data, float) else str(data)
    attr = "" if data is None else f' data-value="{html.escape(raw)}"'
    sub_html = f'<div class="sub">{sub}</div>' if sub else ""
    return (f'<div class="kpi {cls}" id="kpi-{key}"{attr}><div class="label">{label}</div>'
            f'<div class="value">{value}</div>{sub_html}</div>')


def headline(s: Summary, story: Story) -> str:
    """The verdict and the headline cards.

    Availability, nines, downtime, users affected, worst region, peak retry amplification, recovery,
    latency, requests and retries.
    """
    slo = s.slo
    h = story.headline
    word = "met" if slo.met else "breached"
    goals = [f"availability ≥ {format_percent(slo.availability)}"]
    if slo.latency_p99 is not None:
        goals.append(f"p99 latency ≤ {format_latency(slo.latency_p99)}")
    if s.availability is None:
        parts = ["availability — (no requests)"]
    else:
        met_availability = (slo.availability_met if "availability_met" in slo.model_fields_set
                            else s.availability >= slo.availability)
        parts = [f"availability {format_percent(s.availability)} {'≥' if met_availability else '<'} "
                 f"{format_percent(slo.availability)}"]
    if slo.latency_p99 is not None:
        parts.append(f"p99 {format_latency(s.latency.p99)} {'≤' if slo.latency_met else '>'} "
                     f"{format_latency(slo.latency_p99)}")
    verdict = (
        f'<div class="verdict {word}" id="kpi-slo" data-value="{word}"><strong>SLO {word}</strong>'
        f'<span>objective: {html.escape(" and ".join(goals))}</span>'
        f'<span class="muted">{html.escape("; ".join(parts))}</span></div>'
    )
    counts = s.counts
    worst_region = s.worst_region
    region = s.regions.get(worst_region) if worst_region else None
    lat = s.latency
    if not h.breached:
        recovery = ("no impact", "no window below the objective", "good")
    elif h.recovered:
        at = h.recovered_at
        after = (f"{format_span(h.time_to_recover)} after the last fault ended" if h.time_to_recover
                 else "before the last fault ended")
        recovery = (f"at {format_clock(at)}" if at is not None else "yes",
                    f"{format_span(at - (story.trigger_time or 0.0))} after the trigger; {after}"
                    if at is not None else "", "good")
    else:
        recovery = ("not recovered", "still below the objective at the end: metastable", "bad")
    if h.users_affected is None:
        users_value, users_sub = NONE, "not counted in this summary"
    else:
        users_value = format_count(h.users_affected)
        users_sub = (f"of {format_count(h.users_total)} (distinct users with a failed request, estimated)"
                     if h.users_total else "the scenario gives no user counts")
    amp = h.peak_amplification
    cards = [
        kpi("availability", "Availability", format_percent(s.availability),
            f"{format_count(s.succeeded)} of {format_count(s.requests, 'request')} succeeded"
            + (f"; strict {format_percent(s.availability_strict)} ({format_count(s.counts['degraded'])} degraded "
               "answers left out)" if s.counts.get("degraded") and s.availability_strict is not None else ""),
            s.availability, "good" if slo.availability_met else "bad"),
        kpi("nines", "Nines", format_nines(s.nines),
            "no requests" if s.nines is None else "−log₁₀(1 − availability)", s.nines),
        kpi("downtime", "Downtime", format_span(s.downtime_minutes * 60),
            f"{format_span(slo.window)} windows below {format_percent(slo.availability)}", s.downtime_minutes,
            "bad" if s.downtime_minutes else ""),
        kpi("users", "Users affected", users_value, users_sub, h.users_affected,
            "bad" if h.users_affected else ""),
        kpi("worst-region", "Worst region", html.escape(worst_region) if worst_region else NONE,
            f"{format_percent(region.availability)} available · {format_span(region.downtime_minutes * 60)} "
            "below the objective" if region else "", worst_region or ""),
        kpi("peak-amplification", "Peak retry amplification", format_ratio(amp),
            (f"attempts per request at {format_clock(h.peak_amplification_at or 0.0)} · "
             f"overall <span id=\"kpi-amplification\" data-value=\"{s.amplification!r}\">"
             f"{format_ratio(s.amplification)}</span>") if amp is not None else "", amp),
        kpi("recovered", "Recovered", recovery[0], recovery[1],
            "yes" if h.recovered else "no", recovery[2]),
        kpi("latency", "Latency", f"p50 {format_latency(lat.p50)}<br>p99 {format_latency(lat.p99)}",
            f"mean {format_latency(lat.mean)}", None),
        kpi("requests", "Requests", format_count(s.requests),
            f"{format_count(counts.get('failed', s.requests - s.succeeded))} failed · "
            f"{format_count(counts.get('timeouts', 0), 'timeout')}", s.requests),
        kpi("retries", "Retries", format_count(counts.get("retries", 0)),
            format_count(counts.get("attempts", 0), "attempt"), counts.get("retries", 0)),
    ]
    impact = s.impact
    if s.users:
        cards.append(kpi("user-minutes", "User-minutes without service", format_count(round(impact.user_minutes)),
                         "users × the share of their requests that failed, per window", impact.user_minutes,
                         "bad" if impact.user_minutes else ""))
    by_type = impact.by_type()
    if impact.sign_ins_failed is not None:
        others = " · ".join(f"{html.escape(name)} {format_count(n)}" for name, n in by_type[1:])
        cards.append(kpi("sign-ins", "Sign-ins failed", format_count(impact.sign_ins_failed),
                         f"user requests of type sign_in{' · other types: ' + others if others else ''}",
                         impact.sign_ins_failed, "bad" if impact.sign_ins_failed else ""))
    elif by_type:
        cards.append(kpi("failed-by-type", "Failed by type",
                         "<br>".join(f"{html.escape(name)} {format_count(n)}" for name, n in by_type),
                         "user requests failed, per request type", impact.requests_failed,
                         "bad" if impact.requests_failed else ""))
    if impact.mail_delayed is not None:
        delay = (f"p99 delay {format_span(impact.mail_delay_p99)} · longest {format_span(impact.mail_delay_max)}"
                 if impact.mail_delayed and impact.mail_delay_p99 is not None and impact.mail_delay_max is not None
                 else "none delayed")
        cards.append(kpi("mail", "Mail delayed, not lost", format_count(impact.mail_delayed),
                         f"{delay} · {format_count(impact.mail_lost or 0)} lost", impact.mail_delayed,
                         "bad" if impact.mail_lost else ""))
    if impact.cost is not None:
        cards.append(kpi("cost", "Estimated cost", format_number(round(impact.cost)),
                         html.escape(impact.cost_basis or ""), impact.cost, "bad" if impact.cost else ""))
    return f'<section class="headline">{verdict}<div class="kpis">{"".join(cards)}</div></section>'


def faults_table(s: Summary, G: nx.Graph | None = None) -> str:
    """Per injected fault: when, downtime, detection, recovery, blast radius and cascade depth; what it
    affected as a count, its names a click away (``G``, the topology, names the kinds of nodes).
    """
    if not s.faults:
        return table_section("Faults", "The scenario injects no faults.", "")
    rows = []
    for f in s.faults:
        worst = ' class="worst"' if f.id == s.worst_fault else ""
        br = f.blast_radius
        hit = [format_count(n, noun) for n, noun in
               ((br.servers, "server"), (br.databases, "database"), (br.datacenters, "datacenter")) if n]
        rows.append(
            f"<tr{worst}><td>{html.escape(f.id)}<span class=\"sub\">{html.escape(f.kind)}</span></td>"
            f'<td class="num">{_when(f)}</td>'
            f'<td class="num">{format_span(f.downtime_minutes * 60) if f.start is not None else NONE}</td>'
            f'<td class="num">{_detected(f)}</td>'
            f'<td class="num">{_recovered(f)}</td>'
            f'<td class="num">{format_count(br.users)}</td>'
            f"<td>{', '.join(hit) if hit else NONE}</td>"
            f'<td class="num">{f.cascade_depth}</td>'
            f"<td>{affected_list(f, G)}</td></tr>"
        )
    body = table("faults", ("Fault", "When", "Downtime", "Detected after", "Recovered after",
                            "Users affected (est.)", "Hit", "Depth", "Affected"), rows)
    return table_section("Faults", "Per injected fault: when it acted (time since the start), the SLO windows "
                         "it breached, how long from its start until the control plane reacted and until "
                         "availability recovered, its blast radius and how deep its cascade of causes went.",
                         body)


def _when(f: FaultSummary) -> str:
    if f.start is None:
        return "never acted"
    end = f.end if f.end is not None else f.start
    times = f'<span class="sub">{format_count(f.occurrences)} times</span>' if f.occurrences > 1 else ""
    return f"{format_clock(f.start)} – {format_clock(end)}{times}"


def _detected(f: FaultSummary) -> str:
    if f.start is None:
        return NONE
    return "not detected" if f.time_to_detect is None else format_span(f.time_to_detect)


def _recovered(f: FaultSummary) -> str:
    """After how long availability came back; "no impact" when the fault breached no window."""
    if not f.recovered:
        return "<strong>not recovered</strong>"
    if f.start is None or not f.downtime_minutes:
        return '<span class="muted">no impact</span>'
    return format_span(f.time_to_recover)


def affected_list(f: FaultSummary, G: nx.Graph | None = None, inline: int = 3) -> str:
    """What a fault affected: up to ``inline`` names as they are; more as a count by kind of node
    (``74 databases``) that opens on a click to the names (``<details>``).
    """
    names = list(f.affected)
    n = f.affected_count if "affected_count" in f.model_fields_set else len(names)
    if n == 0:
        return f'<span class="muted">{NONE}</span>'
    if n <= inline and len(names) == n:
        return html.escape(", ".join(names))
    more = (f' <span class="muted">and {format_count(n - len(names))} more (in summary.json: '
            f"affected_count)</span>" if len(names) < n else "")
    return (f'<details class="list"><summary>{html.escape(affected_count(f, G))}</summary>'
            f"<p>{html.escape(', '.join(names))}{more}</p></details>")


def regions_table(s: Summary, order: list[str]) -> str:
    """Availability, users affected (— where the scenario gives no user count) and latency per region."""
    rows = []
    regions = s.regions
    for name in [*order, *(r for r in regions if r not in order)]:
        r = regions.get(name)
        if r is None:
            continue
        worst = ' class="worst"' if name == s.worst_region else ""
        rows.append(
            f"<tr{worst}><td>{html.escape(name)}</td><td class=\"num\">{format_percent(r.availability)}</td>"
            f'<td class="num">{format_nines(r.nines)}</td><td class="num">{format_count(r.requests)}</td>'
            f'<td class="num">{format_span(r.downtime_minutes * 60)}</td>'
            f'<td class="num">{format_count(r.users_affected) if r.users else NONE}</td>'
            f'<td class="num">{format_latency(r.latency_p50)}</td>'
            f'<td class="num">{format_latency(r.latency_p99)}</td></tr>'
        )
    body = table("regions", ("Region", "Availability", "Nines", "Requests", "Downtime", "Users affected (est.)",
                             "p50 latency", "p99 latency"), rows)
    return table_section("Regions", "Availability and latency as each region's users saw them.", body)
