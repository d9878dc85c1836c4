"""Experiments: many runs of a scenario, compared and summed up with confidence intervals.

The modules tell the story of an experiment:

- :mod:`~sim.experiments.plan` — points × replications, their seeds (``SeedSequence(root, spawn_key=(i,))``)
  and the picklable tasks sent to workers;
- :mod:`~sim.experiments.metrics` — which numbers of a run's summary are kept, and which way is better;
- :mod:`~sim.experiments.executors` — where runs execute: this process, a process pool, a Dask cluster;
- :mod:`~sim.experiments.store` — the Parquet results store, one row per run, written as it finishes;
- :mod:`~sim.experiments.runner` — the worker's function and the loop that stores rows;
- :mod:`~sim.experiments.stats` — intervals by a metric's kind (Wilson, bootstrap, t), paired differences;
- :mod:`~sim.experiments.replicate`, :mod:`~sim.experiments.compare`, :mod:`~sim.experiments.sweep` —
  Monte Carlo, layout comparison (common random numbers), parameter sweeps;
- :mod:`~sim.experiments.capacity` — can the other datacenters absorb one's users (N+1, N+2)?
- :mod:`~sim.experiments.findings` — the one-paragraph finding at the top of each report, in words;
- :mod:`~sim.experiments.report` and :mod:`~sim.experiments.text` — the HTML pages and the terminal text.

Nothing here is imported by the model; the model knows nothing of experiments.
"""

from sim.experiments.capacity import CapacityReport, capacity
from sim.experiments.compare import Comparison, compare
from sim.experiments.executors import Dask, Executor, InProcess, ProcessPool, RunFailed
from sim.experiments.replicate import Replications, replicate
from sim.experiments.store import ResultStore, StoreError, load_results
from sim.experiments.sweep import Sweep, SweepResult, load_sweep, run_sweep

__all__ = [
    "replicate",
    "Replications",
    "compare",
    "Comparison",
    "capacity",
    "CapacityReport",
    "load_sweep",
    "run_sweep",
    "Sweep",
    "SweepResult",
    "load_results",
    "ResultStore",
    "StoreError",
    "Executor",
    "InProcess",
    "ProcessPool",
    "Dask",
    "RunFailed",
]
