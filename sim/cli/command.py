"""The ``cascadesim`` group with every command registered, and :func:`main`, its entry point.

:func:`main` turns what escapes a command into a message and an exit code of :mod:`sim.exits`: a usage
error 2; an abort, another click error or an internal error 1 (one line; ``CASCADESIM_DEBUG=1`` adds the
traceback); an interrupt 130.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import click

from sim.cli.experiments import capacity_command, compare_command, sweep_command
from sim.cli.plan import plan_command
from sim.cli.run import examples, new, report, run, schema, validate
from sim.errors import printable
from sim.exits import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cascadesim", prog_name="cascadesim")
def cli() -> None:
    """Simulate cascading failures in the datacenters of a global email service."""


cli.add_command(run)
cli.add_command(validate)
cli.add_command(schema)
cli.add_command(report)
cli.add_command(compare_command)
cli.add_command(sweep_command)
cli.add_command(capacity_command)
cli.add_command(plan_command)
cli.add_command(new)
cli.add_command(examples)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning unexpected errors into exit code 1 with a one-line message.

    The current folder is taken off ``sys.path`` first: the runs' worker processes import with this
    process's path, and a scenario folder must never run code.
    """
    from sim.experiments.executors import forget_working_directory

    forget_working_directory()
    try:
        code = cli.main(args=argv, prog_name="cascadesim", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _interrupted()
        click.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        # It may quote a file name or an option someone typed. Click types ``message`` Final, yet show()
        # (with a UsageError's usage and hint lines) prints only it: rewriting it is the one way in.
        exc.message = printable(exc.message)  # type: ignore[misc]
        exc.show()
        sys.exit(EXIT_INVALID if isinstance(exc, click.UsageError) else EXIT_ERROR)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit:
        raise
    except Exception as exc:  # anything else is our bug: say so, briefly
        if os.environ.get("CASCADESIM_DEBUG"):
            traceback.print_exc()
        click.echo(f"cascadesim: internal error: {type(exc).__name__}: {printable(exc)}", err=True)
        click.echo("set CASCADESIM_DEBUG=1 for the traceback", err=True)
        sys.exit(EXIT_ERROR)


def _interrupted() -> NoReturn:
    click.echo("interrupted; no file is left half-written: a report is written whole when its run ends, and "
               "the runs that finished are kept in their results folder (go on with --resume)", err=True)
    sys.exit(EXIT_INTERRUPTED)
