"""Options shared by several commands: percentages, and where the runs execute (``-j``, Dask)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["percent_option", "quiet_option", "executor_options", "executor_from_options"]


def _percent(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from sim.units import parse_percent

    if value is None:
        return None
    try:
        return parse_percent(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def percent_option(*names: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A click option read as a percentage (``0.05%``, ``80%`` or a fraction)."""
    return click.option(*names, type=str, callback=_percent, **kwargs)


def quiet_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-q/--quiet``: no progress on stderr (neither the bar on a terminal nor the lines elsewhere)."""
    return click.option(
        "-q", "--quiet", is_flag=True, help="Show no progress (a bar on a terminal, a line every 10 s elsewhere)."
    )(f)


def executor_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-j/--jobs``, ``--dask-scheduler`` and ``--dask-local``: where the runs execute."""
    f = click.option(
        "--dask-local",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Start a Dask LocalCluster of N worker processes on this machine and run there.",
    )(f)
    f = click.option(
        "--dask-scheduler",
        default=None,
        metavar="ADDRESS",
        help="Run on an existing Dask cluster, e.g. tcp://host:8786 (workers need cascadesim).",
    )(f)
    f = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Worker processes on this machine [default: all cores; 0: in this process].",
    )(f)
    return f


def executor_from_options(jobs: int | None, dask_scheduler: str | None, dask_local: int | None) -> Any:
    """The executor the :func:`executor_options` ask for; a contradiction or a missing Dask is a usage error."""
    from sim.experiments.executors import make_executor

    if dask_scheduler and dask_local:
        raise click.UsageError("give --dask-scheduler or --dask-local, not both")
    if (dask_scheduler or dask_local) and jobs is not None:
        raise click.UsageError("-j/--jobs is for the local process pool; a Dask cluster has its own workers")
    try:
        return make_executor(jobs, dask_scheduler, dask_local)
    except ImportError:
        raise click.UsageError("Dask is not installed: python -m pip install 'cascadesim[dask]'") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the Dask scheduler {dask_scheduler}: {exc}") from None
