"""The waits of a server whose tries bring work of different sizes, on the flow engine as on the request engine.

Four servers (one worker each, exponential service of mean 60 ms, ``max_queue_wait`` 1 s) hold eight mailbox
databases in one datacenter and are its front ends too: a try's front end, a server the balancer picks, does
2 ms of proxy work before the mailbox server holding its database does 60 ms (unless the two are the same
server). So each server's queue holds short and long tries, about as many of each: the work of a try varies
far more than one exponential service (squared coefficient of variation near 3, against 1), and so do the
waits. The region sends 80 requests a second (124% of what the servers serve), the client waits 2 s and
retries twice: every try that passes both queues waits near the bound in each, and whether the two waits
together pass the client's timeout decides what is served.

The flow engine takes the variability of the work its servers' tries bring (``Servers.work_cs2``, from the
second moment of each try's work: :class:`~sim.engine.flow.tries.Loads`) into their waits. With the
service's variability alone, the waits bunched at the bound and half the tries that both servers admitted
timed out: 42% of the requests served, against the request engine's 70%. The request engine runs over
``SEEDS`` seeds; the flow engine is deterministic, so one run is its answer: it must lie within 4 standard
errors of the request engine's mean, and with the service's variability alone it must not (the test could
fail).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from queue_runs import ONE_DATACENTER
from queueing import across_seeds

import sim
from sim.engine.flow.servers import Servers
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # eight request-engine runs of 24,000 requests: ~15 s

SEEDS = 8


def scenario(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "5m", "engine": engine,
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "mbx", "count": 4, "workers": 1, "service_time": "60ms", "frontend_time": "2ms"}]}],
            "databases": [{"id": "db", "count": 8, "regions": ["users"], "placement": [{"datacenter": "dc"}]}]},
        "workload": {"regions": {"users": {"peak": "80/s", "profile": "flat"}}},
        "policies": {"client": {"timeout": "2s", "retries": 2, "backoff": {"base": "200ms", "max": "2s"}},
                     "server": {"max_queue_wait": "1s"}},
        "slo": {"window": "1m"},
    }, base=ONE_DATACENTER)


@cache
def requests() -> tuple[float, float]:
    served = [sim.run(scenario("requests"), seed=seed).summary["availability"] for seed in range(1, SEEDS + 1)]
    return across_seeds(served).mean_se()


def test_mixed_work_waits_as_on_the_request_engine() -> None:
    mean, se = requests()
    flow = sim.run(scenario("flow")).summary["availability"]
    measured = f"served: the flow engine's {flow:.4f}, the request engine's {mean:.4f} ± {se:.4f}"
    assert abs(flow - mean) <= 4 * se, measured


def test_with_the_service_variability_alone_the_tries_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Servers, "_mixed", staticmethod(lambda p, cs2: p))  # the service's cs2, whatever the tries
    mean, se = requests()
    flow = sim.run(scenario("flow")).summary["availability"]
    assert flow < mean - 4 * se, f"served: the flow engine's {flow:.4f}, the request engine's {mean:.4f} ± {se:.4f}"


def test_a_try_s_work_squared_is_its_law_s_second_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """One server, no front-end work, one request type: a step's ``work2`` over its tries is the service's
    second moment (2 s² for an exponential service of mean s, s² for a deterministic one), so ``work_cs2`` is
    the service's cs2 after every step."""
    seen: list[float] = []
    advance = Servers.advance

    def watched(self: Servers, *args: object, **kwargs: object) -> None:
        advance(self, *args, **kwargs)  # type: ignore[arg-type]
        seen.append(float(self.work_cs2[0]))

    monkeypatch.setattr(Servers, "advance", watched)
    for law, cs2 in (("exponential", 1.0), ("deterministic", 0.0)):
        seen.clear()
        sim.run(scenario_from({
            "duration": "20s", "engine": "flow",
            "topology": {"datacenters": [{"id": "dc", "servers": [{
                "id": "mbx", "count": 1, "workers": 2, "service_time": {"distribution": law, "mean": "50ms"}}]}],
                "databases": [{"id": "db", "count": 1, "regions": ["users"], "placement": [{"datacenter": "dc"}]}]},
            "workload": {"regions": {"users": {"peak": "20/s", "profile": "flat"}}},
        }, base=ONE_DATACENTER))
        assert len(seen) >= 3  # (steps lengthen while nothing changes)
        np.testing.assert_allclose(seen, cs2, atol=1e-9)
