"""The ``bad_update`` fault: waves, the bad version's effects, detection, halt and rollback."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.cluster import GOOD
from sim.errors import ScenarioError
from sim.faults import RolloutPlan
from sim.rollout import wave_sizes
from tests.shipped import group, run_cached

MECHANISMS = Path(__file__).resolve().parents[1] / "scenarios" / "mechanisms"
OFF = {"enabled": False}
ROLLOUT_KINDS = {"fault_start", "rollout_wave", "updated", "rollout_complete", "alert", "rollout_halted",
                 "rollback", "fault_end"}


def bad_update(make_scenario, changes: dict[str, Any] | None = None, **fault: Any) -> sim.Scenario:
    """BASE (8 servers, dc-a serving) with one bad_update ``upd``; ``fault`` fields override the defaults."""
    spec = {"id": "upd", "kind": "bad_update", "at": "2m", "detection": OFF, **fault}
    return make_scenario({"faults": [spec], **(changes or {})})


def datacenters(**group: Any) -> dict[str, Any]:
    """BASE's two datacenters of four servers, with ``group`` fields added to both server groups."""
    return {"topology": {"datacenters": [
        {"id": dc, "servers": [{"id": g, "count": 4, "service_time": "20ms", **group}]}
        for dc, g in (("dc-a", "a"), ("dc-b", "b"))
    ]}}


def of_kind(result: sim.Result, kind: str) -> list[dict]:
    return [e for e in result.events if e["kind"] == kind]


def chain(result: sim.Result, event: dict) -> list[dict]:
    by_id = {e["id"]: e for e in result.events}
    out = [event]
    while out[-1]["cause"] is not None:
        out.append(by_id[out[-1]["cause"]])
    return out


# ----------------------------------------------------------------------------------------- waves


@pytest.mark.parametrize(
    ("n", "plan", "sizes"),
    [
        (8, {"canary": "25%", "waves": ["25%"]}, [2, 2, 4]),
        (8, {"canary": "25%", "waves": ["25%", "50%"]}, [2, 2, 4]),
        (3, {"canary": "10%"}, [1, 2]),  # a canary of at least one server
        (10, {"canary": 0, "waves": ["50%"]}, [5, 5]),  # no canary
        (10, {"canary": "10%", "wave_size": "30%"}, [1, 3, 3, 3]),
        (7, {"canary": "100%"}, [7]),
        (0, {"canary": "10%"}, []),
    ],
)
def test_wave_sizes_add_up_to_the_targets(n, plan, sizes):
    assert wave_sizes(n, RolloutPlan.model_validate(plan)) == sizes


def test_canary_and_waves_update_the_right_servers_at_the_right_times(make_scenario):
    rollout = {"canary": "25%", "waves": ["25%"], "bake_time": "2m", "order": ["dc-b", "dc-a"]}
    result = sim.run(bad_update(make_scenario, at="1m", rollout=rollout))
    waves = of_kind(result, "rollout_wave")
    assert [w["time"] for w in waves] == [60.0, 180.0, 300.0]
    updates = of_kind(result, "updated")
    by_wave = [[e["node"] for e in updates if e["cause"] == w["id"]] for w in waves]
    assert by_wave == [["b-01", "b-02"], ["b-03", "b-04"], ["a-01", "a-02", "a-03", "a-04"]]
    times = {w["id"]: w["time"] for w in waves}
    assert all(e["time"] == times[e["cause"]] for e in updates)
    (complete,) = of_kind(result, "rollout_complete")
    assert complete["time"] == 300.0 and complete["cause"] == waves[-1]["id"]
    assert "wave 1 of 3 (canary): 2 servers in dc-b" in waves[0]["detail"]
    assert all(s.version != GOOD for s in result.cluster.servers)


def test_target_limits_the_rollout(make_scenario):
    result = sim.run(bad_update(make_scenario, target={"datacenters": ["dc-b"]},
                                rollout={"canary": "50%", "bake_time": "1m"}))
    assert sorted(e["node"] for e in of_kind(result, "updated")) == ["b-01", "b-02", "b-03", "b-04"]


# ----------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"at": None, "mtbf": "1h", "mttr": "5m"}, "a bad update is a rollout someone starts: give at"),
        ({"duration": "5m"}, "a bad update has no duration"),
        ({"rollout": {"canary": "50%", "waves": ["60%"]}}, "canary and waves add up to 110% of the targets"),
        ({"rollout": {"waves": ["10%"], "wave_size": "10%"}}, "either waves .* or wave_size"),
        ({"rollout": {"order": ["dc-a", "dc-a"]}}, "order lists datacenter 'dc-a' twice"),
        ({"rollout": {"order": ["dc-bb"]}}, r"rollout\.order\[0\]: no datacenter 'dc-bb' \(did you mean"),
        ({"detection": {"threshold": "100ms"}}, "not a percentage .*; metric error_rate takes a percentage"),
        ({"detection": {"metric": "latency", "threshold": "2%"}}, "not a duration"),
        ({"at": "40s", "detection": {"check_interval": "30s"}}, "detection needs a baseline"),
        ({"effect": {"latency_multiplier": 0.5}}, r"too small \(got 0.5, expected at least 1.0\)"),
        ({"effect": {"memory_leak": "lots"}}, "not a size"),
    ],
)
def test_bad_update_mistakes_are_explained(make_scenario, fault, message):
    spec = {"id": "upd", "kind": "bad_update", "at": "2m", **fault}
    spec = {k: v for k, v in spec.items() if v is not None}
    with pytest.raises(ScenarioError, match=message):
        make_scenario({"faults": [spec]})


def test_units_of_the_threshold_follow_the_metric(make_scenario):
    (fault,) = bad_update(make_scenario, detection={"threshold": "2%"}).faults
    assert fault.detection.rise == pytest.approx(0.02)
    (fault,) = bad_update(make_scenario, detection={"metric": "latency", "threshold": "150ms"}).faults
    assert fault.detection.rise == pytest.approx(0.15)
    (fault,) = bad_update(make_scenario, detection={"metric": "latency"}).faults
    assert fault.detection.rise == pytest.approx(0.1)  # the default for latency
    (fault,) = bad_update(make_scenario, effect={"memory_leak": "360MB/h"}).faults
    assert fault.effect.memory_leak == 360e6


# ----------------------------------------------------------------------------------------- effects


def test_crashes_come_at_the_configured_rate_per_hour_of_running(make_scenario):
    """Poisson count of crashes against rate x time the bad version ran (down time excluded)."""
    rate = 20.0
    crashes = expected = 0.0
    for seed in (1, 2, 3):
        scenario = bad_update(
            make_scenario,
            {"duration": "30m", "workload": {"regions": {"users": {"peak": "10/s"}}},
             **datacenters(restart_time="30s")},
            at=0, rollout={"canary": "100%"}, effect={"crash_per_hour": rate},
        )
        result = sim.run(scenario, seed=seed)
        end = result.cluster.now
        running = 8 * end
        down_since: dict[str, float] = {}
        for e in result.events:
            if e["kind"] == "server_down":
                down_since[e["node"]] = e["time"]
            elif e["kind"] == "server_up":
                running -= e["time"] - down_since.pop(e["node"])
        running -= sum(end - t for t in down_since.values())
        crashed = of_kind(result, "crashed")
        assert all(c["detail"].startswith("bad version crashed") for c in crashed)
        crashes += len(crashed)
        expected += rate * running / 3600.0
    assert expected > 150
    assert abs(crashes - expected) < 4 * math.sqrt(expected)


def _crash_loop(make_scenario, detection: dict) -> sim.Scenario:
    return bad_update(
        make_scenario,
        datacenters(restart_time="30s"),
        rollout={"canary": "25%", "bake_time": "1h"}, effect={"crash_loop": True}, detection=detection,
    )


def test_crash_loop_keeps_servers_down_until_rolled_back(make_scenario):
    detection = {"rule": "threshold", "reaction_time": "1m", "rollback_time": "1m"}
    result = sim.run(_crash_loop(make_scenario, detection))
    (rollback_a1, _) = rollbacks = of_kind(result, "rollback")
    assert [r["node"] for r in rollbacks] == ["a-01", "a-02"]
    for name in ("a-01", "a-02"):
        down = [e for e in of_kind(result, "server_down") if e["node"] == name]
        up = [e for e in of_kind(result, "server_up") if e["node"] == name]
        assert len(down) == 1 and len(up) == 1  # down once, never flapping
        assert down[0]["time"] == 120.0
        rollback = next(r for r in rollbacks if r["node"] == name)
        assert rollback["time"] <= up[0]["time"] <= rollback["time"] + 30.0
        assert up[0]["cause"] == rollback["id"] and "good version" in up[0]["detail"]
        again = [e for e in of_kind(result, "crashed") if e["node"] == name]
        assert len(again) >= 3  # crashed on start, then at each restart until the rollback
        assert [e["time"] for e in again] == [120.0 + 30.0 * k for k in range(len(again))]
    assert rollback_a1["time"] == pytest.approx(of_kind(result, "alert")[0]["time"] + 120.0)


def test_crash_loop_without_detection_lasts_to_the_end(make_scenario):
    result = sim.run(_crash_loop(make_scenario, OFF))
    assert {e["node"] for e in of_kind(result, "server_down")} == {"a-01", "a-02"}
    assert not of_kind(result, "server_up") and not of_kind(result, "fault_end")
    assert len([e for e in of_kind(result, "crashed") if e["node"] == "a-01"]) > (600 - 120) / 30 - 1


def test_latency_multiplier_raises_p99_as_theory_says(make_scenario):
    """Light load (no queueing): p99 = rtt + multiplier x mean service x ln(100) for exponential service."""
    everywhere = {"at": 0, "rollout": {"canary": "100%"}}
    base = sim.run(bad_update(make_scenario, **everywhere)).summary["latency"]["p99"]
    slow = sim.run(bad_update(make_scenario, effect={"latency_multiplier": 3}, **everywhere))
    slow = slow.summary["latency"]["p99"]
    assert base == pytest.approx(0.010 + 0.020 * math.log(100), rel=0.1)
    assert slow == pytest.approx(0.010 + 3 * 0.020 * math.log(100), rel=0.1)


def test_error_rate_fails_that_share_of_the_requests_the_bad_servers_serve(make_scenario):
    scenario = bad_update(
        make_scenario, {"policies": {"client": {"retries": 0}}},
        at=0, target={"ids": ["a-01", "a-02"]}, rollout={"canary": "100%"}, effect={"error_rate": "20%"},
    )
    s = sim.run(scenario).summary
    assert s["availability"] == pytest.approx(1 - 0.5 * 0.2, abs=0.01)  # round robin: half go to a-01, a-02
    assert s["counts"]["errors"] == s["requests"] - s["succeeded"]


def test_a_memory_leak_runs_the_server_out_of_memory_and_the_crash_names_the_update(make_scenario):
    memory = {"limit": "16GB", "base": "8GB", "per_request": "40MB"}
    scenario = bad_update(
        make_scenario,
        datacenters(memory=memory),
        at="1m", target={"ids": ["a-01"]}, rollout={"canary": "100%"}, effect={"memory_leak": "960GB/h"},
    )
    result = sim.run(scenario)
    (updated,) = of_kind(result, "updated")
    crashed = of_kind(result, "crashed")
    assert crashed and {c["node"] for c in crashed} == {"a-01"}
    assert all(c["cause"] == updated["id"] and "leaks" in c["detail"] for c in crashed)
    # 8 GB of room at 960 GB/h: full 30 s after the update (less the requests it holds).
    assert 25.0 <= crashed[0]["time"] - updated["time"] <= 30.0


# ----------------------------------------------------------------------------------------- detection

WAVES = {"canary": "25%", "waves": ["25%"], "bake_time": "3m"}  # waves at 2m, 5m, 8m
ERRORS = {"error_rate": "20%"}


def test_detector_halts_before_the_third_wave_and_rolls_back(make_scenario):
    detection = {"rule": "threshold", "reaction_time": "4m", "rollback_time": "1m"}
    result = sim.run(bad_update(make_scenario, rollout=WAVES, effect=ERRORS, detection=detection))
    waves = of_kind(result, "rollout_wave")
    (alert,) = of_kind(result, "alert")
    (halted,) = of_kind(result, "rollout_halted")
    assert len(waves) == 2 and [w["time"] for w in waves] == [120.0, 300.0]
    assert alert["time"] == 150.0 and alert["cause"] == waves[0]["id"]  # the first check after the canary
    assert "threshold rule on error rate in users" in alert["detail"]
    assert halted["time"] == 390.0 < 480.0 and halted["cause"] == alert["id"]
    rollbacks = of_kind(result, "rollback")
    assert sorted(r["node"] for r in rollbacks) == ["a-01", "a-02", "a-03", "a-04"]
    assert all(r["time"] == 450.0 and r["cause"] == halted["id"] for r in rollbacks)
    (end,) = of_kind(result, "fault_end")
    assert end["time"] == 450.0
    assert all(s.version == GOOD for s in result.cluster.servers)
    after = [r for r in result.timeseries if r["time"] >= 460]
    assert after and sum(r["errors"] for r in after) == 0  # the good version answers everything
    (summary,) = result.summary["faults"]
    assert summary["time_to_detect"] == 30.0 and summary["end"] == 450.0


def test_without_detection_every_wave_rolls_out(make_scenario):
    result = sim.run(bad_update(make_scenario, rollout=WAVES, effect=ERRORS, detection=OFF))
    assert [w["time"] for w in of_kind(result, "rollout_wave")] == [120.0, 300.0, 480.0]
    assert len(of_kind(result, "updated")) == 8 and of_kind(result, "rollout_complete")
    assert not any(of_kind(result, k) for k in ("alert", "rollout_halted", "rollback", "fault_end"))
    assert result.summary["faults"][0]["time_to_detect"] is None


def test_halt_without_rollback_leaves_the_bad_version_running(make_scenario):
    detection = {"reaction_time": "1m", "rollback": False}
    result = sim.run(bad_update(make_scenario, rollout=WAVES, effect=ERRORS, detection=detection))
    assert len(of_kind(result, "rollout_halted")) == 1 and len(of_kind(result, "rollout_wave")) == 1
    assert not of_kind(result, "rollback") and not of_kind(result, "fault_end")
    assert sum(s.version != GOOD for s in result.cluster.servers) == 2


@pytest.mark.parametrize("rule", ["threshold", "ewma"])
@pytest.mark.parametrize(
    ("metric", "effect"), [("error_rate", {"error_rate": "10%"}), ("latency", {"latency_multiplier": 4})]
)
def test_each_rule_catches_each_metric_and_is_quiet_on_a_harmless_update(make_scenario, rule, metric, effect):
    detection = {"rule": rule, "metric": metric}
    harmless = sim.run(bad_update(make_scenario, rollout=WAVES, detection=detection))
    assert not of_kind(harmless, "alert")
    harmful = sim.run(bad_update(make_scenario, rollout=WAVES, effect=effect, detection=detection))
    (alert,) = of_kind(harmful, "alert")
    assert 120.0 < alert["time"] <= 180.0  # within two checks of the canary
    assert metric.replace("_", " ") in alert["detail"] and "baseline" in alert["detail"]


def test_every_event_leads_back_to_the_bad_update(make_scenario):
    detection = {"reaction_time": "1m", "rollback_time": "1m"}
    result = sim.run(_crash_loop(make_scenario, detection))
    kinds = Counter(e["kind"] for e in result.events if e["fault"] == "upd")
    assert {"rollout_wave", "updated", "crashed", "server_down", "ejected", "alert", "rollout_halted",
            "rollback", "server_up", "fault_end"} <= set(kinds)
    (start,) = [e for e in of_kind(result, "fault_start") if e["fault"] == "upd"]
    for e in result.events:
        if e["kind"] in ROLLOUT_KINDS | {"crashed"}:
            assert e["fault"] == "upd", e
        if e["fault"] == "upd":
            assert chain(result, e)[-1] is start, e
    (rollback, _) = of_kind(result, "rollback")
    assert [e["kind"] for e in chain(result, rollback)] == [
        "rollback", "rollout_halted", "alert", "rollout_wave", "fault_start"]


# ----------------------------------------------------------------------------------------- shipped scenario


@group(MECHANISMS / "bad-update-halted.yaml")
def test_shipped_bad_update_is_halted_before_its_third_wave():
    scenario = sim.load_scenario(MECHANISMS / "bad-update-halted.yaml")
    (fault,) = scenario.faults
    result = run_cached(scenario)  # shared with the other modules (tests/shipped.py)
    waves = of_kind(result, "rollout_wave")
    (alert,) = of_kind(result, "alert")
    (halted,) = of_kind(result, "rollout_halted")
    third_wave_due = fault.at + 2 * fault.rollout.bake_time
    assert len(waves) == 2 and halted["time"] < third_wave_due
    assert alert["cause"] == waves[1]["id"]  # the canary's errors stayed inside the band; wave 2's did not
    rollbacks = of_kind(result, "rollback")
    assert len(rollbacks) == len(of_kind(result, "updated")) == 7
    assert [e["kind"] for e in chain(result, rollbacks[0])] == [
        "rollback", "rollout_halted", "alert", "rollout_wave", "fault_start"]
    assert result.summary["recovery"]["recovered"]
