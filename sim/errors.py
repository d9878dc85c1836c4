"""Errors written for the person who made the mistake.

A :class:`ScenarioError` carries every problem found in a file, each as a :class:`Problem` that formats
as ``file:line:col: path.to.field: what is wrong (got X, expected Y)``. The CLI prints them and exits 2.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "ScenarioError", "CascadesimError", "format_path"]


class CascadesimError(Exception):
    """Base of the errors cascadesim raises on purpose."""


def format_path(path: tuple[str | int, ...]) -> str:
    """``("faults", 2, "target", "ids", 0) -> "faults[2].target.ids[0]"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a scenario, and where."""

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
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
