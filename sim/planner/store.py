"""A plan's folder: each chunk of years kept the moment it is planned, so a long plan resumes where it stopped.

The folder of ``cascadesim plan --out`` (and of ``cascadesim compare --engine planner``)::

    plan.json                     the whole answer, every year of every layout (written last)
    years/manifest.json           what the years belong to: each layout's name and scenario (the SHA-256
                                  of its validated JSON), the root seed, the years per chunk, the version
                                  and a hash of the model's source, the planner's included
    years/<layout>-<first>.json   one chunk of a layout's years (``first`` zero-padded to six digits)
    .cascadesim.lock              while a command writes it (:class:`sim.report.folders.OutputFolder`)

Every file is written through a temporary file beside it and a rename (:func:`sim.report.files.atomic_file`),
so a plan killed at any point leaves whole files only. Year ``i`` is planned with replication ``i``'s seed
whatever the chunk, the executor or the attempt, so a resumed plan's years are the uninterrupted plan's, to
the byte. :meth:`YearsStore.create` with ``resume`` keeps the chunks of the same plan (the manifest must
match: another scenario, seed, chunk size or version is refused, saying what differs); without, an earlier
plan's files are removed first. Which folders may be written at all is :func:`sim.report.folders.check_output_folder`
(kind ``"plan"``): never one holding files cascadesim did not write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.experiments.plan import replication_seed
from sim.experiments.store import StoreError
from sim.loader import scenario_hash
from sim.planner.curve import source_hash
from sim.planner.years import CHUNK
from sim.report.files import atomic_file, to_json
from sim.report.folders import EXPERIMENT_FILES, OutputError, check_output_folder, os_reason
from sim.scenario import Scenario
from sim.version import VERSION

__all__ = ["FORMAT", "YearsStore", "chunk_name"]

FORMAT = "cascadesim-plan/1"
"""The manifest's ``format``: what :func:`sim.report.folders.output_kind` recognises a plan's years by."""


def chunk_name(layout: str, first: int) -> str:
    """The file of ``layout``'s chunk starting at year ``first``: ``two-copies-000120.json``.

    Distinct for distinct (layout, first): what follows the last ``-`` is ``first``, the rest the layout.
    """
    return f"{layout}-{first:06d}.json"


class YearsStore:
    """The years of a plan folder, chunk by chunk (see the module docstring). Open one with :meth:`create`."""

    def __init__(self, folder: Path, manifest: dict[str, Any]):
        self.folder = Path(folder)
        self.years = self.folder / "years"
        self.manifest = manifest
        self.root_seed = int(manifest["root_seed"])

    @classmethod
    def create(cls, folder: str | Path, layouts: dict[str, Scenario], root_seed: int, *,
               resume: bool = False) -> YearsStore:
        """The store at ``folder`` for ``layouts`` (name → scenario) planned from ``root_seed`` (in chunks of
        :data:`~sim.planner.years.CHUNK` years).

        With ``resume`` the chunks already stored are kept, provided the folder holds this same plan
        (:class:`~sim.experiments.store.StoreError` naming what differs otherwise); without, an earlier
        plan's files are removed first. A folder that is not new, empty or a plan's is refused with
        :class:`~sim.report.folders.OutputError` before anything is written or removed.
        """
        folder = Path(folder)
        check_output_folder(folder, "plan")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "model": source_hash(planner=True)[:16],
            "root_seed": int(root_seed),
            "chunk": CHUNK,
            "layouts": [{"layout": name, "scenario": s.name, "hash": scenario_hash(s)} for name, s in layouts.items()],
        }
        store = cls(folder, manifest)
        try:
            if resume and (store.years / "manifest.json").exists():
                differs = _differences(store._read_json(store.years / "manifest.json"), manifest)
                if differs:
                    raise StoreError(
                        f"{folder} holds the years of another plan ({'; '.join(differs)}); run without --resume "
                        "to replace them, or choose another --out")
                return store
            store._remove_earlier()
            atomic_file(store.years / "manifest.json", to_json(manifest))
        except OSError as exc:
            raise OutputError(f"cannot write {folder}: {os_reason(exc)}; choose another --out") from None
        return store

    def _remove_earlier(self) -> None:
        """Remove an earlier plan's files (only its own: :func:`check_output_folder` saw to that)."""
        for name in EXPERIMENT_FILES["plan"] - {"years"}:  # plan.json, its report
            (self.folder / name).unlink(missing_ok=True)
        if self.years.is_dir():
            for entry in self.years.iterdir():
                if not entry.is_dir() or entry.is_symlink():
                    entry.unlink()

    def _read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: cannot read it ({exc}); run without --resume to plan again") from None

    def read(self, layout: str, first: int) -> list[dict[str, Any]]:
        """The years stored for ``layout``'s chunk starting at ``first`` (none: an empty list).

        A chunk file that is not this plan's (another layout, start or seed in it) raises
        :class:`~sim.experiments.store.StoreError` naming it.
        """
        path = self.years / chunk_name(layout, first)
        if not path.exists():
            return []
        data = self._read_json(path)
        rows = data.get("years") if isinstance(data, dict) else None
        ok = (isinstance(rows, list) and data.get("layout") == layout and data.get("first") == first
              and all(isinstance(r, dict) and r.get("seed") == replication_seed(self.root_seed, first + j)
                      for j, r in enumerate(rows)))
        if not ok:
            raise StoreError(f"{path}: not the years {first} on of layout '{layout}' with root seed "
                             f"{self.root_seed}; remove it to plan them again")
        return rows  # type: ignore[return-value]

    def write(self, layout: str, first: int, rows: list[dict[str, Any]]) -> None:
        """Keep ``layout``'s chunk starting at ``first`` now, all or nothing."""
        body = {"layout": layout, "first": first, "years": rows}
        self._write(self.years / chunk_name(layout, first), to_json(body))

    def write_answer(self, answer: dict[str, Any]) -> Path:
        """Write ``plan.json`` (the whole answer), all or nothing; return its path."""
        path = self.folder / "plan.json"
        self._write(path, to_json(answer))
        return path

    def write_report(self, html: str) -> Path:
        """Write ``report.html`` (the planner's report), all or nothing; return its path."""
        path = self.folder / "report.html"
        self._write(path, html)
        return path

    def _write(self, path: Path, text: str) -> None:
        try:
            atomic_file(path, text)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {os_reason(exc)}") from None


def _differences(held: Any, wanted: dict[str, Any]) -> list[str]:
    """What differs between the manifest ``held`` in a folder and the one this plan would write."""
    if not isinstance(held, dict) or held.get("format") != wanted["format"]:
        return ["its years/manifest.json is not a plan's"]
    out = []
    if held.get("version") != wanted["version"]:
        out.append(f"planned by cascadesim {held.get('version')}, this is {wanted['version']}")
    elif held.get("model") != wanted["model"]:
        out.append(f"planned by other code (model {str(held.get('model'))[:12]}…, this is {wanted['model'][:12]}…)")
    if held.get("root_seed") != wanted["root_seed"]:
        out.append(f"root seed {held.get('root_seed')}, not {wanted['root_seed']}")
    if held.get("chunk") != wanted["chunk"]:
        out.append(f"chunks of {held.get('chunk')} years, not {wanted['chunk']}")
    have = {d.get("layout"): d for d in held.get("layouts", []) if isinstance(d, dict)}
    names = [d["layout"] for d in wanted["layouts"]]
    if list(have) != names:
        out.append(f"layouts {', '.join(map(str, have)) or 'none'}, not {', '.join(names)}")
    else:
        out += [f"layout '{d['layout']}': another scenario (its hash {str(have[d['layout']].get('hash'))[:12]}…, "
                f"this file's {d['hash'][:12]}…)"
                for d in wanted["layouts"] if have[d["layout"]].get("hash") != d["hash"]]
    return out
