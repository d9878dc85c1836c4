"""Every name that becomes a folder, a file, a results value or report text follows the rule of scenario
ids — a sweep's name, a labelled value, a parameter's path, a compared layout's name (its file's name) —
and a name that breaks it is reported at its line, in the file:line:col style.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.errors import ScenarioError
from sim.experiments.sweep import parse_sweep, valid_name
from tests.conftest import BASE, merge
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]
RULE = "expected letters, digits and _ . : - starting with a letter or digit, at most 64"


def problems(text: str, filename: str = "s.yaml") -> list[str]:
    with pytest.raises(ScenarioError) as err:
        parse_sweep(text, filename, ROOT / "scenarios" / "sweeps")
    return [str(p) for p in err.value.problems]


def sweep(name: str = "t", parameters: str = "  policies.client.retries: [0, 1]\n") -> str:
    return f'name: "{name}"\nbase: ../mechanisms/retry-storm.yaml\nparameters:\n{parameters}'


@pytest.mark.parametrize("name", ["retry\\n", "retry\\nstorm", "a\\e]0;x\\a", "../up", "a b", "<b>x</b>"])
def test_a_sweep_name_follows_the_rule_of_scenario_ids(name):
    shown = name.replace("\\e", "\\x1b").replace("\\a", "\\x07")
    assert problems(sweep(name)) == [f"s.yaml:1:7: name: not a valid name (got '{shown}', {RULE})"]


def test_a_sweep_named_after_its_file_says_so():
    text = "base: ../mechanisms/retry-storm.yaml\nparameters:\n  policies.client.retries: [0, 1]\n"
    found = problems(text, "my sweep.yaml")
    assert found == [
        f"my sweep.yaml:1:1: name: not a valid name (got 'my sweep', {RULE}); without a name: field, the sweep is "
        "named after its file"
    ]


def test_labels_follow_the_rule():
    text = sweep(parameters='  policies.client.retries: {values: {"two\\n": 2, ok: 1}}\n')
    assert problems(text) == [
        f"s.yaml:4:38: parameters['policies.client.retries'].values['two\\n']: not a valid label "
        f"(got 'two\\n', {RULE})"
    ]


def test_a_parameter_path_holds_no_control_character():
    text = sweep(parameters='  "policies.client.retries\\n": [0, 1]\n')
    assert problems(text) == [
        "s.yaml:4:3: parameters['policies.client.retries\\n']: not a path (got 'policies.client.retries\\n': "
        "control characters are not allowed)"
    ]


def test_good_names_still_pass():
    assert parse_sweep(sweep("retry-storm.v2:small"), "s.yaml", ROOT / "scenarios" / "sweeps").name == (
        "retry-storm.v2:small"
    )
    assert [valid_name(n) for n in ("a", "A-1_b.c:d", "x" * 64, "x" * 65, "", "-a", 3)] == [
        True, True, True, False, False, False, False
    ]


@pytest.mark.parametrize("stem", ["two\ndc", "<b>two", "two dc", "\x1b]0;x\x07"])
def test_compare_names_layouts_after_valid_file_names_only(tmp_path, capsys, stem):
    good = tmp_path / "one.yaml"
    bad = tmp_path / f"{stem}.yaml"
    for path in (good, bad):
        path.write_text(yaml.safe_dump(merge(BASE, {"duration": "1m"}), sort_keys=False))
    out = tmp_path / "out"
    assert cli("compare", str(good), str(bad), "-n", "2", "-j", "0", "--out", str(out)) == 2
    err = capsys.readouterr().err.splitlines()
    shown = repr(stem).replace("\n", "\\n")
    assert err[0].startswith(str(tmp_path)) and err[0].endswith(
        f".yaml:1:1: not a valid layout name (got {shown} from the file name, {RULE}); rename the file"
    )
    assert err[1:] == ["1 problem; nothing was run or written."]
    assert not out.exists()
