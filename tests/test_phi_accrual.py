"""Phi-accrual failure detection (``load_balancer.health_check.phi_accrual``): the suspicion level against
its formula, the detector's heartbeat history, the YAML field, and the health checks on both engines.

The trade-off it offers under load (detection time against false ejections) is held in
``tests/test_mechanisms.py`` on ``scenarios/mechanisms/phi-accrual.yaml``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.detect import PhiAccrual, phi
from sim.errors import ScenarioError
from tests.conftest import scenario_from

# The standard normal's upper tail Q(x) = 1 - Phi(x), from a printed table (Abramowitz & Stegun 26.2),
# independent of the erfc the code uses.
TAIL = {0.0: 0.5, 1.0: 0.158655254, 2.0: 0.022750132, 3.0: 0.001349898, 4.0: 3.16712418e-05,
        6.0: 9.86587646e-10}


@pytest.mark.parametrize("x", sorted(TAIL))
@pytest.mark.parametrize("mean, std", [(1.0, 0.1), (5.0, 0.5), (0.25, 0.05)])
def test_phi_is_minus_log10_of_the_normal_tail(x: float, mean: float, std: float):
    """phi(t) = -log10(1 - F(t)), F the normal CDF of the gaps (Hayashibara et al. 2004, eq. 1 and 3)."""
    assert phi(mean + x * std, mean, std) == pytest.approx(-math.log10(TAIL[x]), rel=1e-8)


def test_phi_grows_with_the_wait_and_is_infinite_past_the_floats():
    levels = [phi(t, 1.0, 0.2) for t in np.linspace(0.0, 5.0, 51)]
    assert all(a < b for a, b in zip(levels, levels[1:], strict=False))
    assert phi(1.0 + 40 * 0.2, 1.0, 0.2) == math.inf


def feed(d: PhiAccrual, delays: list[float], start: float = 0.0, interval: float = 1.0) -> float:
    """One heartbeat a second to server 0 of ``d``, answered after each delay; return the time of the last."""
    t = start
    for delay in delays:
        d.beat(t, np.array([True]), np.array([delay]))
        t += interval
    return t - interval


def test_the_detector_uses_the_mean_and_deviation_of_the_last_window_of_gaps():
    d = PhiAccrual(1, threshold=8.0, window=4, min_std=0.01, expected=1.0)
    delays = [0.0, 0.5, 0.1, 0.9, 0.2, 0.3]  # gaps 1.5, 0.6, 1.8, 0.3, 1.1; the window keeps the last 4
    last = feed(d, delays)
    arrivals = [t + w for t, w in enumerate(delays)]
    # the heartbeat sent at 5 s arrives at 5.3 s; at 5 s the latest arrival is 4.2 s
    assert d.last[0] == pytest.approx(arrivals[-2])
    now = last + 0.9  # between beats: the detector's level at any time
    heard = np.diff(arrivals[:-1])[-4:]  # the gaps between the heartbeats arrived by then, the last 4
    assert d.phi_at(now)[0] == pytest.approx(phi(now - arrivals[-2], float(heard.mean()), float(heard.std())))


def test_regular_heartbeats_are_judged_against_the_floor_and_a_new_history_is_primed():
    d = PhiAccrual(1, threshold=8.0, window=10, min_std=0.2, expected=1.0)
    assert d.phi_at(0.0)[0] == 0.0  # nothing heard yet: no suspicion
    feed(d, [0.0])
    assert d.phi_at(2.0)[0] == pytest.approx(phi(2.0, 1.0, 0.25))  # primed: mean 1 s, deviation 1/4 of it
    feed(d, [0.0] * 5, start=1.0)
    assert d.phi_at(6.5)[0] == pytest.approx(phi(1.5, 1.0, 0.2))  # gaps all 1 s: the floor


def test_a_crash_loses_the_heartbeats_on_their_way_and_a_restart_starts_afresh():
    d = PhiAccrual(1, threshold=8.0, window=10, min_std=0.1, expected=1.0)
    feed(d, [0.4] * 5)  # sent at 0..4 s, arriving 0.4 s later; the one sent at 4 s is on its way at 4 s
    d.beat(5.0, np.array([False]), np.array([0.0]), down_since=np.array([4.3]))  # went down before 4.4 s
    assert d.last[0] == pytest.approx(3.4)
    assert d.beat(6.0, np.array([False]), np.array([0.0]), down_since=np.array([4.3]))[0]  # 2.6 s silent
    d.beat(7.0, np.array([True]), np.array([0.0]))  # back up: a new history, one heartbeat heard
    assert d.filled[0] == 0 and d.last[0] == 7.0 and d.phi_at(7.5)[0] == 0.0


@pytest.mark.parametrize("field, value, message", [
    ("threshold", 0.1, "policies.load_balancer.health_check.phi_accrual.threshold: "),
    ("window", 1, "policies.load_balancer.health_check.phi_accrual.window: "),
    ("min_std", "0s", "policies.load_balancer.health_check.phi_accrual.min_std: "),
])
def test_phi_accrual_is_validated_at_load_with_its_line(field, value, message):
    with pytest.raises(ScenarioError) as info:
        scenario_from({"policies": {"load_balancer": {"health_check": {"phi_accrual": {field: value}}}}})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:") and message in str(problem)


@pytest.mark.parametrize("engine", ["requests", "flow"])
def test_health_checks_eject_a_crashed_server_on_phi_and_readmit_it(engine: str):
    scenario = scenario_from({
        "engine": engine, "duration": "3m",
        "policies": {"load_balancer": {"health_check": {"interval": "500ms", "healthy_threshold": 2,
                                                        "phi_accrual": {"threshold": 8}}}},
        "faults": [{"id": "down", "kind": "server_crash", "at": "60.2s", "duration": "30s",
                    "target": {"ids": ["a-01"]}}],
    })
    events = sim.run(scenario).events
    ejected = [e for e in events if e["kind"] == "ejected"]
    readmitted = [e for e in events if e["kind"] == "readmitted"]
    assert [e["node"] for e in ejected] == ["a-01"] and [e["node"] for e in readmitted] == ["a-01"]
    # Idle servers answer every 500 ms on the dot, so the floor (100 ms) is the deviation. The last heartbeat
    # came at 60.0 s; at 61.0 s it is 1 s old, 5 deviations past the mean gap (phi 6.5 < 8); at 61.5 s 10
    # (phi 23): ejected then.
    assert ejected[0]["time"] == 61.5 and ejected[0]["detail"] == "phi 23.1 >= 8 (down)"
    assert readmitted[0]["time"] == 90.5 + 0.5  # up at 90.2 s; two sweeps below the threshold: 90.5 s, 91 s
