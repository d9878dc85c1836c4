"""Balancers that even out queues, on both engines: the flow engine's fluid view against the request engine.

A pool with no mailbox databases, so the balancer decides where each try goes: one region at zero latency
from one datacenter, exponential service of 100 ms, 90% load, no faults, no retries, no health checks,
a client timeout far beyond any response.

- ``power_of_two`` on 100 single-worker servers: the request engine's mean response (over seeds, with its
  standard error) against the flow engine's, which takes the wait from the supermarket mean field with
  its 1/n correction (:mod:`sim.balancing`; 0.26 s against 1.0 s for random choice). Measured: 0.2638 s
  (SE 0.0016) on the request engine, 0.2654 s on the flow engine.
- ``least_outstanding`` on 4 servers of 4 workers: the pool's own Markov chain. Measured: 0.1392 s
  (SE 0.0007) against 0.1399 s.

Within four standard errors of the request engine's mean, and the seeds must resolve a 5% difference.
Each comparison must be able to fail: the flow engine's answer for round robin (what it gave these
balancers before they had a fluid view) lies outside the tolerance.
"""

from __future__ import annotations

from functools import cache

import pytest
import yaml
from queueing import across_seeds

import sim

SEEDS = (1, 2, 3, 4)
RESOLVES = 0.05  # of the request engine's mean: four standard errors must stay below it


def pool_scenario(algorithm: str, servers: int, workers: int, duration: str) -> sim.Scenario:
    """``servers`` servers of ``workers`` workers (100 ms, exponential) at 90% load, spread by ``algorithm``."""
    rate = 0.9 * servers * workers / 0.1
    data = {
        "name": "balancers",
        "duration": duration,
        "topology": {
            "regions": [{"id": "users", "datacenters": {"dc": "0s"}}],
            "datacenters": [{"id": "dc", "servers": [
                {"id": "srv", "count": servers, "workers": workers,
                 "service_time": {"distribution": "exponential", "mean": "100ms"}}]}],
        },
        "workload": {"regions": {"users": {"peak": f"{rate}/s"}}},
        "policies": {
            "client": {"timeout": "60s", "retries": 0},
            "load_balancer": {"algorithm": algorithm, "health_check": {"enabled": False}},
        },
    }
    return sim.parse_scenario(yaml.safe_dump(data, sort_keys=False), "balancers.yaml")


@cache
def mean_response(engine: str, algorithm: str, servers: int, workers: int, duration: str, seed: int = 1) -> float:
    scenario = pool_scenario(algorithm, servers, workers, duration).model_copy(update={"engine": engine})
    summary = sim.run(scenario, seed=seed).summary
    assert summary["availability"] > 0.9999, (engine, algorithm, summary["availability"])
    return summary["latency"]["mean"]


CASES = [
    pytest.param("power_of_two", 100, 1, "8m", id="power_of_two-100x1"),
    pytest.param("least_outstanding", 4, 4, "20m", id="least_outstanding-4x4"),
]


@pytest.mark.parametrize(("algorithm", "servers", "workers", "duration"), CASES)
def test_the_fluid_view_gives_the_request_engines_mean_response(algorithm, servers, workers, duration):
    requests = across_seeds([mean_response("requests", algorithm, servers, workers, duration, s) for s in SEEDS])
    flow = mean_response("flow", algorithm, servers, workers, duration)
    # Within four standard errors of the request engine's mean, and the seeds resolve a 5% difference.
    requests.check(flow, floor=0.0, resolves=RESOLVES * requests.mean)
    # The test could fail: the answer without the fluid view (round robin's) is far outside.
    before = mean_response("flow", "round_robin", servers, workers, duration)
    assert abs(before - requests.mean) > 3 * requests.tolerance(0.0)


@pytest.mark.parametrize(("algorithm", "servers", "workers", "duration"), CASES)
def test_balancing_queues_waits_less_than_taking_turns_or_chance(algorithm, servers, workers, duration):
    balanced, turns, chance = (mean_response("flow", a, servers, workers, duration)
                               for a in (algorithm, "round_robin", "random"))
    assert balanced < 0.7 * turns < 0.7 * chance
