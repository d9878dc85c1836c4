"""Parameter sweeps: a base scenario, the parameters to vary as dotted paths into it, a design.

A sweep file::

    name: retry-storm-retries-load
    base: ../mechanisms/retry-storm.yaml         # relative to this file
    set: {duration: 10m}                          # fixed changes to the base (optional)

Parameters
----------
      policies.client.retries: [0, 1, 2, 3]                     # values
      workload.regions.users.peak: {range: [6, 14], steps: 5}   # numbers in base units (here: per second)
      topology.databases.db.placement: {values: {two-dc: [...], three-dc: [...]}}   # labelled values
    design: grid                                  # grid, random or latin_hypercube (with samples: N)
    replications: 5
    seed: 1                                       # root seed (default: the base scenario's)
    metrics: [availability, recovery.recovered, recovery.time_to_recover]
    report: {metastability: {size: faults.burst.multiplier, duration: faults.burst.duration}}

The modules, in the order a sweep goes through them:

- :mod:`~sim.experiments.sweep.paths` — dotted paths into the base scenario's data (``faults.burst.at``,
  ``placement.*.copies``): read and assigned;
- :mod:`~sim.experiments.sweep.loader` — the sweep file read and checked, every problem at its line
  (:mod:`~sim.experiments.sweep.checks` collects them and asks the scenario loader about each value);
- :mod:`~sim.experiments.sweep.design` — the validated :class:`Sweep`, its parameters and the points of its
  design (grid, random, Latin hypercube);
- :mod:`~sim.experiments.sweep.estimate` — how long its runs should take (``--dry-run``);
- :mod:`~sim.experiments.sweep.run` — its runs, stored as they finish, and the :class:`SweepResult`.

The report is :mod:`sim.experiments.report.sweep`.
"""

from sim.experiments.sweep.design import DESIGNS, Level, Parameter, Sweep
from sim.experiments.sweep.estimate import Pilot, SweepEstimate, estimate_sweep
from sim.experiments.sweep.loader import MAX_RUNS, NAME_RULE, is_sweep, load_sweep, parse_sweep, valid_name
from sim.experiments.sweep.paths import assign, parse_path
from sim.experiments.sweep.run import SweepResult, run_sweep

__all__ = [
    "Sweep",
    "Parameter",
    "Level",
    "SweepResult",
    "load_sweep",
    "parse_sweep",
    "run_sweep",
    "parse_path",
    "assign",
    "DESIGNS",
    "MAX_RUNS",
    "NAME_RULE",
    "valid_name",
    "is_sweep",
    "estimate_sweep",
    "SweepEstimate",
    "Pilot",
]
