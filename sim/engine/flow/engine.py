"""The flow engine: its life, the cluster's listener calls, and its answers to the control plane.

:class:`FlowEngine` builds the parts (servers, classes, pairs, dependencies and links, client retries,
records), wires them into the step (:mod:`sim.engine.flow.step`) and the clock
(:mod:`sim.engine.flow.clock`), and adapts them to the :class:`~sim.engine.base.Engine` protocol: the
listener methods change the servers' state, ``probe_all``/``wait_all`` answer from one server per class,
``deliver`` books mail as load of the step under way.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.engine.base import EngineBase, request_types
from sim.engine.flow.checks import ClassPersistence, HealthMemory
from sim.engine.flow.classes import Classes
from sim.engine.flow.clock import Clock
from sim.engine.flow.crashes import Memory
from sim.engine.flow.databases import Pairs
from sim.engine.flow.dependencies import Dependencies, Links
from sim.engine.flow.records import Records
from sim.engine.flow.retries import ClientRetries
from sim.engine.flow.servers import Servers
from sim.engine.flow.step import Step
from sim.engine.flow.tries import Tries
from sim.engine.pools import pool
from sim.policies import Breaker, Budget
from sim.recorder import Recorder
from sim.rng import Streams
from sim.scenario import Scenario
from sim.schedule import later
from sim.workload import rate_function

__all__ = ["FlowEngine"]


class FlowEngine(EngineBase):
    """Rate-based simulation: an :class:`~sim.engine.base.Engine` whose answers change only at its steps."""

    quiet_ok = True  # its state changes only at its steps: the control plane may sleep between changes
    lump_from = 200  # from this many servers on, servers in the same state are computed once (classes.py)

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, cluster: Cluster, streams: Streams, recorder: Recorder
    ):
        super().__init__(env, scenario, cluster, streams, recorder)
        settings = scenario.flow
        dt = settings.step
        max_dt = max(settings.step, settings.max_step)
        noise = np.random.default_rng(streams.generator("flow").integers(2**63)) if settings.noise else None
        self.error_rng = streams.stream("errors")
        self.health_rng = streams.generator("flow/health")  # a health check's wait is a draw
        self.memory_rng = streams.generator("flow/memory")  # so is the burst that runs a server out of memory
        policies = scenario.policies
        self.lb = policies.load_balancer
        self.changes = 0  # listener calls (servers, pools, versions): a change the next step must see
        self.was_settled = False

        self.servers = servers = Servers(scenario, cluster)
        self.worked, self.worked_at = np.zeros(servers.n), np.zeros(servers.n)  # busy_time's counters
        for server in np.flatnonzero(cluster.parked_mask).tolist():  # an autoscaler's spares start stopped
            servers.stop(server)
        self.n = servers.n
        # each server's last health check, for the next
        self.health_memory = HealthMemory(servers.n, self.lb.health_check.interval)
        self.memory = Memory(self.groups)
        self.lump = self.n >= self.lump_from
        self.lumping = Classes(servers, self.lump)
        self.deps = Dependencies(scenario)
        n_regions, n_dcs = len(cluster.region_ids), len(cluster.datacenter_ids)
        self.links = Links(cluster, n_regions, n_dcs)
        self.retries = ClientRetries(policies.client, dt, max_dt, scenario.slo.window, n_regions,
                                     len(scenario.workload.requests))
        # The policies' fluid views (Budget.fill / allow, Breaker.admits / observe).
        self.client_budgets = self.retries.budgets
        self.breakers = [Breaker(policies.client.breaker) if policies.client.breaker else None
                         for _ in range(n_regions)]
        self.lb_budgets = [Budget(self.lb.budget) if self.lb.budget else None for _ in range(n_dcs)]
        for dc in range(n_dcs):
            self.rotation_changed(dc)
        self.pairs = Pairs(cluster)
        self.records = Records(recorder, n_regions, n_dcs, self.links.count)
        tries = Tries(scenario, servers, self.lumping, self.pairs, self.deps, self.links, self.records,
                      request_types(scenario), self.lb_budgets)
        loads = [scenario.workload.regions.get(r) for r in cluster.region_ids]
        rates = [rate_function(load) if load is not None else None for load in loads]
        self.step = Step(cluster, scenario.duration, rates, noise, servers, self.lumping, self.pairs, self.deps,
                         self.links, self.retries, self.records, tries, self.breakers)
        self._seen: tuple[Any, ...] = ()
        self._sync()
        self.clock = Clock(dt, max_dt, scenario.duration, recorder.window, self.lb.health_check.timeout,
                           self.step, servers, self.lumping, self.deps, self.retries, self.breakers,
                           cluster.network, self.memory)
        cluster.before_change.append(self.before_change)
        cluster.network.before_change.append(self.before_change)
        self._process: simpy.Process | None = None
        self._waking_at = 0.0  # when the engine's next step ends, if nothing changes before

    @property
    def steps(self) -> int:
        """Steps integrated (the benchmarks report it)."""
        return self.clock.steps

    @property
    def classes(self) -> int:
        """Classes of servers in the same state, summed over the steps (/ steps: the mean)."""
        return self.lumping.count

    # ---------------------------------------------------------------------------------- life

    def start(self) -> None:
        """Start stepping."""
        self._process = self.env.process(self._run())

    def _run(self) -> Generator[simpy.Event, None, None]:
        clock = self.clock
        end = clock.end + self.drain_time()
        target = clock.next_stop(end)
        while clock.t < end - 1e-9:
            self._waking_at = target
            try:
                yield self.env.timeout(max(target - self.env.now, 0.0))
            except simpy.Interrupt:  # something may have changed during a long step (see before_change)
                if self._sync():  # it did: a base step from now
                    clock.calm = 0
                    target = min(clock.next_stop(end), self.env.now + clock.dt)
                continue  # else the long step goes on to its end
            if not self.catch_up() and self._sync():  # a change at this very time, integrated up to already
                clock.calm = 0
            target = clock.next_stop(end)

    def before_change(self) -> None:
        """The cluster (or a link) is about to change: integrate up to now with the state as it was. If the
        engine is in a long step, it looks again once the change is made (an interrupt, which comes after
        it): if the state did change, its next step ends a base step from now, so the change's effect (and
        the control plane's sweeps that it wakes) is seen then, not at the end of the long step.
        """
        self.catch_up()
        process = self._process
        if (self._waking_at > self.env.now + self.clock.dt + 1e-9  # cheapest first: false once interrupted
                and process is not None and process.is_alive and self.env.active_process is not process):
            self._waking_at = self.env.now  # interrupted once
            process.interrupt()

    def catch_up(self) -> bool:
        """Integrate from the clock's ``t`` to now with the state as it was; the cluster may change right
        after (this is called before each change), so the state is read again before the next integration.
        Returns whether there was anything to integrate.
        """
        clock = self.clock
        if clock.busy:
            return False
        now = self.env.now
        if now <= clock.t + 1e-12:  # nothing to integrate: the state is read before the next step
            return False
        if self._sync():
            clock.calm = 0  # the state changed: base steps until the engine has seen its effect
        clock.busy = True
        try:
            clock.integrate(now)
            crashed = self.memory.draw(self.memory_rng)
        finally:
            clock.busy = False
        for server in crashed:
            if self.crash_hook is not None:
                self.crash_hook(int(server))
        settled = clock.settled(self.wake_floor)
        if not (settled and self.was_settled):  # the control plane's answers may have changed
            self.wake()
        self.was_settled = settled
        return True

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
        self.step.read(cluster)
        self.deps.read(cluster)
        self.pairs.follow(cluster)
        return True

    def finish(self) -> None:
        """At the end of the run: write out latency samples, round the counters to whole requests."""
        self.records.finish()

    # ---------------------------------------------------------------------------------- listener

    def server_down(self, server: int) -> None:
        """The server stopped: what it held is lost."""
        self.changes += 1
        self.servers.stop(server)
        self.health_memory.forget(server)

    def server_up(self, server: int) -> None:
        """The server runs again, empty, and warming up."""
        self.changes += 1
        self.servers.start(server, self.env.now, self.warm_up(server))
        self.health_memory.forget(server)

    def rotation_changed(self, datacenter: int) -> None:
        """Rebuild the pool of ``datacenter``'s load balancers and each member's share of its tries (a
        misweight sends its share to a few servers, the rest is spread evenly).
        """
        self.changes += 1
        members = np.array(pool(self.cluster, datacenter), dtype=np.int64)
        self.servers.set_pool(datacenter, members, self.cluster.misweights.get(datacenter))

    def dependency_changed(self, dependency: int) -> None:
        """Read at the next step (``_sync``)."""

    def load_changed(self, region: int) -> None:
        """Read at the next step (``_sync``)."""

    def version_changed(self, server: int) -> None:
        """Another version runs on the server: its speed, error rate and leak; a fresh process."""
        self.changes += 1
        self.servers.set_version(server, self.cluster.servers[server].version, self.env.now)
        self.health_memory.forget(server)

    # ---------------------------------------------------------------------------------- probe

    def probe_failure(self, timeout: float, ix: Any = slice(None)) -> np.ndarray:
        """Per server (of ``ix``), the chance that a health check sent now is not answered within
        ``timeout`` (:meth:`Servers.probe_failure <sim.engine.flow.servers.Servers.probe_failure>`).
        """
        return self.servers.probe_failure(timeout, ix)

    def wait_now(self, ix: Any = slice(None)) -> np.ndarray:
        """Expected wait of a try arriving now at each server ``ix`` (fluid backlog plus stationary wait)."""
        return self.servers.wait_now(ix)

    def probe(self, server: int, timeout: float) -> bool:
        """A health check is one request: it passes with the chance its wait is below ``timeout``."""
        return bool(self.probe_all(timeout)[server])

    def wait(self, server: int) -> float:
        """Expected wait of a request arriving at ``server`` now (0 when it is down)."""
        return float(self.servers.wait_now()[server]) if self.servers.up[server] else 0.0

    def probe_all(self, timeout: float) -> np.ndarray:
        """:meth:`probe` for every server at once: a server whose answer is uncertain answers from its
        :class:`HealthMemory`, which keeps consecutive checks of a server as alike as a real queue's.
        """
        ix, inv, _ = self.lumping.current()  # one server of each class answers for all
        fail = self.servers.probe_failure(timeout, ix)
        unsure = (fail > 1e-6) & (fail < 1.0)
        self.probe_drew = bool(unsure.any())
        persist = None
        if self.probe_drew:  # per class: how much the last answers persist (each server's lag below)
            s = self.servers
            persist = ClassPersistence(s.iworkers[ix], s.at("demand", ix), s.at("per_try", ix), s.queue_limit[ix], fail)
        return self.health_memory.answer(self.env.now, fail[inv], inv, persist, self.health_rng)

    def wait_all(self) -> np.ndarray:
        """:meth:`wait` for every server at once."""
        ix, inv, _ = self.lumping.current()
        return np.where(self.servers.up[ix], self.servers.wait_now(ix), 0.0)[inv]

    def busy_time(self, servers: np.ndarray) -> np.ndarray:
        """Per server of ``servers``, the worker-seconds it has served since the start: between two reads,
        its workers busy in the last step (its load, all of them while a backlog waits; none while down)
        times the time between them.
        """
        s, now = self.servers, self.env.now
        load, backlog = s.at("load", servers), s.at("backlog", servers)
        workers = s.workers[servers]
        busy = np.where(s.up[servers], np.where(backlog > 0.0, workers, np.minimum(load, workers)), 0.0)
        self.worked[servers] += busy * (now - self.worked_at[servers])
        self.worked_at[servers] = now
        return self.worked[servers]

    # ---------------------------------------------------------------------------------- mail (sim.mail)

    def deliver(self, server: int, service: float, timeout: float, done: Callable[[bool], None]) -> None:
        """One mail delivery on ``server``: its work is load of the step under way (added to the server's
        work when the step is integrated); the answer follows from the wait of the last step (deliveries
        do not cut the engine's steps).
        """
        env, s = self.env, self.servers
        if not s.up[server]:
            return later(env, timeout, lambda _: done(False))
        shed = s.at("shed", server)
        if shed > 0 and self.error_rng.uniform() < shed:
            return done(False)
        speed = s.speed[server] * (s.warm_speed[server] if s.warm_until[server] > env.now else 1.0)
        work = service / speed
        wait = float(s.served_wait(server))
        s.mail_work[server] += work
        s.mail_tries[server] += 1
        end = wait + work
        if end >= timeout:
            return later(env, timeout, lambda _: done(False))
        epoch = int(s.epoch[server])

        def finish(_: Any) -> None:
            if s.epoch[server] != epoch:
                return later(env, max(timeout - end, 0.0), lambda _: done(False))
            done(not (s.err[server] and self.error_rng.uniform() < s.err[server]))

        later(env, end, finish)

