"""Hedged requests against the order statistics of their service times.

With no queueing (servers of many workers at low load) and exponential service of rate ``μ``, an attempt
hedged after ``d`` is answered by the first of two tries: the first, sent at 0, takes ``S1``; the hedge,
sent at ``d`` if the first is still out, takes ``S2`` on another server, independent. Its response is
``R = min(S1, d + S2)`` (when ``S1 <= d`` no hedge is sent, and ``R = S1``, the same thing). For a
non-negative variable ``E[R] = ∫_0^∞ P(R > t) dt`` and ``P(R > t) = P(S1 > t) P(d + S2 > t)``, so::

    E[R] = ∫_0^d e^{-μt} dt + ∫_d^∞ e^{-μt} e^{-μ(t-d)} dt
         = (1 - e^{-μd}) / μ + e^{μd} e^{-2μd} / (2μ)
         = (1 - e^{-μd}) / μ + e^{-μd} / (2μ).

(``d = 0``: ``1/(2μ)``, the mean of the minimum of two; ``d → ∞``: ``1/μ``.) The engine's latency adds
the fixed network time of the region's route, the same for both tries; it is measured exactly by a run
of deterministic service (every response is then that time plus the service). The mean latency over
``SEEDS`` seeds must lie within 4 standard errors of the theory (the standard error from the spread of
the per-seed means, ``s / sqrt(n)``; with 5 degrees of freedom, beyond 4 SE is about 1% of honest
runs). The test could fail: the unhedged mean ``1/μ`` and the mean of a hedge at ``2d`` lie tens of
standard errors away.
"""

from __future__ import annotations

import math
import statistics

import pytest

import sim
from tests.conftest import scenario_from

SEEDS = 6
MEAN = 0.05  # 1/μ, seconds
DELAY = 0.05  # the hedge delay d


def theory(mu: float, d: float) -> float:
    """E[min(S1, d + S2)] for S1, S2 exponential of rate ``mu`` (see the module)."""
    return (1.0 - math.exp(-mu * d)) / mu + math.exp(-mu * d) / (2.0 * mu)


def scenario(seed: int, service: object, hedge: dict | None) -> sim.Scenario:
    base = {
        "name": "hedging-theory", "seed": seed, "duration": "2m",
        "topology": {
            "regions": [{"id": "users", "datacenters": {"dc": "1ms"}}],
            "datacenters": [{"id": "dc", "servers": [
                {"id": "web", "count": 4, "workers": 200, "queue_limit": 1000, "service_time": service}]}],
        },
        "workload": {"regions": {"users": {"peak": "100/s"}}},
        "policies": {"client": {"timeout": "10s", "retries": 0},
                     "load_balancer": {"health_check": {"enabled": False}, "hedge": hedge}},
    }
    return scenario_from(base=base)


def mean_latency(seed: int, service: object, hedge: dict | None) -> float:
    result = sim.run(scenario(seed, service, hedge))
    assert result.summary["availability"] == 1.0
    assert result.summary["counts"]["queued"] == 0  # no queueing: the formula's premise
    return float(result.summary["latency"]["mean"])


def test_the_formula_at_its_limits():
    assert theory(20.0, 0.0) == pytest.approx(1 / 40)
    assert theory(20.0, 1e3) == pytest.approx(1 / 20)


def test_hedged_mean_latency_is_the_mean_of_the_first_of_two_tries():
    fixed = mean_latency(1, {"distribution": "deterministic", "mean": "50ms"}, None) - MEAN
    assert 0 <= fixed < 0.01
    hedge = {"delay": DELAY}
    means = [mean_latency(seed, {"distribution": "exponential", "mean": MEAN}, hedge) - fixed
             for seed in range(1, SEEDS + 1)]
    mean, se = statistics.fmean(means), statistics.stdev(means) / math.sqrt(SEEDS)
    expected = theory(1 / MEAN, DELAY)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    # It could fail: no hedging, or a hedge twice as late, lies far outside.
    assert abs(MEAN - expected) > 20 * se
    assert abs(theory(1 / MEAN, 2 * DELAY) - expected) > 20 * se
