"""Health checks: each load balancer's active checks of its servers, ejecting and readmitting them."""

from __future__ import annotations

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.control.sweeps import Probe, Sweeps
from sim.detect import PhiAccrual
from sim.scenario import HealthCheck

__all__ = ["HealthChecker"]


class HealthChecker(Sweeps):
    """Load-balancer health checks: eject after N failures in a row, readmit after M successes.

    With ``phi_accrual`` each check is a heartbeat answered after the server's wait (``wait_all``), and a
    server is ejected at the first sweep its phi reaches the threshold (:class:`sim.detect.PhiAccrual`),
    readmitted after M sweeps below it; these sweeps run every interval whatever the engine.

    All servers are checked once per interval, in one sweep (a single event per interval): numpy over
    ``probe_all``, then the ejections and readmissions in server order. A server is pending while it
    passes but is out of rotation (and not drained) or fails but is in rotation: only pending servers
    can change. See :class:`Sweeps` for the sweeps a ``quiet_ok`` engine lets it skip.
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
