"""The control plane: health checks, database failover, the global traffic manager, metric alerts.

These are SimPy processes that watch the :class:`~sim.cluster.Cluster` and change it, whatever engine
moves the traffic. They ask the engine one question, through :class:`Probe`: would a health check sent
to this server now be answered in time? The :class:`Monitor` reads only the run's counters.

The health checks, the traffic manager and the overload monitor sweep every server (or datacenter)
once per interval, with numpy over the engine's answers for all servers; Python only touches the
servers whose state changes. With an engine whose answers change only when its state does
(``quiet_ok``), a sweep that leaves nothing pending lets its process sleep until the engine or the
cluster wakes it (``wake``); it resumes on the same grid of sweep times. See :class:`Probe`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.detect import Detector, EwmaBand, PhiAccrual, ThresholdRule
from sim.events import CRASHED, DATABASE_UNAVAILABLE, FAILBACK, FAILOVER, FAILOVER_FAILED, OVERLOAD_CLEARED, OVERLOADED
from sim.metrics import Recorder, weighted_percentile
from sim.scenario import FailoverPolicy, HealthCheck
from sim.schedule import Call, later

if TYPE_CHECKING:
    from sim.faults import Detection

__all__ = ["Probe", "HealthChecker", "Failover", "TrafficManager", "OverloadMonitor", "Restarter", "Monitor"]


class Probe(Protocol):
    """What the control plane asks of an engine: would a health check be answered in time, and how long
    would a new request wait? Per server, and for every server at once (the sweeps use the vectors).

    Quiet sweeps. An engine whose answers change only when its state changes (not as the clock runs)
    sets ``quiet_ok = True``; every engine keeps a list ``wakers``: the health checks and the overload
    monitor append their ``wake`` to it (and to :attr:`Cluster.wakers`). The engine calls every waker
    (no argument) after any change of its state that can alter an answer of ``probe_all`` or
    ``wait_all`` (once per step of its own is enough; a call costs O(1)). It may skip the calls when,
    before and after the change, every server that is up passes ``probe_all`` with certainty and waits
    less than ``wake_floor`` (an attribute the control plane sets on the engine: the smallest wait any
    of its decisions tells apart from no wait): then no decision can change. A server's own answers
    changing in ``server_down``/``server_up`` need no call: the cluster wakes the sweeps for that
    server itself. An answer drawn at random (a check that passes with some probability) must be
    flagged: ``probe_all`` sets ``probe_drew = True`` when it drew any (False otherwise), and the
    health checks then sweep every server at every interval until it draws none. While nothing
    changes, a sweeping process sleeps; its sweeps run at multiples of their interval, after every
    other event of the same instant. The request engine's answers change as the clock runs, so it keeps
    ``quiet_ok = False`` and is swept every interval, as it always was. :class:`sim.engine.base.EngineBase`
    declares these four attributes with those defaults.
    """

    quiet_ok: bool
    wakers: list[Callable[[], None]]
    wake_floor: float
    probe_drew: bool

    def probe(self, server: int, timeout: float) -> bool:
        """Whether a health check sent to ``server`` now would be answered within ``timeout``."""
        ...

    def wait(self, server: int) -> float:
        """How long a request arriving at ``server`` now would wait (0 when it is down)."""
        ...

    def probe_all(self, timeout: float) -> np.ndarray:
        """:meth:`probe` for every server: a bool array indexed like ``Cluster.servers``."""
        ...

    def wait_all(self) -> np.ndarray:
        """:meth:`wait` for every server: a float array indexed like ``Cluster.servers``."""
        ...

    def busy_time(self, servers: np.ndarray) -> np.ndarray:
        """Per server of ``servers`` (indices), the worker-seconds it has served since the start, as a
        CPU-time counter reads: an autoscaler's utilisation is its increase (:mod:`sim.autoscale`).
        """
        ...


LATE = 2
"""SimPy priority of the sweeps under a ``quiet_ok`` engine, after URGENT (0) and NORMAL (1): such a sweep
sees the state at the end of its instant, however the other events of the instant were ordered."""


def _trigger_at(env: simpy.Environment, event: simpy.Event, at: float, priority: int) -> None:
    """Trigger ``event`` at time ``at`` exactly, with SimPy ``priority``.

    SimPy schedules at ``now + delay``, which can round away from ``at`` when ``now < at / 2``. From a
    time ``r`` in ``[at / 2, at]``, ``at - r`` is exact (Sterbenz) and so is ``r + (at - r)``: when the
    direct way would miss, a relay halfway there books the event.
    """
    now = env.now
    delay = max(at - now, 0.0)
    if now + delay != at and delay > 0:
        relay = env.event()
        relay.callbacks.append(lambda _: _trigger_at(env, event, at, priority))
        relay._ok, relay._value = True, None
        env.schedule(relay, simpy.events.URGENT, delay / 2)
        return
    event._ok, event._value = True, None  # what simpy.Timeout does, with a priority of our choice
    env.schedule(event, simpy.events.EventPriority(priority), delay)


class _Sweeps:
    """A sweep every ``interval`` seconds: the base of the health checks, traffic manager, overload monitor.

    With an engine that is not ``quiet_ok`` (the request engine), each sweep is a timeout after the
    previous one and looks at every server, as it always did.

    With a ``quiet_ok`` engine, sweep ``k`` is due at ``k * interval``, with priority ``LATE + rank``
    (health checks, then traffic manager, then overload monitor, after every other event of the
    instant), but only sweeps that can change something run: :meth:`_sweep` returns the index of the
    next sweep at which a decision falls due if nothing changes (a streak reaching its threshold, a
    delay running out), or None; :meth:`wake` (the engine: anything may have changed; the cluster: this
    server's state changed) books the first sweep due at or after now. A sweep looks at every server
    after an engine wake, otherwise only at the servers the cluster named and those whose decision is
    due. Streaks are kept as the index of the sweep they began at, so sweeps that were not run count
    exactly as if they had been, and the run makes the same decisions at the same times as sweeping
    every server every interval would (``skip = False`` does that, for the tests to compare with).
    """

    skip = True  # quiet_ok engines: run only the sweeps that can change something

    def __init__(self, env: simpy.Environment, interval: float, rank: int, quiet: bool):
        self.env, self.interval, self.priority, self.quiet = env, interval, LATE + rank, quiet
        self.k = 0  # index of the latest sweep
        self.sweeps = 0  # sweeps run (for tests and measurements)
        self.next_k: int | None = None  # quiet: index of the sweep booked; None while asleep
        self.booking = 0  # quiet: generation of the sweep booked (a wake may book an earlier one)
        self.dirty_all = True  # quiet: the engine woke it since the latest sweep began
        self.dirty: set[int] = set()  # quiet: servers the cluster woke it for since then
        self.sweeping = False
        self.acting: int | None = None  # the server this sweep is changing (its wake is expected)

    def _start(self, cluster: Cluster, engine: Probe | None = None, floor: float | None = None) -> None:
        if not self.quiet:
            self.env.process(self._run())
            return
        cluster.wakers.append(self.wake)
        if engine is not None:
            engine.wakers.append(self.wake)
            if floor is not None:
                engine.wake_floor = min(engine.wake_floor, floor)
        self._book(1)

    def _sweep(self, k: int, dirty: set[int] | None) -> int | None:
        """Sweep ``k``: every server (``dirty`` None) or those in ``dirty`` and those due; the next sweep
        at which a decision falls due if nothing changes (quiet mode), or None.
        """
        raise NotImplementedError

    def _run(self) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.env.timeout(self.interval)
            self.k += 1
            self.sweeps += 1
            self._sweep(self.k, None)

    def _book(self, k: int) -> None:
        self.next_k = k
        self.booking += 1
        booking = self.booking
        event = self.env.event()
        event.callbacks.append(lambda _: self._due(booking, k))
        _trigger_at(self.env, event, k * self.interval, self.priority)

    def _due(self, booking: int, k: int) -> None:
        if booking != self.booking:  # a wake booked an earlier sweep since
            return
        self.next_k = None
        dirty = None if self.dirty_all or not self.skip else self.dirty
        self.dirty_all, self.dirty = False, set()
        self.k = k
        self.sweeps += 1
        self.sweeping = True
        try:
            due = self._sweep(k, dirty)
        finally:
            self.sweeping = False
        if self.dirty_all or self.dirty or not self.skip:  # woken while sweeping (by its own changes, often)
            due = k + 1
        if due is not None:
            self._book(max(due, k + 1))

    def wake(self, server: int | None = None) -> None:
        """What the sweep reads may have changed (for ``server`` only, or anything): book the next sweep."""
        if server is not None and server == self.acting:  # our own change: its answers are the same
            return
        if server is None:
            self.dirty_all = True
        else:
            self.dirty.add(server)
        if self.sweeping or not self.quiet:
            return
        now, interval = self.env.now, self.interval
        k = max(self.k + 1, math.ceil(now / interval))
        while k * interval < now:
            k += 1
        while k - 1 > self.k and (k - 1) * interval >= now:
            k -= 1
        if self.next_k is None or k < self.next_k:
            self._book(k)


class HealthChecker(_Sweeps):
    """Load-balancer health checks: eject after N failures in a row, readmit after M successes.

    With ``phi_accrual`` each check is a heartbeat answered after the server's wait (``wait_all``), and a
    server is ejected at the first sweep its phi reaches the threshold (:class:`sim.detect.PhiAccrual`),
    readmitted after M sweeps below it; these sweeps run every interval whatever the engine.

    All servers are checked once per interval, in one sweep (a single event per interval): numpy over
    ``probe_all``, then the ejections and readmissions in server order. A server is pending while it
    passes but is out of rotation (and not drained) or fails but is in rotation: only pending servers
    can change. See :class:`_Sweeps` for the sweeps a ``quiet_ok`` engine lets it skip.
    """

    def __init__(self, env: simpy.Environment, cluster: Cluster, policy: HealthCheck, engine: Probe):
        self.cluster, self.policy, self.engine = cluster, policy, engine
        n = len(cluster.servers)
        self.passed = np.ones(n, dtype=bool)  # the latest answer of each server
        self.since = np.ones(n, dtype=np.int64)  # index of the sweep its streak of that answer began at
        self.pending: dict[int, int] = {}  # quiet: pending server -> the sweep its decision is due at
        phi = policy.phi_accrual
        # Phi accrual learns from every heartbeat, so its checks sweep every interval on every engine.
        self.phi = None if phi is None else PhiAccrual(n, phi.threshold, phi.window, phi.min_std, policy.interval)
        self.unhealthy_threshold = policy.unhealthy_threshold if phi is None else 1  # phi's own level decides
        super().__init__(env, policy.interval, 0, engine.quiet_ok and phi is None)
        if policy.enabled:
            self._start(cluster, engine, policy.timeout)

    def _drew(self) -> None:
        if self.engine.probe_drew:  # random answers: the next sweep draws again, for all
            self.dirty_all = True

    @property
    def successes(self) -> np.ndarray:
        """Health checks passed in a row, per server."""
        return np.where(self.passed, self.k - self.since + 1, 0)

    @property
    def failures(self) -> np.ndarray:
        """Health checks failed in a row, per server."""
        return np.where(self.passed, 0, self.k - self.since + 1)

    def _sweep(self, k: int, dirty: set[int] | None) -> int | None:
        policy, cluster, passed, since = self.policy, self.cluster, self.passed, self.since
        if self.phi is not None:  # heartbeats answered after each server's wait; suspected or not
            up = cluster.up_mask
            down_since = np.full(len(up), np.inf)
            for i in np.flatnonzero(~up).tolist():  # when each went down: its heartbeats on the way are lost
                event = cluster.servers[i].down_event
                if event is not None:
                    down_since[i] = cluster.trace.records[event].time
            ok = ~self.phi.beat(self.env.now, up, self.engine.wait_all(), down_since)
            changed = ok != passed
            if changed.any():
                since[changed] = k
            self.passed = passed = ok
            candidates = np.flatnonzero((ok != cluster.rotation_mask) & ~(ok & cluster.drained_mask)).tolist()
        elif dirty is None or len(dirty) > len(passed) // 8:  # every server
            ok = np.array(self.engine.probe_all(policy.timeout), dtype=bool)
            self._drew()
            changed = ok != passed
            if changed.any():
                since[changed] = k
            self.passed = passed = ok
            candidates = np.flatnonzero((ok != cluster.rotation_mask) & ~(ok & cluster.drained_mask)).tolist()
            self.pending.clear()
        else:  # only the servers the cluster changed, and those due
            if dirty:
                up = cluster.up_mask
                ok = None
                if any(up[i] for i in dirty):  # servers that are down fail their checks: no need to ask
                    ok = self.engine.probe_all(policy.timeout)
                    self._drew()
                for i in dirty:
                    answer = bool(ok[i]) if ok is not None else False
                    if answer != passed[i]:
                        passed[i], since[i] = answer, k
            candidates = sorted(dirty.union(i for i, due in self.pending.items() if due <= k))
        with cluster.batched_pools():  # each datacenter's pool rebuilt once, after all its changes
            for i in candidates:  # in server order, as one loop over them all would
                self._judge(i, k)
        if not self.quiet:
            return None
        pending = self.pending
        for i in candidates:
            server = cluster.servers[i]
            if passed[i] and not server.in_rotation and not server.drained:
                pending[i] = int(since[i]) + policy.healthy_threshold - 1
            elif not passed[i] and server.in_rotation:
                pending[i] = int(since[i]) + self.unhealthy_threshold - 1
            else:
                pending.pop(i, None)
        return min(pending.values(), default=None)

    def _judge(self, i: int, k: int) -> None:
        """At sweep ``k``: eject server ``i`` or readmit it if its streak of answers says so."""
        policy, cluster = self.policy, self.cluster
        server = cluster.servers[i]
        streak = k - int(self.since[i]) + 1
        if self.passed[i]:
            if not server.in_rotation and not server.drained and streak >= policy.healthy_threshold:
                # what it recovered from: its restart, or the ejection it ends (the later one)
                cause = max((e for e in (server.up_event, server.rotation_event) if e is not None), default=None)
                self.acting = i
                cluster.set_rotation(i, True, cause, f"{streak} health checks passed")
                self.acting = None
        elif server.in_rotation and streak >= self.unhealthy_threshold:
            why = "down" if not server.up else "slow: health check timed out"
            if not server.up:
                cause = server.down_event
            elif server.overload_event is not None:
                cause = server.overload_event
            else:  # slow before the overload monitor noticed: what brought the load
                cause = cluster.load_cause(i)
            self.acting = i
            if self.phi is None:
                cluster.set_rotation(i, False, cause, f"{streak} health checks failed ({why})")
            else:
                why = "down" if not server.up else "slow: heartbeats late"
                cluster.set_rotation(i, False, cause, f"phi {self.phi.level[i]:.3g} >= "
                                     f"{self.phi.threshold:g} ({why})")
            self.acting = None


class Failover:
    """Database failover: when the server with a database's active copy stops, activate the next copy.

    After ``database_delay`` (detection and activation), the first copy in preference order whose
    server is up becomes active. A database with no copy up stays unavailable until a server holding
    one returns (then it is activated after the same delay). With ``failback`` on, a database moves
    back to its preferred copy once that copy's server has been up for ``database_delay``.

    Each activation and failback is a few callbacks on SimPy's queue (a datacenter's outage starts tens
    of thousands), booked as a process started at that moment would book its steps: first an urgent
    event now, as the process's start, which books the wait (:meth:`_begin`). So they run at the same
    times and in the same order as processes would.
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
                cluster.activate(db, -1)
                rid = cluster.trace.record(
                    cluster.now, DATABASE_UNAVAILABLE, cluster.database_ids[db], cause,
                    f"active copy on {cluster.servers[server].id} lost",
                )
                self._begin(partial(self._activate, db, rid))

    def server_up(self, server: int) -> None:
        """Hook: ``server`` is back; databases with no active copy that it holds can be activated."""
        cluster = self.cluster
        cause = cluster.servers[server].up_event
        for db in cluster.servers[server].databases:
            if cluster.active[db] == -1:
                self._begin(partial(self._activate, db, cause))
            elif self.policy.failback and cluster.copies[db][0] == server:
                self._begin(partial(self._failback, db, server, cause))

    def rotation_changed(self, datacenter: int) -> None:
        """Hook: nothing to do."""

    def dependency_changed(self, dependency: int) -> None:
        """Hook: nothing to do."""

    def load_changed(self, region: int) -> None:
        """Hook: nothing to do."""

    def version_changed(self, server: int) -> None:
        """Hook: nothing to do."""

    def _begin(self, step: Callable[[Any], None]) -> None:
        """Call ``step`` ``database_delay`` from now, booked as a process started now would book its first
        wait: from an urgent event now (SimPy's start of a process), so in the same place in the queue.
        """
        delay = self.policy.database_delay
        self.env.schedule(Call(lambda _: later(self.env, delay, step)), simpy.events.URGENT)  # type: ignore[arg-type]

    def _failback(self, db: int, server: int, cause: int | None, _: Any = None) -> None:
        cluster = self.cluster
        current = cluster.active[db]
        if cluster.servers[server].up and current not in (-1, server):
            cluster.activate(db, server)
            cluster.trace.record(
                cluster.now, FAILBACK, cluster.database_ids[db], cause,
                f"preferred copy on {cluster.servers[server].id} active again "
                f"(was {cluster.servers[current].id})",
            )

    def _activate(self, db: int, cause: int | None, _: Any = None) -> None:
        cluster = self.cluster
        if cluster.active[db] != -1:
            return
        limit = self.policy.max_activations_per_minute
        while limit is not None and len(self.recent) >= limit:
            if self.env.now - self.recent[0] >= 60.0:
                self.recent.popleft()
                continue
            # rate-limited failover: look again when the oldest activation leaves the minute
            later(self.env, 60.0 - (self.env.now - self.recent[0]), partial(self._activate, db, cause))
            return
        for server in cluster.copies[db]:
            if cluster.servers[server].up:
                cluster.activate(db, server)
                rid = cluster.trace.record(
                    cluster.now, FAILOVER, cluster.database_ids[db], cause,
                    f"copy on {cluster.servers[server].id} activated",
                )
                cluster.servers[server].received_event = rid
                if limit is not None:
                    self.recent.append(self.env.now)
                return
        cluster.trace.record(cluster.now, FAILOVER_FAILED, cluster.database_ids[db], cause,
                             "no copy on a running server")


class TrafficManager(_Sweeps):
    """The global traffic manager: each region goes to its nearest datacenter that is serving.

    A datacenter counts as serving while it is up and has a server in rotation. A change has to last
    ``datacenter_delay`` (health-check grace plus DNS TTL) before users move. When no datacenter of a
    region is serving, the region stays on its preferred one (fail open). It reads only the cluster,
    which wakes it; with a ``quiet_ok`` engine (``engine``, or else among the cluster's listeners) it
    runs only the sweeps that can move users (see :class:`_Sweeps`).
    """

    CHECK_INTERVAL = 5.0

    def __init__(self, env: simpy.Environment, cluster: Cluster, policy: FailoverPolicy, engine: Probe | None = None):
        self.cluster, self.policy = cluster, policy
        n = len(cluster.datacenter_ids)
        self.serving = [True] * n  # what the traffic manager believes
        self.changed_since: list[float | None] = [None] * n
        # Without ``engine``: quiet if a listener is a quiet engine (the other listeners are not engines).
        quiet = engine.quiet_ok if engine is not None else any(getattr(x, "quiet_ok", False) for x in cluster.listeners)
        super().__init__(env, self.CHECK_INTERVAL, 1, quiet)
        self._start(cluster)

    def wake(self, server: int | None = None) -> None:
        """As :meth:`_Sweeps.wake`, but a change that leaves its datacenter serving as believed, with
        no change waiting out its delay, needs no sweep (the sweep would do nothing).
        """
        if server is not None:
            cluster = self.cluster
            dc = cluster.servers[server].datacenter
            actual = cluster.dc_down[dc] == 0 and cluster.healthy_count[dc] > 0
            if actual == self.serving[dc] and self.changed_since[dc] is None:
                return
        super().wake(server)

    def _sweep(self, k: int, dirty: set[int] | None) -> int | None:
        cluster = self.cluster
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
        if not self.quiet:
            return None
        due: int | None = None  # the first sweep at which a change waiting out its delay moves users
        interval, delay = self.interval, self.policy.datacenter_delay
        for since in self.changed_since:
            if since is not None:
                j = max(k + 1, math.ceil((since + delay) / interval))
                while j * interval - since < delay:
                    j += 1
                while j - 1 > k and (j - 1) * interval - since >= delay:
                    j -= 1
                due = j if due is None else min(due, j)
        return due

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
                    cause, why = cluster.why_serving(best), "preferred datacenter back"
                cluster.set_route(region, best, cause, why)


class OverloadMonitor(_Sweeps):
    """Marks servers overloaded once a new request would wait longer than ``threshold`` at two checks
    in a row (a sustained queue, not a burst), and clears them when the wait falls below half of it.

    ``overloaded`` events name their likely cause (:meth:`Cluster.load_cause`): a failover onto the
    server, or the latest harm in its datacenter. Checked once per ``interval``, in one sweep: numpy
    over ``wait_all``, then the changes in server order. See :class:`_Sweeps` for the sweeps a
    ``quiet_ok`` engine lets it skip.
    """

    SUSTAINED = 2

    def __init__(self, env: simpy.Environment, cluster: Cluster, engine: Probe, threshold: float, interval: float):
        self.cluster, self.engine, self.threshold = cluster, engine, threshold
        n = len(cluster.servers)
        self.hot = np.zeros(n, dtype=bool)  # latest answer: up and waiting longer than the threshold
        self.low = np.ones(n, dtype=bool)  # latest answer: down, or waiting less than half of it
        self.w = np.zeros(n)  # latest wait
        self.since = np.ones(n, dtype=np.int64)  # index of the sweep its streak of hot answers began at
        self.overloaded = np.zeros(n, dtype=bool)  # marked overloaded (``Server.overload_event`` set)
        self.up_seen = np.ones(n, dtype=bool)  # whether each server was up when last looked at
        self.pending: dict[int, int] = {}  # quiet: hot server not yet marked -> the sweep it is due at
        self.calm = True  # nothing hot, nothing marked, every server low: a sweep of low waits changes nothing
        super().__init__(env, interval, 2, engine.quiet_ok)
        self._start(cluster, engine, threshold / 2)

    def wake(self, server: int | None = None) -> None:
        """As :meth:`_Sweeps.wake`; a server's rotation changing changes nothing here, only its stopping
        or starting does.
        """
        if server is not None and self.cluster.up_mask[server] == self.up_seen[server]:
            return
        super().wake(server)

    @property
    def above(self) -> np.ndarray:
        """Consecutive checks above the threshold, per server."""
        return np.where(self.hot, self.k - self.since + 1, 0)

    def _sweep(self, k: int, dirty: set[int] | None) -> int | None:
        cluster, threshold, since = self.cluster, self.threshold, self.since
        over = self.overloaded
        if dirty is None or len(dirty) > len(over) // 8:  # every server
            w = np.array(self.engine.wait_all(), dtype=float)
            if self.calm and (not w.size or w.max() < threshold / 2):  # and stays calm: nothing to decide
                self.w, self.up_seen = w, cluster.up_mask.copy()
                self.pending.clear()
                return None
            up = cluster.up_mask
            hot = (w > threshold) & up
            started = hot & ~self.hot
            if started.any():
                since[started] = k
            self.hot, self.low, self.w = hot, (w < threshold / 2) | ~up, w
            self.up_seen = up.copy()
            candidates = np.flatnonzero((hot & ~over) | (self.low & over)).tolist()
            self.pending.clear()
        else:  # only the servers the cluster changed, and those due
            if dirty:
                up = cluster.up_mask
                waits = self.engine.wait_all() if any(up[i] for i in dirty) else None  # down: waits 0
                for i in dirty:
                    wait = float(waits[i]) if waits is not None else 0.0
                    is_hot = wait > threshold and bool(up[i])
                    if is_hot and not self.hot[i]:
                        since[i] = k
                    self.hot[i], self.low[i], self.w[i] = is_hot, wait < threshold / 2 or not up[i], wait
                    self.up_seen[i] = up[i]
            candidates = sorted(dirty.union(i for i, due in self.pending.items() if due <= k))
        now = self.env.now
        for i in candidates:  # in server order
            server = cluster.servers[i]
            if not over[i]:
                if self.hot[i] and k - since[i] + 1 >= self.SUSTAINED:
                    rid = cluster.trace.record(now, OVERLOADED, server.id, cluster.load_cause(i),
                                               f"queue wait {float(self.w[i]):.2f}s > {threshold:g}s")
                    server.overload_event = rid
                    over[i] = True
                    cluster.note_harm(server.datacenter, rid)
            elif self.low[i]:
                cluster.trace.record(now, OVERLOAD_CLEARED, server.id, server.overload_event,
                                     "queue drained" if server.down == 0 else "server down")
                server.overload_event = None
                over[i] = False
        self.calm = not (over.any() or self.hot.any()) and bool(self.low.all())
        if not self.quiet:
            return None
        pending = self.pending
        for i in candidates:
            if self.hot[i] and not over[i]:
                pending[i] = int(since[i]) + self.SUSTAINED - 1
            else:
                pending.pop(i, None)
        return min(pending.values(), default=None)

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
        crash = cluster.trace.record(self.env.now, CRASHED, s.id, cause, detail)
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
            rec.flush()  # an engine that batches its latency samples writes them out now
            end = len(rec.latency)
            latency = np.array(rec.latency[seen:end], dtype=float)  # a copy: the records keep growing
            region = np.array(rec.latency_region[seen:end], dtype=int)
            weight = np.array(rec.latency_weight[seen:end], dtype=float) if len(rec.latency_weight) else None
            seen = end
            out: list[float | None] = []
            for r in range(n):
                mine = region == r
                if weight is None:
                    values = latency[mine]
                    out.append(float(np.percentile(values, 99)) if values.size >= self.MIN_SAMPLES else None)
                else:
                    count = float(weight[mine].sum())
                    out.append(weighted_percentile(latency[mine], weight[mine], 99)
                               if count >= self.MIN_SAMPLES else None)
            yield out


_SHOW: dict[str, Callable[[float], str]] = {
    "error_rate": lambda v: f"{v * 100:.2f}%",
    "latency": lambda v: f"{v * 1000:.0f}ms",
}


def _detector(detection: Detection, history: list[float]) -> Detector:
    if detection.rule == "threshold":
        return ThresholdRule(detection.rise, history)
    return EwmaBand(detection.alpha, detection.k, detection.rise, history)
