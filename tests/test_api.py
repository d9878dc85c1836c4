"""The public Python API."""

from __future__ import annotations

import sim


def test_public_names_are_curated_and_importable():
    assert sorted(sim.__all__) == sorted(
        ["__version__", "load_scenario", "parse_scenario", "run", "write_report", "Result", "Scenario",
         "ScenarioError", "Problem", "replicate", "compare", "capacity", "load_sweep", "run_sweep", "load_results"]
    )
    for name in sim.__all__:
        assert getattr(sim, name) is not None


def test_result_tables_are_flat_records(make_scenario):
    result = sim.run(make_scenario({"duration": "3m"}), seed=3)
    for table in ("events", "timeseries", "datacenters"):
        rows = result.records(table)
        assert isinstance(rows, list)
        for row in rows:
            assert all(isinstance(v, str | int | float | type(None)) for v in row.values())
    assert len(result.records("timeseries")) == 3  # one region, three 1-minute windows
    assert {r["datacenter"] for r in result.records("datacenters")} == {"dc-a", "dc-b"}


def test_write_report_from_the_package_and_from_the_result_is_the_same(make_scenario, tmp_path):
    result = sim.run(make_scenario({"duration": "2m"}), seed=3)
    a = sim.write_report(result, tmp_path / "a")
    b = result.write_report(tmp_path / "b")
    assert a == tmp_path / "a" and b == tmp_path / "b"
    for name in ("summary.json", "events.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_model_does_not_import_the_presentation_layer():
    import subprocess
    import sys

    code = "import sys, sim, sim.run; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
