"""Repair crews on random faults (``repair: {crews: N}``): validated at the edge, a FIFO crew queue, the same
failures on both engines, and the targets' own draws unchanged (common random numbers).

The crew queue lives in the fault's scheduler (``Renewals`` in ``sim/fault_base.py``), which ``sim.run`` starts the
same way whatever the engine; ``tests/validation/test_repairman.py`` checks it against the Markov model.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import pytest
import simpy

import sim
from sim.errors import ScenarioError
from sim.fault_base import Crews
from sim.reliability import expected_down
from sim.sizing import expected_load
from tests.conftest import scenario_from

CRASHES = {"id": "hw", "kind": "server_crash", "target": {"datacenters": ["dc-a"]}, "mtbf": "90s", "mttr": "40s"}


def scenario(repair: dict | None, engine: str = "requests") -> sim.Scenario:
    fault = dict(CRASHES, **({} if repair is None else {"repair": repair}))
    return scenario_from({"engine": engine, "duration": "10m", "faults": [fault]})


@cache
def fault_events(repair_crews: int | None, engine: str = "requests", seed: int = 3) -> tuple[dict, ...]:
    result = sim.run(scenario(None if repair_crews is None else {"crews": repair_crews}, engine), seed=seed)
    return tuple(e for e in result.events if e["kind"] in ("fault_start", "fault_end"))


# ---------------------------------------------------------------------------------------- at the edge

TEXT = """name: t
duration: 1h
topology:
  regions: [{id: users, datacenters: {dc: 0s}}]
  datacenters: [{id: dc, servers: [{id: srv, count: 3, workers: 1, service_time: 1ms}]}]
workload: {regions: {users: {peak: 1/s}}}
faults:
  - kind: server_crash
    TIMING
    repair: REPAIR
"""


@pytest.mark.parametrize(
    ("timing", "repair", "expected"),
    [
        (
            "mtbf: 1h\n    mttr: 5m", "{crews: 0}",
            "t.yaml:11:21: faults[0].repair.crews: too small (got 0, expected at least 1)",
        ),
        (
            "mtbf: 1h\n    mttr: 5m", "{crews: 1.5}",
            "t.yaml:11:21: faults[0].repair.crews: not a whole number (got 1.5, expected an integer)",
        ),
        (
            "mtbf: 1h\n    mttr: 5m", "{crews: true}",
            "t.yaml:11:13: faults[0].repair: crews: not a whole number (got true, expected an integer)",
        ),
        (
            "mtbf: 1h\n    mttr: 5m", "{crew: 2}",
            "t.yaml:11:13: faults[0].repair: missing required field 'crews'\n"
            "t.yaml:11:14: faults[0].repair.crew: unknown field 'crew' (did you mean 'crews'? allowed: crews)",
        ),
        (
            "at: 10m\n    duration: 5m", "{crews: 2}",
            "t.yaml:11:13: faults[0].repair: repair crews repair random failures: give it with mtbf and mttr, not "
            "with at (a scheduled fault ends after its duration)",
        ),
    ],
)
def test_bad_repair_is_refused_where_it_is_written(timing, repair, expected):
    with pytest.raises(ScenarioError) as info:
        sim.parse_scenario(TEXT.replace("TIMING", timing).replace("REPAIR", repair), "t.yaml")
    assert str(info.value) == expected


def test_repair_loads_and_defaults_to_unlimited():
    s = sim.parse_scenario(TEXT.replace("TIMING", "mtbf: 1h\n    mttr: 5m").replace("REPAIR", "{crews: 2}"))
    assert s.faults[0].repair is not None and s.faults[0].repair.crews == 2
    s = sim.parse_scenario(TEXT.replace("TIMING", "mtbf: 1h\n    mttr: 5m").replace("    repair: REPAIR\n", ""))
    assert s.faults[0].repair is None


# ---------------------------------------------------------------------------------------- the queue


def test_crews_hand_over_first_failed_first():
    env = simpy.Environment()
    crews = Crews(env, 1)
    assert crews.take() is None and crews.busy == 1
    first, second = crews.take(), crews.take()
    assert first is not None and second is not None and list(crews.waiting) == [first, second]
    crews.release()
    assert first.triggered and not second.triggered and crews.busy == 1
    crews.release()
    crews.release()
    assert second.triggered and crews.busy == 0 and not crews.waiting


def active_repairs(events: tuple[dict, ...]) -> list[tuple[dict, dict]]:
    """(start, end) of each failure of the run that was repaired before the end."""
    starts = {e["id"]: e for e in events if e["kind"] == "fault_start"}
    return [(starts[e["cause"]], e) for e in events if e["kind"] == "fault_end"]


@pytest.mark.parametrize("engine", ["requests", "flow"])
def test_one_crew_repairs_one_failure_at_a_time(engine):
    events = fault_events(1, engine)
    pairs = active_repairs(events)
    assert len(pairs) >= 5
    waited = [start for start, _ in pairs if "waiting for a repair crew (all 1 busy)" in start["detail"]]
    assert waited, "no failure waited for the crew: the run does not exercise the queue"
    # FIFO with one crew: repairs end in the order of the failures
    assert [start["time"] for start, _ in pairs] == sorted(start["time"] for start, _ in pairs)
    # a failure waits exactly when another failure of the fault is still being repaired
    for start, end in pairs:
        others = [s for s, e in pairs if s["time"] < start["time"] < e["time"]]
        assert ("waiting" in start["detail"]) == bool(others)
        assert ("for a crew" in end["detail"]) == bool(others)


def test_both_engines_draw_the_same_failures():
    def times(events):
        return [(e["kind"], e["node"], e["time"]) for e in events]

    assert times(fault_events(1, "requests")) == times(fault_events(1, "flow"))


def test_as_many_crews_as_targets_is_unlimited():
    def times(events):
        return [(e["kind"], e["node"], e["time"], e["detail"]) for e in events]

    assert times(fault_events(4)) == times(fault_events(None))  # dc-a has 4 servers


def test_same_seed_same_run():
    first = sim.run(scenario({"crews": 1}), seed=5)
    again = sim.run(scenario({"crews": 1}), seed=5)
    assert first.events == again.events and first.summary == again.summary


def test_each_target_keeps_its_own_up_times():
    """Common random numbers: a target's k-th up time is the same draw with one crew as with unlimited."""

    def up_times(events):
        out, last = defaultdict(list), defaultdict(float)
        for e in events:
            if e["kind"] == "fault_start":
                out[e["node"]].append(e["time"] - last[e["node"]])
            else:
                last[e["node"]] = e["time"]
        return out

    limited, unlimited = up_times(fault_events(1)), up_times(fault_events(None))
    assert sorted(limited) == sorted(unlimited)
    for node, ups in limited.items():
        k = min(len(ups), len(unlimited[node]))
        assert k >= 1 and ups[:k] == pytest.approx(unlimited[node][:k], rel=1e-9)
    assert fault_events(1) != fault_events(None)  # the crew did change the run


def test_sizing_counts_the_longer_surges_of_few_crews():
    """A random surge over two regions with one crew is active longer: expected_down(2, ..., 1) / 2 of the time."""
    two = {
        "topology": {"regions": [{"id": "users", "datacenters": {"dc-a": "10ms"}},
                                 {"id": "more", "datacenters": {"dc-b": "10ms"}}]},
        "workload": {"regions": {"users": {"peak": "50/s"}, "more": {"peak": "50/s"}}},
    }
    surge = {"id": "storm", "kind": "traffic_surge", "target": {}, "multiplier": 3, "mtbf": "1h", "mttr": "1h"}
    free = expected_load(scenario_from(dict(two, faults=[surge])))
    queued = expected_load(scenario_from(dict(two, faults=[dict(surge, repair={"crews": 1})])))
    assert free.base == queued.base
    assert free.users == pytest.approx(free.base * (1 + 2 * 0.5))
    assert queued.users == pytest.approx(queued.base * (1 + 2 * expected_down(2, 3600.0, 3600.0, 1) / 2))
    assert queued.users > free.users
