"""``cascadesim report DIR`` on a damaged results folder: exit 2, one line naming what is wrong, and the
folder's existing report left as it was.

It used to be "internal error" (a KeyError, ValueError or TypeError from deep inside a renderer) for a
missing key, a number stored as text, a null list or a ragged CSV, and a scenario.json with a dangling
reference rendered a report of a topology that does not exist. Every stored file is now checked on load
(:func:`sim.report.load_results`), strictly for what the reports read and permissively for anything else.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sim
from sim.errors import format_path
from sim.report import ResultsError, load_results
from sim.report.files import report_files
from tests.conftest import scenario_from
from tests.test_cli import cli

# Two regions (a series per region), a database, a link, mail and a fault: every stored file is written.
SCENARIO = {
    "duration": "3m",
    "topology": {
        "regions": [
            {"id": "users", "users": 1000, "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}},
            {"id": "far", "users": 500, "datacenters": {"dc-b": "10ms", "dc-a": "40ms"}},
        ],
        "databases": [{"id": "db", "count": 4, "placement": [{"datacenter": "dc-a"}, {"datacenter": "dc-b"}]}],
    },
    "workload": {
        "regions": {"users": {"peak": "30/s"}, "far": {"peak": "10/s"}},
        "mail": {"regions": {"users": {"rate": "2/s"}}, "retry": {"first": "1m", "multiplier": 2, "max": "30m"}},
    },
    "policies": {"failover": {"database_delay": "10s"}},
    "faults": [
        {"id": "crash", "kind": "server_crash", "target": {"datacenters": ["dc-a"], "mode": {"count": 2}},
         "at": "1m", "duration": "1m"},
    ],
    "slo": {"availability": "99.9%", "window": "30s", "latency_p99": "1s"},
}
FILES = ("summary.json", "events.jsonl", "timeseries.csv", "datacenters.csv", "links.csv", "mail.csv",
         "scenario.json", "report.html", "report.md")


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    result = sim.run(scenario_from(SCENARIO), seed=3)
    folder = result.write_report(tmp_path_factory.mktemp("run") / "out")
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    return folder


@pytest.fixture
def folder(original, tmp_path) -> Path:
    """A fresh copy of the run's folder, to damage."""
    return Path(shutil.copytree(original, tmp_path / "damaged"))


# ------------------------------------------------------------------------------------------ damage


def edit_json(name: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        data = change(data) or data
        (folder / name).write_text(json.dumps(data, indent=2))

    return damage


def edit_lines(name: str, change: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        lines = (folder / name).read_text().splitlines()
        (folder / name).write_text("\n".join(change(lines)) + "\n")

    return damage


def set_cell(column: str, value: str, row: int = 1) -> Callable[[list[str]], list[str]]:
    """Set ``column`` of data row ``row`` (1: the first after the header) of CSV lines to ``value``."""

    def change(lines: list[str]) -> list[str]:
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return lines

    return change


def pop(path: tuple, key: str) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        node = data
        for part in path:
            node = node[part]
        del node[key]

    return change


def put(path: tuple, value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def event_line(n: int, change: Callable[[dict], None]) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        event = json.loads(lines[n - 1])
        change(event)
        lines[n - 1] = json.dumps(event)
        return lines

    return edit


def truncate(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: int(len(data) * keep)])

    return damage


def write(name: str, content: bytes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        (folder / name).write_bytes(content)

    return damage


def drop_rows_of(name: str, column: str, value: str) -> Callable[[Path], None]:
    """Remove the last row of one series (a region, a datacenter): the others keep all their windows."""

    def change(lines: list[str]) -> list[str]:
        i = lines[0].split(",").index(column)
        last = max(n for n, line in enumerate(lines) if n and line.split(",")[i] == value)
        return lines[:last] + lines[last + 1:]

    return edit_lines(name, change)


def header_fields(folder: Path, name: str) -> int:
    return len((folder / name).read_text().splitlines()[0].split(","))


def last_event_line(folder: Path) -> int:
    return len((folder / "events.jsonl").read_text().splitlines())


# Each case: the damage, and what the one-line message must say (a callable gets the damaged folder).
CASES: dict[str, tuple[Callable[[Path], None], Callable[[Path], list[str]]]] = {
    "summary: missing key": (
        edit_json("summary.json", pop((), "requests")),
        lambda f: ["summary.json: missing required field 'requests'"],
    ),
    "summary: number as text": (
        edit_json("summary.json", put(("availability",), "0.9989")),
        lambda f: ["summary.json: availability: expected a number (got '0.9989')"],
    ),
    "summary: null list": (
        edit_json("summary.json", put(("faults",), None)),
        lambda f: ["summary.json: faults: expected a list (got null)"],
    ),
    "summary: nested number as text": (
        edit_json("summary.json", put(("regions", "far", "availability"), "high")),
        lambda f: ["summary.json: regions.far.availability: expected a number (got 'high')"],
    ),
    "summary: a count that is a fraction": (
        edit_json("summary.json", put(("faults", 0, "blast_radius", "users"), 12.5)),
        lambda f: ["summary.json: faults[0].blast_radius.users: expected a whole number (got 12.5)"],
    ),
    "summary: mail that is no mapping": (
        edit_json("summary.json", put(("mail",), "no longer a mapping")),
        lambda f: ["summary.json: mail: expected a mapping (got 'no longer a mapping')"],
    ),
    "summary: users affected as a fraction": (
        edit_json("summary.json", put(("users_affected",), 12.5)),
        lambda f: ["summary.json: users_affected: expected a whole number (got 12.5)"],
    ),
    "summary: a flag that is a number": (
        edit_json("summary.json", put(("slo", "met"), 1)),
        lambda f: ["summary.json: slo.met: expected true or false (got 1)"],
    ),
    "summary: not a mapping": (
        write("summary.json", b"[]\n"),
        lambda f: ["summary.json: expected a mapping (got an empty list)"],
    ),
    "summary: cut short": (
        truncate("summary.json"),
        lambda f: ["summary.json:", "not valid JSON"],
    ),
    "summary: NaN": (
        write("summary.json", b'{"availability": NaN}\n'),
        lambda f: ["summary.json: not valid JSON: NaN is not a number JSON allows"],
    ),
    "timeseries: ragged row": (
        edit_lines("timeseries.csv", lambda lines: [*lines[:2], ",".join(lines[2].split(",")[:5]), *lines[3:]]),
        lambda f: [f"timeseries.csv:3: 5 fields, the header has {header_fields(f, 'timeseries.csv')}"],
    ),
    "timeseries: a row too long": (
        edit_lines("timeseries.csv", lambda lines: [*lines[:4], lines[4] + ",7", *lines[5:]]),
        lambda f: [f"timeseries.csv:5: {header_fields(f, 'timeseries.csv') + 1} fields, the header has "
                   f"{header_fields(f, 'timeseries.csv')}"],
    ),
    "timeseries: number as text": (
        edit_lines("timeseries.csv", set_cell("requests", "lots", row=2)),
        lambda f: ["timeseries.csv:3: requests: expected a whole number (got 'lots')"],
    ),
    "timeseries: missing column": (
        edit_lines("timeseries.csv", lambda lines: [lines[0].replace(",ok,", ",okay,"), *lines[1:]]),
        lambda f: ["timeseries.csv:1: missing column ok"],
    ),
    "timeseries: a series lost a row": (
        drop_rows_of("timeseries.csv", "region", "far"),
        lambda f: ["timeseries.csv: region 'far' has 5 rows and region 'users' 6; every region has one row "
                   "per window"],
    ),
    "timeseries: empty": (
        write("timeseries.csv", b""),
        lambda f: ["timeseries.csv: no rows"],
    ),
    "datacenters: a count as text": (
        edit_lines("datacenters.csv", set_cell("healthy", "four")),
        lambda f: ["datacenters.csv:2: healthy: expected a whole number (got 'four')"],
    ),
    "datacenters: an empty count": (
        edit_lines("datacenters.csv", set_cell("up", "")),
        lambda f: ["datacenters.csv:2: up: expected a whole number (got null)"],
    ),
    "links: ragged row": (
        edit_lines("links.csv", lambda lines: [lines[0], lines[1].rsplit(",", 2)[0], *lines[2:]]),
        lambda f: [f"links.csv:2: {header_fields(f, 'links.csv') - 2} fields, the header has "
                   f"{header_fields(f, 'links.csv')}"],
    ),
    "mail: ragged row": (
        edit_lines("mail.csv", lambda lines: [*lines[:3], lines[3] + ",", *lines[4:]]),
        lambda f: [f"mail.csv:4: {header_fields(f, 'mail.csv') + 1} fields"],
    ),
    "events: cut short": (
        truncate("events.jsonl", 0.6),
        lambda f: [f"events.jsonl:{last_event_line(f)}:", "not valid JSON", "cut short"],
    ),
    "events: time as text": (
        edit_lines("events.jsonl", event_line(2, put(("time",), "60"))),
        lambda f: ["events.jsonl:2: time: expected a number (got '60')"],
    ),
    "events: missing kind": (
        edit_lines("events.jsonl", event_line(3, pop((), "kind"))),
        lambda f: ["events.jsonl:3: missing required field 'kind'"],
    ),
    "events: not UTF-8": (
        lambda f: (f / "events.jsonl").write_bytes((f / "events.jsonl").read_bytes()[:40] + b"\xff\xfe"),
        lambda f: ["events.jsonl: not UTF-8 text (byte 40 cannot be decoded)"],
    ),
    "scenario: a dangling reference": (
        edit_json("scenario.json", put(("faults", 0, "target"), {"ids": ["nope-01"]})),
        lambda f: ["scenario.json:", "faults[0].target.ids[0]: no server 'nope-01'"],
    ),
    "scenario: a region served by no datacenter": (
        edit_json("scenario.json", put(("topology", "regions", 1, "datacenters"), {"dc-c": 0.01})),
        lambda f: ["scenario.json:", "topology.regions[1].datacenters.dc-c: no datacenter 'dc-c'"],
    ),
    "scenario: a wrong type": (
        edit_json("scenario.json", put(("duration",), "soon")),
        lambda f: ["scenario.json:", "duration:", "'soon'"],
    ),
    "scenario: not a mapping": (
        write("scenario.json", b"42\n"),
        lambda f: ["scenario.json:1:1:", "expected a mapping of scenario fields"],
    ),
}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_folder_exits_2_with_one_line_and_keeps_its_report(case, folder, capsys):
    damage, expected = CASES[case]
    damage(folder)
    before = snapshot(folder)
    assert cli("report", str(folder)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith(f"cascadesim report: {folder}/"), line
    assert "internal error" not in line and "Traceback" not in line
    for part in expected(folder):
        assert part in line, f"{part!r} not in {line!r}"
    assert snapshot(folder) == before, "the folder (its report included) is left as it was"


def test_the_command_itself_prints_no_traceback(folder):
    edit_json("summary.json", put(("faults",), None))(folder)
    before = snapshot(folder)
    done = subprocess.run([sys.executable, "-m", "sim", "report", str(folder)], capture_output=True, text=True,
                          env={**os.environ, "CASCADESIM_DEBUG": ""}, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"cascadesim report: {folder}/summary.json: faults: expected a list (got null)\n"
    assert snapshot(folder) == before


def test_keys_it_does_not_read_are_let_through(folder, original, capsys):
    """Older and newer folders load: unknown keys, fields and columns pass; so do missing optional ones."""

    def summary(s: dict) -> None:
        s["from_the_future"] = {"anything": [1, "x", None]}
        s["regions"]["users"]["p999"] = 0.5
        s["faults"][0]["new_field"] = "x"
        s["mail"]["delay"]["p999"] = 12.0  # a newer field of a section that is read (by the experiments)
        for key in ("manifest", "counts", "recovery"):
            del s[key]
        del s["slo"]["availability_met"], s["slo"]["latency_met"], s["latency"]["mean"]

    edit_json("summary.json", summary)(folder)
    edit_lines("events.jsonl", event_line(1, put(("colour",), "red")))(folder)
    edit_lines("timeseries.csv", lambda lines: [lines[0] + ",extra", *(line + ",1" for line in lines[1:])])(folder)
    assert cli("report", str(folder)) == 0
    capsys.readouterr()
    stored = load_results(folder)
    assert stored.summary["from_the_future"] == {"anything": [1, "x", None]}
    assert stored.summary["mail"]["delay"]["p999"] == 12.0 and stored.stats.mail is not None
    assert stored.timeseries[0]["extra"] == 1
    assert stored.seed == stored.scenario.seed  # no manifest: the scenario's seed


# ------------------------------------------------------------------------------------------ every field


def paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path in ``data`` (the first item of each list stands for the rest)."""
    if prefix:
        yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list) and data:
        yield from paths(data[0], (*prefix, 0))


MUTATIONS: dict[str, Any] = {"delete": None, "null": None, "text": "x", "list": [], "mapping": {}}


def mutate(data: Any, path: tuple, how: str) -> Any:
    """``data`` with the value at ``path`` damaged ``how``; None when that damage does not apply there.

    A list or a mapping is swapped for the other; a plain value gets text (``"x"``) or ``null``.
    """
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    old = node[path[-1]]
    if how == "delete":
        if isinstance(node, list):
            return None
        del node[path[-1]]
        return data
    if how == "list" and not isinstance(old, dict) or how == "mapping" and not isinstance(old, list):
        return None
    node[path[-1]] = MUTATIONS[how]
    return data


def renders(folder: Path) -> bool:
    """Load and render ``folder``: True if it rendered, False for a ResultsError; anything else raises."""
    try:
        stored = load_results(folder)
    except ResultsError as err:
        assert "\n" not in str(err)
        return False
    report_files(stored)
    return True


def test_every_summary_field_damaged_any_way_is_named_or_rendered(folder):
    """Each key of summary.json deleted, nulled or replaced by text, a list or a mapping: the folder
    either renders or is refused with a message naming the field; no other exception, ever.

    Accepted damage of one kind is then applied all at once and rendered once (rendering is the slow part).
    """
    pristine = json.loads((folder / "summary.json").read_text())
    accepted: dict[str, list[tuple]] = {how: [] for how in MUTATIONS}
    tried = 0
    for path in paths(pristine):  # mail too: the summary's every section is typed (sim.summary)
        for how in MUTATIONS:
            damaged = mutate(pristine, path, how)
            if damaged is None:
                continue
            tried += 1
            (folder / "summary.json").write_text(json.dumps(damaged))
            try:
                load_results(folder)
            except ResultsError as err:
                text = str(err)
                assert text.startswith(f"{folder / 'summary.json'}: ") and "\n" not in text
                named = f"missing required field '{path[-1]}'" if how == "delete" else format_path(path)
                assert named in text, (path, how, text)
            else:
                accepted[how].append(path)
    assert tried > 250
    rendered = 0
    for how, found in accepted.items():
        data = pristine
        for path in sorted(found, key=len, reverse=True):  # children before their parents
            data = mutate(data, path, how) if _exists(data, path) else data
        (folder / "summary.json").write_text(json.dumps(data))
        rendered += renders(folder)
    assert rendered >= 3, "the damage the checks let through was rendered"


def _exists(data: Any, path: tuple) -> bool:
    node = data
    for part in path:
        if isinstance(node, dict) and part in node or isinstance(node, list) and part < len(node):
            node = node[part]
        else:
            return False
    return True


def test_every_event_field_and_csv_cell_damaged_is_named_or_rendered(folder):
    """Each field of two events and each cell of the first row of every table, damaged one at a time:
    refused with a message naming the line, or loaded; what loads is then rendered, a kind at a time.
    """
    pristine = {name: (folder / name).read_text() for name in FILES if name.endswith((".jsonl", ".csv"))}

    def restore() -> None:
        for name, text in pristine.items():
            (folder / name).write_text(text)

    def loads(damage: Callable[[Path], None], where: str) -> bool:
        name = where.split(":")[0]
        damage(folder)
        try:
            load_results(folder)
        except ResultsError as err:
            assert str(err).startswith(f"{folder}/{where}") and "\n" not in str(err), str(err)
            return False
        finally:
            (folder / name).write_text(pristine[name])
        return True

    batches: dict[str, list[Callable[[Path], None]]] = {}
    # The first event (a fault_start) and the first caused one: the reports follow causes.
    lines = pristine["events.jsonl"].splitlines()
    caused = next(n for n, line in enumerate(lines, 1) if json.loads(line)["cause"] is not None)
    for n in (1, caused):
        for key in json.loads(lines[n - 1]):
            for how in MUTATIONS:
                damage = edit_lines("events.jsonl", event_line(n, lambda e, k=key, h=how: _mutate_event(e, k, h)))
                if loads(damage, f"events.jsonl:{n}: "):
                    batches.setdefault(f"events {how}", []).append(damage)
    for name in ("timeseries.csv", "datacenters.csv", "links.csv", "mail.csv"):
        for column in pristine[name].splitlines()[0].split(","):
            for value in ("", "x", "-1"):
                damage = edit_lines(name, set_cell(column, value))
                if loads(damage, name):
                    batches.setdefault(f"cells {value!r}", []).append(damage)
    assert len(batches) >= 6
    for kind, damages in batches.items():
        restore()
        for damage in damages:
            damage(folder)
        assert renders(folder), kind
    restore()


def _mutate_event(event: dict, key: str, how: str) -> None:
    if how == "delete":
        del event[key]
    else:
        event[key] = MUTATIONS[how]
