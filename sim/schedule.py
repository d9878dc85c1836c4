"""Booking work on SimPy's loop without processes: bare callbacks, and service times drawn at booking.

The request engine, the flow engine's mail deliveries and the mail senders book everything this way:
an event is a callback due at a time (:func:`later`), ordered like any SimPy event by (time, priority,
insertion), and a request's service time is drawn when it is booked (:func:`make_sampler`).

The request engine's own steps (millions a run) go through a :class:`Lane`: a private queue of
callbacks merged with SimPy's in exactly SimPy's order, which costs a heap push and pop per step
instead of an event object and a trip through :meth:`simpy.Environment.step`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from functools import partial
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from sim.rng import Stream
    from sim.scenario import ServiceTime

__all__ = ["Call", "later", "Lane", "make_sampler", "NORMAL"]

NORMAL = simpy.events.NORMAL


class Call:
    """The lightest thing SimPy's loop can process: an already-triggered event with one callback.

    ``Environment.step`` needs only ``callbacks`` and ``_ok`` of what it pops; skipping the
    ``Timeout`` constructor makes scheduling about a third cheaper on the engine's hot path.
    """

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self, fn: Callable[[Any], None]):
        self.callbacks = [fn]
        self._ok = True
        self._value = None


def later(env: simpy.Environment, delay: float, fn: Callable[[Any], None]) -> None:
    """Call ``fn(event)`` after ``delay``, in SimPy's (time, priority, insertion) order.

    >>> env = simpy.Environment()
    >>> later(env, 2.0, lambda _: print("at", env.now))
    >>> env.run()
    at 2.0
    """
    env.schedule(Call(fn), NORMAL, delay)  # type: ignore[arg-type]


class Lane:
    """A queue of callbacks of its own, run in the order SimPy would run them as events.

    :meth:`at` books ``fn(arg)`` at an absolute time. Each booking takes the next insertion number from
    SimPy's own counter, so the lane's callbacks and SimPy's events are one sequence ordered by (time,
    priority, insertion), exactly as if every callback were an event of the :func:`later` kind: a run is
    the same to the bit either way. Only the lane's earliest callback has an event in SimPy's queue (under
    the callback's own key); when it fires, the lane runs its callbacks one after another, moving the
    clock, for as long as none of SimPy's events comes first. Between two control-plane events that is
    thousands of callbacks for one event.

    It reads SimPy's queue, counter and clock (``Environment._queue``, ``_eid``, ``_now``, the same since
    SimPy 3). If an environment lacks them, every callback is booked as an event of its own instead.

    >>> env = simpy.Environment()
    >>> lane, seen = Lane(env), []
    >>> later(env, 2.0, lambda _: seen.append(("event", env.now)))
    >>> lane.at(1.0, seen.append, "lane at 1")
    >>> lane.at(2.0, seen.append, "lane at 2, booked after the event at 2")
    >>> env.run()
    >>> seen
    ['lane at 1', ('event', 2.0), 'lane at 2, booked after the event at 2']
    """

    __slots__ = ("env", "heap", "queue", "eid", "running", "live", "armed")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.heap: list[tuple[float, int, int, Callable[[Any], None], Any]] = []
        queue: list[tuple[float, int, int, Any]] | None = getattr(env, "_queue", None)
        eid: Iterator[int] | None = getattr(env, "_eid", None)
        known = queue is not None and eid is not None and hasattr(env, "_now")
        self.queue = queue if known else None  # None: not the SimPy we know, one event per callback
        self.eid: Iterator[int] = eid if eid is not None else itertools.count()
        self.running = False
        self.live: tuple[float, int] = (math.inf, -1)  # (time, insertion) of the pump that will run
        self.armed: dict[int, Call] = {}  # insertion -> pump event waiting in SimPy's queue

    def at(self, time: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at ``time`` (not before now)."""
        queue = self.queue
        if queue is None:
            later(self.env, time - self.env.now, lambda _: fn(arg))
            return
        item = (time, NORMAL, next(self.eid), fn, arg)
        heappush(self.heap, item)
        if not self.running and (time, item[2]) < self.live:
            self._arm(item)

    def _arm(self, item: tuple[float, int, int, Callable[[Any], None], Any]) -> None:
        """Make ``item``'s key the lane's pump in SimPy's queue (a pump made earlier goes stale)."""
        time, _, eid = item[0], item[1], item[2]
        self.live = (time, eid)
        if eid not in self.armed:
            pump = self.armed[eid] = Call(lambda _: self._pump(eid))
            heappush(self.queue, (time, NORMAL, eid, pump))  # type: ignore[arg-type]

    def _pump(self, eid: int) -> None:
        del self.armed[eid]
        if eid != self.live[1]:
            return  # stale: an earlier callback was booked after this pump was armed, and has run
        self.live = (math.inf, -1)
        heap, queue, env = self.heap, self.queue, self.env
        assert queue is not None
        self.running = True
        try:
            while heap:
                item = heap[0]
                if queue:
                    head = queue[0]
                    if head[0] < item[0] or (head[0] == item[0] and (head[1], head[2]) < (NORMAL, item[2])):
                        break  # one of SimPy's events comes first
                heappop(heap)
                env._now = item[0]
                item[3](item[4])
        finally:
            self.running = False
        if heap:
            self._arm(heap[0])


def make_sampler(service: ServiceTime, rng: Stream) -> Callable[[], float]:
    """A function drawing one service time of ``service`` from ``rng`` (exponential, lognormal with the
    given coefficient of variation, or the mean exactly when deterministic).
    """
    mean = service.mean
    if service.distribution == "deterministic":
        return lambda: mean
    if service.distribution == "lognormal":
        return lambda: rng.lognormal(mean, service.cv)
    return partial(rng.exponential, mean)  # a C-level call into the stream: the engine draws one per stage
