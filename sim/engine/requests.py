"""The request engine: every user request simulated on the SimPy loop.

One client attempt, layer by layer:

1. **Client** (per region): a circuit breaker may fail it at once; otherwise it goes to the region's
   datacenter (chosen by the traffic manager) and waits up to ``client.timeout``. On an error or a
   timeout it retries with backoff, if retries and the retry budget allow.
2. **Load balancer** (per datacenter): picks a server from its pool; a try fails on an error or after
   ``try_timeout``, and is retried on another server up to ``load_balancer.retries`` times.
3. **Server**: front-end work on the picked server (when the mailbox lives elsewhere), calls to the
   shared dependencies the request type needs (each with ``server.dependency_timeout`` and
   ``dependency_retries``), then the mailbox server holding the active copy of the user's database.

Why it is fast. A server is a FIFO multi-worker queue whose service times are drawn on arrival, so
the moment a request will start and finish is known when it arrives (the earliest-free-worker
recursion for FIFO G/G/c, exact as long as nothing interrupts it). Each step of an attempt therefore
schedules one event: the end of its stage, or the timeout of the innermost layer waiting for it if the
stage would end too late. A crash bumps the server's epoch; stages booked under an older epoch are
lost when they come due. Each attempt carries a generation number, so events made stale by a retry
or a timeout are ignored. Steps are bare callbacks in the engine's :class:`~sim.schedule.Lane`, run in
SimPy's own order; a first try of one stage takes the express lane (:meth:`RequestEngine._arrival_handler`).

Deadline propagation (``server.cancellation``) is exact in this scheme: a request that would start
after its caller's deadline is dropped without using a worker, and one that would run past it stops
there.

Admission control refuses at once, with an error the client may retry: a region's token bucket
(``load_balancer.rate_limit``) when its attempt reaches the load balancers, a server's AIMD limit
(``server.concurrency_limit``) when a stage would make it hold more; the limit learns each answer's time
when the answer is due (FIFO bookings know it on arrival). Bulkheads (``server.bulkheads``) book a request
type that calls a dependency on its compartment of the server's workers. A fallback
(``server.fallbacks``) carries a request on past a dependency that failed for good: a degraded success.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.engine.base import EngineBase, request_types
from sim.engine.pools import pool
from sim.engine.stations import EventStation, Station
from sim.episodes import Episodes
from sim.events import (
    BULKHEAD_CLEARED,
    BULKHEAD_SATURATED,
    CODEL_DROPPING,
    CODEL_STOPPED,
    CONCURRENCY_LIMIT_LIFTED,
    CONCURRENCY_LIMITED,
    FALLBACK_ENDED,
    FALLBACK_SERVING,
    RATE_LIMIT_LIFTED,
    RATE_LIMITED,
)
from sim.policies import BALANCERS, AimdLimit, Breaker, Budget, Bulkheads, CoDel, TokenBucket, backoff_delay
from sim.recorder import Recorder
from sim.rng import Streams
from sim.scenario import RetryBudget, Scenario
from sim.schedule import Lane, later, make_sampler
from sim.units import format_duration
from sim.workload import peak_rate, rate_function

__all__ = ["RequestEngine", "Station", "EventStation"]

_INF = float("inf")
_QUIET = 10.0  # seconds without a refusal (a long wait) that end a limit's (a bulkhead's) episode
OK, ERROR, TIMEOUT = "ok", "error", "timeout"


def _step(step: tuple[Any, int, Callable[..., None], tuple[Any, ...]]) -> None:
    """Run a scheduled step of an attempt, ``(attempt, generation, fn, args)``, unless the attempt has
    moved on since it was booked (its generation changed).
    """
    a, gen, fn, args = step
    if a.gen == gen:
        fn(*args)


class _Request:
    """One user request across its attempts."""

    __slots__ = ("region", "work", "deps", "db", "t0", "win", "attempt", "done", "delay", "bits", "kind")

    def __init__(self, region: int, work: float, deps: tuple[int, ...], db: int, t0: float, win: int,
                 bits: float = 0.0, kind: int = 0):
        self.region = region
        self.kind = kind  # its request type (index into ``workload.requests``)
        self.bits = bits  # what it puts on an inter-datacenter link it crosses
        self.work = work
        self.deps = deps
        self.db = db
        self.t0 = t0
        self.win = win
        self.attempt = 0
        self.done = False
        self.delay = 0.0  # previous backoff (for decorrelated jitter)


class _Attempt:
    """One client attempt as it moves through the layers; ``gen`` invalidates stale events."""

    __slots__ = ("req", "gen", "deadline", "dc", "latency", "tried", "lb_tries", "try_deadline", "lb_delay",
                 "stages", "k", "dep_tries", "dep_delay", "dep_started", "held", "front", "degraded", "sent", "twin",
                 "over")

    def __init__(self, req: _Request, deadline: float, dc: int, latency: float):
        self.req = req
        self.gen = 0
        self.deadline = deadline
        self.dc = dc
        self.latency = latency
        self.tried: list[Station] = []
        self.lb_tries = 0
        self.try_deadline = deadline
        self.lb_delay = 0.0
        self.stages: list[tuple[Station, float, int]] = []  # (station, service, dependency or -1)
        self.k = 0
        self.dep_tries = 0
        self.dep_delay = 0.0
        self.dep_started = 0.0
        self.held = 0.0  # time spent waiting on dependencies, which holds a server worker
        self.front: Station | None = None  # the server of the try in flight (counted in its ``inflight``)
        self.degraded = False  # a dependency failed and a fallback answers in its stead
        self.sent = 0.0  # when the load balancer sent the try in flight
        self.twin: _Attempt | None = None  # its hedge, or the attempt it hedges (load_balancer.hedge)
        self.over = False  # a hedged pair's try that failed while its twin carried on


class RequestEngine(EngineBase):
    """Per-request simulation: an :class:`~sim.engine.base.Engine` swept every interval (its answers change
    as the clock runs).
    """

    EXPRESS = True
    """Whether first tries may take the express lane (:meth:`_arrival_handler`); off, the same run, slower."""

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, cluster: Cluster, streams: Streams, recorder: Recorder
    ):
        super().__init__(env, scenario, cluster, streams, recorder)
        self.streams = streams
        self.lane = Lane(env)  # every step of every request: one queue, merged with SimPy's in its order
        policies = scenario.policies
        self.client = policies.client
        self.lb = policies.load_balancer
        self.server_policy = policies.server
        self.cancel = policies.server.cancellation
        self.max_wait = policies.server.max_queue_wait if policies.server.max_queue_wait is not None else _INF
        service_rng = streams.stream("service")
        groups = self.groups
        lifo = policies.server.lifo_when_waiting
        codel = policies.server.codel
        # Adaptive LIFO and CoDel decide when a worker frees up: the servers become event-driven.
        self.evented = lifo is not None or codel is not None  # (dependencies stay Stations)
        self.stations: list[Station] = [
            Station(env, s.index, s.id, s.workers, s.queue_limit, make_sampler(s.service, service_rng),
                    s.datacenter, s.frontend_time, groups[s.index].memory)
            if not self.evented else
            EventStation(env, s.index, s.id, s.workers, s.queue_limit, make_sampler(s.service, service_rng),
                         s.datacenter, s.frontend_time, groups[s.index].memory,
                         lifo_after=lifo if lifo is not None else _INF, mean_service=s.service.mean,
                         cancel=self.cancel, codel=CoDel(codel) if codel is not None else None,
                         on_drop=self._codel_dropped, on_wait=self._waited)
            for s in cluster.servers
        ]
        for server in np.flatnonzero(cluster.parked_mask).tolist():  # an autoscaler's spares start stopped
            self.stations[server].crash()
        self.dependencies = [
            Station(env, i, d.id, d.workers, d.queue_limit, make_sampler(d.service_time, service_rng))
            for i, d in enumerate(scenario.topology.dependencies)
        ]
        algorithm = BALANCERS[self.lb.algorithm]
        self.balancers = [algorithm(streams.stream(f"balancer/{dc}")) for dc in cluster.datacenter_ids]
        self.track_load = algorithm.tracks_load  # tell the balancers each change of a server's tries in flight
        self.observes = algorithm.observes  # tell the balancers each try's response time
        self.uses_key = algorithm.uses_key  # give the balancers each request's mailbox database
        self.pools: list[list[Station]] = [[] for _ in cluster.datacenter_ids]
        for dc in range(len(cluster.datacenter_ids)):
            self.rotation_changed(dc)
        # (cumulative share, work, deps, bits on a link, the type's index)
        self.request_types: list[tuple[float, float, tuple[int, ...], float, int]] = []
        acc = 0.0
        for k, rt in enumerate(request_types(scenario)):
            acc += rt.share
            self.request_types.append((acc, rt.work, rt.deps, rt.bits, k))
        self.routing_rng = streams.stream("routing")
        self.retry_rng = streams.stream("retries")
        self.error_rng = streams.stream("errors")
        self.network = cluster.network
        self.network_rng = streams.stream("network")
        n_regions, n_dcs = len(cluster.region_ids), len(cluster.datacenter_ids)
        cp = self.client
        self.client_budgets = [Budget(cp.budget) if cp.budget else None for _ in range(n_regions)]
        self.breakers = [Breaker(cp.breaker) if cp.breaker else None for _ in range(n_regions)]
        self.lb_budgets = [Budget(self.lb.budget) if self.lb.budget else None for _ in range(n_dcs)]
        self.hedge = self.lb.hedge
        hedge_budget = RetryBudget(ratio=self.hedge.budget, min_per_second=0.0) \
            if self.hedge is not None and self.hedge.budget is not None else None
        self.hedge_budgets = [Budget(hedge_budget) if hedge_budget is not None else None for _ in range(n_dcs)]
        sp = self.server_policy
        self.dep_budgets = [Budget(sp.dependency_budget) if sp.dependency_budget else None
                            for _ in self.dependencies]
        # Admission control: a token bucket per region (at the load balancers), an AIMD limit per server.
        rate_limit, concurrency = self.lb.rate_limit, sp.concurrency_limit
        self.rate_limits = [TokenBucket(rate_limit) if rate_limit else None for _ in range(n_regions)]
        self.limits = [AimdLimit(concurrency) for _ in cluster.servers] if concurrency else None
        # The episodes under way of limits refusing, bulkheads queueing too long, fallbacks, CoDel dropping
        self.episodes = Episodes(env, cluster.trace)
        # Bulkheads: the server stations split into compartments; a request type's work goes to one.
        self.bulkheads = Bulkheads(sp.bulkheads, [d.id for d in scenario.topology.dependencies]) \
            if sp.bulkheads else None
        self.type_part = [0] * len(self.request_types)
        if self.bulkheads is not None:
            for station in self.stations:
                station.partition(self.bulkheads.sizes(station.workers), self.bulkheads.queue_limits)
            self.type_part = [self.bulkheads.compartment(t[2]) for t in self.request_types]
        self.bulkhead_names = list(sp.bulkheads)
        dependency_ids = [d.id for d in scenario.topology.dependencies]
        self.fallbacks = [d in sp.fallbacks for d in dependency_ids]  # per dependency: degrade on its failure
        self.arrival_gen = [0] * n_regions
        # Single-stage first tries go through the express lane unless servers order their queues when a
        # worker frees up (adaptive LIFO, CoDel).
        self.express = self.EXPRESS and not self.evented and self.limits is None
        self.first_try = [self._arrival_handler(region) for region in range(n_regions)]

    # ---------------------------------------------------------------------------------- arrivals

    def start(self) -> None:
        """Start the arrival processes of every region with load."""
        for region in range(len(self.cluster.region_ids)):
            self._arrivals(region)

    def _arrivals(self, region: int) -> None:
        """(Re)start the Poisson arrivals of ``region`` from now (memoryless, so exact on a restart)."""
        name = self.cluster.region_ids[region]
        load = self.scenario.workload.regions.get(name)
        if load is None:
            return
        self.arrival_gen[region] += 1
        gen = self.arrival_gen[region]
        scale = self.cluster.load_scale[region]
        base = rate_function(load)
        bound = peak_rate(load) * scale
        if bound <= 0:
            return
        rng = self.streams.stream(f"arrivals/{name}")
        flat = isinstance(load.profile, str) and load.profile == "flat"
        env = self.env
        duration = self.scenario.duration
        mean_gap = 1.0 / bound
        arrival_gen = self.arrival_gen
        at = self.lane.at
        first_try = self.first_try[region]
        gap = partial(rng.exponential, mean_gap)

        def arrive(_: Any) -> None:
            if arrival_gen[region] != gen:
                return
            now = env.now
            if now >= duration:
                return
            if flat or rng.uniform() * bound < base(now) * scale:  # thinning for a time-varying rate
                first_try(now)
            at(env.now + gap(), arrive)

        at(env.now + gap(), arrive)

    def _new_request(self, region: int, now: float) -> None:
        """A user request arrives: its type, its mailbox database, and its first try."""
        rec = self.rec
        win = int(now / rec.window)
        rec.requests[region][win] += 1
        types = self.request_types
        if len(types) == 1:
            _, work, deps, bits, kind = types[0]
        else:  # the type whose share covers u (the last one if the shares' sum rounds below u)
            u = self.routing_rng.uniform()
            _, work, deps, bits, kind = next((t for t in types if u < t[0]), types[-1])
        dbs = self.cluster.region_databases[region]
        db = dbs[int(self.routing_rng.uniform() * len(dbs))] if dbs else -1
        budget = self.client_budgets[region]
        if budget is not None:
            budget.deposit()
        self._attempt(_Request(region, work, deps, db, now, win, bits, kind))

    # ---------------------------------------------------------------------------------- express lane

    def _arrival_handler(self, region: int) -> Callable[[float], None]:
        """What a user request arriving from ``region`` at ``now`` sets going: :meth:`_new_request`, or
        the same through the express lane where the region allows.

        The express lane takes a first try that is one stage on the server the balancer picks (a request
        with no dependencies, from a region with no mailbox databases and no circuit breaker): the steps
        of :meth:`_new_request`, :meth:`_attempt`, :meth:`_lb_try` and :meth:`_stage`, in the same order
        and with the same draws, on plain values. Its outcome is known when it is booked (FIFO), so it
        needs no objects unless something goes otherwise — no datacenter or server to send it to, a
        server that is down or keeps a memory limit, sheds the request, would answer too late, crashes or
        may answer with an error. Then the attempt is made as the general path would hold it at that point
        (:meth:`_attempt_of`) and carries on there. With ``express = False`` every request takes the
        general path: the same run, to the bit (tests/test_engine.py checks it on every shipped scenario).
        """
        cluster, rec = self.cluster, self.rec
        if not self.express or cluster.region_databases[region] or self.breakers[region] is not None \
                or self.rate_limits[region] is not None or self.hedge is not None \
                or all(t[2] for t in self.request_types):
            return lambda now: self._new_request(region, now)
        types, routing = self.request_types, self.routing_rng
        requests, attempts, offered, window, last = rec.requests[region], rec.attempts[region], rec.dc_offered, \
            rec.window, rec.n
        client_budget, lb_budgets = self.client_budgets[region], self.lb_budgets
        route, pools, misweights, rtt = cluster.route, self.pools, cluster.misweights, cluster.rtt[region]
        balancers, track_load, timeout, try_timeout = self.balancers, self.track_load, self.client.timeout, \
            self.lb.try_timeout
        observes = self.observes
        cancel, max_wait, at, env = self.cancel, self.max_wait, self.lane.at, self.env
        ok, latency, latency_window, latency_region = rec.ok[region], rec.latency.append, \
            rec.latency_window.append, rec.latency_region.append
        single = types[0] if len(types) == 1 else None

        def done(booked: tuple[Any, ...]) -> None:
            """The answer is due: a success, unless its server crashed meanwhile or may err."""
            front = booked[0]
            if front.epoch != booked[1] or front.error_rate:
                return self._stage_done(self._attempt_of(booked, True), front, booked[1], True)
            front.inflight -= 1
            if observes:  # (stands for ``changed`` too)
                balancers[booked[8]].observe(front, env.now - booked[4])
            elif track_load:
                balancers[booked[8]].changed(front)
            win = booked[3]
            ok[win] += 1
            latency(env.now - booked[4])
            latency_window(win)
            latency_region(region)

        def first_try(now: float) -> None:
            win = int(now / window)
            requests[win] += 1
            if single is not None:
                _, work, deps, bits, kind = single
            else:  # the type whose share covers u (the last one if the shares' sum rounds below u)
                u = routing.uniform()
                _, work, deps, bits, kind = next((t for t in types if u < t[0]), types[-1])
            if client_budget is not None:
                client_budget.deposit()
            dc = route[region]
            if deps or dc < 0 or not pools[dc] or misweights:
                return self._attempt(_Request(region, work, deps, -1, now, win, bits, kind))
            w = win if win < last else last
            attempts[w] += 1
            deadline = now + timeout
            budget = lb_budgets[dc]
            if budget is not None:
                budget.deposit()
            balancer = balancers[dc]
            front = balancer.pick(pools[dc])
            front.inflight += 1
            if track_load:
                balancer.changed(front)
            offered[dc][w] += 1
            try_deadline = min(deadline, now + try_timeout) if try_timeout is not None else deadline
            if not front.up or front.memory is not None:
                booked = (front, 0, region, win, now, work, bits, kind, dc, deadline, rtt[dc], try_deadline, 0.0)
                return self._lb_sent(self._attempt_of(booked, False), front, now)
            service = front.sample() * work
            start = front.free[0]
            speed = front.speed * (front.warm_speed if now < front.warm_until else 1.0)  # Station.service_factor
            end = front.admit(now, service * (1.0 / speed), try_deadline if cancel else _INF, max_wait)
            booked = (front, front.epoch, region, win, now, work, bits, kind, dc, deadline, rtt[dc], try_deadline,
                      service)
            if end < 0:
                return self._shed(self._attempt_of(booked, True), now)
            if start > now:  # every worker busy: it queued
                rec.queued += 1
                rec.queue_time += start - now
            due = end + rtt[dc]
            if due > try_deadline:
                return self._too_late(self._attempt_of(booked, True), try_deadline)
            at(due, done, booked)

        return first_try

    def _attempt_of(self, booked: tuple[Any, ...], staged: bool) -> _Attempt:
        """The attempt of an express try as the general path holds it once the try is sent to its server
        (``staged``: once its one stage is booked as well).
        """
        front, _, region, win, t0, work, bits, kind, dc, deadline, latency, try_deadline, service = booked
        req = _Request(region, work, (), -1, t0, win, bits, kind)
        req.attempt = 1
        a = _Attempt(req, deadline, dc, latency)
        a.lb_tries = 1
        a.tried.append(front)
        a.front = front
        a.try_deadline = try_deadline
        a.sent = t0
        if staged:
            a.stages = [(front, service, -1)]
        return a

    def _at(self, a: _Attempt, delay: float, fn: Callable[..., None], *args: Any) -> None:
        """Schedule ``fn(*args)`` as the next step of attempt ``a``; an earlier pending step becomes stale."""
        a.gen += 1
        self.lane.at(self.env.now + delay, _step, (a, a.gen, fn, args))

    # ---------------------------------------------------------------------------------- client layer

    def _attempt(self, req: _Request) -> None:
        env, rec, cluster = self.env, self.rec, self.cluster
        now = env.now
        region = req.region
        req.attempt += 1
        w = rec.window_of(now)
        rec.attempts[region][w] += 1
        if req.attempt > 1:
            rec.retries[region][w] += 1
        breaker = self.breakers[region]
        if breaker is not None and not breaker.allow(now):
            rec.breaker_rejected[region][w] += 1
            return self._client_failed(req, ERROR, 0.0, record=False)
        dc = cluster.route[region]
        if dc < 0:
            return self._client_failed(req, ERROR, 0.0)
        bucket = self.rate_limits[region]
        if bucket is not None and not bucket.take(now):  # refused by the load balancers: a 429, back at once
            rec.shed[region][w] += 1
            self._episode(RATE_LIMITED, RATE_LIMIT_LIFTED, ("region", region, 0), cluster.region_ids[region],
                          cluster.last_harm[dc], f"rate limit {bucket.rate:g}/s (burst {bucket.burst:g}) reached",
                          "attempts refused")
            return self._client_failed(req, ERROR, cluster.rtt[region][dc])
        a = _Attempt(req, now + self.client.timeout, dc, cluster.rtt[region][dc])
        budget = self.lb_budgets[dc]
        if budget is not None:
            budget.deposit()
        self._lb_try(a)
        hedge = self.hedge
        if hedge is not None:
            hedge_budget = self.hedge_budgets[dc]
            if hedge_budget is not None:
                hedge_budget.deposit()
            self.lane.at(now + hedge.delay, self._hedge, a)

    def _hedge(self, a: _Attempt) -> None:
        """The hedge delay has passed since the first try of ``a`` was sent: if it is still unanswered
        (and still the first try), send a second try to another server, if the hedging budget allows.
        """
        if a.req.done or a.front is None or a.lb_tries != 1 or a.over or a.twin is not None:
            return
        budget = self.hedge_budgets[a.dc]
        if budget is not None and not budget.withdraw(self.env.now):
            return
        h = _Attempt(a.req, a.deadline, a.dc, a.latency)
        h.tried = a.tried  # shared: neither try, nor their retries, goes to a server the other tried
        h.lb_tries = a.lb_tries
        a.twin, h.twin = h, a
        self._lb_try(h)

    def _client_failed(self, req: _Request, status: str, after: float, record: bool = True) -> None:
        rec = self.rec
        region = req.region
        now = self.env.now
        w = rec.window_of(now)
        if status == TIMEOUT:
            rec.timeouts[region][w] += 1
        else:
            rec.errors[region][w] += 1
        breaker = self.breakers[region]
        if record and breaker is not None:
            self._breaker_changed(region, breaker.record(now, False))
        if req.attempt > self.client.retries:
            return self._give_up(req)
        budget = self.client_budgets[region]
        if budget is not None and not budget.withdraw(now):
            rec.budget_exhausted[region][w] += 1
            return self._give_up(req)
        delay = backoff_delay(self.client.backoff, req.attempt, req.delay, self.retry_rng.uniform())
        req.delay = delay
        self.lane.at(now + (after + delay), self._attempt, req)

    def _give_up(self, req: _Request) -> None:
        req.done = True
        rec = self.rec
        rec.failed[req.region][req.win] += 1
        rec.failed_by_type[req.kind] += 1

    def _succeeded(self, a: _Attempt) -> None:
        req = a.req
        a.gen += 1
        front = a.front
        if front is not None:
            front.inflight -= 1
            a.front = None
            if self.observes:  # (stands for ``changed`` too)
                self.balancers[a.dc].observe(front, self.env.now - a.sent)
            elif self.track_load:
                self.balancers[a.dc].changed(front)
        twin = a.twin
        if twin is not None and not twin.over:  # the first answer wins: the other try is given up on
            twin.gen += 1  # its pending step is stale
            twin.over = True
            loser = twin.front
            if loser is not None:
                loser.inflight -= 1
                twin.front = None
                if self.track_load:
                    self.balancers[twin.dc].changed(loser)
                self.rec.wasted += 1  # its work, booked on the server, is wasted
        req.done = True
        rec = self.rec
        now = self.env.now
        rec.ok[req.region][req.win] += 1
        if a.degraded:
            rec.degraded[req.region][req.win] += 1
        rec.latency.append(now - req.t0)
        rec.latency_window.append(req.win)
        rec.latency_region.append(req.region)
        breaker = self.breakers[req.region]
        if breaker is not None:
            self._breaker_changed(req.region, breaker.record(now, True))

    def _breaker_changed(self, region: int, state: str | None) -> None:
        if state is not None:
            self.cluster.breaker_changed(region, state)

    # ---------------------------------------------------------------------------------- load balancer

    def _lb_try(self, a: _Attempt) -> None:
        env, rec, cluster = self.env, self.rec, self.cluster
        now = env.now
        dc = a.dc
        a.lb_tries += 1
        a.latency = cluster.rtt[a.req.region][dc]  # this try's own network time (a link's is added below)
        pool = self.pools[dc]
        if not pool:
            return self._after(a, a.latency, lambda: self._lb_failed(a, ERROR))
        tried = a.tried
        if tried or self.cluster.misweights:
            front = self._pick(dc, pool, tried, a.req.db)
        elif self.uses_key:  # the balancer picks by the request's mailbox database
            front = self.balancers[dc].pick(pool, a.req.db if a.req.db >= 0 else None)  # type: ignore[call-arg]
        else:  # the common case: a first try, weights as configured
            front = self.balancers[dc].pick(pool)
        tried.append(front)
        front.inflight += 1
        a.front = front
        a.sent = now
        if self.track_load:
            self.balancers[dc].changed(front)
        rec.dc_offered[dc][rec.window_of(now)] += 1
        lb = self.lb
        a.try_deadline = min(a.deadline, now + lb.try_timeout) if lb.try_timeout is not None else a.deadline
        self._lb_sent(a, front, now)

    def _lb_sent(self, a: _Attempt, front: Station, now: float) -> None:
        """The try has reached ``front``: through the server's stages, or it waits for an answer that never comes."""
        cluster = self.cluster
        if not front.up:
            return self._wait_for(a, a.try_deadline, self._lb_failed)
        req = a.req
        stages: list[tuple[Station, float, int]] = []
        back = front
        if req.db >= 0:
            active = cluster.active[req.db]
            if active < 0:  # "mailbox database unavailable", answered by the front end
                return self._after(a, a.latency, lambda: self._lb_failed(a, ERROR))
            back = self.stations[active]
            if back is not front:
                a.latency += cluster.link_latency[front.datacenter][back.datacenter]
                link = self.network.between[front.datacenter][back.datacenter]
                if link >= 0 and self._cross(a, link, now):  # lost on the link: no answer comes
                    return self._wait_for(a, a.try_deadline, self._lb_failed)
                if front.frontend_time > 0:
                    stages.append((front, front.frontend_time, -1))
        for dep in req.deps:
            dstation = self.dependencies[dep]
            stages.append((dstation, dstation.sample(), dep))
        stages.append((back, back.sample() * req.work, -1))
        a.stages = stages
        a.k = 0
        a.held = 0.0
        a.degraded = False
        self._stage(a)

    def _cross(self, a: _Attempt, link: int, now: float) -> bool:
        """Cross an inter-datacenter link: add the try's congestion delay; return True if it is lost."""
        bits = a.req.bits
        delay, loss = self.network.cross(link, bits)
        rec = self.rec
        w = rec.window_of(now)
        rec.link_bits[link][w] += bits
        rec.link_crossings[link][w] += 1
        if loss > 0.0 and (loss >= 1.0 or self.network_rng.uniform() < loss):
            rec.link_lost[link][w] += 1
            return True
        a.latency += delay
        return False

    def _pick(self, dc: int, pool: list[Station], tried: list[Station], db: int) -> Station:
        misweight = self.cluster.misweights.get(dc)
        if misweight is not None:
            servers, share = misweight
            if self.routing_rng.uniform() < share:
                favoured = [self.stations[i] for i in servers if self.stations[i] in pool]
                if favoured:
                    return favoured[int(self.routing_rng.uniform() * len(favoured))]
        if self.uses_key:
            return self.balancers[dc].pick_other(pool, tried, db if db >= 0 else None)  # type: ignore[call-arg]
        return self.balancers[dc].pick_other(pool, tried)  # a retry goes to another server

    def _lb_failed(self, a: _Attempt, status: str) -> None:
        front = a.front
        if front is not None:  # the try is over for the load balancer: answered with an error, or given up on
            front.inflight -= 1
            a.front = None
            if self.observes and status == TIMEOUT:  # a fast error is not a fast answer: only timeouts count
                self.balancers[a.dc].observe(front, self.env.now - a.sent)  # (stands for ``changed`` too)
            elif self.track_load:
                self.balancers[a.dc].changed(front)
        twin = a.twin
        if twin is not None and not twin.over:  # a hedged pair: the other try carries on, and answers for both
            a.over = True
            return
        now = self.env.now
        lb = self.lb
        if status == TIMEOUT and now >= a.deadline:
            return self._client_failed(a.req, TIMEOUT, 0.0)
        tries = a.lb_tries
        rec = self.rec
        if tries <= lb.retries:
            budget = self.lb_budgets[a.dc]
            if budget is None or budget.withdraw(now):
                rec.lb_retries[a.req.region][rec.window_of(now)] += 1
                delay = backoff_delay(lb.backoff, tries, a.lb_delay, self.retry_rng.uniform())
                a.lb_delay = delay
                if now + delay < a.deadline:
                    return self._after(a, delay, lambda: self._lb_try(a))
        # No more tries: the load balancer answers the client with an error (a 502/504).
        self._client_failed(a.req, ERROR, a.latency)

    # ---------------------------------------------------------------------------------- server stages

    def _stage(self, a: _Attempt) -> None:
        station, service, dep = a.stages[a.k]
        if dep >= 0:
            a.dep_tries = 0
            a.dep_delay = 0.0
            a.dep_started = self.env.now
            return self._dep_try(a)
        now = self.env.now
        if not station.up:
            return self._wait_for(a, a.try_deadline, self._lb_failed)
        if station.memory is not None and station.out_of_memory(now) and self.crash_hook is not None:
            self.crash_hook(station.index)
            return self._wait_for(a, a.try_deadline, self._lb_failed)
        deadline = a.try_deadline
        limit = self.limits[station.index] if self.limits is not None else None
        held = station.held() if limit is not None else 0
        if limit is not None and not limit.allow(now, held):  # at its concurrency limit: refused at once
            a.held = 0.0
            self._episode(CONCURRENCY_LIMITED, CONCURRENCY_LIMIT_LIFTED, ("server", station.index, 0), station.name,
                          self.cluster.load_cause(station.index), f"holds {held}, its limit {int(limit.limit)}",
                          "attempts refused")
            return self._shed(a, now)
        speed = station.speed * (station.warm_speed if now < station.warm_until else 1.0)  # service_factor
        if self.evented and isinstance(station, EventStation):
            return self._stage_evented(a, station, service * (1.0 / speed), deadline, limit, held)
        part = self.type_part[a.req.kind]  # its bulkhead compartment (0: the shared one)
        start = station.free[0] if not part else station.first_free(part)  # when its earliest-free worker can
        # The worker time the dependency calls held is booked after the stage's own work, and the answer
        # leaves when that work is done: the booking's tail stands for the time held before (docs/design.md).
        waited = a.held
        end = station.admit(now, service * (1.0 / speed) + waited, deadline if self.cancel else _INF, self.max_wait,
                            part)
        a.held = 0.0
        if part and (end < 0 or start - now > self.server_policy.overload_threshold):
            self._bulkhead_saturated(station, part, end < 0, start - now)
        if end < 0:
            return self._shed(a, now)
        end -= waited
        if limit is not None:
            limit.admitted(now, end, held)
        if start > now:  # every worker busy: it queued
            self.rec.queued += 1
            self.rec.queue_time += start - now
        last = a.k == len(a.stages) - 1
        due = end + a.latency if last else end
        if due > deadline:
            return self._too_late(a, deadline)
        epoch = station.epoch
        self._at(a, due - now, self._stage_done, a, station, epoch, last)

    def _shed(self, a: _Attempt, now: float) -> None:
        """The server refused the stage (queue full, or too long a wait): an error answered at once."""
        rec = self.rec
        rec.shed[a.req.region][rec.window_of(now)] += 1
        self._after(a, a.latency, lambda: self._lb_failed(a, ERROR))

    def _too_late(self, a: _Attempt, deadline: float) -> None:
        """The stage will end after its caller stops waiting: the work is wasted, the caller times out."""
        self.rec.wasted += 1
        self._wait_for(a, deadline, self._lb_failed)

    def _stage_evented(self, a: _Attempt, station: EventStation, service: float, deadline: float,
                       limit: AimdLimit | None = None, held: int = 0) -> None:
        """A stage on an event-driven server: its end is not known yet, so the waiting layer's timeout
        is scheduled now and the server's completion calls back (whichever comes first wins); a
        concurrency ``limit`` learns the answer's time then. The worker time the dependency calls held
        is booked after ``service``, past the answer (as :meth:`_stage` books it).
        """
        now = self.env.now
        waited = a.held
        a.held = 0.0
        last = a.k == len(a.stages) - 1
        self._at(a, deadline - now, self._lb_failed, a, TIMEOUT)
        gen = a.gen

        def done(served: bool) -> None:
            if not served:  # CoDel dropped it at the head of the queue: an error answered at once
                if a.gen == gen:
                    self._shed(a, self.env.now)
                return
            if limit is not None:
                limit.admitted(now, self.env.now, held)
            if a.gen != gen:
                self.rec.wasted += 1  # served after its caller gave up
                return
            if last and self.env.now + a.latency > deadline:
                return  # the answer arrives too late: the pending timeout decides
            epoch = station.epoch
            if last:  # the answer still has to travel back; the pending timeout becomes stale
                return self._after(a, a.latency, lambda: self._stage_done(a, station, epoch, last))
            a.gen += 1
            self._stage_done(a, station, epoch, last)

        if not station.submit(now, service + waited, deadline if self.cancel else _INF, self.max_wait, done, waited):
            self._shed(a, now)

    def _waited(self, wait: float) -> None:
        """A request queued at an event-driven server got a worker after ``wait``: counted as the booking
        station's are in :meth:`_stage`.
        """
        if wait > 0:
            self.rec.queued += 1
            self.rec.queue_time += wait

    def _codel_dropped(self, station: EventStation) -> None:
        """CoDel dropped a request at ``station``: the first drop after a quiet spell starts a dropping
        episode (an event); the episode ends (another) once 16 intervals pass without a drop, RFC 8289's
        memory of a recent dropping state.
        """
        codel = station.codel
        assert codel is not None
        self.episodes.note(("codel", station.index), CODEL_DROPPING, CODEL_STOPPED, station.name,
                           self.cluster.load_cause(station.index),
                           f"queue wait above {format_duration(codel.target)} for {format_duration(codel.interval)}",
                           "requests dropped", 16 * codel.interval)

    def _bulkhead_saturated(self, station: Station, part: int, refused: bool, wait: float) -> None:
        """Bulkhead ``part`` of ``station`` refused a request (its queue full) or queued it longer than the
        overload threshold: an episode of ``bulkhead_saturated``.
        """
        name = self.bulkhead_names[part - 1]
        threshold = format_duration(self.server_policy.overload_threshold)
        self._episode(BULKHEAD_SATURATED, BULKHEAD_CLEARED, ("bulkhead", station.index, part), station.name,
                      self.cluster.load_cause(station.index),
                      f"{name} bulkhead: " + ("queue full" if refused else f"queue wait {format_duration(wait)}"),
                      f"requests refused by the {name} bulkhead or queued longer than {threshold}")

    def _episode(self, kind: str, end_kind: str, key: tuple[str, int, int], node: str, cause: int | None,
                 detail: str, counted: str) -> None:
        """A rate limit (``key`` ("region", region, 0)) or a concurrency limit (("server", server, 0)) refused
        an attempt, a bulkhead (("bulkhead", server, compartment)) queued one too long, or a fallback
        (("fallback", dependency, 0)) answered one degraded: an episode (:class:`~sim.episodes.Episodes`)
        that ends once ``_QUIET`` seconds pass without another.
        """
        self.episodes.note(key, kind, end_kind, node, cause, detail, counted, _QUIET)

    def _stage_done(self, a: _Attempt, station: Station, epoch: int, last: bool) -> None:
        if station.epoch != epoch:  # the server crashed with this request on it
            return self._wait_for(a, a.try_deadline, self._lb_failed)
        if station.error_rate and self.error_rng.uniform() < station.error_rate:
            return self._lb_failed(a, ERROR) if last else self._after(a, a.latency, lambda: self._lb_failed(a, ERROR))
        if last:
            return self._succeeded(a)
        a.k += 1
        self._stage(a)

    # ---------------------------------------------------------------------------------- dependencies

    def _dep_try(self, a: _Attempt) -> None:
        cluster, rec = self.cluster, self.rec
        now = self.env.now
        station, _, dep = a.stages[a.k]
        a.dep_tries += 1
        region = a.req.region
        w = rec.window_of(now)
        rec.dep_attempts[region][w] += 1
        if a.dep_tries == 1:
            budget = self.dep_budgets[dep]
            if budget is not None:
                budget.deposit()
        if cluster.dependency_down[dep]:
            return self._dep_failed(a, ERROR)
        deadline = min(a.try_deadline, now + self.server_policy.dependency_timeout)
        service = station.sample() * cluster.dependency_factor[dep]
        end = station.admit(now, service, deadline if self.cancel else _INF, _INF)
        if end < 0:
            return self._dep_failed(a, ERROR)
        if end > deadline:
            return self._at(a, deadline - now, self._dep_failed, a, TIMEOUT)
        self._at(a, end - now, self._dep_done, a)

    def _dep_done(self, a: _Attempt) -> None:
        # The calling thread waited for the answer: the server's worker is held that long (booked
        # with the server's own work, see docs/design.md).
        a.held += self.env.now - a.dep_started
        a.k += 1
        self._stage(a)

    def _dep_failed(self, a: _Attempt, status: str) -> None:
        now = self.env.now
        sp = self.server_policy
        _, _, dep = a.stages[a.k]
        if now >= a.try_deadline:
            return self._lb_failed(a, TIMEOUT)
        if a.dep_tries <= sp.dependency_retries:
            budget = self.dep_budgets[dep]
            if budget is None or budget.withdraw(now):
                rec = self.rec
                rec.dep_retries[a.req.region][rec.window_of(now)] += 1
                delay = backoff_delay(sp.dependency_backoff, a.dep_tries, a.dep_delay, self.retry_rng.uniform())
                a.dep_delay = delay
                if now + delay < a.try_deadline:
                    return self._after(a, delay, lambda: self._dep_try(a))
        if self.fallbacks[dep]:  # a fallback answers instead: the request carries on, degraded
            a.degraded = True
            cluster = self.cluster
            self._episode(FALLBACK_SERVING, FALLBACK_ENDED, ("fallback", dep, 0), cluster.dependency_ids[dep],
                          cluster.last_harm[a.dc], f"{cluster.dependency_ids[dep]} failed: answered degraded",
                          "requests answered degraded")
            return self._dep_done(a)
        # The server gives up on the dependency and answers the load balancer with an error; its worker
        # was held while it waited.
        self._hold_then_fail(a)

    def _hold_then_fail(self, a: _Attempt) -> None:
        now = self.env.now
        station = a.stages[-1][0]
        held = now - a.dep_started
        if not station.up or held <= 0:
            return self._lb_failed(a, ERROR)
        part = self.type_part[a.req.kind]
        start = station.first_free(part)
        end = station.admit(now, held, _INF, _INF, part)
        if part and (end < 0 or start - now > self.server_policy.overload_threshold):
            self._bulkhead_saturated(station, part, end < 0, start - now)
        if end < 0:
            return self._lb_failed(a, ERROR)
        self._after(a, min(end, a.try_deadline) - now,
                    lambda: self._lb_failed(a, ERROR if self.env.now < a.try_deadline else TIMEOUT))

    # ---------------------------------------------------------------------------------- helpers

    def _after(self, a: _Attempt, delay: float, fn: Callable[[], None]) -> None:
        if delay <= 0:
            a.gen += 1
            return fn()
        self._at(a, delay, fn)

    def _wait_for(self, a: _Attempt, deadline: float, on_timeout: Callable[[_Attempt, str], None]) -> None:
        """No answer is coming: the waiting layer times out at ``deadline``."""
        self._after(a, deadline - self.env.now, lambda: on_timeout(a, TIMEOUT))

    # ---------------------------------------------------------------------------------- listener / probe

    def server_down(self, server: int) -> None:
        """The server stopped: its queue and running work are lost."""
        self.stations[server].crash()
        if self.limits is not None:
            self.limits[server].reset()

    def server_up(self, server: int) -> None:
        """The server is running again, empty, and warming up."""
        station = self.stations[server]
        station.restart(self.env.now)
        warm = self.warm_up(server)
        if warm is not None:
            station.warm_until, station.warm_speed = warm

    def rotation_changed(self, datacenter: int) -> None:
        """Rebuild the load balancers' pool for ``datacenter`` (every server not drained while they panic)."""
        self.pools[datacenter] = [self.stations[i] for i in pool(self.cluster, datacenter)]

    def dependency_changed(self, dependency: int) -> None:
        """Dependencies are checked per request; nothing to rebuild."""

    def load_changed(self, region: int) -> None:
        """A surge began or ended: restart the region's arrivals at the new rate."""
        self._arrivals(region)

    def version_changed(self, server: int) -> None:
        """Another version runs on the server: its speed, error rate and leak; a fresh process's memory."""
        version = self.cluster.servers[server].version
        station = self.stations[server]
        station.speed, station.error_rate, station.leak_rate = version.speed, version.error_rate, version.leak_rate
        station.up_since = self.env.now

    def probe(self, server: int, timeout: float) -> bool:
        """A health check passes if the server is up and would start it within ``timeout``."""
        station = self.stations[server]
        return station.up and station.wait(self.env.now) < timeout

    def wait(self, server: int) -> float:
        """How long a request arriving at ``server`` now would wait (0 when it is down)."""
        station = self.stations[server]
        return station.wait(self.env.now) if station.up else 0.0

    def probe_all(self, timeout: float) -> np.ndarray:
        """:meth:`probe` for every server at once (a bool per server)."""
        stations, now = self.stations, self.env.now
        if self.evented:  # event stations: their own wait
            return np.fromiter((s.up and s.wait(now) < timeout for s in stations), bool, len(stations))
        up, wait = self._up_and_wait(now)
        return up & (wait < timeout)

    def wait_all(self) -> np.ndarray:
        """:meth:`wait` for every server at once (0 where it is down)."""
        stations, now = self.stations, self.env.now
        if self.evented:
            return np.fromiter((s.wait(now) if s.up else 0.0 for s in stations), float, len(stations))
        up, wait = self._up_and_wait(now)
        return np.where(up, wait, 0.0)

    def busy_time(self, servers: np.ndarray) -> np.ndarray:
        """Per server of ``servers``, the worker-seconds it has served since the start (exact: what its
        workers were booked for up to now, less what crashes lost).
        """
        stations, now = self.stations, self.env.now
        return np.fromiter((stations[i].busy_time(now) for i in servers.tolist()), float, len(servers))

    def _up_and_wait(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Whether each (booking) station is up, and :meth:`Station.wait`: max(0, earliest free worker - now)."""
        stations = self.stations
        up = np.fromiter([s.up for s in stations], bool, len(stations))
        free = np.fromiter([s.free[0] for s in stations], float, len(stations))
        return up, np.maximum(free - now, 0.0)

    # ---------------------------------------------------------------------------------- mail (sim.mail)

    def deliver(self, server: int, service: float, timeout: float, done: Callable[[bool], None]) -> None:
        """Book one mail delivery of nominal ``service`` seconds on ``server``; call ``done(ok)`` once.

        The booking is a mailbox stage's: the same FIFO queue, queue limit, shedding, speed, memory and
        epochs. A full queue fails at once; a server that is down, crashes with the delivery on it, or
        would finish after ``timeout`` fails when the sender stops waiting. Nothing is counted in the
        request tables.
        """
        env = self.env
        now = env.now
        station = self.stations[server]
        if station.up and station.memory is not None and station.out_of_memory(now) and self.crash_hook:
            self.crash_hook(server)
        if not station.up:
            return later(env, timeout, lambda _: done(False))
        deadline = now + timeout
        end = station.admit(now, service * station.service_factor(now), deadline if self.cancel else _INF,
                            self.max_wait)
        if end < 0:
            return done(False)
        if end >= deadline:
            return later(env, timeout, lambda _: done(False))
        epoch = station.epoch

        def finish(_: Any) -> None:
            if station.epoch != epoch:  # the server crashed with the delivery on it
                return later(env, deadline - env.now, lambda _: done(False))
            done(not (station.error_rate and self.error_rng.uniform() < station.error_rate))

        later(env, end - now, finish)
