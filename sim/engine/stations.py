"""A server as the request engine books it: a FIFO queue of workers whose requests' start and end are known
when they arrive (:class:`Station`), or, under adaptive LIFO or CoDel, decided when a worker frees up
(:class:`EventStation`).

The earliest-free-worker recursion for FIFO G/G/c: ``free`` is a heap of the times each worker is next
free, so a request arriving at ``now`` starts at ``max(now, free[0])`` and ends a service later. A crash
bumps ``epoch``; the engine drops the stages booked under an older one.

Bulkheads (:meth:`Station.partition`) split a booking station's workers into compartments, each its own
FIFO queue of its own workers: compartment 0 is the shared one (``free``), the others are reserved.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Any

import simpy

from sim.policies.codel import CoDel
from sim.scenario import Memory
from sim.schedule import later

__all__ = ["Station", "EventStation"]

_heappush, _heappop, _heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
_INF = float("inf")


class Station:
    """A FIFO queue with ``workers`` servers and room for ``queue_limit`` waiting requests.

    ``speed`` scales service (a bad version's latency, a cold cache after a restart); ``error_rate``
    is the share of served requests answered with an error; ``memory`` and ``leak_rate`` decide when
    it runs out of memory.
    """

    __slots__ = ("env", "index", "name", "workers", "free", "waiting", "pending", "queue_limit", "sample",
                 "epoch", "up", "datacenter", "frontend_time", "speed", "warm_until", "warm_speed",
                 "error_rate", "memory", "leak_rate", "up_since", "inflight", "parts", "queues", "queue_limits",
                 "worked")

    def __init__(
        self,
        env: simpy.Environment,
        index: int,
        name: str,
        workers: int,
        queue_limit: int | None,
        sample: Callable[[], float],
        datacenter: int = -1,
        frontend_time: float = 0.0,
        memory: Memory | None = None,
    ):
        self.env = env
        self.index = index
        self.name = name
        self.workers = workers
        self.free = [0.0] * workers  # heap: when each worker is next free
        self.waiting: deque[float] = deque()  # start times of admitted requests still waiting
        self.pending: list[float] = []  # heap: completion times of admitted requests
        self.queue_limit = queue_limit
        self.sample = sample
        self.epoch = 0
        self.up = True
        self.datacenter = datacenter
        self.frontend_time = frontend_time
        self.speed = 1.0
        self.warm_until = 0.0
        self.warm_speed = 1.0
        self.error_rate = 0.0
        self.memory = memory
        self.leak_rate = 0.0  # bytes per second while up
        self.up_since = 0.0
        self.inflight = 0  # the load balancers' tries sent to it and not yet answered (or given up on)
        # Bulkheads: per compartment, its free-worker heap and its waiting starts (None: one compartment)
        self.parts: list[list[float]] | None = None
        self.queues: list[deque[float]] | None = None
        self.queue_limits: list[int | None] = [queue_limit]
        self.worked = 0.0  # worker-seconds booked since the start, less what crashes lost (see busy_time)

    def partition(self, reserved: list[int], queue_limits: list[int | None]) -> None:
        """Bulkheads: reserve compartments of ``reserved`` workers (1, 2, ... in order), each a FIFO queue
        of its own with room for its ``queue_limits`` waiting requests (None: the server's
        ``queue_limit``); compartment 0 keeps the other workers and the server's queue limit. Only the
        shared compartment answers :meth:`wait` (what health checks see).
        """
        shared = self.workers - sum(reserved)
        if shared < 1 or min(reserved, default=1) < 1:
            raise ValueError(f"{self.name}: {self.workers} workers cannot hold compartments of {reserved} and a "
                             "shared one")
        self.free = [0.0] * shared
        self.parts = [self.free] + [[0.0] * k for k in reserved]
        self.queues = [self.waiting] + [deque() for _ in reserved]
        self.queue_limits = [self.queue_limit] + [self.queue_limit if q is None else q for q in queue_limits]

    def first_free(self, part: int = 0) -> float:
        """When the earliest-free worker of compartment ``part`` can take a request."""
        return self.free[0] if self.parts is None else self.parts[part][0]

    def outstanding(self) -> int:
        """The load balancers' tries sent to this server and not yet answered or timed out: what a
        balancer sees (a crashed server that answers nothing keeps its tries until they time out).
        """
        return self.inflight

    def held(self) -> int:
        """Requests admitted and not yet finished: what it holds in memory."""
        now = self.env.now
        pending = self.pending
        while pending and pending[0] <= now:
            _heappop(pending)
        return len(pending)

    def wait(self, now: float) -> float:
        """How long a request arriving now would wait for a worker."""
        return max(0.0, self.free[0] - now)

    def busy_time(self, now: float) -> float:
        """Worker-seconds served by ``now`` since the start: what was booked less what is booked past now
        (a worker's booked work is one run from the request it took at or before now), as a CPU-time
        counter reads.
        """
        return self.worked - self._ahead(now)

    def _ahead(self, now: float) -> float:
        heaps = self.parts if self.parts is not None else (self.free,)
        return sum(end - now for free in heaps for end in free if end > now)

    def service_factor(self, now: float) -> float:
        """Multiplier on service times now (1 is nominal)."""
        speed = self.speed * (self.warm_speed if now < self.warm_until else 1.0)
        return 1.0 / speed

    def out_of_memory(self, now: float) -> bool:
        """Whether one more request would take it past its memory limit."""
        memory = self.memory
        if memory is None:
            return False
        leaked = self.leak_rate * (now - self.up_since) if self.leak_rate else 0.0
        room = memory.requests_held(leaked)
        return self.held_at_most() + 1 > room and self.held() + 1 > room  # counts only when it could matter

    def held_at_most(self) -> int:
        """An upper bound of :meth:`held`, without counting: what is pending, finished or not."""
        return len(self.pending)

    def admit(self, now: float, service: float, deadline: float = _INF, max_wait: float = _INF,
              part: int = 0) -> float:
        """Book a request arriving at ``now`` (in bulkhead compartment ``part``); return its completion
        time, or -1 if it is refused.

        It is refused when it would have to wait and the queue is full, or wait longer than
        ``max_wait``. With a finite ``deadline`` (deadline propagation), a request that would start
        after it uses no worker and one that would run past it stops there.
        """
        if part and self.parts is not None and self.queues is not None:
            free, waiting, queue_limit = self.parts[part], self.queues[part], self.queue_limits[part]
        else:
            free, waiting, queue_limit = self.free, self.waiting, self.queue_limit
        first = free[0]
        if first > now:
            while waiting and waiting[0] <= now:
                waiting.popleft()
            if queue_limit is not None and len(waiting) >= queue_limit:
                return -1.0
            if first - now > max_wait:
                return -1.0
            waiting.append(first)
            start = first
        else:
            start = now
        if start >= deadline:
            return start  # dropped when it reaches the head: no worker time used
        end = start + service
        if end > deadline:
            end = deadline
        self.worked += end - start
        _heapreplace(free, end)
        pending = self.pending  # only unfinished requests, so it stays as small as the queue
        if pending and pending[0] <= now:
            _heapreplace(pending, end)
            while pending and pending[0] <= now:
                _heappop(pending)
        else:
            _heappush(pending, end)
        return end

    def crash(self) -> None:
        """Lose everything queued and running."""
        self.worked -= self._ahead(self.env.now)  # never served
        self.up = False
        self.epoch += 1
        for waiting in self.queues if self.queues is not None else (self.waiting,):
            waiting.clear()
        self.pending.clear()

    def restart(self, now: float) -> None:
        """Come back empty at ``now``."""
        self.up = True
        self.up_since = now
        if self.parts is None:
            self.free = [now] * self.workers
        else:
            for free in self.parts:
                free[:] = [now] * len(free)


class EventStation(Station):
    """A server whose service order is decided when a worker frees up, not when a request arrives.

    Adaptive LIFO needs it: while the expected wait exceeds ``lifo_after``, a free worker takes the
    newest request instead of the oldest (and, with deadline propagation, skips those whose caller
    has given up). So does CoDel (``codel``): it judges each request a free worker takes by how long it
    waited and may drop it instead (``on_drop(station)`` is told). A request that waited for a worker is
    told to ``on_wait(wait)`` when one takes it (the queue's figures). Each request costs a completion event,
    so the engine uses these stations only when ``server.lifo_when_waiting`` or ``server.codel`` is set.
    Requests are submitted with a callback (:meth:`submit`), called with True when the service ends and
    False when CoDel drops the request; :meth:`admit` books one without a callback, for callers that only
    need an estimate of the end.
    """

    __slots__ = ("queue", "busy", "lifo_after", "mean_service", "cancel", "codel", "on_drop", "on_wait", "since")

    def __init__(self, *args: Any, lifo_after: float, mean_service: float, cancel: bool,
                 codel: CoDel | None = None, on_drop: Callable[[EventStation], None] | None = None,
                 on_wait: Callable[[float], None] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.queue: deque[list[Any]] = deque()  # [service, deadline, done, queued at, tail]
        self.busy = 0
        self.since = 0.0  # when ``busy`` last changed (busy_time)
        self.lifo_after = lifo_after
        self.mean_service = mean_service
        self.cancel = cancel
        self.codel = codel
        self.on_drop = on_drop
        self.on_wait = on_wait

    def held(self) -> int:
        return len(self.queue) + self.busy

    def busy_time(self, now: float) -> float:
        return self.worked + self.busy * (now - self.since)

    def _account(self, now: float) -> None:
        """Add the busy workers' time since ``busy`` last changed (before it changes)."""
        self.worked += self.busy * (now - self.since)
        self.since = now

    def held_at_most(self) -> int:
        return self.held()

    def wait(self, now: float) -> float:
        if self.busy < self.workers:
            return 0.0
        return self.queue_wait(now, len(self.queue) + 1)

    def queue_wait(self, now: float, ahead: int) -> float:
        """Expected wait behind ``ahead`` queued requests (from the nominal mean service time)."""
        return ahead * self.mean_service * self.service_factor(now) / self.workers

    def submit(self, now: float, service: float, deadline: float, max_wait: float,
               done: Callable[[bool], None] | None, tail: float = 0.0) -> bool:
        """Queue a request; ``done(True)`` is called when its service ends, ``done(False)`` if CoDel drops
        it. False: refused (queue full, or it would wait longer than ``max_wait``). The last ``tail`` of
        ``service`` keeps the worker busy after the answer (``done`` is called before it): the worker time
        its dependency calls held before (:meth:`sim.engine.requests.RequestEngine._stage`).
        """
        item = [service, deadline, done, now, tail]
        if self.busy < self.workers:
            if self.codel is not None:  # taken at once: no standing queue
                self.codel.idle()
            self._start(now, item)
            return True
        if self.queue_limit is not None and len(self.queue) >= self.queue_limit:
            return False
        if self.wait(now) > max_wait:
            return False
        self.queue.append(item)
        return True

    def admit(self, now: float, service: float, deadline: float = _INF, max_wait: float = _INF,
              part: int = 0) -> float:
        """Queue a request nobody waits on; return an estimate of its end (-1 if refused). No bulkheads
        here (``part`` is always 0).
        """
        wait = self.wait(now)
        if not self.submit(now, service, deadline, max_wait, None):
            return -1.0
        return now + wait + service

    def _start(self, now: float, item: list[Any]) -> None:
        self._account(now)
        self.busy += 1
        service, deadline = item[0], item[1]
        end = min(now + service, deadline) if self.cancel else now + service
        epoch = self.epoch
        answer = min(end, now + service - item[4])
        if answer < end and item[2] is not None:  # answered before the worker frees: the held tail
            later(self.env, answer - now, lambda _: self._answer(item, epoch))
        later(self.env, end - now, lambda _: self._finish(item, epoch))

    def _answer(self, item: list[Any], epoch: int) -> None:
        """The request's own work is done: it is answered (unless the server crashed meanwhile)."""
        done = item[2]
        if epoch == self.epoch and done is not None:
            item[2] = None  # (answered once)
            done(True)

    def _finish(self, item: list[Any], epoch: int) -> None:
        if epoch != self.epoch:  # it crashed meanwhile: the work is gone, and so is the worker count
            return
        self._account(self.env.now)
        self.busy -= 1
        if item[2] is not None:
            item[2](True)
        self._next()

    def _next(self) -> None:
        now = self.env.now
        queue = self.queue
        codel = self.codel
        dropped = []
        while queue and self.busy < self.workers:
            newest_first = self.queue_wait(now, len(queue)) > self.lifo_after
            item = queue.pop() if newest_first else queue.popleft()
            if self.cancel and item[1] <= now:
                continue  # its caller has given up: dropped without using a worker
            if codel is not None and codel.take(now, now - item[3], len(queue)):
                dropped.append(item)
                continue
            if self.on_wait is not None and item[2] is not None:
                self.on_wait(now - item[3])
            self._start(now, item)
        if codel is not None and self.busy < self.workers:
            codel.idle()  # a worker finds the queue empty
        # The drops are answered once the workers are settled, so a retry sent at once queues as any arrival.
        for item in dropped:
            if self.on_drop is not None:
                self.on_drop(self)
            if item[2] is not None:
                item[2](False)

    def crash(self) -> None:
        self._account(self.env.now)
        super().crash()
        self.queue.clear()
        self.busy = 0

    def restart(self, now: float) -> None:
        super().restart(now)
        self.busy = 0
        if self.codel is not None:
            self.codel.reset()
