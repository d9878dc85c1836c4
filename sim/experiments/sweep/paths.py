"""Dotted paths into a scenario's plain data, as a sweep's parameters and its ``set`` name them: read
(:func:`parse_path`) and written (:func:`assign`).

Paths go through mappings by key and through lists by position (``faults[0]``), by the ``id`` of an
item (``faults.burst``; a fault without an id is ``<kind>-<position>``), by a placement's datacenter, or
all items at once (``placement.*.copies``).
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from sim.errors import format_path, printable, show_value

__all__ = ["Segment", "parse_path", "assign"]


Segment = str | int
_SEGMENT = re.compile(r"""\[(?:'([^']*)'|"([^"]*)"|([^\]]*))\]|([^.\[\]]+)""")


def parse_path(text: str) -> tuple[Segment, ...]:
    """Split a dotted path: ``faults[0].at`` → ``('faults', 0, 'at')``; ``regions['eu.west']`` keeps the dot.

    >>> parse_path("topology.databases.db.placement.*.copies")
    ('topology', 'databases', 'db', 'placement', '*', 'copies')
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"not a path (got {show_value(text)}, expected dotted names such as policies.client.retries)"
        )
    if printable(text) != text:  # a path names a results column and report axes
        raise ValueError(f"not a path (got {show_value(text)}: control characters are not allowed)")
    out: list[Segment] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise ValueError(
                f"cannot read the path '{text}' at character {pos + 1} (expected a name, [n] or "
                "['key'] between dots)"
            )
        quoted = m.group(1) if m.group(1) is not None else m.group(2)
        bare = m.group(3) if m.group(3) is not None else m.group(4)
        if quoted is not None:
            out.append(quoted)
        else:
            assert bare is not None
            bare = bare.strip()
            if not bare:
                raise ValueError(f"empty part in the path '{text}'")
            out.append(int(bare) if bare.isdigit() else bare)
        pos = m.end()
        if pos < len(text):
            if text[pos] == ".":
                pos += 1
                if pos == len(text):
                    raise ValueError(f"the path '{text}' ends with a dot")
            elif text[pos] != "[":
                raise ValueError(f"cannot read the path '{text}' at character {pos + 1}")
    return tuple(out)


def _show_path(parts: tuple[Segment, ...]) -> str:
    return format_path(tuple(p for p in parts)) if parts else "(the scenario)"


def _item_names(items: list[Any], top: str | None) -> list[str]:
    names = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            if isinstance(item.get("id"), str):
                names.append(item["id"])
            elif top == "faults" and isinstance(item.get("kind"), str):
                names.append(f"{item['kind']}-{i}")
            if isinstance(item.get("datacenter"), str):
                names.append(item["datacenter"])
    return names


def _matches(item: Any, i: int, name: str, top: str | None) -> bool:
    if not isinstance(item, dict):
        return False
    if item.get("id") == name or item.get("datacenter") == name:
        return True
    return top == "faults" and "id" not in item and f"{item.get('kind')}-{i}" == name


def assign(data: Any, parts: tuple[Segment, ...], value: Any) -> None:
    """Set ``value`` at ``parts`` inside ``data`` (nested dicts and lists), in place.

    Missing mapping keys are created (the scenario models then say whether such a field exists); list
    items are found by position, id, datacenter or ``*``. Raise ``ValueError`` when the path cannot go on.
    """
    if not parts:
        raise ValueError("an empty path")
    targets: list[tuple[Any, Segment]] = []

    def walk(node: Any, i: int, done: tuple[Segment, ...]) -> None:
        part = parts[i]
        last = i == len(parts) - 1
        top = done[0] if len(done) == 1 and isinstance(done[0], str) else None
        if isinstance(node, dict):
            key: Segment = part if isinstance(part, str) else str(part)
            if key == "*":
                raise ValueError(f"{_show_path(done)} is a mapping: * selects every item of a list")
            if last:
                targets.append((node, key))
                return
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            walk(child, i + 1, (*done, key))
        elif isinstance(node, list):
            if part == "*":
                if not node:
                    raise ValueError(f"{_show_path(done)} is an empty list: * selects nothing")
                chosen = list(range(len(node)))
            elif isinstance(part, int):
                if not 0 <= part < len(node):
                    raise ValueError(
                        f"{_show_path(done)} has {len(node)} items (got position {part}, expected "
                        f"0 to {len(node) - 1})"
                    )
                chosen = [part]
            else:
                chosen = [j for j, item in enumerate(node) if _matches(item, j, part, top)]
                if not chosen:
                    known = _item_names(node, top)
                    close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    listed = ", ".join(known) if known else "none by name; use a position such as [0]"
                    raise ValueError(f"no item '{part}' in {_show_path(done)}{hint}; known: {listed}")
            for j in chosen:
                if last:
                    targets.append((node, j))
                else:
                    walk(node[j], i + 1, (*done, j))
        else:
            raise ValueError(
                f"{_show_path(done)} is a value ({show_value(node)}), not a mapping or a list: the "
                f"path cannot go on to '{part}'"
            )

    walk(data, 0, ())
    for container, key in targets:
        container[key] = copy.deepcopy(value)
