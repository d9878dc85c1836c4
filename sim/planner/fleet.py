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
_PAIRS = 4_000_000  # pairs of outages checked at once for a shared database (see _alone)


class History(NamedTuple):
    """Every change of a database's active copy: at ``time``, database ``db`` went from server ``old`` to
    ``new`` (-1: no active copy), in time order.
    """

    time: np.ndarray
    db: np.ndarray
    old: np.ndarray
    new: np.ndarray


class Neighbours:
    """Which servers share a database (hold copies of one), and each server's preferred databases with the
    copy each fails over to when only that server is down: what :func:`replay` needs to tell an outage
    that meets no other from one that does.
    """

    def __init__(self, cluster: Cluster):
        n = self.n = len(cluster.servers)
        keys: list[int] = []
        for copies in cluster.copies:
            keys += [a * n + b for a in copies for b in copies]
        self.keys = np.unique(np.array(keys, dtype=np.int64))
        preferred: list[list[int]] = [[] for _ in range(n)]
        for db, copies in enumerate(cluster.copies):
            if copies:
                preferred[copies[0]].append(db)
        self.count = np.array([len(p) for p in preferred], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.count)])
        self.db = np.array([db for p in preferred for db in p], dtype=np.int64)
        self.next = np.array([cluster.copies[db][1] if len(cluster.copies[db]) > 1 else -1 for db in self.db.tolist()],
                             dtype=np.int64)

    def share(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether servers ``a[i]`` and ``b[i]`` hold copies of a common database (a server shares with itself)."""
        key = a * self.n + b
        at = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        return self.keys[at] == key


def replay(cluster: Cluster, outages: Outages, policy: FailoverPolicy, horizon: float,
           neighbours: Neighbours | None = None) -> History:
    """The active copies' history over ``[0, horizon)`` under ``outages`` (see the module docstring).

    With ``neighbours`` (and failback on), an outage that meets no other outage of a server sharing one of
    its databases while it or its failovers last (``[start, end + database_delay)``), no datacenter
    outage and no burst of activations near the rate limit, is written down at once: its preferred
    databases lost at its start, activated on their next copy ``database_delay`` later (on itself, if it
    is back by then), and failed back ``database_delay`` after its end — what the event loop would do.
    Only the others go through the event loop (``tests/test_planner.py`` checks the two agree).
    """
    dc_servers, dc_starts, dc_ends = _dc_rows(cluster, outages)
    starts = np.concatenate([outages.server_start, dc_starts])
    ends = np.concatenate([outages.server_end, dc_ends])
    servers = np.concatenate([outages.server, dc_servers])
    if neighbours is None or not policy.failback or starts.size == 0:
        return _loop(cluster, servers, starts, ends, policy, horizon)
    alone = _alone(neighbours, servers, starts, ends, outages.server.size, policy)
    quick = _at_once(neighbours, servers[alone], starts[alone], ends[alone], policy.database_delay, horizon)
    rest = _loop(cluster, servers[~alone], starts[~alone], ends[~alone], policy, horizon)
    time = np.concatenate([quick.time, rest.time])
    order = np.argsort(time, kind="stable")
    return History(time[order], np.concatenate([quick.db, rest.db])[order],
                   np.concatenate([quick.old, rest.old])[order], np.concatenate([quick.new, rest.new])[order])


def _alone(nb: Neighbours, servers: np.ndarray, starts: np.ndarray, ends: np.ndarray, own: int,
           policy: FailoverPolicy) -> np.ndarray:
    """Which outages meet no other that matters (see :func:`replay`); the first ``own`` are servers' own,
    the rest a datacenter's.
    """
    reach = ends + policy.database_delay  # while its databases are elsewhere
    alone = np.zeros(starts.size, dtype=bool)  # a datacenter's outage goes through the loop...
    mine = np.arange(own)
    for a0, e0 in sorted(set(zip(starts[own:].tolist(), reach[own:].tolist(), strict=True))):  # ...and what meets it
        mine = mine[(starts[mine] >= e0) | (reach[mine] <= a0)]
    order = mine[np.argsort(starts[mine], kind="stable")]
    a, e, s = starts[order], reach[order], servers[order]
    k = np.arange(a.size)
    hi = np.searchsorted(a, e, side="left")  # the outages that start while this one lasts
    count = np.maximum(hi - k - 1, 0)
    met = np.zeros(a.size, dtype=bool)
    # The pairs (an outage, one that starts while it lasts) grow as the square of the fleet (440,000 outages
    # of 100,000 servers meet some 400 each): taken in blocks of about _PAIRS, so memory stays flat.
    ends_at = np.cumsum(count)
    total = int(ends_at[-1]) if a.size else 0
    cut = np.unique(np.r_[np.searchsorted(ends_at, np.arange(_PAIRS, total + 1, _PAIRS), side="right"), a.size])
    for k0, k1 in zip(np.r_[0, cut[:-1]].tolist(), cut.tolist(), strict=True):
        c = count[k0:k1]
        i = np.repeat(k[k0:k1], c)
        j = i + 1 + (np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c))
        hit = nb.share(s[i], s[j])
        met[i[hit]] = True
        met[j[hit]] = True
    alone[order] = ~met
    limit = policy.max_activations_per_minute
    if limit is not None:  # near a burst of activations the rate limit may bind: the loop decides
        acts = np.cumsum(nb.count[s])
        lo = np.searchsorted(a, a - 60.0 - policy.database_delay, side="left")
        up = np.searchsorted(a, a + 60.0 + policy.database_delay, side="right")
        near = acts[np.maximum(up - 1, 0)] - np.where(lo > 0, acts[np.maximum(lo - 1, 0)], 0) > limit // 2
        alone[order[near]] = False
    return alone


def _at_once(nb: Neighbours, servers: np.ndarray, starts: np.ndarray, ends: np.ndarray, delay: float,
             horizon: float) -> History:
    """The moves of outages that meet no other, written down at once (see :func:`replay`)."""
    count = nb.count[servers]
    row = np.repeat(np.arange(servers.size), count)
    at = np.repeat(nb.start[servers], count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    db, nxt, s = nb.db[at], nb.next[at], servers[row]
    a, b = starts[row], ends[row]
    back = b < horizon
    early = back & (b < a + delay)  # back before the failover: the first copy up is its own
    target = np.where(early, s, nxt)
    lost = (a, db, s, np.full(db.size, -1))
    activated = (a + delay, db, np.full(db.size, -1), target)
    # Failed back after its end; with no other copy it waits for the server instead (activated then).
    failed_back = (b + delay, db, nxt, s)
    no_copy = nxt < 0
    parts = [lost, _where(activated, (target >= 0) | early), _where(failed_back, back & ~early & ~no_copy),
             _where((b + delay, db, np.full(db.size, -1), s), back & ~early & no_copy)]
    time = np.concatenate([p[0] for p in parts])
    keep = time < horizon
    return History(time[keep], *(np.concatenate([p[k] for p in parts])[keep] for k in (1, 2, 3)))


def _where(part: tuple[np.ndarray, ...], mask: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(x[mask] for x in part)


def _loop(cluster: Cluster, servers: np.ndarray, starts: np.ndarray, ends: np.ndarray, policy: FailoverPolicy,
          horizon: float) -> History:
    """The control plane's failover, event by event, over the outages given."""
    n = len(cluster.servers)
    heap: list[tuple[float, int, int, int, int]] = []  # (time, order booked, kind, server or db, server)
    seq = 0
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
