"""Random faults (``mtbf``/``mttr``): one scheduler per fault, each target's times from its own stream.

- The scheduler (:class:`sim.fault_base.Renewals`) makes exactly the events the per-target processes made
  before it (kept here as the oracle): same times, nodes, details, causes and order, with and without crews.
- A target's k-th up and repair times are a function of (seed, fault id, target, k) only: they are the
  draws of its stream ``fault/<id>/<target>``, whatever else the layout holds (common random numbers).
- ``repair: {crews: c}`` keeps at most ``c`` repairs going, never leaves a crew idle while a failure
  waits, and takes failures in the order they happened.
- With unlimited crews the targets are independent units down MTTR / (MTBF + MTTR) of the time (checked
  against :mod:`sim.reliability` over several seeds, within 4 standard errors).
- :meth:`sim.rng.Streams.generators` builds the same generators as :meth:`~sim.rng.Streams.generator`.

The single target through an engine is ``tests/validation/test_availability.py``; limited crews against the
machine-repairman chain, ``tests/validation/test_repairman.py``; the crews' validation and queue,
``tests/test_repair_crews.py``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Generator
from functools import cache
from typing import Any

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim import rng as rng_module
from sim.cluster import Cluster
from sim.events import FAULT_END, FAULT_START
from sim.fault_base import Crews, FaultContext, FaultSpec, _first_block
from sim.faults import inject, select_targets
from sim.reliability import all_down, down_distribution
from sim.rng import Streams
from sim.topology import build_topology
from sim.trace import Trace
from sim.units import format_duration


def crashing(
    servers: int, mtbf: str, mttr: str, crews: int | None = None, more: int = 0, duration: str = "1h"
) -> sim.Scenario:
    """``servers`` servers ``srv-NN`` that crash at random (fault ``hw``), and ``more`` in group ``new``.

    ``duration`` sizes the targets' first blocks of draws (the logs below run past it: no engine is built).
    """
    repair = "" if crews is None else f", repair: {{crews: {crews}}}"
    extra = "" if not more else f", {{id: new, count: {more}, workers: 1, service_time: 1ms}}"
    return sim.parse_scenario(f"""
name: random-faults
duration: {duration}
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - {{id: dc, servers: [{{id: srv, count: {servers}, workers: 1, service_time: 1ms}}{extra}]}}
workload: {{regions: {{users: {{peak: 1/s}}}}}}
faults: [{{id: hw, kind: server_crash, target: {{}}, mtbf: {mtbf}, mttr: {mttr}{repair}}}]
""")


def fault_log(scenario: sim.Scenario, seed: int, until: float, oracle: bool = False) -> list[tuple]:
    """Every trace record of the scenario's one random fault up to ``until``, no engine built: through
    :func:`sim.faults.inject`, or through the per-target processes of the oracle.
    """
    env, trace = simpy.Environment(), Trace()
    cluster = Cluster(env, scenario, build_topology(scenario), trace)
    ctx = FaultContext(env, cluster, Streams(seed))
    fault, fault_id = scenario.faults[0], scenario.fault_id(0)
    if oracle:
        inject_processes(ctx, fault, fault_id)
    else:
        inject(ctx, fault, fault_id)
    env.run(until=until)
    return [(r.time, r.kind, r.node, r.cause, r.detail, r.fault) for r in trace.records]


# ------------------------------------------------------------------------------------ the oracle


def inject_processes(ctx: FaultContext, fault: FaultSpec, fault_id: str) -> None:
    """How random faults were run before the scheduler: one generator and one SimPy process per target."""
    targets = select_targets(ctx.cluster, fault.targets, fault.target, ctx.streams.generator(f"fault/{fault_id}"))
    crews = None if fault.repair is None else Crews(ctx.env, fault.repair.crews)
    for index, name in targets:
        own = ctx.streams.generator(f"fault/{fault_id}/{name}")
        ctx.env.process(renewal(ctx, fault, fault_id, index, name, own, crews))


def renewal(
    ctx: FaultContext, fault: FaultSpec, fault_id: str, index: int, name: str, rng: Any, crews: Crews | None
) -> Generator[simpy.Event, None, None]:
    """The per-target process, as it was: exponential up and repair times drawn one at a time."""
    env, cluster = ctx.env, ctx.cluster
    trace = cluster.trace
    assert fault.mtbf is not None and fault.mttr is not None
    while True:
        yield env.timeout(float(rng.exponential(fault.mtbf)))
        handed = None if crews is None else crews.take()
        waits = "" if crews is None or handed is None else f"; waiting for a repair crew (all {crews.n} busy)"
        start = trace.record(env.now, FAULT_START, name, None, f"{fault.kind} (random){waits}", fault=fault_id)
        fault.start(cluster, index, start)
        waited = ""
        if handed is not None:
            failed = env.now
            yield handed
            waited = f" (waited {format_duration(env.now - failed)} for a crew)"
        yield env.timeout(float(rng.exponential(fault.mttr)))
        end = trace.record(env.now, FAULT_END, name, start, f"{fault.kind} repaired{waited}")
        fault.end(cluster, index, end)
        if crews is not None:
            crews.release()


@pytest.mark.parametrize("crews", [None, 1, 2, 5])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_scheduler_makes_the_events_of_the_per_target_processes(crews: int | None, seed: int) -> None:
    """Bit for bit: every record (server_down and server_up included) at the same float time, in the same
    order, with the same detail and cause. Every server uses up its first block of draws (sized for a
    1-minute scenario) and the next one: its stream is rebuilt, then kept.
    """
    scenario = crashing(30, "10s", "3s", crews, duration="1m")
    new, old = fault_log(scenario, seed, 6000.0), fault_log(scenario, seed, 6000.0, oracle=True)
    repaired = [node for _, kind, node, *_ in old if kind == FAULT_END]
    first = _first_block(60.0, 10.0, 3.0)
    assert min(repaired.count(f"srv-{i:02d}") for i in range(1, 31)) > 3 * first // 2
    if crews is not None and crews < 30:
        assert any("waiting for a repair crew" in r[4] for r in old), "the run does not exercise the queue"
    assert new == old


# ------------------------------------------------------------------------------------ common random numbers


def cycles(log: list[tuple]) -> dict[str, list[tuple[float, float]]]:
    """(failure time, repair end) of each target's failures, in order."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    failed: dict[str, float] = {}
    for time, kind, node, *_ in log:
        if kind == FAULT_START:
            failed[node] = time
        elif kind == FAULT_END:
            out[node].append((failed.pop(node), time))
    return out


def test_adding_servers_moves_no_other_servers_failures() -> None:
    """Three more servers (and a second group) in the layout: the first four fail and recover at the same
    times, to the bit.
    """
    small = cycles(fault_log(crashing(4, "60s", "20s"), 11, 5000.0))
    large = cycles(fault_log(crashing(7, "60s", "20s", more=3), 11, 5000.0))
    assert sorted(small) == [f"srv-0{i}" for i in range(1, 5)]
    assert set(large) > set(small) and {"srv-07", "new-01"} <= set(large)
    for node, failures in small.items():
        assert len(failures) >= 30 and large[node] == failures


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**64),
    mtbf=st.floats(0.5, 5000.0),
    mttr=st.floats(0.1, 500.0),
    servers=st.integers(1, 5),
    periods=st.integers(1, 200),
)
def test_a_targets_times_are_its_own_streams_draws(
    seed: int, mtbf: float, mttr: float, servers: int, periods: int
) -> None:
    """The k-th failure of ``srv-01`` comes ``e[2k] * mtbf`` after the previous repair, which lasts
    ``e[2k+1] * mttr``, ``e`` the standard exponentials of ``Streams(seed).generator("fault/hw/srv-01")``:
    over about ``periods`` failures, within the first block of draws or past it.
    """
    scenario = crashing(servers, f"{mtbf!r}s", f"{mttr!r}s", duration="2h")
    log = fault_log(scenario, seed, periods * (mtbf + mttr))
    failures = cycles(log)["srv-01"]
    draws = Streams(seed).generator("fault/hw/srv-01").standard_exponential(2 * len(failures) + 2).tolist()
    now, expected = 0.0, []
    for k in range(len(failures)):
        failed = now + draws[2 * k] * mtbf
        now = failed + draws[2 * k + 1] * mttr
        expected.append((failed, now))
    assert failures == expected


# ------------------------------------------------------------------------------------ crews


@pytest.mark.parametrize("crews", [1, 2, 3])
def test_crews_repair_at_most_c_at_once_and_first_failed_first(crews: int) -> None:
    """Each repair lasts exactly its target's repair draw, from when a crew takes it, so the log gives every
    repair's start: just after every event, min(down, c) repairs are going (at most ``c``, and no crew idles
    while a failure waits), repairs start in failure order, and a failure waits exactly when it finds
    ``c`` others down.
    """
    n, mttr, seed = 8, 10.0, 5
    log = fault_log(crashing(n, "20s", "10s", crews), seed, 5000.0)
    rows = []  # (failed, repair start, repair end, failure waited)
    waits = {(t, node): "waiting" in detail for t, kind, node, _, detail, _ in log if kind == FAULT_START}
    for i in range(1, n + 1):
        node = f"srv-0{i}"
        draws = Streams(seed).generator(f"fault/hw/{node}").standard_exponential(2000).tolist()
        for k, (failed, end) in enumerate(cycles(log)[node]):
            rows.append((failed, end - draws[2 * k + 1] * mttr, end, waits[failed, node]))
    rows.sort()
    failed, start, end = (np.array([r[i] for r in rows]) for i in range(3))
    waited = np.array([r[3] for r in rows])
    assert len(rows) > 300 and waited.sum() > 50, "the run does not exercise the queue"
    assert np.all(np.diff(start) > -1e-7)  # first failed, first served
    assert np.array_equal(start > failed + 1e-7, waited)  # a repair starts late exactly when it waited
    probes = np.unique(np.concatenate([failed, end])) + 1e-7  # just after every event
    down = ((failed <= probes[:, None]) & (probes[:, None] < end)).sum(axis=1)
    repairing = ((start <= probes[:, None]) & (probes[:, None] < end)).sum(axis=1)
    assert down.max() > crews and np.array_equal(repairing, np.minimum(down, crews))
    others_down = ((failed < failed[:, None]) & (failed[:, None] < end)).sum(axis=1)
    assert np.array_equal(waited, others_down >= crews)


# ------------------------------------------------------------------------------------ against theory

N, MTBF, MTTR = 20, 9.0, 1.0
DURATION = 4000.0
SEEDS = range(301, 309)
PAIR = ("srv-01", "srv-02")


@cache
def shares(seed: int) -> tuple[float, float]:
    """Fraction of target-time down, and fraction of time both servers of ``PAIR`` are down."""
    log = fault_log(crashing(N, f"{MTBF:g}s", f"{MTTR:g}s"), seed, DURATION)
    down_time, both, last, down = 0.0, 0.0, 0.0, set()
    for time, kind, node, *_ in log:
        if kind not in (FAULT_START, FAULT_END):
            continue
        down_time += len(down) * (time - last)
        both += (time - last) if down.issuperset(PAIR) else 0.0
        last = time
        (down.add if kind == FAULT_START else down.discard)(node)
    down_time += len(down) * (DURATION - last)
    both += (DURATION - last) if down.issuperset(PAIR) else 0.0
    return down_time / (N * DURATION), both / DURATION


def check(values: list[float], theory: float, resolves: float) -> None:
    """Mean over seeds within 4 standard errors of ``theory``, and 4 SE below the error the test must see."""
    mean, se = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    assert abs(mean - theory) < 4 * se, f"measured {mean:.5g}, theory {theory:.5g}, SE {se:.3g} ({values})"
    assert 4 * se < resolves, f"4 SE = {4 * se:.3g}: the test cannot tell an error of {resolves:.3g}"


def test_share_of_time_down_is_mttr_over_mtbf_plus_mttr() -> None:
    """Resolves 5% of the unavailability (an MTTR drawn 5% too long)."""
    theory = float(np.dot(np.arange(N + 1), down_distribution(N, MTBF, MTTR))) / N
    assert theory == pytest.approx(MTTR / (MTBF + MTTR))
    check([shares(seed)[0] for seed in SEEDS], theory, resolves=0.05 * theory)


def test_targets_fail_independently() -> None:
    """Two servers are both down q² of the time (their streams are independent): resolves 25% of q², and
    q itself (one stream shared by both) is 10 times further.
    """
    theory = all_down(2, N, MTBF, MTTR)
    q = MTTR / (MTBF + MTTR)
    assert theory == pytest.approx(q * q)
    values = [shares(seed)[1] for seed in SEEDS]
    check(values, theory, resolves=0.25 * theory)
    assert q - theory > 10 * 4 * statistics.stdev(values) / math.sqrt(len(values))


def test_same_seed_same_failures_another_seed_others() -> None:
    scenario = crashing(6, "30s", "10s", crews=2)
    assert fault_log(scenario, 9, 3000.0) == fault_log(scenario, 9, 3000.0)
    assert fault_log(scenario, 9, 3000.0) != fault_log(scenario, 10, 3000.0)


# ------------------------------------------------------------------------------------ the streams in bulk

NAMES = [f"fault/hw/srv-{i:02d}" for i in range(1, 60)] + ["", "fault/é/ü", "arrivals/eu"]


@pytest.mark.parametrize("seed", [0, 1, 2027, 2**32 - 1, 2**32, 2**64 + 5, 2**128 - 1, 2**128, 3**90])
def test_generators_in_bulk_are_the_named_generators(seed: int) -> None:
    streams = Streams(seed)
    bulk = streams.generators(NAMES)
    for name, generator in zip(NAMES, bulk, strict=True):
        assert generator.standard_exponential(5).tolist() == streams.generator(name).standard_exponential(5).tolist()


def test_bulk_seeding_hashes_as_numpy_does() -> None:
    """The fast path itself (not its fallback) gives numpy's seed material for every name."""
    keys = list(range(0, 2**32, 2**32 // 997)) + [2**32 - 1]
    for seed in (0, 7, 2**96 + 3):
        states = rng_module._seed_states(seed, keys)
        assert states is not None
        expected = [np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(4, np.uint64) for k in keys]
        assert np.array_equal(states, np.array(expected))


def test_bulk_falls_back_to_one_by_one_when_the_hash_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rng_module, "_seed_states", lambda seed, keys: np.zeros((len(keys), 4), dtype=np.uint64))
    streams = Streams(3)
    assert [g.random() for g in streams.generators(NAMES)] == [streams.generator(n).random() for n in NAMES]


def test_a_bad_seed_is_refused_as_by_numpy() -> None:
    with pytest.raises(ValueError) as one:
        Streams(-1).generator("x")
    with pytest.raises(ValueError) as bulk:
        list(Streams(-1).generators(["x"]))
    assert str(bulk.value) == str(one.value)
    assert list(Streams(5).generators([])) == []
