"""Hedged requests (``load_balancer.hedge``): the YAML, the flow engine's refusal, and the engine's
bookkeeping on cases whose outcome is known exactly."""

from __future__ import annotations

import pytest

import sim
from sim.loader import ScenarioError
from sim.policies import unsupported_on_flow
from tests.conftest import scenario_from


def exact(hedge: dict, service: str = "100ms") -> sim.Result:
    """Two servers of many workers (no queueing), deterministic service: every answer comes at ``service``."""
    return sim.run(scenario_from(base={
        "name": "hedge", "seed": 3, "duration": "1m",
        "topology": {"regions": [{"id": "users", "datacenters": {"dc-a": "1ms"}}],
                     "datacenters": [{"id": "dc-a", "servers": [
                         {"id": "a", "count": 2, "workers": 100,
                          "service_time": {"distribution": "deterministic", "mean": service}}]}]},
        "workload": {"regions": {"users": {"peak": "50/s"}}},
        "policies": {"client": {"timeout": "10s", "retries": 0},
                     "load_balancer": {"health_check": {"enabled": False}, "hedge": hedge}},
    }))


def test_the_hedge_loads_with_its_descriptions_and_refuses_bad_values():
    scenario = scenario_from({"policies": {"load_balancer": {"hedge": {"delay": "50ms", "budget": "10%"}}}})
    hedge = scenario.policies.load_balancer.hedge
    assert hedge is not None and hedge.delay == pytest.approx(0.05) and hedge.budget == pytest.approx(0.1)
    with pytest.raises(ScenarioError, match=r"policies\.load_balancer\.hedge\.delay: .*more than 0s"):
        scenario_from({"policies": {"load_balancer": {"hedge": {"delay": "0s"}}}})
    with pytest.raises(ScenarioError, match=r"policies\.load_balancer\.hedge: missing required field 'delay'"):
        scenario_from({"policies": {"load_balancer": {"hedge": {"budget": "10%"}}}})


def test_the_flow_engine_refuses_hedging_with_its_line():
    hedge = {"policies": {"load_balancer": {"hedge": {"delay": "50ms"}}}}
    [(path, message)] = unsupported_on_flow(scenario_from(hedge))
    assert path == ("policies", "load_balancer", "hedge")
    with pytest.raises(ScenarioError) as info:
        scenario_from({**hedge, "engine": "flow"})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith(f"policies.load_balancer.hedge: {message}")
    assert "use engine: requests, or hedge: null" in message


def test_a_slower_first_try_is_hedged_and_the_hedge_is_wasted():
    """Every answer takes 100 ms: a hedge at 50 ms goes out for every request and always loses (it would
    answer at 150 ms): two tries per request, one wasted, the latency that of the first try."""
    plain, hedged = exact(None), exact({"delay": "50ms"})  # type: ignore[arg-type]
    requests = hedged.summary["requests"]
    assert requests == plain.summary["requests"] > 2000
    assert hedged.summary["availability"] == 1.0
    assert sum(map(sum, hedged.recorder.dc_offered)) == 2 * requests
    assert hedged.summary["counts"]["wasted"] == requests
    assert hedged.summary["latency"]["mean"] == pytest.approx(plain.summary["latency"]["mean"])
    late = exact({"delay": "150ms"})  # the first answers before the hedge is due: none is sent
    assert sum(map(sum, late.recorder.dc_offered)) == requests and late.summary["counts"]["wasted"] == 0


def test_the_budget_caps_hedges_at_its_share_of_first_tries():
    """A 10% budget: each first try deposits a tenth of a token, a hedge takes a whole one. Every first try
    here would be hedged, so the budget alone decides: at most a tenth of the first tries (plus the one
    token it may hold), and less, as deposits beyond the full bucket (a burst of one token) are lost while
    a hedge is due, and ten tenths add up to just under one in floating point (``sim.policies.Budget``)."""
    capped = exact({"delay": "50ms", "budget": "10%"})
    requests = capped.summary["requests"]
    hedges = sum(map(sum, capped.recorder.dc_offered)) - requests
    assert hedges == capped.summary["counts"]["wasted"]
    assert 0.07 * requests <= hedges <= 0.1 * requests + 1


def test_a_hedge_answers_for_a_try_lost_on_a_crashed_server():
    """One server of two crashes for the whole run and no health check ejects it: round robin sends it
    every other first try, which never answers (the client waits 10 s). The hedge at 50 ms goes to the
    other server and answers for the pair: every request is served, the lost tries in 50 ms + 100 ms."""
    def run(hedge: dict | None) -> sim.Result:
        return sim.run(scenario_from(base={
            "name": "hedge", "seed": 3, "duration": "1m",
            "topology": {"regions": [{"id": "users", "datacenters": {"dc-a": "1ms"}}],
                         "datacenters": [{"id": "dc-a", "servers": [
                             {"id": "a", "count": 2, "workers": 100,
                              "service_time": {"distribution": "deterministic", "mean": "100ms"}}]}]},
            "workload": {"regions": {"users": {"peak": "50/s"}}},
            "policies": {"client": {"timeout": "10s", "retries": 0},
                         "load_balancer": {"algorithm": "round_robin", "health_check": {"enabled": False},
                                           "hedge": hedge}},
            "faults": [{"id": "dead", "kind": "server_crash", "target": {"ids": ["a-01"]}, "at": "0s",
                        "duration": "1h"}],
        }))
    plain, hedged = run(None), run({"delay": "50ms"})
    assert plain.summary["availability"] < 0.6
    assert hedged.summary["availability"] == 1.0
    assert hedged.summary["latency"]["p99"] == pytest.approx(0.15 + 0.001, abs=0.002)
