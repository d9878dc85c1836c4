"""The text parts of the run report: header, headline, fault and region tables. Every name is escaped."""

from __future__ import annotations

import html
from typing import Any

from sim.report.page import table, table_section
from sim.report.story import Story
from sim.report.style import clock, latency, minutes, objective, pct, span
from sim.summary import Summary

__all__ = ["header", "headline", "faults_table", "regions_table", "kpi"]


def header(result: Any) -> str:
    """Title, description and the run's identity (seed, duration, engine, version, scenario hash)."""
    scenario = result.scenario
    m = result.stats.manifest
    meta = [
        f"seed {html.escape(str(result.seed))}",
        f"duration {span(scenario.duration)}",
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
    goals = [f"availability ≥ {objective(slo.availability)}"]
    if slo.latency_p99 is not None:
        goals.append(f"p99 latency ≤ {latency(slo.latency_p99)}")
    if s.availability is None:
        parts = ["availability — (no requests)"]
    else:
        met_availability = (slo.availability_met if "availability_met" in slo.model_fields_set
                            else s.availability >= slo.availability)
        parts = [f"availability {pct(s.availability)} {'≥' if met_availability else '<'} "
                 f"{objective(slo.availability)}"]
    if slo.latency_p99 is not None:
        parts.append(f"p99 {latency(s.latency.p99)} {'≤' if slo.latency_met else '>'} "
                     f"{latency(slo.latency_p99)}")
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
        after = (f"{span(h.time_to_recover)} after the last fault ended" if h.time_to_recover
                 else "before the last fault ended")
        recovery = (f"at {clock(at)}" if at is not None else "yes",
                    f"{span(at - (story.trigger_time or 0.0))} after the trigger; {after}" if at is not None
                    else "", "good")
    else:
        recovery = ("not recovered", "still below the objective at the end: metastable", "bad")
    if h.users_affected is None:
        users_value, users_sub = "—", "not counted in this summary"
    else:
        users_value = f"{h.users_affected:,}"
        users_sub = (f"of {h.users_total:,} (distinct users with a failed request, estimated)"
                     if h.users_total else "the scenario gives no user counts")
    amp = h.peak_amplification
    cards = [
        kpi("availability", "Availability", pct(s.availability),
            f"{s.succeeded:,} of {s.requests:,} requests succeeded", s.availability,
            "good" if slo.availability_met else "bad"),
        kpi("nines", "Nines", "—" if s.nines is None else f"{s.nines:.2f}",
            "no requests" if s.nines is None else "−log₁₀(1 − availability)", s.nines),
        kpi("downtime", "Downtime", f"{s.downtime_minutes:,.1f} min",
            f"{span(slo.window)} windows below {objective(slo.availability)}", s.downtime_minutes,
            "bad" if s.downtime_minutes else ""),
        kpi("users", "Users affected", users_value, users_sub, h.users_affected,
            "bad" if h.users_affected else ""),
        kpi("worst-region", "Worst region", html.escape(worst_region) if worst_region else "—",
            f"{pct(region.availability)} available · {region.downtime_minutes:,.1f} min down"
            if region else "", worst_region or ""),
        kpi("peak-amplification", "Peak retry amplification", f"{amp:.2f}×" if amp is not None else "—",
            (f"attempts per request at {clock(h.peak_amplification_at or 0.0)} · "
             f"overall <span id=\"kpi-amplification\" data-value=\"{s.amplification!r}\">"
             f"{s.amplification:.3f}×</span>") if amp is not None else "", amp),
        kpi("recovered", "Recovered", recovery[0], recovery[1],
            "yes" if h.recovered else "no", recovery[2]),
        kpi("latency", "Latency", f"p50 {latency(lat.p50)}<br>p99 {latency(lat.p99)}",
            f"mean {latency(lat.mean)}", None),
        kpi("requests", "Requests", f"{s.requests:,}",
            f"{counts.get('failed', s.requests - s.succeeded):,} failed · "
            f"{counts.get('timeouts', 0):,} timeouts", s.requests),
        kpi("retries", "Retries", f"{counts.get('retries', 0):,}",
            f"{counts.get('attempts', 0):,} attempts", counts.get("retries", 0)),
    ]
    return f'<section class="headline">{verdict}<div class="kpis">{"".join(cards)}</div></section>'


def faults_table(s: Summary) -> str:
    """Per injected fault: when, downtime, detection, recovery, blast radius and cascade depth."""
    if not s.faults:
        return table_section("Faults", "The scenario injects no faults.", "")
    rows = []
    for f in s.faults:
        n = f.affected_count if "affected_count" in f.model_fields_set else len(f.affected)
        shown = ", ".join(f.affected[:6]) + (f", … (+{n - 6})" if n > 6 else "")
        worst = ' class="worst"' if f.id == s.worst_fault else ""
        br = f.blast_radius
        rows.append(
            f"<tr{worst}><td>{html.escape(f.id)}</td><td>{html.escape(f.kind)}</td>"
            f'<td class="num">{f.occurrences}</td>'
            f'<td class="num">{minutes(f.start)}</td><td class="num">{minutes(f.end)}</td>'
            f'<td class="num">{f.downtime_minutes:,.1f}</td>'
            f'<td class="num">{span(f.time_to_detect)}</td>'
            f'<td class="num">{span(f.time_to_recover)}</td>'
            f"<td>{'yes' if f.recovered else '<strong>no</strong>'}</td>"
            f'<td class="num">{br.users:,}</td>'
            f'<td class="num">{br.servers:,} / {br.databases:,} / {br.datacenters:,}'
            f'</td><td class="num">{f.cascade_depth}</td>'
            f'<td><span class="num">{n}</span> {html.escape(shown)}</td></tr>'
        )
    body = table("faults", ("Fault", "Kind", "Times", "Start (min)", "End (min)", "Downtime (min)",
                            "Detected after", "Recovered after", "Recovered", "Users affected (est.)",
                            "Servers / DBs / DCs hit", "Depth", "Affected"), rows)
    return table_section("Faults", "Per injected fault: when it acted, the SLO windows it breached, how "
                         "long until the control plane reacted and until availability recovered, its blast "
                         "radius and how deep its cascade of causes went.", body)


def _nines(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _count(x: int | None) -> str:
    return "—" if x is None else f"{x:,}"


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
            f"<tr{worst}><td>{html.escape(name)}</td><td class=\"num\">{pct(r.availability)}</td>"
            f'<td class="num">{_nines(r.nines)}</td><td class="num">{r.requests:,}</td>'
            f'<td class="num">{r.downtime_minutes:,.1f}</td>'
            f'<td class="num">{_count(r.users_affected) if r.users else "—"}</td>'
            f'<td class="num">{latency(r.latency_p50)}</td>'
            f'<td class="num">{latency(r.latency_p99)}</td></tr>'
        )
    body = table("regions", ("Region", "Availability", "Nines", "Requests", "Downtime (min)", "Users affected (est.)",
                             "p50", "p99"), rows)
    return table_section("Regions", "Availability and latency as each region's users saw them.", body)
