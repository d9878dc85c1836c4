"""Rebuilding a report from a run's stored folder: the same page as the live run, `cascadesim report`."""

from __future__ import annotations

import json
import sys

import pytest

import sim
from sim.report import ResultsError, load_results, rebuild_report
from sim.report.html import render_html
from sim.report.markdown import render_markdown
from tests.conftest import scenario_from
from tests.test_cli import cli

CASCADE = {
    "duration": "12m",
    "topology": {
        "regions": [{"id": "users", "users": 1000, "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}],
        "databases": [
            {"id": "db", "count": 8, "placement": [{"datacenter": "dc-a"}, {"datacenter": "dc-b"}]}
        ],
    },
    "policies": {"failover": {"database_delay": "10s"}},
    "faults": [
        {
            "id": "crash",
            "kind": "server_crash",
            "target": {"datacenters": ["dc-a"], "mode": {"count": 2}},
            "at": "3m",
            "duration": "4m",
        }
    ],
    "slo": {"availability": "99.9%", "window": "30s"},
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    result = sim.run(scenario_from(CASCADE), seed=3)
    folder = result.write_report(tmp_path_factory.mktemp("run") / "out")
    return result, folder


def test_the_reloaded_folder_renders_the_same_page(stored):
    result, folder = stored
    reloaded = load_results(folder)
    assert reloaded.seed == result.seed and reloaded.scenario == result.scenario
    assert reloaded.events == json.loads(json.dumps(result.events))
    page = render_html(result)
    assert render_html(reloaded) == page
    assert (folder / "report.html").read_text(encoding="utf-8") == page
    assert (
        render_markdown(reloaded)
        == render_markdown(result)
        == (folder / "report.md").read_text(encoding="utf-8")
    )


def test_stored_tables_keep_their_types(stored):
    result, folder = stored
    reloaded = load_results(folder)
    assert reloaded.timeseries == result.timeseries  # ints stay ints, floats round-trip, empty is None
    assert reloaded.datacenter_series == result.datacenter_series
    assert reloaded.link_series == result.link_series
    assert set(reloaded.graph.nodes) == set(result.cluster.graph.nodes)


def test_cli_report_rebuilds_without_running(stored, tmp_path, capsys, monkeypatch):
    _, folder = stored
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith("report."):
            (copy / path.name).write_bytes(path.read_bytes())
    monkeypatch.setitem(sys.modules, "sim.run", None)  # nothing may run a simulation here
    assert cli("report", str(copy)) == 0
    assert (copy / "report.html").read_text(encoding="utf-8") == (folder / "report.html").read_text(
        encoding="utf-8"
    )
    assert (copy / "report.md").read_text(encoding="utf-8") == (folder / "report.md").read_text(
        encoding="utf-8"
    )
    assert "report.html" in capsys.readouterr().out


def test_cli_report_names_what_is_missing(tmp_path, capsys):
    assert cli("report", str(tmp_path / "nowhere")) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "summary.json").write_text("{}")
    assert cli("report", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "missing events.jsonl, timeseries.csv, datacenters.csv, scenario.json" in err
    with pytest.raises(ResultsError):
        rebuild_report(tmp_path)


def test_a_corrupt_file_is_named(stored, tmp_path):
    _, folder = stored
    for path in folder.iterdir():
        if path.is_file():
            (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "scenario.json").write_text('{"name": 1}')
    with pytest.raises(ResultsError, match=r"scenario\.json:1:1: missing required field 'duration'"):
        load_results(tmp_path)
