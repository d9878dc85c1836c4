"""Inter-datacenter links: the congestion model, the load estimate, congestion and partition faults."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import simpy
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim.errors import ScenarioError
from sim.network import RECOVERED_BELOW, Network, congestion
from sim.scenario import Link
from sim.trace import Trace
from tests.conftest import cause_chain, merge
from tests.shipped import group, run_shipped

MECHANISMS = Path(__file__).resolve().parents[1] / "scenarios" / "mechanisms"

# ------------------------------------------------------------------------------------------- the model

rhos = st.floats(0.0, 50.0, allow_nan=False)


@given(rhos, rhos)
def test_delay_and_loss_grow_with_utilisation(r1, r2):
    lo, hi = sorted((r1, r2))
    (d_lo, l_lo), (d_hi, l_hi) = congestion(lo, 0.008, 0.1), congestion(hi, 0.008, 0.1)
    assert d_lo <= d_hi <= 0.1
    assert l_lo <= l_hi < 1.0


@given(st.floats(0.0, 0.999, allow_nan=False))
def test_no_loss_below_capacity_and_mm1_wait(rho):
    delay, loss = congestion(rho, 0.008, 10.0)
    assert loss == 0.0
    assert delay == pytest.approx(0.008 * rho / (1 - rho))


@given(st.floats(1.0, 1e6, allow_nan=False))
def test_above_capacity_the_excess_is_lost_and_the_buffer_full(rho):
    delay, loss = congestion(rho, 0.008, 0.1)
    assert loss == pytest.approx(1.0 - 1.0 / rho)
    assert delay == 0.1


def test_continuous_at_capacity():
    below, at = congestion(1 - 1e-9, 0.008, 0.1), congestion(1.0, 0.008, 0.1)
    assert below[0] == pytest.approx(at[0]) and at[1] == 0.0


def network(capacity: str = "100Mbps", averaging: str = "1s") -> tuple[simpy.Environment, Network, Trace]:
    env, trace = simpy.Environment(), Trace()
    link = Link(between=("a", "b"), capacity=capacity, averaging=averaging)
    return env, Network(env, trace, [link], ["a", "b"]), trace


def test_load_estimate_converges_to_the_offered_rate():
    env, net, _ = network(averaging="2s")
    bits, gap = 800e3, 0.02  # 50 crossings/s of 100 kB: 40 Mbps
    for k in range(1, 1001):
        env.run(until=k * gap)
        net.cross(0, bits)
    assert net.utilisation(0) == pytest.approx(0.4, rel=0.03)
    assert net.between[1][0] == net.find(0, 1) == 0 and net.find(0, 0) == -1


def test_saturation_and_recovery_events_follow_the_load():
    env, net, trace = network(capacity="10Mbps")
    for k in range(1, 301):  # 100 crossings/s of 120 kbit: 12 Mbps, 20% over capacity, for 3 s
        env.run(until=k * 0.01)
        net.cross(0, 120e3)
    assert [r.kind for r in trace.records] == ["link_saturated"]
    env.run(until=10.0)  # nothing crosses: the estimate decays and the watcher notices
    kinds = [r.kind for r in trace.records]
    assert kinds == ["link_saturated", "link_recovered"]
    recovered = trace.records[1]
    assert recovered.cause == 0 and recovered.time <= 3 + math.log(1 / RECOVERED_BELOW) + 1.0 + 1e-9


def test_a_partitioned_link_loses_everything_and_stacks():
    env, net, trace = network()
    net.set_down(0, True, None)
    net.set_down(0, True, None)
    assert net.cross(0, 1e6) == (0.0, 1.0)
    net.set_down(0, False, None)
    assert net.links[0].down == 1 and [r.kind for r in trace.records] == ["link_down"]
    net.set_down(0, False, None)
    assert [r.kind for r in trace.records] == ["link_down", "link_up"]
    assert net.cross(0, 1e6)[1] == 0.0


# ------------------------------------------------------------------------------------------- scenarios

DETERMINISTIC = {"distribution": "deterministic", "mean": "20ms"}
CROSSING: dict = {
    "duration": "7m",
    "topology": {
        "datacenters": [
            {"id": "dc-a", "servers": [{"id": "a", "count": 4, "workers": 4, "service_time": DETERMINISTIC}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 4, "workers": 4, "service_time": DETERMINISTIC}]},
        ],
        # Users go to dc-a, their mailboxes live in dc-b: every request crosses the link.
        "databases": [{"id": "db", "count": 8, "placement": [{"datacenter": "dc-b"}]}],
    },
}
BASE_LATENCY = 0.010 + 0.030 + 0.020  # region to dc-a, the link, the mailbox server


def crossing(link: dict | None = None, faults: list | None = None) -> dict:
    links = [{"between": ["dc-a", "dc-b"], "capacity": "10Gbps", "latency": "30ms", **(link or {})}]
    return merge(CROSSING, {"topology": {"links": links}, "faults": faults or []})


def windows(result: sim.Result, lo: float, hi: float) -> list[dict]:
    return [r for r in result.timeseries if lo <= r["time"] < hi]




def test_traffic_within_capacity_sees_only_the_base_latency(make_scenario):
    result = sim.run(make_scenario(crossing()))
    s = result.summary
    assert s["availability"] == 1.0 and s["counts"]["timeouts"] == 0 and s["counts"]["link_lost"] == 0
    assert s["latency"]["p50"] == pytest.approx(BASE_LATENCY, abs=1e-4)
    assert not [e for e in result.events if e["kind"].startswith("link")]
    rows = result.link_series
    assert {r["link"] for r in rows} == {"dc-a~dc-b"} and len(rows) == 7
    assert all(r["crossings"] > 2500 and r["utilisation"] < 0.01 for r in rows)  # 50/s of 100 kB on 10 Gbps


@pytest.mark.parametrize(
    "congestion_fields, extra_delay",
    [({"capacity_factor": "30%"}, 0.1 / 0.3), ({"background": "90Mbps"}, 0.1)],
    ids=["capacity-cut", "background"],
)
def test_congestion_brings_delay_timeouts_and_retries_only_while_it_lasts(make_scenario, congestion_fields,
                                                                          extra_delay):
    fault = {"id": "cut", "kind": "congestion", "target": {"datacenters": ["dc-b", "dc-a"]},
             "at": "2m", "duration": "3m", **congestion_fields}
    result = sim.run(make_scenario(crossing({"capacity": "100Mbps"}, [fault])))  # 40 Mbps offered
    before, during, after = windows(result, 0, 120), windows(result, 120, 300), windows(result, 360, 420)
    for quiet in (before, after):
        assert all(r["timeouts"] == 0 and r["retries"] == 0 and r["availability"] == 1.0 for r in quiet)
        assert all(r["latency_p50"] < BASE_LATENCY + 0.01 for r in quiet)  # M/M/1 wait at 40%: 5 ms
    for r in during:
        assert r["timeouts"] > 0.2 * r["requests"] and r["retries"] > 0.2 * r["requests"]
        assert r["latency_p50"] == pytest.approx(BASE_LATENCY + extra_delay, abs=0.01)  # the full buffer
        assert 0.5 < r["availability"] < 1.0
    saturated = [e for e in result.events if e["kind"] == "link_saturated"]
    assert len(saturated) == 1 and saturated[0]["node"] == "dc-a~dc-b" and saturated[0]["time"] == 120
    assert saturated[0]["fault"] == "cut"
    assert cause_chain(result, saturated[0]) == ["link_saturated", "link_degraded", "fault_start"]
    recovered = [e for e in result.events if e["kind"] == "link_recovered"]
    assert len(recovered) == 1 and recovered[0]["cause"] == saturated[0]["id"] and recovered[0]["time"] == 300
    links = {r["time"]: r for r in result.link_series}
    assert all(links[t]["utilisation"] > 1.0 and links[t]["lost"] > 0 for t in (120, 180, 240))
    assert all(links[t]["lost"] == 0 for t in (0, 60, 360))
    assert result.summary["recovery"]["recovered"]
    assert result.summary["faults"][0]["affected"] == ["dc-a~dc-b"]


def test_partition_times_out_cross_datacenter_requests_and_ends_cleanly(make_scenario):
    fault = {"id": "split", "kind": "partition", "target": {"datacenters": ["dc-a", "dc-b"]},
             "at": "2m", "duration": "2m"}
    result = sim.run(make_scenario(crossing(faults=[fault])))
    kinds = [e["kind"] for e in result.events]
    down = next(e for e in result.events if e["kind"] == "link_down")
    up = next(e for e in result.events if e["kind"] == "link_up")
    assert (down["time"], up["time"]) == (120, 240)
    assert cause_chain(result, down) == ["link_down", "fault_start"] and up["fault"] == "split"
    assert "ejected" not in kinds and "traffic_shift" not in kinds  # health checks do not cross the link
    during = windows(result, 120, 180)[0]
    assert during["ok"] == 0 and during["errors"] == 0 and during["timeouts"] > 2 * during["requests"]
    assert all(r["availability"] == 1.0 for r in windows(result, 240, 420))
    assert all(r["timeouts"] == 0 for r in windows(result, 300, 420))
    assert result.summary["counts"]["link_down"] == 1 and result.summary["recovery"]["recovered"]
    assert [r["capacity_bps"] for r in result.link_series if r["time"] in (120, 180)] == [0.0, 0.0]


def test_random_partitions_come_and_go(make_scenario):
    fault = {"kind": "partition", "target": {"datacenters": ["dc-a", "dc-b"]}, "mtbf": "2m", "mttr": "20s"}
    result = sim.run(make_scenario(crossing(faults=[fault])))
    downs = [e for e in result.events if e["kind"] == "link_down"]
    ups = [e for e in result.events if e["kind"] == "link_up"]
    assert downs and len(ups) >= len(downs) - 1
    assert 0.5 < result.summary["availability"] < 1.0


# ------------------------------------------------------------------------------------------- validation


def problems(make_scenario, fault: dict) -> list[str]:
    base = {"kind": "partition", "at": "1m"}
    with pytest.raises(ScenarioError) as info:
        make_scenario({"topology": {"datacenters": [
            {"id": "dc-a", "servers": [{"id": "a", "count": 1, "service_time": "20ms"}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 1, "service_time": "20ms"}]},
            {"id": "dc-c", "servers": [{"id": "c", "count": 1, "service_time": "20ms"}]},
        ]}, "faults": [{**base, **fault}]})
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    "fault, expected",
    [
        ({"target": {"datacenters": ["dc-a", "dc-c"]}},
         "faults[0].target.datacenters: no link between 'dc-a' and 'dc-c' in topology.links "
         "(did you mean [dc-a, dc-b]?); links: dc-a~dc-b"),
        ({"target": {"datacenters": ["dc-a", "dc-bb"]}},
         "faults[0].target.datacenters[1]: no datacenter 'dc-bb' (did you mean 'dc-b'?)"),
        ({"target": {"datacenters": ["dc-a"]}},
         "faults[0].target.datacenters: expected the two different datacenters the link joins "
         "(got 1: dc-a)"),
        ({"target": {}},
         "faults[0].target.datacenters: expected the two different datacenters the link joins (got none)"),
        ({"target": {"ids": ["dc-a"], "datacenters": ["dc-a", "dc-b"]}},
         "faults[0].target.ids: a link is selected by its two ends only, target.datacenters: [a, b] "
         "(got ids)"),
        ({"kind": "congestion", "target": {"datacenters": ["dc-a", "dc-b"]}},
         "a congestion needs capacity_factor below 100% or a background bandwidth (got neither)"),
    ],
    ids=["unlinked", "typo", "one-end", "no-target", "ids", "congestion-does-nothing"],
)
def test_link_targets_are_checked(make_scenario, fault, expected):
    found = problems(make_scenario, fault)
    assert any(expected in p for p in found), found


def test_request_size_and_link_fields_take_units(make_scenario):
    s = make_scenario(
        {
            "topology": {"links": [{"between": ["dc-a", "dc-b"], "capacity": "1Gbps", "buffer": "250ms",
                                    "averaging": "5s"}]},
            "workload": {"requests": {"read": {"share": "100%", "size": "2MB"}}},
        }
    )
    link = s.topology.links[0]
    assert (link.buffer, link.averaging, s.workload.requests["read"].size) == (0.25, 5.0, 2e6)


def test_a_congestion_may_write_its_default_background_of_none(make_scenario):
    """The reference gives background's default as 0bps; writing it was refused ('at least 1bps')."""
    link = {"between": ["dc-a", "dc-b"], "capacity": "1Gbps"}
    fault = {"kind": "congestion", "id": "c", "at": "1m", "duration": "1m", "target": {"datacenters": ["dc-a", "dc-b"]},
             "capacity_factor": "50%", "background": "0bps"}
    s = make_scenario({"topology": {"links": [link]}, "faults": [fault]})
    assert s.faults[0].background == 0.0
    with pytest.raises(ScenarioError) as refused:
        make_scenario({"topology": {"links": [link]}, "faults": [{**fault, "background": "-1bps"}]})
    assert "faults[0].background" in str(refused.value)


# ------------------------------------------------------------------------------------------- shipped


@group(MECHANISMS / "congested-link.yaml")
def test_congested_link_scenario_saturates_after_the_failover_and_clears_on_failback():
    result = run_shipped(MECHANISMS / "congested-link.yaml")  # shared with the other modules (tests/shipped.py)
    saturated = [e for e in result.events if e["kind"] == "link_saturated"]
    assert len(saturated) == 1
    assert cause_chain(result, saturated[0]) == [
        "link_saturated", "failover", "database_unavailable", "server_down", "fault_start"
    ]
    first_failover = min(e["time"] for e in result.events if e["kind"] == "failover")
    last_failback = max(e["time"] for e in result.events if e["kind"] == "failback")
    assert first_failover <= saturated[0]["time"] < first_failover + 5
    recovered = next(e for e in result.events if e["kind"] == "link_recovered")
    assert last_failback <= recovered["time"] < last_failback + 5
    rows = {r["time"]: r for r in result.link_series}
    assert all(rows[t]["utilisation"] > 1.5 for t in range(300, 720, 60))  # retries push it past 1.28
    assert all(rows[t]["crossings"] == 0 for t in (0, 60, 120, 180, 840, 900))
    s = result.summary
    assert s["counts"]["link_lost"] > 20_000 and not s["slo"]["met"] and s["recovery"]["recovered"]
    # The breach of the crash's window hangs off the crash (its databases unavailable at once), not off
    # the saturation 30 s later (on main it did: a cause after its effect); the saturation keeps it breached.
    breach = next(e for e in result.events if e["kind"] == "slo_breach")
    by_id = {e["id"]: e for e in result.events}
    assert cause_chain(result, breach) == ["slo_breach", "database_unavailable", "server_down", "fault_start"]
    assert by_id[breach["cause"]]["time"] <= breach["time"] < saturated[0]["time"]
    back = next(e for e in result.events if e["kind"] == "slo_recovered")
    assert back["time"] > saturated[0]["time"]
    wide = sim.run(sim.parse_scenario(
        (MECHANISMS / "congested-link.yaml").read_text().replace("capacity: 25Mbps", "capacity: 1Gbps")
    ))
    assert not [e for e in wide.events if e["kind"] == "link_saturated"]
    assert wide.summary["counts"]["link_lost"] == 0
    assert wide.summary["availability"] > s["availability"] + 0.03
