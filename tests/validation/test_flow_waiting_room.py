"""A queue limit's waiting room below and near saturation: the flow engine against the request engine and
the textbook (M/M/c/K).

Below saturation the flow engine took the stationary wait of an unlimited queue (Allen–Cunneen, the load
capped at 98% of the workers), whatever the room; only a room that overload kept full counted. A room the
waits would pass now cuts them as M/M/c/K does (:func:`sim.queueing.waiting_room`, exact shares and mean):
on a server (``QueueLaw._room_waits``) and on a dependency (``Dependencies._state``).

Server: one server of 4 workers (exponential service of 1 s) with room for 4 waiting requests, no timeout
that matters, at 97% and 100% of its capacity. Before, the mean response of the served was 2.13 s and
2.29 s and 60.0% and 61.3% waited (the textbook's M/M/4/8: 1.38 s and 1.40 s, 54.2% and 55.4%); now
1.380 s and 1.401 s, 54.2% and 55.4% (the request engine's 1.378 ± 0.002 s and 1.399 ± 0.002 s).

Dependency: four servers call a directory of 8 workers (exponential calls of 100 ms) with room for 24,
offered exactly its capacity (80 calls a second), with a dependency timeout of 500 ms: the room caps a
wait at about 0.3 s, so nearly every admitted call is answered in time, and what fails is mostly what
the room refuses. Before, a call waited the unlimited queue's 0.585 s at 98%, and its mean stationary wait
was also taken off the time left before the timeout, so every call was late: 0.3% served against the
request engine's 91.8% (M/M/8/32: 91.9%; an unlimited queue at 98%: 50.0%); now 92.4%. With one dependency
retry after a backoff of up to 2 s (a retry then meets the queue afresh): 84.6% served before, 90.6% now,
against 89.2%; the dependency retries per request 0.305 against 0.292 (0.391 before). The mean latency of
that case is not held: 0.602 s against 0.554 ± 0.009 s (0.703 s before). (A retry sent at once meets the
queue still full that refused it: the request engine then retries 12% of its requests where the flow
engine, which takes the retry's chance as the first call's, retries 31%; that is not this test's.)

The request engine runs over its seeds; the flow engine is deterministic, so one run is its answer. Each
figure of the flow engine must lie within 4 standard errors of the request engine's mean, and the
request engine's within 4 of the textbook's where there is one; each case could fail: the unlimited
queue's figure the flow engine took before lies outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest
from queue_runs import ONE_DATACENTER, queue_scenario
from queueing import across_seeds, erlang_c, mmck_distribution

import sim
from tests.conftest import scenario_from

pytestmark = pytest.mark.slow  # 6 request-engine runs of 80,000 requests a server case, 12 of 24,000 a dependency case

SEEDS = 6
REQUEST_SECONDS = 20_000.0
FLOW_SECONDS = 2_000.0
CAP = 0.98  # the utilisation at which the flow engine took an unlimited queue's wait before

# ------------------------------------------------------------------------------ a server

WORKERS, PLACES = 4, 4
LOADS = {"97%": 0.97 * WORKERS, "100%": 1.0 * WORKERS}  # arrivals per second (mean service 1 s)

FIGURES: dict[str, Callable[[dict], float]] = {  # (the share refused was M/M/c/K's before: test_flow_queues.py)
    "mean response": lambda s: s["latency"]["mean"],
    "waited": lambda s: s["counts"]["queued"] / s["requests"],
}


def textbook(lam: float) -> dict[str, float]:
    """M/M/4/8 at ``lam``: mean response of the served (Little), share of arrivals that wait."""
    p = mmck_distribution(lam, 1.0, WORKERS, WORKERS + PLACES)
    in_system = sum(n * pn for n, pn in enumerate(p))
    return {"mean response": in_system / (lam * (1 - p[-1])), "waited": sum(p[WORKERS:-1])}


def unlimited(lam: float) -> dict[str, float]:
    """What the flow engine took before: M/M/4 at the load capped at 98%, whatever the room."""
    a = min(lam, CAP * WORKERS)
    wait = erlang_c(WORKERS, a)
    return {"mean response": 1.0 + wait / (WORKERS - a), "waited": wait}


@cache
def server_requests(case: str) -> list[dict]:
    scenario = queue_scenario(LOADS[case], WORKERS, REQUEST_SECONDS, queue_limit=PLACES)
    return [sim.run(scenario, seed=seed).summary for seed in range(1, SEEDS + 1)]


@cache
def server_flow(case: str) -> dict:
    scenario = queue_scenario(LOADS[case], WORKERS, FLOW_SECONDS, queue_limit=PLACES)
    return sim.run(scenario.model_copy(update={"engine": "flow"})).summary


@pytest.mark.parametrize("figure", list(FIGURES))
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xdist_group(f"room:{c}")) for c in LOADS])
def test_a_servers_room_cuts_its_waits_below_saturation(case: str, figure: str) -> None:
    get = FIGURES[figure]
    mean, se = across_seeds([get(s) for s in server_requests(case)]).mean_se()
    flow, theory = get(server_flow(case)), textbook(LOADS[case])[figure]
    bound = 4 * se
    measured = f"the request engine's {figure} {mean:.4f} ± {se:.4f}"
    assert abs(mean - theory) <= bound, f"{case}: {measured}, M/M/4/8's {theory:.4f}"
    assert abs(flow - mean) <= bound, f"{case}: the flow engine's {flow:.4f}, {measured}"
    before = unlimited(LOADS[case])[figure]
    assert abs(before - mean) > bound, f"{case}: the unlimited queue's {before:.4f}, {measured}"


# ------------------------------------------------------------------------------ a dependency

DEP_SEEDS = 12
DEP_WORKERS, DEP_PLACES, DEP_SERVICE, DEP_TIMEOUT = 8, 24, 0.1, 0.5
# name -> (dependency retries, their backoff's longest (full jitter), the figures compared)
DEP_CASES: dict[str, tuple[int, str | None, tuple[str, ...]]] = {
    "no retry": (0, None, ("availability", "mean latency")),
    "one retry after up to 2 s": (1, "2s", ("availability", "dependency retries")),
}
DEP_FIGURES: dict[str, Callable[[dict], float]] = {
    "availability": lambda s: s["availability"],
    "mean latency": lambda s: s["latency"]["mean"],
    "dependency retries": lambda s: s["counts"]["dep_retries"] / s["counts"]["attempts"],
}


def dependency_scenario(engine: str, case: str) -> sim.Scenario:
    retries, backoff, _ = DEP_CASES[case]
    server: dict[str, Any] = {"dependency_timeout": f"{DEP_TIMEOUT:g}s", "dependency_retries": retries}
    if backoff is not None:
        server["dependency_backoff"] = {"base": backoff, "multiplier": 1, "max": backoff, "jitter": "full"}
    return scenario_from({
        "duration": "300s", "engine": engine,
        "topology": {
            "datacenters": [{"id": "dc", "servers": [{"id": "mbx", "count": 4, "workers": 64, "service_time": {
                "distribution": "exponential", "mean": "10ms"}}]}],
            "dependencies": [{"id": "directory", "workers": DEP_WORKERS, "queue_limit": DEP_PLACES, "service_time": {
                "distribution": "exponential", "mean": f"{DEP_SERVICE * 1000:g}ms"}}]},
        "workload": {"regions": {"users": {"peak": f"{DEP_WORKERS / DEP_SERVICE:g}/s"}},
                     "requests": {"sign_in": {"share": "100%", "dependencies": ["directory"]}}},
        "policies": {"client": {"timeout": "10s", "retries": 0}, "server": server},
    }, base=ONE_DATACENTER)


def answered_in_time(c: int, places: int, rho: float, mu: float, tau: float, cap: bool = False) -> float:
    """The share of calls an M/M/c/(c + places) queue (``cap``: M/M/c at ``rho`` at most 98%, unlimited)
    admits and answers within ``tau``: one that finds ``c + j`` waits ``j + 1`` completions at rate ``c mu``,
    then its own service at rate ``mu``, by quadrature."""
    a = c * min(rho, CAP) if cap else c * rho
    p = mmck_distribution(a, 1.0, c, c + (400 if cap else places))
    t = np.linspace(0.0, tau, 20_001)
    served = 1.0 - np.exp(-mu * (tau - t))  # P(S < tau - t)
    ok = sum(p[:c]) * (1.0 - math.exp(-mu * tau))
    for j in range(len(p) - c - 1):
        log_density = (j + 1) * math.log(c * mu) + j * np.log(np.maximum(t, 1e-300)) - c * mu * t - math.lgamma(j + 1)
        ok += p[c + j] * float(np.trapezoid(np.exp(log_density) * served, t))
    return ok


@cache
def dependency_requests(case: str) -> list[dict]:
    scenario = dependency_scenario("requests", case)
    return [sim.run(scenario, seed=seed).summary for seed in range(1, DEP_SEEDS + 1)]


@cache
def dependency_flow(case: str) -> dict:
    return sim.run(dependency_scenario("flow", case)).summary


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xdist_group(f"room:{c}")) for c in DEP_CASES])
def test_a_dependencys_room_cuts_its_waits_at_full_load(case: str) -> None:
    for figure in DEP_CASES[case][2]:
        get = DEP_FIGURES[figure]
        mean, se = across_seeds([get(s) for s in dependency_requests(case)]).mean_se()
        flow = get(dependency_flow(case))
        measured = f"the request engine's {figure} {mean:.4f} ± {se:.4f}"
        assert abs(flow - mean) <= 4 * se, f"{case}: the flow engine's {flow:.4f}, {measured}"


def test_without_retries_the_dependency_serves_what_mmck_answers_in_time() -> None:
    mean, se = across_seeds([DEP_FIGURES["availability"](s) for s in dependency_requests("no retry")]).mean_se()
    theory = answered_in_time(DEP_WORKERS, DEP_PLACES, 1.0, 1 / DEP_SERVICE, DEP_TIMEOUT)
    assert abs(mean - theory) <= 4 * se, f"the request engine's {mean:.4f} ± {se:.4f}, M/M/8/32's {theory:.4f}"
    # the test could fail: an unlimited queue at 98% (the wait the flow engine took before) answers far fewer
    before = answered_in_time(DEP_WORKERS, DEP_PLACES, 1.0, 1 / DEP_SERVICE, DEP_TIMEOUT, cap=True)
    assert mean - before > 4 * se, f"the request engine's {mean:.4f} ± {se:.4f}, M/M/8 at 98%: {before:.4f}"
