"""Load-balancer algorithms, each with two views.

Per request (the request engine), a balancer picks one server out of the pool the load balancer
currently sends traffic to (:meth:`Balancer.pick`). A *pool* is a list of objects with an
``outstanding()`` method (requests sent to the server and not yet answered); the balancer must not
change it.

Per step (the flow engine), when the balancer decides where the work goes (no mailbox databases), its
fluid view says how long a try waits at a server of the pool: :meth:`Balancer.fluid_wait` turns the
load into the probability that a try waits and the rate of its wait (exponential, of the right mean).
Tries are spread evenly over the pool; what differs is the spread of the waits (the formulas of a pool
of n servers of c workers are in :mod:`sim.balancing`):

- ``random``: Poisson arrivals at each server, at its own load (M/M/c, Allen–Cunneen for the service);
- ``round_robin``: every n-th try of a pool of n, Erlang-n arrivals at its own load, E_n/M/c solved
  exactly (:func:`sim.balancing.erlang_arrivals`);
- ``power_of_two``: the shorter of two servers drawn at random, at the pool's utilisation: the mean
  field with its 1/n correction, exact for pools of up to three (:func:`sim.balancing.two_choices`);
- ``least_outstanding``: the shortest queue of all, at the pool's utilisation: the pool's Markov chain
  (:func:`sim.balancing.shortest_queue`).

For service that is not exponential, the wait is scaled as Allen–Cunneen's ``(ca2 + cs2) / 2`` is,
relative to exponential service (``ca2`` = 1/n for round robin, 1 for the others).

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

from sim.balancing import erlang_arrivals, shortest_queue, two_choices
from sim.queueing import CAP, allen_cunneen

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


_TINY = 1e-12


def _pooled(sizes: np.ndarray, servers: PoolLoad, load: np.ndarray, ca2: np.ndarray,
            formula: Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per server, the wait ``formula(rho, n, c)`` gives at ``load`` for its pool of ``sizes`` servers (one
    call per pool size and workers), as (P(wait), rate of the wait per second): the rate per mean service
    scaled to the try's work, by ``(ca2 + cs2) / (ca2 + 1)`` for the service's variability, and never
    below 2% of ``c / per_try`` (as :func:`sim.queueing.allen_cunneen`).
    """
    s = servers
    rho = np.minimum(load, s.workers * CAP) / np.maximum(s.workers, 1.0)
    if rho.size and (sizes == sizes[0]).all() and (s.iworkers == s.iworkers[0]).all():  # one kind of pool
        wait_p, rate = formula(rho, int(sizes[0]), int(s.iworkers[0]))
    else:
        wait_p, rate = np.zeros(rho.shape), np.zeros(rho.shape)
        key = sizes * (int(s.iworkers.max(initial=0)) + 1) + s.iworkers
        for k in np.unique(key).tolist():
            at = key == k
            wait_p[at], rate[at] = formula(rho[at], int(sizes[at][0]), int(s.iworkers[at][0]))
    wait_p = np.where(load > 0, wait_p, 0.0)
    variability = np.maximum((ca2 + s.cs2) / (ca2 + 1.0), 0.05)
    theta = np.maximum(rate, 0.02 * s.workers) / np.maximum(s.per_try, _TINY) / variability
    return wait_p, theta


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
    """Each server in turn. Fluid: a server of a pool of n sees every n-th try, an Erlang-n stream: E_n/M/c."""

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
        sizes = np.maximum(np.rint(s.members), 1.0).astype(np.int64)
        alone = sizes == 1  # Poisson arrivals: M/M/c, as random
        if alone.all():
            return allen_cunneen(s.load, s.workers, s.iworkers, s.per_try, np.ones_like(s.load), s.cs2)
        wait_p, theta = _pooled(sizes, s, s.load, 1.0 / sizes, erlang_arrivals)
        if alone.any():
            poisson = allen_cunneen(s.load[alone], s.workers[alone], s.iworkers[alone], s.per_try[alone],
                                    np.ones(int(alone.sum())), s.cs2[alone])
            wait_p[alone], theta[alone] = poisson
        return wait_p, theta


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
    pool (counts move by one). Fluid: the chain of the pool's queues (:func:`sim.balancing.shortest_queue`):
    a try waits only when every worker of the pool is busy, less often than in one M/M/(n c) queue, but
    then for its own server's workers, longer.
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
        sizes = np.maximum(np.rint(s.serving), 1.0).astype(np.int64)
        return _pooled(sizes, s, s.shared, np.ones_like(s.load), shortest_queue)


@register_balancer("power_of_two")
class PowerOfTwo(Balancer):
    """Two servers at random (with replacement: the same one may be drawn twice), the less loaded of them
    (Mitzenmacher's power of two choices). Fluid: the supermarket model's fixed point for d = 2 with its
    1/n correction, exact for pools of up to three (:func:`sim.balancing.two_choices`).
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
        sizes = np.maximum(np.rint(s.serving), 1.0).astype(np.int64)
        return _pooled(sizes, s, s.shared, np.ones_like(s.load), two_choices)
