"""Consecutive health checks of a server: the flow engine's are as alike as the request engine's.

A check fails when the server's wait is beyond the check's timeout. The request engine reads its real
queue, so a check that failed is likely to fail again a few seconds later; the flow engine answers from
its :class:`~sim.engine.flow.checks.HealthMemory` and :func:`sim.queueing.check_persistence` (before it,
from independent draws, which ejected too rarely: ``unhealthy_threshold`` failures in a row came too seldom).

Four servers of 4 workers (100 ms exponential service) behind a balancer that picks at random (so each is
M/M/4), health checks off; a small process asks the engine every ``every`` seconds, as the health checks
do, whether a check would pass. Two queues: M/M/4 at 90% with a 250 ms timeout (28% of checks fail) every
2 s, and M/M/4 with 80 waiting places offered 103% with a 1.6 s timeout (40% fail) every 5 s. Over
``SEEDS`` seeds, per seed: the share ``p`` that fail and the persistence ``r = (P(fail | the server's
previous check failed) - p) / (1 - p)`` (0 for independent checks). The flow engine's ``r`` must lie within
4 standard errors (of the paired differences over seeds) of the request engine's; the request engine's must
lie within 4 standard errors of the M/M/c chain's (:func:`~sim.queueing.check_persistence` at its ``p``), and
more than 4 above 0 (independent checks: so the test can fail).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Generator
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
import simpy
from queue_runs import ONE_DATACENTER

import sim
from sim.engine.flow import FlowEngine
from sim.engine.requests import RequestEngine
from sim.queueing import check_persistence
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # per queue six runs of each engine, 30 simulated minutes of 4 servers: ~10 s

SEEDS = range(1, 7)
SERVERS, WORKERS, SERVICE, DURATION, SETTLE = 4, 4, 0.1, 1800.0, 60.0


@dataclass(frozen=True)
class Queue:
    rho: float  # offered load over the workers
    places: int | None  # waiting places (None: no limit)
    timeout: float  # the check's
    every: float  # seconds between checks


QUEUES = {"M/M/4 at 90%": Queue(0.9, None, 0.25, 2.0), "M/M/4/84 at 103%": Queue(1.03, 80, 1.6, 5.0)}


def scenario(engine: str, queue: Queue) -> sim.Scenario:
    return scenario_from({
        "duration": f"{DURATION:.0f}s", "engine": engine,
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "srv", "count": SERVERS, "workers": WORKERS, "queue_limit": queue.places,
            "service_time": {"distribution": "exponential", "mean": f"{SERVICE * 1000:.0f}ms"}}]}]},
        "workload": {"regions": {"users": {"peak": f"{queue.rho * WORKERS / SERVICE * SERVERS:g}/s"}}},
        "policies": {"client": {"timeout": "100s", "retries": 0},
                     "load_balancer": {"algorithm": "random", "health_check": {"enabled": False}}},
    }, base=ONE_DATACENTER)


@cache
def checks(engine: str, queue: Queue, seed: int) -> np.ndarray:
    """[check, server]: whether each check failed, every ``queue.every`` seconds after ``SETTLE``."""
    kind = RequestEngine if engine == "requests" else FlowEngine
    failed: list[np.ndarray] = []

    def ask(env: simpy.Environment, probe: RequestEngine | FlowEngine) -> Generator[simpy.Event, None, None]:
        yield env.timeout(SETTLE)
        while env.now + queue.every < DURATION:
            yield env.timeout(queue.every)
            failed.append(~np.asarray(probe.probe_all(queue.timeout), dtype=bool))

    start = kind.start

    def started(probe: RequestEngine | FlowEngine) -> None:
        start(probe)
        probe.env.process(ask(probe.env, probe))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kind, "start", started)
        sim.run(scenario(engine, queue), seed=seed)
    return np.array(failed)


def figures(failed: np.ndarray) -> tuple[float, float]:
    """(share of checks that fail p, persistence (P(fail | the previous check of the server failed) - p) / (1 - p))."""
    before, after = failed[:-1], failed[1:]
    p = float(failed.mean())
    return p, (float((before & after).sum() / before.sum()) - p) / (1 - p)


def mean_se(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


@pytest.mark.parametrize("name", list(QUEUES))
def test_a_failed_check_fails_again_as_often_as_on_the_request_engine(name: str) -> None:
    queue = QUEUES[name]
    requests = [figures(checks("requests", queue, seed)) for seed in SEEDS]
    flow = [figures(checks("flow", queue, seed)) for seed in SEEDS]
    share = statistics.mean(p for p, _ in requests)
    r, r_se = mean_se([r for _, r in requests])
    # The request engine's checks are not independent ...
    assert r > 4 * r_se, f"requests: persistence {r:.3f} ± {r_se:.3f} (share failed {share:.3f})"
    # ... and persist as the M/M/c chain says (at the share measured).
    places = math.inf if queue.places is None else queue.places
    theory = check_persistence(WORKERS, queue.rho * WORKERS, share, queue.every / SERVICE, places)
    assert abs(r - theory) <= 4 * r_se, f"requests {r:.3f} ± {r_se:.3f}, M/M/c {theory:.3f} (share {share:.3f})"
    # The flow engine's persist as much, paired over seeds.
    diff, diff_se = mean_se([f[1] - q[1] for f, q in zip(flow, requests, strict=True)])
    flow_r = statistics.mean(f[1] for f in flow)
    assert abs(diff) <= 4 * diff_se, f"persistence: flow {flow_r:.3f}, flow - requests {diff:+.3f} ± {diff_se:.3f}"
