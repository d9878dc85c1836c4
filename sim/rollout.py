"""A software rollout: a bad version reaches the servers in waves; monitoring may halt it and roll it back.

This is the deploy system behind a ``bad_update`` fault (:class:`sim.faults.BadUpdate`). At ``at`` the
canary wave goes out, then each later wave after ``bake_time`` (:func:`rollout_order`,
:func:`wave_sizes`). A server that gets the bad version runs it (:meth:`sim.cluster.Cluster.set_version`:
slower, erroring, leaking) and, if the effect says so, crashes at random or in a loop, restarting after
its group's ``restart_time``. The detection service of the run (``FaultContext.monitor``: the control
plane's :class:`~sim.control.Monitor`) watches the metric from the start of the run (the baseline) and,
when it alerts, the rollout halts ``reaction_time`` later; with ``rollback``, every updated server runs
the good version again ``rollback_time`` after that.

Every event names its cause, so each leads back to the fault::

    fault_start <- rollout_wave <- updated <- crashed <- server_down <- ejected ...
    rollout_wave <- alert <- rollout_halted <- rollback <- server_up (a crash loop ends)
    fault_start <- fault_end (the rollback is done)

A server that is down when it gets the version (another fault) does not start a crash loop.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING

import simpy

from sim.events import (
    ALERT,
    CRASHED,
    FAULT_END,
    FAULT_START,
    ROLLBACK,
    ROLLOUT_COMPLETE,
    ROLLOUT_HALTED,
    ROLLOUT_WAVE,
    UPDATED,
)
from sim.software import GOOD, Version

if TYPE_CHECKING:
    from sim.cluster import Cluster
    from sim.faults import BadUpdate, FaultContext, RolloutPlan

__all__ = ["Rollout", "rollout_order", "wave_sizes"]


def rollout_order(cluster: Cluster, servers: list[int], order: list[str]) -> list[int]:
    """Return ``servers`` in the order the rollout takes them.

    Datacenters in ``order`` first, then the others in topology order; within a datacenter, in server
    order.
    """
    rank = {cluster.datacenter_ids.index(name): k for k, name in enumerate(order)}
    last = len(order)
    return sorted(servers, key=lambda i: (rank.get(cluster.servers[i].datacenter,
                                                   last + cluster.servers[i].datacenter), i))


def _servers(n: int) -> str:
    return f"{n} server" if n == 1 else f"{n} servers"


def _round(x: float) -> int:
    return math.floor(x + 0.5 + 1e-9)


def wave_sizes(n: int, plan: RolloutPlan) -> list[int]:
    """Return how many of ``n`` servers each wave updates.

    The canary (at least one server when its share is above 0), the listed waves, then waves of
    ``wave_size`` or one last wave with the rest.

    Shares accumulate before rounding, so the sizes add up to ``n``; empty waves are dropped.

    >>> from sim.faults import RolloutPlan
    >>> wave_sizes(8, RolloutPlan(canary=0.25, waves=[0.25, 0.25])), wave_sizes(3, RolloutPlan(canary=0.1))
    ([2, 2, 2, 2], [1, 2])
    """
    bounds, total = [], 0.0
    for share in (plan.canary, *plan.waves):
        total += share
        bounds.append(_round(total * n))
    if n and plan.canary > 0:
        bounds[0] = max(bounds[0], 1)
    if plan.wave_size is not None:
        while bounds[-1] < n:
            total += plan.wave_size
            bounds.append(max(_round(total * n), bounds[-1] + 1))
    bounds.append(n)
    sizes, done = [], 0
    for bound in bounds:
        bound = min(max(bound, done), n)
        if bound > done:
            sizes.append(bound - done)
            done = bound
    return sizes


class Rollout:
    """One rollout of a bad version over ``targets`` (server indices); starts its processes at once."""

    def __init__(self, ctx: FaultContext, spec: BadUpdate, fault_id: str, targets: list[int]):
        env, cluster = ctx.env, ctx.cluster
        self.env, self.cluster, self.streams, self.spec, self.fault_id = env, cluster, ctx.streams, spec, fault_id
        effect = spec.effect
        self.version = Version(
            name=fault_id,
            speed=1.0 / effect.latency_multiplier,
            error_rate=effect.error_rate,
            leak_rate=effect.memory_leak / 3600.0,
        )
        ordered = rollout_order(cluster, targets, spec.rollout.order)
        self.waves: list[list[int]] = []
        for size in wave_sizes(len(ordered), spec.rollout):
            done = sum(len(w) for w in self.waves)
            self.waves.append(ordered[done:done + size])
        groups = {g.id: g for d in cluster.scenario.topology.datacenters for g in d.servers}
        self.restart_time = {i: groups[cluster.servers[i].group].restart_time for i in targets}
        self.start: int | None = None  # the fault_start event
        self.last_wave: int | None = None
        self.updated: list[int] = []  # servers, in update order
        self.waves_out = 0
        self.halted = False
        env.process(self._run())
        if spec.detection.enabled and targets:
            if ctx.monitor is None:
                raise RuntimeError(f"fault '{fault_id}': detection is on but the run has no monitor "
                                   "(sim.run sets FaultContext.monitor)")
            ctx.monitor.watch(spec.detection, float(spec.at or 0.0), self._alert)

    # ---------------------------------------------------------------------------------- waves

    def _run(self) -> Generator[simpy.Event, None, None]:
        env, trace, spec = self.env, self.cluster.trace, self.spec
        yield env.timeout(spec.at or 0.0)
        n = sum(len(w) for w in self.waves)
        sizes = "+".join(str(len(w)) for w in self.waves) or "0"
        self.start = trace.record(env.now, FAULT_START, self.fault_id, None,
                                  f"bad_update: {_servers(n)} in waves of {sizes}; {spec.effect.describe()}",
                                  fault=self.fault_id)
        for k, wave in enumerate(self.waves):
            if k:
                yield env.timeout(spec.rollout.bake_time)
            if self.halted:
                return
            canary = " (canary)" if k == 0 and spec.rollout.canary > 0 else ""
            dcs = sorted({self.cluster.datacenter_ids[self.cluster.servers[i].datacenter] for i in wave})
            self.last_wave = trace.record(env.now, ROLLOUT_WAVE, self.fault_id, self.start,
                                          f"wave {k + 1} of {len(self.waves)}{canary}: {_servers(len(wave))} "
                                          f"in {', '.join(dcs)}")
            self.waves_out += 1
            for server in wave:
                self._update(server, self.last_wave)
        if self.waves:
            trace.record(env.now, ROLLOUT_COMPLETE, self.fault_id, self.last_wave,
                         f"the bad version on all {_servers(n)}")

    def _update(self, server: int, wave: int) -> None:
        effect = self.spec.effect
        updated = self.cluster.set_version(server, self.version, UPDATED, wave,
                                           f"bad version: {effect.describe()}")
        self.updated.append(server)
        if effect.crash_loop:
            self.env.process(self._crash_loop(server, updated))
        elif effect.crash_per_hour > 0:
            self.env.process(self._random_crashes(server, updated))

    # ---------------------------------------------------------------------------------- crashes

    def _crash(self, server: int, updated: int, detail: str) -> int:
        name = self.cluster.servers[server].id
        crash = self.cluster.trace.record(self.env.now, CRASHED, name, updated, detail)
        self.cluster.server_down(server, crash, "crashed (bad version)")
        return crash

    def _random_crashes(self, server: int, updated: int) -> Generator[simpy.Event, None, None]:
        """Exponential times between crashes while the server runs this version."""
        s = self.cluster.servers[server]
        rng = self.streams.generator(f"fault/{self.fault_id}/{s.id}")  # same times per server in every layout
        rate = self.spec.effect.crash_per_hour
        while True:
            yield self.env.timeout(float(rng.exponential(3600.0 / rate)))
            if s.version_event != updated:
                return  # rolled back (or replaced)
            if s.down:
                continue
            crash = self._crash(server, updated, f"bad version crashed ({rate:g} crashes/h)")
            yield self.env.timeout(self.restart_time[server])
            self.cluster.server_up(server, crash, "restarted after crash")

    def _crash_loop(self, server: int, updated: int) -> Generator[simpy.Event, None, None]:
        """Crash at once, and again at every restart, until the good version is back."""
        s = self.cluster.servers[server]
        if s.down:
            return
        self._crash(server, updated, "bad version crashed on start (crash loop)")
        restarts = 0
        while True:
            yield self.env.timeout(self.restart_time[server])
            if s.version_event == updated:
                restarts += 1
                self.cluster.trace.record(self.env.now, CRASHED, s.id, updated,
                                          f"crashed on start again (crash loop, restart {restarts})")
                continue
            self.cluster.server_up(server, s.version_event, "restarted with the good version")
            return

    # ---------------------------------------------------------------------------------- detection

    def _alert(self, region: int, detail: str) -> None:
        cause = self.last_wave if self.last_wave is not None else self.start
        name = self.cluster.region_ids[region]
        alert = self.cluster.trace.record(self.env.now, ALERT, name, cause, detail)
        self.env.process(self._react(alert))

    def _react(self, alert: int) -> Generator[simpy.Event, None, None]:
        env, cluster, detection = self.env, self.cluster, self.spec.detection
        yield env.timeout(detection.reaction_time)
        self.halted = True
        halted = cluster.trace.record(
            env.now, ROLLOUT_HALTED, self.fault_id, alert,
            f"{self.waves_out} of {len(self.waves)} waves out; "
            f"the bad version on {_servers(len(self.updated))}",
        )
        if not detection.rollback:
            return
        yield env.timeout(detection.rollback_time)
        for server in self.updated:
            cluster.set_version(server, GOOD, ROLLBACK, halted, "good version restored")
        cluster.trace.record(env.now, FAULT_END, self.fault_id, self.start,
                             f"rolled back: the good version on {_servers(len(self.updated))} again")
