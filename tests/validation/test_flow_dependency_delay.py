"""A server's dependency retries reach the dependency when their backoff ends, on the flow engine too.

Four servers call a directory (8 workers, exponential calls of mean 100 ms, no queue limit) for 56 sign-ins
a second: 70% of its capacity. The directory is down from 15 s to 30 s, so every call then fails at once,
and the server retries it once after a backoff drawn uniformly from 5 to 10 s (``jitter: equal`` on 10 s);
the dependency timeout (5 s) and the client's (30 s) are too long to cut anything. The retries of the calls
of the last 10 s of the outage come back after it: for 5 s after 30 s the directory is offered 140% of its
capacity, then less and less until 40 s, so a backlog builds and drains. The requests that arrive in the
15 s after the outage wait for it: on the request engine their mean latency is 1.818 ± 0.052 s (SE over
``SEEDS`` = 32 seeds; 1.775 ± 0.036 s over 64), against 0.12 s before the outage.

The flow engine settles a dependency retry in the step that failed, and took its load within that step
too: the retries' calls landed on the directory while it was down and no backlog formed (0.132 s, 32 SE
off). Now a retry call's load waits in the delay buffer (``DependencyCalls.later``,
:mod:`sim.engine.flow.delays`) until its backoff ends: 1.780 s. The flow engine is deterministic, so one
run is its answer: it must lie within 4 standard errors of the request engine's mean, and the flow engine
with the retries' load within the step (the delay switched off) must not: the test could fail.

A known gap stays outside the figure: the flow engine reads a retry's outcome from the step that failed,
so the requests that arrive during the outage fail there, while on the request engine those whose retry
comes after the outage succeed (half of them: over the whole run 75.0% served against 87.3%, seed 1).
That is why the figure is the latency of the window after the outage, not the whole run's. And nearer the
critical load the flow engine's answer is less exact: at 48 sign-ins a second (the retries' surge to 120%)
it gives 0.760 s against the request engine's 0.646 ± 0.029 s over 64 seeds (+4.0 SE); at 56 a second the
surge is well past capacity, a queue that fills and drains, which the test holds.
"""

from __future__ import annotations

import math
import statistics
from functools import cache

import numpy as np
import pytest
from queue_runs import ONE_DATACENTER

import sim
import sim.engine.flow.dependencies as flow_dependencies
from sim.metrics import latency_samples
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # 32 request-engine runs of 3,400 requests: ~1 s

SEEDS = 32
WINDOW = 15.0  # seconds; the third window, [30 s, 45 s), is the one after the outage
AFTER = 2


def scenario(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "60s", "engine": engine,
        "topology": {
            "datacenters": [{"id": "dc", "servers": [{"id": "mbx", "count": 4, "workers": 256, "service_time": {
                "distribution": "exponential", "mean": "10ms"}}]}],
            "dependencies": [{"id": "directory", "workers": 8, "queue_limit": None,
                              "service_time": {"distribution": "exponential", "mean": "100ms"}}]},
        "workload": {"regions": {"users": {"peak": "56/s"}},
                     "requests": {"sign_in": {"share": "100%", "dependencies": ["directory"]}}},
        "policies": {"client": {"timeout": "30s", "retries": 0},
                     "server": {"dependency_timeout": "5s", "dependency_retries": 1,
                                "dependency_backoff": {"base": "10s", "multiplier": 1, "max": "10s",
                                                       "jitter": "equal"}}},
        "faults": [{"id": "directory-down", "kind": "dependency_outage", "target": {"ids": ["directory"]},
                    "at": "15s", "duration": "15s"}],
        "slo": {"window": f"{WINDOW:g}s"},
    }, base=ONE_DATACENTER)


def latency_after(result: sim.Result) -> float:
    """The mean latency of the requests that arrived in the window after the outage (weighted samples on
    the flow engine)."""
    latency, window, _, weight = latency_samples(result.recorder)
    mine = window == AFTER
    weights = np.ones(int(mine.sum())) if weight is None else weight[mine]
    return float((latency[mine] * weights).sum() / weights.sum())


@cache
def requests() -> tuple[float, float]:
    after = [latency_after(sim.run(scenario("requests"), seed=seed)) for seed in range(1, SEEDS + 1)]
    return statistics.mean(after), statistics.stdev(after) / math.sqrt(SEEDS)


def test_the_retries_after_an_outage_build_a_backlog_when_they_come_back() -> None:
    mean, se = requests()
    flow = latency_after(sim.run(scenario("flow")))
    measured = f"after the outage: the flow engine's {flow:.4f} s, the request engine's {mean:.4f} ± {se:.4f} s"
    assert abs(flow - mean) <= 4 * se, measured


def test_with_the_retries_load_within_the_step_no_backlog_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_dependencies, "SHORT_BACKOFF", math.inf)  # every backoff short: load within the step
    mean, se = requests()
    flow = latency_after(sim.run(scenario("flow")))
    measured = f"after the outage: the flow engine's {flow:.4f} s, the request engine's {mean:.4f} ± {se:.4f} s"
    assert flow < mean - 4 * se, measured
