"""The global traffic manager: it moves a region's users to another datacenter when theirs fails."""

from __future__ import annotations

import math

import simpy

from sim.cluster import Cluster
from sim.control.sweeps import Probe, Sweeps
from sim.scenario import FailoverPolicy

__all__ = ["TrafficManager"]


class TrafficManager(Sweeps):
    """The global traffic manager: each region goes to its nearest datacenter that is serving.

    A datacenter counts as serving while it is up and has a server in rotation. A change has to last
    ``datacenter_delay`` (health-check grace plus DNS TTL) before users move. When no datacenter of a
    region is serving, the region stays on its preferred one (fail open). It reads only the cluster,
    which wakes it; with a ``quiet_ok`` engine (``engine``, or else among the cluster's listeners) it
    runs only the sweeps that can move users (see :class:`Sweeps`).
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
        """As :meth:`Sweeps.wake`, but a change that leaves its datacenter serving as believed, with
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
