"""Memory crashes: a server runs out of memory when an arriving request finds too many held.

Requests held = backlog / mean work + busy workers; past what fits beside the leak the server crashes.
Below that mean a burst can still get there, as in the request engine, which checks each arrival: the
crash is the *first* arrival to find the limit. Each step adds its expected number of such arrivals to
the server's exposure (:meth:`Memory.expose`); when the engine catches up with the simulation's time it
draws the crashes from the exposure gathered since the last draw (:meth:`Memory.draw`).
"""

from __future__ import annotations

import numpy as np

from sim.engine.flow.arrays import TINY
from sim.engine.flow.servers import Servers
from sim.queueing import first_passage_rate
from sim.scenario import ServerGroup

__all__ = ["Memory"]


class Memory:
    """Per server: whether its group sets a memory limit, the room beside the base, a request's share, and
    the crashes it has been exposed to since the last draw.
    """

    def __init__(self, groups: list[ServerGroup]):
        memory = [g.memory for g in groups]
        self.limited = np.array([m is not None for m in memory])
        self.any = bool(self.limited.any())
        self.free = np.array([(m.limit - m.base) if m else np.inf for m in memory])
        self.per_request = np.array([m.per_request if m else 1.0 for m in memory])
        self.exposure = np.zeros(len(groups))  # expected first arrivals at the limit since the last draw
        self.over = np.zeros(len(groups), dtype=bool)  # past the limit on the mean, at some step

    def expose(self, servers: Servers, t: float, h: float) -> None:
        """Add the step of length ``h`` ending at ``t`` (with the state at its end) to each server's exposure.

        A server crashes when an arriving request finds more requests held (queued and in service) than
        fit beside what its version leaked: when it finds ``m`` or more, ``m = floor(fits)``, counted
        beyond the fluid queue already there. Certain when the mean number held is past that; below it,
        a burst can still get there, at the rate :func:`~sim.queueing.first_passage_rate` of an M/M/c
        system that restarts empty after each crash (as the server does). Only below saturation: at or
        above it the queue is the fluid backlog, already counted. ``tests/validation/test_memory_bursts.py``
        checks the rate against the request engine's counted crashes.
        """
        if not self.any:
            return
        s = servers
        queued = s.backlog / np.maximum(s.per_try, TINY)
        held = queued + np.minimum(s.load, s.workers)
        leaked = s.leak * np.maximum(t - s.up_since, 0.0)
        fits = (self.free - leaked) / self.per_request
        mem = self.limited & s.up
        certain = mem & (held + 1 > fits)
        self.over |= certain
        near = np.nonzero(mem & ~certain & (s.rate > 0) & (s.load < 0.95 * s.workers))[0]
        if near.size:
            per_try = np.maximum(s.per_try[near], TINY)
            m = np.floor(fits[near] - queued[near])
            self.exposure[near] += h * first_passage_rate(s.rate[near], 1.0 / per_try, s.workers[near], m)

    def draw(self, rng: np.random.Generator) -> list[int]:
        """Servers that ran out of memory since the last draw: those past the limit at some step, and each
        exposed one with probability ``1 − exp(−exposure)`` (from ``rng``, the stream ``flow/memory``).
        """
        if not self.any:
            return []
        crash = self.over.copy()
        exposed = np.flatnonzero(self.exposure > 0.0)
        if exposed.size:
            crash[exposed] |= rng.random(exposed.size) < -np.expm1(-self.exposure[exposed])
        self.exposure[:] = 0.0
        self.over[:] = False
        return [int(i) for i in np.flatnonzero(crash)]
