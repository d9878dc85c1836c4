"""cascadesim: simulate cascading failures in the datacenters of a global email service.

>>> import sim
>>> scenario = sim.load_scenario("scenarios/quickstart.yaml")   # doctest: +SKIP
>>> result = sim.run(scenario, seed=1)                            # doctest: +SKIP
>>> result.write_report("reports/quickstart")                     # doctest: +SKIP
"""

from sim.errors import Problem, ScenarioError
from sim.loader import load_scenario, parse_scenario
from sim.result import Result
from sim.run import run
from sim.scenario import Scenario

__version__ = "0.1.0"

__all__ = ["__version__", "load_scenario", "parse_scenario", "run", "Result", "Scenario", "ScenarioError", "Problem"]
