"""cascadesim: simulate cascading failures in the datacenters of a global email service.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/quickstart.yaml")   # doctest: +SKIP
>>> result = sim.run(scenario, seed=1)                            # doctest: +SKIP
>>> result.write_report("reports/quickstart")                     # doctest: +SKIP
>>> reps = sim.replicate(scenario, replications=30)                # doctest: +SKIP
>>> reps.interval("availability")                                  # doctest: +SKIP
"""

from pathlib import Path

from sim.errors import Problem, ScenarioError
from sim.loader import load_scenario, parse_scenario
from sim.result import Result
from sim.run import run
from sim.scenario import Scenario
from sim.version import VERSION

__version__ = VERSION

__all__ = ["__version__", "load_scenario", "parse_scenario", "run", "write_report", "Result", "Scenario",
           "ScenarioError", "Problem", "replicate", "compare", "capacity", "load_sweep", "run_sweep", "load_results"]

# Experiments (sim.experiments) load on first use: ``import sim`` stays as light as one run needs.
_EXPERIMENTS = {"replicate", "compare", "capacity", "load_sweep", "run_sweep", "load_results"}


def __getattr__(name: str) -> object:
    if name in _EXPERIMENTS:
        import sim.experiments

        return getattr(sim.experiments, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def write_report(result: Result, directory: str | Path | None = None) -> Path:
    """Write a run's ``summary.json``, ``events.jsonl``, CSV series and reports; return the folder.

    The default folder is ``reports/<scenario name>``. ``result.write_report(directory)`` does the same:
    the model never imports the report layer, so this package, which sees both, plugs it in
    (:attr:`Result.writer`); :mod:`sim.report` loads on first use.
    """
    from sim.report import write_report as write

    return write(result, Path(directory) if directory else Path("reports") / result.scenario.name)


Result.writer = write_report
