"""How a sweep file's problems are collected, each at its line (:class:`Checker`), and the scenario loader's
verdict on the scenario that a substitution into the base makes (:func:`scenario_problems`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sim.errors import Problem, ScenarioError
from sim.loader import Locator, validate_data
from sim.scenario import Scenario
from sim.validate import check_references

__all__ = ["Loc", "Checker", "scenario_problems"]


Loc = tuple[Any, ...]


class Checker:
    """Collects the problems of one sweep file, each at its line."""

    def __init__(self, locator: Locator, problems: list[Problem]):
        self.locator = locator
        self.problems = problems

    def at(self, loc: Loc, message: str, key: bool = False) -> None:
        self.problems.append(self.locator.at(loc, message, key=key))


def scenario_problems(data: Any, label: str) -> str:
    """The scenario loader's verdict on ``data``, as one line ("" when it is valid)."""
    try:
        scenario = Scenario.model_validate(data)
        if not check_references(scenario):
            return ""
    except ValidationError:
        pass
    try:
        validate_data(data, label)
    except ScenarioError as err:
        return "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in err.problems)
    except (ValueError, TypeError) as exc:  # pragma: no cover - data from YAML dumps back
        return f"cannot build the scenario ({exc})"
    return ""  # pragma: no cover - the fast check and the loader agree
