"""The impact on users, computed once in the summary: user-minutes without service, failed requests, mail
delayed apart from mail lost, and an optional cost with the assumption it rests on."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.errors import ScenarioError
from sim.experiments.metrics import DEFAULT_METRICS, extract, metric_names
from tests.conftest import scenario_from

OUTAGE = {"slo": {"window": "1m"},
          "topology": {"regions": [{"id": "users", "users": 100_000,
                                    "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}]},
          "faults": [{"id": "dark", "kind": "datacenter_outage", "at": "2m", "duration": "3m",
                      "target": {"datacenters": ["dc-a"]}}]}


def test_user_minutes_are_the_failed_share_times_the_users_per_window():
    scenario = scenario_from(OUTAGE)
    result = sim.run(scenario)
    impact = result.stats.impact
    rows = result.timeseries
    users = scenario.topology.regions[0].users
    expected = sum(users * (1 - row["ok"] / row["requests"]) for row in rows if row["requests"])
    assert impact.user_minutes == pytest.approx(expected) and impact.user_minutes > 0
    assert impact.regions == {"users": pytest.approx(impact.user_minutes)}
    assert impact.requests_failed == result.stats.requests - result.stats.succeeded > 0
    # never more user-minutes than users × the run's minutes
    assert impact.user_minutes <= users * scenario.duration / 60.0
    assert impact.cost is None and impact.cost_basis is None and impact.mail_delayed is None


def test_a_cost_comes_with_its_assumption():
    scenario = scenario_from({**OUTAGE, "impact": {"cost_per_user_hour": 12, "currency": "EUR"}})
    impact = sim.run(scenario).stats.impact
    assert impact.cost == pytest.approx(impact.user_minutes / 60.0 * 12)
    assert impact.cost_basis is not None
    assert "user-hours without service × 12 EUR per user-hour" in impact.cost_basis
    assert "an assumption, not a measurement" in impact.cost_basis
    with pytest.raises(ScenarioError, match=r"impact\.cost_per_user_hour"):
        scenario_from({"impact": {"cost_per_user_hour": -1}})


def test_no_failure_no_impact():
    impact = sim.run(scenario_from()).stats.impact
    assert impact.user_minutes == 0.0 and impact.requests_failed == 0


def test_experiments_keep_the_impact():
    scenario = scenario_from({**OUTAGE, "impact": {"cost_per_user_hour": 5}})
    stats = sim.run(scenario).stats
    assert "impact.user_minutes" in DEFAULT_METRICS
    names = metric_names(scenario)
    assert {"impact.user_minutes", "impact.requests_failed", "impact.cost"} <= set(names)
    assert "impact.cost" not in metric_names(scenario_from())  # only with a cost per user-hour
    row = extract(stats, ["impact.user_minutes", "impact.cost"])
    assert row == {"impact.user_minutes": stats.impact.user_minutes, "impact.cost": stats.impact.cost}
    assert np.isfinite(row["impact.cost"])


def test_every_output_shows_the_impact(tmp_path):
    """The terminal, report.md and report.html read the same typed fields (none showed them on main)."""
    from sim.cli.text import format_summary
    from sim.report.markdown import render_markdown

    result = sim.run(scenario_from({**OUTAGE, "impact": {"cost_per_user_hour": 12, "currency": "EUR"}}))
    minutes = f"{round(result.stats.impact.user_minutes):,}"
    text = format_summary(result.stats, None)
    assert f"impact        {minutes} user-minutes without service" in text
    assert "cost          " in text and "× 12 EUR per user-hour" in text
    assert f"User-minutes without service | {minutes}" in render_markdown(result)
    page = result.write_report(tmp_path / "r").joinpath("report.html").read_text(encoding="utf-8")
    assert "User-minutes without service" in page and "Estimated cost" in page and minutes in page
