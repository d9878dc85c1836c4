"""Sweeps: paths, validation with file:line, designs, every shipped sweep at a small size, the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.experiments import InProcess, ProcessPool, ResultStore, load_results, load_sweep, run_sweep
from sim.experiments.sweep import assign, parse_path, parse_sweep
from sim.experiments.text import metric_title
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))
RETRY_STORM = "../mechanisms/retry-storm.yaml"


def sweep_text(body: str, base: str = RETRY_STORM) -> str:
    return f"name: t\nbase: {base}\n{body}"


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        parse_sweep(text, "s.yaml", ROOT / "scenarios" / "sweeps")
    return [str(p) for p in err.value.problems]


@pytest.fixture(scope="module")
def pool():
    with ProcessPool(2) as executor:
        yield executor


def test_paths():
    assert parse_path("faults[0].at") == ("faults", 0, "at")
    assert parse_path("topology.regions['eu.west'].users") == ("topology", "regions", "eu.west", "users")
    assert parse_path("topology.databases.db.placement.*.copies")[-2:] == ("*", "copies")
    for bad in ("a..b", "a.", "", "a[0"):
        with pytest.raises(ValueError):
            parse_path(bad)
    data = {
        "faults": [{"kind": "server_crash"}, {"id": "x", "kind": "drain"}],
        "topology": {"databases": [{"id": "db", "placement": [{"datacenter": "a"}, {"datacenter": "b"}]}]},
    }
    assign(data, parse_path("faults.server_crash-0.at"), 5)
    assign(data, parse_path("faults.x.at"), 6)
    assign(data, parse_path("topology.databases.db.placement.*.copies"), 2)
    assign(data, parse_path("topology.databases.db.placement.b.copies"), 3)
    assert [f["at"] for f in data["faults"]] == [5, 6]
    assert [p["copies"] for p in data["topology"]["databases"][0]["placement"]] == [2, 3]
    with pytest.raises(
        ValueError, match="no item 'xx' in faults \\(did you mean 'x'\\?\\); known: server_crash-0, x"
    ):
        assign(data, parse_path("faults.xx.at"), 1)
    with pytest.raises(ValueError, match="is a value"):
        assign(data, parse_path("faults.x.kind.deeper"), 1)


def test_every_problem_is_reported_at_its_line():
    text = sweep_text(
        "paramters: {}\n"  # 3
        "parameters:\n"  # 4
        "  policies.client.retriez: [0, 1]\n"  # 5
        "  policies.client.retries: [0, 1, 25]\n"  # 6
        "  faults.bursst.multiplier: [2, 3]\n"  # 7
        "  workload.regions.users.peak: {range: [6, 14], steps: 1}\n"  # 8
        "  seed: [1, 2]\n"  # 9
        "design: gird\n"  # 10
        "metrics: [availability, latency.p95]\n"  # 11
        "report: {metastability: {size: faults.burst.multiplier, duration: nope}}\n"  # 12
    )
    found = problems(text)
    expected = [
        ("s.yaml:3:1: paramters: unknown field 'paramters' (did you mean 'parameters'?", None),
        (
            "s.yaml:5:3: parameters['policies.client.retriez']:",
            "unknown field 'retriez' (did you mean 'retries'?",
        ),
        ("s.yaml:6:35: parameters['policies.client.retries'][2]:", "too large (got 25, expected at most 20)"),
        (
            "s.yaml:7:3: parameters['faults.bursst.multiplier']:",
            "no item 'bursst' in faults (did you mean 'burst'?)",
        ),
        ("s.yaml:8:56: parameters['workload.regions.users.peak'].steps:", "expected a whole number ≥ 2"),
        ("s.yaml:9:3: parameters.seed:", "cannot be swept"),
        ("s.yaml:10:9: design: unknown design", "did you mean 'grid'?"),
        ("s.yaml:11:25: metrics[1]: no metric 'latency.p95'", "did you mean 'latency.p99'?"),
    ]
    for start, part in expected:
        assert any(p.startswith(start) and (part is None or part in p) for p in found), (start, found)


def test_values_must_fit_the_base_scenario_and_set_is_checked():
    found = problems(sweep_text("set: {duration: 2m}\nparameters: {policies.client.retries: [1]}\n"))
    assert len(found) == 1 and found[0].startswith(
        "s.yaml:3:17: set.duration: '2m' does not fit the base scenario"
    )
    assert "faults[0].at: starts after the run ends" in found[0]
    found = problems(sweep_text("parameters:\n  faults.burst.at: [1m, 20m]\n"))
    assert found == [
        "s.yaml:4:25: parameters['faults.burst.at'][1]: '20m' does not fit the base scenario: "
        "faults[0].at: starts after the run ends (got 20m, expected less than the scenario's "
        "duration, 15m)"
    ]
    found = problems("name: t\nparameters: {a: [1]}\n")
    assert found == [
        "s.yaml:1:1: missing required field 'base' (the scenario file to vary, relative to this file)"
    ]
    found = problems(sweep_text("parameters: {a: [1]}\n", base="nowhere.yaml"))
    assert found[0].startswith("s.yaml:2:7: base: no scenario file 'nowhere.yaml'")


def test_designs_are_deterministic_and_cover_the_ranges():
    body = (
        "parameters:\n  workload.regions.users.peak: {range: [6, 14]}\n  policies.client.retries: [0, 1, 2]\n"
        "design: latin_hypercube\nsamples: 8\nreplications: 1\n"
    )
    a = parse_sweep(sweep_text(body), "s.yaml", ROOT / "scenarios" / "sweeps")
    b = parse_sweep(sweep_text(body), "s.yaml", ROOT / "scenarios" / "sweeps")
    peaks = [p.params["workload.regions.users.peak"] for p in a.points]
    assert peaks == [p.params["workload.regions.users.peak"] for p in b.points]
    assert len(a.points) == 8 and all(6 <= x <= 14 for x in peaks)
    # Latin hypercube: one sample in each eighth of the range.
    assert sorted(int((x - 6) / 1.0) for x in peaks) == list(range(8))
    assert {p.params["policies.client.retries"] for p in a.points} <= {0, 1, 2}
    grid = parse_sweep(
        sweep_text(
            "parameters:\n  policies.client.retries: [0, 1]\n  "
            "workload.regions.users.peak: {range: [6, 14], steps: 3}\n"
        ),
        "s.yaml",
        ROOT / "scenarios" / "sweeps",
    )
    assert [tuple(p.params.values()) for p in grid.points] == [
        (0, 6.0),
        (0, 10.0),
        (0, 14.0),
        (1, 6.0),
        (1, 10.0),
        (1, 14.0),
    ]
    assert grid.points[4].scenario.policies.client.retries == 1
    assert grid.points[4].scenario.workload.regions["users"].peak == 10.0


def test_shipped_sweeps_cover_the_three_questions():
    names = {p.stem for p in SWEEPS}
    assert {"retry-storm-retries-load", "database-copies-layout", "bad-update-detection"} <= names
    for path in SWEEPS:
        assert path.read_text().startswith("# A sweep (not a scenario)")


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_each_shipped_sweep_runs_at_a_small_size(path, pool, tmp_path):
    sweep = load_sweep(path)
    small = sweep.subset(values=2, replications=1, samples=4)
    assert len(small.points) <= 4 and small.runs <= 4
    result = run_sweep(small, executor=pool, out=tmp_path / "runs")
    df = load_results(tmp_path)
    assert len(df) == small.runs == len(result.rows)
    for p in sweep.parameters:
        assert p.path in df.columns
    for m in sweep.metrics:
        assert m.name in df.columns
    folder = result.write_report(tmp_path)
    page = (folder / "report.html").read_text()
    summary = json.loads((folder / "sweep.json").read_text())
    assert len(summary["points"]) == len(small.points)
    first = sweep.metrics[0]
    # Each figure is titled in words, and names the metric and the parameter as the sweep file does.
    assert f"<h2>{metric_title(first)} against " in page
    assert f"Parameter {sweep.parameters[0].path}, metric {first.name}." in page
    assert page.count("Plotly.newPlot") == 1 and "<h2>Every point</h2>" in page
    if sweep.metastability:
        assert 'id="fig-metastability"' in page


def test_sweep_report_shows_intervals_heatmaps_and_the_metastability_map(pool, tmp_path):
    sweep = load_sweep(ROOT / "scenarios" / "sweeps" / "retry-storm-metastability.yaml").subset(
        values=2, replications=2
    )
    result = run_sweep(sweep, executor=pool)
    page = result.write_report(tmp_path).joinpath("report.html").read_text()
    blocks = dict(re.findall(r'data-figure="([^"]+)">(.*?)</script>', page))
    meta = json.loads(
        blocks["fig-metastability"].replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&")
    )
    z = meta["data"][0]["z"]
    assert len(z) == 2 and all(v is None or 0 <= v <= 1 for row in z for v in row)
    assert z[0][0] == 1.0 and z[-1][-1] == 0.0, "a small short surge recovers; a big long one does not"
    line = json.loads(
        blocks["fig-availability-faults-burst-multiplier"]
        .replace("\\u003c", "<")
        .replace("\\u003e", ">")
        .replace("\\u0026", "&")
    )
    assert all("error_y" in trace for trace in line["data"])
    assert any(k.startswith("fig-heat-") for k in blocks)
    assert re.search(r'<span class="ci">\[[^]]+\]</span>', page), "the points table shows intervals"


class Killed(InProcess):
    """Runs tasks here, notes which, and is killed (KeyboardInterrupt) after ``after`` of them."""

    def __init__(self, after: int | None = None):
        self.after, self.ran = after, []

    def map(self, fn, tasks):
        for task, row in super().map(fn, tasks):
            if len(self.ran) == self.after:
                raise KeyboardInterrupt
            self.ran.append(task.run_id)
            yield task, row


def test_resume_completes_a_sweep_killed_midway(tmp_path):
    sweep = load_sweep(ROOT / "scenarios" / "sweeps" / "retry-storm-retries-load.yaml").subset(
        values=2, replications=2
    )
    whole = run_sweep(sweep, executor="here").rows
    killed = Killed(after=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, executor=killed, out=tmp_path / "runs")
    assert len(load_results(tmp_path)) == 3
    again = Killed()
    result = run_sweep(sweep, executor=again, out=tmp_path / "runs", resume=True)
    assert len(again.ran) == len(whole) - 3 and not set(again.ran) & set(killed.ran)
    assert result.rows == whole
    assert ResultStore.open(tmp_path / "runs").table().to_pylist() == whole


def test_cli_sweep_dry_run_errors_and_a_run(tmp_path, capsys):
    path = ROOT / "scenarios" / "sweeps" / "retry-storm-retries-load.yaml"
    assert cli("sweep", str(path), "--dry-run") == 0
    assert "20 points × 3 replications = 60 runs" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"base: {ROOT / 'scenarios' / 'mechanisms' / 'retry-storm.yaml'}\n"
        "parameters: {policies.client.retries: [0, 99]}\n"
    )
    assert cli("sweep", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:43: parameters['policies.client.retries'][1]: 99 does not fit" in err
    assert "nothing was run or written" in err
    small = tmp_path / "small.yaml"
    small.write_text(
        f"base: {ROOT / 'scenarios' / 'mechanisms' / 'retry-storm.yaml'}\nset: {{duration: 5m}}\n"
        "parameters: {policies.client.retries: [0, 3]}\nreplications: 1\n"
    )
    out = tmp_path / "out"
    assert cli("sweep", str(small), "-j", "0", "--out", str(out)) == 0
    assert (out / "report.html").exists() and len(load_results(out)) == 2
    assert cli("sweep", str(small), "-j", "0", "--out", str(out), "--resume", "--no-report") == 0
    assert len(load_results(out)) == 2
