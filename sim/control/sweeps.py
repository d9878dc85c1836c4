"""The sweeps of the control plane: what it asks of an engine (:class:`Probe`) and the sweep every
interval that the health checks, the traffic manager and the overload monitor share (:class:`Sweeps`).

They sweep every server (or datacenter) once per interval, with numpy over the engine's answers for all
servers; Python only touches the servers whose state changes. With an engine whose answers change only
when its state does (``quiet_ok``), a sweep that leaves nothing pending lets its process sleep until the
engine or the cluster wakes it (``wake``); it resumes on the same grid of sweep times. See :class:`Probe`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Protocol

import numpy as np
import simpy

from sim.cluster import Cluster

__all__ = ["Probe", "LATE", "trigger_at", "Sweeps"]


class Probe(Protocol):
    """What the control plane asks of an engine: would a health check be answered in time, and how long
    would a new request wait? Per server, and for every server at once (the sweeps use the vectors).

    Quiet sweeps. An engine whose answers change only when its state changes (not as the clock runs)
    sets ``quiet_ok = True``; every engine keeps a list ``wakers``: the health checks and the overload
    monitor append their ``wake`` to it (and to :attr:`Cluster.wakers`). The engine calls every waker
    (no argument) after any change of its state that can alter an answer of ``probe_all`` or
    ``wait_all`` (once per step of its own is enough; a call costs O(1)). It may skip the calls when,
    before and after the change, every server that is up passes ``probe_all`` with certainty and waits
    less than ``wake_floor`` (an attribute the control plane sets on the engine: the smallest wait any
    of its decisions tells apart from no wait): then no decision can change. A server's own answers
    changing in ``server_down``/``server_up`` need no call: the cluster wakes the sweeps for that
    server itself. An answer drawn at random (a check that passes with some probability) must be
    flagged: ``probe_all`` sets ``probe_drew = True`` when it drew any (False otherwise), and the
    health checks then sweep every server at every interval until it draws none. While nothing
    changes, a sweeping process sleeps; its sweeps run at multiples of their interval, after every
    other event of the same instant. The request engine's answers change as the clock runs, so it keeps
    ``quiet_ok = False`` and is swept every interval, as it always was. :class:`sim.engine.base.EngineBase`
    declares these four attributes with those defaults.
    """

    quiet_ok: bool
    wakers: list[Callable[[], None]]
    wake_floor: float
    probe_drew: bool

    def probe(self, server: int, timeout: float) -> bool:
        """Whether a health check sent to ``server`` now would be answered within ``timeout``."""
        ...

    def wait(self, server: int) -> float:
        """How long a request arriving at ``server`` now would wait (0 when it is down)."""
        ...

    def probe_all(self, timeout: float) -> np.ndarray:
        """:meth:`probe` for every server: a bool array indexed like ``Cluster.servers``."""
        ...

    def wait_all(self) -> np.ndarray:
        """:meth:`wait` for every server: a float array indexed like ``Cluster.servers``."""
        ...

    def busy_time(self, servers: np.ndarray) -> np.ndarray:
        """Per server of ``servers`` (indices), the worker-seconds it has served since the start, as a
        CPU-time counter reads: an autoscaler's utilisation is its increase (:mod:`sim.autoscale`).
        """
        ...


LATE = 2
"""SimPy priority of the sweeps under a ``quiet_ok`` engine, after URGENT (0) and NORMAL (1): such a sweep
sees the state at the end of its instant, however the other events of the instant were ordered."""


def trigger_at(env: simpy.Environment, event: simpy.Event, at: float, priority: int) -> None:
    """Trigger ``event`` at time ``at`` exactly, with SimPy ``priority``.

    SimPy schedules at ``now + delay``, which can round away from ``at`` when ``now < at / 2``. From a
    time ``r`` in ``[at / 2, at]``, ``at - r`` is exact (Sterbenz) and so is ``r + (at - r)``: when the
    direct way would miss, a relay halfway there books the event.
    """
    now = env.now
    delay = max(at - now, 0.0)
    if now + delay != at and delay > 0:
        relay = env.event()
        relay.callbacks.append(lambda _: trigger_at(env, event, at, priority))
        relay._ok, relay._value = True, None
        env.schedule(relay, simpy.events.URGENT, delay / 2)
        return
    event._ok, event._value = True, None  # what simpy.Timeout does, with a priority of our choice
    env.schedule(event, simpy.events.EventPriority(priority), delay)


class Sweeps:
    """A sweep every ``interval`` seconds: the base of the health checks, traffic manager, overload monitor.

    With an engine that is not ``quiet_ok`` (the request engine), each sweep is a timeout after the
    previous one and looks at every server, as it always did.

    With a ``quiet_ok`` engine, sweep ``k`` is due at ``k * interval``, with priority ``LATE + rank``
    (health checks, then traffic manager, then overload monitor, after every other event of the
    instant), but only sweeps that can change something run: :meth:`_sweep` returns the index of the
    next sweep at which a decision falls due if nothing changes (a streak reaching its threshold, a
    delay running out), or None; :meth:`wake` (the engine: anything may have changed; the cluster: this
    server's state changed) books the first sweep due at or after now. A sweep looks at every server
    after an engine wake, otherwise only at the servers the cluster named and those whose decision is
    due. Streaks are kept as the index of the sweep they began at, so sweeps that were not run count
    exactly as if they had been, and the run makes the same decisions at the same times as sweeping
    every server every interval would (``skip = False`` does that, for the tests to compare with).
    """

    skip = True  # quiet_ok engines: run only the sweeps that can change something

    def __init__(self, env: simpy.Environment, interval: float, rank: int, quiet: bool):
        self.env, self.interval, self.priority, self.quiet = env, interval, LATE + rank, quiet
        self.k = 0  # index of the latest sweep
        self.sweeps = 0  # sweeps run (for tests and measurements)
        self.next_k: int | None = None  # quiet: index of the sweep booked; None while asleep
        self.booking = 0  # quiet: generation of the sweep booked (a wake may book an earlier one)
        self.dirty_all = True  # quiet: the engine woke it since the latest sweep began
        self.dirty: set[int] = set()  # quiet: servers the cluster woke it for since then
        self.sweeping = False
        self.acting: int | None = None  # the server this sweep is changing (its wake is expected)

    def _start(self, cluster: Cluster, engine: Probe | None = None, floor: float | None = None) -> None:
        if not self.quiet:
            self.env.process(self._run())
            return
        cluster.wakers.append(self.wake)
        if engine is not None:
            engine.wakers.append(self.wake)
            if floor is not None:
                engine.wake_floor = min(engine.wake_floor, floor)
        self._book(1)

    def _sweep(self, k: int, dirty: set[int] | None) -> int | None:
        """Sweep ``k``: every server (``dirty`` None) or those in ``dirty`` and those due; the next sweep
        at which a decision falls due if nothing changes (quiet mode), or None.
        """
        raise NotImplementedError

    def _run(self) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.env.timeout(self.interval)
            self.k += 1
            self.sweeps += 1
            self._sweep(self.k, None)

    def _book(self, k: int) -> None:
        self.next_k = k
        self.booking += 1
        booking = self.booking
        event = self.env.event()
        event.callbacks.append(lambda _: self._due(booking, k))
        trigger_at(self.env, event, k * self.interval, self.priority)

    def _due(self, booking: int, k: int) -> None:
        if booking != self.booking:  # a wake booked an earlier sweep since
            return
        self.next_k = None
        dirty = None if self.dirty_all or not self.skip else self.dirty
        self.dirty_all, self.dirty = False, set()
        self.k = k
        self.sweeps += 1
        self.sweeping = True
        try:
            due = self._sweep(k, dirty)
        finally:
            self.sweeping = False
        if self.dirty_all or self.dirty or not self.skip:  # woken while sweeping (by its own changes, often)
            due = k + 1
        if due is not None:
            self._book(max(due, k + 1))

    def wake(self, server: int | None = None) -> None:
        """What the sweep reads may have changed (for ``server`` only, or anything): book the next sweep."""
        if server is not None and server == self.acting:  # our own change: its answers are the same
            return
        if server is None:
            self.dirty_all = True
        else:
            self.dirty.add(server)
        if self.sweeping or not self.quiet:
            return
        now, interval = self.env.now, self.interval
        k = max(self.k + 1, math.ceil(now / interval))
        while k * interval < now:
            k += 1
        while k - 1 > self.k and (k - 1) * interval >= now:
            k -= 1
        if self.next_k is None or k < self.next_k:
            self._book(k)
