"""What ``cascadesim run`` prints after a run: the one-screen summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import printable

__all__ = ["format_summary"]


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.3f}%"


def _ms(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def format_summary(summary: Any, report: Path | None) -> str:
    """The one-screen summary printed after a run, from its typed summary (``Result.stats``, a
    :class:`sim.summary.Summary`); a JSON-ready one (``Result.summary``) is read through the same model.
    """
    from sim.summary import Summary
    from sim.units import format_duration

    s = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
    m, slo = s.manifest, s.slo
    verdict = "met" if slo.met else "BREACHED"
    objectives = f"availability {_percent(slo.availability)}"
    if slo.latency_p99 is not None:
        objectives += f", p99 ≤ {_ms(slo.latency_p99)}"
    lines = [
        f"{m.scenario}  (seed {m.seed}, {format_duration(m.duration)} simulated, engine {m.engine})",
        f"  availability  {_percent(s.availability)}  "
        + ("(no requests)" if s.nines is None else f"({s.nines:.2f} nines)"),
        f"  SLO           {verdict}  ({objectives})",
        f"  downtime      {s.downtime_minutes:.1f} min below the SLO (per {format_duration(slo.window)} window)",
        f"  latency       p50 {_ms(s.latency.p50)}   p99 {_ms(s.latency.p99)}",
        f"  requests      {s.requests:,}   failed {s.counts['failed']:,}   "
        f"retries {s.counts['retries']:,}   amplification {s.amplification:.2f}x",
    ]
    if s.users and s.users_affected is not None:
        lines.append(f"  users         {s.users_affected:,} of {s.users:,} affected "
                     "(distinct users with a failed request, estimated)")
    worst = s.worst_region
    if worst is not None:
        lines.append(f"  worst region  {worst}  {_percent(s.regions[worst].availability)}")
    f = s.fault(s.worst_fault) if s.worst_fault is not None else None
    if f is not None:
        ttd = f.time_to_detect
        detect = "not detected" if ttd is None else f"detected after {format_duration(ttd)}"
        recover = (
            "not recovered by the end" if not f.recovered
            else f"recovered after {format_duration(f.time_to_recover or 0)}"
        )
        lines.append(
            f"  worst fault   {f.id} ({f.kind}): {f.downtime_minutes:.1f} min below SLO, {detect}, {recover}"
        )
    if report is not None:
        lines.append(f"  report        {printable(report / 'report.html')}")
    return "\n".join(lines)
