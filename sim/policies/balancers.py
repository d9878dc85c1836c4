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
  (:func:`sim.balancing.shortest_queue`);
- ``weighted_least_outstanding``: the fewest outstanding requests per worker; on a pool of equal servers
  it is ``least_outstanding`` (the same picks), and so is its fluid view (a pool of unequal servers is
  refused on the flow engine at load, :func:`sim.policies.unsupported_on_flow`).

``least_response_time`` (EWMA of the servers' response times) and ``consistent_hash`` (mailbox affinity)
have no fluid view: the flow engine keeps no response times per server, and a ring's share per server is
not an even spread.

For service that is not exponential, the wait is scaled as Allen–Cunneen's ``(ca2 + cs2) / 2`` is,
relative to exponential service (``ca2`` = 1/n for round robin, 1 for the others).

Subclasses override :meth:`Balancer.pick` and, to run on the flow engine, :meth:`Balancer.fluid_wait`
(setting :attr:`Balancer.supports_flow`); to learn the servers' response times, :meth:`Balancer.observe`
(setting :attr:`Balancer.observes`); to pick by the request's mailbox database, they take ``key`` in
:meth:`Balancer.pick` and :meth:`Balancer.pick_other` (setting :attr:`Balancer.uses_key`). Register
them with :func:`register_balancer` under the name a scenario uses in ``policies.load_balancer.algorithm``.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

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

    A balancer that sets ``observes = True`` is told each try's response time as the answer (or its
    timeout) comes back to the load balancer (:meth:`observe`). One that sets ``uses_key = True`` is
    given the request's mailbox database as ``key`` in :meth:`pick` and :meth:`pick_other` (None for a
    request with none); the others are called without it. Runs of the others pay for neither.
    """

    supports_flow: ClassVar[bool] = False
    tracks_load: ClassVar[bool] = False
    observes: ClassVar[bool] = False
    uses_key: ClassVar[bool] = False
    uses_workers: ClassVar[bool] = False  # its fluid view holds only for pools of servers of equal workers

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

    def observe(self, server: Backend, latency: float) -> None:
        """A try sent to ``server`` was answered, or timed out, ``latency`` seconds after it was sent
        (called only when ``observes``). The try is over, so the server's ``outstanding()`` changed too:
        this call stands for :meth:`changed`, which does not follow.
        """

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


class _Ranked(Balancer):
    """Base of the balancers that pick the member of the lowest score, ``factor * (outstanding + PLUS)``
    with a factor per server; ties go to the one whose score changed longest ago. Members are kept in a
    heap of (score, sequence, server) with lazy deletion: a change pushes a new entry and makes the old
    one stale (its sequence is no longer the member's), and a pick pops stale entries off the top. A pick
    and a change are O(log n) (amortised; the heap is rebuilt when stale entries outnumber the members
    three to one).

    Subclasses override :meth:`factor` and set :attr:`PLUS`; a factor that changes is set in
    ``self.factors`` and takes effect at the server's next :meth:`changed`.
    """

    tracks_load = True
    PLUS: ClassVar[int] = 0

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.pool: Sequence[Backend] | None = None
        self.factors: dict[Backend, float] = {}  # member -> its factor (members only)
        self.seq: dict[Backend, int] = {}  # member -> the sequence of its live entry
        self.heap: list[tuple[float, int, Any]] = []
        self.n = 0  # entries pushed: the next sequence
        self.limit = 64

    def factor(self, server: Backend) -> float:
        """The server's factor, when the pool is built."""
        raise NotImplementedError

    def _reset(self, pool: Sequence[Backend]) -> None:
        self.pool = pool
        self.factors = {server: self.factor(server) for server in pool}
        self.seq, self.heap = {}, []
        self.limit = 4 * len(self.factors) + 64
        self._rebuild(list(pool))

    def _rebuild(self, order: list[Backend]) -> None:
        """Entries afresh for the members, ``order`` the oldest change first."""
        factors, plus, heap = self.factors, self.PLUS, []
        for server in order:
            self.seq[server] = self.n
            heap.append((factors[server] * (server.outstanding() + plus), self.n, server))
            self.n += 1
        heapq.heapify(heap)
        self.heap = heap

    def changed(self, server: Backend) -> None:
        factor = self.factors.get(server)
        if factor is None:  # not in the pool
            return
        n = self.n
        self.seq[server] = n
        self.n = n + 1
        heap = self.heap
        entry = (factor * (server.outstanding() + self.PLUS), n, server)
        if heap and heap[0][2] is server:  # the one just picked, as a rule: its old entry makes way at once
            heapq.heapreplace(heap, entry)
            return
        heapq.heappush(heap, entry)
        if len(heap) > self.limit:  # compact: keep the live entries only
            seq = self.seq
            self.heap = [e for e in heap if seq[e[2]] == e[1]]
            heapq.heapify(self.heap)

    def pick(self, pool: Sequence[B]) -> B:
        if pool is not self.pool:
            self._reset(pool)
        heap, seq = self.heap, self.seq
        top = heap[0]
        while seq[top[2]] != top[1]:
            heapq.heappop(heap)
            top = heap[0]
        return top[2]

    def pick_other(self, pool: Sequence[B], tried: Sequence[B]) -> B:
        if pool is not self.pool:
            self._reset(pool)
        if len(pool) <= len(tried):
            return self.pick(pool)
        heap, seq, aside = self.heap, self.seq, []  # the best server not tried yet: set the tried ones aside
        while True:
            entry = heap[0]
            if seq[entry[2]] != entry[1]:
                heapq.heappop(heap)
            elif entry[2] in tried:
                aside.append(heapq.heappop(heap))
            else:
                break
        for back in aside:  # ... and put them back
            heapq.heappush(heap, back)
        return entry[2]


@register_balancer("weighted_least_outstanding")
class WeightedLeastOutstanding(Balancer):
    """The server with the fewest outstanding requests per worker (a server with twice the workers takes
    twice the requests); ties go to the server with more workers, then to the one whose count changed
    longest ago. A member without a ``workers`` attribute counts as one worker. The pool is split by
    workers, each part indexed as :class:`LeastOutstanding` indexes its pool (O(1) a change), and a pick
    compares the parts' least loaded: O(k) for k sizes of server in the pool, one in most pools. So on a
    pool of equal servers it is ``least_outstanding``, pick for pick. Fluid: there it takes
    ``least_outstanding``'s view; the flow engine refuses it on a datacenter of unequal servers
    (:func:`sim.policies.unsupported_on_flow`).

    >>> from sim.rng import Streams
    >>> class S:
    ...     def __init__(self, workers): self.workers, self.load = workers, 0
    ...     def outstanding(self): return self.load
    >>> big, small = S(4), S(1)
    >>> wlo = WeightedLeastOutstanding(Streams(1).stream("b"))
    >>> picks = []
    >>> for _ in range(10):
    ...     s = wlo.pick([big, small]); s.load += 1; wlo.changed(s); picks.append(s is big)
    >>> sum(picks), len(picks) - sum(picks)
    (8, 2)
    """

    supports_flow = True
    tracks_load = True
    uses_workers = True

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.pool: Sequence[Backend] | None = None
        self.parts: list[tuple[int, list[Backend], LeastOutstanding]] = []  # (workers, members, index), most first
        self.part_of: dict[Backend, LeastOutstanding] = {}

    def _reset(self, pool: Sequence[Backend]) -> None:
        self.pool = pool
        members: dict[int, list[Backend]] = {}
        for server in pool:
            members.setdefault(getattr(server, "workers", 1), []).append(server)
        if len(members) == 1:  # one size: the pool itself, so that the part's index sees it unchanged
            members = {next(iter(members)): list(pool)}
        self.parts = []
        for workers in sorted(members, reverse=True):
            index = LeastOutstanding(self.rng)
            part = pool if len(members) == 1 else members[workers]
            index._reset(part)
            self.parts.append((workers, part, index))  # type: ignore[arg-type]
        self.part_of = {server: index for _, part, index in self.parts for server in part}
        # One size (most pools): a change goes straight to the part's index, at least_outstanding's cost.
        self.changed = self.parts[0][2].changed if len(self.parts) == 1 else self._changed  # type: ignore[method-assign]

    def changed(self, server: Backend) -> None:
        index = self.part_of.get(server)
        if index is not None:
            index.changed(server)

    _changed = changed

    def pick(self, pool: Sequence[B]) -> B:
        if pool is not self.pool:
            self._reset(pool)
        parts = self.parts
        if len(parts) == 1:
            index = parts[0][2]
            return next(iter(index.buckets[index.low]))  # type: ignore[return-value]
        best, score = None, 0.0
        for workers, part, index in parts:  # the most workers first: a tie stays with the bigger server
            if index.buckets:
                s = index.low / workers
                if best is None or s < score:
                    best, score = index.pick(part), s
        return best  # type: ignore[return-value]

    def pick_other(self, pool: Sequence[B], tried: Sequence[B]) -> B:
        if pool is not self.pool:
            self._reset(pool)
        best, score = None, 0.0
        if len(pool) > len(tried):
            for workers, part, index in self.parts:
                server = index.pick_other(part, tried)
                if server not in tried:
                    s = server.outstanding() / workers
                    if best is None or s < score:
                        best, score = server, s
        return best if best is not None else self.pick(pool)  # type: ignore[return-value]

    fluid_wait = LeastOutstanding.fluid_wait


@register_balancer("least_response_time")
class LeastResponseTime(_Ranked):
    """The server of the lowest ``ewma * (outstanding + 1)``, NGINX's and Envoy's "least time": ``ewma`` is
    the exponentially weighted mean of its observed response times (each answer, or timeout, weighs
    :attr:`WEIGHT`); a server not yet observed counts at the first response time the balancer saw (at 1
    before any: least outstanding). So a slow server gets fewer requests, in proportion to its slowness,
    and still some, which lets it show that it has recovered. A server keeps its mean when it leaves the
    pool and returns. No fluid view: the flow engine keeps no response times per server.
    """

    observes = True
    PLUS = 1
    WEIGHT: ClassVar[float] = 0.2
    """The newest response time's weight in the mean: about the last 1 / WEIGHT answers count."""

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.ewma: dict[Backend, float] = {}
        self.prior: float | None = None  # the first response time seen: the mean of a server not yet observed

    def factor(self, server: Backend) -> float:
        mean = self.ewma.get(server)
        if mean is None:
            mean = self.prior if self.prior is not None else 1.0
        return mean

    def observe(self, server: Backend, latency: float) -> None:
        ewma = self.ewma
        mean = ewma.get(server)
        mean = ewma[server] = latency if mean is None else mean + self.WEIGHT * (latency - mean)
        if self.prior is None:
            self.prior = latency
            if self.pool is not None:  # every server not yet observed moves to the prior
                for member in self.factors:
                    self.factors[member] = self.factor(member)
                self._rebuild(sorted(self.seq, key=self.seq.__getitem__))
                return
        if server in self.factors:
            self.factors[server] = mean
            self.changed(server)


def _point(text: str) -> int:
    """A fixed 64-bit hash (blake2b): the same in every process, unlike ``hash()``."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@register_balancer("consistent_hash")
class ConsistentHash(Balancer):
    """Mailbox affinity: a request goes to the front end its mailbox database hashes to, on a ring of the
    pool's servers, each at :attr:`VNODES` points (virtual nodes) hashed from its name; the first point
    clockwise from the database's own. So the requests of a mailbox go to one front end (its caches stay
    warm), which proxies them to the server holding the database's active copy (the front end is that
    server only by chance: affinity is to a front end, not to the copy). When a server leaves the pool,
    only the mailboxes on its arcs move, to the next points clockwise (about 1/n of them); when it
    returns, they come back. A retry goes to the next distinct server clockwise not tried yet. A request
    with no mailbox database (``key`` None) goes to a server at random. Picks are O(log(n · VNODES)); the
    ring is rebuilt when the pool is. No fluid view: a ring gives each server an uneven share.

    >>> from sim.rng import Streams
    >>> class S:
    ...     def __init__(self, name): self.name = name
    ...     def outstanding(self): return 0
    >>> pool = [S(f"s{i}") for i in range(4)]
    >>> ring = ConsistentHash(Streams(1).stream("b"))
    >>> ring.pick(pool, key=7) is ring.pick(pool, key=7)
    True
    """

    uses_key = True
    VNODES: ClassVar[int] = 100
    """Points per server on the ring: the shares' spread falls as 1/sqrt(VNODES)."""

    def __init__(self, rng: Stream):
        super().__init__(rng)
        self.pool: Sequence[Backend] | None = None
        self.points: list[int] = []
        self.owners: list[Any] = []
        self.keys: dict[Any, int] = {}  # key -> its point (hashed once)

    def _reset(self, pool: Sequence[Backend]) -> None:
        self.pool = pool
        ring = sorted((_point(f"{getattr(server, 'name', server)}#{v}"), i)
                      for i, server in enumerate(pool) for v in range(self.VNODES))
        self.points = [p for p, _ in ring]
        self.owners = [pool[i] for _, i in ring]

    def _start(self, key: Any) -> int:
        point = self.keys.get(key)
        if point is None:
            point = self.keys[key] = _point(f"db{key}")
        return bisect.bisect_left(self.points, point) % len(self.points)

    def pick(self, pool: Sequence[B], key: Any = None) -> B:
        if key is None:
            return pool[int(self.rng.uniform() * len(pool))]
        if pool is not self.pool:
            self._reset(pool)
        return self.owners[self._start(key)]

    def pick_other(self, pool: Sequence[B], tried: Sequence[B], key: Any = None) -> B:
        if key is None:
            return super().pick_other(pool, tried)
        if pool is not self.pool:
            self._reset(pool)
        i = self._start(key)
        owners, m = self.owners, len(self.owners)
        if len(pool) > len(tried):
            for k in range(m):
                server = owners[(i + k) % m]
                if server not in tried:
                    return server
        return owners[i]
