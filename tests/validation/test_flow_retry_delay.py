"""The load balancer's retries reach their servers when their backoff ends, on the flow engine too.

Eight servers (4 workers, exponential service of mean 100 ms) behind a load balancer that picks at random
and retries a failed try twice on a server it has not tried, after a backoff drawn uniformly from 2 to 4 s
(``jitter: equal`` on 4 s); a try times out after 500 ms, the client waits 10 s and never retries. At 10 s
two servers crash for good (health checks off: they stay in the pool), so a quarter of the first tries time
out and come back 2.5 to 4.5 s later on the survivors, which then run at about 84% of their capacity. That
is a retry storm in the making (a try that waits past 500 ms is retried too): on the request engine it
takes some 20 s to build (the availability of the 15 s after the crash stays near 99.5%), because each
round of retries reaches the servers seconds after the tries that failed.

The flow engine resolved a load balancer's retries within the step that failed, so their load came at
once: each 1-s step fed the next one's timeouts, and the storm took the survivors within 4 s (56.8% served
over the run). Now the load of a retry sent after a backoff waits in a delay buffer
(:mod:`sim.engine.flow.delays`) until the backoff ends. The request engine runs over ``SEEDS`` seeds; the
flow engine is deterministic, so one run is its answer: it must lie within 4 standard errors of the
request engine's mean, and the flow engine with the retries' load within the step (the delay switched
off) must not — the test could fail.
"""

from __future__ import annotations

import math
import statistics
from functools import cache

import pytest
from queue_runs import ONE_DATACENTER

import sim
import sim.engine.flow.deferrals as flow_deferrals
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # twelve request-engine runs of 5,000 requests: ~1 s

SEEDS = 12


def scenario(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "25s", "engine": engine,
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "srv", "count": 8, "workers": 4,
            "service_time": {"distribution": "exponential", "mean": "100ms"}}]}]},
        "workload": {"regions": {"users": {"peak": "200/s"}}},
        "policies": {"client": {"timeout": "10s", "retries": 0},
                     "load_balancer": {"algorithm": "random", "retries": 2, "try_timeout": "500ms",
                                       "backoff": {"base": "4s", "multiplier": 1, "max": "4s", "jitter": "equal"}}},
        "faults": [{"id": "crash", "kind": "server_crash", "target": {"mode": {"count": 2}}, "at": "10s",
                    "duration": "1h"}],
        "slo": {"window": "5s"},
    }, base=ONE_DATACENTER)


@cache
def requests() -> tuple[float, float]:
    served = [sim.run(scenario("requests"), seed=seed).summary["availability"] for seed in range(1, SEEDS + 1)]
    return statistics.mean(served), statistics.stdev(served) / math.sqrt(SEEDS)


def test_a_retry_storm_builds_as_fast_as_the_retries_come_back() -> None:
    mean, se = requests()
    flow = sim.run(scenario("flow")).summary["availability"]
    measured = f"served: the flow engine's {flow:.4f}, the request engine's {mean:.4f} ± {se:.4f}"
    assert abs(flow - mean) <= 4 * se, measured


def test_with_the_retries_load_within_the_step_the_storm_comes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_deferrals, "SHORT_BACKOFF", math.inf)  # every backoff short: the load within the step
    mean, se = requests()
    flow = sim.run(scenario("flow")).summary["availability"]
    assert flow < mean - 4 * se, f"served: the flow engine's {flow:.4f}, the request engine's {mean:.4f} ± {se:.4f}"
