"""Output folders: which folders cascadesim may write, and one writer at a time.

Every command that writes a folder (``run``, ``run --replications``, ``compare``, ``sweep``, ``capacity
--out``, ``plan --out``) first asks
:func:`check_output_folder` — before it simulates anything — and holds :class:`OutputFolder` (the checked
folder, locked) while it runs:

- **Ownership.** cascadesim writes only to a new or empty folder, or over its *own* earlier output of the
  same command, and never deletes what it did not write. Its output is recognised by what it writes (see
  :func:`output_kind`): a run's folder holds ``summary.json`` (a cascadesim summary, with its
  ``manifest``) and nothing but the files a run writes; an experiment's holds ``runs/`` (a results store:
  ``manifest.json`` of format ``cascadesim-results/``, ``rows/``, ``chunk-*.parquet``) and nothing but its
  report files; a plan's holds ``years/`` (``manifest.json`` of format ``cascadesim-plan/`` and a JSON
  file per chunk of years, :mod:`sim.planner.store`), ``plan.json`` and its report. There is no marker
  file: outputs written by earlier versions carry the same names, so they are recognised the same way,
  and a folder someone has added a file of their own to is not cascadesim's any more — it is refused,
  naming that file, instead of being replaced with it.
- **A lock.** :class:`FolderLock` takes ``fcntl.flock`` on ``.cascadesim.lock`` inside the folder, for as
  long as the command runs: a second cascadesim process writing the same folder (a second ``sweep``, a
  ``--resume``) is refused with the first one's pid instead of replacing the folder under it.
- **The current folder.** ``--out .``, ``..`` or any folder that holds the current folder is refused
  unless it is cascadesim's output; even then it is never swapped away or deleted, only written in place.
- **Symlinks** are followed: the folder a link points to is written (and replaced), the link is kept.

A problem found before the run is an :class:`OutputError` naming the folder and the reason; how the
files are then written, all or nothing, is :mod:`sim.report.files`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import TracebackType
from typing import Any

from sim.errors import CascadesimError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: folders are not locked there
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "OutputError",
    "OutputFolder",
    "FolderLock",
    "check_output_folder",
    "output_kind",
    "holds_cwd",
    "is_leftover",
    "os_reason",
    "shown_path",
    "FIGURES_DIR",
    "LOCK_FILE",
]

FIGURES_DIR = "figures"  # where --png puts one image per figure
LOCK_FILE = ".cascadesim.lock"
"""The file :class:`FolderLock` locks inside a folder being written (removed when the lock is released)."""

RUN_FILES = frozenset(
    {
        "summary.json",
        "events.jsonl",
        "timeseries.csv",
        "datacenters.csv",
        "scenario.json",
        "mail.csv",
        "links.csv",
        "report.html",
        "report.md",
        FIGURES_DIR,
    }
)
EXPERIMENT_FILES = {
    "replications": frozenset({"runs", "intervals.json", "replications.json", "report.html"}),
    "compare": frozenset({"runs", "comparison.json", "report.html"}),
    "sweep": frozenset({"runs", "sweep.json", "report.html"}),
    "capacity": frozenset({"capacity.json", "report.html"}),
    "plan": frozenset({"years", "plan.json", "report.html"}),
}
STORE_FILES = frozenset({"manifest.json", "rows"})
_OWN_FOLDERS = frozenset({"runs", "rows", "years", FIGURES_DIR})
_CHUNK = re.compile(r"chunk-\d+\.parquet")
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # a write cut short: .<name>.<mkstemp's 8>.tmp
_WHAT = {
    "run": "the output of 'cascadesim run'",
    "replications": "the output of 'cascadesim run --replications'",
    "compare": "the output of 'cascadesim compare'",
    "sweep": "the output of 'cascadesim sweep'",
    "capacity": "the output of 'cascadesim capacity'",
    "plan": "the output of 'cascadesim plan' (or 'compare --engine planner')",
    "results": "a results store",
}


class OutputError(CascadesimError):
    """An output folder cascadesim may not write (not its own, being written, unwritable), or a failed write."""


def os_reason(exc: OSError) -> str:
    """What the OS said, in its words (``No space left on device``)."""
    return exc.strerror or str(exc)


def shown_path(given: Path, real: Path) -> str:
    """``given`` as typed, with the folder it stands for when that is not plain (``.``, ``..``, a link)."""
    plain = given.parts and ".." not in given.parts and os.path.abspath(given) == str(real)
    return str(given) if plain else f"{given} ({real})"


def is_leftover(name: str) -> bool:
    """The lock file and a temporary file of a write cut short belong to any output."""
    return name == LOCK_FILE or _TEMPORARY.fullmatch(name) is not None


def _entries(folder: Path) -> set[str]:
    """The names in ``folder`` that count: not :func:`is_leftover`, and not one of cascadesim's own
    subfolders left empty (a command killed after making ``runs/rows/`` and before writing into it).
    """
    return {
        e.name
        for e in os.scandir(folder)
        if not is_leftover(e.name)
        and not (e.name in _OWN_FOLDERS and e.is_dir(follow_symlinks=False) and not _entries(Path(e.path)))
    }


def _holds_only(folder: Path, suffix: str) -> bool:
    return folder.is_dir() and not folder.is_symlink() and all(n.endswith(suffix) for n in _entries(folder))


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _store_kind(folder: Path) -> str | None:
    """The experiment kind of the results store ``folder`` (its manifest says), or None if it is not one."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    names = _entries(folder)
    manifest = _json(folder / "manifest.json")
    if (
        not isinstance(manifest, dict)
        or not str(manifest.get("format", "")).startswith("cascadesim-results/")
        or any(n not in STORE_FILES and not _CHUNK.fullmatch(n) for n in names)
        or ("rows" in names and not _holds_only(folder / "rows", ".parquet"))
    ):
        return None
    return str(manifest.get("kind", ""))


def _plan_kind(folder: Path) -> str | None:
    """``"plan"`` when ``folder`` is a plan's ``years/`` (its manifest says so; nothing but JSON files)."""
    if not folder.is_dir() or folder.is_symlink():
        return None
    manifest = _json(folder / "manifest.json")
    if not isinstance(manifest, dict) or not str(manifest.get("format", "")).startswith("cascadesim-plan/"):
        return None
    entries = [e for e in os.scandir(folder) if not is_leftover(e.name)]
    return "plan" if all(e.name.endswith(".json") and e.is_file(follow_symlinks=False) for e in entries) else None


def _plan_answer(path: Path) -> bool:
    """Whether ``path`` is a plan's ``plan.json`` (not a file of someone else's that has its name)."""
    answer = _json(path)
    return isinstance(answer, dict) and {"seed", "layouts", "compared_with_first"} <= set(answer)


def output_kind(folder: str | Path) -> str | None:
    """What ``folder`` holds: ``"empty"`` (or missing), cascadesim's output of one command (``"run"``,
    ``"replications"``, ``"compare"``, ``"sweep"``, ``"capacity"``, ``"plan"``), a bare results store
    (``"results"``),
    or None: files that are not all cascadesim's.

    A folder is cascadesim's output when it holds that output's record — a run's ``summary.json`` with its
    ``manifest``, an experiment's ``runs/manifest.json`` (or its ``sweep.json``, ``comparison.json``,
    ``intervals.json``), a capacity check's ``capacity.json``, a plan's ``years/manifest.json`` (or its
    ``plan.json``) — and nothing but the names that command writes. Its lock file, temporary files of a
    write cut short and its own subfolders left empty (``runs/``, ``rows/``, ``years/``, ``figures/``) do
    not count: a folder holding nothing else is empty.
    """
    folder = Path(folder)
    if not folder.exists():
        return "empty"
    names = _entries(folder)
    if not names:
        return "empty"
    if "summary.json" in names:
        summary = _json(folder / "summary.json")
        ok = (
            names <= RUN_FILES
            and isinstance(summary, dict)
            and isinstance(summary.get("manifest"), dict)
            and (FIGURES_DIR not in names or _holds_only(folder / FIGURES_DIR, ".png"))
        )
        return "run" if ok else None
    if "manifest.json" in names:
        return "results" if _store_kind(folder) is not None else None
    evidence = {"intervals.json": "replications", "comparison.json": "compare", "sweep.json": "sweep",
                "capacity.json": "capacity", "plan.json": "plan"}
    kinds = {kind for name, kind in evidence.items() if name in names}
    if "runs" in names:
        kinds.add(_store_kind(folder / "runs") or "?")
    if "years" in names:
        kinds.add(_plan_kind(folder / "years") or "?")
    if "plan.json" in names and not _plan_answer(folder / "plan.json"):
        kinds.add("?")
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    return kind if kind in EXPERIMENT_FILES and names <= EXPERIMENT_FILES[kind] else None


def _foreign(folder: Path) -> str:
    """The entries of ``folder`` cascadesim never writes (or all of them when each could be its), shown short."""
    known = RUN_FILES | STORE_FILES | {n for names in EXPERIMENT_FILES.values() for n in names}
    names = sorted(_entries(folder))
    odd = [n for n in names if n not in known and not _CHUNK.fullmatch(n)] or names
    shown = [f"{n}/" if (folder / n).is_dir() else n for n in odd[:4]]
    return ", ".join(shown) + (f" and {len(odd) - 4} more" if len(odd) > 4 else "")


def holds_cwd(folder: Path) -> bool:
    """Whether ``folder`` is the current folder or one of its ancestors (it must never be swapped away)."""
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was deleted
        return False
    return folder == cwd or folder in cwd.parents


def check_output_folder(path: str | Path, kind: str = "run") -> Path:
    """Check, before anything runs, that ``kind`` output may be written at ``path``; return the real folder
    (symlinks resolved). Raise :class:`OutputError` saying why not and what to do.

    ``kind`` is ``"run"``, ``"replications"``, ``"compare"``, ``"sweep"``, ``"capacity"``, ``"plan"`` or
    ``"results"`` (a bare results store). The folder may be missing (its nearest existing parent must then be a writable
    folder), empty, or hold ``kind`` output (:func:`output_kind`); anything else is refused — the current
    folder and its parents included.

    >>> check_output_folder("/")                                               # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sim.report.folders.OutputError: / is not empty and is not a cascadesim output (it holds ...
    """
    given = Path(path)
    real = Path(os.path.realpath(given))
    where = shown_path(given, real)
    existing = real
    while not os.path.lexists(existing):
        existing = existing.parent
    if existing != real:
        if not existing.is_dir():
            raise OutputError(f"cannot write {where}: {existing} is a file, not a folder; choose another --out")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {where}: {existing} is not writable; choose another --out")
        return real
    if not real.is_dir():
        raise OutputError(f"cannot write {where}: it is a file, not a folder; choose another --out")
    found = output_kind(real)
    if found is None:
        cwd = "; it is the current folder" if real == Path.cwd().resolve() else ""
        cwd = cwd or (", and the current folder" if holds_cwd(real) else "")
        raise OutputError(
            f"{where} is not empty and is not a cascadesim output (it holds {_foreign(real)}{cwd}); "
            "cascadesim writes only to a new or empty folder or over its own earlier output, and never "
            "deletes what it did not write: choose another --out, or move those files away"
        )
    if found not in ("empty", kind):
        raise OutputError(
            f"{where} holds {_WHAT[found]}, not {_WHAT[kind].replace('the output of', 'of')}; choose "
            f"another --out (or remove {given} yourself to reuse it)"
        )
    if not os.access(real, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {where}: it is not writable; choose another --out")
    return real


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


class FolderLock:
    """An exclusive lock on a folder for one writer: ``fcntl.flock`` on :data:`LOCK_FILE` inside it.

    Taken without waiting: when another process holds it — or another open in this process, as flock
    locks belong to an open file — :class:`OutputError` names that process. The lock file holds the pid of
    its holder and is removed on :meth:`release`; a lock file left by a killed process holds no lock and
    does not block. (Where ``fcntl`` is missing, on Windows, folders are not locked.)
    """

    def __init__(self, folder: str | Path, shown: str | Path | None = None):
        self.path = Path(folder) / LOCK_FILE
        self.fd: int | None = None
        shown = shown if shown is not None else folder
        if fcntl is None:  # pragma: no cover
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OutputError(f"cannot write {shown}: {os_reason(exc)}; choose another --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                pid = f" (pid {holder})" if holder.isdigit() else ""
                raise OutputError(
                    f"another cascadesim process is writing {shown}{pid}; wait for it to finish, or choose "
                    "another --out"
                ) from None
            except OSError as exc:
                os.close(fd)
                raise OutputError(f"cannot lock {shown}: {os_reason(exc)}") from None
            if _same_file(fd, self.path):  # not a file its last holder removed as we opened it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Remove the lock file (if it is still this one) and let the folder go; calling it again is harmless."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)  # the pool's forked workers share the open file: unlock it for all
            os.close(fd)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class OutputFolder:
    """The output folder of one command: checked, made if missing, and locked until :meth:`close`.

    >>> with OutputFolder("reports/retry-storm", "sweep") as out:          # doctest: +SKIP
    ...     run_sweep(sweep, out=out.real / "runs")

    Raises :class:`OutputError` (see :func:`check_output_folder`, :class:`FolderLock`) before anything is
    written. A folder it made is removed again on :meth:`close` if nothing was written into it.
    """

    def __init__(self, path: str | Path, kind: str):
        self.path, self.kind = Path(path), kind
        self.real = check_output_folder(self.path, kind)
        shown = shown_path(self.path, self.real)
        self.created = not self.real.exists()
        try:
            self.real.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write {shown}: {os_reason(exc)}; choose another --out") from None
        try:
            self.lock = FolderLock(self.real, shown)
        except BaseException:
            self._remove_if_made()
            raise
        try:
            check_output_folder(self.path, kind)  # again: another process may have written it meanwhile
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the lock (and remove the folder if this made it and it is still empty)."""
        self.lock.release()
        self._remove_if_made()

    def _remove_if_made(self) -> None:
        if self.created:
            try:
                self.real.rmdir()
            except OSError:  # something was written: it stays
                pass

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


