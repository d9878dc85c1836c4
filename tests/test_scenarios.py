"""Every shipped scenario loads, runs end to end, and writes its report; runs are reproducible.

Each shipped scenario is run once through the CLI, on first use; its run is the one every other module
reads (``tests/shipped.py``), and the story tests read its files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.shipped import KEYS, ROOT, SHIPPED, group, shared_runs
from tests.test_cli import cli


class Reports:
    """Exit code and report folder of each shipped scenario run through the CLI, keyed by its path under
    scenarios/; run on first use, from the run the other modules share."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory):
        self.tmp_path_factory = tmp_path_factory
        self.done: dict[str, tuple[int, Path]] = {}

    def __getitem__(self, key: str) -> tuple[int, Path]:
        if key not in self.done:
            folder = self.tmp_path_factory.mktemp("report")
            with shared_runs():
                self.done[key] = (cli("run", str(ROOT / "scenarios" / key), "--out", str(folder)), folder)
        return self.done[key]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Reports:
    return Reports(tmp_path_factory)


def events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


# Each shipped scenario, in the xdist group of its run.
BY_SCENARIO = [pytest.param(p, id=k, marks=group(k)) for p, k in zip(SHIPPED, KEYS, strict=True)]


def test_scenarios_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"quickstart.yaml", "monday-morning.yaml"} <= names


@pytest.mark.parametrize("path", BY_SCENARIO)
def test_shipped_scenario_runs_end_to_end(path, reports):
    assert path.read_text().startswith("# yaml-language-server: $schema=")
    code, folder = reports[str(path.relative_to(ROOT / "scenarios"))]
    summary = json.loads((folder / "summary.json").read_text())
    assert code == (0 if summary["slo"]["met"] else 3)
    assert summary["requests"] > 0
    assert (folder / "report.html").stat().st_size > 100_000


@pytest.mark.parametrize("path", BY_SCENARIO)
def test_every_recorded_kind_is_in_the_event_table(path, reports):
    """Every kind of event a shipped scenario's run records is in the table of sim/events.py."""
    from sim.events import KINDS

    _, folder = reports[str(path.relative_to(ROOT / "scenarios"))]
    recorded = {e["kind"] for e in events(folder)}
    assert recorded and recorded <= set(KINDS), recorded - set(KINDS)


@group("quickstart.yaml")
def test_same_seed_gives_identical_files(tmp_path, reports):
    _, first = reports["quickstart.yaml"]
    cli("run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", str(tmp_path / "again"))
    # Every file, the reports and links.csv included (tests/hostile/test_guards.py does both engines, in
    # two processes with different string hashing).
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    assert {"summary.json", "events.jsonl", "links.csv", "report.html", "report.md"} <= set(names)
    for name in names:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


@group("quickstart.yaml")
def test_quickstart_tells_crash_then_ejection_then_failover(reports):
    code, folder = reports["quickstart.yaml"]
    assert code == 0
    kinds = [e["kind"] for e in events(folder)]
    assert kinds[:2] == ["fault_start", "server_down"]
    assert "ejected" in kinds and "failover" in kinds and "readmitted" in kinds
    fault = json.loads((folder / "summary.json").read_text())["faults"][0]
    assert fault["recovered"] and fault["time_to_detect"] <= 30


@group("monday-morning.yaml")
def test_monday_morning_tells_the_whole_story(reports):
    code, folder = reports["monday-morning.yaml"]
    s = json.loads((folder / "summary.json").read_text())
    assert code == 3 and not s["slo"]["met"]
    assert s["worst_region"] == "europe"
    assert s["regions"]["americas"]["availability"] > s["regions"]["europe"]["availability"]
    log = events(folder)
    by_id = {e["id"]: e for e in log}
    kinds = {e["kind"] for e in log}
    assert {"rollout_wave", "crashed", "failover", "link_saturated", "overloaded", "alert", "rollout_halted",
            "rollback", "failback", "surge", "slo_breach", "slo_recovered"} <= kinds
    # The crashes are the leaking version's doing, and the chain says so.
    for crash in (e for e in log if e["kind"] == "crashed"):
        assert crash["fault"] == "mbx-v2-rollout"
        assert by_id[crash["cause"]]["kind"] in ("updated", "overloaded", "ejected", "server_down")
    # The overload spreads to the other datacenter.
    assert any(e["kind"] == "overloaded" and e["node"].startswith("mbx-no") for e in log)
    assert s["worst_fault"] == "mbx-v2-rollout"
    # Rolled back, failed back, and recovered well before the end.
    assert s["recovery"]["recovered"] and not s["recovery"]["metastable"]
    rows = [r for r in csv.DictReader((folder / "timeseries.csv").open()) if r["region"] == "europe"]
    last_half_hour = [float(r["availability"]) for r in rows if float(r["time"]) >= s["manifest"]["duration"] - 1800]
    assert min(last_half_hour) > 0.999


@pytest.mark.parametrize("path", BY_SCENARIO)
def test_no_cause_comes_after_its_effect_and_every_chain_starts_at_a_fault(path, reports):
    """Quickstart on main: 'slo breach at 10:00' caused by 'ejected at 10:10'; failover-overload: a breach
    with no cause, and traffic shifts and readmissions as roots of their own (request engine here; the flow
    engine in tests/test_causal_order.py)."""
    name = str(path.relative_to(ROOT / "scenarios"))
    _, folder = reports[name]
    log = events(folder)
    by_id = {e["id"]: e for e in log}
    for e in log:
        if e["cause"] is not None:
            assert by_id[e["cause"]]["time"] <= e["time"], (name, e, by_id[e["cause"]])
        elif e["kind"] != "fault_start":  # a root that is not a fault: nothing explains it
            assert not any(x["cause"] == e["id"] for x in log), (name, e)
            assert e["kind"] not in ("slo_breach", "traffic_shift", "readmitted"), (name, e)
