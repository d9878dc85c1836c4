"""Load-balancer algorithms, each with two views.

Per request (the request engine), a balancer picks one server out of the pool the load balancer
currently sends traffic to (:meth:`Balancer.pick`). A *pool* is a list of objects with an
``outstanding()`` method (requests sent to the server and not yet answered); the balancer must not
change it.

Per step (the flow engine), when the balancer decides where the work goes (no mailbox databases), its
fluid view says how long a try waits at a server of the pool: :meth:`Balancer.fluid_wait` turns the
load into the probability that a try waits and the rate of its wait (exponential). Tries are spread
evenly over the pool; what differs is the spread of the waits:

- ``random``: Poisson arrivals at each server, at its own load (M/M/c, Allen–Cunneen for the service);
- ``round_robin``: every k-th try of a pool of k, about Erlang-k arrivals (``ca2 = 1/k``), at its own load;
- ``power_of_two``: the supermarket model, JSQ(2) (:func:`sim.queueing.supermarket`), at the pool's
  utilisation (it evens the queues out);
- ``least_outstanding``: the shortest queue of all, about one M/M/(n c) queue for the n running servers
  of the pool (:func:`sim.queueing.pooled_wait`), at the pool's utilisation.

Subclasses override :meth:`Balancer.pick` and, to run on the flow engine, :meth:`Balancer.fluid_wait`
(setting :attr:`Balancer.supports_flow`); register them with :func:`register_balancer` under the name a
scenario uses in ``policies.load_balancer.algorithm``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

import numpy as np

from sim.queueing import allen_cunneen, pooled_wait, supermarket_wait

if TYPE_CHECKING:
    from sim.rng import Stream

__all__ = ["Balancer", "BALANCERS", "register_balancer", "Backend", "PoolLoad"]


class Backend(Protocol):
    """What a balancer may ask of a server."""

    def outstanding(self) -> int:
        """Requests sent to this server and not yet answered."""
        ...


B = TypeVar("B", bound=Backend)  # a pool's member type: a balancer returns one of the pool's own objects


@dataclass(frozen=True, slots=True)
class PoolLoad:
    """What the flow engine knows of servers in a balancer's pool: arrays, one element per server."""

    load: np.ndarray  # erlangs offered to the server in the last step (worker-seconds per second)
    shared: np.ndarray  # erlangs it would carry at its pool's utilisation (of the running members)
    workers: np.ndarray  # workers, as floats
    iworkers: np.ndarray  # workers, as integers
    per_try: np.ndarray  # mean work of a try, seconds
    cs2: np.ndarray  # squared coefficient of variation of the service time
    members: np.ndarray  # servers in its pool (1 outside a pool)
    serving: np.ndarray  # running servers in its pool (at least 1)


class Balancer:
    """Base class: pick the server for the next request. Override :meth:`pick`; for the flow engine,
    :meth:`fluid_wait` too, and set ``supports_flow = True``.

    A balancer that keeps an index of the servers' load (so a pick need not read the whole pool) sets
    ``tracks_load = True``: the engine then calls :meth:`changed` with a server whenever its
    ``outstanding()`` changed. A pool the engine rebuilt is a new list object.
    """

    supports_flow: ClassVar[bool] = False
    tracks_load: ClassVar[bool] = False

    def __init__(self, rng: Stream):
        self.rng = rng

    def pick(self, pool: Sequence[B]) -> B:
        """Return one member of the non-empty ``pool``."""
        raise NotImplementedError

    def pick_other(self, pool: Sequence[B], tried: Sequence[B]) -> B:
        """A member of ``pool`` for a retry, not one of ``tried`` if a few picks find another."""
        front = self.pick(pool)
        if tried and front in tried and len(pool) > len(tried):
            for _ in range(4):
                front = self.pick(pool)
                if front not in tried:
                    break
        return front

    def changed(self, server: Backend) -> None:
        """``server.outstanding()`` changed (called only when ``tracks_load``)."""

    @classmethod
    def fluid_wait(cls, servers: PoolLoad) -> tuple[np.ndarray, np.ndarray]:
        """Per server, (P(a try waits), rate of the exponential wait of those who wait), at its load, with
        tries spread evenly over its pool by this balancer.
        """
        raise NotImplementedError(f"the {cls.__name__} balancer has no fluid view: the flow engine cannot run it")


BALANCERS: dict[str, type[Balancer]] = {}


def register_balancer(name: str) -> Callable[[type[Balancer]], type[Balancer]]:
    """Class decorator: make a balancer available as ``algorithm: name``."""

    def add(cls: type[Balancer]) -> type[Balancer]:
        BALANCERS[name] = cls
        return cls

    return add


@register_balancer("round_robin")
class RoundRobin(Balancer):
    """Each server in turn. Fluid: a server of a pool of k sees every k-th try, about an Erlang-k stream."""

    supports_flow = True

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.next = 0

    def pick(self, pool: Sequence[B]) -> B:
        i = self.next % len(pool)
        self.next = i + 1
        return pool[i]

    @classmethod
    def fluid_wait(cls, servers: PoolLoad) -> tuple[np.ndarray, np.ndarray]:
        s = servers
        return allen_cunneen(s.load, s.workers, s.iworkers, s.per_try, 1.0 / s.members, s.cs2)


@register_balancer("random")
class Random(Balancer):
    """A server chosen uniformly at random. Fluid: Poisson arrivals at each server."""

    supports_flow = True

    def pick(self, pool: Sequence[B]) -> B:
        return pool[int(self.rng.uniform() * len(pool))]

    @classmethod
    def fluid_wait(cls, servers: PoolLoad) -> tuple[np.ndarray, np.ndarray]:
        s = servers
        return allen_cunneen(s.load, s.workers, s.iworkers, s.per_try, np.ones_like(s.load), s.cs2)


@register_balancer("least_outstanding")
class LeastOutstanding(Balancer):
    """The server with the fewest outstanding requests; ties go to the one whose count changed longest
    ago (round robin when all are idle). Members are kept in buckets by outstanding count (insertion
    ordered), with the lowest non-empty count known, so a pick and a change are O(1) however large the
    pool (counts move by one). Fluid: joining the shortest queue of all keeps every worker of the pool
    busy before anyone waits: about one M/M/(n c) queue.
    """

    supports_flow = True
    tracks_load = True

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.pool: Sequence[Backend] | None = None
        self.count: dict[Backend, int] = {}  # member -> the count it is filed under
        self.buckets: dict[int, OrderedDict[Backend, None]] = {}
        self.low = 0  # the lowest count with a member

    def _reset(self, pool: Sequence[Backend]) -> None:
        self.pool = pool
        self.count, self.buckets = {}, {}
        for server in pool:
            self._file(server, server.outstanding())
        self.low = min(self.buckets, default=0)

    def _file(self, server: Backend, count: int) -> None:
        self.count[server] = count
        bucket = self.buckets.get(count)
        if bucket is None:
            bucket = self.buckets[count] = OrderedDict()
        bucket[server] = None

    def changed(self, server: Backend) -> None:
        old = self.count.get(server)
        if old is None:  # not in the pool
            return
        new = server.outstanding()
        bucket = self.buckets[old]
        del bucket[server]
        self._file(server, new)
        if new < self.low:
            self.low = new
        elif not bucket and old == self.low:
            del self.buckets[old]
            self.low = min(self.buckets)

    def pick(self, pool: Sequence[B]) -> B:
        if pool is not self.pool:
            self._reset(pool)
        return next(iter(self.buckets[self.low]))  # type: ignore[return-value]

    def pick_other(self, pool: Sequence[B], tried: Sequence[B]) -> B:
        if pool is not self.pool:
            self._reset(pool)
        if len(pool) > len(tried):  # the least loaded server not tried yet
            for count in sorted(self.buckets):
                for server in self.buckets[count]:
                    if server not in tried:
                        return server  # type: ignore[return-value]
        return next(iter(self.buckets[self.low]))  # type: ignore[return-value]

    @classmethod
    def fluid_wait(cls, servers: PoolLoad) -> tuple[np.ndarray, np.ndarray]:
        s = servers
        return pooled_wait(s.shared, s.workers, s.iworkers, s.per_try, s.serving, s.cs2)


@register_balancer("power_of_two")
class PowerOfTwo(Balancer):
    """Two servers at random, the less loaded of them (Mitzenmacher's power of two choices). Fluid: the
    supermarket model's fixed point for d = 2 (a large pool; a small one waits longer).
    """

    supports_flow = True

    def pick(self, pool: Sequence[B]) -> B:
        n = len(pool)
        if n == 1:
            return pool[0]
        u = self.rng.uniform
        a = pool[int(u() * n)]
        b = pool[int(u() * n)]
        return b if b.outstanding() < a.outstanding() else a

    @classmethod
    def fluid_wait(cls, servers: PoolLoad) -> tuple[np.ndarray, np.ndarray]:
        s = servers
        return supermarket_wait(s.shared, s.workers, s.iworkers, s.per_try, np.full(s.load.shape, 2), s.cs2)
