"""Servers for a downtime budget (``cascadesim capacity --years``): the layout planned at several fleet sizes
over the same years, each paired with today's fleet, and the smallest size within the objective's budget.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

import sim
from sim.planner.headroom import SCALES, headroom
from tests.test_cli import cli_output
from tests.test_planner import LAYOUT

# Servers at 0.6 of their capacity that refuse what would wait over a second: a failover doubles a server's
# load (failover overload); half the servers run at 1.2 with no failure at all; twice as many at 0.3, so a
# failover takes them to 0.6 and nothing is lost to overload.
BUSY = (LAYOUT.replace("workers: 4, service_time: 40ms", "workers: 1, service_time: 60ms")
              .replace("east: {peak: 30/s, profile: diurnal}", "east: {peak: 40/s}")
              .replace("  failover:", "  server: {max_queue_wait: 1s}\n  failover:")
              .replace("duration: 6h", "duration: 2h").replace("at: 2h", "at: 1h"))
YEARS = 6


def test_more_servers_take_the_failovers_without_overload_and_fewer_tip_over() -> None:
    planned = headroom(sim.parse_scenario(BUSY), YEARS, scales=(0.5, 2.0))
    half, today, double = planned.sizes
    assert [s.scale for s in planned.sizes] == [0.5, 1.0, 2.0]
    assert [s.servers for s in planned.sizes] == [4, 8, 16]
    overload = [s.years.lost_by_mechanism["failover_overload"] for s in planned.sizes]
    assert overload[1] > 0 and overload[2] == 0.0  # at 0.3, a failover's 0.6 loses nothing
    assert half.years.lost_by_mechanism["quiet"] > 0 == today.years.lost_by_mechanism["quiet"]  # 1.2 without faults
    assert half.years.downtime.mean > today.years.downtime.mean > double.years.downtime.mean
    # Each size against today's, year by year (the same seeds).
    assert today.change is None
    for size in (half, double):
        diffs = [b["downtime_minutes"] - a["downtime_minutes"]
                 for a, b in zip(today.years.rows, size.years.rows, strict=True)]
        assert size.change is not None and size.change.mean == pytest.approx(statistics.mean(diffs))
        assert [r["seed"] for r in size.years.rows] == [r["seed"] for r in today.years.rows]
    # The rules, as defined: the interval of the mean within the budget; the P95 year within it.
    for rule in ("mean", "p95"):
        fit = planned.enough(rule)  # type: ignore[arg-type]
        within = [s for s in planned.sizes
                  if (s.years.downtime_percentiles["p95"] if rule == "p95" else s.years.downtime.high)
                  <= planned.budget_minutes]
        assert fit is (within[0] if within else None)


def test_factors_that_round_to_a_fleet_already_planned_are_planned_once() -> None:
    planned = headroom(sim.parse_scenario(BUSY), 2, scales=(0.9, 1.1, 1.5))
    # 4 servers a group: ×0.9 and ×1.1 round back to 4; ×1.5 gives 6.
    assert [(s.scale, s.servers) for s in planned.sizes] == [(1.0, 8), (1.5, 12)]


def test_capacity_with_years_writes_the_plan_into_its_report(tmp_path: Path, capsys) -> None:
    path = tmp_path / "busy.yaml"
    path.write_text(BUSY)
    out = tmp_path / "capacity"
    code, text, _ = cli_output(capsys, "capacity", path, "--years", YEARS, "-j", "0", "-q", "--out", out)
    data = json.loads((out / "capacity.json").read_text())
    planned = data["planned"]
    assert [s["scale"] for s in planned["sizes"]] == [f for f in SCALES if f in (0.8, 1.0, 1.25, 1.5, 2.0)]
    today = next(s for s in planned["sizes"] if s["scale"] == 1.0)
    assert today["years"] == YEARS and today["change"] is None
    assert code == (0 if data["n_plus_1"] and today["meets_mean"] else 3)
    assert "servers for the downtime budget" in text and "enough for its mean run (95% sure):" in text
    page = (out / "report.html").read_text()
    assert "Servers for the downtime budget (planned)" in page and 'id="fig-planned"' in page
    assert f"Planned over {YEARS} runs, today's 8 servers have" in data["finding"]


def test_capacity_years_refuses_what_the_planner_cannot_plan(tmp_path: Path, capsys) -> None:
    path = tmp_path / "memory.yaml"
    memory = "memory: {limit: 16GB, base: 8GB, per_request: 40MB}"
    path.write_text(BUSY.replace("workers: 1, service_time: 60ms", f"workers: 1, service_time: 60ms, {memory}"))
    code, _, err = cli_output(capsys, "capacity", path, "--years", 3, "-q")
    assert code == 2 and "memory.yaml:" in err and "crash when they run out of memory" in err
    code, _, err = cli_output(capsys, "capacity", path, "--seed", 3)
    assert code == 2 and "--seed is for the planned years" in err
