"""Counting what happened to user requests, per window and region, and summing it up.

The engine increments plain integer tables in a :class:`Recorder` (no objects per request); the
control-plane state is sampled once per window. :func:`summarize` turns the tables and the event log
into the numbers of ``summary.json``: availability, nines, downtime, latency, counts, per region, per
fault.

With no user requests (a ``peak: 0/s`` workload, a run shorter than the first arrival) availability and
nines are ``None`` (``null`` in JSON): there is nothing to judge, so no availability objective is
breached; the same holds per region and per window.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Generator

import numpy as np
import simpy

from sim.cascade import children, depth, recovery_after, slo_events
from sim.cluster import Cluster
from sim.scenario import Scenario
from sim.trace import Trace

__all__ = [
    "Recorder", "weighted_percentile", "latency_samples", "MailRecorder", "summarize", "mail_summary", "nines",
    "COUNTERS", "MAIL_COUNTERS",
]

# Per (region, window) counters the engine increments.
COUNTERS = (
    "requests", "ok", "failed", "attempts", "retries", "timeouts", "errors", "shed",
    "lb_retries", "dep_attempts", "dep_retries", "breaker_rejected", "budget_exhausted",
)


class Recorder:
    """Integer tables indexed ``[region][window]`` (and ``[datacenter][window]``).

    Window ``n`` (one past the last) collects what happens after ``duration`` while in-flight requests
    drain; user requests are always counted in the window they arrived in.
    """

    def __init__(self, scenario: Scenario, cluster: Cluster):
        self.window = scenario.slo.window
        self.n = max(1, math.ceil(scenario.duration / self.window - 1e-9))
        width = self.n + 1
        regions, dcs = len(cluster.region_ids), len(cluster.datacenter_ids)
        for name in COUNTERS:
            setattr(self, name, [[0] * width for _ in range(regions)])
        self.requests: list[list[int]]
        self.ok: list[list[int]]
        self.failed: list[list[int]]
        self.attempts: list[list[int]]
        self.retries: list[list[int]]
        self.timeouts: list[list[int]]
        self.errors: list[list[int]]
        self.shed: list[list[int]]
        self.lb_retries: list[list[int]]
        self.dep_attempts: list[list[int]]
        self.dep_retries: list[list[int]]
        self.breaker_rejected: list[list[int]]
        self.budget_exhausted: list[list[int]]
        self.dc_offered = [[0] * width for _ in range(dcs)]
        self.dc_healthy = [[0] * self.n for _ in range(dcs)]
        self.dc_up = [[0] * self.n for _ in range(dcs)]
        self.dc_capacity = [[0.0] * self.n for _ in range(dcs)]
        links = len(cluster.network.links)  # [link][window]: bits offered, crossings, lost; sampled state
        self.link_bits = [[0.0] * width for _ in range(links)]
        self.link_crossings = [[0] * width for _ in range(links)]
        self.link_lost = [[0] * width for _ in range(links)]
        self.link_capacity = [[0.0] * self.n for _ in range(links)]  # effective, bit/s (0 while down)
        self.link_background = [[0.0] * self.n for _ in range(links)]
        self.latency = array("d")
        self.latency_window = array("i")
        self.latency_region = array("i")
        # Empty when every sample stands for one request (the request engine); a rate-based engine
        # records one sample per latency bin and window with the number of requests it stands for.
        self.latency_weight = array("d")
        self.flush: Callable[[], None] = lambda: None  # engines that batch latency samples write them out
        self.wasted = 0  # attempts served after their client gave up
        self.queued = 0  # admissions (attempt x station) that found every worker busy
        self.queue_time = 0.0  # their total time waiting for a worker, seconds
        self.mail = MailRecorder(regions, self.window, self.n) if scenario.workload.mail is not None else None

    def window_of(self, t: float) -> int:
        """Window index of time ``t`` (the drain window for ``t`` past the end)."""
        return min(int(t / self.window), self.n)

    def sample(self, env: simpy.Environment, cluster: Cluster) -> Generator[simpy.Event, None, None]:
        """Process: at the middle of each window, note healthy servers and capacity per datacenter.

        It reads the cluster's per-datacenter counts (kept up to date as servers change), so a window
        costs O(datacenters + links), whatever the number of servers.
        """
        yield env.timeout(self.window / 2)
        up_count, healthy_count, capacity = cluster.up_count, cluster.healthy_count, cluster.healthy_capacity
        rows = list(enumerate(zip(self.dc_healthy, self.dc_up, self.dc_capacity, strict=True)))
        for w in range(self.n):
            for dc, (healthy_row, up_row, capacity_row) in rows:
                healthy_row[w] = healthy_count[dc]
                up_row[w] = up_count[dc]
                capacity_row[w] = capacity(dc)
            for link in cluster.network.links:
                self.link_capacity[link.index][w] = link.effective_capacity
                self.link_background[link.index][w] = link.background
            if w + 1 < self.n:
                yield env.timeout(self.window)


# Per (region, window) counters of mail delivery (``sim.mail`` increments them).
MAIL_COUNTERS = ("arrived", "attempts", "delivered", "delayed", "lost_queue_full", "lost_expired")


class MailRecorder:
    """Mail delivery per ``[region][window]``: counters, the senders' backlog, each message's delay.

    A counter goes in the window the thing happened in (an arrival in its arrival window, a delivery in
    its delivery window); window ``n`` collects what happens after the end. The backlog of a region is
    the number of messages in its senders' queues: failed at least once, not yet delivered or given up.
    """

    def __init__(self, regions: int, window: float, n: int):
        self.window, self.n = window, n
        width = n + 1
        for name in MAIL_COUNTERS:
            setattr(self, name, [[0] * width for _ in range(regions)])
        self.arrived: list[list[int]]
        self.attempts: list[list[int]]
        self.delivered: list[list[int]]
        self.delayed: list[list[int]]  # delivered after at least one retry
        self.lost_queue_full: list[list[int]]
        self.lost_expired: list[list[int]]
        self.backlog = [0] * regions  # now
        self.backlog_end = [[-1] * width for _ in range(regions)]  # after the window's last change; -1: none
        self.backlog_peak = [[0] * width for _ in range(regions)]
        self.total = 0  # all regions together
        self.peak, self.peak_time = 0, 0.0
        self.delays = array("d")  # per delivered message: delivery time - arrival time
        self.delay_window = array("i")  # its delivery window
        self.delay_region = array("i")

    def window_of(self, t: float) -> int:
        """Window index of time ``t`` (the drain window for ``t`` past the end)."""
        return min(int(t / self.window), self.n)

    def change_backlog(self, region: int, now: float, change: int) -> int:
        """Add ``change`` to ``region``'s backlog at ``now``; return the new backlog."""
        value = self.backlog[region] + change
        self.backlog[region] = value
        w = self.window_of(now)
        self.backlog_end[region][w] = value
        if value > self.backlog_peak[region][w]:
            self.backlog_peak[region][w] = value
        self.total += change
        if self.total > self.peak:
            self.peak, self.peak_time = self.total, now
        return value

    def backlog_series(self, region: int) -> tuple[list[int], list[int]]:
        """Per window: the backlog at its end and the most it held during it (quiet windows carry over)."""
        ends, peaks, last = [], [], 0
        for w in range(self.n + 1):
            peaks.append(max(self.backlog_peak[region][w], last))  # a window starts with the last value
            end = self.backlog_end[region][w]
            last = end if end >= 0 else last
            ends.append(last)
        return ends, peaks


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


def summarize(
    scenario: Scenario,
    cluster: Cluster,
    rec: Recorder,
    trace: Trace,
    seed: int,
) -> dict:
    """Compute the run's summary (the body of ``summary.json``)."""
    n = rec.n
    slo = scenario.slo
    req = np.array(rec.requests, dtype=np.int64)[:, :n]
    ok = np.array(rec.ok, dtype=np.int64)[:, :n]
    total_req, total_ok = int(req.sum()), int(ok.sum())
    availability = _availability(total_ok, total_req)
    per_window = np.where(req.sum(0) > 0, ok.sum(0) / np.maximum(req.sum(0), 1), 1.0)
    breached = per_window < slo.availability
    downtime_minutes = float(breached.sum() * rec.window / 60.0)
    lat, _, lat_region, lat_weight = latency_samples(rec)

    def table(name: str) -> np.ndarray:
        return np.array(getattr(rec, name), dtype=np.int64)

    regions = {}
    for r, name in enumerate(cluster.region_ids):
        r_req, r_ok = int(req[r].sum()), int(ok[r].sum())
        r_window = np.where(req[r] > 0, ok[r] / np.maximum(req[r], 1), 1.0)
        mine = lat_region == r
        r_lat = lat[mine] if lat.size else lat
        r_weight = lat_weight[mine] if lat_weight is not None else None
        regions[name] = {
            "availability": _availability(r_ok, r_req),
            "nines": nines(_availability(r_ok, r_req), r_req),
            "requests": r_req,
            "succeeded": r_ok,
            "downtime_minutes": float((r_window < slo.availability).sum() * rec.window / 60.0),
            "latency_p50": _percentile(r_lat, 50, r_weight) if r_req else None,
            "latency_p99": _percentile(r_lat, 99, r_weight) if r_req else None,
        }
    judged = [k for k in regions if regions[k]["availability"] is not None]  # regions with requests
    worst_region = min(judged, key=lambda k: (regions[k]["availability"], k)) if judged else None

    counts = {name: int(table(name).sum()) for name in COUNTERS if name not in ("requests", "ok")}
    events = trace.records
    for kind in ("ejected", "readmitted", "failover", "server_down", "traffic_shift", "database_unavailable"):
        counts[kind] = sum(1 for e in events if e.kind == kind)
    counts["wasted"] = rec.wasted
    counts["queued"] = rec.queued
    for kind in ("link_saturated", "link_down"):
        counts[kind] = sum(1 for e in events if e.kind == kind)
    counts["link_lost"] = int(sum(sum(row) for row in rec.link_lost))  # tries lost on a link (no answer)

    region_avail = np.where(req > 0, ok / np.maximum(req, 1), 1.0)
    intervals = fault_intervals(trace, scenario.duration)
    active = {
        w: [fid for fid, spans in intervals.items()
            if any(a < (w + 1) * rec.window and b > w * rec.window for a, b in spans)]
        for w in range(n)
    }
    slo_events(trace, cluster.region_ids, region_avail >= slo.availability, rec.window, active)
    users = np.array([r.users for r in scenario.topology.regions], dtype=float)
    faults = _fault_summaries(scenario, trace, breached, rec.window, region_avail, users)
    scheduled_ends = [b for i, f in enumerate(scenario.faults) if f.at is not None
                      for _, b in intervals.get(scenario.fault_id(i), [])]
    any_ends = [b for spans in intervals.values() for _, b in spans]
    last_end = max(scheduled_ends or any_ends or [0.0])
    recovered, recovery_time = recovery_after(~breached, last_end, rec.window) if any_ends else (True, 0.0)
    blamed = {f["id"]: sum(1 for e in trace.records if e.kind == "slo_breach" and e.fault == f["id"]) for f in faults}
    worst_fault = (
        max(faults, key=lambda f: (f["downtime_minutes"], blamed[f["id"]], f["events"], f["id"]))["id"]
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
    return {
        "availability": availability,
        "nines": nines(availability, total_req),
        "downtime_minutes": downtime_minutes,
        "requests": total_req,
        "succeeded": total_ok,
        "latency": {"p50": _percentile(lat, 50, lat_weight), "p99": p99, "mean": mean},
        "amplification": _ratio(counts["attempts"], total_req),
        "counts": counts,
        "regions": regions,
        "worst_region": worst_region,
        "faults": faults,
        "worst_fault": worst_fault,
        "recovery": {
            "last_fault_end": last_end if any_ends else None,
            "recovered": recovered,
            "metastable": not recovered,
            "time_to_recover": recovery_time,
        },
        "slo": {
            "availability": slo.availability,
            "latency_p99": slo.latency_p99,
            "window": rec.window,
            "availability_met": availability_ok,
            "latency_met": latency_ok,
            "met": availability_ok and latency_ok,
        },
        **({"mail": mail_summary(rec.mail, cluster.region_ids)} if rec.mail is not None else {}),
    }


def mail_summary(mail: MailRecorder, region_ids: list[str]) -> dict:
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
    lost = {"queue_full": total("lost_queue_full"), "expired": total("lost_expired")}
    regions = {}
    for r, name in enumerate(region_ids):
        if total("arrived", r):
            regions[name] = {
                "messages": total("arrived", r),
                "delivered": total("delivered", r),
                "delayed": total("delayed", r),
                "lost": total("lost_queue_full", r) + total("lost_expired", r),
                "backlog_peak": max(mail.backlog_series(r)[1]),
            }
    return {
        "counted_in_availability": False,
        "messages": messages,
        "delivered": delivered,
        "delayed": total("delayed"),
        "lost": lost,
        "undelivered_at_end": messages - delivered - sum(lost.values()),
        "attempts": total("attempts"),
        "delay": {
            "p50": _percentile(delays, 50),
            "p99": _percentile(delays, 99),
            "max": float(delays.max()) if delays.size else None,
            "mean": float(delays.mean()) if delays.size else None,
        },
        "backlog": {
            "peak": mail.peak,
            "at": mail.peak_time if mail.peak else None,
            "at_end": mail.total,
        },
        "delivery_rate": {
            "peak": float(deliveries[busiest] / mail.window),
            "at": busiest * mail.window,
            "mean": float(deliveries.sum() / (mail.n * mail.window)),
        },
        "regions": regions,
    }


_REACTIONS = ("ejected", "failover", "traffic_shift", "alert")


def fault_intervals(trace: Trace, end_of_run: float) -> dict[str, list[tuple[float, float]]]:
    """Per fault id, the (start, end) of each occurrence; an occurrence that never ends runs to the end."""
    ends = {e.cause: e.time for e in trace.records if e.kind == "fault_end" and e.cause is not None}
    out: dict[str, list[tuple[float, float]]] = {}
    for e in trace.records:
        if e.kind == "fault_start" and e.fault is not None:
            out.setdefault(e.fault, []).append((e.time, ends.get(e.id, end_of_run)))
    return out


def attribute_windows(
    intervals: dict[str, list[tuple[float, float]]], breached: np.ndarray, window: float
) -> dict[str, list[int]]:
    """Which breached windows each fault answers for.

    A window goes to every fault active during it; a breached window with no active fault goes to the
    fault that ended last before it (its aftermath: retries, queues, failovers still settling).
    """
    owned: dict[str, list[int]] = {fid: [] for fid in intervals}
    for w in np.nonzero(breached)[0].tolist():
        lo, hi = w * window, (w + 1) * window
        active = [fid for fid, spans in intervals.items() if any(a < hi and b > lo for a, b in spans)]
        if not active:
            ended = [(b, fid) for fid, spans in intervals.items() for a, b in spans if b <= lo]
            active = [max(ended)[1]] if ended else []
        for fid in active:
            owned[fid].append(w)
    return owned


def _fault_summaries(
    scenario: Scenario,
    trace: Trace,
    breached: np.ndarray,
    window: float,
    region_avail: np.ndarray,
    users: np.ndarray,
) -> list[dict]:
    """Per scenario fault: when it acted, what it hit (blast radius), how deep the cascade went, how
    long until detected and recovered.

    Users affected is an estimate: per region, its users times the worst share of failed requests in
    the windows the fault answers for.
    """
    out = []
    n = len(breached)
    events = trace.records
    kids = children(trace)
    intervals = fault_intervals(trace, scenario.duration)
    owned = attribute_windows(intervals, breached, window)
    for i in range(len(scenario.faults)):
        fid = scenario.fault_id(i)
        mine = [e for e in events if e.fault == fid]
        spans = intervals.get(fid, [])
        affected = sorted({e.node for e in mine if e.kind in ("server_down", "datacenter_down", "dependency_down",
                                                                 "database_unavailable", "ejected",
                                                                 "link_down", "link_degraded")})
        roots = [e.id for e in mine if e.kind == "fault_start"]
        windows = owned.get(fid, [])
        failed_share = (1.0 - region_avail[:, windows]).max(axis=1) if windows else np.zeros(len(users))
        summary: dict = {
            "id": fid,
            "kind": scenario.faults[i].kind,
            "occurrences": len(spans),
            "start": spans[0][0] if spans else None,
            "end": max(b for _, b in spans) if spans else None,
            "downtime_minutes": 0.0,
            "time_to_detect": None,
            "time_to_recover": 0.0 if spans else None,
            "recovered": True,
            "affected": affected[:200],
            "affected_count": len(affected),
            "blast_radius": {
                "servers": len({e.node for e in mine if e.kind in ("server_down", "ejected")}),
                "databases": len({e.node for e in mine if e.kind == "database_unavailable"}),
                "datacenters": len({e.node for e in mine if e.kind == "datacenter_down"}),
                "regions_breached": len({e.node for e in mine if e.kind == "slo_breach"}),
                "users": int(round(float((users * failed_share).sum()))),
            },
            "cascade_depth": max((depth(trace, r, kids) for r in roots), default=0),
            "events": len(mine),
        }
        if spans:
            first = spans[0][0]
            reactions = [e.time for e in mine if e.kind in _REACTIONS]
            summary["time_to_detect"] = (min(reactions) - first) if reactions else None
            summary["downtime_minutes"] = len(windows) * window / 60.0
            if windows:
                last = max(windows)
                summary["recovered"] = last + 1 < n
                summary["time_to_recover"] = (last + 1) * window - first if last + 1 < n else None
        out.append(summary)
    return out
