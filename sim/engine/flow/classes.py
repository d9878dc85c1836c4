"""Lumping: servers in the same state are computed once.

A class holds the servers equal in everything a step reads of them (parameters, up, version, warm-up,
pool weight, backlog, load, refusals), told apart by a 64-bit hash of it: a collision, about one chance
in 10^10 for 10^5 distinct states, would merge two. The step computes one server per class and hands
the result to all of them. Servers equal at one step that get equal loads stay equal, so when every class
got one load the classes stand (no hash and sort of all servers); they are taken again from the loads
when a class's servers got different loads, when a listener changes a server or a warm-up ends
(``Servers.revision``), and every :data:`REUSE` steps (so classes that have come to agree merge). Below
``FlowEngine.lump_from`` servers every server is its own class.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.engine.flow.servers import Servers

__all__ = ["REUSE", "ClassView", "Classes", "mix", "bits"]

REUSE = 32
"""Classes that stand (every class got one load) are taken again from scratch after this many steps, so
that classes which have come to agree merge."""

_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_ODD = np.uint64(0x9E3779B97F4A7C15)


def mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads the bits of unsigned 64-bit keys (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def bits(a: np.ndarray) -> np.ndarray:
    """The float64 bit pattern of each element, as unsigned 64-bit integers."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


class ClassView(NamedTuple):
    """The servers' classes: one server standing for each class, each server's class, the class sizes."""

    rep: np.ndarray  # one server per class (index into the servers)
    of: np.ndarray  # each server's class (index into ``rep``)
    size: np.ndarray  # servers per class (floats)


class Classes:
    """The classes of :class:`~sim.engine.flow.servers.Servers` in the same state, kept while they stand."""

    def __init__(self, servers: Servers, lump: bool):
        self.servers = servers
        self.lump = lump
        self.count = 0  # classes summed over the steps (/ steps: the mean)
        self._at = self._semi_at = -1  # the servers' revision the classes and the semi key were taken at
        self._reuse = 0  # steps the classes have stood since they were last taken
        self._semi = np.zeros(0, dtype=np.uint64)
        self._runs: tuple[np.ndarray, np.ndarray] | None = None  # the servers as runs of one class, if few
        self.view = ClassView(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        s = servers
        static = np.zeros(s.n, dtype=np.uint64)
        for a in (s.dc_of, s.det, s.service, s.workers, s.queue_limit, s.cs2, s.frontend):
            static = mix(static * _ODD + bits(a))
        self._static_key = static

    def current(self) -> ClassView:
        """The classes now (taken again from the servers' state if a listener or a warm-up changed it)."""
        s = self.servers
        if self._at != s.revision:
            self._take(s.backlog, s.load, s.rate, s.shed)
        return self.view

    def after_loads(self, loads: np.ndarray) -> ClassView:
        """The classes for the queue update of a step that brought the servers these ``loads`` (work, demand and
        tries: [3, server]; see the module).
        """
        s = self.servers
        if not (self.lump and self._at == s.revision and self._reuse < REUSE and self._stands(loads)):
            self._take(s.backlog, *loads)
        else:
            self._reuse += 1
        self.count += self.view.rep.size
        return self.view

    def _stands(self, loads: np.ndarray) -> bool:
        """Whether every server got the ``loads`` (one or more per server: [load, server]) of the server standing
        for its class.
        """
        return bool(np.logical_and.reduce(loads == self.each(loads[:, self.view.rep]), axis=None))

    def each(self, per_class: np.ndarray) -> np.ndarray:
        """Values per class (along the last axis) handed to each server of the class (``per_class.take(view.of,
        axis=-1)``; by runs of servers of one class when they are few, as a rule: a repeat costs less than a
        gather).
        """
        if self._runs is None:
            return per_class.take(self.view.of, axis=-1)
        cls, length = self._runs
        return per_class.take(cls, axis=-1).repeat(length, axis=-1)

    def _semi_key(self) -> np.ndarray:
        """The hash of what changes only when listeners are called (or a warm-up ends)."""
        s = self.servers
        if self._semi_at != s.revision:
            key = self._static_key
            for a in (s.up, s.err, s.speed, s.warm_until, s.warm_speed, s.pool_weight, s.ca2):
                key = key * _ODD + bits(a)
            self._semi, self._semi_at = mix(key), s.revision
        return self._semi

    def _take(self, *state: np.ndarray) -> None:
        """Take the classes from what listeners change (``_semi_key``) and the per-server ``state``."""
        if self.lump:
            key = self._semi_key()
            for a in state:
                key = key * _ODD + bits(a)
            ix, inv = _unique(key)
        else:
            ix = inv = np.arange(self.servers.n)
        old = self.view
        # Classes taken again as they were keep their view, and with it what the step keeps by it (groups, paths).
        if not (np.array_equal(ix, old.rep) and np.array_equal(inv, old.of)):
            self.view = ClassView(ix, inv, np.bincount(inv, minlength=ix.size).astype(float))
            starts = np.flatnonzero(np.concatenate(([True], inv[1:] != inv[:-1]))) if inv.size else inv
            self._runs = (inv[starts], np.diff(np.append(starts, inv.size))) if starts.size * 16 <= inv.size else None
        self._at = self.servers.revision
        self._reuse = 0


def _unique(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_index=True, return_inverse=True)`` without the keys: the first entry of each
    distinct key (in the keys' order) and each entry's. Runs of one key (as a rule: neighbouring servers
    are alike) are taken as one, which spares sorting every server.
    """
    if key.size:
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        if starts.size * 16 <= key.size:
            _, first, run_class = np.unique(key[starts], return_index=True, return_inverse=True)
            return starts[first], np.repeat(run_class, np.diff(np.append(starts, key.size)))
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    return first, inv
