"""Fuzzing the shipped scenarios: a hostile edit is either refused with exit code 2 or runs to an end.

Each example takes a shipped scenario, makes one hostile edit (a scalar replaced by a huge, negative,
non-finite, overlong or ill-typed value; a key deleted; a line duplicated, which duplicates a key or a
list entry; a collection emptied) and gives it to ``cascadesim validate`` in this process. When the edit
is valid the scenario is also run (``run --no-report``), cut to 90 seconds so that the test stays quick:
scheduled faults are moved into the run and ``limits.max_requests`` is lowered for the fuzz. Exit codes
0, 2 and 3 are accepted; an internal error, a traceback or any other code is not.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.units import parse_duration

ROOT = Path(__file__).resolve().parents[2]


def _shipped() -> list[Path]:
    """Every scenario under scenarios/ (sweep files, which name a ``base`` scenario, are not scenarios)."""
    paths = sorted(set(ROOT.joinpath("scenarios").glob("*.yaml")) | set(ROOT.joinpath("scenarios").glob("**/*.yaml")))
    return [p for p in paths if "base" not in yaml.safe_load(p.read_text(encoding="utf-8"))]


SHIPPED = _shipped()
TEXTS = {p: p.read_text(encoding="utf-8") for p in SHIPPED}
DATA = {p: yaml.safe_load(text) for p, text in TEXTS.items()}

HOSTILE: list[Any] = [
    10**400,
    -(10**400),
    2**64,
    2**63,
    2**31,
    10**9,
    1.0e300,
    -1,
    0,
    0.0,
    1e-300,
    float("nan"),
    float("inf"),
    float("-inf"),
    "NaN",
    "inf",
    "-inf",
    ".inf",
    "1e309",
    "1e400s",
    "9" * 400,
    "9" * 400 + "s",
    "9" * 400 + "/s",
    "9" * 400 + "%",
    "-5s",
    "0s",
    "1us",
    "100y",
    "1e-9s",
    "x" * 100_000,
    "\x00\x07\x1b[31m",
    "\u202e\ufeff",
    "",
    True,
    None,
    [],
    {},
    [1, 2, 3],
    {"a": 1},
    "auto",
    "flow",
]


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (mappings and lists), the root excluded."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*here, key))
        out.extend(_paths(value, (*here, key)))
    return out


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutants(draw: st.DrawFn) -> tuple[str, Path, str]:
    """(what was done, the scenario it was done to, the mutant's YAML text)."""
    path = draw(st.sampled_from(SHIPPED))
    op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "duplicate", "empty"]))
    if op == "duplicate":
        lines = TEXTS[path].splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        return f"duplicate line {i + 1}", path, "".join(lines[: i + 1] + lines[i:])
    data = copy.deepcopy(DATA[path])
    paths = _paths(data)
    if op == "replace":
        scalars = [p for p in paths if not isinstance(_at(data, p), dict | list)]
        where = draw(st.sampled_from(scalars))
        value = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
        _at(data, where[:-1])[where[-1]] = value
        what = f"{where} = {value!r:.60}"
    elif op == "delete":
        keys = [p for p in paths if isinstance(_at(data, p[:-1]), dict)]
        where = draw(st.sampled_from(keys))
        del _at(data, where[:-1])[where[-1]]
        what = f"del {where}"
    else:
        collections = [p for p in paths if isinstance(_at(data, p), dict | list)]
        where = draw(st.sampled_from(collections))
        _at(data, where[:-1])[where[-1]] = draw(st.sampled_from([[], {}]))
        what = f"{where} emptied"
    return what, path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _short_run(text: str) -> str | None:
    """The mutant cut to 90 s, its scheduled faults moved into that time, at most 300,000 requests."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return None
    data["duration"] = "90s"
    for fault in data.get("faults") or []:
        with contextlib.suppress(Exception):
            if parse_duration(fault["at"]) > 65:
                fault["at"] = "65s"
    limits = data.get("limits") if isinstance(data.get("limits"), dict) else {}
    data["limits"] = {**limits, "max_requests": 3e5}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def cli(*args: str) -> tuple[Any, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code: Any = None
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue() + err.getvalue()


def _sound(code: Any, output: str, accepted: set[int], what: str) -> None:
    assert code in accepted, f"{what}: exit code {code!r}\n{output[-2000:]}"
    assert "internal error" not in output and "Traceback" not in output, f"{what}:\n{output[-2000:]}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_there_are_shipped_scenarios_to_fuzz():
    assert len(SHIPPED) >= 15 and all("sweeps" not in p.parts for p in SHIPPED)


@settings(
    max_examples=800,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutant=mutants())
def test_a_hostile_edit_is_refused_or_runs(mutant: tuple[str, Path, str], folder: Path) -> None:
    what, path, text = mutant
    what = f"{path.relative_to(ROOT)}: {what}"
    file = folder / "mutant.yaml"
    file.write_text(text, encoding="utf-8")
    code, output = cli("validate", str(file))
    _sound(code, output, {0, 2}, what)
    if code != 0:
        assert ":" in output.splitlines()[0], what  # file:line:col: ...
        return
    short = _short_run(text)
    assert short is not None
    file.write_text(short, encoding="utf-8")
    code, output = cli("run", "--no-report", str(file))
    _sound(code, output, {0, 2, 3}, what)
