"""Reading cascades back from the event log."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.cascade import chain, depth, descendants, recovery_after, roots, slo_events
from sim.trace import Trace


@pytest.fixture
def log() -> Trace:
    t = Trace()
    f = t.record(0.0, "fault_start", "update", fault="update")
    a = t.record(1.0, "server_down", "m-03", f)
    b = t.record(1.0, "database_unavailable", "db-42", a)
    t.record(31.0, "failover", "db-42", b)
    t.record(5.0, "ejected", "m-03", a)
    t.record(9.0, "server_down", "other", None, fault="noise")
    return t


def test_descendants_depth_chain_and_roots(log):
    assert descendants(log, 0) == [1, 2, 4, 3]
    assert depth(log, 0) == 3
    assert [r.kind for r in chain(log, 3)] == ["failover", "database_unavailable", "server_down", "fault_start"]
    assert [r.id for r in roots(log)] == [0]
    assert all(r.fault == "update" for r in log.records[:5])


@pytest.mark.parametrize(
    ("ok", "t_end", "expected"),
    [
        ([True, False, False, True, True], 60.0, (True, 120.0)),  # back from window 3 (t=180)
        ([True, False, True, True, True], 120.0, (True, 0.0)),    # already fine after the fault
        ([True, False, False, False, False], 60.0, (False, None)),  # still down at the end: metastable
        ([True, True, False], 200.0, (True, None)),               # fault lasted to the end
    ],
)
def test_recovery_after(ok, t_end, expected):
    assert recovery_after(np.array(ok), t_end, 60.0) == expected


def test_slo_breach_hangs_off_the_active_fault(log):
    ok = np.array([[True, False, False, True]])
    slo_events(log, ["europe"], ok, 60.0, {1: ["update"], 2: ["update"]})
    breach, back = log.records[-2:]
    assert (breach.kind, breach.time, breach.node) == ("slo_breach", 60.0, "europe")
    # The latest harmful event of the active fault: the ejection (a failover is a mitigation, not harm).
    assert log.records[breach.cause].kind == "ejected"
    assert breach.fault == "update"
    assert (back.kind, back.time, back.cause) == ("slo_recovered", 180.0, breach.id)


def test_run_summary_has_blast_radius_depth_and_recovery(make_scenario):
    scenario = make_scenario(
        {
            "topology": {"databases": [{"id": "db", "count": 8, "placement": [{"datacenter": "dc-a", "copies": 2}]}],
                         "regions": [{"id": "users", "users": 1000, "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}]},
            "policies": {"client": {"retries": 0}},
            "faults": [{"id": "boom", "kind": "server_crash", "target": {"ids": ["a-01"]},
                        "at": "2m", "duration": "3m"}],
        }
    )
    s = sim.run(scenario).summary
    fault = s["faults"][0]
    assert fault["blast_radius"]["servers"] == 1
    assert fault["blast_radius"]["databases"] == 2
    assert 0 < fault["blast_radius"]["users"] < 1000
    assert fault["cascade_depth"] >= 3  # fault → crash → database unavailable → failover / breach
    assert s["recovery"] == {"last_fault_end": 300.0, "recovered": True, "metastable": False, "time_to_recover": 0.0}
