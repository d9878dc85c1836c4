"""The request engine's fast paths change its speed, never its answers.

- :class:`sim.schedule.Lane` runs callbacks in exactly the order SimPy would run them as events, ties
  included (property-based, against plain :func:`sim.schedule.later` events);
- the express lane of first tries (:meth:`sim.engine.requests.RequestEngine._arrival_handler`) gives the
  same run, to the bit, as the general path on every shipped scenario it is taken in.
"""

from __future__ import annotations

import json

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.engine.requests import RequestEngine
from sim.schedule import Lane, later
from tests.shipped import SHIPPED, group, key, run_shipped

# A plan: callbacks booked at the start, each (delay, on the lane?, what it books when it runs: (delay, on the
# lane?) pairs). Delays are drawn from a few values so that ties are common.
DELAYS = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 2.5])
CHILD = st.tuples(DELAYS, st.booleans())
PLAN = st.lists(st.tuples(DELAYS, st.booleans(), st.lists(CHILD, max_size=3)), min_size=1, max_size=25)


def _order(plan: list, lane_allowed: bool) -> list[tuple[str, float]]:
    """The (name, time) of every callback of ``plan`` in the order they ran; each on the lane where the plan
    says so and ``lane_allowed``, else a SimPy event."""
    env = simpy.Environment()
    lane = Lane(env)
    seen: list[tuple[str, float]] = []

    def book(name: str, delay: float, on_lane: bool, children: list) -> None:
        def run(_: object) -> None:
            seen.append((name, env.now))
            for j, (d, l2) in enumerate(children):
                book(f"{name}.{j}", d, l2, [])

        if on_lane and lane_allowed:
            lane.at(env.now + delay, run)
        else:
            later(env, delay, run)

    for i, (delay, on_lane, children) in enumerate(plan):
        book(str(i), delay, on_lane, children)
    env.run(until=10.0)
    return seen


@settings(max_examples=300, deadline=None)
@given(PLAN)
def test_the_lane_runs_callbacks_in_simpys_order(plan: list) -> None:
    assert _order(plan, lane_allowed=True) == _order(plan, lane_allowed=False)


def test_a_lane_without_simpys_internals_books_events() -> None:
    env = simpy.Environment()
    lane = Lane(env)
    lane.queue = None  # what the lane does when the environment is not the SimPy it knows
    seen: list[float] = []
    lane.at(2.0, lambda _: seen.append(env.now))
    lane.at(1.0, lambda _: seen.append(env.now))
    env.run()
    assert seen == [1.0, 2.0]


def _express_used(path) -> bool:
    """Whether any region's first tries can take the express lane on the request engine."""
    scenario = sim.load_scenario(path)
    policies, groups = scenario.policies, scenario.topology.databases
    if policies.server.lifo_when_waiting is not None or policies.client.breaker is not None \
            or all(t.dependencies for t in scenario.workload.requests.values()) or any(not g.regions for g in groups):
        return False
    with_databases = {r for g in groups for r in g.regions}
    return any(r.id not in with_databases for r in scenario.topology.regions)


def _fingerprint(result: sim.Result) -> str:
    summary = {k: v for k, v in result.summary.items() if k != "manifest"}
    return json.dumps([summary, result.events, result.timeseries], sort_keys=True, default=str)


@pytest.mark.parametrize("path", [pytest.param(p, id=key(p), marks=group(p)) for p in SHIPPED if _express_used(p)])
def test_the_express_lane_gives_the_general_paths_run(path, monkeypatch) -> None:
    express = run_shipped(path, engine="requests")
    monkeypatch.setattr(RequestEngine, "EXPRESS", False)
    general = sim.run(sim.load_scenario(path, {"engine": "requests"}))
    assert _fingerprint(express) == _fingerprint(general)
