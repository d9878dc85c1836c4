"""Two writers on one output folder: the second is refused while the first runs, never silently let in.

The lock is ``fcntl.flock`` on a file inside the folder. flock locks belong to an open file description,
so two opens in one process conflict as two processes do; both cases are tested.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.experiments import load_results, replicate
from sim.experiments.store import ResultStore, StoreError
from tests.conftest import scenario_from
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]
SWEEP = (
    f"base: {ROOT / 'scenarios' / 'mechanisms' / 'retry-storm.yaml'}\nset: {{duration: 5m}}\n"
    "parameters: {policies.client.retries: [0, 3]}\nreplications: 1\n"
)

# A real cascadesim process that stops after storing its first run, until a line arrives on stdin.
PAUSED = r"""
import sys
import sim.experiments.store as store

real = store.ResultStore.write
paused = []

def write(self, row):
    real(self, row)
    if not paused:
        paused.append(1)
        print("stored one run", flush=True)
        sys.stdin.readline()

store.ResultStore.write = write
from sim.cli import main
main(sys.argv[1:])
"""


def test_two_opens_in_one_process_conflict(tmp_path):
    """The premise of the in-process tests: flock locks are per open file description."""
    path = tmp_path / "lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT)
    second = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(first)
        os.close(second)


@pytest.mark.parametrize("second", [[], ["--resume"]], ids=["replace", "resume"])
def test_a_second_sweep_on_the_same_out_is_refused_while_the_first_runs(second, tmp_path, capsys):
    """Reported: the second sweep replaced the folder under the first, which then "finished" (exit 0)
    with half of its rows in the store."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED, "sweep", str(sweep), "-j", "0", "--out", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        assert first.stdout.readline() == "stored one run\n", first.stderr.read()
        code = cli("sweep", str(sweep), "-j", "0", "--out", str(out), *second)
        err = capsys.readouterr().err
        stdout, stderr = first.communicate("go on\n", timeout=300)
    finally:
        first.kill()
        first.wait()
    assert code == 2
    assert f"another cascadesim process is writing {out} (pid {first.pid})" in err
    assert first.returncode == 0, stderr
    assert len(load_results(out)) == 2, "the first sweep keeps every one of its runs"
    assert not list(out.rglob(".cascadesim.lock")), "the lock file goes with the process that held it"


def test_a_second_writer_in_the_same_process_is_refused(tmp_path, monkeypatch):
    """``replicate`` into a store that a ``replicate`` in this same process is writing."""
    tiny = scenario_from({"duration": "1m"})
    out = tmp_path / "runs"
    real = ResultStore.write
    refused: list[Exception] = []

    def write(self, row):
        real(self, row)
        if not refused:
            try:
                replicate(tiny, 2, executor="here", out=out)
            except StoreError as exc:
                refused.append(exc)
            else:
                refused.append(AssertionError("the second writer was let in"))

    monkeypatch.setattr(ResultStore, "write", write)
    reps = replicate(tiny, 3, executor="here", out=out)
    assert isinstance(refused[0], StoreError), refused
    assert f"another cascadesim process is writing {out} (pid {os.getpid()})" in str(refused[0])
    assert reps.n == 3 and len(load_results(out)) == 3
    monkeypatch.setattr(ResultStore, "write", real)
    assert replicate(tiny, 3, executor="here", out=out, resume=True).n == 3, "the lock was released"
    assert not list(tmp_path.rglob(".cascadesim.lock"))


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    tiny = scenario_from({"duration": "1m"})
    out = tmp_path / "runs"
    out.mkdir()
    (out / ".cascadesim.lock").write_text("12345\n")  # its process was killed: nobody holds the lock
    assert replicate(tiny, 1, executor="here", out=out).n == 1
