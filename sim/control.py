"""The control plane: health checks, database failover, the global traffic manager, metric alerts.

These are SimPy processes that watch the :class:`~sim.cluster.Cluster` and change it, whatever engine
moves the traffic. They ask the engine one question, through :class:`Probe`: would a health check sent
to this server now be answered in time? The :class:`Monitor` reads only the run's counters.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.detect import Detector, EwmaBand, ThresholdRule
from sim.metrics import Recorder
from sim.scenario import FailoverPolicy, HealthCheck

if TYPE_CHECKING:
    from sim.faults import Detection

__all__ = ["Probe", "HealthChecker", "Failover", "TrafficManager", "OverloadMonitor", "Restarter", "Monitor"]


class Probe(Protocol):
    """The one thing the control plane asks of an engine."""

    def probe(self, server: int, timeout: float) -> bool:
        """Whether a health check sent to ``server`` now would be answered within ``timeout``."""
        ...


class HealthChecker:
    """Load-balancer health checks: eject after N failures in a row, readmit after M successes.

    All servers are checked once per interval, in one sweep (a single event per interval).
    """

    def __init__(self, env: simpy.Environment, cluster: Cluster, policy: HealthCheck, engine: Probe):
        self.env, self.cluster, self.policy, self.engine = env, cluster, policy, engine
        n = len(cluster.servers)
        self.failures = [0] * n
        self.successes = [0] * n
        if policy.enabled:
            env.process(self._run())

    def _run(self) -> Generator[simpy.Event, None, None]:
        policy, cluster, probe = self.policy, self.cluster, self.engine.probe
        while True:
            yield self.env.timeout(policy.interval)
            for server in cluster.servers:
                i = server.index
                if probe(i, policy.timeout):
                    self.failures[i] = 0
                    self.successes[i] += 1
                    if (not server.in_rotation and not server.drained
                            and self.successes[i] >= policy.healthy_threshold):
                        cause = server.up_event if server.down_event is not None else None
                        cluster.set_rotation(i, True, cause, f"{self.successes[i]} health checks passed")
                else:
                    self.successes[i] = 0
                    self.failures[i] += 1
                    if server.in_rotation and self.failures[i] >= policy.unhealthy_threshold:
                        why = "down" if not server.up else "slow: health check timed out"
                        if not server.up:
                            cause = server.down_event
                        elif server.overload_event is not None:
                            cause = server.overload_event
                        else:  # slow before the overload monitor noticed: what brought the load
                            cause = cluster.load_cause(i)
                        cluster.set_rotation(i, False, cause, f"{self.failures[i]} health checks failed ({why})")


class Failover:
    """Database failover: when the server with a database's active copy stops, activate the next copy.

    After ``database_delay`` (detection and activation), the first copy in preference order whose
    server is up becomes active. A database with no copy up stays unavailable until a server holding
    one returns (then it is activated after the same delay). With ``failback`` on, a database moves
    back to its preferred copy once that copy's server has been up for ``database_delay``.
    """

    def __init__(self, env: simpy.Environment, cluster: Cluster, policy: FailoverPolicy):
        self.env, self.cluster, self.policy = env, cluster, policy
        self.recent: deque[float] = deque()  # activation times in the last minute (rate limit)

    def server_down(self, server: int) -> None:
        """Hook: ``server`` stopped; its active databases become unavailable and fail over later."""
        cluster = self.cluster
        cause = cluster.servers[server].down_event
        for db in cluster.servers[server].databases:
            if cluster.active[db] == server:
                cluster.active[db] = -1
                rid = cluster.trace.record(
                    cluster.now, "database_unavailable", cluster.database_ids[db], cause,
                    f"active copy on {cluster.servers[server].id} lost",
                )
                self.env.process(self._activate(db, rid))

    def server_up(self, server: int) -> None:
        """Hook: ``server`` is back; databases with no active copy that it holds can be activated."""
        cluster = self.cluster
        cause = cluster.servers[server].up_event
        for db in cluster.servers[server].databases:
            if cluster.active[db] == -1:
                self.env.process(self._activate(db, cause))
            elif self.policy.failback and cluster.copies[db][0] == server:
                self.env.process(self._failback(db, server, cause))

    def rotation_changed(self, datacenter: int) -> None:
        """Hook: nothing to do."""

    def dependency_changed(self, dependency: int) -> None:
        """Hook: nothing to do."""

    def load_changed(self, region: int) -> None:
        """Hook: nothing to do."""

    def version_changed(self, server: int) -> None:
        """Hook: nothing to do."""

    def _failback(self, db: int, server: int, cause: int | None) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(self.policy.database_delay)
        cluster = self.cluster
        current = cluster.active[db]
        if cluster.servers[server].up and current not in (-1, server):
            cluster.active[db] = server
            cluster.trace.record(
                cluster.now, "failback", cluster.database_ids[db], cause,
                f"preferred copy on {cluster.servers[server].id} active again "
                f"(was {cluster.servers[current].id})",
            )

    def _activate(self, db: int, cause: int | None) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(self.policy.database_delay)
        cluster = self.cluster
        if cluster.active[db] != -1:
            return
        limit = self.policy.max_activations_per_minute
        while limit is not None and len(self.recent) >= limit:
            if self.env.now - self.recent[0] >= 60.0:
                self.recent.popleft()
                continue
            yield self.env.timeout(60.0 - (self.env.now - self.recent[0]))  # rate-limited failover
            if cluster.active[db] != -1:
                return
        for server in cluster.copies[db]:
            if cluster.servers[server].up:
                cluster.active[db] = server
                rid = cluster.trace.record(
                    cluster.now, "failover", cluster.database_ids[db], cause,
                    f"copy on {cluster.servers[server].id} activated",
                )
                cluster.servers[server].received_event = rid
                if limit is not None:
                    self.recent.append(self.env.now)
                return
        cluster.trace.record(cluster.now, "failover_failed", cluster.database_ids[db], cause,
                             "no copy on a running server")


class TrafficManager:
    """The global traffic manager: each region goes to its nearest datacenter that is serving.

    A datacenter counts as serving while it is up and has a server in rotation. A change has to last
    ``datacenter_delay`` (health-check grace plus DNS TTL) before users move. When no datacenter of a
    region is serving, the region stays on its preferred one (fail open).
    """

    CHECK_INTERVAL = 5.0

    def __init__(self, env: simpy.Environment, cluster: Cluster, policy: FailoverPolicy):
        self.env, self.cluster, self.policy = env, cluster, policy
        n = len(cluster.datacenter_ids)
        self.serving = [True] * n  # what the traffic manager believes
        self.changed_since: list[float | None] = [None] * n
        env.process(self._run())

    def _run(self) -> Generator[simpy.Event, None, None]:
        cluster = self.cluster
        while True:
            yield self.env.timeout(self.CHECK_INTERVAL)
            now = self.env.now
            moved = False
            for dc in range(len(cluster.datacenter_ids)):
                actual = cluster.dc_down[dc] == 0 and cluster.healthy_servers(dc) > 0
                if actual == self.serving[dc]:
                    self.changed_since[dc] = None
                    continue
                since = self.changed_since[dc]
                if since is None:
                    self.changed_since[dc] = since = now
                if now - since >= self.policy.datacenter_delay:
                    self.serving[dc] = actual
                    self.changed_since[dc] = None
                    moved = True
            if moved:
                self._reroute()

    def _reroute(self) -> None:
        cluster = self.cluster
        for region, prefs in enumerate(cluster.region_preference):
            # Fail open, like DNS traffic managers: with nothing serving, stay on the preferred datacenter
            # rather than "nowhere", so users are served again as soon as it recovers.
            best = next((dc for dc in prefs if self.serving[dc]), prefs[0] if prefs else -1)
            if best != cluster.route[region]:
                old = cluster.route[region]
                if old >= 0 and not self.serving[old]:
                    cause, why = cluster.why_not_serving(old), "datacenter not serving"
                else:
                    cause, why = None, "preferred datacenter back"
                cluster.set_route(region, best, cause, why)


class OverloadMonitor:
    """Marks servers overloaded once a new request would wait longer than ``threshold`` at two checks
    in a row (a sustained queue, not a burst), and clears them when the wait falls below half of it.

    ``overloaded`` events name their likely cause (:meth:`Cluster.load_cause`): a failover onto the
    server, or the latest harm in its datacenter. Checked once per ``interval``, in one sweep.
    """

    SUSTAINED = 2

    def __init__(self, env: simpy.Environment, cluster: Cluster, engine: Probe, threshold: float, interval: float):
        self.env, self.cluster, self.engine = env, cluster, engine
        self.threshold, self.interval = threshold, interval
        self.above = [0] * len(cluster.servers)  # consecutive checks above the threshold
        env.process(self._run())

    def _run(self) -> Generator[simpy.Event, None, None]:
        cluster, wait, threshold = self.cluster, self.engine.wait, self.threshold
        while True:
            yield self.env.timeout(self.interval)
            for server in cluster.servers:
                w = wait(server.index)
                i = server.index
                self.above[i] = self.above[i] + 1 if w > threshold and server.down == 0 else 0
                if server.overload_event is None and self.above[i] >= self.SUSTAINED:
                    rid = cluster.trace.record(self.env.now, "overloaded", server.id, cluster.load_cause(server.index),
                                               f"queue wait {w:.2f}s > {threshold:g}s")
                    server.overload_event = rid
                    cluster.note_harm(server.datacenter, rid)
                elif server.overload_event is not None and (w < threshold / 2 or server.down):
                    cluster.trace.record(self.env.now, "overload_cleared", server.id, server.overload_event,
                                         "queue drained" if server.down == 0 else "server down")
                    server.overload_event = None


class Restarter:
    """Crash under overload: a server out of memory goes down, restarts after ``restart_time``."""

    def __init__(self, env: simpy.Environment, cluster: Cluster):
        self.env, self.cluster = env, cluster
        groups = {g.id: g for d in cluster.scenario.topology.datacenters for g in d.servers}
        self.restart_time = [groups[s.group].restart_time for s in cluster.servers]

    def crash(self, server: int) -> None:
        """Take ``server`` down now, as out of memory; it comes back by itself."""
        cluster = self.cluster
        s = cluster.servers[server]
        if s.down:
            return
        cause = s.overload_event if s.overload_event is not None else cluster.load_cause(server)
        detail = "out of memory"
        if s.version.leak_rate > 0 and s.version_event is not None:  # a leaking version ran it out
            cause, detail = s.version_event, "out of memory (the running version leaks)"
        crash = cluster.trace.record(self.env.now, "crashed", s.id, cause, detail)
        cluster.server_down(server, crash, "crashed under overload")
        self.env.process(self._restart(server, crash))

    def _restart(self, server: int, cause: int) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(self.restart_time[server])
        self.cluster.server_up(server, cause, "restarted after crash")


class Monitor:
    """Metric alerts: one value per region and check interval, judged by a detector (:mod:`sim.detect`).

    It reads only the :class:`~sim.metrics.Recorder`'s per-(region, window) counters and latency
    records, which every engine fills, so detection works however traffic moves. Metrics:

    - ``error_rate``: the share of client attempts that failed (an error or a timeout) in the interval;
    - ``latency``: the 99th percentile of the user requests that completed in the interval.

    A region with fewer than :attr:`MIN_SAMPLES` attempts (or completions) in an interval gives no value.
    """

    MIN_SAMPLES = 20

    def __init__(self, env: simpy.Environment, cluster: Cluster, recorder: Recorder):
        self.env, self.cluster, self.recorder = env, cluster, recorder

    def watch(self, detection: Detection, start: float, on_alert: Callable[[int, str], None]) -> None:
        """Evaluate ``detection.metric`` every ``detection.check_interval`` from now on.

        Values up to ``start`` (when the change under watch begins) are the baseline. The first later
        value the detector fires on calls ``on_alert(region, detail)``, once; then the watch ends.
        """
        self.env.process(self._watch(detection, start, on_alert))

    def _watch(
        self, detection: Detection, start: float, on_alert: Callable[[int, str], None]
    ) -> Generator[simpy.Event, None, None]:
        regions = self.cluster.region_ids
        read = self._error_rates() if detection.metric == "error_rate" else self._latencies()
        history: list[list[float]] = [[] for _ in regions]
        detectors: list[Detector] | None = None
        while True:
            yield self.env.timeout(detection.check_interval)
            values = next(read)
            if self.env.now <= start + 1e-9:
                for r, value in enumerate(values):
                    if value is not None:
                        history[r].append(value)
                continue
            if detectors is None:
                detectors = [_detector(detection, h) for h in history]
            for r, value in enumerate(values):
                if value is not None and detectors[r].observe(value):
                    d, show = detectors[r], _SHOW[detection.metric]
                    metric = detection.metric.replace("_", " ")
                    on_alert(r, f"{detection.rule} rule on {metric} in {regions[r]}: {show(value)} against a "
                                f"baseline of {show(d.baseline)} (limit {show(d.limit)})")
                    return

    def _error_rates(self) -> Generator[list[float | None], None, None]:
        """Per call: each region's failed share of the attempts since the previous call."""
        rec, n = self.recorder, len(self.cluster.region_ids)
        first = 0  # window of the previous call; counters of earlier windows no longer change
        attempts0, failed0 = [0] * n, [0] * n  # what that window held then
        while True:
            w = rec.window_of(self.env.now)
            out: list[float | None] = []
            for r in range(n):
                attempts = sum(rec.attempts[r][first:w + 1]) - attempts0[r]
                failed = sum(rec.errors[r][first:w + 1]) + sum(rec.timeouts[r][first:w + 1]) - failed0[r]
                attempts0[r], failed0[r] = rec.attempts[r][w], rec.errors[r][w] + rec.timeouts[r][w]
                out.append(failed / attempts if attempts >= self.MIN_SAMPLES else None)
            first = w
            yield out

    def _latencies(self) -> Generator[list[float | None], None, None]:
        """Per call: each region's p99 latency of the requests completed since the previous call."""
        rec, n = self.recorder, len(self.cluster.region_ids)
        seen = 0
        while True:
            end = len(rec.latency)
            latency = np.array(rec.latency[seen:end], dtype=float)  # a copy: the records keep growing
            region = np.array(rec.latency_region[seen:end], dtype=int)
            seen = end
            out: list[float | None] = []
            for r in range(n):
                mine = latency[region == r]
                out.append(float(np.percentile(mine, 99)) if mine.size >= self.MIN_SAMPLES else None)
            yield out


_SHOW: dict[str, Callable[[float], str]] = {
    "error_rate": lambda v: f"{v * 100:.2f}%",
    "latency": lambda v: f"{v * 1000:.0f}ms",
}


def _detector(detection: Detection, history: list[float]) -> Detector:
    if detection.rule == "threshold":
        return ThresholdRule(detection.rise, history)
    return EwmaBand(detection.alpha, detection.k, detection.rise, history)
