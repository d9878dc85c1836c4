"""The token-bucket rate limit against its theory: the share of Poisson arrivals it refuses.

A bucket of ``b`` tokens filled at ``r`` a second, Poisson attempts at ``λ`` a second, each taking a token
or refused. Long-run, the admitted rate is ``min(λ, r)`` less what a full bucket wastes; the exact share
refused follows from the bucket's *deficit* as a queue. Write ``V = (b - tokens) / r``: it falls at rate 1
(the refill) down to 0 (a full bucket), and an admitted attempt raises it by ``d = 1 / r``. An attempt is
admitted when a token is left, ``V <= τ = (b - 1) / r``. So ``V`` is the workload of an M/D/1 queue whose
customers balk when the wait would exceed ``τ`` (Perry & Asmussen's M/G/1 with bounded workload), and by
level crossing (Brill & Posner) its density ``f`` on ``(0, τ + d]`` with the atom ``p0`` at 0 solves::

    f(x) = λ (p0 · 1{x < d} + ∫_{max(0, x - d)}^{min(x, τ)} f(y) dy),       p0 + ∫ f = 1,

and by PASTA the share admitted is ``P(V <= τ) = p0 + ∫_0^τ f``. With ``b = 1`` (``τ = 0``) it is closed:
``f = λ p0`` on ``(0, d)``, so the share admitted is ``1 / (1 + λ / r) = r / (λ + r)`` (a non-paralysable
dead-time counter). :func:`theory` solves the general case on a grid (trapezoid rule, step ``d / 4000``;
its error, checked against the closed form, is far below the tolerance).

The class :class:`sim.policies.TokenBucket` is fed Poisson arrivals from ``SEEDS`` seeds, then the request
engine with a rate limit, over several seeds; the mean share refused must lie within 4 standard errors of
the theory (the standard error from the spread over seeds, ``s / sqrt(n)``; with 7 or 4 degrees of freedom,
beyond 4 SE is under 0.5% / 1.6% of honest runs). The tests could fail: the theory of a bucket one token
larger or smaller lies more than 4 standard errors away.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

import sim
from sim.policies import TokenBucket
from sim.scenario import RateLimitPolicy

SEEDS = 8


def theory(lam: float, rate: float, burst: int, steps: int = 4000) -> float:
    """The share of Poisson attempts at ``lam`` a bucket (``rate``, ``burst``) refuses (see the module)."""
    d = 1.0 / rate
    h = d / steps
    m, n = (burst - 1) * steps, burst * steps  # the grid indices of τ and τ + d
    g = np.zeros(n + 1)  # f / p0 on the grid
    big = np.zeros(n + 1)  # ∫_0^x g
    g[0] = lam
    for i in range(1, n + 1):
        lower = big[max(0, i - steps)]
        step = 1.0 if i < steps else 0.0
        if i <= m:  # the integral reaches x itself: implicit in g[i]
            g[i] = lam * (step + big[i - 1] + h * g[i - 1] / 2 - lower) / (1 - lam * h / 2)
        else:
            g[i] = lam * (step + big[m] - lower)
        big[i] = big[i - 1] + h * (g[i - 1] + g[i]) / 2
    return 1.0 - (1.0 + big[m]) / (1.0 + big[n])


def test_the_grid_solution_matches_the_closed_form_of_a_bucket_of_one():
    for lam in (0.5, 1.0, 3.0):
        assert theory(lam, 1.0, 1) == pytest.approx(1 - 1 / (1 + lam), abs=1e-3)
    assert theory(3.0, 1.0, 50) == pytest.approx(1 - 1 / 3.0, abs=1e-3)  # long-run: min(λ, r) admitted


def _simulated(lam: float, rate: float, burst: int, seed: int, horizon: float) -> float:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / lam, int(lam * horizon)))
    bucket = TokenBucket(RateLimitPolicy(rate=rate, burst=burst))
    refused = sum(not bucket.take(float(t)) for t in times)
    return refused / len(times)


@pytest.mark.parametrize(("lam", "burst"), [(0.8, 1), (0.8, 4), (1.0, 4), (1.5, 4), (1.2, 2)])
def test_the_bucket_refuses_the_share_theory_gives(lam: float, burst: int):
    shares = [_simulated(lam, 1.0, burst, seed, 20_000.0) for seed in range(SEEDS)]
    mean = statistics.fmean(shares)
    se = statistics.stdev(shares) / math.sqrt(SEEDS)
    assert abs(mean - theory(lam, 1.0, burst)) < 4 * se
    assert min(abs(mean - theory(lam, 1.0, b)) for b in (burst - 1, burst + 1) if b >= 1) > 4 * se


LAM, RATE, BURST = 100.0, 80.0, 5
ENGINE_SEEDS = 5


def _engine_share(seed: int) -> float:
    scenario = sim.parse_scenario(f"""
name: rate-limited
engine: requests
seed: {seed}
duration: 5m
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - id: dc
      servers: [{{id: srv, count: 1, workers: 100, service_time: 1ms}}]
workload: {{regions: {{users: {{peak: {LAM!r}/s}}}}}}
policies:
  client: {{retries: 0}}
  load_balancer: {{health_check: {{enabled: false}}, rate_limit: {{rate: {RATE!r}/s, burst: {BURST}}}}}
slo: {{window: 1h}}
""", "rate-limited.yaml")
    summary = sim.run(scenario).summary
    counts = summary["counts"]
    assert counts["attempts"] == summary["requests"]  # no retries: every attempt a user's first
    return counts["shed"] / counts["attempts"]


def test_the_engine_refuses_the_share_theory_gives():
    """The rate limit in the request engine: one region at 100/s against 80/s with a bucket of 5."""
    shares = [_engine_share(seed) for seed in range(ENGINE_SEEDS)]
    mean = statistics.fmean(shares)
    se = statistics.stdev(shares) / math.sqrt(ENGINE_SEEDS)
    assert abs(mean - theory(LAM, RATE, BURST)) < 4 * se
    assert min(abs(mean - theory(LAM, RATE, b)) for b in (BURST - 1, BURST + 1)) > 4 * se
