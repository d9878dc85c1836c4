"""YAML in, :class:`~sim.scenario.Scenario` out — the only module that knows about YAML.

Loading is safe and bounded, in this order, so that a hostile or mistaken file fails fast:

1. the file's size (:data:`MAX_FILE_BYTES`);
2. characters YAML does not allow, then a streaming pass over the YAML events: syntax, nesting
   depth (:data:`MAX_DEPTH`) and node count (:data:`MAX_NODES`), before any tree is built;
3. the node tree: node count with aliases expanded (billion laughs), tags (only plain data: no
   ``!!python/object``), keys that are not names, duplicate keys;
4. the models (:class:`~sim.scenario.Scenario`): types, units, unknown keys, missing fields;
5. :func:`~sim.validate.check_references`: dangling references, duplicate ids, sizes over
   ``Scenario.limits`` — computed from the counts, nothing is allocated. When step 4 found problems,
   references are still checked on what remains once the failing parts are taken out, if that can
   be done without inventing anything (see :func:`_without`).

Every problem found is raised together as one :class:`~sim.errors.ScenarioError`, each pointing at the
line and column of the offending key or value::

    monday.yaml:41:9: faults[2].target.datacenters[0]: no datacenter 'eu-wset' (did you mean 'eu-west'?)

Other YAML files of cascadesim (sweep files) are read the same way: :func:`read_yaml` gives their data
with a :class:`Locator` that points a field path at its line.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import os
import re
import stat
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.errors import Problem, ScenarioError, format_path, show_value
from sim.scenario import Scenario
from sim.units import show
from sim.validate import check_references

__all__ = [
    "load_scenario",
    "parse_scenario",
    "read_bounded",
    "read_yaml",
    "scenario_data",
    "validate_data",
    "YamlFile",
    "Locator",
    "scenario_hash",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_DEPTH",
]

MAX_FILE_BYTES = 2 * 1024 * 1024
"""A scenario file may be at most this large (a real one is a few kilobytes)."""
MAX_NODES = 50_000
"""At most this many YAML nodes, counting every use of an alias as a copy."""
MAX_DEPTH = 50
"""At most this many mappings and lists nested in one another."""

Loc = tuple[Any, ...]  # field names, list positions and mapping keys (which YAML may read as numbers)

# libyaml when available: parsing a large file is several times faster.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {
    _CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp")
}
_PLAIN_DATA = "scenarios hold plain data: mappings, lists, strings, numbers, true/false and null"


Checks = Callable[[Scenario], list[tuple[tuple[str | int, ...], str]]]
"""A caller's own checks of a valid scenario, as (field path, message), reported at the file's lines."""


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None, checks: Checks | None = None) -> Scenario:
    """Read and validate a scenario file; raise :class:`ScenarioError` listing every problem.

    ``overrides`` replaces top-level fields before validation (the CLI's ``--engine``); ``checks`` are a
    caller's own (what the planner cannot plan), located like the loader's. At most
    :data:`MAX_FILE_BYTES` are read, whatever the file says its size is (see :func:`read_bounded`).
    """
    name = str(path)
    return parse_scenario(_decode(read_bounded(path), name), name, overrides, checks)


def scenario_data(path: str | Path) -> Any:
    """The plain data of a scenario file, read as :func:`load_scenario` reads it (bounded, plain data
    only), before the models see it: what a sweep varies.
    """
    name = str(path)
    return read_yaml(_decode(read_bounded(path), name), name).data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [
                Problem(
                    name,
                    1,
                    1,
                    "",
                    f"not UTF-8 text (byte {exc.start} cannot be decoded); save the file as UTF-8",
                )
            ]
        ) from None


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_bounded(path: str | Path) -> bytes:
    """Read at most :data:`MAX_FILE_BYTES` of a scenario file, or raise :class:`ScenarioError` saying why not.

    A regular file or a pipe (``/dev/stdin``, ``<(generate-scenario)``, a named FIFO) is read, never more
    than one byte past the limit whatever its size claims (a pipe has none); a device (``/dev/zero``,
    ``/dev/urandom``, a terminal), a directory or a socket is refused before it is opened. Pipes are
    accepted because generating a scenario into one is a fair use; a FIFO is opened without waiting for
    a writer, and reads as empty if it has none.
    """
    name = str(path)

    def fail(message: str) -> ScenarioError:
        return ScenarioError([Problem(name, 1, 1, "", message)])

    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the file: {getattr(exc, 'strerror', None) or exc}") from None
    if kind not in (stat.S_IFREG, stat.S_IFIFO):
        what = _KINDS.get(kind, "not a regular file")
        raise fail(f"not a scenario file (got {what}, expected a regular file or a pipe)")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # no wait for a FIFO's writer
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise ScenarioError([_too_large(name, info.st_size)])
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):  # replaced since the check
            raise fail("not a scenario file (expected a regular file or a pipe)")
        if stat.S_ISFIFO(info.st_mode):
            os.set_blocking(fd, True)  # a pipe with a writer: wait for what it writes
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise ScenarioError([_too_large(name, size, more=True)])
    return b"".join(chunks)


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 of the validated scenario (defaults filled), for the report manifest."""
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def parse_scenario(text: str, filename: str = "<string>", overrides: dict[str, Any] | None = None,
                   checks: Checks | None = None) -> Scenario:
    r"""Validate scenario YAML given as text; ``filename`` is used in messages.

    >>> parse_scenario("name: x\nduration: 1h\nseed: -1\n", "x.yaml")
    Traceback (most recent call last):
    ...
    sim.errors.ScenarioError: x.yaml:1:1: missing required field 'topology'
    x.yaml:1:1: missing required field 'workload'
    x.yaml:3:7: seed: too small (got -1, expected at least 0)
    """
    data, locator, problems = read_yaml(text, filename)
    if overrides:
        data.update(overrides)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        errors = [_Error.of(err) for err in exc.errors()]
        problems += locator.validation_problems(errors)
        # References can only be checked on typed objects: check them on what is left once the parts
        # that failed are taken out, when that can be done without inventing anything.
        partial, removed = _without(data, errors)
        if partial is not None:
            problems += [
                locator.at(loc, message, key=_names_a_key(loc))
                for loc, message in check_references(partial)
                if not any(loc[: len(cut)] == cut for cut in removed)
            ]
        raise ScenarioError(problems) from None
    for loc, message in check_references(scenario) + (checks(scenario) if checks else []):
        problems.append(locator.at(loc, message, key=_names_a_key(loc)))
    if problems:
        raise ScenarioError(problems)
    return scenario


def validate_data(data: Any, filename: str = "<data>") -> Scenario:
    """Validate plain data (a scenario's data with some values changed) exactly as a file is validated.

    The data is written out as YAML and read back, so every check and every message is the loader's;
    the lines point into that text, so a caller quotes the problems' paths and messages. Raises
    :class:`ScenarioError`, or :class:`ValueError` for data YAML cannot hold.
    """
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None
    return parse_scenario(text, filename)


class YamlFile(typing.NamedTuple):
    """A YAML file read by :func:`read_yaml`: its plain data, a :class:`Locator` for its lines, and the
    problems found that do not stop reading (duplicate keys), for the caller to report with its own.
    """

    data: Any
    locator: Locator
    problems: list[Problem]


def read_yaml(text: str, filename: str = "<string>", what: str = "scenario fields", hint: str = "") -> YamlFile:
    r"""Read a YAML mapping safely and within bounds: steps 1 to 3 of the module docstring.

    ``what`` names the mapping's fields in messages (``expected a mapping of sweep fields``); ``hint``
    lists some when the file is empty. Raises :class:`ScenarioError` for anything that stops reading:
    size, characters, syntax, depth, nodes, a tag that is not plain data, a key that is not a name.

    >>> data, locator, problems = read_yaml("name: x\nseed: 2\n", "x.yaml")
    >>> data, str(locator.at(("seed",), "too small")), problems
    ({'name': 'x', 'seed': 2}, 'x.yaml:2:7: seed: too small', [])
    """
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ScenarioError([_too_large(filename, len(text.encode("utf-8", "surrogatepass")))])
    fail = _Fail(filename)
    _check_characters(text, fail)
    _scan_events(text, fail)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:  # pragma: no cover - the event scan has seen the same text
        raise fail.yaml(exc, text) from None
    if root is None:
        raise fail.at(None, f"the file is empty; expected a mapping of {what}" + (f" ({hint})" if hint else ""))
    if _count_nodes(root, MAX_NODES) > MAX_NODES:
        raise fail.at(
            root,
            f"too many YAML nodes once aliases are expanded (more than {MAX_NODES:,}, "
            "or an alias used inside itself)",
        )
    if not isinstance(root, yaml.MappingNode):
        raise fail.at(root, f"expected a mapping of {what} (got {_node_kind(root)})")
    problems, fatal = _check_tree(root, filename)
    if fatal:
        raise ScenarioError(problems)
    data = _construct(root, fail)
    return YamlFile(data, Locator(root, filename), problems)


def _without(data: Any, errors: list[_Error]) -> tuple[Scenario | None, list[Loc]]:
    """Validate what remains once each part that failed is taken out; say what was taken out.

    A part can go when that invents nothing: an unknown key, a field that has a default, an entry of a
    mapping. A bad list item cannot (the items after it would change places), nor a list of named
    things (references to them would dangle), nor anything under ``limits`` (the sizes would be judged
    against other limits than the file's).
    """
    cuts: list[Loc] = []
    for err in errors:
        cut = _removable(err)
        if cut is None or cut[:1] == ("limits",) or _holds_names(cut):
            return None, []
        cuts.append(cut)
    data = copy.deepcopy(data)
    for cut in sorted(set(cuts), key=len):
        _delete(data, cut)
    try:
        return Scenario.model_validate(data), cuts
    except ValidationError:
        return None, []


def _removable(err: _Error) -> Loc | None:
    """Return the smallest part around ``err.loc`` that may be taken out to get rid of the error."""
    loc = err.loc
    if err.type == "extra_forbidden":
        return loc
    for end in range(len(loc), 0, -1):
        parent, last = _type_at(loc[: end - 1]), loc[end - 1]
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            field = parent.model_fields.get(str(last))
            if field is not None and not field.is_required():
                return loc[:end]
        elif typing.get_origin(parent) is dict:
            return loc[:end]
    return None


def _holds_names(loc: Loc) -> bool:
    """Whether ``loc`` is a list of things named by ``id`` that other parts may refer to."""
    annotation = _type_at(loc)
    args = typing.get_args(annotation)
    item = _unwrap(args[0]) if typing.get_origin(annotation) is list and args else None
    if not (isinstance(item, type) and issubclass(item, BaseModel)):
        return False
    field = item.model_fields.get("id")
    return field is not None and field.is_required()


def _delete(data: Any, loc: Loc) -> None:
    """Delete ``loc`` from nested dicts and lists, if it is still there."""
    for part in loc[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(loc[-1], None)


# ------------------------------------------------------------------------------------------ the YAML


@dataclass
class _Fail:
    """Builds the single-problem errors that stop loading early."""

    filename: str

    def at(self, node: Any, message: str, path: str = "") -> ScenarioError:
        mark = getattr(node, "start_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return ScenarioError([Problem(self.filename, line, col, path, message)])

    def text(self, text: str, position: int, message: str) -> ScenarioError:
        """Build the problem at a character offset of ``text``."""
        before = text[:position]
        line, col = before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1
        return ScenarioError([Problem(self.filename, line, col, "", message)])

    def yaml(self, exc: yaml.YAMLError, text: str) -> ScenarioError:
        if not isinstance(exc, yaml.MarkedYAMLError):  # not expected after _check_characters
            return self.text(text, 0, f"invalid YAML: {exc}")
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "cannot parse"
        lines = text.splitlines()
        tab = _tab_indent(lines, mark.line if mark else 0, "tab" in problem or "\\t" in problem)
        if tab is not None:
            return ScenarioError([Problem(self.filename, *tab, "", f"invalid YAML: {TABS}")])
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            where = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
            problem += f" ({exc.context} at {where})"
        elif exc.context:
            problem = f"{exc.context}, {problem}"
        if mark is not None:
            problem += _indent_hint(lines, mark, exc.context, exc.context_mark)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return ScenarioError([Problem(self.filename, line, col, "", f"invalid YAML: {problem}")])


TABS = "tabs are not allowed for indentation in YAML; use spaces"


def _tab_indent(lines: list[str], at: int, said: bool) -> tuple[int, int] | None:
    """(line, column) of a tab in the indentation of the line YAML stopped at or the one before it (of
    any line up to there when YAML's message speaks of a tab), else None.
    """
    rows = range(at, -1, -1) if said else (at, at - 1)
    for row in rows:
        if 0 <= row < len(lines):
            indent = re.match(r"[ \t]*", lines[row])
            assert indent is not None
            if "\t" in indent.group() and lines[row][indent.end() :].strip():
                return row + 1, indent.group().index("\t") + 1
    return None


def _content_column(line: str) -> int:
    """Where the first key of a line starts: after its indentation and any list dashes (``- - a: 1``)."""
    match = re.match(r"( *)((?:- +)*)", line)
    assert match is not None
    return match.end()


def _indent_hint(lines: list[str], mark: Any, context: str | None, context_mark: Any) -> str:
    """A hint when YAML stops at a key moved left of the line before it: what to line it up with."""
    row = mark.line
    if not 0 <= row < len(lines):
        return ""
    here = lines[row]
    indent = len(here) - len(here.lstrip(" "))
    if mark.column != indent or not here.strip():
        return ""  # the trouble is not where a key starts
    above = next((r for r in range(row - 1, -1, -1) if lines[r].strip() and not lines[r].lstrip().startswith("#")),
                 None)
    if above is None or _content_column(lines[above]) <= indent:
        return ""
    key = here.strip().split(":")[0][:40]
    hint = f"; check the indentation: '{key}' is left of line {above + 1} above it"
    if context == "while parsing a block collection" and context_mark is not None:
        dash = context_mark.column  # the list's dashes: the key is at or just right of them
        item = next((r for r in range(row - 1, context_mark.line - 1, -1)
                     if lines[r][dash : dash + 1] == "-" and not lines[r][:dash].strip()), None)
        if item is not None and dash <= indent < _content_column(lines[item]):
            return hint + f"; to keep it in the list item of line {item + 1}, indent it to column " + (
                f"{_content_column(lines[item]) + 1}"
            )
    column = len(lines[above]) - len(lines[above].lstrip(" "))
    if column > indent and not lines[above].lstrip().startswith("-"):  # a key of a mapping, not a list item
        return hint + f"; to line it up with that line, indent it to column {column + 1}"
    return hint


def _too_large(filename: str, size: int, more: bool = False) -> Problem:
    got = f"more than {MAX_FILE_BYTES:,} bytes" if more else f"{size:,} bytes"
    return Problem(filename, 1, 1, "", f"file too large (got {got}, expected at most {MAX_FILE_BYTES:,})")


# What YAML 1.1 allows in a stream (tab, line breaks, printable Unicode); no lone surrogates.
_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _check_characters(text: str, fail: _Fail) -> None:
    bad = _NOT_YAML.search(text)
    if bad:
        code = ord(bad.group())
        raise fail.text(
            text, bad.start(), f"invalid YAML: character #x{code:04x} is not allowed in a YAML file"
        )


def _scan_events(text: str, fail: _Fail) -> None:
    """Stream the YAML once: syntax, depth and node count, without building anything."""
    nodes = depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                nodes += 1
                depth += 1
                if depth > MAX_DEPTH:
                    raise fail.at(
                        event, f"nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                nodes += 1
            if nodes > MAX_NODES:
                raise fail.at(
                    event, f"too many YAML nodes (more than {MAX_NODES:,}); a scenario is far smaller"
                )
    except yaml.YAMLError as exc:
        raise fail.yaml(exc, text) from None


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


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return show_value(_scalar(node))


def _scalar(node: yaml.ScalarNode, constructor: yaml.SafeLoader | None = None) -> Any:
    """Return the value of a scalar node as the safe loader constructs it (the text if it cannot)."""
    try:
        return (constructor or yaml.SafeLoader("")).construct_object(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):
        return node.value


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _check_tree(root: yaml.Node, filename: str) -> tuple[list[Problem], bool]:
    """Tags, keys and duplicate keys; ``fatal`` when the tree cannot be turned into data at all."""
    problems: list[Problem] = []
    fatal = False
    constructor = yaml.SafeLoader("")
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:  # an alias: checked where it was defined
            continue
        seen.add(id(node))
        mark = node.start_mark
        if node.tag not in _ALLOWED_TAGS:
            fatal = True
            problems.append(
                Problem(
                    filename,
                    mark.line + 1,
                    mark.column + 1,
                    format_path(loc),
                    f"tag {_short_tag(node.tag)} is not allowed ({_PLAIN_DATA})",
                )
            )
            continue
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                kmark = key_node.start_mark
                if key_node.tag == _CORE + "merge":
                    stack.append((value_node, loc))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    fatal = True
                    problems.append(
                        Problem(
                            filename,
                            kmark.line + 1,
                            kmark.column + 1,
                            format_path(loc),
                            f"a key must be a name (got {_node_kind(key_node)} as a key)",
                        )
                    )
                    continue
                key = _scalar(key_node, constructor)
                part: str | int = key if isinstance(key, str) else key_node.value
                try:
                    hash(key)
                except TypeError:
                    key = key_node.value
                if key in first:
                    line = first[key].start_mark.line + 1
                    problems.append(
                        Problem(
                            filename,
                            kmark.line + 1,
                            kmark.column + 1,
                            format_path((*loc, part)),
                            f"duplicate key '{key_node.value}' (first on line {line}; "
                            "a key may appear once in a mapping)",
                        )
                    )
                first[key] = key_node
                stack.append((key_node, loc))
                stack.append((value_node, (*loc, part)))
    return problems, fatal


def _construct(root: yaml.Node, fail: _Fail) -> Any:
    """Plain Python data from the checked tree (only the safe loader's constructors)."""
    try:
        return yaml.SafeLoader("").construct_document(root)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):
        pass
    # A scalar whose explicit tag does not fit its text (``!!int abc``): find it to say where.
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(node)
            except (yaml.YAMLError, ValueError, TypeError, OverflowError):
                raise fail.at(node, f"not a valid {_short_tag(node.tag)} (got {show_value(node.value)})") from None
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
    raise fail.at(root, "cannot read the YAML as data")  # pragma: no cover - every failure is a scalar


# --------------------------------------------------------------------------------------- locations


class Locator:
    """Points a field path (as the models and :func:`check_references` give it) at a YAML key or value.

    ``locator.at(path, message)`` is a :class:`~sim.errors.Problem` at that path's line and column.
    """

    def __init__(self, root: yaml.Node, filename: str):
        self.root = root
        self.filename = filename
        self.constructor = yaml.SafeLoader("")

    def find(self, loc: Loc) -> tuple[yaml.Node | None, yaml.Node, Loc]:
        """Find the key node and value node of the deepest part of ``loc`` present in the file.

        Also return the path to it as the file spells it (a key read as ``false`` is ``no`` in the file).

        With duplicate keys the last one counts, as it does when the file is read.
        """
        key: yaml.Node | None = None
        node = self.root
        spelled: list[str | int] = []
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                match = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and self._same_key(k, part):
                        match = (k, v)
                if match is None:
                    break
                key, node = match
                spelled.append(key.value)
            elif (
                isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value)
            ):
                key, node = None, node.value[part]
                spelled.append(part)
            else:
                break
        return key, node, tuple(spelled)

    def _same_key(self, node: yaml.ScalarNode, part: Any) -> bool:
        if isinstance(part, str):
            return node.value == part
        value = _scalar(node, self.constructor)  # pydantic reports a key read as false as 0
        return not isinstance(value, str) and value == part

    def at(
        self, loc: Loc, message: str, *, key: bool = False, parent: bool = False, trim: bool = False
    ) -> Problem:
        """Report a problem at ``loc``: its key (``key``), the mapping holding it (``parent``) or its value.

        With ``trim`` the path stops where the file does: a value written in short form (``service_time:
        20ms``) is reported as written, not as the field the model expanded it into (``service_time.mean``).
        """
        if parent:
            _, node, spelled = self.find(loc[:-1])
            rest = loc[len(spelled) : -1]
        else:
            key_node, node, spelled = self.find(loc)
            if key and key_node is not None and len(spelled) == len(loc):
                node = key_node
            rest = () if trim else loc[len(spelled) :]
        path = format_path((*spelled, *(p if isinstance(p, str | int) else str(p) for p in rest)))
        mark = node.start_mark
        return Problem(self.filename, mark.line + 1, mark.column + 1, path, message)

    def moved_left(self, loc: Loc) -> str:
        """A hint for an unknown key that belongs to the entry above it and was indented too little: the
        entry before it in its mapping has no value, or holds (in its last lines) a mapping of the model
        that has that field. Empty when nothing above fits.
        """
        key_node, _, spelled = self.find(loc)
        _, parent, _ = self.find(loc[:-1])
        if key_node is None or len(spelled) != len(loc) or not isinstance(parent, yaml.MappingNode):
            return ""
        keys = [k for k, _ in parent.value]
        at = next((i for i, k in enumerate(keys) if k is key_node), 0)
        if at == 0 or not isinstance(keys[at - 1], yaml.ScalarNode):
            return ""
        name, line = str(loc[-1]), key_node.start_mark.line + 1
        above_key, node = parent.value[at - 1]
        here: Loc = (*loc[:-1], above_key.value)
        if isinstance(node, yaml.ScalarNode) and node.value == "" and node.tag.endswith(":null"):
            fits = _type_at(here)
            if typing.get_origin(fits) is dict or _has_field(fits, name):
                return (f"; indented too little? '{above_key.value}' on line {above_key.start_mark.line + 1} above "
                        f"has no value: indent '{name}' further to put it under '{above_key.value}'")
            return ""
        best: tuple[Loc, yaml.MappingNode] | None = None
        last = node
        while True:  # down the entries that end just above the key
            last = node
            if isinstance(node, yaml.MappingNode) and node.value and isinstance(node.value[-1][0], yaml.ScalarNode):
                if _has_field(_type_at(here), name):
                    best = (here, node)
                k, node = node.value[-1]
                here = (*here, k.value)
            elif isinstance(node, yaml.SequenceNode) and node.value:
                here, node = (*here, len(node.value) - 1), node.value[-1]
            else:
                break
        if best is None:
            return ""
        path, mapping = best
        column = mapping.value[0][0].start_mark.column + 1
        before = last.start_mark.line + 1 if last.start_mark.line + 1 < line else line - 1
        return (f"; indented too little? '{name}' is a field of {format_path(path)}, which ends on line {before} "
                f"above: indent it to column {column}")

    def validation_problems(self, errors: list[_Error]) -> list[Problem]:
        """One problem per error pydantic found, union branches folded into one."""
        return [self._problem(group) for group in _fold_unions(errors)]

    def _problem(self, errors: list[_Error]) -> Problem:
        err = errors[0]
        if err.type == "missing" and isinstance(err.loc[-1], str):
            return self.at(err.loc, f"missing required field '{err.loc[-1]}'", parent=True)
        if err.type == "extra_forbidden":
            return self.at(err.loc, _unknown_field(err.loc, err.parent) + self.moved_left(err.loc), key=True)
        if err.type in ("union_tag_invalid", "union_tag_not_found"):
            field = str(err.ctx.get("discriminator", "kind")).strip("'")
            if err.type == "union_tag_not_found":
                return self.at(err.loc, f"missing required field '{field}'")
            tag = str(err.ctx.get("tag", ""))
            known = re.findall(r"'([^']*)'", str(err.ctx.get("expected_tags", "")))
            close = difflib.get_close_matches(tag, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            what = "fault kind" if err.loc[:1] == ("faults",) else field
            return self.at((*err.loc, field), f"no {what} '{tag}'{hint}; known: {', '.join(known)}")
        message = _describe(errors)
        if err.type == "missing":  # a short tuple: the position is missing, point at the list
            return self.at(err.loc[:-1], message)
        return self.at(err.loc, message, key=err.key, trim=True)


# ------------------------------------------------------------------------------------------ messages


@dataclass
class _Error:
    """A pydantic error with its location cleaned up: model and YAML parts only."""

    type: str
    loc: Loc
    key: bool  # the problem is a mapping key itself (pydantic's ``[key]``)
    union: Loc | None  # where a union was tried, if the error comes from one of its branches
    depth: int  # parts of ``loc`` below the union
    input: Any
    msg: str
    ctx: dict[str, Any]
    annotation: Any  # the type at ``loc``, when known
    parent: Any = None  # the type holding the last part of ``loc`` (a union's chosen member included)

    @classmethod
    def of(cls, err: Any) -> _Error:
        loc: list[str | int] = []
        union: Loc | None = None
        key = False
        annotation: Any = Scenario
        parent: Any = Any
        for part in err["loc"]:
            if part == "[key]":
                key = True
                args = typing.get_args(_unwrap(parent))
                annotation = args[0] if args else Any
                continue
            if _is_union(annotation):
                union = tuple(loc)
                annotation = _branch(annotation, str(part))
                continue
            loc.append(part)
            parent, annotation = annotation, _child(annotation, part)
        depth = len(loc) - len(union) if union is not None else 0
        return cls(
            err["type"],
            tuple(loc),
            key,
            union,
            depth,
            err.get("input"),
            str(err.get("msg", "")),
            dict(err.get("ctx") or {}),
            annotation,
            parent,
        )


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional``."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if _is_union_type(annotation):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _is_union_type(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_union(annotation: Any) -> bool:
    return _is_union_type(_unwrap(annotation))


def _branch(annotation: Any, tag: str) -> Any:
    """Return the member of a union that pydantic names ``tag`` (``literal[...]``, ``list[...]``, a model)."""
    for arg in typing.get_args(_unwrap(annotation)):
        inner = _unwrap(arg)
        origin = typing.get_origin(inner)
        name = "literal" if origin is typing.Literal else getattr(origin or inner, "__name__", "")
        if name and tag.startswith(name):
            return arg
        if _kind_of(inner) == tag:  # a member of a union discriminated by ``kind``
            return arg
    return Any


def _kind_of(model: Any) -> str | None:
    """The ``kind`` literal of a model in a discriminated union (``kind: Literal["server_crash"]``)."""
    if isinstance(model, type) and issubclass(model, BaseModel) and "kind" in model.model_fields:
        args = typing.get_args(model.model_fields["kind"].annotation)
        return args[0] if len(args) == 1 and isinstance(args[0], str) else None
    return None


def _child(annotation: Any, part: str | int) -> Any:
    """Return the type found at ``part`` inside a value of type ``annotation``."""
    annotation = _unwrap(annotation)
    if _is_union_type(annotation):  # e.g. the fault kinds: a field they share, or the first that has it
        for member in typing.get_args(annotation):
            found = _child(member, part)
            if found is not Any:
                return found
        return Any
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else Any
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is list and args:
        return args[0]
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[part] if isinstance(part, int) and 0 <= part < len(args) else Any
    return Any


def _type_at(loc: Loc) -> Any:
    annotation: Any = Scenario
    for part in loc:
        annotation = _child(annotation, part)
    return _unwrap(annotation)


def _has_field(annotation: Any, name: str) -> bool:
    """Whether a model (or a member of a union of models, such as a fault's kinds) has the field ``name``."""
    annotation = _unwrap(annotation)
    if _is_union_type(annotation):
        return any(_has_field(member, name) for member in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel) and name in annotation.model_fields


def _names_a_key(loc: Loc) -> bool:
    """Whether the last part of ``loc`` is a name the person chose (a key of a mapping field)."""
    return bool(loc) and isinstance(loc[-1], str) and typing.get_origin(_type_at(loc[:-1])) is dict


def _unknown_field(loc: Loc, parent: Any = None) -> str:
    name = str(loc[-1])
    parent = _unwrap(parent) if parent is not None and not _is_union(parent) else _type_at(loc[:-1])
    allowed = list(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    listed = f"{hint}allowed: {', '.join(allowed)}" if allowed else hint.strip()
    return f"unknown field '{name}'" + (f" ({listed})" if listed else "")


def _fold_unions(errors: list[_Error]) -> list[list[_Error]]:
    """Group the errors of one union's branches; keep the branches that got furthest into the value.

    A value that fits no member of ``'flat' | list[...]`` gets one problem, not one per member; a
    list with a bad item gets the item's problem, not also "should be 'flat'".
    """
    groups: dict[Loc, list[_Error]] = {}
    out: list[list[_Error]] = []
    for err in errors:
        if err.union is None:
            out.append([err])
        else:
            groups.setdefault(err.union, []).append(err)
    for branch_errors in groups.values():
        deepest = max(e.depth for e in branch_errors)
        kept = [e for e in branch_errors if e.depth == deepest]
        # A list or mapping given where a branch wants a single value: that branch has nothing to say.
        fitting = [e for e in kept if not (isinstance(e.input, list | dict) and e.type in _SCALAR_ERRORS)]
        kept = fitting or kept
        if deepest > 0:
            out.extend([e] for e in kept)
        else:
            out.append(kept)
    return out


_SCALAR_ERRORS = {
    "literal_error",
    "string_type",
    "int_type",
    "float_type",
    "bool_type",
    "int_parsing",
    "float_parsing",
    "bool_parsing",
    "value_error",
}
_ID_RULE = "letters, digits and _ . : - (starting with a letter or digit, at most 64)"


def _describe(errors: list[_Error]) -> str:
    """Say ``what is wrong (got X, expected Y)`` for an error, or for the branches of one union."""
    parts = [_what_expected(e) for e in errors]
    what, got, _, hint = parts[0]
    expected = " or ".join(dict.fromkeys(p[2] for p in parts if p[2]))
    if len(parts) > 1:
        what = "not a valid value"
    hints = "".join(dict.fromkeys(p[3] for p in parts))
    if not expected:
        return what
    return f"{what} (got {got}, expected {expected}{hints})"


def _what_expected(err: _Error) -> tuple[str, str, str, str]:
    """Return (what is wrong, given, expected, hint); with no ``expected``, ``what`` says it all."""
    kind, ctx, value = err.type, err.ctx, err.input
    got = show(value)
    if kind in ("value_error", "assertion_error"):
        msg = re.sub(r"^(Value error|Assertion failed), ", "", err.msg)
        return msg, got, "", ""
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return "not a whole number", got, "an integer", ""
    if kind in ("float_type", "float_parsing"):
        return "not a number", got, "a number", ""
    if kind == "finite_number":
        return "not a finite number", got, "a finite number", ""
    if kind == "string_type":
        hint = ""
        if isinstance(value, bool):
            hint = "; YAML reads yes/no/on/off as true/false: put the name in quotes"
        elif isinstance(value, int | float):
            hint = "; put quotes around a name made of digits"
        return ("not a name" if err.key else "not a string"), got, "a string", hint
    if kind in ("bool_type", "bool_parsing"):
        return "not true or false", got, "true or false", ""
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return "wrong type", got, "a mapping", ""
    if kind in ("list_type", "tuple_type", "iterable_type", "set_type"):
        return "wrong type", got, "a list", ""
    if kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
        return "unknown value", got, "one of " + ", ".join(f"'{c}'" for c in choices), hint
    if kind == "greater_than_equal":
        return "too small", got, f"at least {ctx.get('ge')}", ""
    if kind == "greater_than":
        return "too small", got, f"more than {ctx.get('gt')}", ""
    if kind == "less_than_equal":
        return "too large", got, f"at most {ctx.get('le')}", ""
    if kind == "less_than":
        return "too large", got, f"less than {ctx.get('lt')}", ""
    if kind in ("too_short", "too_long"):
        n = ctx.get("actual_length", len(value) if isinstance(value, list | dict | str) else "?")
        noun = "entries" if isinstance(value, dict) else "items"
        if kind == "too_short":
            return f"too few {noun}", f"{n}", f"at least {ctx.get('min_length')}", ""
        return f"too many {noun}", f"{n}", f"at most {ctx.get('max_length')}", ""
    if kind == "missing":  # a position of a fixed-length list
        args = typing.get_args(_type_at(err.loc[:-1]))
        size = len(args) if args and args[-1] is not Ellipsis else err.loc[-1] + 1
        n = len(value) if isinstance(value, list | tuple) else "?"
        return "too few items", f"{n}", f"{size}", ""
    if kind == "string_too_short":
        return "empty", got, "at least one character", ""
    if kind == "string_too_long":
        return (
            "too long",
            f"{len(value) if isinstance(value, str) else '?'} characters",
            f"at most {ctx.get('max_length')}",
            "",
        )
    if kind == "string_pattern_mismatch":
        if str(ctx.get("pattern", "")).startswith("^[A-Za-z0-9]"):
            return "not a valid id", got, _ID_RULE, ""
        return "wrong format", got, f"text matching {ctx.get('pattern')}", ""
    msg = err.msg[:1].lower() + err.msg[1:]
    return f"{msg} (got {got})", got, "", ""
