"""Client retries against a server with little or no waiting room: the flow engine against the request engine.

One server of ``c`` workers (exponential service, 1 s) with ``q`` waiting places (M/M/c/(c+q)), Poisson
arrivals, and clients that retry a refused request twice after a backoff. A retry is refused with the
chance that the server is full when it comes back; after a short backoff (0.1 s, full jitter, against a
service of 1 s) that is the chance the server is *still* full, much more than the share of time it is
full: retries bunch. The request engine simulates every request, so it is exact; it runs over ``SEEDS``
seeds and each figure of the (deterministic) flow engine must lie within 4 standard errors of its mean
(Student's t with 5 degrees of freedom puts 1% of the request engine's own means beyond that).

Figures: retries per request, the share of attempts refused, availability (the requests that succeeded).

Each short-backoff case could fail: the flow engine's old model, where a retry is refused as a first
attempt is (at the share of time the server is full, the retries adding to its Poisson load), lies
outside the tolerance in at least one figure (:func:`independent`; its figures are what the flow engine
gave). The long-backoff case (15 s to 60 s) is the control: there a retry finds the server as a first
attempt does, and the old model is within the tolerance too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from queue_runs import queue_scenario

import sim
from sim.queueing import blocking

SEEDS = 6

# name -> (arrival rate, workers, waiting places, backoff, request-engine seconds, flow-engine seconds)
SHORT = "{base: 100ms, multiplier: 2, max: 100s, jitter: full}"  # retry 1 within 0.1 s, retry 2 within 0.2 s
LONG = "{base: 30s, multiplier: 2, max: 100s, jitter: equal}"  # retry 1 after 15-30 s, retry 2 after 30-60 s
CASES: dict[str, tuple[float, int, int, str, float, float]] = {
    "M/M/4/4 at 0.75, short backoff": (3.0, 4, 0, SHORT, 20_000.0, 2_000.0),
    "M/M/4/4 at 1.0, short backoff": (4.0, 4, 0, SHORT, 20_000.0, 2_000.0),
    "M/M/1/1 at 0.5, short backoff": (0.5, 1, 0, SHORT, 20_000.0, 2_000.0),
    "M/M/4/6 at 0.75, short backoff": (3.0, 4, 2, SHORT, 20_000.0, 2_000.0),
    # Both engines run as long: a request's retries reach a minute past its arrival, so the end of a run
    # (retries of the last requests meet an emptier server) weighs the same in both.
    "M/M/4/4 at 0.75, long backoff": (3.0, 4, 0, LONG, 4_000.0, 4_000.0),
}
RETRIES = 2
TIMEOUT = 100.0

FIGURES: dict[str, Callable[[dict], float]] = {
    "retries per request": lambda s: s["counts"]["retries"] / s["requests"],
    "refused share": lambda s: s["counts"]["shed"] / s["counts"]["attempts"],
    "availability": lambda s: s["succeeded"] / s["requests"],
}


def scenario(name: str, duration: float) -> sim.Scenario:
    lam, c, limit, backoff, _, _ = CASES[name]
    return queue_scenario(lam, c, duration, queue_limit=limit, timeout=TIMEOUT, retries=RETRIES, backoff=backoff)


@cache
def requests_runs(name: str) -> list[dict]:
    s = scenario(name, CASES[name][4])
    return [sim.run(s, seed=seed).summary for seed in range(1, SEEDS + 1)]


@cache
def flow_run(name: str) -> dict:
    return sim.run(scenario(name, CASES[name][5]).model_copy(update={"engine": "flow"})).summary


def mean_se(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


def independent(lam: float, c: int, limit: int) -> dict[str, float]:
    """The old model's figures: every try, first or retry, refused at the same share ``p`` of M/M/c/K
    offered the first attempts and the retries, ``p = blocking(lam (1 + p + p^2))`` (two retries)."""
    p = 0.0
    for _ in range(200):
        p = float(blocking(np.array([c]), np.array([lam * (1 + p + p * p)]), np.array([float(limit)]))[0])
    return {"retries per request": p + p * p, "refused share": p, "availability": 1 - p**3}


def group(name: str) -> pytest.MarkDecorator:
    return pytest.mark.xdist_group(f"retrial:{name}")


@pytest.mark.parametrize("figure", list(FIGURES))
@pytest.mark.parametrize("name", [pytest.param(n, marks=group(n)) for n in CASES])
def test_flow_engine_retries_like_the_request_engine(name: str, figure: str) -> None:
    get = FIGURES[figure]
    mean, se = mean_se([get(s) for s in requests_runs(name)])
    flow = get(flow_run(name))
    measured = f"the request engine's {mean:.4f} ± {se:.4f}"
    assert abs(flow - mean) <= 4 * se, f"{name}: the flow engine's {figure} {flow:.4f}, {measured}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=group(n)) for n in CASES])
def test_each_short_backoff_tells_the_independent_model_apart(name: str) -> None:
    """Measured when the flow engine had the independent model (request engine: mean ± SE over 6 seeds;
    flow; the independent model's figure):

    - M/M/4/4 at 0.75: retries 0.4705 ± 0.0022, flow 0.4700; refused 0.4331 ± 0.0014, flow 0.3486;
      availability 0.8337 ± 0.0009, flow 0.9577 (+134 SE);
    - M/M/4/4 at 1.0: retries 0.7292 ± 0.0027, flow 0.8438 (+43 SE); availability 0.7328 ± 0.0010, flow 0.8373;
    - M/M/1/1 at 0.5: retries 0.6828 ± 0.0051, flow 0.6580; availability 0.6964 ± 0.0024, flow 0.9070;
    - M/M/4/6 at 0.75: retries 0.2138 ± 0.0011, flow 0.1542 (-55 SE); availability 0.9245 ± 0.0006, flow 0.9975.
    """
    lam, c, limit, backoff, _, _ = CASES[name]
    old = independent(lam, c, limit)
    outside = []
    for figure, get in FIGURES.items():
        mean, se = mean_se([get(s) for s in requests_runs(name)])
        outside.append(abs(old[figure] - mean) > 4 * se)
    if backoff == SHORT:
        assert any(outside), f"{name}: the independent model {old} is within 4 standard errors on every figure"
    else:
        assert not any(outside), f"{name}: the control case: the independent model {old} should hold"
