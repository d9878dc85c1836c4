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

__all__ = ["Problem", "ScenarioError", "CascadesimError", "format_path", "show_value", "printable"]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
# What a terminal acts on instead of showing: C0 and C1 controls, DEL, line and paragraph separators,
# and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: object) -> str:
    r"""``text`` made safe to print on a terminal: control characters are shown escaped, not acted on.

    Names, keys, values and file names come from files someone else may have written; an escape sequence
    in them could retitle or recolour the terminal, and a newline could forge a line of output.

    >>> print(printable("eu-west"), printable("a\x1b]0;title\x07b"), printable("one\ntwo\tthree"))
    eu-west a\x1b]0;title\x07b one\ntwo\tthree
    """
    return _CONTROL.sub(_escape, str(text))


class CascadesimError(Exception):
    """Base of the errors cascadesim raises on purpose."""


def format_path(path: tuple[str | int, ...]) -> str:
    r"""Format a field path the way it reads in a scenario.

    Integers are list positions; a mapping key that is not a plain name is quoted.

    >>> format_path(("faults", 2, "target", "ids", 0))
    'faults[2].target.ids[0]'
    >>> format_path(("topology", "regions", 0, "datacenters", "eu.west"))
    "topology.regions[0].datacenters['eu.west']"
    >>> print(format_path(("workload", "regions", "eu\n")))
    workload.regions['eu\n']
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (isinstance(part, str) and _PLAIN_KEY.fullmatch(part)):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return printable(text)


def show_value(value: Any, limit: int = 60) -> str:
    r"""Show a value as the person wrote it in YAML, short: ``'eu-wset'``, ``null``, ``true``, ``a list``.

    >>> show_value("eu-wset"), show_value(None), show_value(False), show_value([1, 2]), show_value(2.5)
    ("'eu-wset'", 'null', 'false', 'a list', '2.5')
    >>> print(show_value("eu\x1b[2J"))
    'eu\x1b[2J'
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
        return printable(repr(value) if len(value) <= limit else repr(value[: limit - 3] + "..."))
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a scenario, and where (line and column count from 1).

    Shown with :func:`printable`: the file name and the message quote what someone wrote.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{printable(self.file)}:{self.line}:{self.column}"
        message = printable(self.message)
        return f"{where}: {printable(self.path)}: {message}" if self.path else f"{where}: {message}"


class ScenarioError(CascadesimError):
    """A scenario that cannot be run; ``problems`` lists everything wrong with it, in file order."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))
