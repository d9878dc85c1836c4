"""What a command writes besides its answer: its folder, its failures and its progress.

A folder is claimed before anything runs (:func:`output_folder`); a refusal is one line and exit 2
(:func:`fail_refused`), a run or a write that failed one line and exit 1 (:func:`fail_error`), naming where
the finished runs are kept; :func:`reported` turns an experiment's errors into the one or the other.

Progress goes to stderr (:func:`run_progress` for one run, :func:`runs_progress` for many): a bar on a
terminal; elsewhere (a pipe, a CI log) a line every :data:`PROGRESS_EVERY` seconds, as pip and tqdm do when
they cannot draw; nothing with ``--quiet``. Only this layer reads the wall clock: the runs never do.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from sim.errors import printable
from sim.exits import EXIT_ERROR, EXIT_INVALID

__all__ = [
    "output_folder",
    "reported",
    "fail_refused",
    "fail_error",
    "run_progress",
    "runs_progress",
    "ProgressLines",
    "PROGRESS_EVERY",
]

PROGRESS_EVERY = 10.0
"""Seconds between two progress lines when stderr is not a terminal."""


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
    ``sweep``, ``capacity``) while the body runs.

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


# ------------------------------------------------------------------------------------------------ progress


def _wall(seconds: float) -> str:
    from sim.units import format_duration

    return format_duration(round(max(seconds, 0.0)))


class ProgressLines:
    """Progress as a line on stderr at most every ``every`` seconds of wall time, for output that is not a
    terminal. Called as ``lines(done, total)`` by a run (simulated seconds) or an experiment (runs).

    The rate and the time left count only what was done after the first call (runs already stored by an
    earlier, resumed attempt do not make this one look faster).

    >>> clock = iter([0.0, 4.0, 12.0]).__next__
    >>> lines = ProgressLines("quickstart", "run", every=10.0, clock=clock, echo=print)
    >>> lines(0.0, 3637.0); lines(600.0, 3637.0); lines(900.0, 3637.0)
    quickstart: 15m of 1h37s simulated (25%), 1m15s simulated per second, about 36s left
    """

    def __init__(
        self,
        label: str,
        unit: str,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        echo: Callable[[str], None] | None = None,
    ):
        self.label, self.unit = label, unit
        self.every = PROGRESS_EVERY if every is None else every
        self.clock = clock
        self.echo = echo or (lambda line: click.echo(line, err=True))
        self.start: tuple[float, float] | None = None  # (wall clock, done) at the first call
        self.due = 0.0

    def __call__(self, done: float, total: float) -> None:
        now = self.clock()
        if self.start is None:
            self.start, self.due = (now, done), now + self.every
            return
        if now < self.due:
            return
        self.due = now + self.every
        self.echo(self.line(done, total, now))

    def line(self, done: float, total: float, now: float) -> str:
        """The progress line for ``done`` of ``total`` at wall time ``now``."""
        assert self.start is not None
        began, first = self.start
        share = f"{100 * done / total:.0f}%" if total else "100%"
        rate = (done - first) / (now - began) if now > began else 0.0
        left = f"about {_wall((total - done) / rate)} left" if rate > 0 else "time left not known yet"
        if self.unit == "run":
            from sim.units import format_duration

            shown = f"{format_duration(round(done))} of {format_duration(round(total))} simulated ({share})"
            pace = f"{format_duration(round(rate))} simulated per second" if rate >= 1 else (
                f"{rate:.2g}s simulated per second"
            )
        else:
            shown = f"{int(done):,} of {int(total):,} runs ({share})"
            pace = f"{rate * 60:.3g} runs a minute" if rate < 1 else f"{rate:.3g} runs a second"
        return f"{printable(self.label)}: {shown}, {pace}, {left}"


@contextmanager
def run_progress(label: str, quiet: bool = False) -> Iterator[Callable[[float, float], None] | None]:
    """Progress of one run (simulated time): a bar on a terminal for runs longer than two seconds, a line
    every :data:`PROGRESS_EVERY` seconds elsewhere, nothing when ``quiet``.
    """
    if quiet:
        yield None
        return
    if not sys.stderr.isatty():
        yield ProgressLines(label, "run")
        return
    from tqdm import tqdm

    try:  # a pseudo-terminal may report no size, and tqdm then shows nothing at all
        rows = max(os.get_terminal_size(sys.stderr.fileno()).lines, 2)
    except (OSError, ValueError):
        rows = 24
    bar = tqdm(total=100, delay=2.0, unit="%", file=sys.stderr, leave=False, nrows=rows,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

    def update(now: float, end: float) -> None:
        done = round(100 * now / end) if end else 100
        bar.update(done - bar.n)  # update() honours the delay; refresh() would not

    try:
        yield update
    finally:
        bar.close()


@contextmanager
def runs_progress(label: str, quiet: bool = False) -> Iterator[Callable[[int, int], None] | None]:
    """Progress of an experiment (runs done, runs a second, time left): a bar on a terminal, a line every
    :data:`PROGRESS_EVERY` seconds elsewhere, nothing when ``quiet``.
    """
    if quiet:
        yield None
        return
    if not sys.stderr.isatty():
        yield ProgressLines(label, "runs")
        return
    from tqdm import tqdm

    bar = tqdm(
        total=0,
        unit="run",
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}<{remaining}, {rate_fmt}]",
    )
    started: list[int] = []

    def update(done: int, total: int) -> None:
        if not started:  # runs already stored do not count towards the rate
            started.append(done)
            bar.initial = done
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
