"""Autoscaling with lag: a group's pool grows on utilisation and shrinks with hysteresis.

A group with ``autoscale`` holds its ``count`` servers and, beyond them up to ``max``, parked spares
(:attr:`Cluster.parked_mask <sim.cluster.Cluster.parked_mask>`: down, drained, no database copies, no
fault's target). Its :class:`Autoscaler` samples, every ``interval``, the utilisation of the group's servers
in the pool: the share of their workers' time busy over the interval, from the engine's CPU-time counters
(:meth:`~sim.control.Probe.busy_time`; both engines keep them). Once it holds ``detection`` worth of
samples it decides on their mean ``u``:

- **out**: ``desired = ceil(fleet x u / target)``, at most ``max``, where the fleet is the servers
  launched and not retiring (in the pool, or down or ejected for a while). If that is more than the fleet
  and those being launched, and ``u`` is above target by more than ``tolerance`` (10% of it by
  default, as Kubernetes' autoscaler, so it does not chase noise), it launches the difference
  (``scaled_out``): each a spare that runs ``provisioning`` later (``server_launched``) and then warms up
  as the group's ``warmup`` says. The samples start again: the next decision waits another ``detection``
  (the new servers' load shows first).
- **in**, with hysteresis: when every decision of the last ``scale_in_after`` called for fewer servers
  than the fleet and none is being launched, it drains the extra (``scaled_in``: newest first,
  never one holding database copies, never below ``min``) and stops each ``drain`` later
  (``server_retired``). Its cause is the last scale-out, which it undoes.

So an autoscaler defends against a surge only if detection + provisioning + warm-up is shorter than the
time the surge takes to crash the servers (then it is a cascade mechanism: the survivors tip over before
help arrives); a short hysteresis makes it flap. The lags are each a parameter so both can be shown
(``scenarios/mechanisms/autoscaling.yaml``). A saturated server reads as fully busy, so one decision can
grow the pool at most by ``1 / target``.

Servers out of the pool (ejected, crashed) are not sampled (a sample with none in the pool is missing,
not zero) but count in the fleet, as an autoscaling group counts its instances. Server faults and
rollouts target only the servers a group starts with; a launched server runs the good version.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from functools import partial

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.control import Probe
from sim.events import SCALED_IN, SCALED_OUT
from sim.scenario import ServerGroup
from sim.schedule import later
from sim.units import format_duration

__all__ = ["Autoscaler", "autoscalers"]


class Autoscaler:
    """The autoscaler of one server group (see the module docstring)."""

    def __init__(self, env: simpy.Environment, cluster: Cluster, engine: Probe, group: ServerGroup):
        assert group.autoscale is not None
        self.env, self.cluster, self.engine, self.group = env, cluster, engine, group
        self.policy = policy = group.autoscale
        self.members = np.array([s.index for s in cluster.servers if s.group == group.id], dtype=np.int64)
        self.dc = cluster.servers[int(self.members[0])].datacenter
        self.min = policy.min if policy.min is not None else group.count
        self.launching: set[int] = set()  # spares launched, not running yet
        self.retiring: set[int] = set()  # servers drained, not stopped yet
        self.samples: deque[float] = deque(maxlen=max(1, round(policy.detection / policy.interval)))
        self.decisions: deque[tuple[float, int]] = deque()  # (when, desired) over the last scale_in_after
        self.since = 0.0  # the last scaling: scale-in needs scale_in_after of decisions after it
        self.scaled_out: int | None = None  # the last scale-out's event: a scale-in's cause
        env.process(self._run())

    def _run(self) -> Generator[simpy.Event, None, None]:
        env, cluster, members, policy = self.env, self.cluster, self.members, self.policy
        counters = self.engine.busy_time(members)
        while True:
            yield env.timeout(policy.interval)
            now = self.engine.busy_time(members)
            busy, counters = now - counters, now
            in_pool = cluster.up_mask[members] & cluster.rotation_mask[members]
            pool = members[in_pool]
            if pool.size == 0:  # nothing to read (the datacenter is dark, every server out): a missing sample
                continue
            self.samples.append(float(busy[in_pool].sum()) / (self.group.workers * pool.size * policy.interval))
            if len(self.samples) < (self.samples.maxlen or 1):
                continue
            self._decide(pool)

    @property
    def fleet(self) -> int:
        """The group's servers launched and not retiring: running, or down or ejected for a while."""
        return int((~self.cluster.parked_mask[self.members]).sum()) - len(self.retiring)

    def _decide(self, pool: np.ndarray) -> None:
        policy, now = self.policy, self.env.now
        u = sum(self.samples) / len(self.samples)
        fleet = self.fleet
        desired = min(max(math.ceil(fleet * u / policy.target - 1e-9), self.min), policy.max)
        active = fleet + len(self.launching)
        if desired > active and u > policy.target * (1.0 + policy.tolerance):
            self._scale_out(desired, active, u)
            return
        decisions = self.decisions
        decisions.append((now, desired))
        while decisions and decisions[0][0] < now - policy.scale_in_after - 1e-9:
            decisions.popleft()
        keep = max(d for _, d in decisions)
        if keep < fleet and not self.launching and now - self.since >= policy.scale_in_after - 1e-9:
            self._scale_in(pool, fleet, keep, u)

    def _scale_out(self, desired: int, active: int, u: float) -> None:
        cluster, policy = self.cluster, self.policy
        members = self.members
        spares = [i for i in members[cluster.parked_mask[members]].tolist() if i not in self.launching]
        n = min(desired - active, len(spares))
        if n <= 0:
            return
        chosen = spares[:n]
        names = ", ".join(cluster.servers[i].id for i in chosen)
        rid = self.scaled_out = cluster.trace.record(
            self.env.now, SCALED_OUT, self.group.id, cluster.last_harm[self.dc],
            f"utilisation {u:.0%} over {format_duration(policy.detection)} (target {policy.target:.0%}): "
            f"{active} -> {active + n} servers; launching {names}, running in {format_duration(policy.provisioning)}",
        )
        for server in chosen:
            self.launching.add(server)
            later(self.env, policy.provisioning, partial(self._launch, server, rid))
        self._restart()

    def _launch(self, server: int, cause: int, _: object = None) -> None:
        self.launching.discard(server)
        self.cluster.launch(server, cause, "launched by the autoscaler")

    def _scale_in(self, pool: np.ndarray, fleet: int, keep: int, u: float) -> None:
        cluster, policy = self.cluster, self.policy
        candidates = [i for i in pool.tolist()[::-1] if not cluster.servers[i].databases]  # newest first
        n = min(fleet - keep, len(candidates))
        if n <= 0:
            return
        chosen = candidates[:n]
        names = ", ".join(cluster.servers[i].id for i in chosen)
        rid = cluster.trace.record(  # it undoes the last scale-out (None: servers the group started with)
            self.env.now, SCALED_IN, self.group.id, self.scaled_out,
            f"utilisation {u:.0%} has called for {keep} servers or fewer for {format_duration(policy.scale_in_after)} "
            f"(target {policy.target:.0%}): {fleet} -> {fleet - n} servers; draining {names}",
        )
        cluster.note_harm(self.dc, rid)  # less capacity: an overload after it points here
        for server in chosen:
            self.retiring.add(server)
            cluster.retire(server, rid)
            later(self.env, policy.drain, partial(self._stop, server, rid))
        self._restart()

    def _stop(self, server: int, cause: int, _: object = None) -> None:
        self.retiring.discard(server)
        self.cluster.stop(server, cause, "stopped by the autoscaler")

    def _restart(self) -> None:
        """After scaling: the samples and the decisions start again."""
        self.samples.clear()
        self.decisions.clear()
        self.since = self.env.now


def autoscalers(env: simpy.Environment, cluster: Cluster, engine: Probe) -> list[Autoscaler]:
    """An :class:`Autoscaler` for every group of the scenario with ``autoscale``."""
    return [Autoscaler(env, cluster, engine, group)
            for dc in cluster.scenario.topology.datacenters for group in dc.servers if group.autoscale is not None]
