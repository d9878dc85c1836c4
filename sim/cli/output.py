"""The folder a command writes, and its failures as one message and an exit code (:mod:`sim.exits`).

A folder is claimed before anything runs (:func:`output_folder`); a refusal is one line and exit 2
(:func:`fail_refused`), a run or a write that failed one line and exit 1 (:func:`fail_error`), naming where
the finished runs are kept; :func:`reported` turns an experiment's errors into the one or the other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from sim.errors import printable
from sim.exits import EXIT_ERROR, EXIT_INVALID

__all__ = ["output_folder", "reported", "fail_refused", "fail_error"]


def fail_refused(exc: Exception) -> NoReturn:
    """Say why a folder or a results store cannot be used, and exit with :data:`~sim.exits.EXIT_INVALID`."""
    click.echo(f"cascadesim: {printable(exc)}", err=True)
    sys.exit(EXIT_INVALID)


def fail_error(exc: Exception, kept_in: Path | None = None) -> NoReturn:
    """Say why a run or a write failed, and where the finished runs are kept (``kept_in``, if anywhere);
    exit with :data:`~sim.exits.EXIT_ERROR`.
    """
    click.echo(f"cascadesim: {printable(exc)}", err=True)
    if kept_in is not None:
        click.echo(
            f"runs finished before it are kept in {printable(kept_in)}; run again with --resume to complete",
            err=True,
        )
    sys.exit(EXIT_ERROR)


@contextmanager
def reported(out: Path | None) -> Iterator[None]:
    """Turn an experiment's failure into one message and its exit code: a store that cannot be used (2),
    or a run or a write that failed (1, naming ``out``, where the finished runs are kept).
    """
    from sim.experiments.executors import RunFailed
    from sim.experiments.store import StoreError
    from sim.report.folders import OutputError

    try:
        yield
    except (StoreError, ValueError) as exc:
        fail_refused(exc)
    except (RunFailed, OutputError) as exc:
        fail_error(exc, out)


@contextmanager
def output_folder(folder: Path | None, kind: str) -> Iterator[None]:
    """Hold the output ``folder`` of a ``kind`` command (``run``, ``replications``, ``compare``,
    ``sweep``) while the body runs.

    Entered before anything runs: a folder that is not cascadesim's, holds another command's output, cannot
    be written, or is being written by another cascadesim process is refused here (exit 2, nothing run);
    otherwise it is made if missing and locked until the command ends (:class:`sim.report.folders.OutputFolder`).
    None: the command writes nothing.
    """
    if folder is None:
        yield
        return
    from sim.report.folders import OutputError, OutputFolder

    try:
        claim = OutputFolder(folder, kind)
    except OutputError as exc:
        fail_refused(exc)
    with claim:
        yield
