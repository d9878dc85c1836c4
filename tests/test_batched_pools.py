"""Batched changes of the control plane give the run of changes made one at a time.

- A health-check sweep announces the pools it changed once per datacenter (``Cluster.batched_pools``):
  the events (ejections, readmissions, panic in the middle of a sweep) and the answers are those of
  announcing every change at once, on both engines.
- The load balancers' panic mode is judged at each change, inside a batch too.
- The failover's activations and failbacks, booked as callbacks, run as the processes they were.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Generator
from typing import Any

import pytest
import simpy

import sim
from sim.cluster import Cluster
from sim.control import Failover
from sim.engine.pools import pool
from sim.events import DATABASE_UNAVAILABLE, EJECTED, FAILBACK, FAILOVER, PANIC, PANIC_OVER, READMITTED
from sim.fault_lb import LB_DOWN
from sim.topology import build_topology
from sim.trace import Trace
from tests.conftest import scenario_from

run_module = importlib.import_module("sim.run")

OUTAGE = {
    "duration": "20m",
    "topology": {
        "datacenters": [
            {"id": "dc-a", "servers": [{"id": "a", "count": 30, "workers": 4, "service_time": "20ms"}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 30, "workers": 4, "service_time": "20ms"}]},
        ],
        "databases": [{"id": "db", "count": 40, "placement": [{"datacenter": "dc-a", "copies": 2},
                                                              {"datacenter": "dc-b"}]}],
    },
    "workload": {"regions": {"users": {"peak": "400/s"}}},
    "policies": {
        "load_balancer": {"panic_threshold": "50%",
                          "health_check": {"interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 2}},
        "failover": {"database_delay": "10s", "datacenter_delay": "30s", "failback": True,
                     "max_activations_per_minute": 7},
    },
    "faults": [{"id": "dark", "kind": "datacenter_outage", "target": {"ids": ["dc-a"]}, "at": "3m",
                "duration": "6m"}],
}


DRAINS = {  # operators drain most of dc-a's servers (panic), then its load balancers fail and come back
    **{k: v for k, v in OUTAGE.items() if k != "faults"},
    "faults": [{"id": "oops", "kind": "drain", "target": {"datacenters": ["dc-a"], "mode": {"percent": "60%"}},
                "at": "2m", "duration": "4m"},
               {"id": "front-door", "kind": "load_balancer_failure", "target": {"ids": ["dc-a"]}, "at": "8m",
                "duration": "3m"}],
}


def _one_at_a_time(self: Cluster) -> contextlib.AbstractContextManager[None]:
    """What the sweeps did before they were batched: every change announced when it is made."""
    return contextlib.nullcontext()


def _fingerprint(result: sim.Result) -> tuple[Any, ...]:
    return result.summary["availability"], result.summary["counts"], result.events


def _batched_and_single(changes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[sim.Result, sim.Result]:
    scenario = scenario_from(changes)
    batched = sim.run(scenario)
    with monkeypatch.context() as m:
        m.setattr(Cluster, "batched_pools", _one_at_a_time)
        single = sim.run(scenario)
    return batched, single


@pytest.mark.parametrize("engine", ["flow", "requests"])
def test_a_batched_sweep_gives_the_run_of_one_change_at_a_time(engine, monkeypatch):
    batched, single = _batched_and_single({**OUTAGE, "engine": engine}, monkeypatch)
    assert _fingerprint(batched) == _fingerprint(single)
    kinds = [e["kind"] for e in batched.events]
    assert kinds.count(EJECTED) >= 30 and kinds.count(READMITTED) >= 30
    for kind, around in ((PANIC, EJECTED), (PANIC_OVER, READMITTED)):  # judged in the middle of a sweep
        i = kinds.index(kind)
        assert kinds[i - 1] == around and kinds[i + 1] == around


@pytest.mark.parametrize("engine", ["flow", "requests"])
def test_a_batched_fault_gives_the_run_of_one_change_at_a_time(engine, monkeypatch):
    batched, single = _batched_and_single({**DRAINS, "engine": engine}, monkeypatch)
    assert _fingerprint(batched) == _fingerprint(single)
    kinds = [e["kind"] for e in batched.events]
    assert kinds.count(EJECTED) >= 18 and PANIC in kinds and LB_DOWN in kinds


class _Listener:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Callable[[int], None]:
        return lambda _: None

    def rotation_changed(self, datacenter: int) -> None:
        self.calls.append(datacenter)


def _cluster(changes: dict[str, Any]) -> Cluster:
    scenario = scenario_from(changes)
    return Cluster(simpy.Environment(), scenario, build_topology(scenario), Trace())


def test_a_batch_announces_each_pool_once_at_its_end_in_the_order_they_changed():
    cluster = _cluster({})
    listener = _Listener()
    cluster.listeners = [listener]  # type: ignore[list-item]
    b, a = cluster.servers_of_dc[1], cluster.servers_of_dc[0]
    with cluster.batched_pools():
        cluster.set_rotation(b[0], False, None)
        cluster.set_rotation(a[0], False, None)
        with cluster.batched_pools():  # nested: the outer one announces
            cluster.set_rotation(b[1], False, None)
        cluster.set_rotation(a[0], True, None)
        assert listener.calls == []
        assert cluster.rotation_mask[[b[0], b[1], a[0]]].tolist() == [False, False, True]  # the state is changed
    assert listener.calls == [1, 0]
    cluster.set_rotation(b[0], True, None)  # outside a batch: at once
    assert listener.calls == [1, 0, 1]


def test_panic_is_judged_at_each_change_inside_a_batch():
    cluster = _cluster({"policies": {"load_balancer": {"panic_threshold": "50%"}}})
    a = cluster.servers_of_dc[0]  # four servers
    cluster.drain(a[3], True, None)
    records = cluster.trace.records
    with cluster.batched_pools():
        cluster.set_rotation(a[0], False, None)  # two of four in rotation: not below half
        assert not cluster.panicking[0]
        rid = cluster.set_rotation(a[1], False, None)  # one of four
        assert cluster.panicking[0]
        assert records[-1].kind == PANIC and records[-1].cause == rid
        assert records[-1].detail == "1 of 4 servers healthy"
        cluster.set_rotation(a[1], True, None)
        assert records[-1].kind == PANIC_OVER and not cluster.panicking[0]
        cluster.set_rotation(a[1], False, None)
    assert cluster.panicking[0]
    assert pool(cluster, 0) == a[:3]  # in panic: every server not drained
    assert pool(cluster, 1) == cluster.servers_of_dc[1]


class _ProcessFailover(Failover):
    """The failover as it was, each activation and failback a SimPy process: the reference."""

    def server_down(self, server: int) -> None:
        cluster = self.cluster
        cause = cluster.servers[server].down_event
        for db in cluster.servers[server].databases:
            if cluster.active[db] == server:
                cluster.activate(db, -1)
                rid = cluster.trace.record(cluster.now, DATABASE_UNAVAILABLE, cluster.database_ids[db], cause,
                                           f"active copy on {cluster.servers[server].id} lost")
                self.env.process(self._activating(db, rid))

    def server_up(self, server: int) -> None:
        cluster = self.cluster
        cause = cluster.servers[server].up_event
        for db in cluster.servers[server].databases:
            if cluster.active[db] == -1:
                self.env.process(self._activating(db, cause))
            elif self.policy.failback and cluster.copies[db][0] == server:
                self.env.process(self._failing_back(db, server, cause))

    def _failing_back(self, db: int, server: int, cause: int | None) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(self.policy.database_delay)
        self._failback(db, server, cause)

    def _activating(self, db: int, cause: int | None) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(self.policy.database_delay)
        cluster = self.cluster
        if cluster.active[db] != -1:
            return
        limit = self.policy.max_activations_per_minute
        while limit is not None and len(self.recent) >= limit:
            if self.env.now - self.recent[0] >= 60.0:
                self.recent.popleft()
                continue
            yield self.env.timeout(60.0 - (self.env.now - self.recent[0]))
            if cluster.active[db] != -1:
                return
        self._activate(db, cause)


@pytest.mark.parametrize("engine", ["flow", "requests"])
def test_failover_callbacks_run_as_the_processes_did(engine, monkeypatch):
    scenario = scenario_from({**OUTAGE, "engine": engine})
    callbacks = sim.run(scenario)
    with monkeypatch.context() as m:
        m.setattr(run_module, "Failover", _ProcessFailover)
        processes = sim.run(scenario)
    assert _fingerprint(callbacks) == _fingerprint(processes)
    kinds = [e["kind"] for e in callbacks.events]
    assert kinds.count(FAILOVER) >= 40 and kinds.count(FAILBACK) >= 20  # rate-limited: 7 a minute
