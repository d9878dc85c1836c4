"""Bases of the scenario models, shared by :mod:`sim.scenario` and :mod:`sim.faults`.

``Model`` (strict, frozen), ``Id``, and the chaos-tool style ``Target`` selector with its ``Mode``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator

from sim.units import parse_percent, show

__all__ = ["Id", "Model", "Mode", "ModeField", "Target"]

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class Model(BaseModel):
    """Base for every scenario model: unknown keys are errors, instances are immutable.

    Numbers must be finite: ``.inf`` and ``.nan`` are refused everywhere, and so is ``true``/``false`` for a
    number (pydantic would take ``crews: true`` for 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _yes_no_only_where_asked(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(value, bool) else None
                if field is None or _takes(field.annotation, bool):
                    continue
                if _takes(field.annotation, int):  # a text field says so itself, with YAML's yes/no hint
                    raise ValueError(f"{key}: not a whole number (got {str(value).lower()}, expected an integer)")
                if _takes(field.annotation, float):
                    raise ValueError(f"{key}: not a number (got {str(value).lower()}, expected a number)")
        return data


def _takes(annotation: Any, kind: type) -> bool:
    """Whether a field's type admits values of ``kind`` (itself, ``Any``, or a union or annotation holding it)."""
    return annotation is kind or annotation is Any or any(_takes(arg, kind) for arg in get_args(annotation))


class Mode(Model):
    """How many of the matching targets a fault hits: all, one, a count, or a percentage."""

    kind: Literal["all", "one", "count", "percent"] = Field("all", description="how the matches are picked")
    value: float = Field(0.0, description="the count, or the share, of the matches picked")


_MODE_EXPECTED = "all, one, {count: N} with N ≥ 1, or {percent: P%}"
_MOST = 1_000_000_000  # a count of targets: more than any scenario holds


def _parse_mode(value: Any) -> Any:
    if isinstance(value, Mode):
        return value
    if value in ("all", "one"):
        return {"kind": value}
    if isinstance(value, dict) and len(value) == 1:
        ((key, number),) = value.items()
        if key == "count" and isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= _MOST:
            return {"kind": "count", "value": number}
        if key == "percent":
            return {"kind": "percent", "value": parse_percent(number)}
    raise ValueError(f"not a mode (got {_show_mode(value)}, expected {_MODE_EXPECTED})")


def _show_mode(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        ((key, number),) = value.items()
        return f"{{{key}: {show(number)}}}"
    return show(value)


def _dump_mode(mode: Mode) -> Any:
    """Write the mode as a scenario does, so that a dumped scenario loads back."""
    if mode.kind in ("all", "one"):
        return mode.kind
    if mode.kind == "count":
        return {"count": int(mode.value)}
    return {"percent": mode.value}


ModeField = Annotated[
    Mode,
    BeforeValidator(_parse_mode),
    PlainSerializer(_dump_mode),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": ["all", "one"]},
                {
                    "type": "object",
                    "properties": {
                        "count": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": _MOST,
                            "description": "hit this many of the matches, picked at random",
                        }
                    },
                    "required": ["count"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "percent": {
                            "type": ["string", "number"],
                            "minimum": 0,
                            "maximum": 1,
                            "description": "hit this share of the matches (at least one), picked at random: 25%",
                        }
                    },
                    "required": ["percent"],
                    "additionalProperties": False,
                },
            ],
            "description": _MODE_EXPECTED,
        }
    ),
]


class Target(Model):
    """Chaos-tool style selector: filter by ids, datacenter, labels; then pick by ``mode``."""

    ids: list[Id] = Field(
        default_factory=list,
        description="ids of what the fault kind hits: servers (mbx-we-03), datacenters, regions or dependencies",
    )
    datacenters: list[Id] = Field(
        default_factory=list, description="only what is in these datacenters (a link: its two ends)"
    )
    groups: list[Id] = Field(default_factory=list, description="only servers of these server groups")
    labels: dict[str, str] = Field(
        default_factory=dict, description="only servers (or datacenters) with all these labels"
    )
    mode: ModeField = Field(
        default_factory=Mode, description="how many of the matches it hits: all, one, {count: N} or {percent: P%}"
    )
