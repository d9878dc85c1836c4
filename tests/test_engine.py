"""The request engine: queues, timeouts, retries, crashes, shedding, balancers."""

from __future__ import annotations

import pytest
import simpy

import sim
from sim.engine.requests import Station
from sim.policies import BALANCERS


def station(workers: int = 1, queue_limit: int | None = None) -> tuple[simpy.Environment, Station]:
    env = simpy.Environment()
    return env, Station(env, 0, "s", workers, queue_limit, lambda: 1.0)


def test_station_is_fifo_with_earliest_free_worker():
    env, s = station(workers=2)
    assert [s.admit(0.0, 1.0), s.admit(0.0, 3.0), s.admit(0.0, 1.0), s.admit(0.5, 1.0)] == [1.0, 3.0, 2.0, 3.0]
    assert s.wait(0.5) == pytest.approx(2.5)  # both workers busy until 3.0
    assert s.held() == 4
    assert s.outstanding() == 0  # what a balancer sees: the load balancers' tries in flight (none sent here)


def test_station_rejects_when_queue_full_but_not_when_a_worker_is_free():
    _, s = station(workers=1, queue_limit=1)
    assert s.admit(0.0, 1.0) == 1.0  # starts at once
    assert s.admit(0.0, 1.0) == 2.0  # waits: the one queue slot
    assert s.admit(0.0, 1.0) == -1.0  # queue full
    assert s.admit(1.5, 1.0) == 3.0  # the waiting one started at 1.0: a slot is free again


def test_station_crash_loses_work_and_restarts_empty():
    _, s = station(workers=1)
    s.admit(0.0, 5.0)
    s.crash()
    assert not s.up and s.epoch == 1 and s.held() == 0
    s.restart(2.0)
    assert s.admit(2.0, 1.0) == 3.0


def test_no_faults_means_every_request_succeeds_once(make_scenario):
    result = sim.run(make_scenario())
    s = result.summary
    assert s["requests"] > 25_000
    assert s["availability"] == 1.0
    assert s["counts"]["attempts"] == s["requests"]
    assert s["amplification"] == 1.0
    assert s["slo"]["met"]


def test_retries_multiply_attempts_against_a_dead_backend(make_scenario):
    scenario = make_scenario(
        {
            "topology": {"regions": [{"id": "users", "datacenters": {"dc-a": "10ms"}}],
                         "datacenters": [{"id": "dc-a", "servers": [{"id": "a", "count": 1, "service_time": "10ms"}]},
                                         {"id": "dc-b", "servers": [{"id": "b", "count": 1, "service_time": "10ms"}]}]},
            "policies": {"client": {"retries": 3}, "load_balancer": {"health_check": {"enabled": False}}},
            "faults": [{"kind": "server_crash", "target": {"ids": ["a-01"]}, "at": 0}],
        }
    )
    s = sim.run(scenario).summary
    assert s["availability"] == 0.0
    assert s["counts"]["attempts"] == 4 * s["requests"]
    # Timeouts at first; once the traffic manager sees no healthy server it answers fast errors.
    assert s["counts"]["timeouts"] + s["counts"]["errors"] == 4 * s["requests"]
    assert s["amplification"] == 4.0


def test_crashed_server_times_out_its_share_until_ejected(make_scenario):
    changes = {
        "duration": "5m",
        "policies": {"client": {"retries": 0}, "load_balancer": {"algorithm": "round_robin"}},
        "faults": [{"id": "boom", "kind": "server_crash", "target": {"ids": ["a-02"]}, "at": "1m", "duration": "2m"}],
    }
    no_hc = merge_hc(changes, enabled=False)
    without = sim.run(make_scenario(no_hc)).summary
    # Round robin over 4 servers, one dead for 2 of 5 minutes and never ejected: ~1/4 * 2/5 lost.
    assert without["availability"] == pytest.approx(1 - 0.25 * 2 / 5, abs=0.01)
    with_hc = sim.run(make_scenario(changes))
    events = [e for e in with_hc.events if e["kind"] == "ejected"]
    assert len(events) == 1 and events[0]["node"] == "a-02"
    assert 70 <= events[0]["time"] <= 76  # third failed check at 5 s intervals after t=60
    assert with_hc.summary["availability"] > 0.99
    readmitted = [e for e in with_hc.events if e["kind"] == "readmitted"]
    assert len(readmitted) == 1 and 180 < readmitted[0]["time"] <= 195


def merge_hc(changes: dict, **hc: object) -> dict:
    from tests.conftest import merge

    return merge(changes, {"policies": {"load_balancer": {"health_check": hc}}})


def test_failover_moves_active_databases_and_records_the_cause_chain(make_scenario):
    scenario = make_scenario(
        {
            "topology": {
                "databases": [
                    {"id": "db", "count": 8, "placement": [{"datacenter": "dc-a", "copies": 2},
                                                           {"datacenter": "dc-b", "copies": 1}]}
                ]
            },
            "policies": {"failover": {"database_delay": "20s"}},
            "faults": [{"id": "boom", "kind": "server_crash", "target": {"ids": ["a-01"]},
                        "at": "2m", "duration": "3m"}],
        }
    )
    result = sim.run(scenario)
    by_id = {e["id"]: e for e in result.events}
    lost = [e for e in result.events if e["kind"] == "database_unavailable"]
    failovers = [e for e in result.events if e["kind"] == "failover"]
    assert lost and len(failovers) == len(lost)
    for f in failovers:
        assert f["time"] == pytest.approx(120 + 20)
        chain = [f]
        while chain[-1]["cause"] is not None:
            chain.append(by_id[chain[-1]["cause"]])
        assert [e["kind"] for e in chain] == ["failover", "database_unavailable", "server_down", "fault_start"]
        assert all(e["fault"] == "boom" for e in chain)
        assert "a-01" not in f["detail"]
    fault = result.summary["faults"][0]
    assert fault["id"] == "boom" and fault["time_to_detect"] is not None


def test_datacenter_outage_moves_the_region_and_back(make_scenario):
    scenario = make_scenario(
        {
            "duration": "15m",
            "policies": {"failover": {"datacenter_delay": "30s"}},
            "faults": [{"id": "dark", "kind": "datacenter_outage", "target": {"datacenters": ["dc-a"]},
                        "at": "3m", "duration": "5m"}],
        }
    )
    result = sim.run(scenario)
    shifts = [e for e in result.events if e["kind"] == "traffic_shift"]
    assert len(shifts) == 2
    assert "dc-a -> dc-b" in shifts[0]["detail"] and 210 <= shifts[0]["time"] <= 220
    assert "dc-b -> dc-a" in shifts[1]["detail"] and 510 <= shifts[1]["time"] <= 520
    downs = [e for e in result.events if e["kind"] == "server_down"]
    assert len(downs) == 4 and all(e["fault"] == "dark" for e in downs)
    s = result.summary
    assert 0.9 < s["availability"] < 0.99  # about 30-40 s of a 15-minute run lost
    assert s["faults"][0]["recovered"]


def test_dependency_outage_fails_only_requests_that_need_it(make_scenario):
    scenario = make_scenario(
        {
            "topology": {"dependencies": [{"id": "directory", "service_time": "2ms"}]},
            "workload": {"requests": {"sign_in": {"share": "20%", "dependencies": ["directory"]},
                                      "read": {"share": "80%"}}},
            "policies": {"client": {"retries": 0}},
            "faults": [{"kind": "dependency_outage", "target": {"ids": ["directory"]}, "at": 0}],
        }
    )
    s = sim.run(scenario).summary
    assert s["availability"] == pytest.approx(0.8, abs=0.01)
    assert s["counts"]["errors"] == s["counts"]["failed"]


def test_overload_is_shed_at_the_queue_limit(make_scenario):
    scenario = make_scenario(
        {
            "duration": "2m",
            "topology": {"datacenters": [
                {"id": "dc-a", "servers": [{"id": "a", "count": 1, "workers": 1, "service_time": "50ms",
                                            "queue_limit": 5}]},
                {"id": "dc-b", "servers": [{"id": "b", "count": 1, "service_time": "10ms"}]}]},
            "policies": {"client": {"retries": 0}, "load_balancer": {"health_check": {"enabled": False}}},
        }
    )
    s = sim.run(scenario).summary  # 50/s offered to a server that does 20/s
    assert s["counts"]["shed"] > 0
    assert s["availability"] == pytest.approx(20 / 50, abs=0.05)


@pytest.mark.parametrize("algorithm", sorted(BALANCERS))
def test_every_balancer_serves_all_traffic(make_scenario, algorithm):
    s = sim.run(make_scenario({"policies": {"load_balancer": {"algorithm": algorithm}}})).summary
    assert s["availability"] == 1.0


def test_least_outstanding_beats_random_under_load(make_scenario):
    def p99(algorithm: str) -> float:
        scenario = make_scenario(
            {"workload": {"regions": {"users": {"peak": "650/s"}}},
             "policies": {"load_balancer": {"algorithm": algorithm}, "client": {"timeout": "10s"}}}
        )
        return sim.run(scenario).summary["latency"]["p99"]

    assert p99("least_outstanding") < 0.8 * p99("random")


def test_same_seed_same_summary_and_other_seed_differs(make_scenario):
    crash = {"kind": "server_crash", "target": {"mode": "one"}, "mtbf": "3m", "mttr": "1m"}
    scenario = make_scenario({"faults": [crash]})
    a, b, c = sim.run(scenario, seed=5), sim.run(scenario, seed=5), sim.run(scenario, seed=6)
    assert a.summary == b.summary
    assert a.events == b.events
    assert a.summary != c.summary
