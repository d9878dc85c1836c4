"""M/M/4 (lam = 3, mu = 1 per worker, one server with 4 workers): Erlang C.

P(wait) = C(4, 3) = 0.5094 and mean response 1/mu + C / (c mu - lam) = 1.5094.

The public Result records response times only, so P(wait) is observed through the engine's own
``Station.wait`` at admission (see ``queue_runs.run_probed``); it is also recovered from the mean
response alone, C = (W - 1/mu)(c mu - lam), which needs nothing but ``recorder.latency``.

Pilot (8 seeds x 30,000 s, 90,000 requests per seed): SE of the mean response 0.0092 (4 SE = 2.4% of
1.5094), SE of P(wait) 0.0025 (4 SE = 2% of 0.5094).
"""

from functools import cache

import pytest
from queue_runs import Measured, queue_scenario, run_probed
from queueing import across_seeds, erlang_c, mmc_mean_response, mmc_mean_wait

LAM, MU, C = 3.0, 1.0, 4
DURATION = 30_000.0
SEEDS = range(201, 209)


@cache
def measured(seed: int) -> Measured:
    return run_probed(queue_scenario(LAM, C, DURATION), seed)


def runs() -> list[Measured]:
    return [measured(seed) for seed in SEEDS]


@pytest.mark.parametrize("seed", SEEDS)
def test_every_request_is_served(seed: int) -> None:
    m = measured(seed)
    assert m.succeeded == m.requests == m.admitted
    assert m.shed == m.timeouts == 0


def test_mean_response() -> None:
    theory = mmc_mean_response(LAM, MU, C)
    assert theory == pytest.approx(1.5094, abs=5e-5)
    across_seeds([m.latency_mean for m in runs()]).check(theory, floor=0.01 * theory, resolves=0.05 * theory)


def test_probability_of_waiting_observed_at_admission() -> None:
    theory = erlang_c(C, LAM / MU)
    assert theory == pytest.approx(0.5094, abs=5e-5)
    across_seeds([m.p_wait for m in runs()]).check(theory, floor=0.01 * theory, resolves=0.05 * theory)


def test_mean_wait_observed_at_admission() -> None:
    theory = mmc_mean_wait(LAM, MU, C)
    across_seeds([m.mean_wait for m in runs()]).check(theory, floor=0.01 * theory, resolves=0.10 * theory)


def test_probability_of_waiting_from_the_mean_response() -> None:
    """Erlang C through W_q = C / (c mu - lam), from the public latency record only."""
    theory = erlang_c(C, LAM / MU)
    recovered = [(m.latency_mean - 1 / MU) * (C * MU - LAM) for m in runs()]
    across_seeds(recovered).check(theory, floor=0.01 * theory, resolves=0.10 * theory)


def test_utilisation() -> None:
    rho = LAM / (C * MU)
    across_seeds([m.utilisation for m in runs()]).check(rho, floor=0.005 * rho, resolves=0.05 * rho)


def test_littles_law() -> None:
    theory = LAM * mmc_mean_response(LAM, MU, C)
    across_seeds([m.in_system for m in runs()]).check(theory, floor=0.01 * theory, resolves=0.05 * theory)
    across_seeds([m.in_system - m.arrival_rate * m.latency_mean for m in runs()]).check(
        0.0, floor=0.005 * theory, resolves=0.01 * theory
    )
