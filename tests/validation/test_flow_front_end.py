"""A front end that does no proxy work is no stage of a try, on the flow engine too.

Four servers (4 workers, exponential service of mean 100 ms, room for 20 waiting) hold eight mailbox
databases in one datacenter and are offered 240 requests a second, 150% of what they serve; the client
waits 1 s and never retries. Each server's room stays full: it refuses a third of the tries, and those it
admits wait about 0.5 s (20 places before them, served 40 a second), well inside the client's timeout.

The request engine sends a try through its front end (the server the load balancer picked) as a stage of
its own only when that server does proxy work (``frontend_time`` above 0, and the mailbox lives elsewhere);
otherwise the try goes straight to its mailbox server. The flow engine made every try wait the front ends'
average wait and meet their refusals before its mailbox server's: a full room's 0.5 s twice, so half the
tries timed out (56.9% served against the request engine's 66.6%), and after a readmission the refusals of
the step before counted twice (failover-overload: the survivor's tries alternated between all refused and
all timed out, step by step). The request engine runs over ``SEEDS`` seeds; the flow engine is
deterministic, so one run is its answer: it must lie within 4 standard errors of the request engine's mean,
and the flow engine with the front ends as a stage of every try must not — the test could fail.
"""

from __future__ import annotations

from functools import cache

import pytest
from queue_runs import ONE_DATACENTER
from queueing import across_seeds

import sim
from sim.engine.flow.tries import Tries
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # eight request-engine runs of 14,400 requests: ~4 s

SEEDS = 8


def scenario(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "60s", "engine": engine,
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "mbx", "count": 4, "workers": 4, "service_time": "100ms", "queue_limit": 20}]}],
            "databases": [{"id": "db", "count": 8, "regions": ["users"], "placement": [{"datacenter": "dc"}]}]},
        "workload": {"regions": {"users": {"peak": "240/s"}}},
        "policies": {"client": {"timeout": "1s", "retries": 0}},
        "slo": {"window": "10s"},
    }, base=ONE_DATACENTER)


@cache
def requests() -> tuple[float, float]:
    served = [sim.run(scenario("requests"), seed=seed).summary["availability"] for seed in range(1, SEEDS + 1)]
    return across_seeds(served).mean_se()


def test_a_front_end_without_proxy_work_adds_no_wait() -> None:
    mean, se = requests()
    flow = sim.run(scenario("flow")).summary["availability"]
    measured = f"served: the flow engine's {flow:.4f}, the request engine's {mean:.4f} ± {se:.4f}"
    assert abs(flow - mean) <= 4 * se, measured


def test_with_every_front_end_a_stage_the_tries_wait_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    pools_now = Tries._pools_now

    def every_front_end(self: Tries, *args: object) -> object:  # the front ends' waits and refusals on every try
        pools = pools_now(self, *args)  # type: ignore[arg-type]
        return pools._replace(fronting=pools.share)

    monkeypatch.setattr(Tries, "_pools_now", every_front_end)
    mean, se = requests()
    flow = sim.run(scenario("flow")).summary["availability"]
    assert flow < mean - 4 * se, f"served: the flow engine's {flow:.4f}, the request engine's {mean:.4f} ± {se:.4f}"
