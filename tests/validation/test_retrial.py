"""The request engine's client retries against the M/M/1 retrial queue (the classical retrial policy).

One server with one worker and no waiting room, Poisson arrivals at ``lam``, exponential service at rate
``mu``. A request that finds the worker busy is refused at once and its client retries after an exponential
wait of mean ``1 / theta`` (``backoff: {jitter: exponential, multiplier: 1}``), again and again: the
requests waiting to retry are the *orbit*, each retrying at rate ``theta``. With ``rho = lam / mu < 1``
(Falin & Templeton, *Retrial Queues*, 1997, §1.2; Artalejo & Gómez-Corral, *Retrial Queueing Systems*,
2008):

- the mean number in orbit is ``N = lam**2 (mu + theta) / (theta mu (mu - lam))``;
- retries per request (Little's law on the orbit's retry rate ``theta N``): ``theta N / lam``;
- the mean time from arrival to the answer: ``1 / mu + N / lam``;
- the worker is busy ``rho`` of the time, and every request is served in the end.

The client may retry 20 times (the most a scenario allows); the loads and retry rates are chosen so that
fewer than 1 request in 10,000 needs more (a fast orbit against a busy server does: at ``rho`` 0.3 and
``theta`` 3, 0.8% of the requests ran out of retries). Six seeds of 40,000 s; each figure within 4 standard
errors of the formula (Student's t with 5 degrees of freedom puts 1% of the means beyond that).
"""

from __future__ import annotations

import math
import statistics
from functools import cache

import pytest

import sim

SEEDS = 6
DURATION = 40_000.0


def retrial_scenario(lam: float, theta: float, engine: str = "requests") -> sim.Scenario:
    return sim.parse_scenario(f"""
name: retrial-queue
engine: {engine}
duration: {DURATION:.0f}s
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - id: dc
      servers:
        - {{id: srv, count: 1, workers: 1, queue_limit: 0, service_time: {{distribution: exponential, mean: 1s}}}}
workload: {{regions: {{users: {{peak: {lam!r}/s}}}}}}
policies:
  client:
    timeout: 60s
    retries: 20
    backoff: {{base: {1 / theta!r}s, multiplier: 1, max: {20 / theta!r}s, jitter: exponential}}
  load_balancer: {{retries: 0, health_check: {{enabled: false}}}}
slo: {{window: 1h}}
""")


def orbit(lam: float, mu: float, theta: float) -> float:
    """Mean number of requests in orbit of the M/M/1 retrial queue."""
    return lam**2 * (mu + theta) / (theta * mu * (mu - lam))


@cache
def runs(lam: float, theta: float) -> list[dict]:
    return [sim.run(retrial_scenario(lam, theta), seed=seed).summary for seed in range(1, SEEDS + 1)]


CASES = [pytest.param(0.3, 0.5, id="rho 0.3, theta 0.5"), pytest.param(0.5, 0.25, id="rho 0.5, theta 0.25")]


def _within(values: list[float], expected: float, what: str) -> None:
    mean, se = statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))
    assert abs(mean - expected) <= 4 * se, f"{what}: {mean:.4f} ± {se:.4f} against {expected:.4f}"


@pytest.mark.parametrize("lam, theta", CASES)
def test_retries_per_request_are_the_orbits(lam: float, theta: float) -> None:
    expected = theta * orbit(lam, 1.0, theta) / lam
    _within([s["counts"]["retries"] / s["requests"] for s in runs(lam, theta)], expected, "retries per request")


@pytest.mark.parametrize("lam, theta", CASES)
def test_time_to_the_answer_includes_the_orbit(lam: float, theta: float) -> None:
    expected = 1.0 + orbit(lam, 1.0, theta) / lam
    _within([s["latency"]["mean"] for s in runs(lam, theta)], expected, "mean time to the answer")


@pytest.mark.parametrize("lam, theta", CASES)
def test_the_orbit_is_not_cut_short(lam: float, theta: float) -> None:
    """The formulas are for an orbit nobody leaves: fewer than 1 request in 10,000 may run out of its 20
    retries (each such request leaves the orbit early, which lowers the means by a small fraction of their
    standard error)."""
    summaries = runs(lam, theta)
    failed = sum(s["counts"]["failed"] for s in summaries)
    assert failed < 1e-4 * sum(s["requests"] for s in summaries)


def test_the_flow_engine_refuses_a_memoryless_backoff() -> None:
    with pytest.raises(sim.ScenarioError, match="jitter 'exponential' has no fluid view"):
        retrial_scenario(0.5, 1.0, engine="flow")
