"""cascadesim: simulate cascading failures in the datacenters of a global email service.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/quickstart.yaml")   # doctest: +SKIP
>>> result = sim.run(scenario, seed=1)                            # doctest: +SKIP
>>> result.write_report("reports/quickstart")                     # doctest: +SKIP
>>> reps = sim.replicate(scenario, replications=30)                # doctest: +SKIP
>>> reps.interval("availability")                                  # doctest: +SKIP
"""

from sim.errors import Problem, ScenarioError
from sim.loader import load_scenario, parse_scenario
from sim.result import Result
from sim.run import run
from sim.scenario import Scenario

__version__ = "0.1.0"

__all__ = ["__version__", "load_scenario", "parse_scenario", "run", "Result", "Scenario", "ScenarioError", "Problem",
           "replicate", "compare", "capacity", "load_sweep", "run_sweep", "load_results"]

# Experiments (sim.experiments) load on first use: ``import sim`` stays as light as one run needs.
_EXPERIMENTS = {"replicate", "compare", "capacity", "load_sweep", "run_sweep", "load_results"}


def __getattr__(name: str) -> object:
    if name in _EXPERIMENTS:
        import sim.experiments

        return getattr(sim.experiments, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
