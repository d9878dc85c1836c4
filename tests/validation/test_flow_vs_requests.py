"""The flow engine against the request engine on every scenario small enough for both.

For each shipped small scenario (quickstart, Monday morning, every file in ``scenarios/mechanisms/``)
both engines run over the same seeds (the flow engine's arrivals are deterministic; its seed only draws
the health checks, which are single requests, and the bursts that run a server out of memory). They
must agree on:

- overall availability: the flow engine's mean within 0.5 percentage points of the request engine's;
- the verdict: recovered or metastable, as the majority of each engine's seeds;
- the root of the worst cascade: the same fault;
- time to detect each fault: within one health-check sweep (3 intervals) plus the request engine's own
  spread over its seeds;
- time to recover from each fault: never on both engines, or within one SLO window plus the request
  engine's spread.

Where they disagree by design, :data:`KNOWN_GAPS` names the reason and the bound that still holds; those
scenarios are checked against the wider bound (so a regression still fails) and stay listed in the
issue until the model closes the gap.
"""

from __future__ import annotations

import statistics
from functools import cache
from pathlib import Path

import pytest

import sim

ROOT = Path(__file__).resolve().parents[2]
SMALL = sorted((ROOT / "scenarios" / "mechanisms").glob("*.yaml")) + [ROOT / "scenarios" / "quickstart.yaml",
                                                                       ROOT / "scenarios" / "monday-morning.yaml"]
SEEDS = (1, 2, 3, 4)
TOLERANCE_PP = 0.5

# Scenario -> (why the engines disagree, the largest difference in percentage points that still holds).
KNOWN_GAPS: dict[str, tuple[str, float]] = {
    "adaptive-lifo.yaml": (
        "adaptive LIFO is not modelled: the flow engine's queues are FIFO fluids, so under the 31% overload "
        "it serves what the request engine's FIFO would, not the newest requests first", 2.0),
    "crash-under-overload.yaml": (
        "overload with a short queue and crash under overload: the fluid queue sits exactly at its limit, "
        "while the request engine's queue fluctuates below it, so more of its requests time out before "
        "the crash and its servers crash at slightly different moments", 4.0),
    "ejection-cascade.yaml": (
        "a cascade set off by random health-check failures at 87% utilisation: whether and when the pool "
        "collapses is random (the request engine's availability over four seeds: 57% to 86%, one seed "
        "metastable); both engines draw the checks from the waits, but the means of a two-way outcome over "
        "four seeds differ by up to twice their standard errors (about 7 pp each)", 20.0),
    "failover-overload.yaml": (
        "the survivor runs at 140%: its queue is pinned at the limit in the fluid model, while the request "
        "engine's queue cycles through health-check ejections and refills and serves more requests just "
        "inside the client timeout; the fluid answer also depends on the step here (54.8% at 1 s, 48.1% "
        "at 0.1 s, against 56.9%)", 4.5),
    "human-error.yaml": (
        "one server carries 150% of its capacity and is ejected and readmitted every 25 s. After each "
        "readmission the request engine serves about 4 s of arrivals before the wait passes the 2-s "
        "timeout (about 260 requests), the flow engine about 2 s (120): at 1-s steps the retries of the "
        "last second out of rotation all come due in the first second back (120 attempts against 62), "
        "and the stationary M/M/c wait at the 98% cap (1.25 s here) is added at once to the growing "
        "fluid backlog. Without that wait and at 0.1-s steps the gap is -1.3 pp, but other scenarios then "
        "leave their bounds (Monday morning +2 pp, crash-under-overload +5 pp)", 4.0),
    "retry-storm.yaml": (
        "a metastable retry storm: both stay down after the trigger; how much gets through while collapsed "
        "depends on how the stochastic queue fluctuates around its limit", 2.5),
}


# Scenario -> (why detection and recovery differ by more than a health-check sweep and an SLO window,
# the differences in seconds that still hold for detection and for recovery).
TIMING_GAPS: dict[str, tuple[str, float, float]] = {
    "monday-morning.yaml": (
        "the rollout's alert (error rate over 2%, checked each minute) fires 1-3.5 minutes earlier on the "
        "flow engine (2,315-2,400 s over seeds 1-4, against 2,450-2,520 s), and every fault's recovery "
        "comes 4-14 minutes later (the rollout's at 3,300-3,900 s against 3,000-3,180 s). The cascade "
        "takes another path (seed 1): on the request engine seven servers crash in minute 72 and the "
        "traffic manager moves the users away in minute 74, which ends the incident by minute 81; on the "
        "flow engine the servers crash one or two at a time from minute 68, the datacenter never looks "
        "dark enough to move its users, and the tail lasts to minute 86. Availability agrees (-0.43 pp)", 300.0, 600.0),
}


@cache
def requests_run(path: str, seed: int) -> dict:
    scenario = sim.load_scenario(path, {"engine": "requests"})
    return sim.run(scenario, seed=seed).summary


@cache
def flow_run(path: str, seed: int) -> dict:
    return sim.run(sim.load_scenario(path, {"engine": "flow"}), seed=seed).summary


def _health_interval(path: str) -> float:
    return sim.load_scenario(path).policies.load_balancer.health_check.interval


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_flow_agrees_with_requests(path: Path) -> None:
    key = str(path)
    runs = [requests_run(key, s) for s in SEEDS]
    flows = [flow_run(key, s) for s in SEEDS]
    mean = statistics.mean(r["availability"] for r in runs)
    flow_mean = statistics.mean(r["availability"] for r in flows)
    diff_pp = 100 * (flow_mean - mean)
    reason, bound = KNOWN_GAPS.get(path.name, ("", TOLERANCE_PP))
    assert abs(diff_pp) <= bound, f"{path.name}: flow {flow_mean:.5f} vs requests {mean:.5f} " \
                                  f"({diff_pp:+.2f} pp, bound {bound} pp){'; known: ' + reason if reason else ''}"
    if reason:  # a gap the model has closed leaves the list
        assert abs(diff_pp) > TOLERANCE_PP, f"{path.name} now agrees within {TOLERANCE_PP} pp: drop it from KNOWN_GAPS"
    def majority(summaries: list[dict]) -> bool:
        return sum(r["recovery"]["recovered"] for r in summaries) * 2 > len(summaries)

    assert majority(flows) == majority(runs), path.name
    assert statistics.mode(r["worst_fault"] for r in flows) == statistics.mode(r["worst_fault"] for r in runs)
    flow = flows[0]
    if path.name == "ejection-cascade.yaml":
        return  # detection and recovery follow the random first ejection, see KNOWN_GAPS
    why, slack, late = TIMING_GAPS.get(path.name, ("", 3 * _health_interval(key), 0.0))
    # Recovery, per fault: never on both, or within one SLO window plus the request engine's spread.
    window = sim.load_scenario(key).slo.window
    for i, fault in enumerate(flow["faults"]):
        recovered = [r["faults"][i]["time_to_recover"] for r in runs]
        known = [d for d in recovered if d is not None]
        if not known:
            assert fault["time_to_recover"] is None, (path.name, fault["id"])
            continue
        assert fault["time_to_recover"] is not None, (path.name, fault["id"])
        spread = max(known) - min(known)
        assert abs(fault["time_to_recover"] - statistics.mean(known)) <= max(window, late) + spread, \
            (path.name, fault["id"], why)
    for i, fault in enumerate(flow["faults"]):
        detected = [r["faults"][i]["time_to_detect"] for r in runs]
        if all(d is None for d in detected):
            assert fault["time_to_detect"] is None, (path.name, fault["id"])
            continue
        known = [d for d in detected if d is not None]
        spread = max(known) - min(known)
        assert fault["time_to_detect"] is not None, (path.name, fault["id"])
        assert abs(fault["time_to_detect"] - statistics.mean(known)) <= slack + spread, (path.name, fault["id"], why)
