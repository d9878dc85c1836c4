"""``python -m sim`` is the ``cascadesim`` command.

``python -m`` puts the current folder first on ``sys.path``; it is taken off again here, before the
command runs, so the runs' worker processes never import from it. The ``sim`` package itself is imported
before this file runs, by Python, with that folder still on the path: in a folder whose files you do not
trust, run ``cascadesim`` (or ``python -P -m sim``).
"""

from sim.experiments.executors import forget_working_directory

forget_working_directory()

from sim.cli import main  # noqa: E402 - after the path is clean

if __name__ == "__main__":
    main()
