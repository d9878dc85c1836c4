"""Summing up what happened to user requests, per window and region.

The engines increment plain integer tables in a :class:`~sim.recorder.Recorder` (no objects per request);
the control-plane state is sampled once per window. :func:`summarize` turns the tables and the event log
into a :class:`~sim.summary.Summary` (its :meth:`~sim.summary.Summary.as_dict` is ``summary.json``):
availability, nines, downtime, users affected, latency, counts, per region, per fault. It reads and
never writes: the SLO breach and recovery events go into the log in a step of their own,
:func:`record_slo_events`, which :func:`sim.run.run` takes once, before summing up.

With no user requests (a ``peak: 0/s`` workload, a run shorter than the first arrival) availability and
nines are ``None`` (``null`` in JSON): there is nothing to judge, so no availability objective is
breached; the same holds per region and per window.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from sim.cascade import children, depth, recovery_after, slo_events
from sim.cluster import Cluster
from sim.events import (
    DATABASE_UNAVAILABLE,
    DATACENTER_DOWN,
    EJECTED,
    FAULT_END,
    FAULT_START,
    KINDS,
    SERVER_DOWN,
    SLO_BREACH,
    names,
)
from sim.recorder import COUNTERS, MailRecorder, Recorder
from sim.scenario import Scenario
from sim.summary import (
    SIGN_IN,
    BlastRadius,
    FaultSummary,
    Impact,
    Latency,
    MailBacklog,
    MailDelay,
    MailLost,
    MailRate,
    MailRegion,
    MailSummary,
    Recovery,
    RegionSummary,
    Slo,
    Summary,
    distinct_users,
)
from sim.trace import Trace

__all__ = [
    "weighted_percentile", "latency_samples", "summarize", "record_slo_events", "mail_summary", "nines",
    "fault_intervals", "active_faults", "attribute_windows", "attribute_failures",
]

def nines(availability: float | None, requests: int) -> float | None:
    """``-log10(1 - availability)``, capped by what ``requests`` samples can show; ``None`` with no requests.

    Never ``-0.0``: an availability of 0 has 0 nines.

    >>> nines(0.999, 10_000), nines(1.0, 99), nines(0.0, 5), nines(None, 0)
    (3.0, 2.0, 0.0, None)
    """
    if availability is None or not requests:
        return None
    floor = 1.0 / (requests + 1)
    return round(-math.log10(max(1.0 - availability, floor)), 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den else 1.0


def _availability(ok: int, requests: int) -> float | None:
    """Share of ``requests`` that succeeded; ``None`` when there were none (nothing to judge)."""
    return ok / requests if requests else None


def _percentile(values: np.ndarray, q: float, weights: np.ndarray | None = None) -> float | None:
    if not values.size:
        return None
    if weights is None:
        return float(np.percentile(values, q))
    return weighted_percentile(values, weights, q)


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """The ``q``-th percentile of ``values`` each standing for ``weights`` observations (inverted CDF).

    >>> weighted_percentile(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 98.0]), 50)
    3.0
    """
    if not values.size or weights.sum() <= 0:
        return None
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    i = int(np.searchsorted(cum, q / 100.0 * cum[-1], side="left"))
    return float(values[order][min(i, values.size - 1)])


def latency_samples(rec: Recorder) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The run's latency samples as arrays: values, windows, regions and weights (None: one each)."""
    if not len(rec.latency):
        return np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int32), None
    weights = np.frombuffer(rec.latency_weight, dtype=np.float64) if len(rec.latency_weight) else None
    return (np.frombuffer(rec.latency, dtype=np.float64), np.frombuffer(rec.latency_window, dtype=np.int32),
            np.frombuffer(rec.latency_region, dtype=np.int32), weights)


def _tables(rec: Recorder) -> tuple[np.ndarray, np.ndarray]:
    """User requests and successes per ``[region, window]`` over the run's windows (not the drain's)."""
    return (np.array(rec.requests, dtype=np.int64)[:, : rec.n], np.array(rec.ok, dtype=np.int64)[:, : rec.n])


def record_slo_events(scenario: Scenario, cluster: Cluster, rec: Recorder, trace: Trace) -> None:
    """Append the ``slo_breach`` / ``slo_recovered`` events of each region to ``trace``, once.

    The one step that writes them (:func:`sim.cascade.slo_events` with this run's windows and faults):
    :func:`sim.run.run` takes it after the run and before :func:`summarize`, which reads them.
    """
    req, ok = _tables(rec)
    region_avail = np.where(req > 0, ok / np.maximum(req, 1), 1.0)
    intervals = fault_intervals(trace, scenario.duration)
    reach = scenario.policies.client.drain_time()
    active = dict(enumerate(active_faults(intervals, rec.n, rec.window)))
    for w, faults in active.items():  # a window's requests may fail after it, at a fault that starts then
        if not faults:
            active[w] = [f for f in _answering(intervals, w * rec.window, (w + 1) * rec.window, reach)
                         if any(a >= (w + 1) * rec.window for a, _ in intervals[f])]
    slo_events(trace, cluster.region_ids, region_avail >= scenario.slo.availability, rec.window, active, reach)


def summarize(
    scenario: Scenario,
    cluster: Cluster,
    rec: Recorder,
    trace: Trace,
    seed: int,
) -> Summary:
    """The run's :class:`~sim.summary.Summary` (``Summary.as_dict()`` is the body of ``summary.json``).

    Pure: it reads the scenario, the recorder's tables and the event log, and changes none of them. The
    SLO breach and recovery events are not written here but by :func:`record_slo_events`, a step of its
    own that :func:`sim.run.run` takes once, before this one; a fault's ``regions_breached`` and the
    choice of ``worst_fault`` count the breaches the log holds (none, if that step was not taken).

    Users affected (the model is :func:`sim.summary.distinct_users`): per region, the distinct users
    among its ``users`` hit by its failed user requests (after the client's retries) over the run; the
    run's figure is their sum. A fault's ``blast_radius.users`` is the same over the failed requests
    attributed to it (:func:`attribute_failures`), so it never exceeds the run's figure. The manifest is
    left empty: :class:`~sim.result.Result` fills it in.
    """
    n = rec.n
    slo = scenario.slo
    req, ok = _tables(rec)
    total_req, total_ok = int(req.sum()), int(ok.sum())
    availability = _availability(total_ok, total_req)
    per_window = np.where(req.sum(0) > 0, ok.sum(0) / np.maximum(req.sum(0), 1), 1.0)
    breached = per_window < slo.availability
    downtime_minutes = float(breached.sum() * rec.window / 60.0)
    lat, _, lat_region, lat_weight = latency_samples(rec)
    failed = np.maximum(req - ok, 0)  # a guard: both engines count at most a window's requests as ok
    users = [int(r.users) for r in scenario.topology.regions]

    def table(name: str) -> np.ndarray:
        return np.array(getattr(rec, name), dtype=np.int64)

    regions = {}
    for r, name in enumerate(cluster.region_ids):
        r_req, r_ok = int(req[r].sum()), int(ok[r].sum())
        r_window = np.where(req[r] > 0, ok[r] / np.maximum(req[r], 1), 1.0)
        mine = lat_region == r
        r_lat = lat[mine] if lat.size else lat
        r_weight = lat_weight[mine] if lat_weight is not None else None
        regions[name] = RegionSummary(
            availability=_availability(r_ok, r_req),
            nines=nines(_availability(r_ok, r_req), r_req),
            requests=r_req,
            succeeded=r_ok,
            downtime_minutes=float((r_window < slo.availability).sum() * rec.window / 60.0),
            latency_p50=_percentile(r_lat, 50, r_weight) if r_req else None,
            latency_p99=_percentile(r_lat, 99, r_weight) if r_req else None,
            users=users[r],
            users_affected=distinct_users(users[r], max(r_req - r_ok, 0)),
        )
    judged = [k for k in regions if regions[k].availability is not None]  # regions with requests
    worst_region = min(judged, key=lambda k: (regions[k].availability, k)) if judged else None

    counts = {name: int(table(name).sum()) for name in COUNTERS if name not in ("requests", "ok")}
    # Strict availability: the requests answered in full, without the degraded answers of fallbacks.
    availability_strict = _availability(total_ok - counts["degraded"], total_req)
    events = trace.records
    for kind in KINDS.values():  # summary.json sorts its keys: the order here does not show
        if kind.counted:
            counts[kind.name] = sum(1 for e in events if e.kind == kind.name)
    counts["wasted"] = rec.wasted
    counts["queued"] = rec.queued
    counts["link_lost"] = int(sum(sum(row) for row in rec.link_lost))  # tries lost on a link (no answer)

    intervals = fault_intervals(trace, scenario.duration)
    owned = attribute_windows(intervals, breached, rec.window, scenario.policies.client.drain_time())
    owner = attribute_failures(active_faults(intervals, n, rec.window), owned, rec.window, trace,
                               np.nonzero(failed.sum(0))[0].tolist())
    by_fault: dict[str, list[int]] = {}
    for w, fid in owner.items():
        by_fault.setdefault(fid, []).append(w)
    # A region's failures are its requests less its successes; the windows' sum can be one over where the
    # flow engine's rounding left a window one success over its requests (clamped above).
    region_failed = np.maximum(req.sum(1) - ok.sum(1), 0)
    fault_failed = {fid: np.minimum(failed[:, ws].sum(1), region_failed) for fid, ws in by_fault.items()}
    faults = _fault_summaries(scenario, trace, n, rec.window, intervals, owned, fault_failed, users)
    scheduled_ends = [b for i, f in enumerate(scenario.faults) if f.at is not None
                      for _, b in intervals.get(scenario.fault_id(i), [])]
    any_ends = [b for spans in intervals.values() for _, b in spans]
    last_end = max(scheduled_ends or any_ends or [0.0])
    recovered, recovery_time = recovery_after(~breached, last_end, rec.window) if any_ends else (True, 0.0)
    blamed = {f.id: sum(1 for e in trace.records if e.kind == SLO_BREACH and e.fault == f.id) for f in faults}
    worst_fault = (
        max(faults, key=lambda f: (f.downtime_minutes, blamed[f.id], f.events, f.id)).id
        if faults else None
    )
    if not total_req:  # the flow engine's latency bins hold fractions of requests its counts rounded away
        lat, lat_weight = lat[:0], None
    p99 = _percentile(lat, 99, lat_weight)
    mean = (float(np.average(lat, weights=lat_weight)) if lat_weight is not None and lat_weight.sum() > 0
            else float(lat.mean()) if lat.size and lat_weight is None else None)
    # Judged on what exists: no requests breach no availability objective, and no latency samples breach
    # no latency objective unless there were requests (then every one of them failed).
    availability_ok = availability is None or availability >= slo.availability
    latency_ok = slo.latency_p99 is None or (p99 <= slo.latency_p99 if p99 is not None else not total_req)
    mail = mail_summary(rec.mail, cluster.region_ids) if rec.mail is not None else None
    return Summary(
        availability=availability,
        availability_strict=availability_strict,
        nines=nines(availability, total_req),
        downtime_minutes=downtime_minutes,
        requests=total_req,
        succeeded=total_ok,
        users=sum(users),
        users_affected=sum(region.users_affected or 0 for region in regions.values()),
        latency=Latency(p50=_percentile(lat, 50, lat_weight), p99=p99, mean=mean),
        amplification=_ratio(counts["attempts"], total_req),
        counts=counts,
        regions=regions,
        worst_region=worst_region,
        faults=faults,
        worst_fault=worst_fault,
        recovery=Recovery(
            last_fault_end=last_end if any_ends else None,
            recovered=recovered,
            metastable=not recovered,
            time_to_recover=recovery_time,
        ),
        slo=Slo(
            availability=slo.availability,
            latency_p99=slo.latency_p99,
            window=rec.window,
            availability_met=availability_ok,
            latency_met=latency_ok,
            met=availability_ok and latency_ok,
        ),
        mail=mail,
        impact=impact(scenario, cluster.region_ids, req, ok, rec.window, mail, rec.failed_by_type),
    )


def impact(scenario: Scenario, region_ids: list[str], req: np.ndarray, ok: np.ndarray, window: float,
           mail: MailSummary | None, failed_by_type: list[int]) -> Impact:
    """The summary's ``impact`` section (:class:`sim.summary.Impact`) from the per-region, per-window
    counts of user requests (``req``) and successes (``ok``), and the failures per request type
    (``Recorder.failed_by_type``, in the order of ``workload.requests``).

    >>> import numpy as np
    >>> from sim.loader import parse_scenario
    >>> from sim.topology import EXAMPLE
    >>> s = parse_scenario(EXAMPLE)
    >>> req, ok = np.array([[100, 100]]), np.array([[100, 50]])  # half failed in the second minute
    >>> users = s.topology.regions[0].users
    >>> i = impact(s, ["users"], req, ok, 60.0, None, [50])
    >>> i.user_minutes == users * 0.5, i.failed_by_type, i.sign_ins_failed
    (True, {'read': 50}, None)
    """
    by_type = dict(zip(scenario.workload.requests, failed_by_type, strict=True))
    users = np.array([float(r.users) for r in scenario.topology.regions])
    failed_share = np.where(req > 0, (req - ok) / np.maximum(req, 1), 0.0)
    per_region = users * failed_share.sum(1) * window / 60.0
    total = float(per_region.sum())
    cost = basis = None
    if scenario.impact is not None:
        rate, unit = scenario.impact.cost_per_user_hour, scenario.impact.currency
        cost, basis = total / 60.0 * rate, (
            f"{total / 60.0:,.0f} user-hours without service × {rate:,g}{' ' + unit if unit else ''} per "
            "user-hour (the scenario's impact.cost_per_user_hour; an assumption, not a measurement)"
        )
    return Impact(
        user_minutes=total,
        regions={name: float(v) for name, v in zip(region_ids, per_region, strict=True)},
        requests_failed=int((req - ok).sum()),
        failed_by_type=by_type,
        sign_ins_failed=by_type.get(SIGN_IN),
        mail_delayed=mail.delayed if mail is not None else None,
        mail_lost=mail.lost.queue_full + mail.lost.expired if mail is not None else None,
        mail_delay_p99=mail.delay.p99 if mail is not None else None,
        mail_delay_max=mail.delay.max if mail is not None else None,
        cost=cost,
        cost_basis=basis,
    )


def mail_summary(mail: MailRecorder, region_ids: list[str]) -> MailSummary:
    """The ``mail`` section of the summary: what became of the messages, their delays, the backlog.

    Mail is not counted in ``availability``: a delayed message is not a failed request. Messages still
    in flight or in a sender's queue when the run ends are ``undelivered_at_end`` (neither delivered nor
    lost). ``delivery_rate.peak`` is the busiest window's deliveries per second: after an outage, the
    steady flow plus the queued messages whose retries land on the servers when they come back.
    """

    def total(name: str, r: int | None = None) -> int:
        table = np.array(getattr(mail, name), dtype=np.int64)
        return int(table.sum() if r is None else table[r].sum())

    delays = np.frombuffer(mail.delays, dtype=np.float64) if len(mail.delays) else np.zeros(0)
    deliveries = np.array(mail.delivered, dtype=np.int64)[:, : mail.n].sum(0)
    busiest = int(deliveries.argmax())
    messages, delivered = total("arrived"), total("delivered")
    lost = MailLost(queue_full=total("lost_queue_full"), expired=total("lost_expired"))
    regions = {}
    for r, name in enumerate(region_ids):
        if total("arrived", r):
            regions[name] = MailRegion(
                messages=total("arrived", r),
                delivered=total("delivered", r),
                delayed=total("delayed", r),
                lost=total("lost_queue_full", r) + total("lost_expired", r),
                backlog_peak=max(mail.backlog_series(r)[1]),
            )
    return MailSummary(
        counted_in_availability=False,
        messages=messages,
        delivered=delivered,
        delayed=total("delayed"),
        lost=lost,
        undelivered_at_end=messages - delivered - lost.queue_full - lost.expired,
        attempts=total("attempts"),
        delay=MailDelay(
            p50=_percentile(delays, 50),
            p99=_percentile(delays, 99),
            max=float(delays.max()) if delays.size else None,
            mean=float(delays.mean()) if delays.size else None,
        ),
        backlog=MailBacklog(peak=mail.peak, at=mail.peak_time if mail.peak else None, at_end=mail.total),
        delivery_rate=MailRate(
            peak=float(deliveries[busiest] / mail.window),
            at=busiest * mail.window,
            mean=float(deliveries.sum() / (mail.n * mail.window)),
        ),
        regions=regions,
    )


def fault_intervals(trace: Trace, end_of_run: float) -> dict[str, list[tuple[float, float]]]:
    """Per fault id, the (start, end) of each occurrence; an occurrence that never ends runs to the end."""
    ends = {e.cause: e.time for e in trace.records if e.kind == FAULT_END and e.cause is not None}
    out: dict[str, list[tuple[float, float]]] = {}
    for e in trace.records:
        if e.kind == FAULT_START and e.fault is not None:
            out.setdefault(e.fault, []).append((e.time, ends.get(e.id, end_of_run)))
    return out


def active_faults(intervals: dict[str, list[tuple[float, float]]], n: int, window: float) -> list[list[str]]:
    """Per window ``w`` of ``n``, the faults with an occurrence overlapping ``[w·window, (w+1)·window)``.

    In the order of ``intervals``; each occurrence costs the windows it spans, not all ``n``.

    >>> active_faults({"a": [(30.0, 90.0)], "b": [(60.0, 200.0)]}, 4, 60.0)
    [['a'], ['a', 'b'], ['b'], ['b']]
    """
    out: list[list[str]] = [[] for _ in range(n)]
    for fid, spans in intervals.items():
        hit: set[int] = set()
        for a, b in spans:  # the range is widened by a window each side, then held to the exact test
            lo, hi = max(0, int(a // window) - 1), min(n, math.ceil(b / window) + 1)
            hit.update(w for w in range(lo, hi) if a < (w + 1) * window and b > w * window)
        for w in sorted(hit):
            out[w].append(fid)
    return out


def attribute_windows(
    intervals: dict[str, list[tuple[float, float]]], breached: np.ndarray, window: float, reach: float = 0.0
) -> dict[str, list[int]]:
    """Which breached windows each fault answers for.

    A window goes to every fault active during it. A breached window with no active fault goes to the
    fault that started first within ``reach`` after it — a request is counted in the window it arrived
    in, and may fail up to ``reach`` (its longest life, ``ClientPolicy.drain_time``) later — else to the
    fault that ended last before it (its aftermath: retries, queues, failovers still settling).

    >>> spans = {"outage": [(300.0, 900.0)]}
    >>> attribute_windows(spans, np.array([False] * 4 + [True]), 60.0, reach=37.0)
    {'outage': [4]}
    """
    owned: dict[str, list[int]] = {fid: [] for fid in intervals}
    for w in np.nonzero(breached)[0].tolist():
        for fid in _answering(intervals, w * window, (w + 1) * window, reach):
            owned[fid].append(w)
    return owned


def _answering(intervals: dict[str, list[tuple[float, float]]], lo: float, hi: float, reach: float) -> list[str]:
    """The faults a breach in ``[lo, hi)`` is put down to (see :func:`attribute_windows`)."""
    active = [fid for fid, spans in intervals.items() if any(a < hi and b > lo for a, b in spans)]
    if active:
        return active
    starting = [(a, fid) for fid, spans in intervals.items() for a, b in spans if hi <= a < hi + reach]
    if starting:
        return [min(starting)[1]]
    ended = [(b, fid) for fid, spans in intervals.items() for a, b in spans if b <= lo]
    return [max(ended)[1]] if ended else []


def attribute_failures(
    active: list[list[str]],
    owned: dict[str, list[int]],
    window: float,
    trace: Trace,
    windows: list[int] | None = None,
) -> dict[int, str]:
    """Which one fault answers for the failed requests of each window; windows none answers for are left out.

    The candidates are the faults a window's downtime goes to: those active during it (``active[w]``,
    :func:`active_faults`), or, for a breached window with none active, the one whose aftermath it is
    (``owned``, :func:`attribute_windows`). Of several, the failures go to the fault of the latest
    harmful event (``names("harm")`` of :mod:`sim.events`) before the window's end — the heuristic that names a breach's
    cause (:func:`sim.cascade.slo_events`) — so overlapping faults share the failures out instead of
    each claiming them all. ``windows``: the windows to judge (default: all).

    >>> from sim.trace import Trace
    >>> log = Trace()
    >>> a = log.record(0.0, "fault_start", "x", fault="a")
    >>> b = log.record(70.0, "fault_start", "y", fault="b")
    >>> spans = {"a": [(0.0, 120.0)], "b": [(70.0, 130.0)]}
    >>> owned = {"a": [], "b": [3]}  # window 3 breached: the aftermath of b, which ended last
    >>> attribute_failures(active_faults(spans, 4, 60.0), owned, 60.0, log)
    {0: 'a', 1: 'b', 2: 'b', 3: 'b'}
    """
    aftermath = {w: fid for fid, ws in owned.items() for w in ws}
    harmful = names("harm")
    harm = sorted((e.time, e.id, e.fault) for e in trace.records if e.kind in harmful and e.fault is not None)
    times = [t for t, _, _ in harm]
    out: dict[int, str] = {}
    for w in range(len(active)) if windows is None else windows:
        candidates = active[w] or ([aftermath[w]] if w in aftermath else [])
        if len(candidates) == 1:
            out[w] = candidates[0]
        elif candidates:
            wanted = set(candidates)
            k = bisect.bisect_left(times, (w + 1) * window)  # the harm before the window's end, latest first
            out[w] = next((harm[i][2] for i in range(k - 1, -1, -1) if harm[i][2] in wanted), candidates[0])
    return out


def _fault_summaries(
    scenario: Scenario,
    trace: Trace,
    n: int,
    window: float,
    intervals: dict[str, list[tuple[float, float]]],
    owned: dict[str, list[int]],
    fault_failed: dict[str, np.ndarray],
    users: list[int],
) -> list[FaultSummary]:
    """Per scenario fault: when it acted, what it hit (blast radius), how deep the cascade went, how
    long until detected and recovered.

    ``owned[id]``: the breached windows it answers for (its downtime); ``fault_failed[id][r]``: the failed
    requests of region ``r`` attributed to it (:func:`attribute_failures`); its users are
    the distinct users among ``users[r]`` they hit (:func:`sim.summary.distinct_users`), summed over regions.
    """
    out = []
    events = trace.records
    kids = children(trace)
    affects, detects = names("affects"), names("detects")
    for i in range(len(scenario.faults)):
        fid = scenario.fault_id(i)
        mine = [e for e in events if e.fault == fid]
        spans = intervals.get(fid, [])
        affected = sorted({e.node for e in mine if e.kind in affects})
        roots = [e.id for e in mine if e.kind == FAULT_START]
        windows = owned.get(fid, [])
        failures = fault_failed.get(fid)
        detect, downtime, recovered, recover = None, 0.0, True, (0.0 if spans else None)
        if spans:
            first = spans[0][0]
            reactions = [e.time for e in mine if e.kind in detects]
            detect = (min(reactions) - first) if reactions else None
            downtime = len(windows) * window / 60.0
            if windows:
                last = max(windows)
                recovered = last + 1 < n
                recover = (last + 1) * window - first if last + 1 < n else None
        out.append(FaultSummary(
            id=fid,
            kind=scenario.faults[i].kind,
            occurrences=len(spans),
            start=spans[0][0] if spans else None,
            end=max(b for _, b in spans) if spans else None,
            downtime_minutes=downtime,
            time_to_detect=detect,
            time_to_recover=recover,
            recovered=recovered,
            affected=affected[:200],
            affected_count=len(affected),
            blast_radius=BlastRadius(
                servers=len({e.node for e in mine if e.kind in (SERVER_DOWN, EJECTED)}),
                databases=len({e.node for e in mine if e.kind == DATABASE_UNAVAILABLE}),
                datacenters=len({e.node for e in mine if e.kind == DATACENTER_DOWN}),
                regions_breached=len({e.node for e in mine if e.kind == SLO_BREACH}),
                users=0 if failures is None else sum(
                    distinct_users(u, int(f)) for u, f in zip(users, failures.tolist(), strict=True)),
            ),
            cascade_depth=max((depth(trace, r, kids) for r in roots), default=0),
            events=len(mine),
        ))
    return out
