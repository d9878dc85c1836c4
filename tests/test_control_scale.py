"""The control plane at scale: vectorised sweeps, per-datacenter counts, quiet sweeps.

- With the request engine, the vectorised health checks and overload monitor make exactly the
  decisions the per-server loops made (same events, same times, same order, same causes).
- With an engine that allows quiet sweeps, skipping the sweeps that cannot change anything gives the
  same run as sweeping every server every interval.
- The cluster's per-datacenter counts and capacity equal a recount after any sequence of changes.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim import control
from sim.cluster import Cluster
from sim.control import Failover, HealthChecker, OverloadMonitor, TrafficManager, trigger_at
from sim.engine.requests import RequestEngine
from sim.loader import load_scenario
from sim.recorder import Recorder
from sim.rng import Streams
from sim.sizing import mix_work, server_capacity
from sim.topology import build_topology
from sim.trace import Trace
from tests.conftest import scenario_from
from tests.shipped import group, run_cached

ROOT = Path(__file__).resolve().parents[1]
run_module = importlib.import_module("sim.run")


# ------------------------------------------------------------------ the per-server loops, as they were


class LoopHealthChecker:
    """The health checks as one Python loop over the servers, probing each with ``engine.probe``."""

    def __init__(self, env, cluster, policy, engine):
        self.env, self.cluster, self.policy, self.engine = env, cluster, policy, engine
        n = len(cluster.servers)
        self.failures = [0] * n
        self.successes = [0] * n
        if policy.enabled:
            env.process(self._run())

    def _run(self):
        policy, cluster, probe = self.policy, self.cluster, self.engine.probe
        while True:
            yield self.env.timeout(policy.interval)
            vector = self.engine.probe_all(policy.timeout)  # the vector agrees with the loop
            assert vector.tolist() == [probe(i, policy.timeout) for i in range(len(cluster.servers))]
            for server in cluster.servers:
                i = server.index
                if probe(i, policy.timeout):
                    self.failures[i] = 0
                    self.successes[i] += 1
                    if (not server.in_rotation and not server.drained
                            and self.successes[i] >= policy.healthy_threshold):
                        cause = max((e for e in (server.up_event, server.rotation_event) if e is not None),
                                    default=None)  # the restart or the ejection it ends
                        cluster.set_rotation(i, True, cause, f"{self.successes[i]} health checks passed")
                else:
                    self.successes[i] = 0
                    self.failures[i] += 1
                    if server.in_rotation and self.failures[i] >= policy.unhealthy_threshold:
                        why = "down" if not server.up else "slow: health check timed out"
                        if not server.up:
                            cause = server.down_event
                        elif server.overload_event is not None:
                            cause = server.overload_event
                        else:
                            cause = cluster.load_cause(i)
                        cluster.set_rotation(i, False, cause, f"{self.failures[i]} health checks failed ({why})")


class LoopOverloadMonitor:
    """The overload monitor as one Python loop over the servers, asking each ``engine.wait``."""

    SUSTAINED = 2

    def __init__(self, env, cluster, engine, threshold, interval):
        self.env, self.cluster, self.engine = env, cluster, engine
        self.threshold, self.interval = threshold, interval
        self.above = [0] * len(cluster.servers)
        env.process(self._run())

    def _run(self):
        cluster, wait, threshold = self.cluster, self.engine.wait, self.threshold
        while True:
            yield self.env.timeout(self.interval)
            assert self.engine.wait_all().tolist() == [wait(i) for i in range(len(cluster.servers))]
            for server in cluster.servers:
                w = wait(server.index)
                i = server.index
                self.above[i] = self.above[i] + 1 if w > threshold and server.down == 0 else 0
                if server.overload_event is None and self.above[i] >= self.SUSTAINED:
                    rid = cluster.trace.record(self.env.now, "overloaded", server.id, cluster.load_cause(server.index),
                                               f"queue wait {w:.2f}s > {threshold:g}s")
                    server.overload_event = rid
                    cluster.note_harm(server.datacenter, rid)
                elif server.overload_event is not None and (w < threshold / 2 or server.down):
                    cluster.trace.record(self.env.now, "overload_cleared", server.id, server.overload_event,
                                         "queue drained" if server.down == 0 else "server down")
                    server.overload_event = None


def _records(result: sim.Result) -> list[tuple]:
    return [tuple(r) for r in result.trace.records]


CRASHES_AND_OVERLOAD = {
    "duration": "6m",
    "topology": {"datacenters": [
        {"id": "dc-a", "servers": [{"id": "a", "count": 5, "workers": 4, "service_time": "40ms",
                                    "queue_limit": 100}]},
        {"id": "dc-b", "servers": [{"id": "b", "count": 3, "workers": 4, "service_time": "40ms"}]},
    ]},
    "workload": {"regions": {"users": {"peak": "350/s"}}},
    "policies": {"load_balancer": {"health_check": {"interval": "1.5s", "timeout": "300ms",
                                                    "unhealthy_threshold": 2, "healthy_threshold": 2}},
                 "server": {"overload_threshold": "200ms"}},
    "faults": [
        {"kind": "server_crash", "target": {"ids": ["a-01", "a-02"]}, "at": "1m", "duration": "2m"},
        {"kind": "drain", "target": {"ids": ["a-03"]}, "at": "2m", "duration": "1m"},
        {"kind": "datacenter_outage", "target": {"ids": ["dc-a"]}, "at": "4m", "duration": "1m"},
    ],
}


@pytest.mark.parametrize("scenario", [
    pytest.param(lambda: scenario_from(CRASHES_AND_OVERLOAD), id="crashes-drain-outage-overload"),
    pytest.param(lambda: load_scenario(ROOT / "scenarios/mechanisms/ejection-cascade.yaml"), id="ejection-cascade",
                 marks=group("mechanisms/ejection-cascade.yaml")),
    pytest.param(lambda: load_scenario(ROOT / "scenarios/mechanisms/adaptive-lifo.yaml"), id="adaptive-lifo",
                 marks=group("mechanisms/adaptive-lifo.yaml")),
])
def test_vectorised_sweeps_decide_as_the_per_server_loops_did(scenario, monkeypatch):
    scenario = scenario()
    vectorised = run_cached(scenario)  # before the monkeypatch; a shipped file's run is shared (tests/shipped.py)
    monkeypatch.setattr(run_module, "HealthChecker", LoopHealthChecker)
    monkeypatch.setattr(run_module, "OverloadMonitor", LoopOverloadMonitor)
    looped = sim.run(scenario)
    kinds = {r.kind for r in vectorised.trace.records}
    assert "ejected" in kinds and "readmitted" in kinds or "overloaded" in kinds
    assert _records(vectorised) == _records(looped)
    assert vectorised.summary == looped.summary
    assert vectorised.recorder.dc_capacity == looped.recorder.dc_capacity


def test_the_request_engine_is_swept_every_interval(make_scenario):
    scenario = make_scenario({"duration": "1m", "policies": {"load_balancer": {"health_check": {"interval": "5s"}}}})
    env = simpy.Environment()
    cluster = Cluster(env, scenario, build_topology(scenario), Trace())
    engine = RequestEngine(env, scenario, cluster, Streams(1), Recorder(scenario, cluster))
    hc = HealthChecker(env, cluster, scenario.policies.load_balancer.health_check, engine)
    assert not hc.quiet and not cluster.wakers
    env.run(until=60.0)
    assert hc.sweeps == 11  # at 5, 10, ..., 55 s: a timeout after the previous one, as always


# ------------------------------------------------------------------ quiet sweeps


class FakeEngine:
    """An engine whose answers change only when told to: a wait per server, set by the test. A check of
    a server waiting about as long as the timeout passes at random (one draw per such server and sweep).
    """

    quiet_ok = True
    wake_floor = math.inf  # the control plane lowers it (sim.engine.base.EngineBase declares it so)

    def __init__(self, n: int, use_floor: bool):
        self.waits = np.zeros(n)
        self.up = np.ones(n, dtype=bool)
        self.wakers: list = []
        self.use_floor = use_floor
        self.was_below = True
        self.rng = np.random.default_rng(5)
        self.probe_drew = False

    def set_waits(self, servers: list[int], wait: float) -> None:
        self.waits[servers] = wait
        below = bool((self.wait_all() < getattr(self, "wake_floor", math.inf)).all())
        if not (self.use_floor and below and self.was_below):
            for wake in self.wakers:
                wake()
        self.was_below = below

    def probe(self, server: int, timeout: float) -> bool:
        return bool(self.up[server]) and float(self.waits[server]) < timeout

    def wait(self, server: int) -> float:
        return float(self.waits[server]) if self.up[server] else 0.0

    def probe_all(self, timeout: float) -> np.ndarray:
        sure_pass, sure_fail = self.waits < timeout - 0.25, self.waits > timeout + 0.25
        unsure = self.up & ~sure_pass & ~sure_fail
        out = self.up & sure_pass
        self.probe_drew = bool(unsure.any())
        if self.probe_drew:
            out[unsure] = self.rng.random(int(unsure.sum())) < 0.5
        return out

    def wait_all(self) -> np.ndarray:
        return np.where(self.up, self.waits, 0.0)

    def server_down(self, server: int) -> None:
        self.up[server] = False  # its own answer: the cluster wakes the sweeps for it

    def server_up(self, server: int) -> None:
        self.up[server] = True

    def rotation_changed(self, datacenter: int) -> None:
        pass

    def dependency_changed(self, dependency: int) -> None:
        pass

    def load_changed(self, region: int) -> None:
        pass

    def version_changed(self, server: int) -> None:
        pass


QUIET_BASE = {
    "duration": "2h",
    "topology": {"datacenters": [
        {"id": "dc-a", "servers": [{"id": "a", "count": 6, "service_time": "20ms"}]},
        {"id": "dc-b", "servers": [{"id": "b", "count": 6, "service_time": "20ms"}]},
    ]},
    "policies": {"load_balancer": {"health_check": {"interval": "3s", "timeout": "1s",
                                                    "unhealthy_threshold": 3, "healthy_threshold": 2}},
                 "server": {"overload_threshold": "1s"},
                 "failover": {"database_delay": "10s", "datacenter_delay": "20s"}},
}

# (time, operation, argument): waits of some servers, a server down/up, a drain/undrain, a datacenter down/up
Op = tuple[float, str, tuple]


def _play(ops: list[Op], skip: bool, use_floor: bool, horizon: float) -> tuple[list[tuple], list[int]]:
    scenario = scenario_from(QUIET_BASE)
    env = simpy.Environment()
    trace = Trace()
    cluster = Cluster(env, scenario, build_topology(scenario), trace)
    engine = FakeEngine(len(cluster.servers), use_floor)
    policies = scenario.policies
    cluster.listeners = [Failover(env, cluster, policies.failover), engine]
    sweeps = [
        HealthChecker(env, cluster, policies.load_balancer.health_check, engine),
        TrafficManager(env, cluster, policies.failover, engine),
        OverloadMonitor(env, cluster, engine, policies.server.overload_threshold,
                        policies.load_balancer.health_check.interval),
    ]
    for s in sweeps:
        assert s.quiet
        s.skip = skip

    def player() -> Generator[simpy.Event, None, None]:
        for at, op, arg in sorted(ops, key=lambda o: o[0]):
            event = env.event()
            trigger_at(env, event, at, simpy.events.NORMAL)  # exactly at ``at``, ties with sweeps included
            yield event
            if op == "waits":
                engine.set_waits(*arg)
            elif op == "server":
                server, down = arg
                if down:
                    cluster.server_down(server, None, "test")
                elif cluster.servers[server].down:
                    cluster.server_up(server, None, "test")
            elif op == "drain":
                server, drained = arg
                if drained or cluster.servers[server].drained:
                    cluster.drain(server, drained, None)
            elif op == "datacenter":
                dc, down = arg
                if down:
                    cluster.datacenter_down(dc, None, "test")
                elif cluster.dc_down[dc]:
                    cluster.datacenter_up(dc, None, "test")

    env.process(player())
    env.run(until=horizon)
    return [tuple(r) for r in trace.records], [s.sweeps for s in sweeps]


WAITS = [0.0, 0.2, 0.7, 1.0, 1.5, 4.0]  # around the floor (0.5), the timeout (1: 1.0 is drawn), the threshold


def _ops(draw_times: list[float], draw: st.DrawFn) -> list[Op]:
    ops: list[Op] = []
    for at in draw_times:
        kind = draw(st.sampled_from(["waits", "waits", "server", "drain", "datacenter"]))
        if kind == "waits":
            servers = draw(st.lists(st.integers(0, 11), min_size=1, max_size=6, unique=True))
            ops.append((at, kind, (servers, draw(st.sampled_from(WAITS)))))
        elif kind in ("server", "drain"):
            ops.append((at, kind, (draw(st.integers(0, 11)), draw(st.booleans()))))
        else:
            ops.append((at, kind, (draw(st.integers(0, 1)), draw(st.booleans()))))
    return ops


@st.composite
def operations(draw: st.DrawFn) -> list[Op]:
    # Times on the 3 s grid of the sweeps (ties with them) and in between.
    times = draw(st.lists(st.one_of(st.integers(1, 1200).map(lambda k: 3.0 * k),
                                    st.floats(0.1, 3600.0, allow_nan=False)), min_size=1, max_size=40))
    return _ops(times, draw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HypothesisHealthCheck.too_slow])
@given(ops=operations(), use_floor=st.booleans())
def test_quiet_sweeps_decide_as_sweeping_every_interval(ops, use_floor):
    quiet, quiet_sweeps = _play(ops, skip=True, use_floor=use_floor, horizon=4000.0)
    every, every_sweeps = _play(ops, skip=False, use_floor=use_floor, horizon=4000.0)
    assert quiet == every
    assert every_sweeps == [1333, 799, 1333]  # every multiple of 3 s (5 s) before 4000 s
    assert all(q <= e for q, e in zip(quiet_sweeps, every_sweeps, strict=True))


def test_quiet_sweeps_eject_and_readmit_at_the_same_times():
    ops: list[Op] = [
        (100.0, "server", (0, True)), (200.0, "server", (0, False)),  # down: ejected; up: readmitted
        (301.5, "waits", ([7, 8], 1.5)), (420.0, "waits", ([7, 8], 0.0)),  # slow: ejected, overloaded
        (600.0, "drain", (3, True)), (700.0, "drain", (3, False)),
        (900.0, "datacenter", (0, True)), (1000.0, "datacenter", (0, False)),  # users move and back
    ]
    quiet, quiet_sweeps = _play(ops, skip=True, use_floor=True, horizon=1200.0)
    every, every_sweeps = _play(ops, skip=False, use_floor=True, horizon=1200.0)
    assert quiet == every
    kinds = [r[2] for r in quiet]
    for kind in ("ejected", "readmitted", "overloaded", "overload_cleared", "traffic_shift"):
        assert kind in kinds
    ejected = [r for r in quiet if r[2] == "ejected" and r[3] == "a-01"]
    assert ejected[0][1] == 108.0  # down at 100: failed at 102, 105, 108 (3 s sweeps, 3 failures)
    assert sum(quiet_sweeps) < sum(every_sweeps) / 5


def test_a_quiet_year_costs_a_few_sweeps():
    ops: list[Op] = [(86400.0 * d + hour * 3600.0, "server", (d % 12, hour == 1))
                     for d in range(365) for hour in (1, 9)]  # a crash a day, 8 hours long
    started = time.perf_counter()
    _, sweeps = _play(ops, skip=True, use_floor=True, horizon=365 * 86400.0)
    assert time.perf_counter() - started < 10
    assert 365 * 3 < sum(sweeps) < 365 * 30  # a handful per crash, not 16 million


def test_sweeps_fall_exactly_on_multiples_of_the_interval():
    env = simpy.Environment()
    fired: list[tuple[float, float]] = []

    def at(k: int) -> None:
        event = env.event()
        event.callbacks.append(lambda _: fired.append((env.now, k * 0.1)))
        trigger_at(env, event, k * 0.1, control.LATE)

    def process() -> Generator[simpy.Event, None, None]:
        for k in range(1, 2000, 7):
            yield env.timeout(0.0123)
            at(k + 3)

    env.process(process())
    env.run()
    assert fired and all(now == want for now, want in fired)


# ------------------------------------------------------------------ per-datacenter counts


def _recount(cluster: Cluster, work: float) -> tuple[list[int], list[int], list[float]]:
    up, healthy, capacity = [], [], []
    for members in cluster.servers_of_dc:
        u = h = 0
        c = 0.0
        for i in members:
            s = cluster.servers[i]
            if s.down == 0:
                u += 1
                if s.in_rotation:
                    h += 1
                    c += server_capacity(s.workers, s.service.mean, work)
        up.append(u)
        healthy.append(h)
        capacity.append(c)
    return up, healthy, capacity


COUNTED = {
    "topology": {"datacenters": [
        {"id": "dc-a", "servers": [{"id": "a", "count": 5, "service_time": "30ms", "workers": 3},
                                   {"id": "x", "count": 2, "service_time": "70ms", "workers": 7}]},
        {"id": "dc-b", "servers": [{"id": "b", "count": 4, "service_time": "10ms"}]},
    ]},
}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["down", "up", "rotation", "drain", "dc"]), st.integers(0, 10),
                          st.booleans()), max_size=60))
def test_per_datacenter_counts_equal_a_recount(ops):
    scenario = scenario_from(COUNTED)
    env = simpy.Environment()
    cluster = Cluster(env, scenario, build_topology(scenario), Trace())
    woken: list[int | None] = []
    cluster.wakers.append(woken.append)
    before = _recount(cluster, mix_work(scenario))[:2]
    downs = [0] * len(cluster.servers)  # each server_up ends a server_down of its own, as faults do
    for op, i, flag in ops:
        s = cluster.servers[i]
        if op == "down":
            downs[i] += 1
            cluster.server_down(i, None)
        elif op == "up" and downs[i]:
            downs[i] -= 1
            cluster.server_up(i, None)
        elif op == "rotation":
            cluster.set_rotation(i, flag, None)
        elif op == "drain" and (flag or s.drained):
            cluster.drain(i, flag, None)
        elif op == "dc":
            dc = i % 2
            if flag:
                cluster.datacenter_down(dc, None)
            elif cluster.dc_down[dc]:
                cluster.datacenter_up(dc, None)
        up, healthy, capacity = _recount(cluster, mix_work(scenario))
        assert cluster.up_count == up
        assert cluster.healthy_count == healthy
        assert [cluster.healthy_servers(dc) for dc in range(2)] == healthy
        assert [cluster.healthy_capacity(dc) for dc in range(2)] == capacity  # the same float, not close
        assert cluster.up_mask.tolist() == [x.down == 0 for x in cluster.servers]
        assert cluster.rotation_mask.tolist() == [x.in_rotation for x in cluster.servers]
        assert cluster.drained_mask.tolist() == [x.drained > 0 for x in cluster.servers]
        if (up, healthy) != before:
            assert woken  # a change of state woke the sweeps
        before = (up, healthy)
