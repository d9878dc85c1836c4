"""The wheel carries what an installed cascadesim needs beyond its code: the shipped scenarios.

Built with ``pip wheel`` (hatchling, the project's build backend), unpacked into a folder of its own and
run from there with the checkout out of reach, as a ``pip install cascadesim`` would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.shipped import ROOT, SCENARIOS


def test_the_wheel_ships_the_scenarios_and_examples_run_from_it(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("cascadesim-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    shipped = {f"sim/scenarios/{p.relative_to(SCENARIOS).as_posix()}" for p in SCENARIOS.rglob("*.yaml")}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "sim/scenarios/scenario.schema.json" in names

    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}  # the unpacked wheel, not the checkout
    work = tmp_path / "work"
    work.mkdir()

    def cascadesim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-P", "-m", "sim", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=120)

    where = subprocess.run([sys.executable, "-P", "-c", "import sim; print(sim.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "site"), where.stdout + where.stderr
    listed = cascadesim("examples")
    assert listed.returncode == 0 and listed.stdout.startswith("quickstart"), listed.stderr
    made = cascadesim("new", "mine", "--from", "monday-morning")
    assert made.returncode == 0, made.stderr
    assert cascadesim("validate", "mine.yaml").returncode == 0
