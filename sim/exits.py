"""The exit codes of the ``cascadesim`` command, and how it stops on an invalid scenario.

0 ok; 1 anything else (an internal error, a failed write); 2 an invalid scenario or usage, nothing run;
3 the run finished but breached the scenario's SLO; 130 interrupted (Ctrl-C), as shells report SIGINT.
Every command of :mod:`sim.cli` exits through these.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from sim.errors import ScenarioError

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_INVALID", "EXIT_SLO", "EXIT_INTERRUPTED", "fail_invalid"]

EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_SLO = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


def fail_invalid(err: ScenarioError) -> NoReturn:
    """Print every problem of ``err`` on stderr, say that nothing was run, and exit with :data:`EXIT_INVALID`."""
    for problem in err.problems:
        click.echo(str(problem), err=True)
    n = len(err.problems)
    click.echo(f"{n} problem{'s' if n != 1 else ''}; nothing was run or written.", err=True)
    sys.exit(EXIT_INVALID)
