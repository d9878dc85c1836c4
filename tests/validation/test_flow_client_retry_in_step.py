"""A client retry whose backoff is shorter than the step comes back within it, on the flow engine too.

Four servers (4 workers, 100 ms) take 100 requests a second; the client waits 2 s and retries a failure
once, after a backoff drawn uniformly from 0 to 500 ms. From 10 s to 20 s the whole pool is drained: every
try is answered at once with an error, and a request fails unless its retry comes due after the drain,
so about 100 x (10 s - 0.25 s) = 975 requests fail.

The flow engine at 1-s steps put every client retry into a later step, so the retries of the failures of
the drain's last second all came due after it and succeeded (900 failed): after a readmission a server met
the retries of the whole last second out of rotation at once (human-error: 120 attempts in the first
second back against the request engine's 62; failover-overload: each readmitted server's room full in the
first step). Now the share of a step's failures whose retry comes due within the step is retried in it,
with the step's outcomes (:mod:`sim.engine.flow.retries`), three quarters here. The request engine runs over
``SEEDS`` seeds; the flow engine is deterministic, so one run is its answer: its failed requests must lie
within 4 standard errors of the request engine's mean, and with every retry put into a later step they must
not — the test could fail.
"""

from __future__ import annotations

from functools import cache

import pytest
from queue_runs import ONE_DATACENTER
from queueing import across_seeds

import sim
from sim.engine.flow.retries import ClientRetries
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # twelve request-engine runs of 3,000 requests: ~1 s

SEEDS = 12


def scenario(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "30s", "engine": engine,
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "srv", "count": 4, "workers": 4, "service_time": "100ms"}]}]},
        "workload": {"regions": {"users": {"peak": "100/s"}}},
        "policies": {"client": {"timeout": "2s", "retries": 1, "backoff": {"base": "500ms"}}},
        "faults": [{"id": "drained", "kind": "drain", "target": {"datacenters": ["dc"]}, "at": "10s",
                    "duration": "10s"}],
        "slo": {"window": "5s"},
    }, base=ONE_DATACENTER)


def failed(result: sim.Result) -> int:
    return sum(row["failed"] for row in result.timeseries)


@cache
def requests() -> tuple[float, float]:
    lost = [failed(sim.run(scenario("requests"), seed=seed)) for seed in range(1, SEEDS + 1)]
    return across_seeds(lost).mean_se()


def test_retries_due_within_the_step_fail_with_it() -> None:
    mean, se = requests()
    flow = failed(sim.run(scenario("flow")))
    assert abs(flow - mean) <= 4 * se, f"failed: the flow engine's {flow}, the request engine's {mean:.1f} ± {se:.1f}"


def test_with_every_retry_in_a_later_step_the_last_seconds_retries_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ClientRetries, "_within", lambda self, h: None)  # none comes due within its step
    mean, se = requests()
    flow = failed(sim.run(scenario("flow")))
    assert flow < mean - 4 * se, f"failed: the flow engine's {flow}, the request engine's {mean:.1f} ± {se:.1f}"
