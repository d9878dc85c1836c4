"""The planner's report: which layout, how many minutes a year, how sure; where the loss comes from; what moves it."""

from __future__ import annotations

import json
import re

import pytest

import sim
from sim.bounds import structure_bound
from sim.experiments.report.planner import minutes, render_plan
from sim.planner.sensitivity import FACTORS, sensitivity
from sim.planner.years import YearsSummary, paired, plan_years
from tests.test_planner_pricing import LAYOUT

YEARS = 6


@pytest.fixture(scope="module")
def page() -> tuple[str, list[YearsSummary], list[dict]]:
    two = sim.parse_scenario(LAYOUT, "two.yaml")
    three = sim.parse_scenario(LAYOUT.replace("name: pricing", "name: roomier")
                               .replace("count: 4, workers: 4", "count: 6, workers: 4"), "three.yaml")
    summaries = [YearsSummary.of(s, plan_years(s, YEARS)) for s in (two, three)]
    comparisons = [paired(summaries[0], summaries[1])]
    by = {f.name: f for f in FACTORS}
    sens = sensitivity(two, summaries[0], YEARS, factors=(by["mtbf"], by["failover_delay"]))
    return render_plan(summaries, comparisons, [sens, None], seed=3), summaries, comparisons


def _figure(html: str, fid: str) -> dict:
    m = re.search(r'<script type="application/json" id="data-' + fid + r'"[^>]*>(.*?)</script>', html, re.S)
    assert m, f"no figure {fid}"
    return json.loads(m.group(1))


def test_the_finding_names_the_layout_with_the_least_downtime(page) -> None:
    html, summaries, comparisons = page
    best = min(summaries, key=lambda s: s.downtime.mean)
    assert best.scenario == "roomier"  # two more servers a datacenter: less failover overload
    finding = re.search(r'<section id="finding">(.*?)</section>', html, re.S).group(1)
    assert "roomier has the least downtime" in finding and "Against pricing" in finding


def test_every_year_of_every_layout_is_drawn_with_the_budget(page) -> None:
    html, summaries, _ = page
    fig = _figure(html, "fig-downtime")
    assert [t["name"] for t in fig["data"]] == ["pricing", "roomier"]
    for trace, s in zip(fig["data"], summaries, strict=True):
        assert trace["y"] == [r["downtime_minutes"] for r in s.rows]
    assert fig["layout"]["shapes"][0]["y0"] == pytest.approx(summaries[0].budget_minutes)


def test_the_pareto_shares_add_up_to_all_lost_requests(page) -> None:
    html, summaries, _ = page
    for trace in _figure(html, "fig-pareto")["data"]:
        assert sum(trace["y"]) == pytest.approx(100.0)
        assert trace["y"][1] == max(trace["y"])  # failover overload, as the layout is built to show


def test_the_tornado_shows_each_swing_with_its_interval(page) -> None:
    html, _, _ = page
    fig = _figure(html, "fig-tornado-pricing")
    low, high = fig["data"]
    assert set(low["y"]) == {"time between failures", "failover delay"}
    mtbf = low["y"].index("time between failures")
    assert low["x"][mtbf] > 0 > high["x"][mtbf]  # failures twice as often cost more, half as often less
    assert "fig-tornado-roomier" not in html  # no sensitivity asked for the second layout


def test_the_structure_only_bound_is_in_the_tables(page) -> None:
    """Each region's bound is the Markov models' (sim.bounds); the layouts table shows the worst region's."""
    html, summaries, _ = page
    bound = structure_bound(sim.parse_scenario(LAYOUT, "two.yaml"))
    per_region = {r.region: r.minutes_per_year for r in bound.regions}
    assert summaries[0].structure == per_region and all(m is not None and m > 0 for m in per_region.values())
    worst = max(per_region.values())
    assert summaries[0].structure_worst() == worst
    table = re.search(r'<table id="layouts">(.*?)</table>', html, re.S).group(1)
    assert "structure-only bound" in table and minutes(worst) in table
    regions = re.search(r'<table id="regions-pricing">(.*?)</table>', html, re.S).group(1)
    assert all(minutes(m) in regions for m in per_region.values())


def test_plan_with_sensitivity_prints_and_draws_what_moves_the_downtime(tmp_path, capsys) -> None:
    from sim.cli.command import main

    layout = tmp_path / "pricing.yaml"
    layout.write_text(LAYOUT)
    out = tmp_path / "plan"
    with pytest.raises(SystemExit):
        main(["plan", str(layout), "--years", "3", "--sensitivity", "-j", "0", "-q", "--out", str(out)])
    text = capsys.readouterr().out
    moves = [line.strip() for line in text[text.index("  what moves it"):].splitlines()[1:6]]
    by_label = {f.label: f.name for f in FACTORS}
    printed = [next(label for label in by_label if line.startswith(label)) for line in moves]
    assert sorted(printed) == sorted(by_label)
    assert "copies alone" in text and text.endswith(f"  report        {out / 'report.html'}\n")
    saved = json.loads((out / "plan.json").read_text())
    swings = saved["sensitivity"][0]["swings"]
    assert [s["factor"] for s in swings] == [by_label[label] for label in printed]  # largest swing first
    widths = [max(abs(s[k]["mean"]) for k in ("low_change", "high_change") if s[k]) for s in swings]
    assert widths == sorted(widths, reverse=True)
    html = (out / "report.html").read_text()
    assert len(_figure(html, "fig-tornado-pricing")["data"][0]["y"]) == len(FACTORS)
