"""The ``cascadesim`` command.

Exit codes (:mod:`sim.exits`): 0 ok; 2 invalid scenario or usage; 3 the run finished but breached the
scenario's SLO; 1 anything else.

The modules: :mod:`~sim.cli.command` (the group and :func:`main`), :mod:`~sim.cli.run` (``run``,
``validate``, ``schema``, ``report``), :mod:`~sim.cli.experiments` (replications, ``compare``, ``sweep``,
``capacity``), :mod:`~sim.cli.options` (options several commands share), :mod:`~sim.cli.output` (the
output folder, failures as messages and exit codes), :mod:`~sim.cli.text` (the summary after a run).
"""

from sim.cli.command import cli, main
from sim.cli.text import format_summary

__all__ = ["main", "cli", "format_summary"]
