"""The JSON Schema of scenario files: shipped, in step with the models, accepting the shipped scenarios."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.scenario import Scenario
from sim.schema import REFERENCE_COMMAND, SCHEMA_COMMAND, model_docs, reference_text, scenario_schema, schema_text

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
SHIPPED = SCENARIOS / "scenario.schema.json"
REFERENCE = ROOT / "docs" / "scenario-reference.md"
EXAMPLES = sorted(SCENARIOS.glob("*.yaml"))
REGENERATE = (
    f"{SCHEMA_COMMAND} (or: python -c \"from sim.schema import schema_text; "
    "open('scenarios/scenario.schema.json','w').write(schema_text())\")"
)


def test_shipped_schema_is_exactly_schema_text():
    assert SHIPPED.read_text(encoding="utf-8") == schema_text(), (
        f"the shipped schema is stale; run {REGENERATE}"
    )


def test_the_field_reference_page_is_current():
    assert REFERENCE.read_text(encoding="utf-8") == reference_text(), (
        f"docs/scenario-reference.md is stale; run {REFERENCE_COMMAND} (or: python -c \"from sim.schema import "
        "reference_text; open('docs/scenario-reference.md','w').write(reference_text())\")"
    )


def _properties(schema: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every property of every object in the schema, at any depth, with where it is."""
    found = []
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            found.append((f"{where}.{name}", prop))
        for key, value in schema.items():
            found += _properties(value, f"{where}/{key}" if key == "$defs" or where.endswith("$defs") else where)
    elif isinstance(schema, list):
        for item in schema:
            found += _properties(item, where)
    return found


def test_every_property_in_the_schema_has_a_description():
    props = _properties(scenario_schema())
    assert len(props) > 200
    assert [where for where, prop in props if not str(prop.get("description", "")).strip()] == []


def _model_fields() -> list[tuple[str, str, Any]]:
    from sim.schema import _models  # the models the schema is made of

    return [(m.__name__, name, f) for m in _models().values() for name, f in m.model_fields.items()]


def test_every_field_of_every_model_says_what_it_means():
    # The meaning is written once, in the model; a fault's kind says it through its class's docstring.
    missing = [
        f"{model}.{name}"
        for model, name, field in _model_fields()
        if not (field.description or "").strip() and not (name == "kind" and "Literal" in repr(field.annotation))
    ]
    assert missing == [], f"add Field(description=...) to: {', '.join(missing)}"


def test_every_description_has_the_unit_and_the_default():
    props = dict(_properties(scenario_schema()))
    for model, name, field in _model_fields():
        prop = props.get(f"/$defs/{model}.{name}") or props.get(f".{name}" if model == "Scenario" else "")
        if prop is None:  # a model written through a schema of its own (a service time's mapping)
            continue
        expected = "Required." if field.is_required() else "Default: "
        assert expected in prop["description"], (model, name, prop["description"])
    defs = scenario_schema()["$defs"]
    assert defs["ClientPolicy"]["properties"]["retries"]["description"] == (
        "Attempts after the first, after an error or a timeout (0: never retry). Whole number, 0 to 20. Default: 2."
    )
    assert defs["ClientPolicy"]["properties"]["timeout"]["description"] == (
        "How long the client waits for one attempt. Duration, more than 0s, at most 1h (a bare number is "
        "seconds). Default: 5s."
    )
    backoff = defs["Backoff"]["properties"]
    assert backoff["base"]["description"].endswith("Duration, at most 1d (a bare number is seconds). Default: 100ms.")
    assert backoff["jitter"]["description"].endswith("Default: full.")
    breaker = defs["CircuitBreaker"]["properties"]
    assert breaker["error_threshold"]["description"] == (
        "Share of failed attempts in the window that opens it. Percentage (a bare number is a fraction: 0.3 is "
        "30%). Default: 50%."
    )
    assert breaker["open_time"]["description"].endswith("Default: 30s.")
    assert all("Default: " in p["description"] for p in breaker.values())
    assert defs["ClientPolicy"]["properties"]["breaker"]["description"].endswith("Default: null.")
    assert defs["ClientPolicy"]["properties"]["backoff"]["description"].endswith(
        "Default: each of its fields' defaults."
    )


def test_examples_fit_their_field():
    # No field lists the examples every duration shared ("30s", "5m": a proxy's frontend_time is 2ms);
    # a field's examples are its own.
    props = _properties(scenario_schema())
    shared = [where for where, prop in props if '"30s", "5m"' in json.dumps(prop)]
    assert shared == []
    group = scenario_schema()["$defs"]["ServerGroup"]["properties"]
    assert group["frontend_time"]["examples"] == ["2ms"]
    assert "examples" not in group["restart_time"]


def test_the_reference_names_every_field_with_its_type_and_default():
    text = reference_text()
    docs = model_docs()
    assert docs[0].paths == ("(the top level)",)
    paths = [p for doc in docs for p in doc.paths]
    assert "policies.client" in paths and "faults[] (kind: bad_update)" in paths
    for doc in docs:
        section = text.split(f"## `{doc.paths[0]}`\n", 1)[1].split("\n## ", 1)[0]
        for f in doc.fields:
            assert f"| `{f.name}` |" in section, (doc.paths[0], f.name)
    client = text.split("## `policies.client`\n", 1)[1].split("\n## ", 1)[0]
    assert "| `timeout` | duration, more than 0s, at most 1h | `5s` | how long the client waits for one attempt |" in (
        client
    )
    assert "| `retries` | whole number, 0 to 20 | `2` |" in client
    every_fault = text.split("## `faults[] (every kind)`\n", 1)[1].split("\n## ", 1)[0]
    assert "| `mtbf` | duration or null | `null` |" in every_fault
    for kind in ("server_crash", "bad_update", "congestion", "load_balancer_failure"):
        assert f"## `faults[] (kind: {kind})`" in text
    # Links between sections point at headings that exist.
    anchors = {doc.anchor for doc in docs}
    assert {a for a in re.findall(r"\]\(#([^)]+)\)", text)} <= anchors


def test_cli_prints_the_reference(capsys):
    from click.testing import CliRunner

    import sim.cli as cli

    result = CliRunner().invoke(cli.cli, ["schema", "--reference"])
    assert result.exit_code == 0 and result.output == reference_text()


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
