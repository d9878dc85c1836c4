"""The flow engine: traffic moves as rates, vectorised over servers, per time step.

Faults, health checks, failovers, rollouts and detectors stay discrete events on the same SimPy loop
(they are shared with the request engine); only how traffic moves differs. Per step of ``dt``
seconds, for every region: the offered load plus the client retries that come due make client
attempts; the attempts go to the region's datacenter, where the load balancers spread their tries
over the pool; each try runs the front end, the dependency calls and the mailbox server holding the
active copy of the user's database, and crosses a link when those two are in different
datacenters. Every server is a fluid queue:

- its backlog (worker-seconds of work waiting) grows by the work admitted in the step and shrinks by
  its capacity (``workers`` seconds per second while up); a new try waits ``backlog / workers``;
- on top of that fluid wait, the stationary M/M/c wait at the server's current utilisation (Erlang C)
  gives the spread of waits below saturation, so latency percentiles and the share of tries past
  their timeout come out of the queue state;
- a full queue (``queue_limit``, ``max_queue_wait``) refuses the share of the step's work beyond its
  room; with deadline propagation the backlog never holds more than its callers would wait for.

Outcomes of the step use the state at its start (explicit Euler). Load-balancer and dependency
retries are resolved within the step (the retried tries load the servers in the same step); client
retries wait in a delay buffer per region and attempt number, spread over their backoff's jitter,
and come back as attempts when due. So retry storms, metastability, failover overload and
congestion emerge here as they do in the request engine. See docs/design.md for the approximations
and their limits.

The engine integrates lazily: its clock ``t`` trails the simulation clock; before the cluster
changes (``Cluster.before_change``) and at each step it catches up with the state as it was, then
reads the new state. Steps grow up to ``flow.max_step`` while nothing is queued or pending, and never
cross a metrics window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.engine.base import EngineBase, request_types
from sim.engine.pools import pool
from sim.metrics import COUNTERS, Recorder
from sim.policies import BALANCERS, Breaker, Budget, backoff_span
from sim.policies.balancers import PoolLoad
from sim.queueing import allen_cunneen, blocking, poisson_share, response_tail
from sim.rng import Streams
from sim.scenario import ClientPolicy, Scenario
from sim.schedule import later
from sim.workload import rate_function

__all__ = ["FlowEngine"]

_BINS = 240  # latency histogram: log-spaced bins from 0.1 ms to 1000 s (about 7% wide)
_LOG_LO, _LOG_HI = math.log(1e-4), math.log(1e3)
# The stochastic part of a try's time (stationary wait + service) is represented by these quantiles
# of an exponential with the same mean: (cumulative probability at the middle of the slice, share).
_SLICES = np.array([0.1, 0.3, 0.5, 0.7, 0.85, 0.925, 0.965, 0.985, 0.9925, 0.9975])
_SLICE_W = np.array([0.2, 0.2, 0.2, 0.2, 0.1, 0.05, 0.03, 0.01, 0.005, 0.005])
_Z = -np.log1p(-_SLICES)
_CENTRES = np.exp(_LOG_LO + (np.arange(_BINS) + 0.5) * (_LOG_HI - _LOG_LO) / _BINS)
_TINY = 1e-12
# A long step may begin while client retries are pending if they come due at under this share of the
# rate of attempts (pending / (timeout + longest backoff + longest step)): they come due within the
# step (averaged over it, as new requests are), and those its failures schedule come due from its end.
QUIET_RETRIES = 0.01
# Classes that stand (every class got one load) are taken again from scratch after this many steps, so
# that classes which have come to agree merge.
_REUSE = 32


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_ODD = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads the bits of unsigned 64-bit keys (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _bits(a: np.ndarray) -> np.ndarray:
    """The float64 bit pattern of each element, as unsigned 64-bit integers."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


RING_CELLS = 10_000_000
"""The most cells the client-retry ring may hold (slots × regions × retries × origin windows; two float
arrays of that size): the loader refuses a flow run that would need more."""


def retry_ring(client: ClientPolicy, dt: float, max_dt: float, window: float) -> tuple[int, int]:
    """Size of the client-retry ring: (slots of ``dt`` ahead, origin windows), enough for what can be pending.

    A retry is scheduled at most ``reach`` ahead: its timeout, the longest backoff its jitter can draw and,
    from a long step, two steps. The slots cover that (or the earlier sizing by ``backoff.max``, which
    a short exponential series may never reach, if smaller: either way nothing is clamped, so the answer
    is the same); a request lives for at most its retries' spans, which the origin windows cover.
    ``limits.max_drain`` bounds both, and the loader checks their product (:data:`RING_CELLS`).
    """
    b = client.backoff
    longest = max((backoff_span(b, k)[1] for k in range(1, client.retries + 1)), default=0.0)
    reach = max(client.timeout + longest, max_dt) + max_dt + longest + 2 * dt
    span = client.timeout + max(b.max, b.base) * 1.5 + dt
    slots = int(math.ceil(min(span + max_dt, reach) / dt)) + 2  # a long step may jump a whole span
    origins = int(math.ceil((client.retries + 1) * span / window)) + 2
    return slots, origins


class FlowEngine(EngineBase):
    """Rate-based simulation: an :class:`~sim.engine.base.Engine` whose answers change only at its steps."""

    quiet_ok = True  # its state changes only at its steps: the control plane may sleep between changes
    lump_from = 200  # from this many servers on, servers in the same state are computed once (_classes)

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, cluster: Cluster, streams: Streams, recorder: Recorder
    ):
        super().__init__(env, scenario, cluster, streams, recorder)
        settings = scenario.flow
        self.dt = settings.step
        self.max_dt = max(settings.step, settings.max_step)
        self.noise = np.random.default_rng(streams.generator("flow").integers(2**63)) if settings.noise else None
        self.error_rng = streams.stream("errors")
        self.health_rng = streams.generator("flow/health")  # a health check's wait is a draw
        self.memory_rng = streams.generator("flow/memory")  # so is the burst that runs a server out of memory
        self.health_timeout = scenario.policies.load_balancer.health_check.timeout
        policies = scenario.policies
        self.client, self.lb, self.sp = policies.client, policies.load_balancer, policies.server
        self.cancel = self.sp.cancellation
        self.changes = 0  # listener calls (servers, pools, versions): a change the next step must see
        self.was_settled = False

        servers = cluster.servers
        n = self.n = len(servers)
        self.workers = np.array([s.workers for s in servers], dtype=float)
        self.iworkers = np.array([s.workers for s in servers], dtype=np.int64)
        self.service = np.array([s.service.mean for s in servers])
        self.det = np.array([s.service.distribution == "deterministic" for s in servers])
        self.cs2 = np.array([0.0 if s.service.distribution == "deterministic"
                             else s.service.cv ** 2 if s.service.distribution == "lognormal" else 1.0
                             for s in servers])
        # The balancer decides where the work goes when no region has mailbox databases (otherwise a
        # database's server is given and arrivals are Poisson): then its fluid view gives the waits, from
        # each server's pool (rotation_changed). ``ca2``, 1/k in a pool of k unless the balancer picks at
        # random, is part of the classes' key.
        self.balancer = BALANCERS[scenario.policies.load_balancer.algorithm]
        self.balanced = not any(cluster.region_databases)
        self.in_pool = np.zeros(n, dtype=bool)
        self.pool_size = np.ones(n)
        self.ca2 = np.ones(n)
        self.smooth = self.balanced and scenario.policies.load_balancer.algorithm != "random"
        self.frontend = np.array([s.frontend_time for s in servers])
        limit = [s.queue_limit for s in servers]
        self.queue_limit = np.array([np.inf if q is None else q for q in limit], dtype=float)
        max_wait = self.sp.max_queue_wait
        self.max_wait = np.inf if max_wait is None else max_wait
        self.dc_of = np.array([s.datacenter for s in servers], dtype=np.int64)
        memory = [g.memory for g in self.groups]
        self.has_memory = np.array([m is not None for m in memory])
        self.mem_free = np.array([(m.limit - m.base) if m else np.inf for m in memory])
        self.mem_per = np.array([m.per_request if m else 1.0 for m in memory])
        # State, per server.
        self.up = np.ones(n, dtype=bool)
        self.speed = np.ones(n)
        self.warm_until = np.zeros(n)
        self.warm_speed = np.ones(n)
        self.err = np.zeros(n)
        self.leak = np.zeros(n)
        self.up_since = np.zeros(n)
        self.backlog = np.zeros(n)  # worker-seconds waiting
        self.load = np.zeros(n)  # worker-seconds per second offered in the last step (utilisation x workers)
        self.rate = np.zeros(n)  # tries per second admitted in the last step
        self.shed = np.zeros(n)  # share refused in the last step
        self.epoch = np.zeros(n, dtype=np.int64)
        self.mail_work = np.zeros(n)  # worker-seconds of mail delivered since the last step
        self.mail_tries = np.zeros(n)
        self._queue_state()
        # Servers in the same state are computed once (see _classes).
        self.lump = n >= self.lump_from
        self.revision = 0  # counts changes to servers made outside the steps (listener calls, warm-ups ending)
        self._cls_at = self._semi_at = -1
        self._reuse = 0  # steps the classes have stood since they were last taken
        self._groups: tuple = ()  # the last grouping of pairs (see _tries), and what it was taken from
        self.next_warm = math.inf  # the earliest end of a warm-up under way
        self.classes = 0  # classes of servers in the same state, summed over the steps (/ steps: the mean)
        static = np.zeros(n, dtype=np.uint64)
        for a in (self.dc_of, self.det, self.service, self.workers, self.queue_limit, self.cs2, self.frontend):
            static = _mix(static * _ODD + _bits(a))
        self._static_key = static

        deps = scenario.topology.dependencies
        self.n_deps = len(deps)
        self.dep_workers = np.array([d.workers for d in deps], dtype=float)
        self.dep_iworkers = np.array([d.workers for d in deps], dtype=np.int64)
        self.dep_service = np.array([d.service_time.mean for d in deps])
        self.dep_det = np.array([d.service_time.distribution == "deterministic" for d in deps])
        self.dep_limit = np.array([np.inf if d.queue_limit is None else d.queue_limit for d in deps], dtype=float)
        self.dep_backlog = np.zeros(self.n_deps)
        self.dep_load = np.zeros(self.n_deps)
        self.dep_shed = np.zeros(self.n_deps)
        self.dep_down = np.zeros(self.n_deps, dtype=bool)
        self.dep_factor = np.ones(self.n_deps)
        self._dep_state(np.zeros(self.n_deps))

        self.types = request_types(scenario)
        n_regions, n_dcs = len(cluster.region_ids), len(cluster.datacenter_ids)
        self.n_regions, self.n_dcs = n_regions, n_dcs
        loads = [scenario.workload.regions.get(r) for r in cluster.region_ids]
        self.rates = [rate_function(load) if load is not None else None for load in loads]
        self.rtt = np.array(cluster.rtt, dtype=float).reshape(n_regions, n_dcs)
        self.link_latency = np.array(cluster.link_latency, dtype=float).reshape(n_dcs, n_dcs)
        self.network = cluster.network
        self.between = np.array(self.network.between, dtype=np.int64).reshape(n_dcs, n_dcs)

        # Client retries waiting for their backoff: [slot, region, retry number - 1, origin window mod M].
        c = self.client
        self.attempts_max = c.retries + 1
        self.slots, self.origins = retry_ring(c, self.dt, self.max_dt, scenario.slo.window)
        # Pending retries come due within a timeout and a backoff, or a long step and its backoff.
        self.retry_span = c.timeout + max(c.backoff.max, c.backoff.base) + self.max_dt
        shape = (self.slots, n_regions, max(c.retries, 1), self.origins)
        self.ring = np.zeros(shape)
        self.ring_age = np.zeros(shape)  # sum of (age x mass): a retry's request arrived that long ago
        self.pending = 0.0  # mass in the ring
        self.traffic = self.retrying = 0.0  # attempts and retries per second in the last step
        self.step_end = 0.0  # end of the step under way: retries are scheduled after it

        # The policies' fluid views (Budget.fill / allow, Breaker.admits / observe).
        self.client_budgets = [Budget(c.budget) if c.budget else None for _ in range(n_regions)]
        self.breakers = [Breaker(c.breaker) if c.breaker else None for _ in range(n_regions)]
        lb = self.lb
        self.lb_budgets = [Budget(lb.budget) if lb.budget else None for _ in range(n_dcs)]
        db = self.sp.dependency_budget
        self.dep_budgets = [Budget(db) if db else None for _ in range(self.n_deps)]

        self.panicking = [False] * n_dcs
        self.pool_weight = np.zeros(n)  # a server's share of its datacenter's tries (0: not in the pool)
        self.misweights: dict[int, tuple[np.ndarray, float]] = {}
        for dc in range(n_dcs):
            self.rotation_changed(dc)
        # Entries: (region, server) pairs, one per server that can hold the active copy of one of the
        # region's databases (or, for a region without databases, every server of its datacenters: the
        # picked server does the mailbox work), then one "database unavailable" entry per region. Per
        # entry: the share of the region's first attempts that go there (``prior``), the client retries
        # pending there (``posterior``: a retry goes to the same database as its request); per entry of
        # the support (``sup``, see _support): where the retries due in the current step go (``spread``).
        pair_region: list[int] = []
        pair_server: list[int] = []
        self.own = np.zeros(n_regions, dtype=bool)
        self.region_dbs: list[np.ndarray] = []
        for r, dbs in enumerate(cluster.region_databases):
            if dbs:
                holders = sorted({s for db in dbs for s in cluster.copies[db]})
            else:
                self.own[r] = True
                holders = sorted({s for dc in cluster.region_preference[r] for s in cluster.servers_of_dc[dc]})
            pair_region += [r] * len(holders)
            pair_server += holders
            self.region_dbs.append(np.array(dbs, dtype=np.int64))
        self.pair_region = np.array(pair_region, dtype=np.int64)
        self.pair_server = np.array(pair_server, dtype=np.int64)
        P = self.n_pairs = len(pair_server)
        self.entry_region = np.concatenate([self.pair_region, np.arange(n_regions)])
        self.entry_own = self.own[self.entry_region]
        self.prior = np.zeros(P + n_regions)
        self.posterior = np.zeros(P + n_regions)
        # The entries a step looks at: pairs that have held a database's active copy (only they can
        # carry first attempts or pending retries), a region's own pairs, and the unavailable entries.
        self.in_sup = np.zeros(P + n_regions, dtype=bool)
        self.in_sup[P:] = True
        self.in_sup[:P] = self.own[self.pair_region]
        self._support()
        self.db_entry: np.ndarray | None = None  # per database of every region (concatenated): its entry
        all_dbs = [d for d in self.region_dbs if d.size]
        self.all_dbs = np.concatenate(all_dbs) if all_dbs else np.zeros(0, np.int64)
        self.all_db_region = np.concatenate([np.full(d.size, r) for r, d in enumerate(self.region_dbs) if d.size]) \
            if all_dbs else np.zeros(0, np.int64)
        self.region_db_weight = np.array([1.0 / d.size if d.size else 0.0 for d in self.region_dbs])
        self.entry_of = np.full((n_regions, n), -1, dtype=np.int64)  # (region, server) -> its entry
        self.entry_of[self.pair_region, self.pair_server] = np.arange(P)
        self.db_count = np.zeros(P + n_regions, dtype=np.int64)  # databases pointing at each entry
        self.db_order = np.argsort(self.all_dbs, kind="stable")  # where each database sits in all_dbs
        self.db_start = np.searchsorted(self.all_dbs[self.db_order], np.arange(len(cluster.active) + 1))
        self._log_read = 0
        self._seen: tuple = ()
        self._sync()

        # Counters as floats [region, window]; written to the recorder's tables (rounded) at the end.
        width = recorder.n + 1
        self.counts = {name: np.zeros((n_regions, width)) for name in COUNTERS}
        for name in COUNTERS:
            setattr(recorder, name, self.counts[name])
        self.dc_offered = np.zeros((n_dcs, width))
        recorder.dc_offered = self.dc_offered
        links = len(self.network.links)
        self.link_crossings = np.zeros((links, width))
        self.link_lost = np.zeros((links, width))
        self.link_bits = np.zeros((links, width))
        recorder.link_crossings, recorder.link_lost, recorder.link_bits = (
            self.link_crossings, self.link_lost, self.link_bits)
        self.hist = np.zeros((n_regions, _BINS))
        self.hist_window = 0
        self.wasted = self.queued = self.queue_time = 0.0
        recorder.flush = self._flush

        self.t = 0.0  # integrated up to here
        self.end = scenario.duration
        self.busy = False
        self.stale = False  # the cluster may have changed since the state was last read
        self.calm = 0  # steps since the state last changed
        cluster.before_change.append(self.catch_up)
        self.network.before_change.append(self.catch_up)
        self.steps = 0  # steps integrated (the benchmarks report it)

    # ---------------------------------------------------------------------------------- the clock

    def start(self) -> None:
        """Start stepping."""
        self.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, None, None]:
        end = self.end + self.drain_time()
        while self.t < end - 1e-9:
            target = min(self.t + self._step_length(), end)
            yield self.env.timeout(max(target - self.env.now, 0.0))
            self.catch_up()

    def _step_length(self) -> float:
        """Long steps while nothing (that matters) is queued, pending, refused, warming or breaking."""
        return self.max_dt if self._quiet() else self.dt

    def _quiet(self) -> bool:
        """Whether the state would not change over a long step: no backlog, next to no client retries
        (less than one pending, or retries under ``QUIET_RETRIES`` of the attempts in the last step and
        as few pending over the time they take to come due), no refusals, no server warming up, every
        breaker closed, no health check in doubt and no link saturated, for at least two base steps
        since the last change.
        """
        self._end_warmups(self.t)
        few_retries = self.pending < 1.0 or (self.retrying < QUIET_RETRIES * self.traffic
                                              and self.pending < QUIET_RETRIES * self.traffic * self.retry_span)
        if not (self.calm >= 2 and few_retries and float(self.dep_backlog.max(initial=0.0)) < 1e-9
                and self.next_warm == math.inf
                and all(b is None or b.state == "closed" for b in self.breakers)
                and not any(link.saturated is not None for link in self.network.links)):
            return False
        ix = self._classes()[0]  # one server of each class stands for all
        return (float(self.shed[ix].max(initial=0.0)) < 1e-6 and float(self.backlog[ix].max(initial=0.0)) < 1e-9
                and float(self.probe_failure(self.health_timeout, ix).max(initial=0.0, where=self.up[ix])) < 1e-6)

    def catch_up(self) -> None:
        """Integrate from ``t`` to now with the state as it was; the cluster may change right after
        (this is called before each change), so the state is read again before the next integration.
        """
        if self.busy:
            return
        now = self.env.now
        if now <= self.t + 1e-12:  # nothing to integrate: the state is read before the next step
            self.stale = True
            return
        if self.stale and self._sync():
            self.calm = 0  # the state changed: base steps until the engine has seen its effect
        self.stale = True
        self.busy = True
        h = 0.0
        try:
            window = self.rec.window
            while self.t < now - 1e-12:
                t = self.t
                h = now - t
                boundary = (math.floor(t / window + 1e-9) + 1) * window  # never cross a window
                h = min(h, boundary - t, self.max_dt)
                if self.pending > 0 and h > self.dt and not self._quiet():
                    slot_end = (math.floor(t / self.dt + 1e-9) + 1) * self.dt  # nor a retry slot
                    h = min(h, slot_end - t)
                if t < self.end < t + h:
                    h = self.end - t
                self._step(t, max(h, 1e-9))
                self.t = t + h
                self.calm += 1
            crashes = self._crashes(h)
        finally:
            self.busy = False
        for server in crashes:
            if self.crash_hook is not None:
                self.crash_hook(int(server))
        settled = self._settled()
        if not (settled and self.was_settled):  # the control plane's answers may have changed
            self.wake()
        self.was_settled = settled

    def _settled(self) -> bool:
        """Every running server passes a health check for certain and waits less than ``wake_floor``
        (set by the control plane): nothing a sweep decides can change.
        """
        ix = self._classes()[0]
        up = self.up[ix]
        if not up.any():
            return True
        return (float(self.probe_failure(self.health_timeout, ix)[up].max()) <= 1e-6
                and float(self.wait_now(ix)[up].max()) < self.wake_floor)

    def _sync(self) -> bool:
        """Read what the cluster changed without telling listeners: routes, active copies, load scales,
        dependencies. Returns whether anything did (listener calls count as changes too).
        """
        cluster = self.cluster
        state = (tuple(cluster.route), tuple(cluster.load_scale), tuple(cluster.dependency_down),
                 tuple(cluster.dependency_factor), len(cluster.active_log), self.changes)
        if state == self._seen:
            return False
        self._seen = state
        self.route = np.array(cluster.route, dtype=np.int64)
        self.scale = np.array(cluster.load_scale, dtype=float)
        self.dep_down = np.array(cluster.dependency_down, dtype=bool)
        self.dep_factor = np.array(cluster.dependency_factor, dtype=float)
        if (self.db_entry is None or len(cluster.active_log) != self._log_read) and self.all_dbs.size:
            self._move_databases()
        return True

    def _support(self) -> None:
        self.sup = np.flatnonzero(self.in_sup)  # pairs first (sorted), then the R unavailable entries
        self.sup_pairs = self.sup.size - self.n_regions
        self.sup_region = self.entry_region[self.sup]
        self.sup_own = self.entry_own[self.sup]
        self.spread = self.prior[self.sup]  # where the retries due in the step go, per entry of sup

    def _move_databases(self) -> None:
        """Point the databases whose active copy moved since the last call (``Cluster.active_log``) at
        their new entries: first attempts follow them (``prior``), and so do the client retries pending
        for them (``posterior``: an entry's pending retries are split evenly over its databases).
        """
        log = self.cluster.active_log
        if self.db_entry is None:
            at = np.arange(self.all_dbs.size)
        else:
            changed = np.unique(np.array(log[self._log_read:], dtype=np.int64))
            lo, hi = self.db_start[changed], self.db_start[changed + 1]
            at = self.db_order[np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(),
                                                                                strict=True)])] \
                if changed.size else np.zeros(0, np.int64)
        self._log_read = len(log)
        if not at.size:
            return
        region = self.all_db_region[at]
        act = np.array(self.cluster.active, dtype=np.int64)[self.all_dbs[at]] if self.db_entry is None \
            else np.array([self.cluster.active[d] for d in self.all_dbs[at].tolist()], dtype=np.int64)
        entry = np.where(act >= 0, self.entry_of[region, np.maximum(act, 0)], -1)
        entry = np.where(entry >= 0, entry, self.n_pairs + region)  # no active copy: unavailable
        if self.db_entry is None:
            self.db_entry = entry
        else:
            old = self.db_entry[at]
            moving = old != entry
            at, old, entry = at[moving], old[moving], entry[moving]
            if not at.size:
                return
            if self.posterior[~self.entry_own].any():  # pending retries move with databases
                per_db = self.posterior[old] / np.maximum(self.db_count[old], 1)
                np.subtract.at(self.posterior, old, per_db)
                np.add.at(self.posterior, entry, per_db)
                np.maximum(self.posterior, 0.0, out=self.posterior)
            np.subtract.at(self.db_count, old, 1)
            self.db_entry[at] = entry
        np.add.at(self.db_count, entry, 1)
        # A region's databases weigh the same: an entry's share of first attempts is count x weight.
        self.prior = np.where(self.entry_own, self.prior, self.db_count * self.region_db_weight[self.entry_region])
        if not self.in_sup[entry].all():
            self.in_sup[entry] = True
            self._support()

    # ---------------------------------------------------------------------------------- queue state

    def _queue_state(self, ix: Any = slice(None), inv: Any = slice(None)) -> None:
        """Waits and stationary queue parameters of every server, from its backlog and last load; computed
        for the servers ``ix`` (one per class of servers in the same state) and handed to all by ``inv``.
        """
        up, workers, load, rate = self.up[ix], self.workers[ix], self.load[ix], self.rate[ix]
        cap = np.where(up, workers, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fluid_wait = np.where(cap > 0, self.backlog[ix] / np.maximum(cap, _TINY), 0.0)
            per_try = np.where(rate > 0, load / np.maximum(rate, _TINY), self.service[ix])
        if self.balanced:  # the balancer's fluid view: how it spreads the waits
            shared, serving = self._pool_load()
            wait_p, theta = self.balancer.fluid_wait(PoolLoad(load, shared[ix], workers, self.iworkers[ix], per_try,
                                                              self.cs2[ix], self.pool_size[ix], serving[ix]))
        else:  # the databases decide: Poisson arrivals
            wait_p, theta = allen_cunneen(load, workers, self.iworkers[ix], per_try, self.ca2[ix], self.cs2[ix])
        self.fluid_wait, self.wait_p, self.theta, self.per_try = fluid_wait[inv], wait_p[inv], theta[inv], per_try[inv]

    def _pool_load(self) -> tuple[np.ndarray, np.ndarray]:
        """Per server: the load it would carry at its pool's utilisation (the running members' load over
        their workers; its own load outside a pool) and the running members of its pool (at least 1).
        """
        running = self.in_pool & self.up
        dcs = len(self.cluster.datacenter_ids)
        load = np.bincount(self.dc_of, weights=np.where(running, self.load, 0.0), minlength=dcs)
        workers = np.bincount(self.dc_of, weights=np.where(running, self.workers, 0.0), minlength=dcs)
        serving = np.bincount(self.dc_of, weights=running, minlength=dcs)
        rho = np.where(workers > 0, load / np.maximum(workers, _TINY), 0.0)[self.dc_of]
        shared = np.where(self.in_pool & (workers[self.dc_of] > 0), rho * self.workers, self.load)
        return shared, np.where(self.in_pool, np.maximum(serving[self.dc_of], 1.0), 1.0)

    def _end_warmups(self, t: float) -> None:
        """Warm-ups that have ended by ``t`` are forgotten (their servers join the classes of their peers)."""
        if t < self.next_warm - 1e-12:
            return
        ended = (self.warm_until > 0.0) & (self.warm_until <= t + 1e-12)
        self.warm_until[ended] = 0.0
        going = self.warm_until[self.warm_until > 0.0]
        self.next_warm = float(going.min()) if going.size else math.inf
        self.revision += 1

    def _classes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Servers in the same state, as (one server per class, each server's class, class sizes).

        A class holds servers equal in everything a step reads of them (a 64-bit hash of it: a
        collision, about one chance in 10^10 for 10^5 distinct states, would merge two). Servers equal
        at one step that get equal loads stay equal: the step computes one server per class and hands
        the result to all. Listener calls and warm-ups ending split classes (the key is taken again).
        """
        if self._cls_at != self.revision:
            self._set_classes(self.backlog, self.load, self.rate, self.shed)
        return self._cls

    def _semi_key(self) -> np.ndarray:
        """The hash of what changes only when listeners are called (or a warm-up ends)."""
        if self._semi_at != self.revision:
            key = self._static_key
            for a in (self.up, self.err, self.speed, self.warm_until, self.warm_speed, self.pool_weight, self.ca2):
                key = key * _ODD + _bits(a)
            self._semi, self._semi_at = _mix(key), self.revision
        return self._semi

    def _set_classes(self, *state: np.ndarray) -> None:
        """Take the classes from what listeners change (``_semi_key``) and the per-server ``state``."""
        if self.lump:
            key = self._semi_key()
            for a in state:
                key = key * _ODD + _bits(a)
            _, ix, inv = np.unique(key, return_index=True, return_inverse=True)
        else:
            ix = inv = np.arange(self.n)
        self._cls = (ix, inv, np.bincount(inv, minlength=ix.size).astype(float))
        self._cls_at = self.revision
        self._reuse = 0

    def wait_now(self, ix: Any = slice(None)) -> np.ndarray:
        """Expected wait of a try arriving now at each server ``ix`` (fluid backlog plus stationary wait)."""
        return self.fluid_wait[ix] + self.wait_p[ix] / self.theta[ix]

    # ---------------------------------------------------------------------------------- one step

    def _step(self, t: float, h: float) -> None:
        self.steps += 1
        self.step_end = t + h
        rec = self.rec
        w = min(int(t / rec.window + 1e-9), rec.n)
        if w != self.hist_window:
            self._flush()  # latency samples belong to the window they were taken in
            self.hist_window = w
        counts = self.counts
        R = self.n_regions
        self._end_warmups(t)

        # 1. Attempts: new requests, and the client retries that come due in [t, t + h).
        new = np.zeros(R)
        if t < self.end:
            for r, fn in enumerate(self.rates):
                if fn is not None:
                    new[r] = fn(t + h / 2) * self.scale[r] * h
            if self.noise is not None:
                new = self.noise.poisson(new).astype(float)
            counts["requests"][:, w] += new
        by_attempt = np.zeros((R, self.attempts_max, self.origins))  # [region, attempt - 1, origin window]
        age = np.zeros_like(by_attempt)
        by_attempt[:, 0, w % self.origins] = new
        retry_mass = np.zeros(R)
        if self.pending > 0:
            k = int(math.floor(t / self.dt + 1e-9))
            slot = k % self.slots
            left = (k + 1) * self.dt - t
            if h > left + 1e-9:  # a long step: every slot that starts before its end comes due
                last = int(math.ceil((t + h) / self.dt - 1e-9)) - 1
                idx = np.arange(k, last + 1) % self.slots
                due, due_age = self.ring[idx].sum(axis=0), self.ring_age[idx].sum(axis=0)
                self.ring[idx] = 0.0
                self.ring_age[idx] = 0.0
            else:
                take = min(1.0, h / left) if left > 0 else 1.0
                due = self.ring[slot] * take
                due_age = self.ring_age[slot] * take
                self.ring[slot] -= due
                self.ring_age[slot] -= due_age
            self.pending = max(0.0, self.pending - float(due.sum()))
            by_attempt[:, 1:, :] += due[:, : self.attempts_max - 1, :]
            age[:, 1:, :] += due_age[:, : self.attempts_max - 1, :]
            retry_mass = due.sum(axis=(1, 2))
            # The retries due now leave the pending ones, from where they are pending.
            sup, er = self.sup, self.sup_region
            post = self.posterior[sup]
            held = np.bincount(er, weights=post, minlength=R)
            share = np.where(held > 0, retry_mass / np.maximum(held, _TINY), 0.0)
            has = held > 0
            self.spread = np.where(has[er], post / np.maximum(held, _TINY)[er], self.prior[sup])
            self.posterior[sup] = post * np.maximum(0.0, 1.0 - share)[er]
        else:
            self.spread = self.prior[self.sup]
        attempts = by_attempt.sum(axis=(1, 2))
        self.traffic = float(attempts.sum()) / h
        self.retrying = float(attempts.sum() - new.sum()) / h
        for r, budget in enumerate(self.client_budgets):
            if budget is not None:
                budget.fill(float(new[r]), h)
        counts["attempts"][:, w] += attempts
        counts["retries"][:, w] += attempts - new

        # 2. Breakers: the share of each region's attempts that is sent.
        sent = np.ones(R)
        for r, breaker in enumerate(self.breakers):
            if breaker is not None:
                sent[r] = breaker.admits(t)
                if breaker.state == "half_open" and attempts[r] > 0:
                    sent[r] = min(1.0, breaker.policy.probes / attempts[r])
        counts["breaker_rejected"][:, w] += attempts * (1.0 - sent)
        first = new
        later_ = attempts - first
        mass0, mass_r = first * sent, later_ * sent
        routed = self.route >= 0
        mass0, mass_r = mass0 * routed, mass_r * routed

        # 3. The tries, the outcomes and the loads, for every region and mailbox server at once.
        out = self._tries(t, h, w, mass0, mass_r)
        s0, sr, e0, er, t0, tr, fails, hist = out
        shares = np.zeros((R, 2, 3))  # [region, first attempt or retry, ok / error / timeout]
        for cls, (s, to, raw) in enumerate(((s0, t0, first), (sr, tr, later_))):
            with np.errstate(invalid="ignore", divide="ignore"):
                safe = np.maximum(raw, _TINY)
                shares[:, cls, 0] = np.where(raw > 0, s / safe, 0.0)
                shares[:, cls, 2] = np.where(raw > 0, to / safe, 0.0)
                shares[:, cls, 1] = np.where(raw > 0, np.maximum(0.0, 1.0 - shares[:, cls, 0] - shares[:, cls, 2]), 0.0)

        # 4. Client outcomes: successes by origin window, failures retried after a backoff or given up.
        retried = self._client_outcomes(t, w, by_attempt, age, shares, hist)
        failed = np.bincount(self.sup_region, weights=fails, minlength=R)  # ``fails`` is per entry of sup
        keep = np.where(failed > 0, retried / np.maximum(failed, _TINY), 0.0)
        self.posterior[self.sup] += fails * keep[self.sup_region]

        # 5. Breakers learn the step's outcome (of the attempts they let through).
        for r, breaker in enumerate(self.breakers):
            through = attempts[r] * sent[r]
            if breaker is not None and through > 0:
                lost = (e0[r] + t0[r] + er[r] + tr[r]) if routed[r] else through
                u = self.noise.uniform() if self.noise is not None else None
                state = breaker.observe(t + h, through, max(0.0, lost), u)
                if state is not None:
                    self.cluster.breaker_changed(r, state)

    def _tries(self, t: float, h: float, w: int, mass0: np.ndarray, mass_r: np.ndarray) -> tuple:
        """Send the step's attempts: per region ``mass0`` first attempts (spread over the mailbox servers
        as the region's databases are) and ``mass_r`` retries (spread as their failures were). The load
        balancers of each region's datacenter spread the tries over their pool; retries on other servers
        are resolved here. Queues and links move on at the end.

        Returns per region the successes, errors and timeouts of first attempts and of retries, the
        failures per entry of the support (``sup``) and the latency histogram of the successes.
        """
        counts = self.counts
        c, lb = self.client, self.lb
        R, P, D, n = self.n_regions, self.n_pairs, self.n_dcs, self.n
        links = len(self.network.links)
        T = c.timeout
        tt = min(T, lb.try_timeout) if lb.try_timeout is not None else T
        reg = self.entry_region
        route = self.route
        # Per class of servers in the same state (one server stands for each, ``size`` of them).
        ix, cls, size = self._classes()
        speed_k = self.speed[ix] * np.where(self.warm_until[ix] > t, self.warm_speed[ix], 1.0)
        # Per datacenter: the pool's running share and what a try sees at the front end (averaged).
        pw, dc_k = self.pool_weight[ix], self.dc_of[ix]
        dc_of = self.dc_of
        up_w = pw * self.up[ix]  # a server's share of the tries, if up
        up_share = np.bincount(dc_k, weights=up_w * size, minlength=D)
        has_pool = np.bincount(dc_k, weights=pw * size, minlength=D) > 0
        fw = np.where(up_share[dc_k] > 0, up_w / np.maximum(up_share[dc_k], _TINY), 0.0) * size  # the class's
        front_wait = np.bincount(dc_k, weights=fw * self.wait_now(ix), minlength=D)
        front_shed = np.bincount(dc_k, weights=fw * self.shed[ix], minlength=D)
        front_err = np.bincount(dc_k, weights=fw * self.err[ix], minlength=D)
        front_time = np.bincount(dc_k, weights=fw * self.frontend[ix] / speed_k, minlength=D)
        # Per region (the datacenter it is routed to): what its tries meet at the front ends.
        own_r = self.own
        dsafe = np.maximum(route, 0)
        q_down = np.where(own_r, 0.0, 1.0 - up_share[dsafe])  # tries reaching a front end that is down
        f_shed = np.where(own_r, 0.0, front_shed[dsafe])
        f_err = np.where(own_r, 0.0, front_err[dsafe])
        frontend = np.where(own_r, 0.0, front_time[dsafe] + front_wait[dsafe])
        no_pool = (route < 0) | ~has_pool[dsafe]
        # Attempts per entry of the support (``sup``: the pairs that can carry any, then the unavailable
        # entries). A region without databases sends its tries to the pool's servers directly.
        sup, er, Ps = self.sup, self.sup_region, self.sup_pairs
        spread = self.spread
        if self.own.any():
            own_p = self.entry_own[:P]
            sp_ = self.pair_server[own_p]
            in_dc = dc_of[sp_] == route[self.pair_region[own_p]]
            self.prior[:P][own_p] = np.where(in_dc, self.pool_weight[sp_], 0.0)
            spread = np.where(self.sup_own, self.prior[sup], spread)
        prior = self.prior[sup]
        weights = mass0[er] * prior + mass_r[er] * spread
        share0 = np.where(weights > 0, mass0[er] * prior / np.maximum(weights, _TINY), 0.0)
        # Only the pairs that carry attempts in this step (the active copies, and where retries wait),
        # and every region's "database unavailable" entry.
        live_at = np.flatnonzero(weights[:Ps] > 0)  # where in sup
        live = sup[live_at]
        # Pairs whose server is in the same state see the same outcomes: one row per group of them (a
        # region and a class of servers), carrying the group's attempts; loads and failures are handed
        # back to the pairs in proportion to their attempts at the end.
        live_w = weights[live_at]
        b_all = self.pair_server[live]
        cached = self._groups
        if cached and cached[0] is self._cls and cached[1] is sup and np.array_equal(cached[2], live_at):
            rep, inv = cached[3], cached[4]  # the same classes and pairs: the same groups
        else:
            key = cls[b_all] * R + self.pair_region[live]
            _, rep, inv = np.unique(key, return_index=True, return_inverse=True) if self.lump \
                else (None, np.arange(live.size), np.arange(live.size))
            self._groups = (self._cls, sup, live_at, rep, inv)
        group_w = np.bincount(inv, weights=live_w)
        group_m0 = np.bincount(inv, weights=live_w * share0[live_at])
        sel = np.concatenate([live[rep], np.arange(P, P + R)])
        P = rep.size
        reg = reg[sel]
        d_e, own_e, q_down = route[reg], own_r[reg], q_down[reg]  # d_e: each row's datacenter (-1: no route)
        f_shed, f_err, frontend, no_pool = f_shed[reg], f_err[reg], frontend[reg], no_pool[reg]
        weights = np.concatenate([group_w, weights[Ps:]])
        share0 = np.concatenate([np.where(group_w > 0, group_m0 / np.maximum(group_w, _TINY), 0.0), share0[Ps:]])
        pair_region = self.pair_region[sel[:P]]
        # Per pair: the mailbox server, the link to it and what crossing costs.
        b = self.pair_server[sel[:P]]
        bdc = dc_of[b]
        speed_b = speed_k[cls[b]]
        dp = d_e[:P]
        link = np.where(own_e[:P] | (dp < 0), -1, self.between[np.maximum(dp, 0), bdc])
        crosses = (bdc != dp) & (link >= 0)
        delay_l, loss_l = self._link_state()
        b_loss = loss_l[link] * crosses  # index -1 is the "no link" entry: no loss, no delay
        b_delay = delay_l[link] * crosses + np.where((bdc != dp) & (dp >= 0),
                                                     self.link_latency[np.maximum(dp, 0), bdc], 0.0)
        rtt = self.rtt[pair_region, np.maximum(dp, 0)]
        b_up = self.up[b]
        b_shed, b_err, b_wait = self.shed[b], self.err[b], self.fluid_wait[b]
        b_wp, b_theta = self.wait_p[b], self.theta[b]
        qd = q_down[:P]
        fsh, fer = f_shed[:P], f_err[:P]

        S = np.zeros(P + R)
        E = np.zeros(P + R)
        TO = np.zeros(P + R)
        work_g = np.zeros(P)  # per group of pairs: the work, demand and tries it brings its servers
        demand_g = np.zeros(P)
        tries_g = np.zeros(P)
        dep_calls = np.zeros(self.n_deps)
        dep_work = np.zeros(self.n_deps)
        l_bps = np.zeros(links)
        hist = np.zeros((R, _BINS))
        dc_tries = np.zeros(D)
        lb_retries = np.zeros(R)
        shed = np.zeros(R)
        dep_attempts = np.zeros(R)
        dep_retries = np.zeros(R)
        front_dc = np.zeros(D)  # tries per second reaching each datacenter's front ends
        budget_dc = [bud for bud in self.lb_budgets]
        for share_t, work_t, deps, bits in self.types:
            tries0 = weights * share_t
            if not tries0.any():
                continue
            dep_ok, dep_time, dep_retry, dep_per_try, held = self._dependencies(deps, tt, h, float(tries0.sum()))
            svc = self.service[b] * work_t / speed_b
            base = rtt + b_delay + frontend[:P] + dep_time + b_wait
            tau = tt - base
            p_late = response_tail(tau, svc, b_wp, b_theta, self.det[b])
            reach = (1.0 - b_loss) * (1.0 - fsh) * (1.0 - fer) * dep_ok
            ok_b = reach * b_up * (1.0 - b_shed) * (1.0 - p_late) * (1.0 - b_err)
            err_b = ((1.0 - b_loss) * (fsh + (1.0 - fsh) * fer + (1.0 - fsh) * (1.0 - fer) * (1.0 - dep_ok))
                     + reach * b_up * (b_shed + (1.0 - b_shed) * (1.0 - p_late) * b_err))
            # Per try and entry: success, error, timeout (the database-unavailable entries: an error).
            p_s = np.concatenate([(1.0 - qd) * ok_b, np.zeros(R)])
            p_e = np.concatenate([(1.0 - qd) * err_b, 1.0 - q_down[P:]])
            p_s = np.where(no_pool, 0.0, p_s)
            p_e = np.where(no_pool, 1.0, p_e)
            p_t = np.maximum(0.0, 1.0 - p_s - p_e)
            # Load-balancer tries, grouped by how many timed out so far (each took ``tt``).
            if any(bud is not None for bud in budget_dc):
                firsts = np.bincount(np.maximum(d_e, 0), weights=tries0 * (d_e >= 0), minlength=D)
                for d, bud in enumerate(budget_dc):
                    if bud is not None:
                        bud.fill(float(firsts[d]), h)
            state = {0: tries0}
            n_tries = np.zeros(P + R)
            s_tot, e_tot, t_tot, elapsed = (np.zeros(P + R) for _ in range(4))
            for k in range(lb.retries + 1):
                nxt: dict[int, np.ndarray] = {}
                for j, mj in state.items():
                    n_tries += mj
                    s_tot += mj * p_s
                    if j:
                        elapsed += mj * p_s * j * tt
                    err_m, to_m = mj * p_e, mj * p_t
                    if (j + 1) * tt >= T - 1e-9:  # this try ran into the client's deadline
                        t_tot += to_m
                        to_m = np.zeros(P + R)
                    retry = err_m + to_m
                    if k < lb.retries and retry.any():
                        allowed = np.ones(P + R)
                        if any(bud is not None for bud in budget_dc):
                            want = np.bincount(np.maximum(d_e, 0), weights=retry * (d_e >= 0), minlength=D)
                            share_dc = np.array([bud.allow(float(want[d])) if bud is not None else 1.0
                                                 for d, bud in enumerate(budget_dc)])
                            allowed = share_dc[np.maximum(d_e, 0)]
                        lb_retries += np.bincount(reg, weights=retry * allowed, minlength=R)
                        e_tot += retry * (1.0 - allowed)
                        nxt[j] = nxt.get(j, 0.0) + err_m * allowed
                        nxt[j + 1] = nxt.get(j + 1, 0.0) + to_m * allowed
                    else:
                        e_tot += retry
                state = nxt
            S += s_tot
            E += e_tot
            TO += t_tot
            dc_tries += np.bincount(np.maximum(d_e, 0), weights=n_tries * (d_e >= 0), minlength=D)
            nb = n_tries[:P] * (1.0 - qd) * ~no_pool[:P]  # tries reaching a running front end, per pair
            shed += np.bincount(pair_region, weights=nb * ((1.0 - b_loss) * fsh + reach * b_up * b_shed),
                                minlength=R)
            # Loads per second: front ends (spread over the pool), dependencies, mailbox servers.
            front_tries = np.bincount(np.maximum(dp, 0), weights=nb * ~own_e[:P] * (1.0 - fsh), minlength=D) / h
            if front_tries.any():
                front_dc += front_tries
            into_back = nb / h * (1.0 - b_loss) * (1.0 - fsh) * (1.0 - fer) * b_up
            booked = into_back * (1.0 - b_shed)
            work_b = dep_ok * svc + held
            if self.cancel:  # work that would start after its caller gave up is not done
                work_b = np.where(b_wait > tau, 0.0, work_b)
            work_g += booked * work_b
            demand_g += into_back * work_b
            tries_g += booked
            self.wasted += float((booked * dep_ok * p_late).sum()) * h
            self.queued += float((booked * np.minimum(1.0, b_wp + (b_wait > 0))).sum()) * h
            self.queue_time += float((booked * (b_wait + b_wp / b_theta)).sum()) * h
            calls = np.bincount(pair_region, weights=into_back, minlength=R) * h
            dep_attempts += float(dep_per_try.sum()) * calls
            dep_retries += dep_retry * calls
            dep_calls += dep_per_try * float(calls.sum()) / h
            dep_work += dep_per_try * float(calls.sum()) / h * self.dep_service * self.dep_factor
            if crosses.any():
                across = nb * (1.0 - fsh) * crosses  # tries put on a link
                on = link[crosses]
                l_bps += np.bincount(on, weights=across[crosses] / h * bits, minlength=links)
                self.link_crossings[:, w] += np.bincount(on, weights=across[crosses], minlength=links)
                self.link_lost[:, w] += np.bincount(on, weights=(across * b_loss)[crosses], minlength=links)
            # Latency of the successes: the deterministic part plus slices of the stochastic part (an
            # exponential of the same mean) cut at the try's deadline, plus the earlier tries' time.
            ok_mass = s_tot[:P]
            if ok_mass.any():
                mean = svc + b_wp / b_theta
                extra = np.where(ok_mass > 0, elapsed[:P] / np.maximum(ok_mass, _TINY), 0.0)
                if P > 4096:  # many servers: one latency profile per (region, datacenter), mass-weighted
                    group = pair_region * D + bdc
                    gm = np.bincount(group, weights=ok_mass, minlength=R * D)
                    keep_g = gm > 0
                    gsafe = np.maximum(gm, _TINY)
                    base_g = np.bincount(group, weights=ok_mass * (base + extra), minlength=R * D) / gsafe
                    mean_g = np.bincount(group, weights=ok_mass * mean, minlength=R * D) / gsafe
                    tau_g = tt - np.bincount(group, weights=ok_mass * base, minlength=R * D) / gsafe
                    rows = np.nonzero(keep_g)[0]
                    self._histogram(hist, rows // D, gm[rows], base_g[rows], mean_g[rows], tau_g[rows])
                else:
                    self._histogram(hist, pair_region, ok_mass, base + extra, mean, tau)
        counts["lb_retries"][:, w] += lb_retries
        counts["shed"][:, w] += shed
        counts["dep_attempts"][:, w] += dep_attempts
        counts["dep_retries"][:, w] += dep_retries
        self.dc_offered[:, w] += dc_tries
        s0 = np.bincount(reg, weights=S * share0, minlength=R)
        e0 = np.bincount(reg, weights=E * share0, minlength=R)
        t0 = np.bincount(reg, weights=TO * share0, minlength=R)
        sr = np.bincount(reg, weights=S, minlength=R) - s0
        er = np.bincount(reg, weights=E, minlength=R) - e0
        tr = np.bincount(reg, weights=TO, minlength=R) - t0
        # Regions with no route: every attempt is an error at once.
        unrouted = route < 0
        e0 = np.where(unrouted, mass0, e0)
        er = np.where(unrouted, mass_r, er)
        # Back to the pairs: each carries its share of its group's attempts.
        lost = np.where(own_e, 0.0, E + TO)
        part = np.where(group_w > 0, 1.0 / np.maximum(group_w, _TINY), 0.0)[inv] * live_w
        fails = np.zeros(sup.size)  # per entry of sup
        fails[live_at] = lost[:P][inv] * part
        fails[Ps:] = lost[P:]
        # (float even with no pair carrying attempts: numpy counts an empty input in integers)
        work = np.bincount(b_all, weights=work_g[inv] * part, minlength=n).astype(float, copy=False)
        demand = np.bincount(b_all, weights=demand_g[inv] * part, minlength=n).astype(float, copy=False)
        tries_at = np.bincount(b_all, weights=tries_g[inv] * part, minlength=n).astype(float, copy=False)
        if front_dc.any():  # per server of each class
            to_front = front_dc[dc_k] * np.where(size > 0, fw / np.maximum(size, 1.0), 0.0)
            front_work = (to_front * self.frontend[ix] / speed_k)[cls]
            work += front_work
            demand += front_work
            tries_at += (to_front * (self.frontend[ix] > 0))[cls]
        if self.mail_tries.any():  # mail delivered during the step is load too
            work += self.mail_work / h
            demand += self.mail_work / h
            tries_at += self.mail_tries / h
            self.mail_work[:] = 0.0
            self.mail_tries[:] = 0.0
        # Queues move on; links carry what crossed them.
        self._advance_queues(work, demand, tries_at, dep_calls, dep_work, h, t)
        self.link_bits[:, w] += l_bps * h
        for i, lk in enumerate(self.network.links):
            if l_bps[i] > 0 or lk.rate > 0:
                self.network.carry(i, float(l_bps[i]), h, self.types[0].bits)
        return s0, sr, e0, er, t0, tr, fails, hist

    @staticmethod
    def _histogram(hist: np.ndarray, region: np.ndarray, mass: np.ndarray, base: np.ndarray, mean: np.ndarray,
                   tau: np.ndarray) -> None:
        """Add ``mass`` successes per row at latency ``base`` + an exponential of ``mean`` cut at ``tau``."""
        values = base[:, None] + mean[:, None] * _Z[None, :]
        keep = (mean[:, None] * _Z[None, :]) <= np.maximum(tau, 0.0)[:, None] + 1e-12
        slice_w = _SLICE_W[None, :] * keep
        norm = slice_w.sum(axis=1)
        slice_w[norm == 0, 0] = 1.0  # everything cut: keep the median slice
        norm = np.maximum(slice_w.sum(axis=1), _TINY)
        weight = mass[:, None] * slice_w / norm[:, None]
        bins = np.clip(((np.log(np.maximum(values, 1e-4)) - _LOG_LO) / (_LOG_HI - _LOG_LO) * _BINS)
                       .astype(np.int64), 0, _BINS - 1)
        flat = (region[:, None] * _BINS + bins).ravel()
        hist += np.bincount(flat, weights=weight.ravel(), minlength=hist.size).reshape(hist.shape)

    def _dependencies(self, deps: tuple[int, ...], tt: float, h: float,
                      tries: float) -> tuple[float, float, float, np.ndarray, float]:
        """Dependency calls of a request type, per try reaching them: the share whose calls all succeed,
        their time, the retries, calls per dependency, and the worker time held while calling.
        """
        per_try = np.zeros(self.n_deps)
        retries_per_try = 0.0
        if not deps:
            return 1.0, 0.0, retries_per_try, per_try, 0.0
        sp = self.sp
        ok_all, time_ok, held = 1.0, 0.0, 0.0
        limit = min(sp.dependency_timeout, tt)
        for d in deps:
            if self.dep_down[d]:
                fail_one, t_one, t_fail = 1.0, 0.0, 0.0
            else:
                svc = self.dep_service[d] * self.dep_factor[d]
                wait = self.dep_wait[d]
                late = float(response_tail(np.array([limit - wait]), np.array([svc]), np.array([self.dep_wait_p[d]]),
                                   np.array([self.dep_theta[d]]), np.array([self.dep_det[d]]))[0])
                shed = self.dep_shed[d]
                fail_one = 1.0 - (1.0 - shed) * (1.0 - late)
                t_one = wait + svc
                t_fail = (late * (1.0 - shed) * limit) / max(fail_one, _TINY)
            budget = self.dep_budgets[d]
            calls, reach, spent, p_fail_all = 0.0, 1.0, 0.0, 1.0
            for k in range(sp.dependency_retries + 1):
                calls += reach
                spent += reach * fail_one * t_fail
                p_fail = reach * fail_one
                if k == sp.dependency_retries or p_fail <= 1e-12:
                    p_fail_all = p_fail
                    break
                share = budget.allow(p_fail * tries) if budget is not None else 1.0
                retries_per_try += p_fail * share
                p_fail_all = p_fail * (1.0 - share)
                reach = p_fail * share
            if budget is not None:
                budget.fill(tries, h)
            per_try[d] += calls
            p_ok = 1.0 - p_fail_all
            ok_all *= p_ok
            time_ok += t_one
            held += p_ok * t_one + spent
        return ok_all, time_ok, retries_per_try, per_try, held

    def _link_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Per link, the delay and loss a crossing sees now; a last entry (index -1) for "no link"."""
        links = self.network.links
        delay = np.zeros(len(links) + 1)
        loss = np.zeros(len(links) + 1)
        bits = self.types[0].bits
        for i in range(len(links)):
            delay[i], loss[i] = self.network.conditions(i, bits)
        return delay, loss

    def _client_outcomes(self, t: float, w: int, by_attempt: np.ndarray, age: np.ndarray, shares: np.ndarray,
                         hist: np.ndarray) -> np.ndarray:
        """Count successes in their requests' windows; retry failures after a backoff, or give up.

        ``shares[region, cls]`` is (ok, error, timeout) per attempt, for first attempts (cls 0) and
        retries (cls 1). Returns the retried mass per region.
        """
        counts = self.counts
        c = self.client
        R = self.n_regions
        cls = np.minimum(np.arange(self.attempts_max), 1)  # attempt number - 1 -> class
        per = shares[:, cls, :]  # [region, attempt, outcome]
        by_r = by_attempt.sum(axis=2)  # [region, attempt]
        counts["errors"][:, w] += (by_r * per[:, :, 1]).sum(axis=1)
        counts["timeouts"][:, w] += (by_r * per[:, :, 2]).sum(axis=1)
        origin_windows = np.array([w - ((w - m) % self.origins) for m in range(self.origins)])
        valid = origin_windows >= 0
        ok_by_origin = (by_attempt * per[:, :, 0, None]).sum(axis=1)  # [region, origin]
        for m in np.nonzero(valid)[0]:
            counts["ok"][:, origin_windows[m]] += ok_by_origin[:, m]
        # Latency: each success's try time plus how long ago its request arrived (the mean age of the
        # step's successful retries; first attempts have none).
        ok_retry = by_r[:, 1:] * per[:, 1:, 0]  # [region, attempt - 2]
        ok_all = (by_r * per[:, :, 0]).sum(axis=1)
        for r in np.nonzero(hist.any(axis=1))[0]:
            row = hist[r]
            aged = float(ok_retry[r].sum())
            if aged > 0:
                mean_age = float((age[r, 1:].sum(axis=1) * per[r, 1:, 0]).sum() / aged)
                share_aged = min(1.0, aged / max(float(ok_all[r]), _TINY))
                if mean_age > 0:
                    bins = np.clip(((np.log(_CENTRES + mean_age) - _LOG_LO) / (_LOG_HI - _LOG_LO) * _BINS)
                                   .astype(np.int64), 0, _BINS - 1)
                    row = row * (1.0 - share_aged) + np.bincount(bins, weights=row * share_aged, minlength=_BINS)
            self.hist[r] += row
        # Failures: retried within the attempts and the budget, or given up.
        fail_share = per[:, :, 1] + per[:, :, 2]  # [region, attempt]
        retried = np.zeros(R)
        for a in range(self.attempts_max):
            mass = by_attempt[:, a, :] * fail_share[:, a, None]  # [region, origin]
            if not mass.any():
                continue
            if a + 1 >= self.attempts_max:
                self._give_up(mass, origin_windows, valid)
                continue
            total = mass.sum(axis=1)
            allowed = np.ones(R)
            for region, budget in enumerate(self.client_budgets):
                if budget is not None:
                    allowed[region] = budget.allow(float(total[region]))
            counts["budget_exhausted"][:, w] += total * (1.0 - allowed)
            self._give_up(mass * (1.0 - allowed)[:, None], origin_windows, valid)
            keep = mass * allowed[:, None]
            retried += keep.sum(axis=1)
            keep_age = age[:, a, :] * (fail_share[:, a] * allowed)[:, None]
            lo, hi = backoff_span(c.backoff, a + 1)
            # Errors come back at once, timeouts at the client's timeout.
            with np.errstate(invalid="ignore", divide="ignore"):
                to_share = np.where(fail_share[:, a] > 0, per[:, a, 2] / np.maximum(fail_share[:, a], _TINY), 0.0)
            for after, part in ((0.0, 1.0 - to_share), (c.timeout, to_share)):
                mp = keep * part[:, None]
                if not mp.any():
                    continue
                ma = keep_age * part[:, None] + mp * (after + (lo + hi) / 2)
                self._schedule(t, a + 1, mp, ma, after + lo, after + hi)
        return retried

    def _give_up(self, mass: np.ndarray, origin_windows: np.ndarray, valid: np.ndarray) -> None:
        for m in np.nonzero(valid)[0]:
            self.counts["failed"][:, origin_windows[m]] += mass[:, m]

    def _schedule(self, t: float, retry: int, mass: np.ndarray, mass_age: np.ndarray, lo: float, hi: float) -> None:
        """Put ``mass`` [region, origin] of retries number ``retry`` into the ring, spread over [t+lo, t+hi]."""
        dt = self.dt
        start, stop = t + max(lo, 0.0), t + max(hi, 0.0)
        h = self.step_end - t
        if h > dt + 1e-9:  # a long step's failures happened all through it: their retries come due from
            start = max(start, self.step_end)  # its end on, as spread out as they would have been
            stop = start + h + (hi - lo)
        first = int(math.floor(start / dt + 1e-9))
        now_slot = int(math.floor(t / dt + 1e-9))
        taken = max(now_slot, int(math.ceil(self.step_end / dt - 1e-9)) - 1)  # slots this step has taken
        first = max(first, taken + 1)  # never into a slot taken already (a long step's come due at its end)
        last = max(first, int(math.floor(stop / dt + 1e-9)))
        last = min(last, now_slot + self.slots - 1)
        count = last - first + 1
        idx = np.arange(first, last + 1) % self.slots
        self.ring[idx, :, retry - 1, :] += mass / count
        self.ring_age[idx, :, retry - 1, :] += mass_age / count
        self.pending += float(mass.sum())

    # ---------------------------------------------------------------------------------- queues

    def _advance_queues(self, work: np.ndarray, demand: np.ndarray, tries: np.ndarray, dep_calls: np.ndarray,
                        dep_work: np.ndarray, h: float, t: float) -> None:
        """Backlogs grow by the work admitted and shrink by capacity; the share of the demand (the work
        before refusals) they refuse next is what does not fit.
        """
        # Servers in the same state that get the same load stay in the same state (see _classes): when
        # every class got one load, its servers still agree and the classes stand (hashing and sorting
        # all servers again would find the same ones, or merge two that have come to agree).
        if not (self.lump and self._cls_at == self.revision and self._reuse < _REUSE
                and all(np.array_equal(a, a[self._cls[0]][self._cls[1]]) for a in (work, demand, tries))):
            self._set_classes(self.backlog, work, demand, tries)
        else:
            self._reuse += 1
        ix, inv, _ = self._cls
        self.classes += ix.size
        up, workers, service, limit = self.up[ix], self.workers[ix], self.service[ix], self.queue_limit[ix]
        work, demand, tries, backlog0 = work[ix], demand[ix], tries[ix], self.backlog[ix]
        cap = np.where(up, workers, 0.0)
        offered = work * h
        backlog = np.where(up, np.maximum(0.0, backlog0 + offered - cap * h), 0.0)
        per_try = np.maximum(np.where(tries > 0, work / np.maximum(tries, _TINY), service), _TINY)
        room = np.where(np.isfinite(limit), limit * per_try, np.inf)
        if np.isfinite(self.max_wait):
            room = np.minimum(room, self.max_wait * cap)
        if self.cancel:
            room = np.minimum(room, self.client.timeout * cap)
        over = backlog > room
        with np.errstate(invalid="ignore", divide="ignore"):
            admitted = np.maximum(room - backlog0, 0.0) + cap * h
            wanted = demand * h
            shed = np.where(wanted > admitted, 1.0 - admitted / np.maximum(wanted, _TINY), 0.0)
        # Below saturation the fluid refuses nothing; a short queue still overflows now and then.
        waiting_room = np.minimum(limit, self.max_wait * workers / np.maximum(per_try, _TINY))
        stationary = blocking(self.iworkers[ix], demand, np.floor(waiting_room))
        # In overload a long queue absorbs a burst (the fluid backlog says how much); the stationary
        # share holds only below saturation, or when the queue fills and drains within the step.
        settles = waiting_room * per_try <= workers * h
        stationary = np.where((demand < workers) | settles, stationary, 0.0)
        self.shed = np.where(up, np.clip(np.maximum(shed, stationary), 0.0, 1.0), 0.0)[inv]
        self.backlog = np.where(over, room, backlog)[inv]
        self.load = np.where(up, work, 0.0)[inv]
        self.rate = np.where(up, tries, 0.0)[inv]
        self._queue_state(ix, inv)
        # Dependencies.
        dcap = np.where(self.dep_down, 0.0, self.dep_workers)
        dback = np.maximum(0.0, self.dep_backlog + dep_work * h - dcap * h)
        dper = np.where(dep_calls > 0, dep_work / np.maximum(dep_calls, _TINY), self.dep_service)
        droom = self.dep_limit * dper
        with np.errstate(invalid="ignore", divide="ignore"):
            dadm = np.maximum(droom - self.dep_backlog, 0.0) + dcap * h
            self.dep_shed = np.clip(np.where(dep_work * h > dadm, 1.0 - dadm / np.maximum(dep_work * h, _TINY), 0.0),
                                    0.0, 1.0)
        self.dep_backlog = np.where(self.dep_down, 0.0, np.minimum(dback, np.maximum(droom, 0.0)))
        self.dep_load = dep_work
        self._dep_state(dep_calls)

    def _dep_state(self, calls: np.ndarray) -> None:
        if not self.n_deps:
            self.dep_wait = self.dep_wait_p = self.dep_theta = np.zeros(0)
            return
        cap = np.where(self.dep_down, 0.0, self.dep_workers)
        per = np.where(calls > 0, self.dep_load / np.maximum(calls, _TINY), self.dep_service * self.dep_factor)
        poisson = np.ones(self.n_deps)  # M/M/c: Poisson calls, exponential service
        self.dep_wait_p, self.dep_theta = allen_cunneen(self.dep_load, self.dep_workers, self.dep_iworkers, per,
                                                        poisson, poisson)
        fluid = np.where(cap > 0, self.dep_backlog / np.maximum(cap, _TINY), 0.0)
        self.dep_wait = fluid + self.dep_wait_p / self.dep_theta

    def _crashes(self, h: float) -> list[int]:
        """Servers that run out of memory in the last step (of length ``h``).

        A server crashes when an arriving request finds more requests held (queued and in service) than
        fit beside what its version leaked: when it finds ``m`` or more, ``m = floor(fits)``. Certain when
        the mean number held is past that; below it, a burst can still get there. The crash is the first
        such arrival, so its rate is the rate at which the number in system crosses up into ``m``,
        ``rate · P(N = m − 1)``, times the chance that the next event there is an arrival, not a departure,
        ``rate / (rate + min(m, c) · μ)`` (an excursion above the level is seen by many arrivals, but
        crashes once). P is the stationary M/M/c distribution (arrivals see it, PASTA: below c workers
        the Poisson shape scaled to 1 − C, above it C (1 − ρ) ρ^k), the level is counted beyond the fluid
        queue already there, and the crash is drawn with probability ``1 − exp(−rate · h · ...)`` from the
        stream ``flow/memory``. On the request engine's own queue (M/M/4 at ρ = 0.85) this rate matches
        the counted first arrivals: 263 against 267 for m = 30 in 20 minutes.
        """
        if not self.has_memory.any():
            return []
        queued = self.backlog / np.maximum(self.per_try, _TINY)
        held = queued + np.minimum(self.load, self.workers)
        leaked = self.leak * np.maximum(self.t - self.up_since, 0.0)
        fits = (self.mem_free - leaked) / self.mem_per
        mem = self.has_memory & self.up
        certain = mem & (held + 1 > fits)
        # Only below saturation: at or above it the queue is the fluid backlog, already counted.
        near = np.nonzero(mem & ~certain & (self.rate > 0) & (self.load < 0.95 * self.workers))[0]
        crash = certain.copy()
        if near.size:
            c = self.workers[near]
            a = self.load[near]
            m = np.floor(fits[near] - queued[near])  # beyond the fluid queue already there
            rho = np.minimum(a / c, 0.999999)
            erlang_c = self.wait_p[near]
            x = m - 1.0
            above = erlang_c * (1.0 - rho) * rho ** np.maximum(x - c, 0.0)  # P(N = c + k) = C (1 - rho) rho^k
            below = np.zeros(near.size)
            few = np.flatnonzero((x >= 0.0) & (x < c))  # the level is below the workers: the Poisson part
            below[few] = [poisson_share(xi, ai, int(ci)) for xi, ai, ci in
                          zip(x[few].tolist(), a[few].tolist(), c[few].tolist(), strict=True)]
            below *= 1.0 - erlang_c
            lam = self.rate[near]
            departures = np.minimum(np.maximum(m, 0.0), c) / np.maximum(self.per_try[near], _TINY)
            next_arrival = lam / np.maximum(lam + departures, _TINY)
            p = np.where(x < 0.0, 1.0, np.where(x >= c, above, below) * next_arrival)
            expected = lam * h * p
            draw = self.memory_rng.random(near.size) < 1.0 - np.exp(-expected)
            crash[near] = draw
        return [int(i) for i in np.nonzero(crash)[0]]

    # ---------------------------------------------------------------------------------- records

    def _flush(self) -> None:
        """Write the latency histogram out as weighted samples (one per non-empty bin and region)."""
        rec = self.rec
        w = self.hist_window
        hist = self.hist
        if hist.any():
            centres = np.exp(_LOG_LO + (np.arange(_BINS) + 0.5) * (_LOG_HI - _LOG_LO) / _BINS)
            for r in range(self.n_regions):
                nz = np.nonzero(hist[r] > 1e-9)[0]
                if nz.size:
                    rec.latency.extend(centres[nz].tolist())
                    rec.latency_window.extend([w] * nz.size)
                    rec.latency_region.extend([r] * nz.size)
                    rec.latency_weight.extend(hist[r, nz].tolist())
            hist[:] = 0.0

    def finish(self) -> None:
        """At the end of the run: write out latency samples, round the counters to whole requests."""
        self._flush()
        rec = self.rec
        for name in COUNTERS:
            setattr(rec, name, _round_rows(self.counts[name]))
        rec.dc_offered = _round_rows(self.dc_offered)
        rec.link_crossings = _round_rows(self.link_crossings)
        rec.link_lost = _round_rows(self.link_lost)
        rec.link_bits = self.link_bits.tolist()
        rec.wasted = int(round(self.wasted))
        rec.queued = int(round(self.queued))
        rec.queue_time = float(self.queue_time)

    # ---------------------------------------------------------------------------------- listener / probe

    def server_down(self, server: int) -> None:
        """The server stopped: what it held is lost."""
        self.changes += 1
        self.revision += 1
        self.up[server] = False
        self.backlog[server] = 0.0
        self.epoch[server] += 1

    def server_up(self, server: int) -> None:
        """The server runs again, empty, and warming up."""
        self.changes += 1
        self.revision += 1
        now = self.env.now
        self.up[server] = True
        self.backlog[server] = 0.0
        self.up_since[server] = now
        warm = self.warm_up(server)
        if warm is not None:
            self.warm_until[server], self.warm_speed[server] = warm
            self.next_warm = min(self.next_warm, warm[0])

    def rotation_changed(self, datacenter: int) -> None:
        """Rebuild the pool of ``datacenter``'s load balancers and each member's share of its tries (a
        misweight sends its share to a few servers, the rest is spread evenly).
        """
        self.changes += 1
        self.revision += 1
        members, self.panicking[datacenter] = pool(self.cluster, self.lb.panic_threshold, datacenter,
                                                   self.panicking[datacenter])
        members_a = np.array(members, dtype=np.int64)
        weight = self.pool_weight
        weight[self.dc_of == datacenter] = 0.0
        if members_a.size:
            share = np.full(members_a.size, 1.0 / members_a.size)
            mis = self.cluster.misweights.get(datacenter)
            if mis is not None:
                favoured = np.isin(members_a, np.array(mis[0], dtype=np.int64))
                if favoured.any():
                    share = share * (1.0 - mis[1]) + favoured * (mis[1] / favoured.sum())
            weight[members_a] = share
        if self.balanced:
            here = self.dc_of == datacenter
            self.pool_size[here], self.in_pool[here] = 1.0, False
            self.pool_size[members_a], self.in_pool[members_a] = members_a.size, True
        if self.smooth:
            self.ca2[self.dc_of == datacenter] = 1.0
            if members_a.size:
                self.ca2[members_a] = 1.0 / members_a.size

    def dependency_changed(self, dependency: int) -> None:
        """Read at the next step (``_sync``)."""

    def load_changed(self, region: int) -> None:
        """Read at the next step (``_sync``)."""

    def version_changed(self, server: int) -> None:
        """Another version runs on the server: its speed, error rate and leak; a fresh process."""
        self.changes += 1
        self.revision += 1
        version = self.cluster.servers[server].version
        self.speed[server], self.err[server], self.leak[server] = version.speed, version.error_rate, version.leak_rate
        self.up_since[server] = self.env.now

    def probe_failure(self, timeout: float, ix: Any = slice(None)) -> np.ndarray:
        """Per server (of ``ix``), the chance that a health check sent now is not answered within
        ``timeout``: down, or its wait (the fluid backlog's, plus the stationary M/M/c wait) is longer.
        """
        room = timeout - self.fluid_wait[ix]
        late = np.where(room > 0, self.wait_p[ix] * np.exp(-self.theta[ix] * np.maximum(room, 0.0)), 1.0)
        return np.where(self.up[ix], late, 1.0)

    def probe(self, server: int, timeout: float) -> bool:
        """A health check is one request: it passes with the chance its wait is below ``timeout``."""
        return bool(self.probe_all(timeout)[server])

    def wait(self, server: int) -> float:
        """Expected wait of a request arriving at ``server`` now (0 when it is down)."""
        return float(self.wait_now()[server]) if self.up[server] else 0.0

    def probe_all(self, timeout: float) -> np.ndarray:
        """:meth:`probe` for every server at once (one draw per server whose answer is uncertain)."""
        ix, inv, _ = self._classes()  # one server of each class answers for all
        fail = self.probe_failure(timeout, ix)
        unsure = (fail > 1e-6) & (fail < 1.0)
        out = (fail <= 1e-6)[inv]
        self.probe_drew = bool(unsure.any())
        if self.probe_drew:
            unsure, fail = unsure[inv], fail[inv]
            out[unsure] = self.health_rng.random(int(unsure.sum())) >= fail[unsure]
        return out

    def wait_all(self) -> np.ndarray:
        """:meth:`wait` for every server at once."""
        ix, inv, _ = self._classes()
        return np.where(self.up[ix], self.wait_now(ix), 0.0)[inv]

    # ---------------------------------------------------------------------------------- mail (sim.mail)

    def deliver(self, server: int, service: float, timeout: float, done: Callable[[bool], None]) -> None:
        """One mail delivery on ``server``: its work is load of the step under way (added to the server's
        work when the step is integrated); the answer follows from the wait of the last step (deliveries
        do not cut the engine's steps).
        """
        env = self.env
        if not self.up[server]:
            return later(env, timeout, lambda _: done(False))
        if self.shed[server] > 0 and self.error_rng.uniform() < self.shed[server]:
            return done(False)
        speed = self.speed[server] * (self.warm_speed[server] if self.warm_until[server] > env.now else 1.0)
        work = service / speed
        wait = float(self.fluid_wait[server] + self.wait_p[server] / self.theta[server])
        self.mail_work[server] += work
        self.mail_tries[server] += 1
        end = wait + work
        if end >= timeout:
            return later(env, timeout, lambda _: done(False))
        epoch = int(self.epoch[server])

        def finish(_: Any) -> None:
            if self.epoch[server] != epoch:
                return later(env, max(timeout - end, 0.0), lambda _: done(False))
            done(not (self.err[server] and self.error_rng.uniform() < self.err[server]))

        later(env, end, finish)


def _round_rows(table: np.ndarray) -> list[list[int]]:
    """Round each row to whole counts keeping its running total (largest-remainder by cumulative sums)."""
    cum = np.rint(np.cumsum(table, axis=1)).astype(np.int64)
    out = np.diff(cum, axis=1, prepend=0)
    return np.maximum(out, 0).tolist()
