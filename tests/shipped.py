"""The shipped scenarios (``scenarios/**/*.yaml`` but the sweeps), each run computed once per test process.

Many test modules run the same shipped scenario on the same engine and seed: the end-to-end runs of
``test_scenarios.py`` and ``test_flow_engine.py`` (through the CLI), the mechanism tests, the typed
summary's checks, the cross-check of the engines. They get the run from :func:`run_shipped` (a shipped
file, with top-level overrides) or :func:`run_cached` (any scenario, e.g. a shipped file as a user would
edit it), which compute ``sim.run(scenario, seed)`` once per process for an equal scenario (its validated
model, defaults filled) and seed; :func:`shared_runs` lets the CLI's ``run`` take its run from the same
cache.

Under pytest-xdist every worker is a process with a cache of its own, so every test that reads a
shipped run carries :func:`group` of its scenario, and ``--dist loadgroup`` (pyproject's ``addopts``,
``tests/xdist_groups.py``) sends all the tests of one scenario to the same worker.

A result is shared by every test that asks for it, as a module fixture's is: tests read it and never
change it. Nothing is kept on disk, so nothing can go stale.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sim

__all__ = ["ROOT", "SCENARIOS", "SHIPPED", "PLANNED", "KEYS", "FLOW_SHIPPED", "REQUESTS_ONLY", "key", "path_of",
           "group", "run_cached", "run_shipped", "shared_runs"]

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
# Every scenario file run end to end; sweep files (scenarios/sweeps/) are not scenarios, and the years of
# scenarios/layouts/year/ are planned (tests/test_planner.py), not run: both have tests of their own.
PLANNED = sorted((SCENARIOS / "layouts" / "year").glob("*.yaml"))
SHIPPED = sorted(p for p in SCENARIOS.rglob("*.yaml")
                 if "sweeps" not in p.relative_to(ROOT).parts and p not in PLANNED)
KEYS = [str(p.relative_to(SCENARIOS)) for p in SHIPPED]


def _runs_on_flow(path: Path) -> bool:
    from sim.policies import unsupported_on_flow

    return not unsupported_on_flow(sim.load_scenario(path))


# A shipped scenario that uses a policy with no fluid view (CoDel) is refused for the flow engine at load:
# the checks that run every shipped scenario on the flow engine take FLOW_SHIPPED, and
# tests/test_flow_engine.py checks that the others are refused.
FLOW_SHIPPED = [p for p in SHIPPED if _runs_on_flow(p)]
REQUESTS_ONLY = [p for p in SHIPPED if p not in FLOW_SHIPPED]

_run_module = importlib.import_module("sim.run")  # the module: ``sim.run`` is also the function
_real_run = _run_module.run
_runs: dict[tuple[str, int], sim.Result] = {}


def key(path: str | Path) -> str:
    """A shipped scenario's name under ``scenarios/``: ``quickstart.yaml``, ``mechanisms/retry-storm.yaml``."""
    return str(Path(path).resolve().relative_to(SCENARIOS))


def path_of(name: str) -> Path:
    """The file of shipped scenario ``name`` (as :func:`key` gives it)."""
    return SCENARIOS / name


def group(path: str | Path) -> pytest.MarkDecorator:
    """The xdist group of the tests that read a run of shipped scenario ``path`` (a file or its key)."""
    name = str(path) if not Path(path).is_absolute() else key(path)
    return pytest.mark.xdist_group(f"shipped:{name}")


def run_cached(scenario: sim.Scenario, seed: int | None = None) -> sim.Result:
    """``sim.run(scenario, seed)``, computed once per process for an equal scenario and seed.

    Equal means the same validated model (``model_dump_json``, what the manifest's scenario hash hashes),
    however it was built: loaded, parsed from an edited copy, or overridden.
    """
    seed = scenario.seed if seed is None else seed
    cache_key = (scenario.model_dump_json(), seed)
    if cache_key not in _runs:
        _runs[cache_key] = _real_run(scenario, seed=seed)
    return _runs[cache_key]


def run_shipped(path: str | Path, engine: str | None = None, seed: int | None = None,
                **overrides: Any) -> sim.Result:
    """The run of shipped scenario ``path`` (a file or its key) on ``engine`` (the file's when ``None``),
    at ``seed`` (the file's when ``None``), with top-level ``overrides``; computed once per process."""
    file = Path(path) if Path(path).is_absolute() else path_of(str(path))
    changes = {**overrides, **({"engine": engine} if engine else {})}
    return run_cached(sim.load_scenario(file, changes or None), seed)


@contextlib.contextmanager
def shared_runs() -> Iterator[None]:
    """While inside, ``sim.run.run`` (what the CLI calls) takes its runs from the cache of :func:`run_cached`.

    The CLI's progress callback is not called for a run the cache holds: it took no time. (A run with one
    is the same run: ``tests/test_scenarios.py`` compares the files of a fresh one, byte for byte.)
    """

    def run(scenario: sim.Scenario, seed: int | None = None, progress: Any = None) -> sim.Result:
        return run_cached(scenario, seed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_run_module, "run", run)
        yield
