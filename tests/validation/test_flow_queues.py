"""The flow engine against the request engine on the same queues, and both against the textbook.

``test_flow_steady.py`` checks the flow engine against the formulas it is built from; this module checks it
against something independent of them: the request engine, which simulates every request, on the same
scenario. The request engine runs over ``SEEDS`` seeds; the flow engine is deterministic, so one run is
its answer. Each figure of the flow engine must lie within 4 standard errors of the request engine's mean
over the seeds (Student's t with 5 degrees of freedom puts 1% of the request engine's own means beyond
that), and where a textbook value exists the request engine's mean must lie within 4 standard errors of it.

Figures: the mean response of the requests served, the share refused (a full waiting room), and the share
that waited for a worker. M/M/4/24 at 1.4 is a waiting room kept full by overload, which the flow engine
takes as stationary M/M/c/K at the load offered (:meth:`sim.engine.flow.waits.QueueLaw._full_waits`);
before, its fluid backlog sat at the limit with the stationary wait at 98% utilisation on top, a mean
response of 17.9 s against the textbook's 5.38 s. (Rooms below saturation: ``test_flow_waiting_room.py``.)

Pools (``POOLS``): ``n`` servers of ``c`` workers with no mailbox databases, so the load balancer decides
where each request goes and the flow engine takes the wait from the balancer's fluid view
(:mod:`sim.balancing`). Figures: the mean response and the share that waited. Textbook values: round robin
makes E_n/M/c (exact, GI/M/c), the shortest queue the pool's own chain (exact); two choices have none (the
refined mean field fitted through the exact pools of one to three servers is an approximation). Each case
could fail: what the flow engine gave before (Allen–Cunneen with ``ca2 = 1/n``, one M/M/(n c) queue, the
supermarket model's fixed point) lies outside the tolerance in at least one figure.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from queue_runs import queue_scenario
from queueing import across_seeds, erlang_c, mmc_mean_response, mmck_distribution

import sim
from sim.balancing import erlang_arrivals, shortest_queue
from sim.queueing import supermarket

SEEDS = 6
# In overload the share refused is one less the departures over the arrivals, two Poisson counts: a run's
# spread is about 0.0025, and six seeds estimate it too loosely for a bound of four of their standard errors.
OVERLOAD_SEEDS = 12
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
    "M/M/4/4 at 0.75 (Erlang B)": (3.0, 4, 0),
    "M/M/4/24 at 1.4 (a full waiting room)": (5.6, 4, 20),
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
    return [sim.run(scenario, seed=seed).summary for seed in range(1, (OVERLOAD_SEEDS if lam > c else SEEDS) + 1)]


@cache
def flow_run(name: str) -> dict:
    lam, c, limit = QUEUES[name]
    # In overload both engines start empty and fill the waiting room, each in its own way (the fluid backlog
    # fills at the excess rate, with the stationary wait at the utilisation's cap on top); over the request
    # engine's run that start weighs on both alike.
    duration = REQUEST_SECONDS if lam > c else FLOW_SECONDS
    scenario = queue_scenario(lam, c, duration, queue_limit=limit)
    return sim.run(scenario.model_copy(update={"engine": "flow"})).summary


@pytest.mark.parametrize("figure", list(FIGURES))
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"queue:{n}")) for n in QUEUES])
def test_flow_engine_answers_like_the_request_engine(name: str, figure: str) -> None:
    get = FIGURES[figure]
    mean, se = across_seeds([get(s) for s in requests_runs(name)]).mean_se()
    flow = get(flow_run(name))
    theory = textbook(*QUEUES[name])[list(FIGURES).index(figure)]
    bound = 4 * se + 1e-9  # a figure that is exactly 0 on every seed has no spread
    measured = f"the request engine's {figure} {mean:.4f} ± {se:.4f}"
    assert abs(mean - theory) <= bound, f"{name}: {measured}, theory {theory:.4f}"
    assert abs(flow - mean) <= bound, f"{name}: the flow engine's {flow:.4f}, {measured}"


# ------------------------------------------------------------------------------ balanced pools

# name -> (balancer, servers, workers per server, utilisation); mean service 1 s, Poisson arrivals to the pool
POOLS: dict[str, tuple[str, int, int, float]] = {
    "round_robin 16x1 at 0.8": ("round_robin", 16, 1, 0.8),
    "round_robin 4x2 at 0.85": ("round_robin", 4, 2, 0.85),
    "least_outstanding 16x1 at 0.85": ("least_outstanding", 16, 1, 0.85),
    "least_outstanding 4x2 at 0.9": ("least_outstanding", 4, 2, 0.9),
    "least_outstanding 8x8 at 0.9": ("least_outstanding", 8, 8, 0.9),
    "power_of_two 4x2 at 0.85": ("power_of_two", 4, 2, 0.85),
    "power_of_two 8x1 at 0.85": ("power_of_two", 8, 1, 0.85),
    "power_of_two 8x8 at 0.9": ("power_of_two", 8, 8, 0.9),
}
POOL_REQUESTS = 150_000  # a request-engine run of a pool: about 1 s of CPU
POOL_FIGURES = ["mean response", "waited"]


def pool_scenario(algorithm: str, servers: int, workers: int, rho: float, duration: float) -> sim.Scenario:
    """``servers`` servers of ``workers`` workers (exponential service, 1 s) at utilisation ``rho``,
    spread by ``algorithm``: no databases, no retries, no health checks, a timeout beyond any response."""
    return queue_scenario(rho * servers * workers, workers, duration, servers=servers, algorithm=algorithm)


@cache
def pool_requests_runs(name: str) -> list[dict]:
    algorithm, n, c, rho = POOLS[name]
    scenario = pool_scenario(algorithm, n, c, rho, POOL_REQUESTS / (rho * n * c))
    return [sim.run(scenario, seed=seed).summary for seed in range(1, SEEDS + 1)]


@cache
def pool_flow_run(name: str) -> dict:
    algorithm, n, c, rho = POOLS[name]
    scenario = pool_scenario(algorithm, n, c, rho, FLOW_SECONDS)
    return sim.run(scenario.model_copy(update={"engine": "flow"})).summary


def pool_theory(algorithm: str, n: int, c: int, rho: float) -> tuple[float, float] | None:
    """(mean response, share that waits) where exact: E_n/M/c for round robin, the chain for the shortest queue."""
    formula = {"round_robin": erlang_arrivals, "least_outstanding": shortest_queue}.get(algorithm)
    if formula is None:
        return None
    wait_p, rate = formula(np.array([rho]), n, c)
    return 1.0 + float(wait_p[0] / rate[0]), float(wait_p[0])


def pool_before(algorithm: str, n: int, c: int, rho: float) -> tuple[float, float]:
    """(mean response, share that waits) of the fluid view the flow engine had before :mod:`sim.balancing`."""
    if algorithm == "power_of_two":  # the supermarket model's fixed point: an infinite pool
        wait_p, mean = supermarket(np.array([rho]), c, 2)
        return 1.0 + float(mean[0]), float(wait_p[0])
    if algorithm == "least_outstanding":  # one M/M/(n c) queue
        wait = erlang_c(n * c, n * c * rho)
        return 1.0 + wait / (n * c * (1 - rho)), wait
    wait = erlang_c(c, c * rho)  # Allen–Cunneen with ca2 = 1/n
    return 1.0 + wait / (c * (1 - rho)) * (1 / n + 1) / 2, wait


@pytest.mark.parametrize("figure", POOL_FIGURES)
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"pool:{n}")) for n in POOLS])
def test_flow_engine_spreads_a_pool_like_the_request_engine(name: str, figure: str) -> None:
    get = FIGURES[figure]
    mean, se = across_seeds([get(s) for s in pool_requests_runs(name)]).mean_se()
    flow = get(pool_flow_run(name))
    bound = 4 * se + 1e-9
    measured = f"the request engine's {figure} {mean:.4f} ± {se:.4f}"
    theory = pool_theory(*POOLS[name])
    if theory is not None:
        exact = theory[POOL_FIGURES.index(figure)]
        assert abs(mean - exact) <= bound, f"{name}: {measured}, theory {exact:.4f}"
    assert abs(flow - mean) <= bound, f"{name}: the flow engine's {flow:.4f}, {measured}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"pool:{n}")) for n in POOLS])
def test_each_pool_case_tells_the_old_fluid_view_apart(name: str) -> None:
    before = pool_before(*POOLS[name])
    outside = []
    for figure, old in zip(POOL_FIGURES, before, strict=True):
        mean, se = across_seeds([FIGURES[figure](s) for s in pool_requests_runs(name)]).mean_se()
        outside.append(abs(old - mean) > 4 * se)
    assert any(outside), f"{name}: the old fluid view {before} is within 4 standard errors on every figure"
