"""The fleet's state through a planner's year: which copy of each database is active, and when none is.

Given the servers' outages (:mod:`sim.planner.outages`), this replays the control plane's database
failover exactly as :class:`sim.control.Failover` does it, event by event: a server that stops loses its
active copies at once; each such database is activated ``database_delay`` later on the first copy (in
placement order) whose server is up, within ``max_activations_per_minute``; a database with no copy up
waits for a server holding one to return (then the same delay); with ``failback`` a database moves back
to its preferred copy ``database_delay`` after that copy's server returns. Faults stack: a server is down
while any of its outages lasts.

What comes out is the history of the active copies (:class:`History`): every change, from which the
planner reads each server's databases over time and each database's unavailable intervals.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import NamedTuple

import numpy as np

from sim.cluster import Cluster
from sim.planner.outages import Outages
from sim.scenario import FailoverPolicy

__all__ = ["History", "replay"]

_DOWN, _UP, _ACTIVATE, _FAILBACK = 0, 1, 2, 3  # at one instant, events run in the order they were booked


class History(NamedTuple):
    """Every change of a database's active copy: at ``time``, database ``db`` went from server ``old`` to
    ``new`` (-1: no active copy), in time order.
    """

    time: np.ndarray
    db: np.ndarray
    old: np.ndarray
    new: np.ndarray


def replay(cluster: Cluster, outages: Outages, policy: FailoverPolicy, horizon: float) -> History:
    """The active copies' history over ``[0, horizon)`` under ``outages`` (see the module docstring)."""
    n = len(cluster.servers)
    heap: list[tuple[float, int, int, int, int]] = []  # (time, order booked, kind, server or db, server)
    seq = 0
    dc_servers, dc_starts, dc_ends = _dc_rows(cluster, outages)
    starts = np.concatenate([outages.server_start, dc_starts])
    ends = np.concatenate([outages.server_end, dc_ends])
    servers = np.concatenate([outages.server, dc_servers])
    for s, a, b in zip(servers.tolist(), starts.tolist(), ends.tolist(), strict=True):
        heap.append((a, seq, _DOWN, s, -1))
        seq += 1
        if b < horizon:
            heap.append((b, seq, _UP, s, -1))
            seq += 1
    heapq.heapify(heap)
    down = [0] * n
    active = [c[0] for c in cluster.copies]
    copies = cluster.copies
    held = [s.databases for s in cluster.servers]
    delay, failback, limit = policy.database_delay, policy.failback, policy.max_activations_per_minute
    recent: deque[float] = deque()
    log_t: list[float] = []
    log_db: list[int] = []
    log_old: list[int] = []
    log_new: list[int] = []

    def move(t: float, db: int, new: int) -> None:
        log_t.append(t)
        log_db.append(db)
        log_old.append(active[db])
        log_new.append(new)
        active[db] = new

    while heap:
        t, _, kind, a, b = heapq.heappop(heap)
        if t >= horizon:
            break
        if kind == _DOWN:
            down[a] += 1
            if down[a] == 1:
                for db in held[a]:
                    if active[db] == a:
                        move(t, db, -1)
                        heapq.heappush(heap, (t + delay, seq, _ACTIVATE, db, -1))
                        seq += 1
        elif kind == _UP:
            down[a] -= 1
            if down[a] == 0:
                for db in held[a]:
                    if active[db] == -1:
                        heapq.heappush(heap, (t + delay, seq, _ACTIVATE, db, -1))
                        seq += 1
                    elif failback and copies[db][0] == a:
                        heapq.heappush(heap, (t + delay, seq, _FAILBACK, db, a))
                        seq += 1
        elif kind == _ACTIVATE:
            if active[a] != -1:
                continue
            if limit is not None:
                while recent and t - recent[0] >= 60.0:
                    recent.popleft()
                if len(recent) >= limit:  # rate-limited: try again when the oldest leaves the minute
                    heapq.heappush(heap, (recent[0] + 60.0, seq, _ACTIVATE, a, -1))
                    seq += 1
                    continue
            for s in copies[a]:
                if down[s] == 0:
                    move(t, a, s)
                    if limit is not None:
                        recent.append(t)
                    break
        elif down[b] == 0 and active[a] not in (-1, b):  # failback
            move(t, a, b)
    return History(np.array(log_t, dtype=float), np.array(log_db, dtype=np.int64),
                   np.array(log_old, dtype=np.int64), np.array(log_new, dtype=np.int64))


def _dc_rows(cluster: Cluster, outages: Outages) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A datacenter's outage as one outage of each of its servers."""
    members = [np.array(cluster.servers_of_dc[d], dtype=np.int64) for d in outages.dc.tolist()]
    if not members:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty
    counts = np.array([m.size for m in members])
    return (np.concatenate(members), np.repeat(outages.dc_start, counts), np.repeat(outages.dc_end, counts))
