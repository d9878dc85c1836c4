"""Feedback and help on the command line: progress without a terminal, sweeps that can be shrunk and timed
before they run, validate on sweep files, and starting a scenario from a shipped example.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sim.cli.output import ProgressLines
from sim.experiments.sweep import Sweep, estimate_sweep, is_sweep, load_sweep
from tests.conftest import BASE, merge
from tests.test_cli import cli, small, write

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "scenarios" / "sweeps"
RETRIES_LOAD = SWEEPS / "retry-storm-retries-load.yaml"


# ------------------------------------------------------------------------------------------- progress


def test_progress_lines_say_how_far_how_fast_and_how_long_to_go():
    said: list[str] = []
    times = iter([100.0, 105.0, 111.0, 115.0, 122.0])
    lines = ProgressLines("monday", "run", every=10.0, clock=lambda: next(times), echo=said.append)
    lines(0.0, 7200.0)  # the first call starts the clock: nothing to say yet
    lines(300.0, 7200.0)  # 5 s later: not yet
    lines(660.0, 7200.0)  # 11 s: a line
    lines(900.0, 7200.0)  # 4 s after it: not yet
    lines(1320.0, 7200.0)  # 11 s after it: a line
    assert said == [
        "monday: 11m of 2h simulated (9%), 1m simulated per second, about 1m49s left",
        "monday: 22m of 2h simulated (18%), 1m simulated per second, about 1m38s left",
    ]


def test_progress_lines_of_runs_count_only_the_runs_of_this_attempt():
    said: list[str] = []
    times = iter([0.0, 12.0, 30.0])
    lines = ProgressLines("sweep s", "runs", every=10.0, clock=lambda: next(times), echo=said.append)
    lines(40, 100)  # 40 runs were stored by an earlier attempt (--resume)
    lines(43, 100)
    lines(100, 100)
    assert said == [
        "sweep s: 43 of 100 runs (43%), 15 runs a minute, about 3m48s left",
        "sweep s: 100 of 100 runs (100%), 2 runs a second, about 0s left",
    ]


def _progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.search(r"\(\d+%\), .* (per second|a minute|a second)", line)]


def test_a_run_without_a_terminal_prints_progress_lines_unless_quiet(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sim.cli.output.PROGRESS_EVERY", 0.0)  # every call, not every 10 s
    path = write(tmp_path, small())
    assert cli("run", str(path), "--no-report") == 0
    lines = _progress_lines(capsys.readouterr().err)
    assert len(lines) > 10
    assert re.fullmatch(r"unit: \S+ of 2m\d*s? simulated \(\d+%\), .* simulated per second, (about \S+ left|.*)",
                        lines[0]), lines[0]
    assert cli("run", str(path), "--no-report", "--quiet") == 0
    assert _progress_lines(capsys.readouterr().err) == []


def test_experiments_without_a_terminal_print_progress_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sim.cli.output.PROGRESS_EVERY", 0.0)
    path = write(tmp_path, small(duration="30s"))
    assert cli("run", str(path), "-n", "3", "-j", "0", "--no-report") == 0
    lines = _progress_lines(capsys.readouterr().err)
    assert lines and lines[-1].startswith("unit replications: 3 of 3 runs (100%), ")
    assert cli("run", str(path), "-n", "3", "-j", "0", "--no-report", "-q") == 0
    assert _progress_lines(capsys.readouterr().err) == []
    other = write(tmp_path, small(duration="30s"), "other.yaml")
    assert cli("compare", str(path), str(other), "-n", "2", "-j", "0", "--no-report") == 0
    assert _progress_lines(capsys.readouterr().err)[-1].startswith("compare s vs other: 4 of 4 runs (100%), ")


# ---------------------------------------------------------------------------------------------- sweeps


def test_sweep_overrides_shrink_a_sweep_without_editing_it():
    whole = load_sweep(RETRIES_LOAD)
    assert (whole.replications, whole.seed, whole.runs) == (3, 1, 60)
    assert {p.scenario.engine for p in whole.points} == {"requests"}
    small_one = load_sweep(RETRIES_LOAD, replications=1, seed=9, engine="flow")
    assert (small_one.replications, small_one.seed, small_one.runs) == (1, 9, 20)
    assert {p.scenario.engine for p in small_one.points} == {"flow"} and small_one.base.engine == "flow"


def test_sweep_command_takes_the_overrides(capsys):
    assert cli("sweep", str(RETRIES_LOAD), "--dry-run", "-n", "1", "--seed", "4", "--engine", "flow") == 0
    out = capsys.readouterr().out
    assert "20 points × 1 replication" in out and "= 20 runs" in out
    assert "pilot         point 0 on the flow engine" in out


def test_sweep_dry_run_estimates_the_time_from_pilot_runs(capsys):
    assert cli("sweep", str(RETRIES_LOAD), "--dry-run", "-j", "2") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("retry-storm-retries-load  (grid design")
    assert re.fullmatch(r"  estimate      about \S+ of run time \(60 runs, \S+ each on average\); about \S+ on 2 "
                        r"workers", out[1]), out[1]
    # The smallest and the largest points (by the tries they may make) are timed.
    assert re.fullmatch(r"  pilot         point 0 on the requests engine: \S+ a run \(all of it\)", out[2]), out[2]
    assert re.fullmatch(r"  pilot         point 19 on the requests engine: \S+ a run \(.*\)", out[3]), out[3]


def test_the_estimate_interpolates_between_the_pilots_by_size():
    sweep = load_sweep(RETRIES_LOAD)
    timed: list[str] = []

    def pilot(scenario):  # a clock that says 1 s per 1,000 tries
        from sim.sizing import expected_load

        timed.append(scenario.name)
        return expected_load(scenario).tries / 1000.0, 1.0

    est = estimate_sweep(sweep, pilot)
    from sim.sizing import expected_load

    exact = sum(expected_load(p.scenario).tries / 1000.0 for p in sweep.points) * sweep.replications
    assert est.seconds == pytest.approx(exact)
    assert [p.point for p in est.pilots] == [0, 19] and len(timed) == 2


def test_a_sweep_of_points_alike_is_timed_once(tmp_path):
    base = write(tmp_path, small(), "base.yaml")
    path = tmp_path / "sweep.yaml"
    path.write_text(f"base: {base.name}\nparameters: {{description: [a, b, c]}}\nreplications: 2\n")
    sweep: Sweep = load_sweep(path)
    est = estimate_sweep(sweep, lambda scenario: (2.0, 0.5))
    assert len(est.pilots) == 1 and est.seconds == pytest.approx(12.0)


# -------------------------------------------------------------------------------------------- validate


def test_validate_recognises_a_sweep_file_and_checks_its_base(tmp_path, capsys):
    assert is_sweep(yaml.safe_load(RETRIES_LOAD.read_text())) and not is_sweep(BASE)
    assert cli("validate", *map(str, sorted(SWEEPS.glob("*.yaml")))) == 0
    out = capsys.readouterr().out
    assert f"{RETRIES_LOAD}: ok (a sweep: 60 runs of retry-storm.yaml, which is valid too)" in out
    base = merge(BASE, {})
    base["topology"]["datacenters"][0]["servers"][0]["worker"] = 3
    write(tmp_path, base, "base.yaml")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: s\nbase: base.yaml\nparameters:\n  policies.client.retries: [0, 1]\nreplication: 3\n")
    assert cli("validate", str(sweep)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3, err
    assert err[0].startswith(f"{tmp_path / 'base.yaml'}:") and "unknown field 'worker'" in err[0]
    assert err[1] == f"{sweep}:2:7: base: the base scenario has 1 problem (each given at its line in base.yaml)"
    assert err[2].startswith(f"{sweep}:5:1: replication: unknown field 'replication' (did you mean 'replications'?")


# ----------------------------------------------------------------------------------------- new, examples


def test_examples_lists_each_shipped_scenario_with_its_description(capsys):
    assert cli("examples") == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith("start from")]
    shipped = {p.stem for p in (ROOT / "scenarios").rglob("*.yaml") if p.parent.name != "sweeps"}
    assert names[:2] == ["quickstart", "monday-morning"] and set(names) == shipped
    assert re.search(r"(?m)^quickstart +Europe is served from eu-west, with passive copies of every mailbox "
                     r"database in eu-north$", out)
    assert re.search(r"(?m)^retry-storm +Utilisation 0.3, three immediate retries, no cancellation; a burst of "
                     r"queued work never drains$", out)
    assert "cascadesim new NAME --from quickstart" in out


def test_new_writes_a_valid_scenario_named_as_asked_and_never_overwrites(tmp_path, capsys, monkeypatch):
    from sim.loader import load_scenario

    monkeypatch.chdir(tmp_path)
    assert cli("new", "my-outage", "--from", "retry-storm") == 0
    out = capsys.readouterr().out
    assert "wrote my-outage.yaml" in out and "cascadesim run my-outage.yaml" in out
    written = (tmp_path / "my-outage.yaml").read_text()
    scenario = load_scenario(tmp_path / "my-outage.yaml")
    shipped = load_scenario(ROOT / "scenarios" / "mechanisms" / "retry-storm.yaml")
    assert scenario.name == "my-outage"
    assert scenario.model_copy(update={"name": shipped.name}) == shipped  # the rest is the example's
    assert written.startswith("# yaml-language-server: $schema=scenario.schema.json\n")
    assert cli("new", "my-outage") == 2  # it exists: refused, left as it was
    assert "my-outage.yaml exists; nothing was written" in capsys.readouterr().err
    assert (tmp_path / "my-outage.yaml").read_text() == written
    assert cli("new", "mine", "-o", str(tmp_path / "sub.yaml")) == 0  # from quickstart by default
    assert load_scenario(tmp_path / "sub.yaml").name == "mine"


def test_new_quotes_a_name_yaml_would_read_as_a_number(tmp_path, monkeypatch):
    from sim.loader import load_scenario

    monkeypatch.chdir(tmp_path)
    assert cli("new", "2024") == 0
    assert load_scenario(tmp_path / "2024.yaml").name == "2024"


def test_new_refuses_a_bad_name_or_an_unknown_example(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("new", "../escape") == 2
    assert "not a valid scenario name" in capsys.readouterr().err
    assert cli("new", "x", "--from", "retry-strom") == 2
    assert "no example 'retry-strom' (did you mean 'retry-storm'?)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_experiment_says_what_it_kept(tmp_path, capsys, monkeypatch):
    """Ctrl-C during replications with a results folder: the runs that finished are kept (the message used to
    say nothing was written), and --resume runs only the rest."""
    import importlib

    from sim.experiments.store import load_results

    module = importlib.import_module("sim.run")  # the module (the package's ``sim.run`` is its function)
    real, calls = module.run, []

    def interrupted_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "run", interrupted_at_the_third)
    path, out = write(tmp_path, small()), tmp_path / "reps"
    assert cli("run", str(path), "--replications", "4", "-j", "0", "-q", "--out", str(out)) == 130
    err = capsys.readouterr().err
    assert "interrupted; no file is left half-written" in err and "go on with --resume" in err
    assert len(load_results(out)) == 2
    monkeypatch.setattr(module, "run", real)
    assert cli("run", str(path), "--replications", "4", "-j", "0", "-q", "--out", str(out), "--resume") == 0
    assert len(load_results(out)) == 4
