"""The JSON Schema of scenario files, for editors and ``cascadesim schema``, and the field reference page.

Both are generated from the models of :mod:`sim.scenario` and :mod:`sim.faults`. A field's meaning is
written once, in its model (``Field(description=...)``); its type, unit, range and default are read from
the model and its JSON Schema here, so they cannot drift. Every property of the schema gets the
description ``<meaning>. <type, unit and range>. Default: <default>.`` (or ``Required.``), and
:func:`reference_text` lays the same facts out as ``docs/scenario-reference.md``.

>>> fields = {f.name: f for f in model_docs()[0].fields}
>>> fields["duration"].default, fields["seed"].default, fields["seed"].kind
(None, '0', 'whole number, 0 to 9223372036854775807')
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter

from sim.scenario import Scenario
from sim.units import MAX_BANDWIDTH, MAX_DURATION, MAX_RATE, MAX_SIZE, format_duration

__all__ = ["scenario_schema", "schema_text", "reference_text", "model_docs", "FieldDoc", "ModelDoc"]

REFERENCE_COMMAND = "cascadesim schema --reference > docs/scenario-reference.md"
"""How ``docs/scenario-reference.md`` is written (the test that keeps it current names it)."""
SCHEMA_COMMAND = "cascadesim schema > scenarios/scenario.schema.json"
"""How ``scenarios/scenario.schema.json`` is written."""


@dataclass(frozen=True)
class FieldDoc:
    """One field of a model as the reference shows it.

    ``shape``: type and range in words, with the models it holds marked (:attr:`kind` without the marks);
    ``unit``: ``duration``, ``percentage``, ``bandwidth``, ``rate``, ``size`` or None; ``default``: as a
    scenario writes it (None: required); ``text``: its meaning, from the model; ``inline``: a model written
    through a hand-written schema (a service time's mapping), to link its word ``mapping`` to.
    """

    name: str
    shape: str
    unit: str | None
    default: str | None
    text: str
    inline: str | None = None

    @property
    def kind(self) -> str:
        """Type and range in words: ``duration, more than 0s, at most 1h``."""
        return _REF.sub(r"\2", self.shape)

    @property
    def holds_model(self) -> bool:
        """Whether the field's value is itself a mapping of fields (documented in its own section)."""
        return _REF.fullmatch(self.shape.removesuffix(" or null")) is not None

    @property
    def description(self) -> str:
        """The schema's description: meaning, then type and unit, then the default."""
        text = self.text.strip()
        if "_" not in text.split(" ")[0]:  # not a name (a fault kind such as server_crash)
            text = text[:1].upper() + text[1:]
        parts = [text if text.endswith(".") else text + "."]
        if not self.holds_model and not text.startswith(f"{self.kind}:"):
            bare = f" ({_UNITS[self.unit]})" if self.unit and self.unit in self.kind.split(",")[0] else ""
            parts.append(self.kind[:1].upper() + self.kind[1:] + bare + ".")
        parts.append("Required." if self.default is None else f"Default: {self.default}.")
        return " ".join(parts)

    def markdown_kind(self, anchors: dict[str, str]) -> str:
        """:attr:`kind` with each model it holds linked to its section."""
        text = _REF.sub(lambda m: f"[{m.group(2)}](#{anchors[m.group(1)]})", self.shape)
        if self.inline is not None:
            text = text.replace("mapping", f"[mapping](#{anchors[self.inline]})", 1)
        return text


@dataclass(frozen=True)
class ModelDoc:
    """One section of the reference: a model, where it appears in a scenario, and its fields."""

    name: str  # the model's name, as in the schema's $defs
    paths: tuple[str, ...]  # where it appears: "policies.client", "topology.datacenters[].servers[]"
    text: str  # its docstring
    fields: tuple[FieldDoc, ...]

    @property
    def anchor(self) -> str:
        """The anchor GitHub gives the section's heading (its first path)."""
        return re.sub(r"[^a-z0-9_\- ]", "", self.paths[0].lower()).replace(" ", "-")


# ---------------------------------------------------------------------------------------------- schema


def scenario_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file, generated from the models, every property described."""
    schema = _raw_schema()
    defs = {**schema.get("$defs", {}), "Scenario": schema}
    models = _models()
    for name, definition in defs.items():
        for field in list(definition.get("properties", {})):
            doc = _field_doc(models[name], field, defs)
            prop = definition["properties"][field]
            _drop_unit_examples(prop)
            prop["description"] = doc.description
            examples = models[name].model_fields[field].examples
            if examples:
                prop["examples"] = list(examples)
    draft = "https://json-schema.org/draft/2020-12/schema"
    return {**schema, "$schema": draft, "title": "cascadesim scenario"}


def schema_text() -> str:
    """Return the schema as stable, indented JSON text (what ``scenarios/scenario.schema.json`` holds)."""
    return json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n"


def _raw_schema() -> dict[str, Any]:
    return Scenario.model_json_schema(mode="validation")


@functools.cache
def _models() -> dict[str, type[BaseModel]]:
    """Every model a scenario holds, by the name the schema's ``$defs`` give it."""
    found: dict[str, type[BaseModel]] = {}
    stack: list[type[BaseModel]] = [Scenario]
    while stack:
        model = stack.pop()
        if found.setdefault(model.__name__, model) is not model:
            raise ValueError(f"two models are named {model.__name__}: the schema's $defs would tell them apart")
        for field in model.model_fields.values():
            stack.extend(m for m, _ in _nested(field.annotation) if m.__name__ not in found)
    return found


def _drop_unit_examples(schema: Any) -> None:
    """Take out the examples every field of a unit shares ("30s", "5m"): they suit few fields. The
    model's own examples for the field replace them (``Field(examples=...)``).
    """
    if isinstance(schema, dict):
        if _unit(schema) is not None:
            schema.pop("examples", None)
        for key, value in schema.items():
            if key != "$defs":
                _drop_unit_examples(value)
    elif isinstance(schema, list):
        for item in schema:
            _drop_unit_examples(item)


# ---------------------------------------------------------------------------------------------- models


def model_docs() -> list[ModelDoc]:
    """Every section of the reference, in the order a scenario file reads: the top level first."""
    return _docs(_raw_schema())


def _docs(schema: dict[str, Any]) -> list[ModelDoc]:
    defs = {**schema.get("$defs", {}), "Scenario": schema}
    models = _models()
    unknown = sorted(set(defs) - set(models))
    if unknown:  # pragma: no cover - the walk and pydantic see the same models
        raise ValueError(f"schema definitions without a model: {', '.join(unknown)}")
    sections: dict[str, list[str]] = {}  # section key (a model's name, or a union's path) -> its paths
    shared: dict[str, list[type[BaseModel]]] = {}  # a union's path -> its members
    skipped: dict[str, set[str]] = {}  # a union member's name -> the fields its union's section shows

    def visit(key: str, path: str, fields: list[tuple[str, Any]], label: str = "") -> None:
        shown = path + label
        if key in sections and shown in sections[key]:
            return
        sections.setdefault(key, []).append(shown)
        for field_name, field in fields:
            if not _documented(field, defs):
                continue
            members = _nested(field.annotation)
            prefix = f"{path}.{field_name}" if path else field_name
            if len(members) == 1:
                model, suffix = members[0]
                visit(model.__name__, prefix + suffix, _fields(model), label)
                continue
            union = prefix + members[0][1]  # a discriminated union: what every member has, then each member
            kinds = [m for m, _ in members]
            shared[union] = kinds
            common = _common_fields(kinds)
            for m in kinds:
                skipped[m.__name__] = set(common)
            visit(union, union, [(n, kinds[0].model_fields[n]) for n in common], " (every kind)")
            for model in kinds:
                tag = _single_literal(model.model_fields.get("kind"))
                own = [(n, f) for n, f in _fields(model) if n not in common]
                visit(model.__name__, union, own, f" (kind: {tag})" if tag else "")

    visit("Scenario", "", _fields(Scenario))
    out = []
    for key, paths in sections.items():
        if key in shared:
            fields = tuple(_field_doc(shared[key][0], n, defs) for n in _common_fields(shared[key]))
            text = "What every kind has; each kind's own fields follow."
            out.append(ModelDoc(key, tuple(paths), text, fields))
            continue
        model = models[key]
        own = tuple(_field_doc(model, n, defs) for n, _ in _fields(model) if n not in skipped.get(key, ()))
        where = tuple(p or "(the top level)" for p in paths)
        out.append(ModelDoc(key, where, _clean(model.__doc__ or ""), own))
    return out


def _fields(model: type[BaseModel]) -> list[tuple[str, Any]]:
    return list(model.model_fields.items())


def _documented(field: Any, defs: dict[str, Any]) -> bool:
    """Whether the models a field holds are written as their fields (not through a schema of their own,
    as a target's mode is): a model in the schema's ``$defs``, or one whose fields a hand-written schema
    lists (a service time's ``{distribution, mean, cv}``).
    """
    members = _nested(field.annotation)
    if not members:
        return False
    if all(m.__name__ in defs for m, _ in members):
        return True
    inline = _inline_objects(_field_schema(field))
    return all(set(m.model_fields) in inline for m, _ in members)


def _inline_objects(schema: Any) -> list[set[str]]:
    """The property names of each object written out in ``schema``."""
    found = []
    if isinstance(schema, dict):
        if isinstance(schema.get("properties"), dict):
            found.append(set(schema["properties"]))
        for key, value in schema.items():
            if key != "$defs":
                found += _inline_objects(value)
    elif isinstance(schema, list):
        for item in schema:
            found += _inline_objects(item)
    return found


def _common_fields(members: list[type[BaseModel]]) -> list[str]:
    """The fields every member has alike (same type, default and meaning): a union's shared fields."""
    first = members[0].model_fields

    def same(name: str) -> bool:
        def key(m: type[BaseModel]) -> Any:
            f = m.model_fields.get(name)
            return None if f is None else (repr(f.annotation), repr(f.metadata), repr(f.default), f.description)

        return all(key(m) == key(members[0]) for m in members)

    return [name for name in first if _single_literal(first[name]) is None and same(name)]


def _nested(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """The models a field's type holds, each with the path suffix that reaches it (``[]`` for a list's
    items, ``.<name>`` for a mapping's values).
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _nested(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, "")]
    if origin in (typing.Union, types.UnionType):
        return [found for arg in args for found in _nested(arg)]
    if origin is list and args:
        return [(m, "[]" + s) for m, s in _nested(args[0])]
    if origin is dict and len(args) == 2:
        return [(m, ".<name>" + s) for m, s in _nested(args[1])]
    return []


def _single_literal(field: Any) -> str | None:
    """The value of a ``kind: Literal["server_crash"]`` field (a union's tag), else None."""
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    if typing.get_origin(field.annotation) is typing.Literal and len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return None


def _adapter(field: Any) -> TypeAdapter[Any]:
    """A field's type with its validators, serializers and schema (``Annotated`` as it was written)."""
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation)


def _field_schema(field: Any) -> dict[str, Any]:
    return _adapter(field).json_schema(mode="validation")


def _field_doc(model: type[BaseModel], name: str, defs: dict[str, Any]) -> FieldDoc:
    field = model.model_fields[name]
    definition = defs.get(model.__name__)
    if definition is not None:
        prop = definition["properties"][name]
    else:  # a model written through a hand-written schema (a service time): read the field alone
        prop = _field_schema(field)
    unit = _unit_of(prop)
    text = field.description or ""
    tag = _single_literal(field)
    if not text and tag is not None:  # a union's tag: the kind, and what it is
        text = f"{tag}: " + _first_sentence(_clean(model.__doc__ or ""))
    if field.is_required():
        default = None
    else:
        value = field.get_default(call_default_factory=True, validated_data={})
        default = _show_default(field, value, unit, defs)
    members = _nested(field.annotation)
    inline = None
    if len(members) == 1 and members[0][0].__name__ not in defs and _documented(field, defs):
        inline = members[0][0].__name__
    return FieldDoc(name, _kind(prop), unit, default, text, inline)


def _show_default(field: Any, value: Any, unit: str | None, defs: dict[str, Any]) -> str:
    if isinstance(value, BaseModel) and _documented(field, defs):
        return "each of its fields' defaults"
    if isinstance(value, BaseModel):  # written through its own serializer (a target's mode: all)
        value = _adapter(field).dump_python(value, mode="json")
    elif isinstance(value, dict | list) and value:
        value = _adapter(field).dump_python(value, mode="json", exclude_defaults=True)
    return _yaml(value, unit)


def _yaml(value: Any, unit: str | None = None) -> str:
    """A value as a scenario would write it (flow style), numbers in ``unit``."""
    if value is None:
        return "null"
    if value == "":
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _in_unit(float(value), unit) if unit else _number(value)
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v, unit) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _number(x: float) -> str:
    if isinstance(x, int) or (float(x).is_integer() and abs(x) < 1e16):
        return str(int(x))
    return f"{x:g}"


# ----------------------------------------------------------------------------------------------- words

_UNITS = {
    # the first word of a unit's string branch description (sim.units) -> what a bare number means
    "duration": "a bare number is seconds",
    "percentage": "a bare number is a fraction: 0.3 is 30%",
    "bandwidth": "a bare number is bit/s",
    "rate": "a bare number is per second",
    "size": "a bare number is bytes",
}
_REF = re.compile("\x01([^\x02]*)\x02([^\x03]*)\x03")  # a model a field holds: \x01Name\x02words\x03
_FULL_RANGE = {"duration": MAX_DURATION, "percentage": 1.0, "bandwidth": MAX_BANDWIDTH, "rate": MAX_RATE,
               "size": MAX_SIZE}
_ID = "^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


def _unit(schema: dict[str, Any]) -> str | None:
    """The unit of a unit field's own schema (``anyOf: [string "duration: ...", number]``), else None."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2:
        return None
    text, number = branches
    if text.get("type") != "string" or number.get("type") != "number" or "description" not in text:
        return None
    word = str(text["description"]).split(":")[0]
    if word not in _UNITS:
        raise ValueError(f"a unit the reference does not know: {word!r} (add it to sim.schema._UNITS)")
    return word


def _unit_of(schema: dict[str, Any]) -> str | None:
    """The unit of a field, its own or its values' (an optional duration, a list of percentages)."""
    own = _unit(schema)
    if own is not None:
        return own
    for key in ("anyOf", "items", "additionalProperties", "prefixItems"):
        sub = schema.get(key)
        for branch in sub if isinstance(sub, list) else [sub] if isinstance(sub, dict) else []:
            found = _unit_of(branch)
            if found is not None:
                return found
    return None


def _in_unit(x: float, unit: str | None) -> str:
    if unit == "duration":
        return format_duration(x)
    if unit == "percentage":
        return f"{x * 100:.10g}%"
    if unit == "rate":
        return f"{x:.10g}/s"
    if unit in ("bandwidth", "size"):
        suffix = "bps" if unit == "bandwidth" else "B"
        for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if x >= scale:
                return f"{x / scale:.10g}{prefix}{suffix}"
        return f"{x:.10g}{suffix}"
    return _number(x)


def _range(schema: dict[str, Any], unit: str | None) -> str:
    """``more than 0s, at most 1h``, ``1 to 20``: the bounds a number must keep to, in its unit."""
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    above = "exclusiveMinimum" in schema
    below = "exclusiveMaximum" in schema
    if unit is not None and high is not None and high >= _FULL_RANGE[unit]:
        high = None
    if low == 0 and not above and (unit is not None or high is None):
        low = None
    if low is None and high is None:
        return ""
    if low is not None and high is not None and not above and not below:
        return f", {_in_unit(low, unit)} to {_in_unit(high, unit)}"
    parts = []
    if low is not None:
        parts.append(f"{'more than' if above else 'at least'} {_in_unit(low, unit)}")
    if high is not None:
        parts.append(f"{'less than' if below else 'at most'} {_in_unit(high, unit)}")
    return ", " + ", ".join(parts)


def _kind(schema: dict[str, Any]) -> str:
    """A field's type in words: ``duration (250ms, ...; a number is seconds), at most 1h``."""
    unit = _unit(schema)
    if unit is not None:
        return unit + _range(schema["anyOf"][1], unit)
    if "$ref" in schema:
        return f"\x01{schema['$ref'].split('/')[-1]}\x02mapping\x03"
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema.get("oneOf") or []
        real = [b for b in branches if b.get("type") != "null"]
        words = list(dict.fromkeys(_kind(b) for b in real))
        text = " or ".join(words) if words else "any value"
        return text + (" or null" if len(real) < len(branches) else "")
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_kind({**schema, "type": k}) for k in kind if k != "null")
    if kind == "integer":
        return "whole number" + _range(schema, None)
    if kind == "number":
        return "number" + _range(schema, None)
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return "id" if schema.get("pattern") == _ID else "text"
    if kind == "array":
        if "prefixItems" in schema:
            items = [_kind(s) for s in schema["prefixItems"]]
            return f"list of {len(items)}: " + ", ".join(items) if len(set(items)) > 1 else (
                f"list of {len(items)} {_plural(items[0])}"
            )
        item = schema.get("items", {})
        if "discriminator" in item:
            return "list of mappings, each chosen by its kind"
        size = f" (at least {schema['minItems']})" if schema.get("minItems") else ""
        return f"list of {_plural(_kind(item))}{size}" if item else "list"
    if kind == "object":
        values = schema.get("additionalProperties")
        if values is None and "patternProperties" in schema:
            values = next(iter(schema["patternProperties"].values()))
        if isinstance(values, dict):
            return f"mapping of name to {_kind(values)}"
        if isinstance(schema.get("properties"), dict):
            return "mapping {" + ", ".join(schema["properties"]) + "}"
        return "mapping"
    return "any value"


def _plural(words: str) -> str:
    if words.startswith("\x01"):
        return words.replace("\x02mapping\x03", "\x02mappings\x03", 1)
    head, _, rest = words.partition(" ")
    plural = {"mapping": "mappings", "id": "ids", "number": "numbers", "text": "texts"}.get(head)
    if plural is None and head in ("duration", "percentage", "bandwidth", "rate", "size"):
        plural = head + "s"
    return f"{plural} {rest}".strip() if plural else words


# ------------------------------------------------------------------------------------------- reference


def _clean(docstring: str) -> str:
    """A docstring as Markdown: reST roles and double backticks become code, paragraphs one line each."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", docstring)
    text = text.replace("``", "`")
    paragraphs = [" ".join(line.strip() for line in p.splitlines()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(p for p in paragraphs if p)


def _first_sentence(text: str) -> str:
    first = text.split("\n\n")[0]
    match = re.search(r"(?<=\.)\s", first)
    return (first[: match.start()] if match else first).rstrip(".")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_text() -> str:
    """``docs/scenario-reference.md``: every field of a scenario, with its type, unit, default and meaning."""
    docs = model_docs()
    anchors = {doc.name: doc.anchor for doc in docs}
    lines = [
        "# Scenario reference",
        "",
        "Every field of a scenario file, generated from the models (`sim/scenario.py`, `sim/faults.py`) by",
        f"`{REFERENCE_COMMAND}`; a test keeps it current. The same descriptions are in the JSON Schema",
        "(`scenarios/scenario.schema.json`), which editors show as you type. A field without a default is",
        "required.",
        "",
        "Units: a duration is `250ms`, `30s`, `5m`, `2h`, `1d` or `1h30m` (a bare number is seconds); a percentage",
        "`30%` or `99.9%` (a bare number is a fraction); a bandwidth `400Mbps`, `10Gbps`; a rate `500/s`,",
        "`30k/min`; a size `512MB`, `16GB`, `4GiB`. An id is letters, digits and `_ . : -`, starting with a",
        "letter or digit, at most 64 characters.",
        "",
    ]
    lines += [f"- [`{doc.paths[0]}`](#{doc.anchor})" for doc in docs]
    for doc in docs:
        lines += ["", f"## `{doc.paths[0]}`", ""]
        if len(doc.paths) > 1:
            lines += ["Also at " + ", ".join(f"`{p}`" for p in doc.paths[1:]) + ".", ""]
        if doc.text:
            lines += [doc.text, ""]
        lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for f in doc.fields:
            kind = f.markdown_kind(anchors)
            default = "required" if f.default is None else f"`{f.default}`"
            lines.append(f"| `{f.name}` | {_cell(kind)} | {_cell(default)} | {_cell(f.text)} |")
    return "\n".join(lines) + "\n"
