"""CoDel on a server's queue (``policies.server.codel``): the control law, the YAML field, the engines.

The request engine's CoDel is held to RFC 8289's pseudo-code and to its target under overload in
``tests/validation/test_codel.py``; its defence against a retry storm in ``tests/test_mechanisms.py``.
"""

from __future__ import annotations

import math

import pytest

import sim
from sim.errors import ScenarioError
from sim.policies import CoDel, unsupported_on_flow
from sim.scenario import CoDelPolicy
from tests.conftest import scenario_from


def test_the_first_drop_comes_an_interval_after_the_wait_went_above_target():
    c = CoDel(CoDelPolicy(target=0.005, interval=0.1))
    assert not c.take(1.0, 0.006, 3)  # above target: the clock starts
    assert not c.take(1.099, 0.2, 3)
    assert c.take(1.1, 0.2, 3) and c.dropping and c.count == 1
    c2 = CoDel(CoDelPolicy(target=0.005, interval=0.1))
    assert not c2.take(1.0, 0.006, 3)
    assert not c2.take(1.05, 0.004, 3)  # one request under target: the clock stops
    assert not c2.take(1.1, 0.2, 3) and not c2.take(1.19, 0.2, 3) and c2.take(1.21, 0.2, 3)


def test_an_empty_queue_behind_is_no_standing_queue():
    c = CoDel(CoDelPolicy(target=0.005, interval=0.1))
    assert not any(c.take(t / 100, 1.0, 0) for t in range(100))  # waited long, but nothing waits behind


@pytest.mark.parametrize("drops", [5, 20])
def test_drops_come_interval_over_the_square_root_of_count_apart(drops: int):
    """A wait that stays above target: the k-th drop of the state comes interval / sqrt(k - 1) after the one
    before (RFC 8289's control law), one request served after each drop."""
    c = CoDel(CoDelPolicy(target=0.005, interval=0.1))
    times = []
    t = 0.0
    while len(times) < drops:
        if c.take(t, 1.0, 10):
            times.append(t)
        t = round(t + 0.0001, 6)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert times[0] == pytest.approx(0.1)
    for k, gap in enumerate(gaps, start=1):
        assert gap == pytest.approx(0.1 / math.sqrt(k), abs=2e-4)  # to the 0.1 ms the requests come at


def test_a_state_entered_again_soon_starts_at_the_rate_it_had_reached():
    c = CoDel(CoDelPolicy(target=0.005, interval=0.1))
    t, dropped = 0.0, 0
    while dropped < 6:
        dropped += c.take(t, 1.0, 10)
        t = round(t + 0.001, 6)
    assert not c.take(t, 0.001, 10) and not c.dropping  # the wait is back under target
    t += 0.2  # soon: well within 16 intervals
    while not c.take(t, 1.0, 10):
        t = round(t + 0.001, 6)
    assert c.count == 5  # the drops of the last state (count - lastcount), not 1
    c.reset()
    assert (c.count, c.dropping, c.first_above) == (0, False, 0.0)


def test_codel_is_validated_at_load_with_its_line():
    with pytest.raises(ScenarioError) as info:
        scenario_from({"policies": {"server": {"codel": {"target": "200ms", "interval": "100ms"}}}})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith("policies.server.codel: target is not shorter than interval (got target 200ms, "
                                 "interval 100ms; expected target < interval, typically 5-10% of it)")
    with pytest.raises(ScenarioError, match=r"policies\.server\.codel\.target: not a duration"):
        scenario_from({"policies": {"server": {"codel": {"target": "soon"}}}})
    with pytest.raises(ScenarioError, match=r"policies\.server\.codel\.interval: .*more than 0s"):
        scenario_from({"policies": {"server": {"codel": {"interval": "0s", "target": "0s"}}}})


def test_the_flow_engine_refuses_codel_with_its_line():
    codel = {"policies": {"server": {"codel": {"target": "5ms", "interval": "100ms"}}}}
    scenario = scenario_from(codel)
    [(path, message)] = unsupported_on_flow(scenario)
    assert path == ("policies", "server", "codel")
    with pytest.raises(ScenarioError) as info:
        scenario_from({**codel, "engine": "flow"})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith(f"policies.server.codel: {message}")
    assert message.startswith("CoDel has no fluid view") and "use engine: requests, or codel: null" in message


def test_a_dropped_request_is_an_error_its_client_retries():
    """Two servers of one worker each at 1.5 times their capacity: CoDel drops at the head, the client
    retries the drop at once; every drop is an attempt answered with an error (counted as shed)."""
    scenario = scenario_from({
        "duration": "1m",
        "topology": {"datacenters": [
            {"id": "dc-a", "servers": [{"id": "a", "count": 2, "workers": 1, "service_time": "20ms"}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 1, "workers": 1, "service_time": "20ms"}]}]},
        "workload": {"regions": {"users": {"peak": "150/s"}}},
        "policies": {"client": {"timeout": "10s", "retries": 1, "backoff": {"kind": "none"}},
                     "load_balancer": {"health_check": {"enabled": False}},
                     "server": {"codel": {"target": "20ms", "interval": "100ms"}}},
    })
    result = sim.run(scenario)
    counts = result.summary["counts"]
    assert counts["shed"] > 0 and counts["errors"] == counts["shed"] and counts["timeouts"] == 0
    assert counts["retries"] > 0 and counts["failed"] <= counts["shed"]
    assert result.summary["latency"]["p50"] < 0.2  # served from a short queue, not a growing one
    started = [e for e in result.events if e["kind"] == "codel_dropping"]
    assert {e["node"] for e in started} == {"a-01", "a-02"}
