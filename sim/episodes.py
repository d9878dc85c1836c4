"""Episodes of a repeated event: the first after a quiet spell is logged, and so is the end of the spell of
them, with how many there were.

A limit refusing attempts, a bulkhead queueing too long, a fallback answering degraded, CoDel dropping at a
queue: each happens thousands of times in an overload, and the event log keeps two records per episode
rather than one per occurrence. :class:`Episodes` holds the episodes under way, by a key of the caller's
(what refuses: a region's rate limit, a server's CoDel, ...).

>>> import simpy
>>> from sim.trace import Trace
>>> env, trace = simpy.Environment(), Trace()
>>> episodes = Episodes(env, trace)
>>> for t in (1.0, 2.0, 3.0):
...     _ = env.run(until=t)
...     episodes.note(("server", 0), "rate_limited", "rate_limit_lifted", "s-01", None, "refused", "refusals", 10.0)
>>> env.run(until=20.0)
>>> [(r.time, r.kind, r.detail) for r in trace.records]
[(1.0, 'rate_limited', 'refused'), (13.0, 'rate_limit_lifted', '3 refusals, the last at 3s')]
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import simpy

from sim.schedule import later
from sim.trace import Trace
from sim.units import format_duration

__all__ = ["Episodes"]


class Episodes:
    """The episodes under way, by key: [the start event, how many so far, when the last was]."""

    def __init__(self, env: simpy.Environment, trace: Trace):
        self.env, self.trace = env, trace
        self.open: dict[Hashable, list[Any]] = {}

    def note(self, key: Hashable, kind: str, end_kind: str, node: str, cause: int | None, detail: str,
             counted: str, quiet: float) -> None:
        """One more occurrence under ``key``. The first after a quiet spell starts an episode, recorded as
        ``kind`` on ``node`` with ``cause`` and ``detail``; it ends, recorded as ``end_kind``, once ``quiet``
        seconds pass without another, saying how many there were (``counted``: "requests dropped"). A start
        with no cause is a root: its end names no cause either.
        """
        now = self.env.now
        episode = self.open.get(key)
        if episode is None:
            episode = self.open[key] = [None, 0, 0.0]
        episode[1] += 1
        episode[2] = now
        if episode[0] is not None:
            return
        trace = self.trace
        episode[0] = trace.record(now, kind, node, cause, detail)

        def check(_: Any) -> None:
            if self.env.now < episode[2] + quiet:  # another since: look again a quiet spell after the last
                return later(self.env, episode[2] + quiet - self.env.now, check)
            start = episode[0]
            trace.record(self.env.now, end_kind, node, start if trace.records[start].cause is not None else None,
                         f"{episode[1]} {counted}, the last at {format_duration(episode[2])}")
            episode[0], episode[1] = None, 0

        later(self.env, quiet, check)
