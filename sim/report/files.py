"""Writing a run's files, all or nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.result import Result

__all__ = ["write_report", "atomic_directory", "to_json", "csv_text"]


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


def write_report(result: Result, directory: Path) -> Path:
    """Render every file of ``result`` in memory first, then write them atomically into ``directory``."""
    from sim.report.html import render_html

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
    files["report.html"] = render_html(result)
    return atomic_directory(directory, files)
