"""The flow engine's own behaviour: choosing it, determinism, lazy integration, records, noise.

The shipped scenarios' flow runs come from the shared cache (``tests/shipped.py``), except where a test
changes the engine (monkeypatch) or compares two runs of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim.engine import choose_engine
from sim.engine.flow import round_rows
from sim.metrics import weighted_percentile
from tests.conftest import scenario_from
from tests.shipped import FLOW_SHIPPED, REQUESTS_ONLY, ROOT, group, run_cached, shared_runs
from tests.test_cli import cli

QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
MECHANISMS = ROOT / "scenarios" / "mechanisms"


def flow(path: Path, seed: int | None = None, **overrides: object) -> sim.Result:
    """A fresh flow-engine run (the engine as the test has it, monkeypatches included)."""
    return sim.run(sim.load_scenario(path, {"engine": "flow", **overrides}), seed=seed)


def shared_flow(path: Path, seed: int | None = None, **overrides: object) -> sim.Result:
    """The same run, from the cache the modules share: for tests that change nothing of the engine."""
    return run_cached(sim.load_scenario(path, {"engine": "flow", **overrides}), seed)


def test_auto_picks_flow_for_large_runs_only():
    small = sim.load_scenario(QUICKSTART, {"engine": "auto"})  # 432,000 requests
    assert choose_engine(small) == "requests"
    large = sim.load_scenario(QUICKSTART, {"engine": "auto", "duration": "24h"})  # about 10^7
    assert choose_engine(large) == "flow"
    # Resolved once, at validation: the scenario says which engine runs, and a shorter run is judged anew.
    assert large.engine == "flow"
    assert sim.load_scenario(QUICKSTART, {"engine": "auto", "duration": "30m"}).engine == "requests"


def test_the_request_limit_binds_the_request_engine_only():
    with pytest.raises(sim.ScenarioError, match="use engine: flow"):
        sim.load_scenario(QUICKSTART, {"duration": "1y"})
    assert sim.load_scenario(QUICKSTART, {"duration": "1y", "engine": "flow"}).engine == "flow"


@group("quickstart.yaml")
def test_cli_engine_option_runs_flow_and_says_so(tmp_path, capsys):
    with shared_runs():
        code = cli("run", str(QUICKSTART), "--engine", "flow", "--out", str(tmp_path / "r"))
    assert code == 0
    assert "engine flow" in capsys.readouterr().out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["requests"] == 432_000  # 120/s for an hour, deterministic
    assert (tmp_path / "r" / "report.html").stat().st_size > 100_000


def test_same_seed_same_result_and_arrivals_do_not_depend_on_the_seed():
    a, b, c = flow(QUICKSTART, 1).summary, flow(QUICKSTART, 1).summary, flow(QUICKSTART, 2).summary
    assert a == b
    assert a["requests"] == c["requests"]  # no noise: the seed only draws health checks


def test_noise_makes_arrivals_poisson():
    runs = [flow(QUICKSTART, seed, flow={"noise": True}).summary["requests"] for seed in (1, 2, 3)]
    assert len(set(runs)) == 3
    for n in runs:  # Poisson: within 5 standard deviations of 432,000
        assert abs(n - 432_000) < 5 * 432_000 ** 0.5


def test_a_fault_acts_at_its_own_time_not_at_the_next_step():
    """A dependency dead from t=0: no request of the first minute succeeds, even with 30-s steps."""
    result = flow(MECHANISMS / "retry-amplification.yaml", flow={"step": "1s", "max_step": "30s"})
    first = [row for row in result.timeseries if row["time"] == 0.0][0]
    assert first["requests"] == 1200 and first["ok"] == 0


@group("quickstart.yaml")
def test_retries_go_back_to_the_same_database():
    """A database unavailable for 30 s fails every retry of its requests: the failed requests are about
    the share of databases lost times the requests of those 30 s (the request engine gives 621)."""
    summary = shared_flow(QUICKSTART).summary
    assert 550 <= summary["counts"]["failed"] <= 650


@group("mechanisms/retry-amplification.yaml")
def test_three_layers_of_retries_multiply():
    s = shared_flow(MECHANISMS / "retry-amplification.yaml").summary
    assert s["counts"]["dep_attempts"] / s["requests"] == pytest.approx(64, rel=0.01)


@group("mechanisms/mail-backlog.yaml")
def test_mail_is_delivered_through_the_flow_engine():
    s = shared_flow(MECHANISMS / "mail-backlog.yaml").summary
    assert s["mail"]["delivered"] > 0.9 * s["mail"]["messages"]
    assert s["mail"]["backlog"]["peak"] > 0


@pytest.mark.parametrize(
    "defence",
    [
        {"client": {"budget": {"ratio": "10%", "min_per_second": 1}}},
        {"server": {"cancellation": True}},
        {"client": {"breaker": {"error_threshold": "50%", "open_time": "10s"}}},
    ],
    ids=["retry-budget", "cancellation", "circuit-breaker"],
)
@group("mechanisms/retry-storm.yaml")
def test_the_defences_stop_the_retry_storm_here_too(defence):
    """The metastable storm of retry-storm.yaml stays down without a defence and recovers with any of
    the three, on the flow engine as on the request engine (tests/test_mechanisms.py)."""
    path = MECHANISMS / "retry-storm.yaml"
    assert shared_flow(path).summary["recovery"]["metastable"]
    policies = sim.load_scenario(path).policies.model_dump()
    for layer, settings in defence.items():
        policies[layer].update(settings)
    s = shared_flow(path, policies=policies).summary
    assert s["recovery"]["recovered"] and s["recovery"]["time_to_recover"] <= 180


def _engines(monkeypatch) -> list:
    """Record every flow engine built (to read its step count and classes)."""
    from sim.engine.flow import FlowEngine

    built: list = []
    start = FlowEngine.start

    def recording(self):
        built.append(self)
        start(self)

    monkeypatch.setattr(FlowEngine, "start", recording)
    return built


@pytest.mark.parametrize("name", ["quickstart", "failover-overload", "ejection-cascade", "congested-link",
                                  "slow-dependency", "human-error"])
def test_servers_in_the_same_state_are_computed_once_without_changing_the_answer(name, monkeypatch):
    from sim.engine.flow import FlowEngine

    path = QUICKSTART if name == "quickstart" else MECHANISMS / f"{name}.yaml"
    built = _engines(monkeypatch)
    monkeypatch.setattr(FlowEngine, "lump_from", 10**9)
    each = flow(path, 1).summary
    monkeypatch.setattr(FlowEngine, "lump_from", 0)
    lumped = flow(path, 1).summary
    assert not built[0].lump and built[1].lump
    assert built[1].classes < built[1].steps * built[1].n  # some servers were in the same state
    assert lumped["availability"] == pytest.approx(each["availability"], abs=1e-9)
    for key, value in each["counts"].items():
        assert lumped["counts"][key] == pytest.approx(value, rel=1e-6, abs=1), key


def test_long_steps_while_few_retries_are_pending_keep_the_answer(monkeypatch):
    """A version that fails 0.5% of requests on every server keeps retries pending all the time: steps
    still grow to 30 s (retries come due at under 1% of the attempts), with the answer of 1-s steps. The
    retries come due in bunches around that 1% (2.5-3.7 a second against 1.2 between them), so about 470
    of the hour's seconds go in 1-s steps and the rest in some 120 steps of 30 s."""
    built = _engines(monkeypatch)
    flaky = [{"id": "flaky", "kind": "bad_update", "at": "5m", "target": {}, "effect": {"error_rate": "0.5%"},
              "rollout": {"canary": "100%"}}]
    fixed = flow(QUICKSTART, 1, faults=flaky, flow={"step": "1s", "max_step": "1s"}).summary
    grown = flow(QUICKSTART, 1, faults=flaky, flow={"step": "1s", "max_step": "30s"}).summary
    assert built[1].steps < built[0].steps / 5
    assert fixed["counts"]["retries"] > 0.004 * fixed["requests"]
    assert grown["counts"]["retries"] == pytest.approx(fixed["counts"]["retries"], rel=0.02)
    assert grown["availability"] == pytest.approx(fixed["availability"], abs=1e-5)


@given(st.lists(st.lists(st.floats(0, 1e6), min_size=3, max_size=3), min_size=1, max_size=4))
def test_rounding_keeps_totals(rows):
    table = np.array(rows)
    rounded = np.array(round_rows(table))
    assert (rounded >= 0).all()
    assert np.abs(rounded.cumsum(axis=1) - table.cumsum(axis=1)).max() <= 0.5 + 1e-6


def test_weighted_percentile_is_the_inverted_cdf():
    values = np.array([3.0, 1.0, 2.0])
    assert weighted_percentile(values, np.array([1.0, 1.0, 1.0]), 50) == 2.0
    assert weighted_percentile(values, np.array([1.0, 98.0, 1.0]), 98) == 1.0  # 98 of 100 weigh 1.0
    assert weighted_percentile(values, np.array([1.0, 98.0, 1.0]), 99) == 2.0


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=group(p)) for p in REQUESTS_ONLY])
def test_a_shipped_scenario_with_a_requests_only_policy_is_refused_on_the_flow_engine(path, tmp_path, capsys):
    code = cli("run", str(path), "--engine", "flow", "--out", str(tmp_path / "r"))
    assert code == 2 and not (tmp_path / "r").exists()
    assert f"{path}:" in capsys.readouterr().err and "has no fluid view" in sim.policies.unsupported_on_flow(
        sim.load_scenario(path))[0][1]


@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(ROOT / "scenarios")), marks=group(p))
                                  for p in FLOW_SHIPPED])
def test_every_shipped_scenario_runs_on_the_flow_engine(path, tmp_path):
    with shared_runs():
        code = cli("run", str(path), "--engine", "flow", "--out", str(tmp_path / "r"))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert code == (0 if summary["slo"]["met"] else 3)
    assert summary["requests"] > 0
    # The fluid counters add up as whole requests do: every request succeeded or failed, every attempt
    # is a first try or a retry, and the regions share out the totals.
    counts, regions = summary["counts"], summary["regions"].values()
    assert summary["succeeded"] + counts["failed"] == summary["requests"]
    assert counts["attempts"] == summary["requests"] + counts["retries"]
    assert sum(r["requests"] for r in regions) == summary["requests"]
    assert summary["availability"] == pytest.approx(summary["succeeded"] / summary["requests"], abs=1e-12)
    assert (tmp_path / "r" / "report.html").stat().st_size > 100_000
    # And so in every window: a window's successes and failures are its requests, never more.
    rec = run_cached(sim.load_scenario(path, {"engine": "flow"})).recorder
    requests, ok, failed = (np.array(t) for t in (rec.requests, rec.ok, rec.failed))
    assert (ok >= 0).all() and (failed >= 0).all()
    assert (ok + failed == requests).all()


def test_a_step_that_sends_some_request_types_of_different_sizes_across_a_link():
    """Two request types of different sizes cross a link (the link's loss and delay are read per type), and
    once the directory is down only the sign-in-like type fails and retries: in the run's drain only its
    retries are sent. Such a step used to fail on the paths' per-type arrays (all types' rows against the
    sent types' arrays); now reads are served and sends fail after 30 s of 120: 85% available."""
    scenario = scenario_from({
        "duration": "2m", "engine": "flow",
        "topology": {
            "regions": [{"id": "europe", "datacenters": {"eu-west": "12ms"}}],
            "datacenters": [{"id": dc, "servers": [{"id": dc[3:], "count": 2, "workers": 8, "service_time": "40ms"}]}
                            for dc in ("eu-west", "eu-north")],
            "links": [{"between": ["eu-west", "eu-north"], "capacity": "1Gbps", "latency": "25ms"}],
            "databases": [{"id": "db", "count": 4,
                           "placement": [{"datacenter": "eu-north"}, {"datacenter": "eu-west"}]}],
            "dependencies": [{"id": "directory", "service_time": "2ms"}]},
        "workload": {"regions": {"europe": {"peak": "50/s"}},
                     "requests": {"read": {"share": "80%", "size": "50kB"},
                                  "send": {"share": "20%", "size": "200kB", "dependencies": ["directory"]}}},
        "policies": {"client": {"timeout": "2s", "retries": 2, "backoff": {"base": "1s", "max": "2s"}}},
        "faults": [{"id": "directory-down", "kind": "dependency_outage", "target": {"ids": ["directory"]},
                    "at": "30s"}],
    }, base={"name": "sizes", "slo": {"availability": "99%"}})
    summary = sim.run(scenario).summary
    assert summary["availability"] == pytest.approx(0.8 + 0.2 * 30 / 120, abs=0.005)


def _directory_outage(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "40s", "engine": engine, "slo": {"window": "1s"},
        "topology": {
            "regions": [{"id": "users", "datacenters": {"dc": "0s"}}],
            "datacenters": [{"id": "dc", "servers": [{"id": "mbx", "count": 4, "workers": 64,
                                                      "service_time": "10ms"}]}],
            "dependencies": [{"id": "directory", "workers": 8, "queue_limit": 24, "service_time": "100ms"}]},
        "workload": {"regions": {"users": {"peak": "48/s"}},
                     "requests": {"sign_in": {"share": "100%", "dependencies": ["directory"]}}},
        "policies": {"client": {"timeout": "10s", "retries": 0}, "server": {"dependency_timeout": "5s"}},
        "faults": [{"id": "out", "kind": "dependency_outage", "target": {"ids": ["directory"]}, "at": "15s",
                    "duration": "15s"}],
    }, base={"name": "back", "slo": {"availability": "99%"}})


def test_a_dependency_back_from_an_outage_starts_empty():
    """A directory with room for 24 calls is down from 15 s to 30 s; while down, the calls of a second
    overflow its room by half. Back up, it starts empty: the first second after the outage is served whole,
    as on the request engine (it used to refuse half of it, the outage's overflow share)."""
    flow = {row["time"]: row["availability"] for row in sim.run(_directory_outage("flow")).timeseries}
    assert flow[29.0] == 0.0 and flow[30.0] == pytest.approx(1.0)
    requests = sim.run(_directory_outage("requests"), seed=1).timeseries
    assert {row["time"]: row["availability"] for row in requests}[30.0] == pytest.approx(1.0)


def _warm_and_ejected(engine: str) -> sim.Scenario:
    return scenario_from({
        "duration": "40s", "engine": engine,
        "topology": {
            "regions": [{"id": "users", "datacenters": {"dc": "0s"}}],
            "datacenters": [{"id": "dc", "servers": [{
                "id": "mbx", "count": 1, "workers": 4, "service_time": "100ms", "queue_limit": 400,
                "memory": {"limit": "16GB", "base": "8GB", "per_request": "80MB"},  # room for 100 requests
                "warmup": {"duration": "10m", "capacity": "25%"}}]}]},
        "workload": {"regions": {"users": {"peak": "12/s"}}},
        "policies": {"client": {"timeout": "30s", "retries": 0}},
        "faults": [{"id": "restart", "kind": "server_crash", "target": {"ids": ["mbx-01"]}, "at": "1s",
                    "duration": "1s"}],
    }, base={"name": "warm", "slo": {"availability": "99%"}})


def test_a_queue_out_of_rotation_keeps_the_work_of_its_requests():
    """A server restarts at a quarter of its speed (tries of 0.4 s) into 120% of what it then does; its
    queue grows by 2 requests a second until the health checks eject it at 20 s, holding about 40 of the
    100 its memory has room for. Out of rotation no try comes in, and what waits is still requests of
    0.4 s: it drains without crashing, as on the request engine. The flow engine used to count the backlog
    in the nominal 0.1-s tries once none came in (104 held) and crash it at 21 s."""
    def crashes(result: sim.Result) -> list[float]:
        return [e["time"] for e in result.events if e["kind"] == "crashed"]

    flow = sim.run(_warm_and_ejected("flow"))
    assert any(e["kind"] == "ejected" for e in flow.events) and crashes(flow) == []
    for seed in (1, 2, 3, 4):
        assert crashes(sim.run(_warm_and_ejected("requests"), seed=seed)) == []
