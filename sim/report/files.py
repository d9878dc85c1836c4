"""Writing a run's files, all or nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.result import Result

__all__ = [
    "write_report",
    "rebuild_report",
    "report_files",
    "atomic_directory",
    "atomic_file",
    "to_json",
    "csv_text",
    "FIGURES_DIR",
]

FIGURES_DIR = "figures"  # where --png puts one image per figure


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


def atomic_directory(target: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` into a fresh folder beside ``target`` and swap it into place.

    If anything fails, ``target`` is left as it was and the partial folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


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
    reports from the records alone.
    """
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
