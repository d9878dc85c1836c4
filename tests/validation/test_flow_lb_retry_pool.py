"""A load balancer's retry goes to another server, on the flow engine too.

A pool of 8 servers with no mailbox databases (the load balancer picks the server that does the whole
request), 4 of them crashed for the whole run and health checks off, so the crashed servers stay in the pool
and a try sent to one times out after the load balancer's ``try_timeout`` (1 s); it retries up to twice, each
time on a server it has not tried, picked at random. The textbook: a request fails when its three tries all
meet crashed servers, ``4/8 x 3/7 x 2/6``, so 92.86% are served, after ``1/2 + 1/2 x 3/7 = 0.714`` retries
each. On the flow engine a row is a class of servers: its retries used to go back to the same class, so
every request that met a crashed server failed (50% served).

The request engine runs over ``SEEDS`` seeds (which 4 servers crash differs by seed); the flow engine is
deterministic, so one run is its answer. Both must lie within 4 standard errors of the request engine's mean
of the textbook value and of each other.
"""

from __future__ import annotations

import math
import statistics
from functools import cache

import pytest
from queue_runs import ONE_DATACENTER

import sim
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # six request-engine runs of 48,000 requests: ~10 s

SEEDS = 6
SERVERS, CRASHED, RETRIES = 8, 4, 2


def scenario(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "1200s", "engine": engine,
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "srv", "count": SERVERS, "workers": 4,
            "service_time": {"distribution": "exponential", "mean": "100ms"}}]}]},
        "workload": {"regions": {"users": {"peak": "40/s"}}},
        "policies": {"client": {"timeout": "5s", "retries": 0},
                     "load_balancer": {"algorithm": "random", "retries": RETRIES, "try_timeout": "1s"}},
        "faults": [{"id": "crashed", "kind": "server_crash", "target": {"mode": {"count": CRASHED}}, "at": "0s",
                    "duration": "1h"}],
    }, base=ONE_DATACENTER)


def textbook() -> dict[str, float]:
    """The share served and the retries per request when each try picks an untried server at random."""
    miss, retries = 1.0, 0.0
    for k in range(RETRIES + 1):  # miss: the chance that the first k + 1 tries all met crashed servers
        miss *= (CRASHED - k) / (SERVERS - k)
        if k < RETRIES:
            retries += miss
    return {"served": 1.0 - miss, "retries per request": retries}


def figures(summary: dict) -> dict[str, float]:
    return {"served": summary["availability"],
            "retries per request": summary["counts"]["lb_retries"] / summary["counts"]["attempts"]}


@cache
def runs() -> tuple[dict[str, float], list[dict[str, float]]]:
    flow = figures(sim.run(scenario("flow")).summary)
    requests = [figures(sim.run(scenario("requests"), seed=seed).summary) for seed in range(1, SEEDS + 1)]
    return flow, requests


@pytest.mark.parametrize("figure", list(textbook()))
def test_a_retry_goes_to_a_server_not_tried(figure: str) -> None:
    flow, requests = runs()
    values = [r[figure] for r in requests]
    mean, se = statistics.mean(values), statistics.stdev(values) / math.sqrt(SEEDS)
    theory = textbook()[figure]
    measured = f"the request engine's {mean:.4f} ± {se:.4f}"
    assert abs(mean - theory) <= 4 * se, f"{figure}: {measured}, textbook {theory:.4f}"
    assert abs(flow[figure] - mean) <= 4 * se, f"{figure}: the flow engine's {flow[figure]:.4f}, {measured}"
