"""What ``cascadesim run`` prints after a run: the one-screen summary.

Numbers go through the formatters of :mod:`sim.units`, as in ``report.md`` and ``report.html``, so a
number reads the same in the terminal and on the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.errors import printable

if TYPE_CHECKING:
    from sim.summary import FaultSummary, Summary

__all__ = ["format_summary"]


def format_summary(summary: Any, report: Path | None) -> str:
    """The one-screen summary printed after a run, from its typed summary (``Result.stats``, a
    :class:`sim.summary.Summary`); a JSON-ready one (``Result.summary``) is read through the same model.
    """
    from sim.summary import Summary  # here, not at the top: ``cascadesim --help`` stays quick
    from sim.units import format_count, format_latency, format_nines, format_percent, format_ratio, format_span
    s = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
    m, slo = s.manifest, s.slo
    verdict = "met" if slo.met else "BREACHED"
    objectives = f"availability ≥ {format_percent(slo.availability)}"
    if slo.latency_p99 is not None:
        objectives += f", p99 ≤ {format_latency(slo.latency_p99)}"
    lines = [
        f"{m.scenario}  (seed {m.seed}, {format_span(m.duration)} simulated, engine {m.engine})",
        f"  availability  {format_percent(s.availability)}  "
        + ("(no requests)" if s.nines is None else f"({format_nines(s.nines)} nines)"),
        f"  SLO           {verdict}  ({objectives})",
        f"  downtime      {format_span(s.downtime_minutes * 60)} below the SLO "
        f"(in {format_span(slo.window)} windows)",
        f"  latency       p50 {format_latency(s.latency.p50)}   p99 {format_latency(s.latency.p99)}",
        f"  requests      {format_count(s.requests)}   failed {format_count(s.counts['failed'])}   "
        f"retries {format_count(s.counts['retries'])}   amplification {format_ratio(s.amplification)}",
    ]
    degraded = s.counts.get("degraded", 0)
    if degraded and s.availability_strict is not None:
        lines.insert(2, f"  strict        {format_percent(s.availability_strict)}  ({format_count(degraded)} answers "
                        "degraded by a fallback, counted as successes above)")
    if s.users and s.users_affected is not None:
        lines.append(f"  users         {format_count(s.users_affected)} of {format_count(s.users)} affected "
                     "(distinct users with a failed request, estimated)")
    lines += impact_lines(s)
    worst = s.worst_region
    if worst is not None:
        lines.append(f"  worst region  {worst}  {format_percent(s.regions[worst].availability)}")
    f = s.fault(s.worst_fault) if s.worst_fault is not None else None
    if f is not None:
        lines.append(f"  worst fault   {f.id} ({f.kind}): {_fault(f)}")
    if report is not None:
        lines.append(f"  report        {printable(report / 'report.html')}")
    return "\n".join(lines)


def impact_lines(s: Summary) -> list[str]:
    """The impact rows: user-minutes without service (when the scenario says how many users there are),
    the failed requests by type (sign-ins first), mail delayed apart from mail lost, and the cost with the
    assumption it rests on.
    """
    from sim.units import format_count, format_number, format_span

    i = s.impact
    out = []
    if s.users and i.user_minutes:
        out.append(f"  impact        {format_count(round(i.user_minutes))} user-minutes without service "
                   f"({format_count(i.requests_failed)} user requests failed)")
    if i.by_type():
        out.append("  by type       " + " · ".join(f"{label} {format_count(n)}" for label, n in i.by_type())
                   + " failed")
    if i.mail_delayed is not None:
        delay = ""
        if i.mail_delayed and i.mail_delay_p99 is not None and i.mail_delay_max is not None:
            delay = f" (p99 delay {format_span(i.mail_delay_p99)}, longest {format_span(i.mail_delay_max)})"
        out.append(f"  mail          {format_count(i.mail_delayed)} messages delayed{delay}, "
                   f"{format_count(i.mail_lost or 0)} lost")
    if i.cost is not None:
        out.append(f"  cost          {format_number(round(i.cost))} ({i.cost_basis})")
    return out


def _fault(f: FaultSummary) -> str:
    """``10 min below the SLO, detected 10.6 s after it started, recovered 16 min 56 s after it started``."""
    from sim.units import NONE, format_span
    detect = ("not detected" if f.time_to_detect is None
              else f"detected {format_span(f.time_to_detect)} after it started")
    if not f.recovered:
        recover = "not recovered by the end"
    elif f.time_to_recover is None or not f.downtime_minutes:
        recover = "no window below the SLO"
    else:
        recover = f"recovered {format_span(f.time_to_recover)} after it started"
    down = format_span(f.downtime_minutes * 60) if f.downtime_minutes else NONE
    return f"{down} below the SLO, {detect}, {recover}"
