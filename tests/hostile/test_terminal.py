"""What the command prints never acts on the terminal: escape sequences (ESC, an OSC title change, BEL)
and line breaks from keys, values and file names are shown escaped, so they neither retitle nor recolour
the terminal nor forge a line that looks like another file's problem.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.errors import Problem, printable
from tests.conftest import BASE, merge
from tests.test_cli import cli

CASCADESIM = Path(sys.executable).with_name("cascadesim")
OSC = "\x1b]0;owned\x07"  # sets the terminal's title
FORGED = "\n/etc/passwd:1:1: fake problem"

# Keys and values with ESC, BEL, newlines and an OSC sequence, written the way YAML allows ("\e", "\a").
HOSTILE_YAML = r"""name: "evil\e]0;owned\a"
description: x
duration: 1m
"dur\eation\n/etc/passwd:1:1: fake problem": 3
topology:
  regions:
    - {id: users, datacenters: {dc-a: 10ms}}
  datacenters:
    - id: "dc\n/etc/passwd:1:1: fake problem"
      location: "\e[31mred"
      servers: [{id: "a\a", count: 1, workers: 1, service_time: 10ms}]
workload:
  regions: {"eu\e[2J": {peak: 10/s}, users: {peak: "\e]0;owned\a"}}
"""

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # everything but the line ends


def assert_clean(text: str) -> None:
    assert not CONTROL.search(text), repr(text)


def test_validate_shows_control_characters_escaped_on_every_line(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text(HOSTILE_YAML)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    done = subprocess.run([str(CASCADESIM), "validate", str(path)], capture_output=True, env=env, cwd=tmp_path)
    assert done.returncode == 2
    err = done.stderr
    assert not [b for b in err if b < 0x20 and b != 0x0A], err  # bytes: no ESC, BEL, CR, tab...
    lines = err.decode().splitlines()
    assert len(lines) >= 6
    for line in lines:
        assert line.startswith(f"{path}:"), line  # no line is forged
    text = err.decode()
    assert "\\x1b" in text and "\\x07" in text and "\\n/etc/passwd" in text  # shown, not acted on
    assert "'dur\\x1bation\\n/etc/passwd:1:1: fake problem'" in text


def test_a_file_name_with_control_characters_is_shown_escaped(tmp_path, capsys):
    bad = tmp_path / f"ok{OSC}\nother.yaml:1:1: fake problem.yaml"
    bad.write_text(yaml.safe_dump(merge(BASE, {"duration": "1m"})))
    good_looking = tmp_path / f"s{OSC}.yaml"
    good_looking.write_text(yaml.safe_dump(merge(BASE, {"duration": "1m", "seed": "x"})))
    assert cli("validate", str(bad), str(good_looking)) == 2
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert out == f"{printable(bad)}: ok\n"
    assert err.startswith(f"{printable(good_looking)}:") and err.count("\n") == 1
    assert printable(bad).endswith("ok\\x1b]0;owned\\x07\\nother.yaml:1:1: fake problem.yaml")


def test_sweep_errors_show_control_characters_escaped(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        'name: "ok\\e]0;owned\\a"\n'
        f"base: {Path(__file__).resolve().parents[2] / 'scenarios' / 'quickstart.yaml'}\n"
        "parameters:\n"
        '  "policies.client.retries\\n/etc/passwd:1:1: x": [0, 1]\n'
        '  description: {values: {"two\\e[2J": a}}\n'
    )
    assert cli("sweep", str(path), "--dry-run") == 2
    out, err = capsys.readouterr()
    assert_clean(out + err)
    lines = err.splitlines()
    assert len(lines) == 4 and lines[-1] == "3 problems; nothing was run or written."
    assert all(line.startswith(f"{path}:") for line in lines[:-1]), lines


def test_sweep_summary_shows_values_escaped(tmp_path, capsys):
    """A value of a free-text field can hold anything; the summary names the best and worst points."""
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(merge(BASE, {"duration": "1m"}), sort_keys=False))
    (tmp_path / "sweep.yaml").write_text(
        yaml.safe_dump(
            {"name": "t", "base": "base.yaml", "parameters": {"description": [OSC, FORGED]}, "replications": 1}
        )
    )
    code = cli("sweep", str(tmp_path / "sweep.yaml"), "-j", "0", "--out", str(tmp_path / "out"), "--no-report")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_clean(out + err)
    assert "description=\\x1b]0;owned\\x07" in out and "description=\\n/etc/passwd" in out


def test_errors_the_command_line_parser_raises_are_escaped_too(capsys):
    assert cli("schema", f"x{OSC}{FORGED}") == 2  # an argument from a glob over file names, say
    _, err = capsys.readouterr()
    assert_clean(err)
    assert "unexpected extra argument (x\\x1b]0;owned\\x07\\n/etc/passwd:1:1: fake problem)" in err


@pytest.mark.parametrize("text", [OSC, FORGED, "\x9b31m", "a\u202eb", "tab\there", "\r\n"])
def test_printable_leaves_no_control_character(text):
    shown = printable(text)
    assert_clean(shown) and "\n" not in shown and "\u202e" not in shown
    assert "\n" not in str(Problem(f"f{text}.yaml", 1, 2, f"k{text}", f"m{text}"))
