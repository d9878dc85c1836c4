"""M/M/1 (lam = 0.8, mu = 1): the engine's response times against the closed forms.

Pilot (8 seeds x 300,000 s, about 240,000 requests per seed): per-seed SD of the mean response 0.094,
so SE 0.033 and 4 SE = 0.13 (2.6% of 5): a 5% bias (0.25) is 7.5 SE away. The p99 is noisier
(per-seed SD 0.82, 4 SE = 1.2, 5%), so that check resolves a 10% bias.
"""

from functools import cache

import pytest
from queue_runs import Measured, queue_scenario, run_probed
from queueing import across_seeds, mm1_response_quantile, mmc_mean_response

LAM, MU = 0.8, 1.0
RHO = LAM / MU
DURATION = 300_000.0
SEEDS = range(101, 109)  # distinct from the other cases' seeds: they share stream names


@cache
def measured(seed: int) -> Measured:
    return run_probed(queue_scenario(LAM, 1, DURATION), seed, sample_every=3.7)


def runs() -> list[Measured]:
    return [measured(seed) for seed in SEEDS]


@pytest.mark.parametrize("seed", SEEDS)
def test_every_request_is_served(seed: int) -> None:
    m = measured(seed)
    assert m.succeeded == m.requests == m.admitted
    assert m.shed == m.timeouts == 0
    assert m.requests == pytest.approx(LAM * DURATION, rel=0.01)  # Poisson: SD 0.2% of the count


def test_mean_response_is_1_over_mu_minus_lam() -> None:
    theory = mmc_mean_response(LAM, MU, 1)
    assert theory == pytest.approx(5.0)
    across_seeds([m.latency_mean for m in runs()]).check(theory, floor=0.01 * theory, resolves=0.05 * theory)


def test_p99_response() -> None:
    theory = mm1_response_quantile(LAM, MU, 0.99)
    assert theory == pytest.approx(23.03, abs=0.005)
    across_seeds([m.latency_p99 for m in runs()]).check(theory, floor=0.02 * theory, resolves=0.10 * theory)


def test_probability_of_waiting_is_rho() -> None:
    across_seeds([m.p_wait for m in runs()]).check(RHO, floor=0.005 * RHO, resolves=0.05 * RHO)


def test_utilisation_is_rho() -> None:
    across_seeds([m.utilisation for m in runs()]).check(RHO, floor=0.005 * RHO, resolves=0.05 * RHO)


def test_littles_law() -> None:
    """Time-average number in system: L = lam W = rho / (1 - rho), and L = lam_hat W_hat run by run."""
    theory = RHO / (1 - RHO)
    across_seeds([m.in_system for m in runs()]).check(theory, floor=0.01 * theory, resolves=0.05 * theory)
    across_seeds([m.in_system - m.arrival_rate * m.latency_mean for m in runs()]).check(
        0.0, floor=0.005 * theory, resolves=0.01 * theory
    )
