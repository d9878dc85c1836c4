"""Writing a run's files, all or nothing, into a folder that is cascadesim's to write.

Every file is rendered in memory first; :func:`atomic_directory` then writes them into a temporary folder
beside the target and swaps it into place (or, for a folder that cannot be swapped, writes each file to a
temporary name and renames them all). Which folders may be written, and the lock held while they are, is
:mod:`sim.report.folders`. An OS error while writing (a full disk, a read-only file system) is an
:class:`~sim.report.folders.OutputError` naming the folder and the reason; what was there is left as it was.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.report.folders import (
    FIGURES_DIR,
    OutputError,
    check_output_folder,
    holds_cwd,
    is_leftover,
    os_reason,
    shown_path,
)

if TYPE_CHECKING:
    from sim.result import Result

__all__ = [
    "write_report",
    "rebuild_report",
    "report_files",
    "atomic_directory",
    "atomic_file",
    "write_files",
    "to_json",
    "csv_text",
]


def to_json(data: Any) -> str:
    """Stable JSON: sorted keys, no NaN (as null), a trailing newline."""
    return json.dumps(_clean(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as CSV text (header from the first row)."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _can_swap(folder: Path) -> bool:
    """Whether ``folder`` may be renamed aside: not the current folder (or one holding it), not a mount."""
    return not holds_cwd(folder) and not os.path.ismount(folder) and os.access(folder.parent, os.W_OK)


def _write_all(folder: Path, files: Mapping[str, str | bytes]) -> list[tuple[Path, Path]]:
    """Write each of ``files`` to a temporary file beside its place in ``folder``; return (temporary, final).

    On any error the temporary files written so far are removed and the error raised.
    """
    done: list[tuple[Path, Path]] = []
    try:
        for name, content in files.items():
            final = folder / name
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, name_tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            os.close(fd)
            tmp = Path(name_tmp)
            done.append((tmp, final))
            if isinstance(content, bytes):
                tmp.write_bytes(content)
            else:
                tmp.write_text(content, encoding="utf-8")
            os.chmod(tmp, 0o644)
    except BaseException:
        for written, _ in done:
            written.unlink(missing_ok=True)
        raise
    return done


def write_files(folder: str | Path, files: Mapping[str, str | bytes], shown: str | Path | None = None) -> Path:
    """Write ``files`` (name → content) into ``folder`` in place, all or nothing; return ``folder``.

    Every file is written to a temporary file beside its name first; only when all are written are they
    renamed into place, so a failed write (a full disk) leaves the folder's previous files as they were.
    Raises :class:`OutputError` naming the folder and the reason. The folder is made if missing; it is
    never renamed, so this is how a folder that holds the current folder is written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for tmp, final in _write_all(folder, files):
            os.replace(tmp, final)
    except OSError as exc:
        raise OutputError(
            f"cannot write {shown or folder}: {os_reason(exc)}; its previous files are left as they were"
        ) from None
    return folder


def _remove_stale(folder: Path, keep: Mapping[str, Any]) -> None:
    """Remove what an earlier output in ``folder`` had and this one has not (never the current folder)."""
    wanted = {Path(name).as_posix() for name in keep}
    wanted |= {p.as_posix() for name in keep for p in Path(name).parents if p != Path(".")}
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names + dirs:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if rel in wanted or is_leftover(name):
                continue
            if path.is_dir() and not path.is_symlink():
                if not holds_cwd(path.resolve()):
                    try:
                        path.rmdir()
                    except OSError:
                        pass
            else:
                path.unlink(missing_ok=True)


def atomic_directory(target: str | Path, files: dict[str, str | bytes], kind: str = "run") -> Path:
    """Make ``target`` hold exactly ``files`` (name → content), all or nothing; return ``target``.

    ``target`` must be new, empty or cascadesim's own ``kind`` output (:func:`check_output_folder`); a
    symlink is followed — the folder it points to is replaced, the link kept. The files are written into a
    fresh folder beside it, which is then swapped into place: a reader sees the old folder or the new one,
    never half of each. A folder that cannot be renamed (one holding the current folder, a mount point) is
    written in place instead (:func:`write_files`), then cleared of what the earlier output had and this
    one has not. If anything fails, ``target`` is left as it was, the partial folder is removed and
    :class:`OutputError` says why.
    """
    given = Path(target)
    real = check_output_folder(given, kind)
    shown = shown_path(given, real)
    if real.is_dir() and not _can_swap(real):
        write_files(real, files, shown)
        _remove_stale(real, files)
        return given
    tmp: Path | None = None
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent))
        for name, content in files.items():  # a fresh private folder: no file needs a temporary name
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        os.chmod(tmp, 0o755)
        if real.exists():
            old = real.with_name(f".{real.name}.old.{os.getpid()}")
            os.replace(real, old)
            try:
                os.replace(tmp, real)
            except BaseException:
                os.replace(old, real)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, real)
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {os_reason(exc)}; what was there is left as it was") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return given


def atomic_file(path: Path, content: str | bytes) -> Path:
    """Write one file through a temporary file beside it and ``os.replace``: a reader never sees half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def report_files(
    result: Any, png: bool = False, notify: Callable[[str], None] | None = None
) -> dict[str, str | bytes]:
    """Render ``report.html``, ``report.md`` and, with ``png``, ``figures/<id>.png`` in memory.

    ``result`` is a ``Result`` or a ``StoredResult``.

    When static images cannot be drawn (no kaleido, no browser), ``notify`` gets one line saying why and
    the other files are still returned.
    """
    from sim.report.html import build_report
    from sim.report.markdown import render_markdown

    report = build_report(result)
    files: dict[str, str | bytes] = {
        "report.html": report.html(),
        "report.md": render_markdown(result, report.story),
    }
    if png:
        from sim.report.png import PngUnavailable, render_pngs

        try:
            images = render_pngs(report.figures)
        except PngUnavailable as err:
            (notify or _stderr)(f"png: skipped: {err}")
        else:
            files.update({f"{FIGURES_DIR}/{name}": data for name, data in images.items()})
    return files


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def rebuild_report(
    folder: str | Path, png: bool = False, notify: Callable[[str], None] | None = None
) -> Path:
    """Render the report of a stored run again from its records (``cascadesim report``); return the folder.

    Only ``report.html``, ``report.md`` (and ``figures/``) are rewritten, each file atomically; the records
    are left as they are. Raises :class:`sim.report.stored.ResultsError` for a folder that is not a run's.
    """
    from sim.report.stored import load_results

    stored = load_results(folder)
    for name, content in report_files(stored, png, notify).items():
        atomic_file(stored.folder / name, content)
    return stored.folder


def write_report(
    result: Result, directory: Path, png: bool = False, notify: Callable[[str], None] | None = None
) -> Path:
    """Render every file of ``result`` in memory first, then write them atomically into ``directory``.

    The records (``summary.json``, ``events.jsonl``, the CSV series, ``scenario.json``) and the reports
    (``report.html``, ``report.md``; with ``png``, ``figures/*.png``). ``cascadesim report`` rebuilds the
    reports from the records alone. ``directory`` must be new, empty or an earlier run's output
    (:func:`check_output_folder`, checked before anything is rendered); :class:`OutputError` otherwise.
    """
    check_output_folder(directory, "run")
    files: dict[str, str | bytes] = {
        "summary.json": to_json(result.summary),
        "events.jsonl": "".join(json.dumps(_clean(e), sort_keys=True) + "\n" for e in result.events),
        "timeseries.csv": csv_text(result.timeseries),
        "datacenters.csv": csv_text(result.datacenter_series),
        "scenario.json": result.scenario.model_dump_json(indent=2) + "\n",
    }
    if result.mail_series:
        files["mail.csv"] = csv_text(result.mail_series)
    if result.link_series:
        files["links.csv"] = csv_text(result.link_series)
    files.update(report_files(result, png, notify))
    return atomic_directory(directory, files)
