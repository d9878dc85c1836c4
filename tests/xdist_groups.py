"""How ``pytest -n N`` (``--dist loadgroup``, pyproject's ``addopts``) shares work among its workers.

The unit of work a worker receives is a *scope*: the tests of one ``xdist_group`` (the tests that read
one shipped scenario's runs, ``tests/shipped.py``, whatever file they are in), else the tests of one file
(its module fixtures and caches are computed once, as in a run without xdist).

pytest-xdist 3.8 tells its scheduler a test's group by appending ``@group`` to the node id in the worker,
which pytest 9.2's structured node ids silently drop (pytest-dev/pytest-xdist#1386): every group would be
split over the workers, each computing the group's runs again. So the workers write every test's group
to a file in a folder the controller made (:data:`FOLDER_ENV`), and the controller's scheduler reads it.
When xdist's own suffix works again, its scopes are the same.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

__all__ = ["FOLDER_ENV", "start", "stop", "write_groups", "make_scheduler"]

FOLDER_ENV = "CASCADESIM_XDIST_GROUPS"


def _distributes_by_group(config: pytest.Config) -> bool:
    return (not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist")
            and bool(config.getoption("numprocesses", None)) and config.getoption("dist", "no") == "loadgroup")


def start(config: pytest.Config) -> None:
    """In the controller (``pytest_configure``, before the workers start): the folder the workers write to."""
    if _distributes_by_group(config):
        os.environ[FOLDER_ENV] = tempfile.mkdtemp(prefix="cascadesim-xdist-groups-")


def stop(config: pytest.Config) -> None:
    """In the controller (``pytest_unconfigure``): remove the folder."""
    if _distributes_by_group(config) and FOLDER_ENV in os.environ:
        shutil.rmtree(os.environ.pop(FOLDER_ENV), ignore_errors=True)


def write_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker (``pytest_collection_modifyitems``, last): every collected test's scope."""
    folder = os.environ.get(FOLDER_ENV)
    if folder is None or not hasattr(config, "workerinput"):
        return
    scopes = {}
    for item in items:
        marks = item.iter_markers("xdist_group")
        names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        scopes[item.nodeid] = "_".join(sorted(names)) if names else item.nodeid.split("::", 1)[0]
    path = Path(folder) / f"{config.workerinput['workerid']}.json"
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(scopes), encoding="utf-8")
    partial.replace(path)  # whole or absent: the controller reads it once every worker has collected


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """In the controller (``pytest_xdist_make_scheduler``): xdist's loadgroup scheduler, with the scopes
    the workers wrote; ``None`` (xdist's own) when there is nothing to read."""
    folder = os.environ.get(FOLDER_ENV)
    if folder is None or not _distributes_by_group(config):
        return None
    try:
        from xdist.scheduler import LoadGroupScheduling
    except ImportError:  # a later xdist moved it: its own scheduler, which groups once its suffix works again
        return None

    class MarkedGroups(LoadGroupScheduling):
        scopes: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.scopes is None:  # first asked once every worker has collected, so the files are there
                files = sorted(Path(folder).glob("*.json"))
                self.scopes = json.loads(files[0].read_text(encoding="utf-8")) if files else {}
            return self.scopes.get(nodeid) or super()._split_scope(nodeid)

    return MarkedGroups(config, log)
