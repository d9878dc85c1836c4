"""The flow engine's steady state against the queueing formulas, where a fluid model can match them.

The flow engine is deterministic (no noise): one run is the answer, so the tolerances are those of
the approximation, stated per test, not standard errors.

- Throughput: below saturation every request is served (availability 1, amplification 1).
- Utilisation: the busy share of the workers is lam / (c mu) (read from the queue statistics).
- Waiting: the share of requests that wait is Erlang C and the mean response is the M/M/c mean
  (the engine adds the stationary M/M/c wait to the fluid backlog's).
- Loss: a server with a finite waiting room refuses the M/M/c/K share of arrivals, in overload (about
  1 - c mu / lam, the fluid limit) and with no waiting room at all (Erlang B).
"""

from functools import cache

import pytest
from queue_runs import queue_scenario
from queueing import erlang_c, mmc_mean_response, mmck_distribution

import sim


@cache  # deterministic: the tests of one (lam, workers) read the same run
def flow(lam: float, workers: int, queue_limit: int | None = None, duration: float = 2000.0) -> dict:
    scenario = queue_scenario(lam, workers, duration, queue_limit=queue_limit)
    return sim.run(scenario.model_copy(update={"engine": "flow"})).summary


@pytest.mark.parametrize("lam, workers", [(0.5, 1), (3.0, 4), (7.0, 8)])
def test_below_saturation_everything_is_served(lam: float, workers: int) -> None:
    s = flow(lam, workers)
    assert s["requests"] == pytest.approx(lam * 2000.0, rel=1e-3)
    assert s["availability"] == pytest.approx(1.0, abs=1e-6)
    assert s["amplification"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("lam, workers", [(0.5, 1), (3.0, 4), (7.0, 8)])
def test_share_that_waits_is_erlang_c(lam: float, workers: int) -> None:
    s = flow(lam, workers)
    waited = s["counts"]["queued"] / s["requests"]
    assert waited == pytest.approx(erlang_c(workers, lam), abs=0.01)


@pytest.mark.parametrize("lam, workers", [(0.5, 1), (3.0, 4), (7.0, 8)])
def test_mean_response_is_mmc(lam: float, workers: int) -> None:
    """The mean latency comes from the histogram of latency samples (bins about 7% wide, and the
    stochastic part cut into ten slices of an exponential): within 10% of the M/M/c mean."""
    s = flow(lam, workers)
    assert s["latency"]["mean"] == pytest.approx(mmc_mean_response(lam, 1.0, workers), rel=0.10)


@pytest.mark.parametrize("lam, workers, limit", [(12.0, 8, 20), (20.0, 4, 10), (6.0, 2, 0), (7.0, 10, 0)])
def test_a_bounded_queue_loses_the_mmck_share(lam: float, workers: int, limit: int) -> None:
    """Offered lam with ``limit`` waiting places: the refused share is M/M/c/K's blocking."""
    blocking = mmck_distribution(lam, 1.0, workers, workers + limit)[-1]
    s = flow(lam, workers, queue_limit=limit)
    assert s["counts"]["shed"] / s["requests"] == pytest.approx(blocking, abs=0.01)
    assert s["availability"] == pytest.approx(1 - blocking, abs=0.01)  # no retries: refused means failed
