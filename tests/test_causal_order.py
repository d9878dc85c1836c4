"""A cause is never later than its effect, and every chain starts at a fault.

Unit tests of the rules that name the causes of emergent events (SLO breaches and recoveries, a
readmission, a traffic shift back) and of the story's account of a recovery that comes before the fault
behind it ended. Every shipped scenario's run is checked for the same properties in
``tests/test_scenarios.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.cascade import slo_events
from sim.metrics import attribute_windows
from sim.trace import Trace
from tests.shipped import FLOW_SHIPPED, group, run_shipped


def test_a_breach_is_not_stamped_before_its_cause():
    """Quickstart on main: 'slo breach at 10:00' caused by 'ejected at 10:10' (the harm was inside the window)."""
    t = Trace()
    # no harm before the window [600, 660) starts; the fault starts 10 s into it
    t.record(610.0, "fault_start", "crash", fault="crash")
    t.record(615.0, "crashed", "mbx-we-03", 0)
    t.record(650.0, "ejected", "mbx-we-03", 1)
    ok = np.array([[True] * 10 + [False] + [True]])
    slo_events(t, ["europe"], ok, 60.0, {10: ["crash"]})
    breach, back = t.records[-2:]
    assert breach.kind == "slo_breach" and breach.cause == 0  # the first harm inside, not the latest
    assert breach.time == 610.0
    assert back.kind == "slo_recovered" and back.time == 660.0 >= breach.time


def test_harm_already_under_way_at_the_window_start_is_the_cause():
    t = Trace()
    t.record(0.0, "fault_start", "f", fault="f")
    t.record(30.0, "server_down", "a", 0)
    t.record(70.0, "ejected", "b", 0)
    slo_events(t, ["r"], np.array([[True, False, True]]), 60.0, {0: ["f"], 1: ["f"]})
    breach = t.records[-2]
    assert (breach.time, t.records[breach.cause].kind) == (60.0, "server_down")


def test_a_window_whose_requests_fail_at_a_fault_just_after_it_is_that_fault_s():
    """failover-overload on main: a breach at 0:04:00 with no cause, the outage starting at 0:05:00 — the
    window's requests were still in flight when it began."""
    t = Trace()
    t.record(300.0, "fault_start", "west-dark", fault="west-dark")
    t.record(300.0, "datacenter_down", "west", 0)
    ok = np.array([[True] * 4 + [False, False, True]])
    slo_events(t, ["west-users"], ok, 60.0, {4: ["west-dark"], 5: ["west-dark"]}, reach=37.0)
    breach, back = t.records[-2:]
    assert breach.cause == 0 and breach.time == 300.0 and breach.fault == "west-dark"
    assert back.time == 360.0
    spans = {"west-dark": [(300.0, 900.0)]}
    assert attribute_windows(spans, ok[0] == False, 60.0, reach=37.0) == {"west-dark": [4, 5]}  # noqa: E712
    # beyond a request's life the window is not the fault's
    assert attribute_windows(spans, np.array([False] * 3 + [True]), 60.0, reach=37.0) == {"west-dark": []}


def test_a_recovery_right_after_a_late_breach_is_not_before_it():
    t = Trace()
    t.record(310.0, "fault_start", "f", fault="f")
    t.record(310.0, "datacenter_down", "dc", 0)
    slo_events(t, ["r"], np.array([[True] * 4 + [False, True]]), 60.0, {4: ["f"]}, reach=37.0)
    breach, back = t.records[-2:]
    assert breach.time == 310.0 and back.time == 310.0 and back.cause == breach.id


@settings(max_examples=60, deadline=None)
@given(
    harm=st.lists(st.tuples(st.floats(0, 600), st.sampled_from(["a", "b"])), min_size=1, max_size=12),
    ok=st.lists(st.booleans(), min_size=10, max_size=10),
)
def test_no_slo_event_is_earlier_than_its_cause(harm, ok):
    t = Trace()
    starts = {f: t.record(0.0, "fault_start", f, fault=f) for f in ("a", "b")}
    for time, fault in sorted(harm):
        t.record(time, "server_down", "s", starts[fault])
    active = {w: ["a", "b"] for w in range(10)}
    slo_events(t, ["r"], np.array([ok]), 60.0, active, reach=20.0)
    for rec in t.records:
        if rec.cause is not None:
            assert t.records[rec.cause].time <= rec.time, (rec, t.records[rec.cause])


def test_a_recovery_before_the_fault_ends_says_why():
    """Monday morning on main: 'Recovered (1:20)' listed before 'Rollback (1:36)' with no word of why. Recovery
    stays what users saw; the story names the faults still active and what changed just before."""
    import sim
    from sim.report.story import tell
    from tests.conftest import scenario_from

    scenario = scenario_from({"slo": {"availability": "99%", "window": "1m"},
                              "faults": [{"id": "dark", "kind": "datacenter_outage", "at": "2m", "duration": "6m",
                                          "target": {"datacenters": ["dc-a"]}}]})
    story = tell(sim.run(scenario))
    recovered = next(m for m in story.milestones if m.label == "Recovered")
    assert recovered.time is not None and recovered.time < 480.0  # users served from dc-b before dc-a is back
    assert "while dark (until 0:08:00) still active" in recovered.text
    assert "4 ejected, 1 traffic shift" in recovered.text
    removed = next(m for m in story.milestones if m.label == "Trigger removed")
    assert "still active" not in removed.text and removed.time == 480.0


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=group(p)) for p in FLOW_SHIPPED])
def test_on_the_flow_engine_no_cause_comes_after_its_effect(path):
    """Every shipped scenario on the flow engine (the request engine's runs: tests/test_scenarios.py); the run
    is the one the other modules read (tests/shipped.py)."""
    result = run_shipped(path, engine="flow")
    by_id = {e["id"]: e for e in result.events}
    caused = {e["cause"] for e in result.events}
    for e in result.events:
        if e["cause"] is not None:
            assert by_id[e["cause"]]["time"] <= e["time"], (e, by_id[e["cause"]])
        elif e["kind"] != "fault_start":
            assert e["id"] not in caused and e["kind"] not in ("slo_breach", "traffic_shift", "readmitted"), e
