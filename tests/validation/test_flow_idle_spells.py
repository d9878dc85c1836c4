"""A queue that ``max_queue_wait`` keeps from growing, in overload: it idles now and then, on the flow engine as
on the request engine and in M/M/1+D.

One server (one worker, exponential service) refuses what would wait over ``max_queue_wait`` = 1 s, and is
offered 120% of what it serves, Poisson, for half an hour; the client never retries. In M/M/1+D the work a
request finds is sometimes none, so the worker serves ``μ (1 - p0)`` a second, less than ``μ``, and the share
refused is more than the excess over the worker: with a bound of four services (240 ms), 76.1% of the requests
are served, not 83.3%.

The flow engine's fluid backlog grows by the excess until it fills the room, and the full room is M/M/1+D
with the whole bound (``QueueLaw._full_waits``). While it grew, it used to refuse what would wait past what was
left of the bound above the fluid backlog: the backlog stalled below the room, where those refusals matched
the excess, and the worker served its whole capacity (83.4% with a bound of four services). A growing queue
now refuses nothing (``QueueLaw._growing``), as a queue limit's room does.

The request engine runs over ``SEEDS`` seeds; the flow engine (no noise) is deterministic, so one run is its
answer. Its share served must lie within 4 standard errors of the request engine's mean and of the
textbook's, and, in the case of the short bound, refusing by what is left of the bound while the queue grows
must not (the test could fail).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from queue_runs import deadline_queue
from queueing import across_seeds, mm1d_served

import sim
from sim.engine.flow.waits import QueueLaw

pytestmark = pytest.mark.slow  # sixteen request-engine runs of 9,000 and 36,000 requests: ~15 s

SEEDS = 8
BOUND, DURATION, LOAD = 1.0, 1800.0, 1.2
CASES = {"a bound of 4 services": 0.24, "a bound of 17 services": 0.06}  # mean service, seconds


def scenario(engine: str, service: float) -> sim.Scenario:
    return deadline_queue(engine, service, LOAD / service, BOUND, DURATION)


def share_served(engine: str, service: float, seed: int) -> float:
    return sim.run(scenario(engine, service), seed=seed).summary["succeeded"] / (LOAD / service * DURATION)


def textbook(service: float) -> float:
    return mm1d_served(LOAD / service, 1.0 / service, BOUND) * service / LOAD


@cache
def requests(service: float) -> tuple[float, float]:
    return across_seeds([share_served("requests", service, seed) for seed in range(1, SEEDS + 1)]).mean_se()


def measured(service: float) -> tuple[float, float, float, str]:
    mine, (theirs, se) = share_served("flow", service, 1), requests(service)
    return mine, theirs, se, (f"served: the flow engine's {mine:.2%}, the request engine's {theirs:.2%} ± {se:.2%}, "
                              f"M/M/1+D's {textbook(service):.2%}")


@pytest.mark.parametrize("service", CASES.values(), ids=CASES.keys())
def test_an_overloaded_queue_with_a_bound_idles_now_and_then(service: float) -> None:
    mine, theirs, se, text = measured(service)
    assert abs(mine - theirs) <= 4 * se, text
    assert abs(mine - textbook(service)) <= 4 * se, text


def test_refusing_while_it_grows_serves_the_whole_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QueueLaw, "_growing", staticmethod(lambda refused, filling: np.asarray(refused)))
    mine, theirs, se, text = measured(CASES["a bound of 4 services"])
    assert mine > theirs + 4 * se, text
    assert mine > textbook(CASES["a bound of 4 services"]) + 4 * se, text
