"""Errors written for the person who made the mistake.

A :class:`ScenarioError` carries every problem found in a file, each as a :class:`Problem` that formats
as ``file:line:col: path.to.field: what is wrong (got X, expected Y)``. The CLI prints them and exits 2.

>>> print(Problem("monday.yaml", 41, 9, "faults[2].target.datacenters[0]", "no datacenter 'eu-wset'"))
monday.yaml:41:9: faults[2].target.datacenters[0]: no datacenter 'eu-wset'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Problem", "ScenarioError", "CascadesimError", "format_path", "show_value"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class CascadesimError(Exception):
    """Base of the errors cascadesim raises on purpose."""


def format_path(path: tuple[str | int, ...]) -> str:
    """Format a field path the way it reads in a scenario.

    Integers are list positions; a mapping key that is not a plain name is quoted.

    >>> format_path(("faults", 2, "target", "ids", 0))
    'faults[2].target.ids[0]'
    >>> format_path(("topology", "regions", 0, "datacenters", "eu.west"))
    "topology.regions[0].datacenters['eu.west']"
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


def show_value(value: Any, limit: int = 60) -> str:
    """Show a value as the person wrote it in YAML, short: ``'eu-wset'``, ``null``, ``true``, ``a list``.

    >>> show_value("eu-wset"), show_value(None), show_value(False), show_value([1, 2]), show_value(2.5)
    ("'eu-wset'", 'null', 'false', 'a list', '2.5')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a scenario, and where (line and column count from 1)."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(CascadesimError):
    """A scenario that cannot be run; ``problems`` lists everything wrong with it, in file order."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))
