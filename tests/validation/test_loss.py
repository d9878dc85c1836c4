"""Finite waiting room: Erlang B (no queue) and M/M/c/K.

Erlang B: 10 workers, ``queue_limit: 0``, lam = 7, mu = 1 (7 erlangs) blocks B(10, 7) = 0.07874 of
requests; a blocked request is counted in ``counts.shed`` and, with no retries, fails. Pilot (8 seeds
x 20,000 s, 140,000 requests per seed): SE of the blocking 0.00041, 4 SE = 2.1% of B.

M/M/2/5: 2 workers and ``queue_limit: 3``, lam = 2, mu = 1: the stationary weights are 1, 2, 2, 2, 2,
2, so 2/11 of arrivals are blocked and W = L / lam_eff = (30/11) / (18/11) = 5/3. This checks that
``queue_limit`` counts waiting requests only, not the ones in service.
"""

from functools import cache

import pytest
from queue_runs import Measured, queue_scenario, run_probed
from queueing import across_seeds, erlang_b, mmck_distribution

DURATION = 20_000.0


@cache
def erlang(seed: int) -> Measured:
    return run_probed(queue_scenario(7.0, 10, DURATION, queue_limit=0), seed)


@cache
def mm2k5(seed: int) -> Measured:
    return run_probed(queue_scenario(2.0, 2, DURATION, queue_limit=3), seed)


ERLANG_SEEDS = range(301, 309)
MMCK_SEEDS = range(401, 409)


@pytest.mark.parametrize("seed", ERLANG_SEEDS)
def test_erlang_blocked_requests_fail_fast(seed: int) -> None:
    m = erlang(seed)
    assert m.requests == m.succeeded + m.shed  # every blocked request fails, nothing else does
    assert m.waited == 0 and m.timeouts == 0  # no queue: nobody waits


def test_erlang_b_blocking() -> None:
    theory = erlang_b(10, 7.0)
    assert theory == pytest.approx(0.07874, abs=5e-6)
    est = across_seeds([erlang(s).blocking for s in ERLANG_SEEDS])
    est.check(theory, floor=0.01 * theory, resolves=0.05 * theory)


def test_erlang_b_carried_load() -> None:
    """Accepted requests are served at once: response = service (mean 1), busy workers = a (1 - B)."""
    carried = 7.0 * (1 - erlang_b(10, 7.0))
    runs = [erlang(s) for s in ERLANG_SEEDS]
    across_seeds([m.latency_mean for m in runs]).check(1.0, floor=0.005, resolves=0.05)
    across_seeds([m.in_system for m in runs]).check(carried, floor=0.005 * carried, resolves=0.05 * carried)


def test_mm2k5_blocking_and_response() -> None:
    p = mmck_distribution(2.0, 1.0, 2, 5)
    blocking = p[-1]
    lam_eff = 2.0 * (1 - blocking)
    in_system = sum(n * pn for n, pn in enumerate(p))
    response = in_system / lam_eff
    assert (blocking, response) == pytest.approx((2 / 11, 5 / 3))
    runs = [mm2k5(s) for s in MMCK_SEEDS]
    assert all(m.requests == m.succeeded + m.shed for m in runs)
    across_seeds([m.blocking for m in runs]).check(blocking, floor=0.01 * blocking, resolves=0.05 * blocking)
    across_seeds([m.latency_mean for m in runs]).check(
        response, floor=0.01 * response, resolves=0.05 * response
    )
    across_seeds([m.in_system for m in runs]).check(
        in_system, floor=0.01 * in_system, resolves=0.05 * in_system
    )
