"""Reading a cascade back from the event log: trees, depth, blast radius, recovery.

Free functions over a :class:`~sim.trace.Trace` (and the per-window availability), in the spirit of
networkx's algorithms: they read, they never change the log.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sim.events import FAULT_START, SLO_BREACH, SLO_RECOVERED, names
from sim.trace import Record, Trace

__all__ = ["children", "descendants", "depth", "chain", "roots", "recovery_after", "slo_events"]


def children(trace: Trace) -> dict[int, list[int]]:
    """Map each event id to the ids of the events it caused."""
    out: dict[int, list[int]] = defaultdict(list)
    for r in trace.records:
        if r.cause is not None:
            out[r.cause].append(r.id)
    return out


def roots(trace: Trace) -> list[Record]:
    """Events with no cause that started a chain: injected faults first."""
    kids = children(trace)
    return [r for r in trace.records if r.cause is None and (r.kind == FAULT_START or r.id in kids)]


def descendants(trace: Trace, root: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    """Ids of every event caused, directly or not, by ``root`` (breadth first)."""
    kids = children(trace) if kids is None else kids
    out, frontier = [], [root]
    while frontier:
        nxt = []
        for rid in frontier:
            for child in kids.get(rid, ()):
                out.append(child)
                nxt.append(child)
        frontier = nxt
    return out


def depth(trace: Trace, root: int, kids: dict[int, list[int]] | None = None) -> int:
    """Length of the longest chain of causes below ``root`` (0: it caused nothing)."""
    kids = children(trace) if kids is None else kids
    best, stack = 0, [(root, 0)]
    while stack:
        rid, d = stack.pop()
        best = max(best, d)
        stack.extend((child, d + 1) for child in kids.get(rid, ()))
    return best


def chain(trace: Trace, rid: int) -> list[Record]:
    """``rid`` and its causes, back to the root: the postmortem sentence read right to left."""
    out = []
    cur: int | None = rid
    while cur is not None:
        rec = trace.records[cur]
        out.append(rec)
        cur = rec.cause
    return out


def recovery_after(ok: np.ndarray, t_end: float, window: float) -> tuple[bool, float | None]:
    """Whether the service came back after ``t_end`` (the last fault's end), and how long it took.

    ``ok[w]`` says whether window ``w`` met the objective. Recovered means every window from some
    point after ``t_end`` to the end of the run met it; the time is from ``t_end`` to that point.
    A service still below the objective in the last window after its trigger ended is metastable.
    """
    n = len(ok)
    first = min(n, int(np.ceil(t_end / window - 1e-9)))
    if first >= n:
        return True, None  # the fault lasted to the end: nothing to judge
    bad = np.nonzero(~ok[first:])[0]
    if bad.size == 0:
        return True, 0.0
    last_bad = first + int(bad[-1])
    if last_bad == n - 1:
        return False, None
    return True, max(0.0, (last_bad + 1) * window - t_end)


def slo_events(
    trace: Trace,
    region_ids: list[str],
    ok: np.ndarray,
    window: float,
    active_fault_at: dict[int, list[str]],
    reach: float = 0.0,
) -> None:
    """Append ``slo_breach`` / ``slo_recovered`` events per region to ``trace``.

    ``ok[r, w]`` says whether region ``r`` met the objective in window ``w``. A breach's cause is a
    harmful event (``names("harm")`` of :mod:`sim.events`) of a fault active in that window
    (``active_fault_at[w]``), so the breach hangs off the cascade that produced it: the latest one up to
    the window's start when the fault was already doing harm, else the first one inside the window or
    within ``reach`` after it (a request counts in the window it arrived in and may fail up to ``reach``
    later, at a fault that starts then). A breach is stamped at its window's start, or at its cause when
    that comes later, so a cause is never later than its effect.
    """
    records = list(trace.records)
    times = np.array([r.time for r in records]) if records else np.zeros(0)
    for r, region in enumerate(region_ids):
        breached = False
        breach_id: int | None = None
        breach_at = 0.0
        for w in range(ok.shape[1]):
            t = w * window
            if not ok[r, w] and not breached:
                breached = True
                cause = _harm_behind(records, times, t, t + window + reach, active_fault_at.get(w, []))
                breach_at = t if cause is None else max(t, records[cause].time)
                breach_id = trace.record(breach_at, SLO_BREACH, region, cause, "availability below the objective")
            elif ok[r, w] and breached:
                breached = False
                trace.record(max(t, breach_at), SLO_RECOVERED, region, breach_id,
                             "availability back above the objective")


def _harm_behind(records: list[Record], times: np.ndarray, start: float, end: float,
                 faults: list[str]) -> int | None:
    """The harmful event of one of ``faults`` behind a breach in the window ``[start, end)``."""
    if not faults:
        return None
    wanted, harm = set(faults), names("harm")
    k = int(np.searchsorted(times, start, side="right"))
    for rec in reversed(records[:k]):  # already harming when the window began
        if rec.fault in wanted and rec.kind in harm:
            return rec.id
    for rec in records[k:int(np.searchsorted(times, end, side="left"))]:  # the first harm inside it
        if rec.fault in wanted and rec.kind in harm:
            return rec.id
    return None
