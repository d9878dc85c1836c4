"""The planner's parts against the engines: the same failure times, the same failovers; and its refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.events import FAILBACK, FAILOVER, FAULT_END, FAULT_START
from sim.planner import plan, refusals
from sim.planner.curve import Curve
from sim.planner.fleet import Neighbours, replay
from sim.planner.outages import draw_outages
from sim.planner.year import Fleet, _retry_sums
from sim.workload import rate_function, rates
from tests.shipped import PLANNED, SCENARIOS

LAYOUT = """
name: planner-layout
seed: 5
duration: 6h
engine: flow
topology:
  regions:
    - {id: west, users: 1000, datacenters: {a: 10ms, b: 20ms}}
    - {id: east, users: 1000, datacenters: {b: 10ms, a: 20ms}}
  datacenters:
    - {id: a, servers: [{id: sa, count: 4, workers: 4, service_time: 40ms, frontend_time: 2ms}]}
    - {id: b, servers: [{id: sb, count: 4, workers: 4, service_time: 40ms, frontend_time: 2ms}]}
  links: [{between: [a, b], capacity: 10Gbps, latency: 10ms}]
  databases:
    - {id: dw, count: 8, regions: [west], placement: [{datacenter: a, copies: 1}, {datacenter: b, copies: 1}]}
    - {id: de, count: 8, regions: [east], placement: [{datacenter: b, copies: 1}, {datacenter: a, copies: 1}]}
workload:
  regions:
    west: {peak: 40/s}
    east: {peak: 30/s, profile: diurnal}
policies:
  client: {timeout: 2s, retries: 2, backoff: {base: 200ms, max: 2s}}
  failover: {database_delay: 30s, datacenter_delay: 60s, failback: true}
faults:
  - {id: crashes, kind: server_crash, target: {}, mtbf: 3h, mttr: 20m}
  - {id: dark, kind: datacenter_outage, target: {ids: [b]}, at: 2h, duration: 10m}
slo: {availability: 99.9%}
"""


def _scenario(text: str = LAYOUT) -> sim.Scenario:
    return sim.parse_scenario(text, "layout.yaml")


def test_outages_are_the_engines_failures() -> None:
    """Every random and scheduled failure the planner draws is one the engine injects, at the same times."""
    scenario = _scenario()
    result = sim.run(scenario, seed=3)
    starts = {(e["node"], round(e["time"], 6)) for e in result.events if e["kind"] == FAULT_START}
    ends = {(e["node"], round(e["time"], 6)) for e in result.events if e["kind"] == FAULT_END}
    outages = draw_outages(scenario, result.cluster, 3, scenario.duration)
    names = [s.id for s in result.cluster.servers]
    planned = {(names[s], round(a, 6)) for s, a in zip(outages.server, outages.server_start, strict=True)}
    planned_ends = {(names[s], round(b, 6)) for s, b in zip(outages.server, outages.server_end, strict=True)
                    if b < scenario.duration}
    random_starts = {x for x in starts if x[0] in names}
    assert len(planned) > 5 and planned == random_starts
    assert planned_ends == {x for x in ends if x[0] in names}
    assert outages.dc.tolist() == [1] and outages.dc_start.tolist() == [7200.0] and outages.dc_end.tolist() == [7800.0]


def test_crews_delay_repairs() -> None:
    """With one crew, a failure that finds it busy waits: repairs never overlap, and they end later."""
    free = _scenario()
    crew = _scenario(LAYOUT.replace("mttr: 20m}", "mttr: 20m, repair: {crews: 1}}"))
    cluster = _cluster(free)
    a = draw_outages(free, cluster, 7, free.duration)
    b = draw_outages(crew, cluster, 7, crew.duration)
    first_a = sorted(zip(a.server_start, a.server_end, strict=True))[0]
    first_b = sorted(zip(b.server_start, b.server_end, strict=True))[0]
    assert first_a == first_b  # the first failure finds the crew free: the same draws
    order = np.argsort(b.server_start, kind="stable")
    # One crew, first failed first served: repairs end in the order of the failures, and take longer.
    assert np.all(np.diff(b.server_end[order]) >= 0)
    assert (b.server_end - b.server_start).mean() > (a.server_end - a.server_start).mean()


def test_failovers_are_the_engines() -> None:
    """The replayed history of active copies holds the engine's failovers and failbacks, at their times."""
    scenario = _scenario()
    result = sim.run(scenario, seed=4)
    cluster = result.cluster
    outages = draw_outages(scenario, cluster, 4, scenario.duration)
    history = replay(cluster, outages, scenario.policies.failover, scenario.duration)
    dbs = cluster.database_ids
    engine = sorted((round(e["time"], 6), e["node"]) for e in result.events
                    if e["kind"] in (FAILOVER, FAILBACK))
    planned = sorted((round(t, 6), dbs[d]) for t, d, new in zip(history.time, history.db, history.new, strict=True)
                     if new >= 0)
    assert len(engine) > 10 and planned == engine


def _cluster(scenario: sim.Scenario):
    import simpy

    from sim.cluster import Cluster
    from sim.topology import build_topology
    from sim.trace import Trace

    return Cluster(simpy.Environment(), scenario, build_topology(scenario), Trace())


def _moves(history) -> list[tuple[float, int, int, int]]:
    return sorted(zip(history.time.round(9).tolist(), history.db.tolist(), history.old.tolist(),
                      history.new.tolist(), strict=True))


@pytest.mark.parametrize("text", [
    LAYOUT,  # crashes every 3 h over 8 servers: many overlap, both copies down at times, a datacenter outage
    LAYOUT.replace("failback: true}", "failback: true, max_activations_per_minute: 3}"),  # the limit binds
    LAYOUT.replace("mtbf: 3h, mttr: 20m}", "mtbf: 3h, mttr: 10s}"),  # back before the failover
    LAYOUT.replace(", {datacenter: b, copies: 1}]}\n    - {id: de", "]}\n    - {id: de"),  # west: one copy
], ids=["overlaps", "rate-limited", "quick-repairs", "one-copy"])
def test_outages_alone_are_written_down_as_the_loop_would(text: str) -> None:
    """The outages that meet no other are written down at once; the history is the event loop's."""
    scenario = _scenario(text)
    cluster = _cluster(scenario)
    neighbours = Neighbours(cluster)
    for seed in (1, 2, 3):
        outages = draw_outages(scenario, cluster, seed, scenario.duration)
        loop = replay(cluster, outages, scenario.policies.failover, scenario.duration)
        quick = replay(cluster, outages, scenario.policies.failover, scenario.duration, neighbours)
        assert len(loop.time) > 20 and _moves(quick) == _moves(loop)


def test_a_fleet_year_written_down_as_the_loop_would() -> None:
    """A year of the shipped two-copies layout: most outages are alone, and the history is the loop's."""
    scenario = sim.load_scenario(SCENARIOS / "layouts" / "year" / "two-copies.yaml")
    cluster = _cluster(scenario)
    outages = draw_outages(scenario, cluster, 9, scenario.duration)
    loop = replay(cluster, outages, scenario.policies.failover, scenario.duration)
    quick = replay(cluster, outages, scenario.policies.failover, scenario.duration, Neighbours(cluster))
    assert len(loop.time) > 500 and _moves(quick) == _moves(loop)


def test_retry_sums_is_the_backoffs_distribution() -> None:
    """Two retries with full jitter from 200 ms (doubling, at most 2 s): S = U(0, 0.2) + U(0, 0.4)."""
    grid, cdf = _retry_sums(_scenario())
    mean = float(np.sum(grid * np.diff(np.r_[0.0, cdf])))
    assert math.isclose(mean, 0.3, abs_tol=0.01)
    assert cdf[-1] == pytest.approx(1.0) and grid[-1] == pytest.approx(0.6, abs=0.011)


def test_curve_shape() -> None:
    """0 at no load, interpolated inside, the served share falling as 1/u beyond the last point."""
    c = Curve(np.array([0.5, 1.0, 2.0]), np.array([0.0, 0.1, 0.5]))
    assert c(np.array([0.0, 0.75, 1.5, 4.0])).tolist() == pytest.approx([0.0, 0.05, 0.3, 0.75])
    assert c.floor == 0.5


def test_refusals_name_the_fault() -> None:
    slow = "  - {id: slow, kind: dependency_slowdown, target: {ids: [directory]}, at: 1h, factor: 3}\n"
    text = LAYOUT.replace("slo:", slow + "slo:")
    text = text.replace("  links:", "  dependencies: [{id: directory, workers: 10, service_time: 5ms}]\n  links:")
    problems = refusals(_scenario(text))
    assert len(problems) == 1 and problems[0][0] == ("faults", 2, "kind")
    assert "'slow'" in problems[0][1] and "dependency_slowdown" in problems[0][1]
    with pytest.raises(ValueError, match="slow"):
        plan(_scenario(text))
    with pytest.raises(sim.ScenarioError, match=r"layout\.yaml:\d+:\d+: faults\[2\]\.kind: .*dependency_slowdown"):
        sim.parse_scenario(text, "layout.yaml", checks=refusals)


def test_same_seed_same_year() -> None:
    scenario = _scenario()
    fleet = Fleet(scenario)
    assert plan(scenario, 2, fleet=fleet) == plan(scenario, 2, fleet=fleet)
    a, b = plan(scenario, 2, fleet=fleet)
    assert a.seed != b.seed and a.availability != b.availability


@pytest.mark.parametrize("load", [
    {"peak": 123.0, "profile": "flat"},
    {"peak": 123.0, "profile": "diurnal", "start": 7777.0},
    {"peak": 50.0, "profile": "monday_morning", "start": 3600.0},
    {"peak": 9.0, "profile": [(3600.0, 0.3), (50000.0, 1.0)], "start": 100.0},
])
def test_rates_are_rate_function_vectorised(load: dict) -> None:
    from sim.scenario import RegionLoad

    region = RegionLoad(**load)
    t = np.linspace(0.0, 3 * 86400.0, 2001)
    f = rate_function(region)
    assert rates(region, t).tolist() == [f(x) for x in t]


@pytest.mark.parametrize("path", PLANNED, ids=[p.stem for p in PLANNED])
def test_shipped_years_plan(path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every shipped planner scenario plans from the command line: availability, downtime, P95, budget."""
    from sim.cli.command import main

    with pytest.raises(SystemExit) as done:
        main(["plan", str(path), "--years", "3", "-j", "0", "-q"])
    out = capsys.readouterr().out
    assert done.value.code in (0, 3)
    assert out.startswith(f"year-{path.stem}  (3 years of 365 d, planned)")
    for word in ("availability", "downtime", "P95", "budget", "lost requests"):
        assert word in out


def test_plan_pairs_layouts_and_writes_every_year(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two layouts: each against the first year by year; --out holds every year (plan.json); --json the same
    answer.
    """
    import json

    from sim.cli.command import main

    two, three = (SCENARIOS / "layouts" / "year" / f"{n}-copies.yaml" for n in ("two", "three"))
    out = tmp_path / "plan"
    with pytest.raises(SystemExit):
        main(["plan", str(two), str(three), "--years", "4", "-j", "0", "-q", "--out", str(out)])
    text = capsys.readouterr().out
    assert "year-three-copies − year-two-copies  (year by year, the same failures)" in text
    saved = json.loads((out / "plan.json").read_text())
    assert [len(layout["rows"]) for layout in saved["layouts"]] == [4, 4]
    first = [row["seed"] for row in saved["layouts"][0]["rows"]]
    assert first == [row["seed"] for row in saved["layouts"][1]["rows"]]  # the same years: paired
    with pytest.raises(SystemExit):
        main(["plan", str(two), "--years", "4", "-j", "0", "-q", "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert answer["layouts"][0]["availability"]["mean"] == saved["layouts"][0]["availability"]["mean"]
