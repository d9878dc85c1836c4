"""YAML in, :class:`~sim.scenario.Scenario` out — the only module that knows about YAML.

Loading is safe (``yaml.SafeLoader``: no object construction) and bounded (file size, node count after
alias expansion). Every problem in a file — syntax, type, unknown key, dangling reference, size over
the limits — is collected and raised together as one :class:`~sim.errors.ScenarioError`, each problem
pointing at the line and column of the offending value.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.errors import Problem, ScenarioError, format_path
from sim.scenario import Scenario, check_references

__all__ = ["load_scenario", "parse_scenario", "scenario_hash", "MAX_FILE_BYTES", "MAX_NODES"]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000

Path_ = tuple[str | int, ...]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise :class:`ScenarioError` listing every problem."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ScenarioError([Problem(name, 0, 0, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    if size > MAX_FILE_BYTES:
        raise ScenarioError(
            [Problem(name, 1, 1, "", f"file is {size:,} bytes; a scenario may be at most {MAX_FILE_BYTES:,}")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, 1, 1, "", f"cannot read the file as UTF-8 text: {exc}")]) from None
    return parse_scenario(text, name)


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 of the validated scenario (defaults filled), for the report manifest."""
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def parse_scenario(text: str, filename: str = "<string>") -> Scenario:
    """Validate scenario YAML given as text; ``filename`` is used in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError([Problem(filename, line, col, "", f"invalid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(filename, 1, 1, "", f"invalid YAML: {exc}")]) from None
    if root is None:
        raise ScenarioError([Problem(filename, 1, 1, "", "the file is empty; expected a scenario mapping")])
    count = _count_nodes(root, MAX_NODES)
    if count > MAX_NODES:
        raise ScenarioError(
            [Problem(filename, 1, 1, "", f"more than {MAX_NODES:,} YAML nodes (after expanding aliases)")]
        )
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise ScenarioError([Problem(filename, exc.line, exc.column, "", str(exc))]) from None
    except yaml.YAMLError as exc:  # e.g. a tag the safe loader refuses
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError([Problem(filename, line, col, "", f"invalid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(filename, 1, 1, "", f"expected a mapping of scenario fields, got {type(data).__name__}")]
        )
    locator = _Locator(root, filename)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([locator.problem(err) for err in exc.errors()]) from None
    problems = [locator.at(path, message) for path, message in check_references(scenario)]
    if problems:
        raise ScenarioError(problems)
    return scenario


# ----------------------------------------------------------------------------------------------- YAML


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, mark: yaml.Mark):
        self.line, self.column = mark.line + 1, mark.column + 1
        super().__init__(f"duplicate key {key!r} (a key may appear once in a mapping)")


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping
)


def _count_nodes(node: yaml.Node, limit: int) -> int:
    """Nodes in the tree as if aliases were expanded; stops counting past ``limit``."""
    memo: dict[int, int] = {}

    def count(n: yaml.Node) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        memo[key] = limit + 1  # a cycle counts as too many
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(count(k) + count(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(count(v) for v in n.value)
        else:
            total = 1
        memo[key] = total = min(total, limit + 1)
        return total

    return count(node)


class _Locator:
    """Maps a field path (as pydantic reports it) to the YAML node that holds it."""

    def __init__(self, root: yaml.Node, filename: str):
        self.root = root
        self.filename = filename

    def _walk(self, path: Path_) -> tuple[yaml.Node, Path_, str | None]:
        """Deepest node along ``path``; the parts that exist in the data; the last key not found."""
        node, found, missing = self.root, (), None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = next(
                    ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                    None,
                )
                if match is None:
                    missing = str(part) if isinstance(part, str) else missing
                    continue  # a union tag or a missing key: stay on this node
                node, found = match[1], (*found, part)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node, found = node.value[part], (*found, part)
            # any other part is pydantic's own (union branch, function name): skip it
        return node, found, missing

    def _key_node(self, path: Path_) -> yaml.Node | None:
        """The key node for the last part of ``path`` if it names a mapping key."""
        if not path:
            return None
        parent, found, _ = self._walk(path[:-1])
        if found != path[:-1] or not isinstance(parent, yaml.MappingNode):
            return None
        for k, _ in parent.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(path[-1]):
                return k
        return None

    def at(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        node, found, _ = self._walk(path)
        if key or (found == path and isinstance(path[-1:] and path[-1], str) and _is_dict_key_path(path)):
            node = self._key_node(path) or node
        mark = node.start_mark
        return Problem(self.filename, mark.line + 1, mark.column + 1, format_path(path), message)

    def problem(self, err: Any) -> Problem:
        loc: Path_ = tuple(err["loc"])
        node, found, missing = self._walk(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            parent, _, _ = self._walk(loc[:-1])
            allowed = _allowed_keys(loc[:-1])
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            listed = f" (expected one of: {', '.join(allowed)}{hint})" if allowed else ""
            problem = self.at(found if found and found[-1] == loc[-1] else loc, f"unknown field '{key}'{listed}",
                              key=True)
            return problem
        if kind == "missing":
            field = missing or str(loc[-1])
            mark = node.start_mark
            return Problem(
                self.filename, mark.line + 1, mark.column + 1, format_path(found),
                f"missing required field '{field}'",
            )
        message = _message(err)
        mark = node.start_mark
        return Problem(self.filename, mark.line + 1, mark.column + 1, format_path(found), message)


def _is_dict_key_path(path: Path_) -> bool:
    # Paths that end in a user-chosen mapping key point at that key (e.g. workload.regions.<name>).
    return len(path) >= 2 and path[-2] in ("regions", "datacenters", "requests") and path[0] in ("workload", "topology")


def _message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if "got " in msg:  # our own parsers already name the value
        return msg
    value = err.get("input")
    if isinstance(value, dict | list):
        got = type(value).__name__
    else:
        got = repr(value)
        if len(got) > 60:
            got = got[:57] + "..."
    return f"{msg[0].lower()}{msg[1:]} (got {got})"


def _allowed_keys(path: Path_) -> list[str]:
    """Field names allowed at ``path`` according to the model (best effort, for the hint)."""
    from pydantic import BaseModel

    model: Any = Scenario
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None
