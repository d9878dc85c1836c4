"""Output folders: cascadesim never deletes what it did not write, checks the folder before it simulates,
writes through a symlink, and turns a failed write into one line (the data-loss items of the hardening
issue).

"Nothing was simulated" is checked by replacing :func:`sim.run.run` with a function that fails the test.
The tests run as root, where ``chmod 0o555`` does not stop a write: an unwritable place is made real with a
regular file where a folder should be, or by making ``os.mkdir`` refuse (EACCES, EROFS) for one path.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
from pathlib import Path

import pytest

from tests.test_cli import cli, small, write

ROOT = Path(__file__).resolve().parents[2]
LAYOUTS = [str(ROOT / "scenarios" / "layouts" / f) for f in ("two-copies.yaml", "three-copies.yaml")]
SWEEP = (
    f"base: {ROOT / 'scenarios' / 'mechanisms' / 'retry-storm.yaml'}\nset: {{duration: 5m}}\n"
    "parameters: {policies.client.retries: [0, 3]}\nreplications: 1\n"
)
KINDS = ["run", "replications", "compare", "sweep", "plan"]


def command(kind: str, inputs: Path) -> list[str]:
    """The arguments (without --out) of a command that writes a folder, its input files in ``inputs``."""
    if kind == "compare":
        layouts = [inputs / Path(layout).name for layout in LAYOUTS]
        for layout, copy in zip(LAYOUTS, layouts, strict=True):
            copy.write_text(Path(layout).read_text())
        return ["compare", *map(str, layouts), "--replications", "2", "-j", "0"]
    if kind == "sweep":
        path = inputs / "sweep.yaml"
        path.write_text(SWEEP)
        return ["sweep", str(path), "-j", "0"]
    if kind == "plan":  # the planner measures its curves with the engines: sim.run.run too
        path = inputs / "two-copies.yaml"
        path.write_text((ROOT / "scenarios" / "layouts" / "year" / "two-copies.yaml").read_text())
        return ["plan", str(path), "--years", "2", "-j", "0"]
    scenario = str(write(inputs, small()))
    return ["run", scenario] if kind == "run" else ["run", scenario, "--replications", "2", "-j", "0"]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (a folder as None), to compare before and after."""
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")
    }


@pytest.fixture
def no_simulation(monkeypatch):
    def simulated(*args, **kwargs):
        raise AssertionError("a simulation ran; the output folder should have been refused first")

    monkeypatch.setattr(importlib.import_module("sim.run"), "run", simulated)  # sim.run is also a function


# ------------------------------------------------------------------------------------------ what is ours


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_holding_a_users_files_is_refused_and_kept(kind, tmp_path, capsys, no_simulation):
    args = command(kind, tmp_path)
    out = tmp_path / "proj"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "data" / "x.csv").write_text("1,2\n")
    (out / "report.html").write_text("my own report")
    before = tree(out)
    assert cli(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"{out} is not empty and is not a cascadesim output (it holds data/, notes.txt" in err
    assert "choose another --out" in err and "internal error" not in err
    assert tree(out) == before


@pytest.mark.parametrize("out", ["../../proj", "..", "."])
def test_run_from_inside_a_project_deletes_nothing_of_it(out, tmp_path, monkeypatch, capsys, no_simulation):
    """``cascadesim run s.yaml --out ../../proj`` from ``proj/work`` deleted all of ``proj``."""
    work = tmp_path / "proj" / "work"
    work.mkdir(parents=True)
    (tmp_path / "proj" / "thesis.tex").write_text("three years of work")
    scenario = write(work, small())
    before = tree(tmp_path)
    monkeypatch.chdir(work)
    assert cli("run", scenario.name, "--out", out) == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a cascadesim output" in err and "internal error" not in err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("kind", KINDS)
def test_out_dot_holding_the_inputs_is_refused_before_simulating(kind, tmp_path, monkeypatch, capsys,
                                                                 no_simulation):
    args = command(kind, tmp_path)
    before = tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli(*args, "--out", ".") == 2
    err = capsys.readouterr().err
    assert f". ({tmp_path}) is not empty and is not a cascadesim output" in err
    assert "internal error" not in err
    assert tree(tmp_path) == before


def test_out_dot_in_an_empty_folder_or_over_a_previous_run_is_written_in_place(tmp_path, monkeypatch, capsys):
    scenario = write(tmp_path, small())
    here = tmp_path / "here"
    here.mkdir()
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    assert cli("run", str(scenario), "--out", ".") == 0
    assert cli("run", str(scenario), "--out", ".", "--seed", "7") == 0  # now over its own output
    assert "internal error" not in capsys.readouterr().err
    assert Path.cwd() == here and here.stat().st_ino == inode, "the current folder is never swapped away"
    assert json.loads((here / "summary.json").read_text())["manifest"]["seed"] == 7
    assert sorted(os.listdir(tmp_path)) == ["here", "s.yaml"], "no temporary or old folder is left"
    assert not [p for p in here.iterdir() if p.name.startswith(".")]


def test_a_previous_run_is_replaced_but_not_once_a_user_adds_a_file(tmp_path, capsys):
    scenario = write(tmp_path, small())
    out = tmp_path / "r"
    assert cli("run", str(scenario), "--out", str(out)) == 0
    (out / "figures").mkdir()
    (out / "figures" / "old.png").write_bytes(b"\x89PNG")  # as an earlier run with --png left
    assert cli("run", str(scenario), "--out", str(out), "--seed", "2") == 0
    assert not (out / "figures").exists(), "a run replaces its own previous output as a whole"
    assert json.loads((out / "summary.json").read_text())["manifest"]["seed"] == 2
    assert sorted(os.listdir(tmp_path)) == ["r", "s.yaml"]
    (out / "notes.md").write_text("what I found")
    before = tree(out)
    capsys.readouterr()
    assert cli("run", str(scenario), "--out", str(out), "--seed", "3") == 2
    assert f"{out} is not empty and is not a cascadesim output (it holds notes.md)" in capsys.readouterr().err
    assert tree(out) == before


def legacy_run(folder: Path, *extra: str) -> None:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"manifest": {"scenario": "old", "seed": 1}}))
    (folder / "report.html").write_text("<html>old</html>")
    for name in extra:
        (folder / name).write_text("x")


def legacy_sweep(folder: Path) -> None:
    (folder / "runs" / "rows").mkdir(parents=True)
    manifest = {"format": "cascadesim-results/1", "kind": "sweep", "name": "old", "columns": []}
    (folder / "runs" / "manifest.json").write_text(json.dumps(manifest))
    (folder / "sweep.json").write_text("{}")
    (folder / "report.html").write_text("<html>old sweep</html>")


def test_outputs_written_before_the_rule_are_recognised_by_their_names(tmp_path, capsys):
    scenario = write(tmp_path, small())
    legacy_run(tmp_path / "old-run")
    assert cli("run", str(scenario), "--out", str(tmp_path / "old-run")) == 0
    assert (tmp_path / "old-run" / "events.jsonl").exists()
    legacy_sweep(tmp_path / "old-sweep")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    assert cli("sweep", str(sweep), "-j", "0", "--out", str(tmp_path / "old-sweep")) == 0
    assert len(json.loads((tmp_path / "old-sweep" / "sweep.json").read_text())["points"]) == 2
    legacy_run(tmp_path / "not-only-ours", "todo.txt")
    before = tree(tmp_path / "not-only-ours")
    capsys.readouterr()
    assert cli("run", str(scenario), "--out", str(tmp_path / "not-only-ours")) == 2
    assert "(it holds todo.txt)" in capsys.readouterr().err
    assert tree(tmp_path / "not-only-ours") == before


def test_one_commands_output_is_not_replaced_by_another_command(tmp_path, capsys, no_simulation):
    out = tmp_path / "sweep-out"
    legacy_sweep(out)
    before = tree(out)
    assert cli(*command("run", tmp_path), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"{out} holds the output of 'cascadesim sweep', not of 'cascadesim run'" in err
    assert tree(out) == before


def test_a_results_store_holding_a_users_file_is_not_replaced(tmp_path):
    from sim.experiments import replicate
    from sim.experiments.store import StoreError
    from tests.conftest import scenario_from

    tiny = scenario_from({"duration": "1m"})
    replicate(tiny, 1, executor="here", out=tmp_path / "runs")
    (tmp_path / "runs" / "precious.txt").write_text("x")
    with pytest.raises(StoreError, match=r"is not empty and is not a cascadesim output \(it holds precious.txt\)"):
        replicate(tiny, 1, executor="here", out=tmp_path / "runs")
    assert (tmp_path / "runs" / "precious.txt").read_text() == "x"


# ------------------------------------------------------------------------------------------ unwritable


@pytest.mark.parametrize("kind", KINDS)
def test_an_out_under_a_regular_file_is_refused_before_simulating(kind, tmp_path, capsys, no_simulation):
    """A folder that cannot be created, even by root: its parent is a regular file."""
    args = command(kind, tmp_path)
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = tmp_path / "blocker" / "out"
    assert cli(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: {tmp_path / 'blocker'} is a file, not a folder; choose another --out" in err
    assert "internal error" not in err
    assert (tmp_path / "blocker").read_text() == "a file, not a folder"


@pytest.mark.parametrize("code, reason", [(errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only")])
def test_an_out_that_cannot_be_created_is_refused_before_simulating(code, reason, tmp_path, monkeypatch, capsys,
                                                                    no_simulation):
    """As root, ``chmod`` does not stop writes: ``os.mkdir`` is made to refuse the one folder instead."""
    real_mkdir = os.mkdir
    out = tmp_path / "locked" / "out"

    def mkdir(path, *args, **kwargs):
        if Path(path) in (out, out.parent):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    assert cli(*command("run", tmp_path), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: {reason}" in err and "internal error" not in err


def test_a_full_disk_is_one_line_and_keeps_the_previous_output(tmp_path, monkeypatch, capsys):
    scenario = write(tmp_path, small())
    out = tmp_path / "r"
    assert cli("run", str(scenario), "--out", str(out)) == 0
    before = tree(out)
    capsys.readouterr()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr(Path, "write_bytes", full)
    assert cli("run", str(scenario), "--out", str(out), "--seed", "2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "No space left on device" in err[0], err
    assert "internal error" not in err[0]
    assert tree(out) == before, "the previous output stays as it was"
    assert sorted(os.listdir(tmp_path)) == ["r", "s.yaml"], "no partial folder is left"


def test_a_full_disk_during_a_sweep_names_the_folder_and_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    import sim.experiments.store as store

    real = store.atomic_write

    def full(path, data):
        if Path(path).parent.name == "rows":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(store, "atomic_write", full)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    assert cli("sweep", str(sweep), "-j", "0", "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert f"{out / 'runs'}" in err.splitlines()[0] and "No space left on device" in err.splitlines()[0]
    assert "--resume" in err and "internal error" not in err


# ------------------------------------------------------------------------------------------ symlinks


def test_a_symlinked_out_is_written_through_and_leaves_no_debris(tmp_path, capsys):
    """Users link a reports folder to a bigger disk: the folder it points to is replaced, the link kept."""
    scenario = write(tmp_path, small())
    disk = tmp_path / "big-disk"
    (disk / "reports").mkdir(parents=True)
    link = tmp_path / "out"
    link.symlink_to(disk / "reports", target_is_directory=True)
    assert cli("run", str(scenario), "--out", str(link)) == 0
    assert cli("run", str(scenario), "--out", str(link), "--seed", "2") == 0
    assert link.is_symlink() and os.readlink(link) == str(disk / "reports")
    assert json.loads((disk / "reports" / "summary.json").read_text())["manifest"]["seed"] == 2
    assert sorted(os.listdir(tmp_path)) == ["big-disk", "out", "s.yaml"]
    assert os.listdir(disk) == ["reports"]
    assert str(link / "report.html") in capsys.readouterr().out


def test_a_store_killed_before_its_manifest_counts_as_empty(tmp_path, capsys):
    """A sweep killed after making ``out/runs/rows/`` and before writing ``manifest.json``: those empty
    folders are cascadesim's and hold nothing, so ``--resume`` completes the sweep instead of refusing."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    (out / "runs" / "rows").mkdir(parents=True)
    assert cli("sweep", str(sweep), "-j", "0", "--out", str(out), "--no-report", "--resume") == 0, (
        capsys.readouterr().err
    )
    assert len(json.loads((out / "runs" / "manifest.json").read_text())["columns"]) > 0
