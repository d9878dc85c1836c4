"""The request engine: every user request simulated on the SimPy loop.

Path of one attempt: the region's datacenter (chosen by the traffic manager) → a load balancer picks a
server from its pool → that server proxies to the server holding the active copy of the user's
mailbox database (front-end work ``frontend_time`` if it is another server) → the shared dependencies
the request type calls → the mailbox server's FIFO queue and workers → the response, after the
network round trips. The client gives up after ``timeout`` and retries with backoff.

Why it is fast. A server is a FIFO multi-worker queue whose service times are drawn on arrival, so
the moment a request will start and finish is known when it arrives (the earliest-free-worker
recursion for FIFO G/G/c, exact as long as nothing interrupts it). An attempt therefore costs one
scheduled event: its response, or its client's timeout if the response would come too late. A crash
bumps the server's epoch, and responses booked under an older epoch are dropped when they come due.
Events are bare callbacks on SimPy's own event queue (see :func:`later`): no generator per request.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Any

import simpy

from sim.cluster import Cluster
from sim.metrics import Recorder
from sim.policies import BALANCERS, backoff_delay
from sim.rng import Stream, Streams
from sim.scenario import Scenario, ServiceTime
from sim.workload import peak_rate, rate_function

__all__ = ["RequestEngine", "Station"]

_heappush, _heappop, _heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
_NORMAL = simpy.events.NORMAL


class _Call:
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
    """Call ``fn(event)`` after ``delay``, in SimPy's (time, priority, insertion) order."""
    env.schedule(_Call(fn), _NORMAL, delay)  # type: ignore[arg-type]


def make_sampler(service: ServiceTime, rng: Stream) -> Callable[[], float]:
    """A function drawing one service time."""
    mean = service.mean
    if service.distribution == "deterministic":
        return lambda: mean
    if service.distribution == "lognormal":
        return lambda: rng.lognormal(mean, service.cv)
    exponential = rng.exponential
    return lambda: exponential(mean)


class Station:
    """A FIFO queue with ``workers`` servers and room for ``queue_limit`` waiting requests."""

    __slots__ = ("env", "index", "name", "workers", "free", "waiting", "pending", "queue_limit", "sample",
                 "epoch", "up", "datacenter", "frontend_time")

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

    def outstanding(self) -> int:
        """Requests admitted and not yet finished."""
        now = self.env.now
        pending = self.pending
        while pending and pending[0] <= now:
            _heappop(pending)
        return len(pending)

    def wait(self, now: float) -> float:
        """How long a request arriving now would wait for a worker."""
        return max(0.0, self.free[0] - now)

    def admit(self, now: float, service: float) -> float:
        """Book a request arriving at ``now``; return its completion time, or -1 if the queue is full."""
        free = self.free
        first = free[0]
        waiting = self.waiting
        if first > now:
            while waiting and waiting[0] <= now:
                waiting.popleft()
            if self.queue_limit is not None and len(waiting) >= self.queue_limit:
                return -1.0
            waiting.append(first)
            end = first + service
        else:
            end = now + service
        _heapreplace(free, end)
        pending = self.pending  # only unfinished requests, so it stays as small as the queue
        if pending and pending[0] <= now:
            _heapreplace(pending, end)
            while pending[0] <= now:
                _heappop(pending)
        else:
            _heappush(pending, end)
        return end

    def crash(self) -> None:
        """Lose everything queued and running."""
        self.up = False
        self.epoch += 1
        self.waiting.clear()
        self.pending.clear()

    def restart(self, now: float) -> None:
        """Come back empty at ``now``."""
        self.up = True
        self.free = [now] * self.workers


class _Request:
    """One user request across its attempts."""

    __slots__ = ("region", "work", "deps", "db", "t0", "win", "attempt", "done", "delay")

    def __init__(self, region: int, work: float, deps: tuple[int, ...], db: int, t0: float, win: int):
        self.region = region
        self.work = work
        self.deps = deps
        self.db = db
        self.t0 = t0
        self.win = win
        self.attempt = 0
        self.done = False
        self.delay = 0.0  # previous backoff (for decorrelated jitter)


class RequestEngine:
    """Per-request simulation. Implements :class:`~sim.cluster.Listener` and :class:`~sim.control.Probe`."""

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, cluster: Cluster, streams: Streams, recorder: Recorder
    ):
        self.env = env
        self.scenario = scenario
        self.cluster = cluster
        self.rec = recorder
        self.streams = streams
        self.client = scenario.policies.client
        service_rng = streams.stream("service")
        self.stations = [
            Station(env, s.index, s.id, s.workers, s.queue_limit, make_sampler(s.service, service_rng),
                    s.datacenter, s.frontend_time)
            for s in cluster.servers
        ]
        self.dependencies = [
            Station(env, i, d.id, d.workers, d.queue_limit, make_sampler(d.service_time, service_rng))
            for i, d in enumerate(scenario.topology.dependencies)
        ]
        algorithm = BALANCERS[scenario.policies.load_balancer.algorithm]
        self.balancers = [algorithm(streams.stream(f"balancer/{dc}")) for dc in cluster.datacenter_ids]
        self.pools: list[list[Station]] = [[] for _ in cluster.datacenter_ids]
        for dc in range(len(cluster.datacenter_ids)):
            self.rotation_changed(dc)
        dep_index = {d.id: i for i, d in enumerate(scenario.topology.dependencies)}
        self.request_types: list[tuple[float, float, tuple[int, ...]]] = []  # (cumulative share, work, deps)
        acc = 0.0
        for rt in scenario.workload.requests.values():
            acc += rt.share
            self.request_types.append((acc, rt.work, tuple(dep_index[d] for d in rt.dependencies)))
        self.routing_rng = streams.stream("routing")
        self.retry_rng = streams.stream("retries")
        self.stopped = False

    # ---------------------------------------------------------------------------------- arrivals

    def start(self) -> None:
        """Start the arrival processes of every region with load."""
        region_index = {r: i for i, r in enumerate(self.cluster.region_ids)}
        for name, load in self.scenario.workload.regions.items():
            region = region_index[name]
            rate = rate_function(load)
            bound = peak_rate(load)
            if bound <= 0:
                continue
            rng = self.streams.stream(f"arrivals/{name}")
            flat = isinstance(load.profile, str) and load.profile == "flat"
            self._next_arrival(region, rate, bound, rng, flat)

    def _next_arrival(self, region: int, rate: Callable[[float], float], bound: float, rng: Stream, flat: bool) -> None:
        env = self.env
        duration = self.scenario.duration
        mean_gap = 1.0 / bound

        def arrive(_: Any) -> None:
            now = env.now
            if now >= duration:
                return
            if flat or rng.uniform() * bound < rate(now):  # thinning for a time-varying rate
                self._new_request(region, now)
            later(env, rng.exponential(mean_gap), arrive)

        later(env, rng.exponential(mean_gap), arrive)

    def _new_request(self, region: int, now: float) -> None:
        rec = self.rec
        win = int(now / rec.window)
        rec.requests[region][win] += 1
        u = self.routing_rng.uniform()
        for cum, work, deps in self.request_types:
            if u < cum:
                break
        dbs = self.cluster.region_databases[region]
        db = dbs[int(self.routing_rng.uniform() * len(dbs))] if dbs else -1
        self._attempt(_Request(region, work, deps, db, now, win))

    # ---------------------------------------------------------------------------------- one attempt

    def _attempt(self, req: _Request) -> None:
        env, rec, cluster = self.env, self.rec, self.cluster
        now = env.now
        region = req.region
        req.attempt += 1
        w = rec.window_of(now)
        rec.attempts[region][w] += 1
        if req.attempt > 1:
            rec.retries[region][w] += 1
        deadline = now + self.client.timeout
        dc = cluster.route[region]
        if dc < 0:
            return self._error(req, 0.0, w)
        pool = self.pools[dc]
        if not pool:
            return self._error(req, cluster.rtt[region][dc], w)
        front = self.balancers[dc].pick(pool)
        rec.dc_offered[dc][w] += 1
        latency = cluster.rtt[region][dc]
        if not front.up:
            return self._lost(req, deadline)
        back = front
        stages: list[tuple[Station, float]] = []
        if req.db >= 0:
            active = cluster.active[req.db]
            if active < 0:
                return self._error(req, latency, w)  # "mailbox database unavailable"
            back = self.stations[active]
            if back is not front:
                latency += cluster.link_latency[front.datacenter][back.datacenter]
                if front.frontend_time > 0:
                    stages.append((front, front.frontend_time))
        for dep in req.deps:
            if cluster.dependency_down[dep]:
                return self._error(req, latency, w)
            dstation = self.dependencies[dep]
            stages.append((dstation, dstation.sample()))
        stages.append((back, back.sample() * req.work))
        self._stage(req, req.attempt, stages, 0, latency, deadline)

    def _stage(
        self, req: _Request, attempt: int, stages: list[tuple[Station, float]], k: int, latency: float, deadline: float
    ) -> None:
        env = self.env
        now = env.now
        station, service = stages[k]
        if not station.up:
            return self._lost(req, deadline)
        start = station.free[0]  # when the earliest-free worker can take it
        end = station.admit(now, service)
        if start > now and end >= 0:  # every worker busy: it queued
            self.rec.queued += 1
            self.rec.queue_time += start - now
        if end < 0:
            rec = self.rec
            w = rec.window_of(now)
            rec.shed[req.region][w] += 1
            return self._error(req, latency, w)
        last = k == len(stages) - 1
        due = end + latency if last else end
        if due > deadline:
            # The client gives up first; the server still does the work (wasted).
            self.rec.wasted += 1
            return self._timeout_at(req, attempt, deadline)
        epoch = station.epoch
        if last:
            later(env, due - now, lambda _: self._respond(req, attempt, station, epoch, deadline))
        else:
            later(env, due - now, lambda _: self._next_stage(req, attempt, stages, k, station, epoch, latency, deadline))

    def _next_stage(self, req: _Request, attempt: int, stages: list, k: int, station: Station, epoch: int,
                    latency: float, deadline: float) -> None:
        if req.done or req.attempt != attempt:
            return
        if station.epoch != epoch:
            return self._lost(req, deadline)
        self._stage(req, attempt, stages, k + 1, latency, deadline)

    def _respond(self, req: _Request, attempt: int, station: Station, epoch: int, deadline: float) -> None:
        if req.done or req.attempt != attempt:
            return
        if station.epoch != epoch:  # the server crashed with this request on it
            return self._lost(req, deadline)
        req.done = True
        rec = self.rec
        rec.ok[req.region][req.win] += 1
        rec.latency.append(self.env.now - req.t0)
        rec.latency_window.append(req.win)
        rec.latency_region.append(req.region)

    def _lost(self, req: _Request, deadline: float) -> None:
        """No answer will come: the client times out at its deadline."""
        self._timeout_at(req, req.attempt, deadline)

    def _timeout_at(self, req: _Request, attempt: int, deadline: float) -> None:
        env = self.env
        delay = deadline - env.now
        if delay <= 0:
            return self._timed_out(req, attempt)
        later(env, delay, lambda _: self._timed_out(req, attempt))

    def _timed_out(self, req: _Request, attempt: int) -> None:
        if req.done or req.attempt != attempt:
            return
        rec = self.rec
        rec.timeouts[req.region][rec.window_of(self.env.now)] += 1
        self._retry_or_fail(req, 0.0)

    def _error(self, req: _Request, latency: float, w: int) -> None:
        """A fast failure (no datacenter, no server, database unavailable, queue full)."""
        self.rec.errors[req.region][w] += 1
        self._retry_or_fail(req, latency)

    def _retry_or_fail(self, req: _Request, after: float) -> None:
        if req.attempt > self.client.retries:
            req.done = True
            self.rec.failed[req.region][req.win] += 1
            return
        delay = backoff_delay(self.client.backoff, req.attempt, req.delay, self.retry_rng.uniform())
        req.delay = delay
        later(self.env, after + delay, lambda _: self._attempt(req))

    # ---------------------------------------------------------------------------------- listener / probe

    def server_down(self, server: int) -> None:
        """The server stopped: its queue and running work are lost."""
        self.stations[server].crash()

    def server_up(self, server: int) -> None:
        """The server is running again, empty."""
        self.stations[server].restart(self.env.now)

    def rotation_changed(self, datacenter: int) -> None:
        """Rebuild the load balancers' pool for ``datacenter``."""
        servers = self.cluster.servers
        self.pools[datacenter] = [
            self.stations[i] for i in self.cluster.servers_of_dc[datacenter] if servers[i].in_rotation
        ]

    def dependency_changed(self, dependency: int) -> None:
        """Dependencies are checked per request; nothing to rebuild."""

    def probe(self, server: int, timeout: float) -> bool:
        """A health check passes if the server is up and would start it within ``timeout``."""
        station = self.stations[server]
        return station.up and station.wait(self.env.now) < timeout

    def drain_time(self) -> float:
        """How long after the last arrival every request has certainly finished or failed."""
        c = self.client
        return (c.retries + 1) * (c.timeout + c.backoff.max) + 1.0
