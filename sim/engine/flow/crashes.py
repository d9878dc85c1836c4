"""Memory crashes: a server runs out of memory when an arriving request finds too many held.

Requests held = backlog / mean work + busy workers; past what fits beside the leak the server crashes.
Below that mean a burst can still get there, as in the request engine, which checks each arrival: the
crash is the *first* arrival to find the limit, drawn per step from its rate (see :func:`crashes`).
"""

from __future__ import annotations

import numpy as np

from sim.engine.flow.servers import TINY, Servers
from sim.queueing import poisson_share
from sim.scenario import ServerGroup

__all__ = ["Memory", "crashes"]


class Memory:
    """Per server: whether its group sets a memory limit, the room beside the base, and a request's share."""

    def __init__(self, groups: list[ServerGroup]):
        memory = [g.memory for g in groups]
        self.limited = np.array([m is not None for m in memory])
        self.free = np.array([(m.limit - m.base) if m else np.inf for m in memory])
        self.per_request = np.array([m.per_request if m else 1.0 for m in memory])


def crashes(servers: Servers, memory: Memory, t: float, h: float, rng: np.random.Generator) -> list[int]:
    """Servers that run out of memory in the last step (of length ``h``, ending at ``t``).

    A server crashes when an arriving request finds more requests held (queued and in service) than
    fit beside what its version leaked: when it finds ``m`` or more, ``m = floor(fits)``. Certain when
    the mean number held is past that; below it, a burst can still get there. The crash is the first
    such arrival, so its rate is the rate at which the number in system crosses up into ``m``,
    ``rate · P(N = m − 1)``, times the chance that the next event there is an arrival, not a departure,
    ``rate / (rate + min(m, c) · μ)`` (an excursion above the level is seen by many arrivals, but
    crashes once). P is the stationary M/M/c distribution (arrivals see it, PASTA: below c workers
    the Poisson shape scaled to 1 − C, above it C (1 − ρ) ρ^k), the level is counted beyond the fluid
    queue already there, and the crash is drawn with probability ``1 − exp(−rate · h · ...)`` from
    ``rng`` (the stream ``flow/memory``). ``tests/validation/test_memory_bursts.py`` checks the rate
    against the request engine's counted crashes.
    """
    if not memory.limited.any():
        return []
    s = servers
    queued = s.backlog / np.maximum(s.per_try, TINY)
    held = queued + np.minimum(s.load, s.workers)
    leaked = s.leak * np.maximum(t - s.up_since, 0.0)
    fits = (memory.free - leaked) / memory.per_request
    mem = memory.limited & s.up
    certain = mem & (held + 1 > fits)
    # Only below saturation: at or above it the queue is the fluid backlog, already counted.
    near = np.nonzero(mem & ~certain & (s.rate > 0) & (s.load < 0.95 * s.workers))[0]
    crash = certain.copy()
    if near.size:
        c = s.workers[near]
        a = s.load[near]
        m = np.floor(fits[near] - queued[near])  # beyond the fluid queue already there
        rho = np.minimum(a / c, 0.999999)
        erlang_c = s.wait_p[near]
        x = m - 1.0
        above = erlang_c * (1.0 - rho) * rho ** np.maximum(x - c, 0.0)  # P(N = c + k) = C (1 - rho) rho^k
        below = np.zeros(near.size)
        few = np.flatnonzero((x >= 0.0) & (x < c))  # the level is below the workers: the Poisson part
        below[few] = [poisson_share(xi, ai, int(ci)) for xi, ai, ci in
                      zip(x[few].tolist(), a[few].tolist(), c[few].tolist(), strict=True)]
        below *= 1.0 - erlang_c
        lam = s.rate[near]
        departures = np.minimum(np.maximum(m, 0.0), c) / np.maximum(s.per_try[near], TINY)
        next_arrival = lam / np.maximum(lam + departures, TINY)
        p = np.where(x < 0.0, 1.0, np.where(x >= c, above, below) * next_arrival)
        expected = lam * h * p
        draw = rng.random(near.size) < 1.0 - np.exp(-expected)
        crash[near] = draw
    return [int(i) for i in np.nonzero(crash)[0]]
