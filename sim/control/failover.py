"""Database failover: the next copy of a database takes over when its active copy's server stops."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import simpy

from sim.cluster import Cluster
from sim.events import DATABASE_UNAVAILABLE, FAILBACK, FAILOVER, FAILOVER_FAILED
from sim.scenario import FailoverPolicy
from sim.schedule import Call, later

__all__ = ["Failover"]


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
