"""The load_balancer_failure fault (sim/fault_lb.py) on both engines, through its mechanism scenario.

West's load balancers fail at 2 minutes for 4: west's users see errors at once, the traffic manager
moves them to east, and they are served again long before the load balancers come back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
from sim.events import FAULT_END, FAULT_START, KINDS, TRAFFIC_SHIFT
from sim.fault_lb import LB_DOWN, LB_UP
from sim.faults import FAULT_KINDS, LoadBalancerFailure
from sim.report.style import CSS
from tests.conftest import cause_chain
from tests.shipped import group, run_shipped

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "mechanisms" / "load-balancer-failure.yaml"
START, END = 120.0, 360.0  # the fault's at and at + duration
pytestmark = group(SCENARIO)  # the runs are shared with the other modules (tests/shipped.py)


@pytest.fixture(scope="module", params=["flow", "requests"])
def result(request: pytest.FixtureRequest) -> sim.Result:
    return run_shipped(SCENARIO, engine=request.param)


def _west(result: sim.Result) -> dict[float, float | None]:
    return {row["time"]: row["availability"] for row in result.timeseries if row["region"] == "west-users"}


def test_the_kind_and_its_events_are_registered():
    assert FAULT_KINDS["load_balancer_failure"] is LoadBalancerFailure
    assert KINDS[LB_DOWN].harm and KINDS[LB_DOWN].ends == LB_UP
    assert f"tr.k-{LB_DOWN} .kind" in CSS and f"tr.k-{LB_UP} .kind" in CSS  # registered before the style


def test_users_fail_then_move_then_recover_before_the_fault_ends(result: sim.Result):
    west = _west(result)
    assert all(west[t] == 1.0 for t in west if t < START)  # fine before
    assert west[START] is not None and west[START] < 0.9  # tries fail at once: no route through the front door
    shifts = [e for e in result.events if e["kind"] == TRAFFIC_SHIFT and e["node"] == "west-users"]
    moved = next(e for e in shifts if e["time"] > START and "west -> east" in e["detail"])
    assert moved["time"] < START + 60  # the traffic manager's 30 s delay plus a sweep
    recovered = [t for t in west if START < t < END and west[t] == 1.0]
    assert recovered and min(recovered) < END - 60  # served again well before the fault ends
    assert any(e["time"] >= END and "east -> west" in e["detail"] for e in shifts)  # and back after it
    assert result.summary["availability"] > 0.95


def test_the_log_names_the_fault_as_root_cause(result: sim.Result):
    kinds = [e["kind"] for e in result.events]
    assert LB_DOWN in kinds and LB_UP in kinds
    down = next(e for e in result.events if e["kind"] == LB_DOWN)
    assert down["node"] == "west" and down["time"] == START and down["fault"] == "west-lb"
    assert cause_chain(result, down)[-1] == FAULT_START
    up = next(e for e in result.events if e["kind"] == LB_UP)
    assert up["time"] == END and cause_chain(result, up)[1:] == [FAULT_END, FAULT_START]
    moved = next(e for e in result.events if e["kind"] == TRAFFIC_SHIFT and e["time"] > START)
    chain = cause_chain(result, moved)
    assert LB_DOWN in chain and chain[-1] == FAULT_START
    assert moved["fault"] == "west-lb"
    fault = result.summary["faults"][0]
    assert fault["kind"] == "load_balancer_failure" and fault["recovered"] and "west" in fault["affected"]


def test_the_report_renders(result: sim.Result, tmp_path: Path):
    sim.write_report(result, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert LB_DOWN in page and LB_UP in page
