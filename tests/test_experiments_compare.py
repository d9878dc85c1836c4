"""Comparing layouts under common random numbers; capacity questions; the comparison report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sim
from sim.experiments import InProcess, capacity, compare
from sim.experiments.capacity import format_capacity, retry_factor
from tests.conftest import BASE, scenario_from
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[1]

# Databases whose active copy is in dc-a, where servers crash at random; layout "two" adds a copy in dc-b.
CRASHES = {
    "duration": "3m",
    "topology": {"databases": [{"id": "db", "count": 8, "placement": [{"datacenter": "dc-a"}]}]},
    "faults": [
        {
            "id": "crashes",
            "kind": "server_crash",
            "target": {"datacenters": ["dc-a"]},
            "mtbf": "4m",
            "mttr": "1m",
        }
    ],
    "policies": {"failover": {"database_delay": "5s"}},
}
TWO = {
    "topology": {
        "databases": [{"id": "db", "count": 8, "placement": [{"datacenter": "dc-a"}, {"datacenter": "dc-b"}]}]
    }
}


@pytest.fixture(scope="module")
def layouts():
    one = scenario_from(CRASHES)
    two = scenario_from({**CRASHES, "topology": TWO["topology"]})
    return one, two


@pytest.fixture(scope="module")
def comparison(layouts):
    return compare({"one-copy": layouts[0], "two-copies": layouts[1]}, replications=6, executor=InProcess())


def fault_times(result: sim.Result) -> list[tuple[float, str]]:
    return [(e["time"], e["node"]) for e in result.events if e["kind"] == "fault_start"]


def test_the_same_failures_hit_every_layout(layouts):
    one, two = (sim.run(s, seed=123) for s in layouts)
    assert fault_times(one) == fault_times(two) != []


def test_an_extra_copy_never_does_worse_on_the_same_failures(comparison):
    a = comparison.values("one-copy", "availability")
    b = comparison.values("two-copies", "availability")
    assert all(y >= x for x, y in zip(a, b, strict=True)), (a, b)
    assert sum(y > x for x, y in zip(a, b, strict=True)) >= 3
    diff = comparison.differences["two-copies"]["availability"]
    assert diff.mean > 0 and diff.excludes(0.0)
    win = comparison.winners["availability"]
    assert win.layout == "two-copies" and win.significant
    assert comparison.winners["counts.failed"].layout == "two-copies"
    # Pairing is what makes it significant: the unpaired intervals overlap.
    ia, ib = (
        comparison.intervals["one-copy"]["availability"],
        comparison.intervals["two-copies"]["availability"],
    )
    assert diff.half_width < (ia.half_width + ib.half_width)


def test_comparison_report_shows_layouts_side_by_side_with_intervals(comparison, tmp_path):
    folder = comparison.write_report(tmp_path)
    page = (folder / "report.html").read_text()
    for section in (
        "Which layout wins",
        "Paired differences from one-copy",
        "Availability per replication",
        "Downtime per year",
        "Worst cascades",
        "Capacity: can the others absorb",
    ):
        assert section in page, section
    for fid in ("fig-availability", "fig-downtime", "fig-differences"):
        assert f'<div id="{fid}"' in page
    assert page.count("Plotly.newPlot") == 1
    assert 'class="ci">[' in page and "significant" in page
    data = json.loads((folder / "comparison.json").read_text())
    assert data["winners"]["availability"]["layout"] == "two-copies"
    assert data["shared_faults"] == ["crashes"]
    assert set(data["downtime_per_year"]) == {"one-copy", "two-copies"}


def test_capacity_answers_whether_the_others_absorb_a_datacenter():
    # Two regions of 500 requests/s, each nearest its own datacenter of 16 workers at 20 ms: 62.5% busy.
    base = {**BASE, "workload": {"regions": {"r1": {"peak": "500/s"}, "r2": {"peak": "500/s"}}}}
    s = scenario_from(
        {
            "topology": {
                "regions": [
                    {"id": "r1", "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}},
                    {"id": "r2", "datacenters": {"dc-b": "10ms", "dc-a": "40ms"}},
                ]
            },
        },
        base=base,
    )
    report = capacity(s)
    retries = retry_factor(s)  # the client's retries at the objective: 1 + 0.001 + 0.001² (99.9%, 2 retries)
    assert retries == pytest.approx(1.001001)
    assert report.normal.utilisation == pytest.approx({"dc-a": 0.625 * retries, "dc-b": 0.625 * retries})
    assert [(x.lost, x.absorbed) for x in report.losses] == [(("dc-a",), False), (("dc-b",), False)]
    assert report.losses[0].utilisation == pytest.approx({"dc-b": 1.25 * retries})
    assert report.headroom(1) == pytest.approx(1.25 * retries - 1)
    assert (
        # 4 servers × 1.25 × 1.001 (the objective's retries) = 5.005: a sixth server
        report.needed["dc-a"]["n_plus_1"]["servers"] == 6
        and report.needed["dc-a"]["n_plus_1"]["extra_servers"] == 2
    )
    assert report.headroom(2) is None and not report.n_plus_2  # both gone: nobody left
    assert capacity(s, max_utilisation=1.5).n_plus_1
    # Half the load fits.
    half = scenario_from({"workload": {"regions": {"users": {"peak": "400/s"}}}})
    assert capacity(half).n_plus_1


def test_capacity_follows_databases_to_their_next_copy():
    s = scenario_from(
        {
            "topology": {
                "databases": [
                    {"id": "db", "count": 4, "placement": [{"datacenter": "dc-b"}, {"datacenter": "dc-a"}]}
                ]
            },
            "workload": {"regions": {"users": {"peak": "100/s"}}},
        }
    )
    report = capacity(s)
    assert report.normal.utilisation["dc-b"] > 0 and report.normal.routes["users"] == "dc-a"
    lost_b = next(x for x in report.losses if x.lost == ("dc-b",))
    assert lost_b.utilisation["dc-a"] == pytest.approx(100 * retry_factor(s) * 0.02 / 16)
    assert lost_b.unavailable_databases == 0


def test_capacity_counts_surges_and_says_what_it_leaves_out():
    """Monday morning on main: 'N+1: yes' while a 1.25x sign-in storm overloads the survivor in the run."""
    quiet = scenario_from({"workload": {"regions": {"users": {"peak": "300/s"}}}})
    assert capacity(quiet).n_plus_1  # 300/s on 16 workers at 20 ms: 37.5% after the loss
    surge = {"id": "storm", "kind": "traffic_surge", "at": "5m", "duration": "1m", "multiplier": 3,
             "target": {"ids": ["users"]}}
    stormy = scenario_from({"workload": {"regions": {"users": {"peak": "300/s"}}}, "faults": [surge]})
    report = capacity(stormy)
    assert report.surges == {"users": 3.0} and 300.0 <= report.at < 360.0  # the peak is inside the storm
    assert not report.n_plus_1 and report.losses[0].worst[1] == pytest.approx(3 * 0.375 * retry_factor(stormy))
    text = format_capacity(report)
    assert "traffic surges counted: users ×3 at the peak" in text
    assert "the retries of an overload are not" in text
    # N+2 strands the users: every row says so instead of "ok"
    rows = [line for line in text.splitlines() if line.startswith("  dc-") and "%  " in line]
    assert len(rows) == 2 and all(line.rstrip().endswith("impossible") for line in rows)


def test_one_capacity_for_the_command_and_the_run_report():
    """Quickstart on main: 1,090.9/s in the capacity command, 1,200/s in the report's load chart."""
    s = scenario_from({"duration": "2m", "workload": {"requests": {
        "read": {"share": 0.5, "work": 1.0}, "send": {"share": 0.5, "work": 1.5}}}})
    charted = {row["datacenter"]: row["capacity"] for row in sim.run(s).datacenter_series if row["time"] == 0}
    assert charted == pytest.approx(capacity(s).capacity)
    assert charted["dc-a"] == pytest.approx(4 * 4 / (0.020 * 1.25))


def test_cli_compare_and_capacity(tmp_path, capsys):
    a, b = (str(ROOT / "scenarios" / "layouts" / f) for f in ("two-copies.yaml", "three-copies.yaml"))
    out = tmp_path / "cmp"
    assert cli("compare", a, b, "--replications", "2", "-j", "0", "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "two-copies vs three-copies" in text and "wins" in text
    assert (out / "report.html").exists() and (out / "comparison.json").exists()
    assert len(sim.load_results(out)) == 4
    assert cli("compare", a, "-j", "0") == 2
    assert cli("capacity", a) == 0
    assert "can the others absorb" in capsys.readouterr().out
    assert cli("capacity", a, "--max-utilisation", "1%") == 3  # nothing may be more than 1% busy: no N+1
    capsys.readouterr()
    assert cli("capacity", str(ROOT / "scenarios" / "quickstart.yaml"), "--json") == 0
    assert json.loads(capsys.readouterr().out)["n_plus_1"] is True


def test_compare_says_which_faults_the_layouts_share():
    """On main the text said 'same failures in every layout' whatever the files held."""
    from sim.experiments.compare import Comparison
    from sim.experiments.metrics import METRICS
    from sim.experiments.text import format_comparison

    crash = {"id": "crash", "kind": "server_crash", "at": "1m", "duration": "1m", "target": {"ids": ["a-01"]}}
    other = {**crash, "id": "other"}
    rows = [{"layout": n, "replication": i, "seed": i, "availability": 0.99} for n in ("a", "b") for i in range(2)]

    def text(faults_a: list, faults_b: list) -> str:
        scenarios = [scenario_from({"faults": faults_a}), scenario_from({"faults": faults_b})]
        return format_comparison(Comparison(["a", "b"], scenarios, [METRICS["availability"]], rows, 1))

    assert "failures      the same in every layout: crash (paired by fault id)" in text([crash], [crash])
    assert "same failures in every layout" not in text([crash], [other])
    assert ("no fault shared by id: the layouts' failures are drawn independently, not paired; only in a: "
            "crash; only in b: other") in text([crash], [other])
    assert "the same in every layout: crash (paired by fault id); only in b: other" in text([crash], [crash, other])


def test_the_comparison_report_pairs_replications_only_by_shared_faults(tmp_path):
    """The availability figure's caption said 'Replication i of every layout saw the same failures' whatever
    the files held; with no fault id in common the report says they are not matched, caption included."""
    other = {**CRASHES, "faults": [{**CRASHES["faults"][0], "id": "other-crashes"}]}
    cmp = compare({"one": scenario_from(CRASHES), "other": scenario_from(other)}, replications=2,
                  executor=InProcess())
    page = (cmp.write_report(tmp_path) / "report.html").read_text()
    assert "saw the same failures" not in page and "The layouts share no fault ids" in page
    assert "replication i of each saw failures of its own" in page
