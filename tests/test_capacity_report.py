"""The capacity report: ``cascadesim capacity --out FOLDER`` writes report.html and capacity.json (on main
it wrote nothing: the answer existed only in the terminal), opening with a finding that names the weakest
datacenter and its headroom, into a folder it may write, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sim
from sim.experiments.capacity import capacity
from sim.experiments.findings import capacity_finding, weakest_datacenter
from sim.experiments.report import capacity_data, render_capacity
from sim.report.folders import OutputError, check_output_folder, output_kind
from sim.report.style import BAD_EDGE, GOOD, WORST, good_bad_scale, scale_colour
from tests.conftest import BASE, scenario_from
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[1]
MONDAY = ROOT / "scenarios" / "monday-morning.yaml"

# Two regions of 500 requests/s, each nearest its own datacenter of 16 workers at 20 ms (62.5% busy); when
# one fails the other carries both at 125%.
TWO_REGIONS = {
    "topology": {
        "regions": [
            {"id": "r1", "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}},
            {"id": "r2", "datacenters": {"dc-b": "10ms", "dc-a": "40ms"}},
        ]
    },
}
BUSY = {**BASE, "workload": {"regions": {"r1": {"peak": "500/s"}, "r2": {"peak": "500/s"}}}}


def test_the_finding_names_the_weakest_datacenter_and_what_it_lacks():
    report = capacity(scenario_from(TWO_REGIONS, base=BUSY))
    # dc-a alone: (500 + 500) / 800 per second = 125% (× 1.001, the objective's retries); dc-b alone the
    # same. Ties go to the first name.
    dc, lost, u = weakest_datacenter(report)
    assert (dc, lost) == ("dc-a", "dc-b") and u == pytest.approx(1.25 * 1.001001)
    text = capacity_finding(report)
    assert "dc-a is the weakest datacenter: if dc-b fails it runs at 125.1% of its capacity, 25.1 points over " \
           "the 100% limit, and needs 2 more servers to absorb it." in text
    assert "N+1 does not hold: the loss of dc-a or dc-b is not absorbed" in text
    assert "N+2 is impossible with this topology" in text
    assert "Not counted: the retries of an overload" in text


def test_the_finding_gives_the_headroom_left_when_every_loss_is_absorbed():
    report = capacity(scenario_from(TWO_REGIONS, base=BUSY), max_utilisation=1.5)
    text = capacity_finding(report)
    assert "if dc-b fails it runs at 125.1% of its capacity, leaving 24.9 points of headroom under the 150% " \
           "limit." in text
    assert "N+1 holds: the loss of any one datacenter is absorbed." in text


def test_monday_morning_eu_north_is_the_weakest():
    """The scenario's own story: eu-north cannot absorb eu-west (the simulation shows it overloading)."""
    report = capacity(sim.load_scenario(MONDAY))
    data = capacity_data(report)
    assert data["weakest"]["datacenter"] == "eu-north" and data["weakest"]["lost"] == "eu-west"
    assert data["weakest"]["headroom"] < 0 and data["n_plus_1"] is False
    assert data["finding"].startswith("At the peak (1:44:56.4 into the run, 260/s offered, counting the europe "
                                      "×1.25 surge and the client retries the availability objective allows)")
    assert data["assumptions"] == report.assumptions and len(data["assumptions"]) == 3


def test_the_page_opens_with_the_finding_and_prints_what_is_counted():
    report = capacity(sim.load_scenario(MONDAY))
    page = render_capacity(report)
    assert page.index('id="finding"') < page.index('id="fig-utilisation"') < page.index('id="datacenters"')
    for assumption in report.assumptions:
        assert assumption.replace("'", "&#x27;") in page
    assert 'data-figure="fig-utilisation"' in page and "<script" in page  # plotly and the figure's JSON
    assert '<tr class="worst"><td>eu-north</td>' in page  # the weakest datacenter is highlighted
    assert "over by 48.6%" in page


def test_the_heatmap_is_green_up_to_the_limit_and_red_beyond():
    scale = good_bad_scale("lower", cut=0.5)
    assert scale_colour(scale, 0.0) == scale_colour(scale, 0.49) == GOOD
    assert scale_colour(scale, 0.51) == BAD_EDGE and scale_colour(scale, 1.0) == WORST


def test_cli_writes_the_report_into_its_own_folder(tmp_path, capsys):
    out = tmp_path / "capacity"
    assert cli("capacity", str(MONDAY), "--out", str(out)) == 3  # N+1 does not hold
    text = capsys.readouterr().out
    assert "can the others absorb its users?" in text and f"report        {out / 'report.html'}" in text
    assert sorted(p.name for p in out.iterdir()) == ["capacity.json", "report.html"]
    assert json.loads((out / "capacity.json").read_text())["weakest"]["datacenter"] == "eu-north"
    assert output_kind(out) == "capacity" and check_output_folder(out, "capacity") == out.resolve()
    # again over its own output; --json prints the JSON alone
    assert cli("capacity", str(MONDAY), "--out", str(out), "--json") == 3
    assert json.loads(capsys.readouterr().out)["n_plus_1"] is False


def test_cli_refuses_a_folder_that_is_not_its_own(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert cli("capacity", str(MONDAY), "--out", str(foreign)) == 2
    assert "is not empty and is not a cascadesim output (it holds notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    run = sim.run(scenario_from({"duration": "1m"})).write_report(tmp_path / "run")
    assert cli("capacity", str(MONDAY), "--out", str(run)) == 2
    assert "holds the output of 'cascadesim run', not of 'cascadesim capacity'" in capsys.readouterr().err
    assert not (run / "capacity.json").exists()
    capacity_folder = tmp_path / "capacity"
    assert cli("capacity", str(MONDAY), "--out", str(capacity_folder)) == 3
    capsys.readouterr()
    with pytest.raises(OutputError, match="holds the output of 'cascadesim capacity'"):
        check_output_folder(capacity_folder, "run")
