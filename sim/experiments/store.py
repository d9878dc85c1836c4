"""The results store: one Parquet row per finished run, written at once, never half-written.

A store is a folder::

    manifest.json            what experiment the rows belong to, and the column types
    rows/<run id>.parquet    one finished run each, written the moment it finished
    chunk-<n>.parquet        rows gathered into chunks (``compact``), the row files then removed
    .cascadesim.lock         while an experiment writes it (``create(..., lock=True)``): one writer at a time

Every file is written beside its final name (a dot-file), flushed to disk and renamed into place, so a
reader — or a sweep resumed after a kill at any point — sees whole files only. A row file and a chunk may
briefly hold the same run (a kill between writing a chunk and removing its row files): reading keeps one
row per run id, and the next ``compact`` tidies up.

>>> import pandas as pd                                       # doctest: +SKIP
>>> df = load_results("reports/retry-storm-retries-load/runs")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import CascadesimError
from sim.report.folders import LOCK_FILE, FolderLock, OutputError, check_output_folder

if TYPE_CHECKING:
    import pandas as pd

    from sim.experiments.plan import ColumnKind, Experiment

__all__ = ["ResultStore", "StoreError", "load_results", "atomic_write", "arrow_schema"]

_TYPES: dict[str, pa.DataType] = {
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}
_CHUNK = re.compile(r"^chunk-(\d+)\.parquet$")


class StoreError(CascadesimError):
    """The folder is not a results store, holds another experiment's results, or another process writes it."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a temporary file beside it, fsync, rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform opens folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def arrow_schema(columns: list[tuple[str, ColumnKind]]) -> pa.Schema:
    """The Arrow schema of rows with these ``(name, kind)`` columns (the store's files and the runner's rows)."""
    return pa.schema([pa.field(name, _TYPES[kind]) for name, kind in columns])


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


class ResultStore:
    """A folder of Parquet files holding one row per run; see the module docstring.

    Open one with :meth:`create` (for an experiment about to run) or :meth:`open` (to read).
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.columns: list[tuple[str, ColumnKind]] = [(c, k) for c, k in manifest["columns"]]
        self.schema = arrow_schema(self.columns)
        self.rows_dir = self.path / "rows"
        self.lock: FolderLock | None = None

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def create(
        cls, path: str | Path, experiment: Experiment, resume: bool = False, lock: bool = False
    ) -> ResultStore:
        """The store for ``experiment`` at ``path``.

        With ``resume`` an existing store is kept — it must hold this same experiment — and its runs are
        not run again. Without, a store at ``path`` is emptied for this experiment. Only a new or empty
        folder or a results store (holding nothing but a store's files) is written: anything else raises
        :class:`StoreError`, and nothing is deleted.

        With ``lock`` the folder is locked until :meth:`close` (:class:`sim.report.folders.FolderLock`):
        another process — or another locked ``create`` in this one — gets :class:`StoreError` instead of
        replacing the store under this one.
        """
        path = Path(path)
        manifest = {
            "format": "cascadesim-results/1",
            "kind": experiment.kind,
            "name": experiment.name,
            "fingerprint": experiment.fingerprint(),
            "root_seed": experiment.root_seed,
            "columns": [list(c) for c in experiment.columns()],
            "metrics": [m.name for m in experiment.metrics],
            "params": list(experiment.param_kinds),
        }
        held = None
        try:
            real = check_output_folder(path, "results")
            if lock:
                real.mkdir(parents=True, exist_ok=True)
                held = FolderLock(real, path)
                check_output_folder(path, "results")  # again, now that no other writer can change it
            if resume and (path / "manifest.json").exists():
                store = cls.open(path)
                if store.manifest.get("fingerprint") != manifest["fingerprint"]:
                    raise StoreError(
                        f"{path} holds the results of another experiment ({store.manifest.get('kind')} "
                        f"'{store.manifest.get('name')}': its scenario, parameters, metrics or root seed "
                        "differ); "
                        "run without --resume to replace them, or choose another --out"
                    )
                store.rows_dir.mkdir(exist_ok=True)
            else:
                real.mkdir(parents=True, exist_ok=True)
                _empty(real)
                (path / "rows").mkdir()
                atomic_write(path / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
                store = cls(path, manifest)
        except OutputError as exc:
            if held is not None:
                held.release()
            raise StoreError(str(exc)) from None
        except OSError as exc:
            if held is not None:
                held.release()
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another --out") from None
        except BaseException:
            if held is not None:
                held.release()
            raise
        store.lock = held
        return store

    def close(self) -> None:
        """Release the folder's lock, if this store holds one; the store can still be read."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @classmethod
    def open(cls, path: str | Path) -> ResultStore:
        """An existing store, to read (or to resume)."""
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{path}: no results store here (no manifest.json)") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}/manifest.json: cannot read it ({exc})") from None
        if not str(manifest.get("format", "")).startswith("cascadesim-results/"):
            raise StoreError(f"{path}/manifest.json: not a cascadesim results store")
        return cls(path, manifest)

    # ------------------------------------------------------------------------------------------ writing

    def write(self, row: dict[str, Any]) -> None:
        """Store one finished run now, as its own file (all or nothing).

        Raises :class:`~sim.report.folders.OutputError` when the file cannot be written (a full disk).
        """
        table = pa.Table.from_pylist([{name: row.get(name) for name, _ in self.columns}], schema=self.schema)
        try:
            atomic_write(self.rows_dir / f"{row['run_id']}.parquet", _parquet_bytes(table))
        except OSError as exc:
            raise OutputError(f"cannot store a run in {self.path}: {exc.strerror or exc}") from None

    def compact(self) -> int:
        """Gather the row files into a new chunk; return how many rows it holds (0: nothing to do)."""
        loose = self._row_files()
        if not loose:
            return 0
        have = self._chunk_ids()
        tables = [t for t in (self._read(f) for f in loose) if t is not None]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        if have:
            mask = [rid not in have for rid in table.column("run_id").to_pylist()]
            table = table.filter(pa.array(mask, pa.bool_()))
        table = _dedupe(table)
        if table.num_rows:
            n = (
                max((int(m.group(1)) for f in self.path.iterdir() if (m := _CHUNK.match(f.name))), default=0)
                + 1
            )
            try:
                atomic_write(self.path / f"chunk-{n:06d}.parquet", _parquet_bytes(table))
            except OSError as exc:  # the row files stay: nothing is lost
                raise OutputError(f"cannot write a chunk in {self.path}: {exc.strerror or exc}") from None
            _fsync_dir(self.path)
        for f in loose:
            f.unlink(missing_ok=True)
        return table.num_rows

    # ------------------------------------------------------------------------------------------ reading

    def _row_files(self) -> list[Path]:
        if not self.rows_dir.exists():
            return []
        return sorted(
            f for f in self.rows_dir.iterdir() if f.suffix == ".parquet" and not f.name.startswith(".")
        )

    def _chunk_files(self) -> list[Path]:
        return sorted(f for f in self.path.iterdir() if _CHUNK.match(f.name))

    def _read(self, f: Path, columns: list[str] | None = None) -> pa.Table | None:
        try:
            table = pq.read_table(f, columns=columns)
        except FileNotFoundError:  # compacted meanwhile
            return None
        return table.select(columns) if columns else table.select(self.schema.names).cast(self.schema)

    def _chunk_ids(self) -> set[str]:
        ids: set[str] = set()
        for f in self._chunk_files():
            t = self._read(f, ["run_id"])
            if t is not None:
                ids.update(t.column("run_id").to_pylist())
        return ids

    def done(self) -> set[str]:
        """The run ids stored."""
        ids = self._chunk_ids()
        for f in self._row_files():
            ids.add(f.stem)
        return ids

    def table(self) -> pa.Table:
        """Every stored row (one per run id), sorted by point and replication."""
        tables = [
            t for t in (self._read(f) for f in self._chunk_files() + self._row_files()) if t is not None
        ]
        if not tables:
            return self.schema.empty_table()
        table = _dedupe(pa.concat_tables(tables))
        return table.sort_by([("point", "ascending"), ("replication", "ascending")])

    def to_pandas(self) -> pd.DataFrame:
        """Every stored row as a pandas DataFrame."""
        return self.table().to_pandas()

    def __len__(self) -> int:
        return len(self.done())


def _empty(folder: Path) -> None:
    """Remove everything in ``folder`` (a results store) but its lock file; never the current folder."""
    try:
        cwd: Path | None = Path.cwd().resolve()
    except OSError:
        cwd = None
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            if cwd is not None and (entry.resolve() == cwd or entry.resolve() in cwd.parents):
                _empty(entry)
            else:
                shutil.rmtree(entry)
        else:
            entry.unlink()


def _dedupe(table: pa.Table) -> pa.Table:
    seen: set[str] = set()
    keep = []
    for rid in table.column("run_id").to_pylist():
        keep.append(rid not in seen)
        seen.add(rid)
    return table if all(keep) else table.filter(pa.array(keep, pa.bool_()))


def load_results(path: str | Path) -> pd.DataFrame:
    """The rows of the results store at ``path`` (an experiment's output folder or its ``runs/``)."""
    path = Path(path)
    if not (path / "manifest.json").exists() and (path / "runs" / "manifest.json").exists():
        path = path / "runs"
    return ResultStore.open(path).to_pandas()
