"""Bulkheads (``policies.server.bulkheads``): the compartments of a server's workers, the YAML field, the
engines. Their defence against a slow dependency is in ``tests/test_mechanisms.py`` (``bulkheads.yaml``).
"""

from __future__ import annotations

import pytest
import simpy

import sim
from sim.engine.stations import Station
from sim.errors import ScenarioError
from sim.policies import unsupported_on_flow
from tests.conftest import scenario_from


def test_a_compartment_books_on_its_own_workers_and_queue():
    """Four workers: one reserved with room for one waiting request, three shared."""
    station = Station(simpy.Environment(), 0, "s", 4, None, lambda: 1.0)
    station.partition([1], [1])
    assert station.admit(0.0, 10.0, part=1) == 10.0  # the reserved worker
    assert station.admit(0.0, 10.0, part=1) == 20.0  # waits for it, though three others are free
    assert station.admit(0.0, 10.0, part=1) == -1.0  # its queue of one is full: refused
    assert [station.admit(0.0, 1.0) for _ in range(4)] == [1.0, 1.0, 1.0, 2.0]  # the shared three
    assert station.wait(0.0) == 1.0 and station.first_free(1) == 20.0  # health checks see the shared part
    station.crash()
    station.restart(30.0)
    assert station.first_free(1) == 30.0 and station.admit(30.0, 1.0, part=1) == 31.0
    assert len(station.parts[0]) == 3  # type: ignore[index]
    with pytest.raises(ValueError, match="4 workers cannot hold compartments of \\[2, 2\\] and a shared one"):
        Station(simpy.Environment(), 0, "s", 4, None, lambda: 1.0).partition([2, 2], [None, None])


DEPENDENCY = {"topology": {"dependencies": [{"id": "directory", "workers": 4, "service_time": "20ms"}]},
              "workload": {"requests": {"sign_in": {"share": "20%", "dependencies": ["directory"]},
                                        "read": {"share": "80%"}}}}


def test_bulkheads_are_validated_at_load_with_their_line():
    with pytest.raises(ScenarioError) as info:
        scenario_from({**DEPENDENCY, "policies": {"server": {"bulkheads": {"directroy": {"workers": "25%"}}}}})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith("policies.server.bulkheads.directroy: no dependency 'directroy' (did you mean "
                                 "'directory'?); known: directory")
    with pytest.raises(ScenarioError) as info:
        scenario_from({**DEPENDENCY, "policies": {"server": {"bulkheads": {"directory": {"workers": "90%"}}}}})
    a, b = info.value.problems  # one per server group
    assert str(a).endswith("policies.server.bulkheads: server group 'a' (topology.datacenters[0].servers[0]) "
                           "has 4 workers: too few for bulkheads of 4 and a shared compartment of at least one")
    assert "server group 'b' (topology.datacenters[1].servers[0])" in str(b)
    with pytest.raises(ScenarioError) as info:
        scenario_from({**DEPENDENCY, "policies": {"server": {"bulkheads": {"directory": {"workers": "100%"}}}}})
    assert str(info.value.problems[0]).endswith(
        "policies.server: bulkheads take every worker (got 100% in all; expected less than 100%, so requests that "
        "call none of them have workers left)")
    with pytest.raises(ScenarioError, match=r"policies\.server: bulkheads cannot be combined with lifo_when_waiting"):
        scenario_from({**DEPENDENCY, "policies": {"server": {"bulkheads": {"directory": {"workers": "25%"}},
                                                             "lifo_when_waiting": "1s"}}})
    with pytest.raises(ScenarioError, match=r"policies\.server\.bulkheads\.directory\.queue_limit: too small"):
        scenario_from({**DEPENDENCY, "policies": {"server": {"bulkheads": {"directory": {"workers": "25%",
                                                                                          "queue_limit": -1}}}}})


def test_the_flow_engine_refuses_bulkheads_with_their_line():
    bulkheads = {"policies": {"server": {"bulkheads": {"directory": {"workers": "25%"}}}}}
    [(path, message)] = unsupported_on_flow(scenario_from({**DEPENDENCY, **bulkheads}))
    assert path == ("policies", "server", "bulkheads") and message.startswith("a bulkhead has no fluid view")
    with pytest.raises(ScenarioError) as info:
        scenario_from({**DEPENDENCY, **bulkheads, "engine": "flow"})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:") and str(problem).endswith(f"policies.server.bulkheads: {message}")


def test_a_dead_dependency_holds_only_its_bulkhead():
    """The directory answers in 2 s from the start and each call waits its 1 s timeout: without bulkheads the
    sign-ins' held workers (20/s × 1 s = 20 of the 16) starve the reads; with one worker of four per server
    kept for the directory, every read is served and only sign-ins fail."""
    base = {
        **DEPENDENCY, "duration": "2m",
        "topology": {**DEPENDENCY["topology"], "datacenters": [
            {"id": "dc-a", "servers": [{"id": "a", "count": 4, "workers": 4, "service_time": "20ms"}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 4, "workers": 4, "service_time": "20ms"}]}]},
        "workload": {**DEPENDENCY["workload"], "regions": {"users": {"peak": "100/s"}}},
        "faults": [{"id": "dir-slow", "kind": "dependency_slowdown", "target": {"ids": ["directory"]}, "at": "0s",
                    "duration": "2m", "factor": 100}],
    }
    client = {"timeout": "3s"}  # longer than the dependency's timeout: the server's worker waits it out
    sim_on = sim.run(scenario_from({**base, "policies": {"client": client, "server": {
        "dependency_timeout": "1s", "bulkheads": {"directory": {"workers": "25%", "queue_limit": 2}}}}}))
    sim_off = sim.run(scenario_from({**base, "policies": {"client": client, "server": {"dependency_timeout": "1s"}}}))
    on, off = sim_on.summary["impact"]["failed_by_type"], sim_off.summary["impact"]["failed_by_type"]
    assert on["read"] == 0 < on["sign_in"] == off["sign_in"]  # the same sign-ins fail
    assert off["read"] > 0.2 * sim_off.summary["requests"]  # 3,539 of the ~9,600 reads fail (seed 1)
    assert {e["node"] for e in sim_on.events if e["kind"] == "bulkhead_saturated"} == {f"a-0{k}" for k in range(1, 5)}
