"""Retries' load offered when their backoff ends: the delay buffer of load-balancer and dependency retries.

The flow engine settles a load-balancer retry, and a server's dependency retry, in the step whose try
failed: its chance of success is read from that step's state, its backoff counts against the deadline and
in the latency (:class:`sim.policies.BackoffSums`). Its *load* (the retry's work, demand and try on its
servers, its calls and their work on a dependency, its bits on a link) comes when the backoff ends: a try
sent after ``j`` earlier tries timed out and ``k`` backoffs starts ``j tt + B_k`` after the request's first
try (``B_k`` the backoffs' sum, given that it ended before the deadline), and the step's first tries are
spread uniformly over the step. The share of that law that ends within the step stays in the step's loads;
the rest waits here, in slots of the base step ``dt``, and is offered to the same servers and dependencies
when its slot comes due (:meth:`Delays.take_due`, as the client-retry ring's slots come due). A backoff
whose mean is short against the step (under :data:`SHORT_BACKOFF` of it, or ``kind: none``) keeps the
retries' load within the step, as before.

What waits is mass (worker-seconds, tries, calls, bits), laid out flat per slot: ``[work, demand, tries]``
per server, then calls and work per dependency, then bits per link (:meth:`Delays.pack`). Which part of a
step's loads is sent later, and the taking out and handing back, are :mod:`sim.engine.flow.deferrals`'.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.policies import BackoffSums

__all__ = ["SHORT_BACKOFF", "Delays", "Law", "backoff_law"]

SHORT_BACKOFF = 0.1
"""A retry's backoff whose mean (the first one's) is under this share of the base step is short against it:
its retries' load stays in the step that failed, as if sent at once."""

_POINTS = 16  # points of the step at which its first tries stand (the uniform spread, by the midpoint rule)

Law = Callable[[np.ndarray], np.ndarray]
"""The law of a retry's delay after its request's first try: ``F(x) = P(delay < x)`` at each ``x``."""


def backoff_law(sums: BackoffSums, k: int, shift: float, room: float) -> tuple[Law, float]:
    """The delay ``shift + B_k`` of a try sent after ``k`` backoffs that ended before ``room`` (``B_k < room``,
    the backoffs' sum as ``sums`` has it), and the longest such delay.

    >>> from sim.scenario import Backoff
    >>> sums = BackoffSums(Backoff(base=2.0, multiplier=1.0, max=2.0, jitter="full"), 1, 10.0)
    >>> law, reach = backoff_law(sums, 1, 0.5, 1.0)  # 0.5 s + U(0, 2 s) given under 1 s: U(0.5, 1.5)
    >>> [round(float(p), 3) for p in law(np.array([0.5, 1.0, 1.5, 2.0]))], reach
    ([0.0, 0.5, 1.0, 1.0], 1.5)
    """
    mid, cum = sums.mid, sums.cum[k][0]
    below = float(np.interp(room, mid, cum)) if room > 0 else 0.0

    def law(x: np.ndarray) -> np.ndarray:
        y = np.minimum(x - shift, room)
        return np.where(y > 0.0, np.interp(y, mid, cum), 0.0) / max(below, 1e-300)

    return law, shift + max(room, 0.0)


ROWS = 4
"""Rows of a server's loads (:class:`sim.engine.flow.tries.Loads`): work, demand, tries, and the tries' work squared."""


class Delays:
    """The delay buffer: per slot of ``dt`` (absolute: slot ``i`` is ``[i dt, (i + 1) dt)``), the mass of load
    that comes due then, flat (see :meth:`pack`). Only slots holding some are kept.

    >>> d = Delays(1.0, servers=1, deps=0, links=0)
    >>> stay, slots = d.later(0.0, 1.0, lambda x: (x >= 1.5).astype(float), 1.5)  # every delay 1.5 s
    >>> stay, [(i, round(s, 3)) for i, s in slots]  # a first try at u lands at u + 1.5: in [1.5, 2.5)
    (0.0, [(1, 0.5), (2, 0.5)])
    >>> d.put(slots, d.pack(np.array([[2.0], [2.0], [4.0], [8.0]]), np.zeros(0), np.zeros(0), np.zeros(0)))
    >>> d.take_due(1.0, 1.0)[:4].tolist(), d.take_due(2.0, 1.0)[:4].tolist(), d.take_due(3.0, 1.0)
    ([1.0, 1.0, 2.0, 4.0], [1.0, 1.0, 2.0, 4.0], None)
    """

    def __init__(self, dt: float, servers: int, deps: int, links: int):
        self.dt = dt
        self.n, self.deps, self.links = servers, deps, links
        self.size = ROWS * servers + 2 * deps + links
        self.slots: dict[int, np.ndarray] = {}

    def pack(self, per_server: np.ndarray, dep_calls: np.ndarray, dep_work: np.ndarray,
             link: np.ndarray) -> np.ndarray:
        """One flat vector of ``per_server`` [work, demand, tries, work squared; server] (:data:`ROWS`), the
        dependencies' calls and work and the links' bits.
        """
        return np.concatenate((per_server.ravel(), dep_calls, dep_work, link))

    def unpack(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`pack`'s parts of ``flat`` (views)."""
        m, d = ROWS * self.n, self.deps
        return flat[:m].reshape(ROWS, self.n), flat[m: m + d], flat[m + d: m + 2 * d], flat[m + 2 * d:]

    def later(self, t: float, h: float, law: Law, reach: float) -> tuple[float, list[tuple[int, float]]]:
        """Of the retries whose first tries were in the step from ``t`` of length ``h`` (spread uniformly
        over it), sent ``law`` after them (never more than ``reach``): the share sent within the step, and
        per later slot the share sent in it (from the step's end on; they add up to 1 with the first).
        """
        dt, end = self.dt, t + h
        first = int(math.floor(end / dt + 1e-9))
        horizon = end + reach
        last = max(first, int(math.floor(horizon / dt + 1e-9)))
        edges = np.concatenate(([end], np.arange(first + 1, last + 1) * dt))
        u = t + (np.arange(_POINTS) + 0.5) / _POINTS * h
        cum = law((edges[:, None] - u[None, :]).ravel()).reshape(edges.size, _POINTS).mean(axis=1)
        cum = np.minimum(np.maximum.accumulate(cum), 1.0)
        shares = np.diff(np.append(cum, 1.0))
        stay = float(cum[0])
        return stay, [(first + i, float(s)) for i, s in enumerate(shares.tolist()) if s > 0.0]

    def put(self, slots: list[tuple[int, float]], mass: np.ndarray) -> None:
        """Add ``mass`` (flat, see :meth:`pack`) times each slot's share to the slots (``later``'s list)."""
        for i, share in slots:
            kept = self.slots.get(i)
            if kept is None:
                self.slots[i] = mass * share
            else:
                kept += mass * share

    def put_all(self, each: list[tuple[list[tuple[int, float]], np.ndarray]]) -> None:
        """:meth:`put` for several masses at once (each with its slots' shares), slot by slot."""
        into: dict[int, list[tuple[float, np.ndarray]]] = {}
        for shares, mass in each:
            for i, share in shares:
                into.setdefault(i, []).append((share, mass))
        for i, parts in into.items():
            kept = self.slots.get(i)
            for share, mass in parts:
                if kept is None:
                    kept = self.slots[i] = mass * share
                else:
                    kept += mass * share

    def take_due(self, t: float, h: float) -> np.ndarray | None:
        """Take out what comes due in the step from ``t`` of length ``h`` (None: nothing): as the client-retry
        ring does, a long step takes every slot that starts before its end, a short one its share of the slot
        under way; a slot left behind (before the one under way) comes due at once.
        """
        if not self.slots:
            return None
        dt = self.dt
        k = int(math.floor(t / dt + 1e-9))
        left = (k + 1) * dt - t
        long = h > left + 1e-9
        last = int(math.ceil((t + h) / dt - 1e-9)) - 1 if long else k - 1
        due: np.ndarray | None = None
        for i in sorted(self.slots):
            if i > last and (long or i != k):
                continue
            if i <= last:
                part = self.slots.pop(i)
            else:  # the slot under way: the step's share of what is left of it
                share = min(1.0, h / left) if left > 0 else 1.0
                part = self.slots[i] * share
                if share >= 1.0:
                    del self.slots[i]
                else:
                    self.slots[i] -= part
            due = part if due is None else due + part
        return due

    def total(self) -> np.ndarray:
        """Everything waiting, flat (zeros when nothing is)."""
        out = np.zeros(self.size)
        for mass in self.slots.values():
            out += mass
        return out
