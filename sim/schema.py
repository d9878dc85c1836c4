"""The JSON Schema of scenario files, for editors and for ``cascadesim schema``."""

from __future__ import annotations

import json
from typing import Any

from sim.scenario import Scenario

__all__ = ["scenario_schema", "schema_text"]


def scenario_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file, generated from the models."""
    schema = Scenario.model_json_schema(mode="validation")
    draft = "https://json-schema.org/draft/2020-12/schema"
    return {**schema, "$schema": draft, "title": "cascadesim scenario"}


def schema_text() -> str:
    """Return the schema as stable, indented JSON text (what ``scenarios/scenario.schema.json`` holds)."""
    return json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n"
