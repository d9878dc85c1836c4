"""Units as people write them in scenarios: ``250ms``, ``5m``, ``2h``, ``30%``, ``2Gbps``, ``500/s``.

Every parser takes a string (or a bare number in the base unit) and returns a float in the base unit:
seconds, a fraction in [0, 1], bits per second, or events per second. A bad value raises
``ValueError`` with a message that says what was expected; the scenario loader turns that into a
``file:line:col`` problem.

>>> parse_duration("250ms"), parse_duration("1h30m"), parse_percent("30%"), parse_rate("2k/min")
(0.25, 5400.0, 0.3, 33.333333333333336)
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = [
    "parse_duration",
    "parse_percent",
    "parse_bandwidth",
    "parse_rate",
    "format_duration",
    "Duration",
    "Percent",
    "Bandwidth",
    "Rate",
]

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 365 * 86400.0,
}
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(us|µs|ms|min|s|m|h|d|w|y)")
_BANDWIDTH = re.compile(rf"^\s*({_NUMBER})\s*([kKMGT]?)(bps|bit/s|Bps|B/s)\s*$")
_RATE = re.compile(rf"^\s*({_NUMBER})\s*([kKM]?)\s*/\s*(s|sec|m|min|h|d)\s*$")
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _number(value: Any, what: str) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected {what}, got {type(value).__name__}")
    return None


def parse_duration(value: Any) -> float:
    """Return seconds for ``"250ms"``, ``"5m"``, ``"2h"``, ``"1h30m"`` or a bare number of seconds."""
    what = "a duration such as 250ms, 30s, 5m, 2h or 1d"
    number = _number(value, what)
    if number is None:
        text = value.strip()
        pos, total = 0, 0.0
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if not match:
                raise ValueError(f"expected {what}, got {value!r}")
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if not text:
            raise ValueError(f"expected {what}, got an empty string")
        number = total
    if number < 0 or number != number or number == float("inf"):
        raise ValueError(f"expected a finite duration that is not negative, got {value!r}")
    return number


def parse_percent(value: Any) -> float:
    """Return a fraction for ``"30%"`` or ``"99.95%"``; a bare number is already a fraction (0.3)."""
    what = "a percentage such as 30% or 99.9%, or a fraction between 0 and 1"
    number = _number(value, what)
    if number is None:
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"expected {what}, got {value!r}")
        try:
            number = float(text[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected {what}, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"expected {what}, got {value!r}")
    return number


def parse_bandwidth(value: Any) -> float:
    """Return bits per second for ``"2Gbps"``, ``"400Mbps"``, ``"10GB/s"`` or a bare number of bit/s."""
    what = "a bandwidth such as 400Mbps or 10Gbps"
    number = _number(value, what)
    if number is None:
        match = _BANDWIDTH.match(value)
        if not match:
            raise ValueError(f"expected {what}, got {value!r}")
        number = float(match.group(1)) * _SI[match.group(2)]
        if match.group(3) in ("Bps", "B/s"):
            number *= 8
    if number <= 0 or number == float("inf"):
        raise ValueError(f"expected a positive {what}, got {value!r}")
    return number


def parse_rate(value: Any) -> float:
    """Return events per second for ``"500/s"``, ``"30k/min"``, ``"1M/h"`` or a bare number per second."""
    what = "a rate such as 500/s, 30k/min or 2M/h"
    number = _number(value, what)
    if number is None:
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"expected {what}, got {value!r}")
        per = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}[match.group(3)]
        number = float(match.group(1)) * _SI[match.group(2)] / per
    if number < 0 or number == float("inf"):
        raise ValueError(f"expected a rate that is not negative, got {value!r}")
    return number


def format_duration(seconds: float) -> str:
    """Format seconds the way a person reads them: ``90 -> '1m30s'``, ``0.25 -> '250ms'``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    parts = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def _unit(parser: Any, pattern_doc: str, examples: list[Any]) -> list[Any]:
    schema = {
        "anyOf": [{"type": "string", "description": pattern_doc}, {"type": "number"}],
        "examples": examples,
    }
    return [BeforeValidator(parser), WithJsonSchema(schema), PlainSerializer(float, return_type=float)]


Duration = Annotated[float, *_unit(parse_duration, "duration: 250ms, 30s, 5m, 2h, 1d", ["30s", "5m"])]
Percent = Annotated[float, *_unit(parse_percent, "percentage: 30%, 99.9%", ["99.9%"])]
Bandwidth = Annotated[float, *_unit(parse_bandwidth, "bandwidth: 400Mbps, 10Gbps", ["10Gbps"])]
Rate = Annotated[float, *_unit(parse_rate, "rate: 500/s, 30k/min, 2M/h", ["500/s"])]
