"""Running an experiment never runs Python files lying in the current folder (a scenario repository, a
downloads folder): not in the command's own process, not in the process pool's workers or its fork
server, not in a local Dask cluster's workers.

Each module below, put in the folder the command runs in, writes ``imported-<name>-<pid>`` next to itself
when it is imported and then hands over to the real module, so the run goes on and every process that
imported one is named.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.experiments.executors import forget_working_directory
from tests.conftest import BASE, merge

SHADOWED = ("numbers", "random", "yaml", "struct", "tempfile", "selectors", "socket", "bisect", "pickle")
CASCADESIM = Path(sys.executable).with_name("cascadesim")

SHADOW = '''\
import os as _os, sys as _sys
import importlib.util as _util
from importlib.machinery import PathFinder as _PathFinder

_here = _os.path.dirname(_os.path.abspath(__file__))
open(_os.path.join(_here, "imported-%s-%d" % (__name__, _os.getpid())), "w").close()
_spec = _PathFinder.find_spec(__name__, [p for p in _sys.path if _os.path.abspath(p or ".") != _here])
_real = _util.module_from_spec(_spec)
_sys.modules[__name__] = _real
_spec.loader.exec_module(_real)
'''


@pytest.fixture
def untrusted(tmp_path: Path) -> Path:
    """A folder holding a small valid scenario and modules that shadow what Python and cascadesim import."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in SHADOWED:
        (folder / f"{name}.py").write_text(SHADOW)
    (folder / "s.yaml").write_text(yaml.safe_dump(merge(BASE, {"duration": "1m"}), sort_keys=False))
    return folder


def run_in(folder: Path, *command: str) -> tuple[subprocess.CompletedProcess[str], dict[str, set[int]]]:
    """Run ``command`` in ``folder``; return it and, per process id, the shadowing modules it imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    proc = subprocess.Popen(
        list(command), cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate(timeout=300)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    imported: dict[str, set[int]] = {}
    for marker in folder.glob("imported-*"):
        _, name, pid = marker.name.split("-")
        imported.setdefault(name, set()).add(int(pid))
    done.pid = proc.pid  # type: ignore[attr-defined]
    return done, imported


def test_the_shadowing_modules_would_be_noticed(untrusted):
    """The test could fail: a Python process that imports from its folder leaves the markers."""
    done, imported = run_in(untrusted, sys.executable, "-c", "import random, yaml")
    assert done.returncode == 0, done.stderr
    assert {"random", "yaml"} <= set(imported)


@pytest.mark.parametrize(
    "executor", [["-j", "2"], ["--dask-local", "2"]], ids=["process-pool", "dask-local"]
)
def test_the_cascadesim_command_runs_no_code_from_the_current_folder(untrusted, executor):
    done, imported = run_in(untrusted, str(CASCADESIM), "run", "s.yaml", "-n", "2", *executor, "--no-report")
    assert done.returncode in (0, 3), done.stderr
    assert "2 replications" in done.stdout
    assert imported == {}, f"imported from the current folder: {imported}"


@pytest.mark.parametrize(
    "executor", [["-j", "2"], ["--dask-local", "2"]], ids=["process-pool", "dask-local"]
)
def test_python_m_sim_workers_run_no_code_from_the_current_folder(untrusted, executor):
    """``python -m`` puts the folder first on ``sys.path``, and Python imports the ``sim`` package with it
    there, before any of cascadesim's code runs (sim/__main__.py says so). No other process may import
    from it: not the fork server, not a worker.
    """
    done, imported = run_in(untrusted, sys.executable, "-m", "sim", "run", "s.yaml", "-n", "2", *executor,
                            "--no-report")
    assert done.returncode in (0, 3), done.stderr
    assert "2 replications" in done.stdout
    elsewhere = {name: pids - {done.pid} for name, pids in imported.items() if pids - {done.pid}}
    assert elsewhere == {}, f"imported from the current folder by a worker: {elsewhere}"


def test_forget_working_directory_takes_only_the_current_folder_off_the_path(tmp_path, monkeypatch):
    other = str(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", str(tmp_path), ".", other, *sys.path])
    forget_working_directory()
    assert sys.path[0] == other
    assert "" not in sys.path and "." not in sys.path and str(tmp_path) not in sys.path
