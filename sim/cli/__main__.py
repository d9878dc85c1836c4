"""``python -m sim.cli`` is the ``cascadesim`` command, as ``python -m sim`` is.

:func:`sim.cli.main` takes the current folder off ``sys.path`` before the command runs; ``sim`` and
``sim.cli`` are imported before, with it still there (see :mod:`sim.__main__`).
"""

from sim.cli import main

if __name__ == "__main__":
    main()
