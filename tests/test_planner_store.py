"""A plan's folder (``cascadesim plan --out``, ``compare --engine planner``): every chunk of years kept as it is
planned, ``--resume`` after a kill gives the uninterrupted plan to the byte, and a folder that is not this
plan's is refused with nothing touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sim
from sim.experiments.store import StoreError
from sim.planner.store import YearsStore, chunk_name
from sim.planner.years import CHUNK, plan_years
from sim.report.folders import output_kind
from tests.shipped import SCENARIOS
from tests.test_cli import cli_output

YEAR = SCENARIOS / "layouts" / "year"
TWO, THREE = YEAR / "two-copies.yaml", YEAR / "three-copies.yaml"


def _plan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    return cli_output(capsys, "plan", TWO, THREE, "-j", "0", "-q", *args)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_each_chunk_is_kept_and_a_resumed_plan_is_the_uninterrupted_one(tmp_path, capsys) -> None:
    """Fewer years, then more with --resume, then a chunk lost and --resume again: the uninterrupted plan's
    files, byte for byte, and the same text.
    """
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    code, text, _ = _plan(capsys, "--years", "15", "--out", fresh)
    assert code == 0 and text.endswith(f"  every year    {fresh / 'plan.json'}\n"
                                       f"  report        {fresh / 'report.html'}\n")
    names = sorted(_files(fresh))
    assert names == ["plan.json", "report.html", "years/manifest.json"] + [
        f"years/{chunk_name(layout, k)}" for layout in ("year-three-copies", "year-two-copies") for k in (0, 10)]
    chunk = json.loads((fresh / "years" / chunk_name("year-two-copies", 10)).read_text())
    assert chunk["first"] == 10 and len(chunk["years"]) == 5  # the last chunk holds what was asked
    assert json.loads((fresh / "plan.json").read_text())["layouts"][0]["years"] == 15

    assert _plan(capsys, "--years", "7", "--out", resumed)[0] == 0
    assert _plan(capsys, "--years", "15", "--out", resumed, "--resume")[0] == 0  # a partial chunk completed
    assert _files(resumed) == _files(fresh)
    (resumed / "years" / chunk_name("year-three-copies", 10)).unlink()  # killed before this one was kept
    code, again, _ = _plan(capsys, "--years", "15", "--out", resumed, "--resume")
    assert code == 0 and _files(resumed) == _files(fresh)
    assert again.replace(str(resumed), str(fresh)) == text

    # Fewer years than are kept: the first ones, and the chunks stay for a longer plan later.
    assert _plan(capsys, "--years", "4", "--out", resumed, "--resume")[0] == 0
    assert json.loads((resumed / "plan.json").read_text())["layouts"][1]["years"] == 4
    kept = chunk_name("year-two-copies", 10)
    assert _files(resumed)[f"years/{kept}"] == _files(fresh)[f"years/{kept}"]


def test_the_sensitivity_is_kept_chunk_by_chunk_and_resumes(tmp_path, capsys) -> None:
    """--sensitivity keeps each variant's years as it plans them (``<layout>~<factor>-<side>``): a plan
    stopped in its sensitivity plans only the missing variants' years, and gives the uninterrupted answer.
    """
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    args = ("plan", TWO, "-j", "0", "-q", "--years", "3", "--sensitivity")
    code, text, _ = cli_output(capsys, *args, "--out", fresh)
    variants = sorted(p.name for p in (fresh / "years").glob("*~*"))
    assert code == 0 and variants == sorted(chunk_name(f"year-two-copies~{f}-{side}", 0)
                                            for f in ("mtbf", "mttr", "copies", "failover_delay", "servers")
                                            for side in ("low", "high"))
    assert cli_output(capsys, *args, "--out", resumed)[0] == 0
    for name in variants[::2]:  # stopped before half the variants were kept
        (resumed / "years" / name).unlink()
    (resumed / "years" / variants[1]).write_text('{"layout": "another", "first": 0, "years": []}')
    code, _, err = cli_output(capsys, *args, "--out", resumed, "--resume")
    assert code == 2 and variants[1] in err and "not the years 0 on of layout" in err  # a chunk not its own
    (resumed / "years" / variants[1]).unlink()
    code, again, _ = cli_output(capsys, *args, "--out", resumed, "--resume")
    assert code == 0 and _files(resumed) == _files(fresh)
    assert again.replace(str(resumed), str(fresh)) == text


def test_a_killed_plan_resumes(tmp_path) -> None:
    """A plan killed (SIGKILL) after its first chunk was kept goes on from there with --resume, here on two
    worker processes: the same years as a plan never stopped.
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    args = [sys.executable, "-m", "sim", "plan", str(TWO), "--years", "30", "-j", "0", "-q"]
    proc = subprocess.Popen([*args, "--out", str(killed)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    first = killed / "years" / chunk_name("year-two-copies", 0)
    deadline = time.monotonic() + 300
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (killed / "plan.json").exists(), "the plan was not stopped midway"
    kept = sorted(p.name for p in (killed / "years").glob("*.json"))
    assert len(kept) < 4  # manifest.json and fewer than the 3 chunks
    resume = [*args[:-3], "-j", "2", "-q", "--out", str(killed), "--resume"]  # on the process pool this time
    done = subprocess.run(resume, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert subprocess.run([*args, "--out", str(whole)], env=env, cwd=tmp_path).returncode == 0
    assert _files(killed) == _files(whole)


def test_resume_refuses_another_plan(tmp_path, capsys) -> None:
    """Another root seed or another scenario under the same name: refused, naming the folder and what
    differs; the years kept are left as they were.
    """
    out = tmp_path / "out"
    assert _plan(capsys, "--years", "3", "--out", out)[0] == 0
    before = _files(out)
    code, _, err = _plan(capsys, "--years", "3", "--out", out, "--resume", "--seed", "5")
    assert code == 2 and err == (f"cascadesim: {out} holds the years of another plan (root seed 11, not 5); run "
                                 "without --resume to replace them, or choose another --out\n")
    changed = tmp_path / "two-copies.yaml"
    changed.write_text(TWO.read_text().replace("mttr: 8h", "mttr: 9h"))
    code, _, err = cli_output(capsys, "plan", changed, THREE, "-j", "0", "-q", "--years", "3", "--out", out, "--resume")
    assert code == 2 and f"cascadesim: {out} holds the years of another plan (layout 'year-two-copies': another " \
                         "scenario (its hash " in err
    code, _, err = cli_output(capsys, "plan", THREE, "-j", "0", "-q", "--years", "3", "--out", out, "--resume")
    assert code == 2 and "(layouts year-two-copies, year-three-copies, not year-three-copies)" in err
    assert _files(out) == before


def test_resume_refuses_years_planned_by_other_code(tmp_path, capsys) -> None:
    """The manifest holds a hash of the model's source, the planner's included: years priced by other code
    (an upgrade between a kill and its --resume, even within one version) are not mixed with this code's."""
    from sim.planner.curve import source_hash

    out = tmp_path / "out"
    assert _plan(capsys, "--years", "3", "--out", out)[0] == 0
    manifest = out / "years" / "manifest.json"
    held = json.loads(manifest.read_text())
    assert held["model"] == source_hash(planner=True)[:16] != source_hash()[:16]  # the planner's code counts
    manifest.write_text(json.dumps(held | {"model": "0123456789abcdef"}))
    before = _files(out)
    code, _, err = _plan(capsys, "--years", "3", "--out", out, "--resume")
    assert code == 2 and "holds the years of another plan (planned by other code (model 0123456789ab…" in err
    assert _files(out) == before


def test_a_chunk_that_is_not_this_plans_is_refused(tmp_path) -> None:
    scenario = sim.load_scenario(TWO)
    store = YearsStore.create(tmp_path / "out", {"two": scenario}, 11)
    rows = plan_years(scenario, 2, seed=11, store=store, layout="two")
    store.write("two", 10, rows)  # years 0 and 1 where years 10 and 11 belong
    with pytest.raises(StoreError, match=r"two-000010\.json: not the years 10 on of layout 'two' with root seed "
                                         r"11; remove it to plan them again"):
        plan_years(scenario, 12, seed=11, store=store, layout="two")


def test_progress_counts_the_kept_years(tmp_path) -> None:
    scenario = sim.load_scenario(TWO)
    store = YearsStore.create(tmp_path / "out", {"two": scenario}, 11)
    plan_years(scenario, 13, seed=11, store=store, layout="two")
    seen: list[tuple[int, int]] = []
    store = YearsStore.create(tmp_path / "out", {"two": scenario}, 11, resume=True)
    rows = plan_years(scenario, 25, seed=11, store=store, layout="two", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(13, 25), (20, 25), (25, 25)] and len(rows) == 25  # chunk 10 completed, then chunk 20
    assert CHUNK == 10


def test_a_folder_with_a_users_file_is_refused_and_left_alone(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for extra in ((), ("--resume",)):
        code, _, err = _plan(capsys, "--years", "3", "--out", out, *extra)
        assert code == 2 and f"cascadesim: {out} is not empty and is not a cascadesim output (it holds notes.txt)" \
            in err
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    # An earlier plan someone added a file to is not cascadesim's any more: refused, nothing removed.
    plan = tmp_path / "plan"
    assert _plan(capsys, "--years", "3", "--out", plan)[0] == 0
    (plan / "years" / "notes.txt").write_text("mine")
    before = _files(plan)
    code, _, err = _plan(capsys, "--years", "3", "--out", plan)
    assert code == 2 and "is not a cascadesim output" in err and _files(plan) == before
    # Another command's output is not a plan's.
    capacity = tmp_path / "capacity"
    assert cli_output(capsys, "capacity", TWO, "--out", capacity)[0] in (0, 3)  # 3: no N+1
    before = _files(capacity)
    code, _, err = _plan(capsys, "--years", "3", "--out", capacity, "--resume")
    assert code == 2 and _files(capacity) == before
    assert err.startswith(f"cascadesim: {capacity} holds the output of 'cascadesim capacity', not of 'cascadesim "
                          "plan' (or 'compare --engine planner'); choose another --out")


def test_an_earlier_plan_without_resume_is_replaced(tmp_path, capsys) -> None:
    """Without --resume an earlier plan's folder is planned afresh, as compare and replications do."""
    out = tmp_path / "out"
    assert _plan(capsys, "--years", "15", "--out", out)[0] == 0
    assert output_kind(out) == "plan"
    assert _plan(capsys, "--years", "3", "--out", out, "--seed", "4")[0] == 0
    assert sorted(_files(out)) == ["plan.json", "report.html", "years/manifest.json",
                                   "years/year-three-copies-000000.json", "years/year-two-copies-000000.json"]
    assert json.loads((out / "years" / "manifest.json").read_text())["root_seed"] == 4


def test_output_kind_knows_a_plan(tmp_path) -> None:
    (tmp_path / "plan.json").write_text('{"mine": true}')
    assert output_kind(tmp_path) is None  # a file of someone else's with the plan's name
    (tmp_path / "plan.json").write_text('{"seed": 1, "layouts": [], "compared_with_first": []}')
    assert output_kind(tmp_path) == "plan"
    (tmp_path / "years").mkdir()
    (tmp_path / "years" / "manifest.json").write_text('{"format": "cascadesim-results/1"}')
    assert output_kind(tmp_path) is None


def test_compare_with_the_planner(tmp_path, capsys) -> None:
    """compare --engine planner: the layouts planned and paired year by year, as plan prints them; the plan's
    folder in --out, resumable; exit 3 when a layout's mean availability is below its objective.
    """
    out = tmp_path / "cmp"
    code, text, _ = cli_output(capsys, "compare", TWO, THREE, "--engine", "planner", "--years", "12", "-j", "0", "-q",
                         "--out", out)
    assert code == 0
    code, planned, _ = _plan(capsys, "--years", "12")
    assert text == planned + f"  every year    {out / 'plan.json'}\n  report        {out / 'report.html'}\n"
    assert "year-three-copies − year-two-copies  (year by year, the same failures)" in text
    assert output_kind(out) == "plan"
    assert [d["layout"] for d in json.loads((out / "years" / "manifest.json").read_text())["layouts"]] == [
        "two-copies", "three-copies"]  # compare names a layout after its file
    before = _files(out)
    code, again, _ = cli_output(capsys, "compare", TWO, THREE, "--engine", "planner", "--years", "12", "-j", "0", "-q",
                          "--out", out, "--resume")
    assert code == 0 and again == text and _files(out) == before

    strict = tmp_path / "strict.yaml"
    strict.write_text(THREE.read_text().replace("slo: {availability: 99.9%}", "slo: {availability: 99.999%}"))
    code, text, _ = cli_output(capsys, "compare", TWO, strict, "--engine", "planner", "--years", "3", "-j", "0", "-q",
                         "--no-report")
    assert code == 3 and "year-three-copies − year-two-copies" in text


@pytest.mark.parametrize(("args", "message"), [
    (("compare", TWO, THREE, "--years", "5"), "--years is for --engine planner; the engines' runs take --replications"),
    (("compare", TWO, THREE, "--engine", "planner", "-n", "5"),
     "--replications is for the engines' runs; with --engine planner give --years"),
    (("compare", TWO, THREE, "--engine", "planner", "--max-utilisation", "80%", "-n", "3"),
     "--max-utilisation and --replications are for the engines' runs; with --engine planner give --years"),
    (("compare", TWO, THREE, "--engine", "planner", "--no-report", "--resume"),
     "--resume needs the results folder; drop --no-report"),
    (("plan", TWO, "--resume"), "--resume needs the results folder: give --out"),
], ids=["years-without-planner", "replications-with-planner", "two-engine-options", "compare-resume", "plan-resume"])
def test_usage_errors(args, message, capsys) -> None:
    code, out, err = cli_output(capsys, *args)
    assert code == 2 and out == "" and err.endswith(f"Error: {message}\n")


def test_compare_planner_refuses_what_it_cannot_plan(tmp_path, capsys) -> None:
    bad = tmp_path / "memory.yaml"
    memory = "memory: {limit: 16GB, base: 8GB, per_request: 40MB},"
    bad.write_text(TWO.read_text().replace("count: 12, workers: 8,", f"count: 12, workers: 8, {memory}", 1))
    code, out, err = cli_output(capsys, "compare", TWO, bad, "--engine", "planner", "--no-report")
    assert code == 2 and out == "" and f"{bad}:" in err and "memory" in err
    assert not (tmp_path / "reports").exists()


def test_a_full_disk_keeps_the_years_planned_and_says_how_to_go_on(tmp_path, capsys, monkeypatch) -> None:
    import errno

    import sim.planner.store as store

    real = store.atomic_file

    def full(path, content):
        if Path(path).name == chunk_name("year-two-copies", 10):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, content)

    out = tmp_path / "out"
    monkeypatch.setattr(store, "atomic_file", full)
    code, text, err = cli_output(capsys, "plan", TWO, "-j", "0", "-q", "--years", "15", "--out", out)
    assert code == 1 and text == ""
    assert err == (f"cascadesim: cannot write {out / 'years' / chunk_name('year-two-copies', 10)}: No space left "
                   f"on device\nruns finished before it are kept in {out}; run again with --resume to complete\n")
    assert sorted(_files(out)) == ["years/manifest.json", f"years/{chunk_name('year-two-copies', 0)}"]
    monkeypatch.setattr(store, "atomic_file", real)
    assert cli_output(capsys, "plan", TWO, "-j", "0", "-q", "--years", "15", "--out", out, "--resume")[0] == 0
    assert len(json.loads((out / "plan.json").read_text())["layouts"][0]["rows"]) == 15


def test_compare_engine_runs_every_layout_on_it(tmp_path, capsys) -> None:
    """--engine requests|flow|auto is every layout's engine for compare's runs, as for run and sweep."""
    from tests.test_cli import small, write

    a, b = write(tmp_path, small(name="a"), "a.yaml"), write(tmp_path, small(name="b", seed=3), "b.yaml")
    out = tmp_path / "cmp"
    code, _, _ = cli_output(capsys, "compare", a, b, "--engine", "flow", "-n", "2", "-j", "0", "-q", "--out", out)
    assert code == 0 and set(sim.load_results(out)["engine"]) == {"flow"}
