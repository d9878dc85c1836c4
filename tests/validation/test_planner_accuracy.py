"""The planner against the full flow-engine runs of the same scenario and seeds (issue: the planner's year).

Accelerated layouts: failure rates high enough that six hours hold many crashes, overlapping ones (both
copies of a database down, a failover onto a server that has already taken another's databases) and a
datacenter outage. The flow engine runs each seed; the planner plans the same seeds (year ``i`` draws
replication ``i``'s failure times, the engine's own). Each region's availability and downtime of the
planner must lie within the 95% interval of the flow runs' mean (Student's t, ``SEEDS - 1`` degrees of
freedom), and its verdicts must be the flow runs' (SLO met or not in most runs, the worst region).
"""

from __future__ import annotations

import math
import statistics
from functools import cache

import pytest

import sim
from sim.planner import PlannedYear, plan
from tests.test_planner import LAYOUT

pytestmark = pytest.mark.slow  # about 60 CPU-seconds: 12 flow-engine runs, two of them overloaded for hours

SEEDS = 6
T_975 = 2.571  # Student's t, 5 degrees of freedom, two-sided 95%

CASES = {
    # Crashes every 3 h per server with 20-minute repairs over 8 servers (both copies of a database down
    # now and then), and datacenter b dark for ten minutes.
    "crashes-and-outage": LAYOUT,
    # The same, with servers that run at 0.6 of their capacity and refuse what would wait over a second: a
    # failover doubles a server's load, so the databases it takes lose requests until their own server is
    # back (failover overload). Two hours: the flow engine steps every second through the overload.
    "failover-overload": LAYOUT.replace("workers: 4, service_time: 40ms", "workers: 1, service_time: 60ms")
                               .replace("east: {peak: 30/s, profile: diurnal}", "east: {peak: 40/s}")
                               .replace("  failover:", "  server: {max_queue_wait: 1s}\n  failover:")
                               .replace("duration: 6h", "duration: 2h").replace("at: 2h", "at: 1h"),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASCADESIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@cache
def _runs(case: str) -> tuple[list[PlannedYear], list[dict]]:
    scenario = sim.parse_scenario(CASES[case], f"{case}.yaml")
    planned = plan(scenario, SEEDS)
    flows = [sim.run(scenario, seed=y.seed).summary for y in planned]
    return planned, flows


def _interval(values: list[float]) -> tuple[float, float]:
    mean = statistics.mean(values)
    half = T_975 * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


@pytest.mark.parametrize("case", sorted(CASES))
def test_planner_within_the_flow_runs_interval(case: str) -> None:
    planned, flows = _runs(case)
    for name in flows[0]["regions"]:
        flow_avail = [f["regions"][name]["availability"] for f in flows]
        flow_down = [f["regions"][name]["downtime_minutes"] for f in flows]
        lo, hi = _interval(flow_avail)
        mine = statistics.mean(y.region_availability[name] for y in planned)
        assert lo <= mine <= hi, f"{case} {name}: availability {mine:.5f} outside the flow runs' [{lo:.5f}, {hi:.5f}]"
        lo, hi = _interval(flow_down)
        mine = statistics.mean(y.region_downtime_minutes[name] for y in planned)
        assert lo <= mine <= hi, f"{case} {name}: downtime {mine:.2f} min outside the flow runs' [{lo:.2f}, {hi:.2f}]"


@pytest.mark.parametrize("case", sorted(CASES))
def test_planner_verdicts_are_the_flow_runs(case: str) -> None:
    planned, flows = _runs(case)
    target = sim.parse_scenario(CASES[case]).slo.availability
    assert sum(y.availability >= target for y in planned) == sum(f["availability"] >= target for f in flows)

    def worst(avail: dict[str, float]) -> str:
        return min(avail, key=lambda r: avail[r])

    flow_worst = [worst({r: x["availability"] for r, x in f["regions"].items()}) for f in flows]
    plan_worst = [worst(y.region_availability) for y in planned]
    assert statistics.mode(plan_worst) == statistics.mode(flow_worst)


def test_failover_overload_is_seen() -> None:
    """Where a failover overloads a server, the planner puts most of the loss there; where it does not, none."""
    planned, _ = _runs("failover-overload")
    assert sum(y.lost_by_mechanism["failover_overload"] for y in planned) > 0.2 * sum(y.lost for y in planned)
    quiet, _ = _runs("crashes-and-outage")
    assert sum(y.lost_by_mechanism["failover_overload"] for y in quiet) == 0.0
