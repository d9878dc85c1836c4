"""Autoscaling with lag (``topology.datacenters[].servers[].autoscale``, :mod:`sim.autoscale`): the YAML
fields, the spares, where target tracking settles, the lags, the hysteresis, both engines.

The contrast a fast and a slow autoscaler make against a growing load is in ``tests/test_mechanisms.py``
(``autoscaling.yaml``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

import sim
from sim.errors import ScenarioError
from sim.planner import refusals
from tests.conftest import cause_chain, scenario_from

ENGINES = ["requests", "flow"]


def one_pool(autoscale: dict[str, Any] | None, *, count: int = 2, peak: str = "50/s", duration: str = "20m",
             engine: str = "requests", **changes: Any) -> sim.Scenario:
    """One region, one datacenter, one group of ``count`` servers (4 workers, 100 ms: 40 requests a second
    each) with ``autoscale``; no retries, so the offered load is the users' own."""
    group: dict[str, Any] = {"id": "web", "count": count, "workers": 4, "service_time": "100ms", "queue_limit": 1000}
    if autoscale is not None:
        group["autoscale"] = autoscale
    base = {
        "name": "autoscale", "seed": 3, "duration": duration, "engine": engine,
        "topology": {"regions": [{"id": "users", "datacenters": {"dc": "10ms"}}],
                     "datacenters": [{"id": "dc", "servers": [group]}]},
        "workload": {"regions": {"users": {"peak": peak}}},
        "policies": {"client": {"timeout": "30s", "retries": 0}},
    }
    return scenario_from(changes, base)


FAST = {"max": 8, "detection": "30s", "provisioning": "30s", "scale_in_after": "2m", "drain": "10s"}


def of(result: sim.Result, kind: str) -> list[dict]:
    return [e for e in result.events if e["kind"] == kind]


def running_at_end(result: sim.Result) -> int:
    return result.datacenter_series[-1]["up"]


def test_autoscale_is_validated_at_load_with_its_line():
    cases = [
        ({"max": 1}, "autoscale.max is below count (got max 1, count 2); expected at least the servers the "
                     "group starts with"),
        ({"max": 8, "min": 3}, "autoscale.min is above count (got min 3, count 2); the group starts with count "
                               "servers"),
        ({"max": 8, "interval": "1m", "detection": "30s"}, "interval is longer than detection (got interval 1m, "
                                                           "detection 30s); expected at most detection"),
    ]
    for autoscale, message in cases:
        with pytest.raises(ScenarioError) as info:
            one_pool(autoscale)
        [problem] = info.value.problems
        assert str(problem).startswith("test.yaml:"), problem
        assert message in str(problem), problem
    with pytest.raises(ScenarioError, match=r"autoscale\.target: .*expected"):
        one_pool({"max": 4, "target": "0%"})


def test_the_planner_refuses_autoscaling_with_its_path():
    [(path, message)] = refusals(one_pool(FAST))
    assert path == ("topology", "datacenters", 0, "servers", 0, "autoscale")
    assert "prices fixed fleets only" in message


def test_spares_count_against_the_limits():
    with pytest.raises(ScenarioError, match=r"too many servers for one run \(got 9"):
        one_pool({"max": 9}, limits={"max_servers": 8})


@pytest.mark.parametrize("engine", ENGINES)
def test_spares_stay_parked_take_no_traffic_and_are_no_faults_target(engine: str):
    """A light load: nothing scales; the spares never run, and a fault on every server hits the two that do."""
    result = sim.run(one_pool(FAST, peak="20/s", duration="10m", engine=engine,
                              faults=[{"id": "all", "kind": "server_crash", "target": {"groups": ["web"]},
                                       "at": "5m", "duration": "30s"}]))
    assert not of(result, "scaled_out") and not of(result, "server_launched")
    assert {e["node"] for e in of(result, "server_down")} == {"web-01", "web-02"}
    assert [row["up"] for row in result.datacenter_series if row["time"] < 300] == [2] * 5
    assert {row["servers"] for row in result.datacenter_series} == {8}  # the datacenter holds the spares
    assert not of(result, "panic")  # two of eight in rotation is the whole fleet, not a quarter of it


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("count", "peak"), [(1, "64/s"), (6, "64/s"), (1, "112/s")])
def test_target_tracking_settles_where_its_rule_says(engine: str, count: int, peak: str):
    """A steady load a = lambda * S busy workers: the fleet n stops growing once a / (4 n) <= target (1 +
    tolerance) and stops shrinking at ceil(a / (4 target)); both 3 at 6.4 workers, both 5 at 11.2. From
    one server (saturated) it grows by at most 1 / target a decision; from six it shrinks after the
    hysteresis."""
    a = float(peak.removesuffix("/s")) * 0.1
    expected = math.ceil(a / (4 * 0.6))
    assert expected == math.ceil(a / (4 * 0.66))
    result = sim.run(one_pool({**FAST, "min": 1}, count=count, peak=peak, duration="15m", engine=engine))
    assert running_at_end(result) == expected
    assert result.datacenter_series[-1]["healthy"] == expected
    grown = len(of(result, "server_launched")) - len(of(result, "server_retired"))
    assert count + grown == expected
    if count == 1:
        for e in of(result, "scaled_out"):  # at most 1 / target more servers per decision
            before, after = (int(x) for x in e["detail"].split(": ")[1].split(" servers")[0].split(" -> "))
            assert after <= math.ceil(before / 0.6)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_lags_add_up_and_the_launch_points_at_the_surge(engine: str):
    """A surge at 2 min doubles 40/s on two servers: the utilisation crosses 66% at once; the decision
    needs detection's worth of samples after it (the window is full from 30 s on, its mean crosses in
    the window after the surge), the launch comes provisioning later, and the cascade reads
    server_launched <- scaled_out <- surge <- fault_start."""
    autoscale = {**FAST, "detection": "1m", "provisioning": "2m", "scale_in_after": "1h"}
    result = sim.run(one_pool(autoscale, peak="40/s", duration="10m", engine=engine,
                              faults=[{"id": "rush", "kind": "traffic_surge", "target": {"ids": ["users"]},
                                       "multiplier": 2, "at": "2m", "duration": "8m"}]))
    first = of(result, "scaled_out")[0]
    assert 120 + 10 <= first["time"] <= 120 + 60  # the mean of six samples passes 66% within the window
    launched = of(result, "server_launched")
    assert launched and min(e["time"] for e in launched) == first["time"] + 120
    chain = cause_chain(result, launched[0])  # through the overload the surge made, when one was seen first
    assert chain[:2] == ["server_launched", "scaled_out"] and chain[-2:] == ["surge", "fault_start"], chain
    assert not of(result, "scaled_in")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_short_hysteresis_flaps_and_a_long_one_holds(engine: str):
    """The load swings between 30% and 100% of its peak every four minutes: with one minute of hysteresis
    the autoscaler retires servers in every trough and launches them again in every crest; with ten it
    keeps what a crest needs (ten busy workers: 5 servers at 60%) and, once grown, launches no more."""
    swings = [[f"{4 * k}m", 0.3 if k % 2 == 0 else 1.0] for k in range(0, 16)]
    swings = [[p, f] for t, f in swings for p in (t, f"{int(t[:-1]) + 3}m")]

    def run(after: str) -> sim.Result:
        return sim.run(one_pool({**FAST, "scale_in_after": after, "min": 1}, peak="100/s", duration="1h",
                                engine=engine, workload={"regions": {"users": {"peak": "100/s", "profile": swings}}}))

    flapping, steady = run("1m"), run("10m")
    later = 15 * 60  # after the first crests: the fleet has grown
    assert len([e for e in of(flapping, "scaled_in") if e["time"] >= later]) >= 4
    assert len([e for e in of(flapping, "server_launched") if e["time"] >= later]) >= 6
    assert not [e for e in of(steady, "server_launched") if e["time"] >= later]
    assert min(row["up"] for row in steady.datacenter_series if row["time"] >= later) >= 5
