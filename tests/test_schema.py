"""The JSON Schema of scenario files: shipped, in step with the models, accepting the shipped scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.scenario import Scenario
from sim.schema import scenario_schema, schema_text

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SHIPPED = SCENARIOS / "scenario.schema.json"
EXAMPLES = sorted(SCENARIOS.glob("*.yaml"))
REGENERATE = (
    'python -c "from sim.schema import schema_text; '
    "open('scenarios/scenario.schema.json','w').write(schema_text())\""
)


def test_shipped_schema_is_exactly_schema_text():
    assert SHIPPED.read_text(encoding="utf-8") == schema_text(), (
        f"the shipped schema is stale; run {REGENERATE}"
    )


def test_schema_text_is_stable_json():
    text = schema_text()
    assert text.endswith("}\n")
    assert json.loads(text) == scenario_schema()
    assert schema_text() == text


def test_schema_top_level_is_the_scenario_model():
    schema = scenario_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(Scenario.model_fields)
    assert set(schema["required"]) == {n for n, f in Scenario.model_fields.items() if f.is_required()}


def test_every_model_in_the_schema_forbids_unknown_keys():
    for name, definition in scenario_schema()["$defs"].items():
        if definition.get("type") == "object":
            assert definition.get("additionalProperties") is False, name


def _top_level_problems(schema: dict[str, Any], data: Any) -> list[str]:
    """A small hand-written check of the top level: a mapping, known keys only, required keys present."""
    if not isinstance(data, dict):
        return ["not a mapping"]
    problems = [f"unknown key {key!r}" for key in data if key not in schema["properties"]]
    problems += [f"missing key {key!r}" for key in schema["required"] if key not in data]
    return problems


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_scenarios_fit_the_schema_at_the_top_level(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _top_level_problems(scenario_schema(), data) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_scenarios_fit_the_whole_schema(path):
    import jsonschema
    validator = jsonschema.Draft202012Validator(scenario_schema())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [error.message for error in validator.iter_errors(data)] == []


def test_the_schema_is_valid_and_rejects_what_the_loader_rejects():
    import jsonschema
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    data = yaml.safe_load(EXAMPLES[0].read_text(encoding="utf-8"))
    assert validator.is_valid(data)
    assert not validator.is_valid({**data, "sed": 1})
    assert _top_level_problems(schema, {**data, "sed": 1}) == ["unknown key 'sed'"]
    missing = {k: v for k, v in data.items() if k != "topology"}
    assert not validator.is_valid(missing)
    assert _top_level_problems(schema, missing) == ["missing key 'topology'"]


def test_cli_prints_the_schema():
    from click.testing import CliRunner

    import sim.cli as cli

    result = CliRunner().invoke(cli.cli, ["schema"])
    assert result.exit_code == 0
    assert result.output == schema_text()
