"""Fault kinds and their injection.

A fault kind says what it targets (``server``, ``datacenter`` or ``dependency``) and what starting and
ending it does to the :class:`~sim.cluster.Cluster`. Subclasses of :class:`FaultKind` override
:meth:`~FaultKind.start` and :meth:`~FaultKind.end`; register them with :func:`register_fault` under the
name a scenario uses as ``kind``. Timing (``at``/``duration`` or ``mtbf``/``mttr``) and target selection
are the same for every kind and live in :func:`inject`.

Each fault draws from its own random stream, ``fault/<fault id>``, so the same fault hits at the same
times in every layout that has its targets (common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.cluster import Cluster
from sim.rng import Streams
from sim.scenario import Fault, Target

__all__ = ["FaultKind", "FAULT_KINDS", "register_fault", "select_targets", "inject"]


class FaultKind:
    """What a fault does. Override :meth:`start` and :meth:`end`; set ``targets``."""

    targets: str = "server"
    description: str = ""

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        """The fault begins on ``target`` (an index into the cluster's table of ``targets``)."""
        raise NotImplementedError

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        """The fault ends on ``target``."""
        raise NotImplementedError


FAULT_KINDS: dict[str, FaultKind] = {}


def register_fault(name: str) -> Callable[[type[FaultKind]], type[FaultKind]]:
    """Class decorator: make a fault kind available as ``kind: name``."""

    def add(cls: type[FaultKind]) -> type[FaultKind]:
        FAULT_KINDS[name] = cls()
        return cls

    return add


@register_fault("server_crash")
class ServerCrash(FaultKind):
    """Servers stop: queued and running work is lost until they restart."""

    targets = "server"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.server_down(target, cause, "crashed")

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.server_up(target, cause, "restarted")


@register_fault("datacenter_outage")
class DatacenterOutage(FaultKind):
    """A whole datacenter goes dark (power, cooling, network)."""

    targets = "datacenter"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.datacenter_down(target, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.datacenter_up(target, cause)


@register_fault("dependency_outage")
class DependencyOutage(FaultKind):
    """A shared dependency (directory, third party) stops answering."""

    targets = "dependency"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.dependency_set(target, True, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.dependency_set(target, False, cause)


def _candidates(cluster: Cluster, kind: str, target: Target) -> list[tuple[int, str]]:
    """(index, id) of every entity of type ``kind`` that the target's filters match."""
    if kind == "server":
        dcs = set(target.datacenters)
        out = [
            (s.index, s.id)
            for s in cluster.servers
            if (not target.ids or s.id in target.ids)
            and (not dcs or cluster.datacenter_ids[s.datacenter] in dcs)
            and (not target.groups or s.group in target.groups)
            and all(s.labels.get(k) == v for k, v in target.labels.items())
        ]
    elif kind == "datacenter":
        names = set(target.ids) | set(target.datacenters)
        dc_labels = {d.id: d.labels for d in cluster.scenario.topology.datacenters}
        out = [
            (i, name)
            for i, name in enumerate(cluster.datacenter_ids)
            if (not names or name in names) and all(dc_labels[name].get(k) == v for k, v in target.labels.items())
        ]
    else:
        out = [(i, name) for i, name in enumerate(cluster.dependency_ids) if not target.ids or name in target.ids]
    return out


def select_targets(cluster: Cluster, kind: str, target: Target, rng: Any) -> list[tuple[int, str]]:
    """Apply the filters, then the mode (all / one / count / percent) with ``rng`` (a numpy Generator)."""
    matches = _candidates(cluster, kind, target)
    mode = target.mode
    if mode.kind == "all" or not matches:
        return matches
    if mode.kind == "one":
        n = 1
    elif mode.kind == "count":
        n = int(mode.value)
    else:
        n = max(1, round(mode.value * len(matches))) if mode.value > 0 else 0
    n = min(n, len(matches))
    picked = sorted(rng.choice(len(matches), size=n, replace=False).tolist())
    return [matches[i] for i in picked]


def inject(env: simpy.Environment, cluster: Cluster, streams: Streams, scenario_fault: Fault, fault_id: str) -> None:
    """Start the processes that inject one scenario fault."""
    kind = FAULT_KINDS[scenario_fault.kind]
    rng = streams.generator(f"fault/{fault_id}")
    targets = select_targets(cluster, kind.targets, scenario_fault.target, rng)
    if scenario_fault.at is not None:
        env.process(_scheduled(env, cluster, kind, scenario_fault, fault_id, targets))
    else:
        for index, name in targets:
            own = streams.generator(f"fault/{fault_id}/{name}")  # same times per target in every layout
            env.process(_renewal(env, cluster, kind, scenario_fault, fault_id, index, name, own))


def _scheduled(
    env: simpy.Environment, cluster: Cluster, kind: FaultKind, fault: Fault, fault_id: str, targets: list
) -> Generator[simpy.Event, None, None]:
    trace = cluster.trace
    assert fault.at is not None
    yield env.timeout(fault.at)
    names = ", ".join(name for _, name in targets) or "no target matched"
    start = trace.record(env.now, "fault_start", fault_id, None, f"{fault.kind}: {names}", fault=fault_id)
    for index, _ in targets:
        kind.start(cluster, index, start)
    if fault.duration is None:
        return
    yield env.timeout(fault.duration)
    end = trace.record(env.now, "fault_end", fault_id, start, f"{fault.kind} ends")
    for index, _ in targets:
        kind.end(cluster, index, end)


def _renewal(
    env: simpy.Environment,
    cluster: Cluster,
    kind: FaultKind,
    fault: Fault,
    fault_id: str,
    index: int,
    name: str,
    rng: Any,
) -> Generator[simpy.Event, None, None]:
    """Alternating exponential up and down times for one target (an alternating renewal process)."""
    trace = cluster.trace
    assert fault.mtbf is not None and fault.mttr is not None
    while True:
        yield env.timeout(float(rng.exponential(fault.mtbf)))
        start = trace.record(env.now, "fault_start", name, None, f"{fault.kind} (random)", fault=fault_id)
        kind.start(cluster, index, start)
        yield env.timeout(float(rng.exponential(fault.mttr)))
        end = trace.record(env.now, "fault_end", name, start, f"{fault.kind} repaired")
        kind.end(cluster, index, end)
