"""Engines move traffic; everything else (scenario, cluster, faults, control plane, metrics) is shared.

An engine implements :class:`sim.cluster.Listener` (react to servers stopping and starting, pools
changing) and :class:`sim.control.Probe` (answer health checks), plus ``start()`` and
``drain_time()`` and ``finish()``. Register it in :data:`ENGINES` under the name ``engine:`` uses in a scenario.
"""

from sim.engine.flow import FlowEngine
from sim.engine.requests import RequestEngine
from sim.scenario import ENGINE_AUTO_THRESHOLD, Scenario

__all__ = ["ENGINES", "RequestEngine", "FlowEngine", "choose_engine"]

ENGINES = {"requests": RequestEngine, "flow": FlowEngine}


def choose_engine(scenario: Scenario) -> str:
    """The engine a scenario runs on: its ``engine``, or for ``auto`` the flow engine above
    :data:`~sim.scenario.ENGINE_AUTO_THRESHOLD` expected user requests.
    """
    if scenario.engine != "auto":
        return scenario.engine
    from sim.workload import expected_requests

    expected = expected_requests(scenario, step=max(60.0, scenario.duration / 10_000))
    return "flow" if expected > ENGINE_AUTO_THRESHOLD else "requests"
