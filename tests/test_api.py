"""The public Python API."""

from __future__ import annotations

import sim


def test_public_names_are_curated_and_importable():
    assert sorted(sim.__all__) == sorted(
        ["__version__", "load_scenario", "parse_scenario", "run", "Result", "Scenario", "ScenarioError", "Problem",
         "replicate", "compare", "capacity", "load_sweep", "run_sweep", "load_results"]
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


def test_model_does_not_import_the_presentation_layer():
    import subprocess
    import sys

    code = "import sys, sim, sim.run; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
