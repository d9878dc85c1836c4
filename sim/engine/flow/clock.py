"""The flow engine's clock: lazy integration in steps, adaptive step lengths, and when the engine is quiet.

The engine's clock ``t`` trails the simulation's: before the cluster or a link changes, and at each step,
it integrates up to now with the state as it was (:meth:`Clock.integrate`), so a fault takes effect at
its own time, not at the next step. Steps never cross a metrics window, nor, while client retries are
pending and the run is not quiet, a retry slot. They grow to ``flow.max_step`` while the run is quiet
(:meth:`Clock.quiet`): no backlog, next to no client retries, next to no refusals (:data:`QUIET_SHED`), no
server warming up, every breaker closed, every health check certain to pass, no link saturated, and two
base steps since the cluster last changed. Between long steps the control plane's sweeps sleep: the engine
wakes them only when a server's answer could change (:meth:`Clock.settled`).
"""

from __future__ import annotations

import math

import numpy as np

from sim.engine.flow.arrays import some
from sim.engine.flow.classes import Classes
from sim.engine.flow.crashes import Memory
from sim.engine.flow.dependencies import Dependencies
from sim.engine.flow.retries import ClientRetries
from sim.engine.flow.servers import Servers
from sim.engine.flow.step import Step
from sim.network import Network
from sim.policies import Breaker

__all__ = ["Clock"]

QUIET_SHED = 1e-5
"""A class refusing less than this share of its tries lets the run be quiet (its refusals' retries are few,
and :meth:`Clock.quiet` asks that of the retries too). At 1e-6 the global day, whose queue limits' rooms refuse
about 1.5e-6 of the tries for a while around its peak (the front ends' short proxy tries among the mailbox
tries make their waits vary more), took 419 more steps (4,060) with the same answer to the last digit; every
flow-engine scenario's availability and events are the same at either."""


class Clock:
    """Where the engine has integrated to (``t``), and the steps that take it on to the simulation's time.

    ``busy`` is set while it integrates (a change announced meanwhile is the engine's own); ``calm`` counts
    the steps since the state last changed, ``steps`` every step integrated (the benchmarks report it).
    """

    def __init__(self, dt: float, max_dt: float, end: float, window: float, health_timeout: float, step: Step,
                 servers: Servers, classes: Classes, deps: Dependencies, retries: ClientRetries,
                 breakers: list[Breaker | None], network: Network, memory: Memory):
        self.dt, self.max_dt, self.end, self.window = dt, max_dt, end, window
        self.health_timeout = health_timeout
        self.step, self.servers, self.classes, self.deps = step, servers, classes, deps
        self.retries, self.breakers, self.network, self.memory = retries, breakers, network, memory
        self.t = 0.0  # integrated up to here
        self.busy = False
        # (:meth:`quiet`'s test of the servers and :meth:`_probe`'s answer, with the servers' state they hold for)
        self._quiet: tuple[np.ndarray, int, int, bool] | None = None
        self._probed: tuple[np.ndarray, int, int, np.ndarray] | None = None
        self.calm = 0  # steps since the state last changed
        self.steps = 0  # steps integrated

    def length(self) -> float:
        """Long steps while nothing (that matters) is queued, pending, refused, warming or breaking."""
        return self.max_dt if self.quiet() else self.dt

    def quiet(self) -> bool:
        """Whether the state would not change over a long step: no backlog, next to no client retries
        (:meth:`ClientRetries.few <sim.engine.flow.retries.ClientRetries.few>`), no retries' load waiting
        out a backoff (:class:`~sim.engine.flow.delays.Delays`), next to no refusals, no server
        warming up, every breaker closed, no health check in doubt and no link saturated, for at least two
        base steps since the last change.
        """
        s = self.servers
        s.end_warmups(self.t)
        few_retries = self.retries.few()
        if not (self.calm >= 2 and few_retries and not self.step.tries.deferrals.waiting
                and float(np.maximum.reduce(self.deps.backlog, initial=0.0)) < 1e-9
                and s.next_warm == math.inf
                and all(b is None or b.state == "closed" for b in self.breakers)
                and not any(link.saturated is not None for link in self.network.links)):
            return False
        ix = self.classes.current().rep  # one server of each class stands for all
        kept = self._quiet
        if kept is not None and kept[0] is ix and kept[1] == s.revision and kept[2] == s.advances:
            return kept[3]  # (the servers as they were when last asked)
        top = np.maximum.reduce  # (``x.max()`` without the method's Python wrapper: the same reduction)
        quiet = (float(top(s.at("shed", ix), initial=0.0)) < QUIET_SHED
                 and float(top(s.at("backlog", ix), initial=0.0)) < 1e-9
                 and float(top(self._probe(ix), initial=0.0, where=s.up[ix])) < 1e-6)
        self._quiet = (ix, s.revision, s.advances, quiet)
        return quiet

    def _probe(self, ix: np.ndarray) -> np.ndarray:
        """``servers.probe_failure(health_timeout, ix)``, kept while the servers are as they were (no step and
        no change since: the same ``advances`` and ``revision``): :meth:`settled` and the next :meth:`quiet`
        ask it of the same state. Read it, never write it.
        """
        s = self.servers
        kept = self._probed
        if kept is None or kept[0] is not ix or kept[1] != s.revision or kept[2] != s.advances:
            kept = self._probed = (ix, s.revision, s.advances, s.probe_failure(self.health_timeout, ix))
        return kept[3]

    def next_stop(self, end: float) -> float:
        """Where the engine's next step should end, if nothing changes before: a step's length on from ``t``,
        never past the metrics window (nor ``end``), so that long steps stay on the windows' grid rather
        than being split in two at each boundary.
        """
        t = self.t
        boundary = (math.floor(t / self.window + 1e-9) + 1) * self.window
        return min(t + self.length(), boundary, end)

    def integrate(self, now: float) -> None:
        """Step from ``t`` to ``now``; each step adds to the servers' memory-crash exposure."""
        window = self.window
        while self.t < now - 1e-12:
            t = self.t
            h = now - t
            boundary = (math.floor(t / window + 1e-9) + 1) * window  # never cross a window
            h = min(h, boundary - t, self.max_dt)
            if h > self.dt and not self.quiet():  # retries may be pending, or about to be
                slot_end = (math.floor(t / self.dt + 1e-9) + 1) * self.dt  # nor a retry slot
                h = min(h, slot_end - t)
            if t < self.end < t + h:
                h = self.end - t
            self.steps += 1
            self.step.run(t, max(h, 1e-9))
            self.memory.expose(self.servers, t + h, h)
            self.t = t + h
            self.calm += 1

    def settled(self, wake_floor: float) -> bool:
        """Every running server passes a health check for certain and waits less than ``wake_floor``
        (set by the control plane): nothing a sweep decides can change.
        """
        s = self.servers
        ix = self.classes.current().rep
        up = s.up[ix]
        if not some(up):
            return True
        top = np.maximum.reduce  # (``x.max()`` without the method's Python wrapper: the same reduction)
        return (float(top(self._probe(ix)[up])) <= 1e-6
                and float(top(s.wait_now(ix)[up])) < wake_floor)
