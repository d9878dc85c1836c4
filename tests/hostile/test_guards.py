"""Guards for what already holds, each written so that it fails if the property breaks.

- A sweep killed with SIGKILL at many different moments (while starting, between runs, while a row is
  being written, while the rows are gathered), each time resumed, ends with exactly the rows of an
  uninterrupted sweep: every column, every value. The existing resume tests stop the sweep by raising
  in this process at one chosen point; nothing there is a real ``kill -9``. The narrowest moment — the
  store's folder made, its manifest not yet written — is also made on purpose: random kills seldom hit it.
- The same seed gives byte-identical output folders — every file, the reports included — on both
  engines, from two processes whose string hashing differs (``PYTHONHASHSEED``): a set iterated in hash
  order anywhere in a run would show. The existing tests compare two runs in one process, on the request
  engine only (tests/test_scenarios.py, now every file), and the flow engine's two summaries.
- ``-j 1``, ``-j 2`` and ``--dask-local 2`` store identical rows, through the command line. The
  existing tests compare the API's process pool of 2 with Dask and in-process, not ``-j 1``, not the CLI.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import sim
from sim.experiments import ResultStore, load_sweep, run_sweep
from tests.conftest import BASE, merge
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]

# Random crashes make replications differ, so a row given the wrong seed would show; each run takes about
# a tenth of a second (it took a few tens of milliseconds at 2 minutes simulated, too fast on a quick
# machine for the kills below to land inside the sweep), so a kill lands in the middle of the sweep.
TINY = merge(BASE, {
    "duration": "10m",
    "workload": {"regions": {"users": {"peak": "30/s"}}},
    "faults": [{"id": "crashes", "kind": "server_crash", "target": {}, "mtbf": "2m", "mttr": "20s"}],
})
SWEEP = """\
name: guard
base: tiny.yaml
parameters:
  policies.client.retries: [0, 1, 2]
replications: 4
seed: 7
metrics: [availability, requests, counts.retries, latency.p99, recovery.recovered, worst_fault]
"""
RUNS = 12


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    (folder / "sweep.yaml").write_text(SWEEP)
    return folder / "sweep.yaml"


@pytest.fixture(scope="module")
def whole(sweep_file) -> list[dict]:
    """The rows of the sweep run in one go, here."""
    rows = run_sweep(load_sweep(sweep_file), executor="here").rows
    assert len(rows) == RUNS
    assert len({r["availability"] for r in rows}) > 3, "the runs differ, so a mixed-up row would show"
    return rows


def stored_rows(folder: Path) -> list[dict]:
    return ResultStore.open(folder / "runs").table().to_pylist()


def stored_count(folder: Path) -> int:
    try:
        return len(ResultStore.open(folder / "runs").done())
    except Exception:  # nothing stored yet (no manifest, or killed before it was written)
        return 0


def row_files(folder: Path) -> int:
    try:
        return sum(1 for f in (folder / "runs" / "rows").iterdir() if f.suffix == ".parquet"
                   and not f.name.startswith("."))
    except FileNotFoundError:
        return 0


# ------------------------------------------------------------------------------------------ kill -9


def test_sigkill_at_many_moments_then_resume_gives_exactly_the_uninterrupted_rows(sweep_file, whole, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "sim", "sweep", str(sweep_file), "--out", str(out), "-j", "0", "--no-report"]
    rng = random.Random(20261231)  # the moments vary from kill to kill, and from a run of the test to the next
    kills = []  # (runs stored before, runs stored after) of each kill
    for attempt in range(8):
        before = stored_count(out)
        proc = subprocess.Popen(
            command + (["--resume"] if attempt else []), cwd=ROOT, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        if attempt == 0:
            time.sleep(rng.uniform(0.05, 1.0))  # while it starts: before, during or after the store is made
        else:
            seen, deadline = row_files(out), time.monotonic() + 60
            while proc.poll() is None and row_files(out) <= seen and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.12))  # then somewhere in the next runs, writes or the gathering
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=60)
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert code in (0, -signal.SIGKILL), err
        if code == 0:
            break
        kills.append((before, stored_count(out)))
    assert sum(1 for _, after in kills if 0 < after < RUNS) >= 2, f"(stored before, after) each kill: {kills}"
    done = subprocess.run(command + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert stored_rows(out) == whole, f"(stored before, after) each kill: {kills}"


@pytest.mark.parametrize("made", ["runs", "runs/rows"])
def test_resume_after_a_kill_between_the_store_folder_and_its_manifest(made, sweep_file, whole, tmp_path, capsys):
    """The narrowest moment of the kill test, made on purpose: the store's folders exist, its manifest
    does not yet. ``--resume`` must complete the sweep, not refuse the folder it made itself."""
    out = tmp_path / "out"
    (out / made).mkdir(parents=True)
    code = cli("sweep", str(sweep_file), "--out", str(out), "-j", "0", "--no-report", "--resume")
    assert code == 0, capsys.readouterr().err
    assert stored_rows(out) == whole


# ------------------------------------------------------------------------------------------ same seed


# Every file a run writes: links, mail, databases, random crashes, a congested link and an SLO that is
# breached, so the reports have a story, a timeline and every figure.
RICH = merge(BASE, {
    "duration": "2m",
    "topology": {
        "regions": [{"id": "users", "users": 5000, "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}],
        "databases": [{"id": "db", "count": 8, "placement": [{"datacenter": "dc-a"}, {"datacenter": "dc-b"}]}],
    },
    "workload": {"mail": {"regions": {"users": {"rate": "5/s"}},
                          "retry": {"first": "10s", "multiplier": 2, "max": "30m"}}},
    "policies": {"failover": {"database_delay": "10s"}},
    "faults": [
        {"id": "crashes", "kind": "server_crash", "target": {}, "mtbf": "4m", "mttr": "30s"},
        {"id": "jam", "kind": "congestion", "target": {"datacenters": ["dc-a", "dc-b"]}, "at": "40s",
         "duration": "40s", "capacity_factor": "1%"},
    ],
    "slo": {"availability": "99%", "window": "30s", "latency_p99": "500ms"},
})
FILES = ["datacenters.csv", "events.jsonl", "links.csv", "mail.csv", "report.html", "report.md", "scenario.json",
         "summary.json", "timeseries.csv"]


@pytest.mark.parametrize("engine", ["requests", "flow"])
def test_same_seed_gives_byte_identical_folders_on_both_engines(engine, tmp_path):
    path = tmp_path / "rich.yaml"
    path.write_text(yaml.safe_dump(RICH, sort_keys=False))
    folders = []
    for hash_seed in ("0", "4242"):
        out = tmp_path / f"out-{hash_seed}"
        done = subprocess.run(
            [sys.executable, "-m", "sim", "run", str(path), "--engine", engine, "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert done.returncode in (0, 3), done.stderr
        assert sorted(p.name for p in out.iterdir()) == FILES
        folders.append(out)
    first, second = folders
    assert f'"engine": "{engine}"' in (first / "summary.json").read_text()
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{engine}: {name} differs"
    # The comparison can fail: another seed changes the numbers.
    other = sim.run(sim.parse_scenario(path.read_text(), str(path), {"engine": engine}), seed=2)
    assert other.events != sim.run(sim.parse_scenario(path.read_text(), str(path), {"engine": engine})).events


# ------------------------------------------------------------------------------------------ executors


def test_j1_j2_and_dask_store_identical_rows(sweep_file, whole, tmp_path, capsys):
    stored = {}
    for name, options in {"-j 1": ["-j", "1"], "-j 2": ["-j", "2"], "dask": ["--dask-local", "2"]}.items():
        out = tmp_path / name.replace(" ", "")
        code = cli("sweep", str(sweep_file), "--out", str(out), "--no-report", *options)
        assert code == 0, (name, capsys.readouterr().err)
        stored[name] = stored_rows(out)
    capsys.readouterr()
    assert stored["-j 1"] == whole
    assert stored["-j 2"] == whole
    assert stored["dask"] == whole

