"""The command line: exit codes, messages, what gets written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.cli import main
from tests.conftest import BASE, merge

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def cli_output(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the command with ``args``: its exit code, what it printed and its messages."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def small(**changes: object) -> dict:
    return merge(BASE, {"duration": "2m", **changes})


def test_run_writes_every_report_file_and_exits_0(tmp_path, capsys):
    out = tmp_path / "report"
    assert cli("run", str(write(tmp_path, small())), "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "datacenters.csv", "events.jsonl", "links.csv", "report.html", "report.md", "scenario.json",
        "summary.json", "timeseries.csv",
    ]
    text = capsys.readouterr().out
    assert "availability  100%" in text and str(out / "report.html") in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["manifest"]["seed"] == 1 and summary["slo"]["met"] is True


def test_slo_breach_exits_3(tmp_path, capsys):
    data = small(faults=[{"kind": "datacenter_outage", "target": {"datacenters": ["dc-a"]}, "at": "10s"}])
    assert cli("run", str(write(tmp_path, data)), "--out", str(tmp_path / "r")) == 3
    assert "SLO           BREACHED" in capsys.readouterr().out
    assert (tmp_path / "r" / "summary.json").exists()


def test_invalid_scenario_exits_2_names_file_line_and_writes_nothing(tmp_path, capsys):
    data = small(faults=[{"kind": "server_crash", "target": {"ids": ["a-01"]}, "at": "1 minute"}])
    data["topology"]["datacenters"][0]["servers"][0]["worker"] = 3
    path = write(tmp_path, data)
    out = tmp_path / "never"
    assert cli("run", str(path), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err
    assert "faults[0].at:" in err and "'1 minute'" in err
    assert "unknown field 'worker'" in err and "did you mean 'workers'" in err
    assert "2 problems; nothing was run or written." in err
    assert "Traceback" not in err
    assert not out.exists()
    # References are checked once the structure is sound, with a suggestion for near misses.
    data = small(faults=[{"kind": "server_crash", "target": {"datacenters": ["dc-c"]}, "at": "1m"}])
    assert cli("run", str(write(tmp_path, data)), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "faults[0].target.datacenters[0]: no datacenter 'dc-c'" in err
    assert not out.exists()


def test_validate_reports_each_file(tmp_path, capsys):
    good = write(tmp_path, small(), "good.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration: [\n")
    assert cli("validate", str(good)) == 0
    assert cli("validate", str(good), str(bad)) == 2
    captured = capsys.readouterr()
    assert f"{good}: ok" in captured.out
    assert f"{bad}:" in captured.err and "invalid YAML" in captured.err


def test_missing_file_and_bad_usage_exit_2(tmp_path, capsys):
    assert cli("run", str(tmp_path / "nope.yaml")) == 2
    assert "cannot read the file" in capsys.readouterr().err
    assert cli("run") == 2
    assert cli("frobnicate") == 2
    assert cli("run", "x.yaml", "--seed", "-4") == 2


def test_schema_prints_the_shipped_schema(capsys):
    assert cli("schema") == 0
    assert capsys.readouterr().out == (ROOT / "scenarios" / "scenario.schema.json").read_text()


def test_seed_option_overrides_the_scenario_seed(tmp_path):
    path = write(tmp_path, small())
    cli("run", str(path), "--out", str(tmp_path / "a"), "--seed", "11")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["manifest"]["seed"] == 11


def test_no_report_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, small())
    assert cli("run", str(path), "--no-report") == 0
    assert not (tmp_path / "reports").exists()


def test_python_dash_m_sim_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "sim", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "validate" in done.stdout


def run_in_terminal(args: list[str]) -> str:
    """Run the command in a pseudo-terminal (as a person would) and return what it printed."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: become the command
        os.chdir(ROOT)
        os.execvp(sys.executable, [sys.executable, "-m", "sim", *args])
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    os.waitpid(pid, 0)
    return out.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_for_long_runs_only(tmp_path):
    long_run = run_in_terminal(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path / "q")])
    assert "%|" in long_run and "availability" in long_run  # the bar, then the summary
    data = small()
    short = run_in_terminal(["run", str(write(tmp_path, data)), "--out", str(tmp_path / "s")])
    assert "%|" not in short and "availability" in short
