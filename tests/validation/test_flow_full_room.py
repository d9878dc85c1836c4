"""A full room serves what its workers do, however its demand varies from step to step (flow engine, noise on).

One server (one worker, exponential service of mean 60 ms: 16.67 tries a second) refuses what would wait over
``max_queue_wait`` = 1 s, and is offered 20 requests a second (120%), Poisson, for ten minutes; the client
never retries. It is M/M/1+D: the workload ``V`` a request finds has density ``p0 λ e^((λ-μ)v)`` below D and
``f(D) e^(-μ(v-D))`` above; a request is refused when ``V > D``, and the server serves ``μ (1 - p0)`` a second
(16.58: it is idle now and then).

With ``flow.noise`` the flow engine draws each step's arrivals. A full room refuses the share of the demand
that did not fit the step before; the next step's demand differs, and taken alone that share lets it serve
more than its worker can (16.74 a second, by the mean ratio of two steps' demands). What a full room admits
beyond what fits, or short of it, is carried to the next steps' refusals (``Servers._carry``). The flow
engine's mean over ``SEEDS`` seeds must lie within 4 standard errors of the request engine's mean (the two
engines' spreads combined) and of the textbook's, and without the carry it must not (the test could fail).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from queue_runs import deadline_queue
from queueing import across_seeds, mm1d_served

import sim
from sim.engine.flow.servers import Servers

pytestmark = pytest.mark.slow  # eight runs of 12,000 requests on each engine: ~10 s

SEEDS = 8
RATE, SERVICE, BOUND, DURATION = 20.0, 0.06, 1.0, 600.0


def scenario(engine: str) -> sim.Scenario:
    return deadline_queue(engine, SERVICE, RATE, BOUND, DURATION, noise=True)


def textbook() -> float:
    """M/M/1+D's tries served a second."""
    return mm1d_served(RATE, 1.0 / SERVICE, BOUND)


def served(engine: str) -> list[float]:
    return [sim.run(scenario(engine), seed=seed).summary["succeeded"] / DURATION for seed in range(1, SEEDS + 1)]


@cache
def requests() -> tuple[float, float]:
    runs = served("requests")
    return across_seeds(runs).mean_se()


def flow() -> tuple[float, float]:
    runs = served("flow")
    return across_seeds(runs).mean_se()


def test_a_full_room_serves_what_its_worker_does() -> None:
    (mine, se), (theirs, their_se) = flow(), requests()
    measured = (f"served a second: the flow engine's {mine:.3f} ± {se:.3f}, the request engine's {theirs:.3f} ± "
                f"{their_se:.3f}, M/M/1+D's {textbook():.3f}")
    assert abs(mine - theirs) <= 4 * math.hypot(se, their_se), measured
    assert abs(mine - textbook()) <= 4 * se, measured


def test_without_the_carry_a_full_room_serves_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Servers, "_carry", lambda self, ix, over, offered, fits, room: np.zeros(np.shape(over)))
    mine, se = flow()
    assert mine > textbook() + 4 * se, f"served a second: {mine:.3f} ± {se:.3f}, M/M/1+D's {textbook():.3f}"
