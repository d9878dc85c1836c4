"""The flow engine against the request engine on the same queues, and both against the textbook.

``test_flow_steady.py`` checks the flow engine against the formulas it is built from; this module checks it
against something independent of them: the request engine, which simulates every request, on the same
scenario. The request engine runs over ``SEEDS`` seeds; the flow engine is deterministic, so one run is
its answer. Each figure of the flow engine must lie within 4 standard errors of the request engine's mean
over the seeds (Student's t with 5 degrees of freedom puts 1% of the request engine's own means beyond
that), and where a textbook value exists the request engine's mean must lie within 4 standard errors of it.

Figures: the mean response of the requests served, the share refused (a full waiting room), and the share
that waited for a worker.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from functools import cache

import pytest
from queue_runs import queue_scenario
from queueing import erlang_c, mmc_mean_response, mmck_distribution

import sim

SEEDS = 6
REQUEST_SECONDS = 20_000.0  # a request-engine run: about 10^5 requests at 5/s
FLOW_SECONDS = 2_000.0  # the flow engine is deterministic and in its steady state after a few steps


def mmck(lam: float, c: int, limit: int) -> tuple[float, float, float]:
    """M/M/c/K with mean service 1 s and ``limit`` waiting places: (refused share, mean response of the
    served, share of arrivals that wait)."""
    p = mmck_distribution(lam, 1.0, c, c + limit)
    refused = p[-1]
    in_system = sum(n * pn for n, pn in enumerate(p))
    return refused, in_system / (lam * (1 - refused)), sum(p[c:-1])


# name -> (arrival rate, workers, waiting places: None for none's limit); mean service 1 s
QUEUES: dict[str, tuple[float, int, int | None]] = {
    "M/M/1 at 0.8": (0.8, 1, None),
    "M/M/8 at 0.9": (7.2, 8, None),
}


def textbook(lam: float, c: int, limit: int | None) -> tuple[float, float, float]:
    """(refused share, mean response of the served, share that waits) of M/M/c or M/M/c/K."""
    if limit is None:
        return 0.0, mmc_mean_response(lam, 1.0, c), erlang_c(c, lam)
    return mmck(lam, c, limit)


FIGURES: dict[str, Callable[[dict], float]] = {
    "refused": lambda s: s["counts"]["shed"] / s["requests"],
    "mean response": lambda s: s["latency"]["mean"],
    "waited": lambda s: s["counts"]["queued"] / s["requests"],
}


@cache
def requests_runs(name: str) -> list[dict]:
    lam, c, limit = QUEUES[name]
    scenario = queue_scenario(lam, c, REQUEST_SECONDS, queue_limit=limit)
    return [sim.run(scenario, seed=seed).summary for seed in range(1, SEEDS + 1)]


@cache
def flow_run(name: str) -> dict:
    lam, c, limit = QUEUES[name]
    scenario = queue_scenario(lam, c, FLOW_SECONDS, queue_limit=limit)
    return sim.run(scenario.model_copy(update={"engine": "flow"})).summary


def mean_se(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


@pytest.mark.parametrize("figure", list(FIGURES))
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"queue:{n}")) for n in QUEUES])
def test_flow_engine_answers_like_the_request_engine(name: str, figure: str) -> None:
    get = FIGURES[figure]
    mean, se = mean_se([get(s) for s in requests_runs(name)])
    flow = get(flow_run(name))
    theory = textbook(*QUEUES[name])[list(FIGURES).index(figure)]
    bound = 4 * se + 1e-9  # a figure that is exactly 0 on every seed has no spread
    measured = f"the request engine's {figure} {mean:.4f} ± {se:.4f}"
    assert abs(mean - theory) <= bound, f"{name}: {measured}, theory {theory:.4f}"
    assert abs(flow - mean) <= bound, f"{name}: the flow engine's {flow:.4f}, {measured}"
