"""One definition per policy, two views: per request (the request engine) and per step (the flow engine)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.cluster import Cluster
from sim.engine import ENGINES, EngineBase
from sim.errors import ScenarioError
from sim.policies import (
    BALANCERS,
    JITTERS,
    Balancer,
    Breaker,
    Budget,
    backoff_delay,
    backoff_span,
    register_jitter,
    unsupported_on_flow,
)
from sim.policies.balancers import PoolLoad
from sim.queueing import allen_cunneen
from sim.recorder import Recorder
from sim.rng import Streams
from sim.scenario import Backoff, CircuitBreaker, RetryBudget
from sim.topology import build_topology
from sim.trace import Trace
from tests.conftest import scenario_from

# ------------------------------------------------------------------------------ retry budget


def test_a_budget_pays_what_it_holds_and_no_more():
    budget = Budget(RetryBudget(ratio=0.1, min_per_second=0))
    budget.fill(first_tries=5.0, dt=1.0)  # 0.5 of a token
    assert budget.allow(2.0) == pytest.approx(0.25)  # half a token pays for a quarter of two retries
    assert budget.allow(1.0) == 0.0
    budget.fill(first_tries=100.0, dt=1.0)  # capped at ten first tries' worth plus one
    assert budget.tokens == pytest.approx(budget.cap)


def test_both_views_of_a_budget_hold_the_same_bucket():
    policy = RetryBudget(ratio=0.2, min_per_second=1.0)
    per_request, fluid = Budget(policy), Budget(policy)
    for _ in range(10):
        per_request.deposit()
    fluid.fill(10.0, 0.0)
    assert per_request.tokens == pytest.approx(fluid.tokens) == pytest.approx(2.0)
    per_request.withdraw(3.0)  # three seconds of the minimum, then one token taken
    fluid.fill(0.0, 3.0)
    assert fluid.allow(1.0) == 1.0
    assert per_request.tokens == pytest.approx(fluid.tokens) == pytest.approx(4.0)
    assert per_request.cap == fluid.cap == pytest.approx(10.0 + 2.0)


# ------------------------------------------------------------------------------ circuit breaker

POLICY = CircuitBreaker(error_threshold=0.5, min_requests=10, window=10, open_time=5, probes=2)


def test_the_fluid_breaker_opens_waits_and_probes():
    b = Breaker(POLICY)
    assert b.observe(1.0, 8.0, 8.0, None) is None  # not enough attempts yet
    assert b.observe(2.0, 4.0, 0.0, None) == "open"  # 12 attempts, 8 failed
    assert b.admits(3.0) == 0.0 and b.state == "open"
    assert b.admits(7.0) == 1.0 and b.state == "half_open"
    # Half-open: both probes succeed with (1 - 0.5)^2 = 0.25; the median draw (no noise) says no.
    assert b.observe(8.0, 2.0, 1.0, None) == "open"
    b.admits(13.0)
    assert b.observe(14.0, 2.0, 1.0, 0.2) == "closed"  # a draw below 0.25 closes it
    assert b.observe(30.0, 10.0, 4.0, None) is None  # the window forgot the old steps


def test_the_per_request_breaker_is_the_same_state_machine():
    b = Breaker(POLICY)
    for k in range(10):
        state = b.record(0.1 * k, False)
    assert state == "open" and not b.allow(1.0)
    assert b.allow(6.0) and b.allow(6.0) and not b.allow(6.0)  # two probes, half-open
    assert b.record(6.1, True) is None and b.record(6.2, True) == "closed"


# ------------------------------------------------------------------------------ jitter


@pytest.mark.parametrize(("jitter", "retry", "span"), [
    ("none", 3, (0.4, 0.4)),
    ("full", 3, (0.0, 0.4)),
    ("equal", 3, (0.2, 0.4)),
    ("decorrelated", 3, (0.1, 0.6)),  # base, then three times the previous exponential delay (0.2)
    ("decorrelated", 1, (0.1, 0.3)),
    ("full", 6, (0.0, 1.0)),  # capped
])
def test_backoff_span_is_the_interval_the_flow_engine_spreads_over(jitter, retry, span):
    assert backoff_span(Backoff(base=0.1, multiplier=2, max=1, jitter=jitter), retry) == pytest.approx(span)


def test_no_backoff_spans_nothing():
    assert backoff_span(Backoff(kind="none"), 2) == (0.0, 0.0)


@pytest.mark.parametrize("jitter", sorted(name for name, j in JITTERS.items() if j.supports_flow))
def test_every_draw_falls_in_the_span(jitter):
    policy = Backoff(base=0.1, multiplier=2, max=1, jitter=jitter)
    for retry in range(1, 7):
        previous = min(policy.max, policy.base * policy.multiplier ** (retry - 2)) if retry > 1 else policy.base
        lo, hi = backoff_span(policy, retry)
        for u in np.linspace(0.0, 0.999, 7):
            assert lo - 1e-12 <= backoff_delay(policy, retry, previous, float(u)) <= hi + 1e-12


# ------------------------------------------------------------------------------ balancers


def _pool(load: float, pool: float, n: int = 1) -> PoolLoad:
    same = np.full(n, load)
    return PoolLoad(same, same, np.full(n, 4.0), np.full(n, 4), np.full(n, 0.1), np.ones(n), np.full(n, pool),
                    np.full(n, pool))


def test_random_is_poisson_and_round_robin_of_one_is_random():
    wait_p, theta = BALANCERS["random"].fluid_wait(_pool(3.2, 10))
    poisson = allen_cunneen(np.array([3.2]), np.array([4.0]), np.array([4]), np.array([0.1]), np.ones(1), np.ones(1))
    assert (wait_p, theta) == (poisson[0], poisson[1])
    alone = BALANCERS["round_robin"].fluid_wait(_pool(3.2, 1))
    assert alone[0] == wait_p and alone[1] == theta


def test_the_balancers_order_the_waits_of_a_loaded_pool():
    fluid = [name for name, cls in BALANCERS.items() if cls.supports_flow]
    mean = {name: float(p[0] / t[0]) for name in fluid for p, t in [BALANCERS[name].fluid_wait(_pool(3.6, 100))]}
    assert mean["weighted_least_outstanding"] == mean["least_outstanding"]  # equal servers: the same balancer
    assert mean["least_outstanding"] < mean["power_of_two"] < mean["round_robin"] < mean["random"]
    assert mean["power_of_two"] < 0.5 * mean["round_robin"]


class _Backend:
    def __init__(self, name: str):
        self.name, self.load = name, 0

    def outstanding(self) -> int:
        return self.load


@settings(max_examples=80, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 19), st.sampled_from([1, -1])), max_size=300),
       pool_change=st.integers(0, 300))
def test_least_outstanding_always_picks_a_least_loaded_member(ops, pool_change):
    """The heap index (lazy deletion) answers as a scan of the pool would, through any sequence of changes
    and a rebuilt pool."""
    from sim.rng import Streams

    servers = [_Backend(f"s{i}") for i in range(20)]
    lo = BALANCERS["least_outstanding"](Streams(1).stream("b"))
    pool = servers[:15]
    for k, (i, step) in enumerate(ops):
        if k == pool_change:
            pool = servers[5:]  # the engine rebuilds a pool as a new list
        server = servers[i]
        server.load = max(0, server.load + step)
        lo.changed(server)
        picked = lo.pick(pool)
        assert picked in pool and picked.load == min(s.load for s in pool)
        tried = [picked]
        other = lo.pick_other(pool, tried)
        assert other not in tried and other.load == min(s.load for s in pool if s is not picked)
        assert lo.pick(pool) is picked  # setting the tried ones aside puts them back


def test_least_outstanding_goes_round_robin_over_idle_servers():
    from sim.rng import Streams

    servers = [_Backend(f"s{i}") for i in range(4)]
    lo = BALANCERS["least_outstanding"](Streams(1).stream("b"))
    order = []
    for _ in range(8):
        s = lo.pick(servers)
        order.append(s.name)
        s.load += 1  # a try sent ...
        lo.changed(s)
        s.load -= 1  # ... and answered before the next request
        lo.changed(s)
    assert order == ["s0", "s1", "s2", "s3"] * 2


@pytest.mark.parametrize("algorithm", ["least_outstanding", "power_of_two", "random", "round_robin"])
def test_a_balancer_that_reads_server_state_avoids_a_server_that_answers_nothing(algorithm):
    """A crashed server still in the pool (health checks off) answers nothing: its tries stay outstanding
    until they time out, so the balancers that read outstanding tries send it little. On main they read
    the server's own queue, empty after the crash, and sent it more than its share (77.6% available)."""
    s = scenario_from({"duration": "5m",
                       "topology": {"regions": [{"id": "users", "datacenters": {"dc-a": "10ms"}}],
                                    "datacenters": [{"id": "dc-a", "servers": [
                                        {"id": "a", "count": 4, "workers": 4, "service_time": "20ms"}]}],
                                    "links": []},
                       "workload": {"regions": {"users": {"peak": "400/s"}}},
                       "policies": {"client": {"timeout": "1s", "retries": 0},
                                    "load_balancer": {"algorithm": algorithm, "health_check": {"enabled": False}}},
                       "faults": [{"id": "dead", "kind": "server_crash", "at": "0s", "target": {"ids": ["a-01"]}}]})
    stats = sim.run(s).stats
    n, a = stats.requests, stats.availability
    assert a is not None
    if algorithm == "round_robin":  # blind to state: every fourth try hits the dead server
        assert abs(a - 0.75) <= 1 / n
    elif algorithm == "random":  # a quarter of the tries, binomially
        assert abs(a - 0.75) < 4 * (0.75 * 0.25 / n) ** 0.5
    else:  # the dead server's tries pile up for a second each: it is picked only when the others are busier
        assert a > {"least_outstanding": 0.97, "power_of_two": 0.90}[algorithm], a


def test_every_shipped_balancer_and_jitter_runs_on_both_engines_but_the_memoryless_backoff_and_two_balancers():
    """The exponential jitter has no fluid view yet: the flow engine's retry ring spreads a step's retries
    evenly over an interval, not over an exponential's tail (tests/validation/test_retrial.py checks that a
    flow scenario with it is refused)."""
    assert sorted(name for name, cls in BALANCERS.items() if not cls.supports_flow) == \
        ["consistent_hash", "least_response_time"]  # no per-server response times, no even spread: refused at load
    assert sorted(name for name, j in JITTERS.items() if not j.supports_flow) == ["exponential"]


def test_a_load_balancers_backoff_without_a_fluid_view_is_refused_for_the_flow_engine_only_if_it_retries():
    """The flow engine takes the load balancer's backoffs as uniform spans (``BackoffSums``); the memoryless
    one has none. Without retries the backoff is never used, and nothing is refused."""
    memoryless = {"base": "1s", "jitter": "exponential"}
    [(path, message)] = unsupported_on_flow(scenario_from({"policies": {"load_balancer": {
        "retries": 2, "backoff": memoryless}}}))
    assert path == ("policies", "load_balancer", "backoff", "jitter")
    assert message.startswith("jitter 'exponential' has no fluid view")
    assert unsupported_on_flow(scenario_from({"policies": {"load_balancer": {"backoff": memoryless}}})) == []
    with pytest.raises(sim.ScenarioError, match=r"policies\.load_balancer\.backoff\.jitter: jitter 'exponential'"):
        scenario_from({"engine": "flow", "policies": {"load_balancer": {"retries": 2, "backoff": memoryless}}})


def test_a_dependency_backoff_without_a_fluid_view_is_refused_for_the_flow_engine_only_if_it_retries():
    """The flow engine sends a dependency retry only if its backoff ends before the try's deadline, with the
    backoffs as uniform spans (``BackoffSums``, ``tests/validation/test_flow_dependency_retries.py``)."""
    memoryless = {"base": "100ms", "jitter": "exponential"}
    [(path, _)] = unsupported_on_flow(scenario_from({"policies": {"server": {
        "dependency_retries": 1, "dependency_backoff": memoryless}}}))
    assert path == ("policies", "server", "dependency_backoff", "jitter")
    assert unsupported_on_flow(scenario_from({"policies": {"server": {"dependency_backoff": memoryless}}})) == []


def test_the_memoryless_backoff_has_its_mean_and_stops_at_max():
    policy = Backoff(base=2.0, multiplier=1, max=10.0, jitter="exponential")
    for u in (0.0, 0.5, 0.9, 0.999999):
        assert backoff_delay(policy, 3, 2.0, u) == pytest.approx(min(10.0, -2.0 * np.log1p(-u)))
    assert backoff_delay(policy, 1, 0.0, 0.999999) == 10.0
    draws = [backoff_delay(policy, 1, 0.0, float(v)) for v in np.random.default_rng(1).random(20_000)]
    assert abs(np.mean(draws) - 2.0 * (1 - np.exp(-5.0))) < 4 * np.std(draws) / np.sqrt(len(draws))


def test_what_has_no_fluid_view_is_reported_with_its_field(monkeypatch):
    class Sticky(Balancer):
        def pick(self, pool):
            return pool[0]

    monkeypatch.setitem(BALANCERS, "sticky", Sticky)
    monkeypatch.setitem(JITTERS, "my-jitter", JITTERS["full"])
    register_jitter("my-jitter")(lambda exp, previous, base, cap, u: exp)  # a plain function: per request only
    scenario = scenario_from({"policies": {"load_balancer": {"algorithm": "sticky"}}})
    client = scenario.policies.client
    custom = client.model_copy(update={"backoff": client.backoff.model_copy(update={"jitter": "my-jitter"})})
    scenario = scenario.model_copy(update={"policies": scenario.policies.model_copy(update={"client": custom})})
    problems = unsupported_on_flow(scenario)
    assert [path for path, _ in problems] == [("policies", "load_balancer", "algorithm"),
                                              ("policies", "client", "backoff", "jitter")]
    assert problems[0][1].startswith("load-balancer algorithm 'sticky' has no fluid view, so the flow engine "
                                     "cannot run it: use engine: requests, or one of least_outstanding, ")
    assert "jitter 'my-jitter' has no fluid view" in problems[1][1]
    assert backoff_delay(custom.backoff, 2, 0.1, 0.5) == pytest.approx(0.2)  # the request engine can use it
    assert unsupported_on_flow(scenario_from()) == []


def test_a_registered_jitter_is_usable_from_yaml(monkeypatch):
    """``backoff.jitter`` names any registered jitter: a plug-in's runs on the request engine (each retry
    draws from it) and is refused for the flow engine with its field; an unknown name gets a did-you-mean."""
    calls: list[float] = []

    def fixed(exp: float, previous: float, base: float, cap: float, u: float) -> float:
        calls.append(exp)
        return exp

    monkeypatch.setitem(JITTERS, "fixed", JITTERS["full"])
    register_jitter("fixed")(fixed)
    retrying = {"policies": {"client": {"timeout": "50ms", "retries": 2, "backoff": {"jitter": "fixed"}}},
                "faults": [{"id": "down", "kind": "server_crash", "at": "1m", "duration": "5m",
                            "target": {"ids": ["a-01"]}}]}
    scenario = scenario_from(retrying)
    assert scenario.policies.client.backoff.jitter == "fixed"
    result = sim.run(scenario.model_copy(update={"engine": "requests"}))
    assert result.stats.counts["retries"] > 0 and len(calls) == result.stats.counts["retries"]
    with pytest.raises(ScenarioError, match=r"policies\.client\.backoff\.jitter: jitter 'fixed' has no fluid"):
        scenario_from({**retrying, "engine": "flow"})


@pytest.mark.parametrize("path", [("client", "backoff"), ("server", "dependency_backoff"),
                                  ("load_balancer", "backoff")])
def test_an_unknown_jitter_is_named_with_its_field(path):
    policy, field = path
    with pytest.raises(ScenarioError) as info:
        scenario_from({"policies": {policy: {field: {"kind": "exponential", "jitter": "ful"}}}})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert f"policies.{policy}.{field}.jitter: no jitter 'ful' (did you mean 'full'?); known: " in str(problem)


# ------------------------------------------------------------------------------ both engines, one seam


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_both_engines_use_the_same_policy_classes_and_declare_the_seam(name):
    scenario = scenario_from({"policies": {
        "client": {"budget": {"ratio": 0.1}, "breaker": {"error_threshold": 0.5}},
        "load_balancer": {"budget": {"ratio": 0.2}},
    }})
    env = simpy.Environment()
    cluster = Cluster(env, scenario, build_topology(scenario), Trace())
    engine = ENGINES[name](env, scenario, cluster, Streams(1), Recorder(scenario, cluster))
    assert isinstance(engine, EngineBase)
    assert isinstance(engine.client_budgets[0], Budget) and isinstance(engine.lb_budgets[0], Budget)
    assert isinstance(engine.breakers[0], Breaker)
    assert engine.quiet_ok == (name == "flow")
    assert engine.wakers == [] and engine.wake_floor == float("inf") and engine.probe_drew is False
    assert engine.crash_hook is None
    assert engine.drain_time() == scenario.policies.client.drain_time()
