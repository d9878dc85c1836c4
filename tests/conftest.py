"""Shared fixtures: small scenarios built from dicts, so each test says only what it changes; the hooks
that keep the tests sharing work on the same pytest-xdist worker."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

import sim
from tests import xdist_groups

BASE: dict[str, Any] = {
    "name": "unit",
    "seed": 1,
    "duration": "10m",
    "topology": {
        "regions": [{"id": "users", "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}],
        "datacenters": [
            {"id": "dc-a", "servers": [{"id": "a", "count": 4, "workers": 4, "service_time": "20ms"}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 4, "workers": 4, "service_time": "20ms"}]},
        ],
        "links": [{"between": ["dc-a", "dc-b"], "capacity": "10Gbps", "latency": "30ms"}],
    },
    "workload": {"regions": {"users": {"peak": "50/s"}}},
    "policies": {"client": {"timeout": "1s", "retries": 2, "backoff": {"base": "100ms", "jitter": "none"}}},
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``changes`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario_from(changes: dict[str, Any] | None = None, base: dict[str, Any] | None = None) -> sim.Scenario:
    """A validated scenario: ``BASE`` (or ``base``) with ``changes`` merged in, through the real loader."""
    data = merge(base or BASE, changes or {})
    return sim.parse_scenario(yaml.safe_dump(data, sort_keys=False), "test.yaml")


def cause_chain(result: sim.Result, event: dict) -> list[str]:
    """Kinds of ``event`` and of each of its causes, back to the root."""
    by_id = {e["id"]: e for e in result.events}
    out = [event["kind"]]
    while event["cause"] is not None:
        event = by_id[event["cause"]]
        out.append(event["kind"])
    return out


@pytest.fixture(autouse=True)
def _planner_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's overload curves are cached in the session's temporary folder (one per worker), never
    in the user's ~/.cache."""
    monkeypatch.setenv("CASCADESIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def make_scenario():
    return scenario_from


# ---------------------------------------------------------------------------- slow checks: run with --slow (CI does)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the checks marked slow (the engines' cross-check, minutes of CPU); CI does")


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--slow") or config.option.markexpr:
        return "slow checks: as asked"
    return "slow checks: left out (the engines' cross-check); --slow runs them, as CI does"


def _leave_out_slow(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without ``--slow`` (or a ``-m`` of the user's own), the tests marked slow are deselected."""
    if config.getoption("--slow") or config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


# ------------------------------------------------------------------ how pytest -n shares work (tests/xdist_groups.py)


def pytest_configure(config: pytest.Config) -> None:
    xdist_groups.start(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    xdist_groups.stop(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _leave_out_slow(config, items)
    xdist_groups.write_groups(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return xdist_groups.make_scheduler(config, log)
