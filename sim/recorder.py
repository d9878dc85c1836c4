"""The counters the engines increment while a run goes: per region and SLO window, the user requests'
outcomes (:class:`Recorder`: plain integer tables, no objects per request, and the control plane's state sampled
once per window) and the incoming mail's (:class:`MailRecorder`). :mod:`sim.metrics` sums them up.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Generator

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.scenario import Scenario

__all__ = ["COUNTERS", "MAIL_COUNTERS", "MailRecorder", "Recorder"]

# Per (region, window) counters the engine increments.
COUNTERS = (
    "requests", "ok", "failed", "attempts", "retries", "timeouts", "errors", "shed",
    "lb_retries", "dep_attempts", "dep_retries", "breaker_rejected", "budget_exhausted", "degraded",
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
        self.degraded: list[list[int]]  # user requests answered degraded (a fallback): counted in ``ok`` too
        # User requests that failed (after the client's retries), per request type in the order of
        # ``workload.requests``: run totals that add up to ``failed`` (the flow engine writes them when it
        # finishes).
        self.failed_by_type: list[int] = [0] * len(scenario.workload.requests)
        # Lists; the flow engine (sim.engine.flow) keeps float arrays in the offered and link tables (and
        # the COUNTERS) while it runs, and writes them back as lists when it finishes.
        self.dc_offered: list[list[int]] | np.ndarray = [[0] * width for _ in range(dcs)]
        self.dc_healthy = [[0] * self.n for _ in range(dcs)]
        self.dc_up = [[0] * self.n for _ in range(dcs)]
        self.dc_capacity = [[0.0] * self.n for _ in range(dcs)]
        links = len(cluster.network.links)  # [link][window]: bits offered, crossings, lost; sampled state
        self.link_bits: list[list[float]] | np.ndarray = [[0.0] * width for _ in range(links)]
        self.link_crossings: list[list[int]] | np.ndarray = [[0] * width for _ in range(links)]
        self.link_lost: list[list[int]] | np.ndarray = [[0] * width for _ in range(links)]
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
