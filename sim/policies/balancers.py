"""Load-balancer algorithms.

A balancer picks one server out of the pool the load balancer currently sends traffic to. Subclasses
override :meth:`Balancer.pick` and nothing else; register them with :func:`register_balancer` under the
name a scenario uses in ``policies.load_balancer.algorithm``.

A *pool* is a list of objects with an ``outstanding()`` method (requests sent to the server and not
yet answered); the balancer must not change it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from sim.rng import Stream

__all__ = ["Balancer", "BALANCERS", "register_balancer", "Backend"]


class Backend(Protocol):
    """What a balancer may ask of a server."""

    def outstanding(self) -> int:
        """Requests sent to this server and not yet answered."""
        ...


class Balancer:
    """Base class: pick the server for the next request. Override :meth:`pick`."""

    def __init__(self, rng: Stream):
        self.rng = rng

    def pick(self, pool: Sequence[Backend]) -> Backend:
        """Return one member of the non-empty ``pool``."""
        raise NotImplementedError


BALANCERS: dict[str, type[Balancer]] = {}


def register_balancer(name: str) -> Callable[[type[Balancer]], type[Balancer]]:
    """Class decorator: make a balancer available as ``algorithm: name``."""

    def add(cls: type[Balancer]) -> type[Balancer]:
        BALANCERS[name] = cls
        return cls

    return add


@register_balancer("round_robin")
class RoundRobin(Balancer):
    """Each server in turn."""

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.next = 0

    def pick(self, pool: Sequence[Backend]) -> Backend:
        i = self.next % len(pool)
        self.next = i + 1
        return pool[i]


@register_balancer("random")
class Random(Balancer):
    """A server chosen uniformly at random."""

    def pick(self, pool: Sequence[Backend]) -> Backend:
        return pool[int(self.rng.uniform() * len(pool))]


@register_balancer("least_outstanding")
class LeastOutstanding(Balancer):
    """The server with the fewest outstanding requests; ties go round-robin."""

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.next = 0

    def pick(self, pool: Sequence[Backend]) -> Backend:
        n = len(pool)
        start = self.next % n
        self.next = start + 1
        best = pool[start]
        best_load = best.outstanding()
        for k in range(1, n):
            server = pool[(start + k) % n]
            load = server.outstanding()
            if load < best_load:
                best, best_load = server, load
        return best


@register_balancer("power_of_two")
class PowerOfTwo(Balancer):
    """Two servers at random, the less loaded of them (Mitzenmacher's power of two choices)."""

    def pick(self, pool: Sequence[Backend]) -> Backend:
        n = len(pool)
        if n == 1:
            return pool[0]
        u = self.rng.uniform
        a = pool[int(u() * n)]
        b = pool[int(u() * n)]
        return b if b.outstanding() < a.outstanding() else a
