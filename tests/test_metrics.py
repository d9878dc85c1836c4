"""Summary arithmetic: nines, fault attribution."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.metrics import attribute_windows, nines


def test_nines():
    assert nines(0.999, 10**6) == 3.0
    assert nines(1.0, 999) == 3.0  # capped by what 999 requests can show
    assert nines(0.0, 10) == 0.0


def test_breached_windows_go_to_active_faults_then_to_the_last_one_ended():
    breached = np.array([False, True, True, True, False, True])
    intervals = {"outage": [(60.0, 180.0)], "blip": [(130.0, 135.0)], "late": [(350.0, 355.0)]}
    owned = attribute_windows(intervals, breached, 60.0)
    assert owned == {"outage": [1, 2, 3], "blip": [2], "late": [5]}


def test_a_short_random_fault_does_not_steal_a_long_outage_downtime(make_scenario):
    scenario = make_scenario(
        {
            "duration": "12m",
            "topology": {"dependencies": [{"id": "directory", "service_time": "2ms"}]},
            "workload": {"requests": {"read": {"share": 1.0, "dependencies": ["directory"]}}},
            "policies": {"client": {"retries": 0}},
            "faults": [
                {"id": "dir-down", "kind": "dependency_outage", "target": {"ids": ["directory"]}, "at": "2m",
                 "duration": "5m"},
                {"id": "flaky", "kind": "server_crash", "target": {"ids": ["b-01"]}, "mtbf": "20s", "mttr": "1s"},
            ],
        }
    )
    faults = {f["id"]: f for f in sim.run(scenario).summary["faults"]}
    assert faults["dir-down"]["downtime_minutes"] == pytest.approx(5.0)
    assert faults["dir-down"]["recovered"] and faults["dir-down"]["time_to_recover"] == pytest.approx(300.0)
    assert faults["flaky"]["occurrences"] > 10
