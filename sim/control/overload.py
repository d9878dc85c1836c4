"""Overload: the monitor that marks servers overloaded, and crash under overload (out of memory, then a
restart after ``restart_time``).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.control.sweeps import Probe, Sweeps
from sim.events import CRASHED, OVERLOAD_CLEARED, OVERLOADED

__all__ = ["OverloadMonitor", "Restarter"]


class OverloadMonitor(Sweeps):
    """Marks servers overloaded once a new request would wait longer than ``threshold`` at two checks
    in a row (a sustained queue, not a burst), and clears them when the wait falls below half of it.

    ``overloaded`` events name their likely cause (:meth:`Cluster.load_cause`): a failover onto the
    server, or the latest harm in its datacenter. Checked once per ``interval``, in one sweep: numpy
    over ``wait_all``, then the changes in server order. See :class:`Sweeps` for the sweeps a
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
        """As :meth:`Sweeps.wake`; a server's rotation changing changes nothing here, only its stopping
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
