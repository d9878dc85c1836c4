"""Engines move traffic; everything else (scenario, cluster, faults, control plane, metrics) is shared.

An engine implements :class:`sim.cluster.Listener` (react to servers stopping and starting, pools
changing) and :class:`sim.control.Probe` (answer health checks), plus ``start()`` and
``drain_time()`` and ``finish()``. Register it in :data:`ENGINES` under the name ``engine:`` uses in a scenario.
"""

from sim.engine.flow import FlowEngine
from sim.engine.requests import RequestEngine
from sim.scenario import choose_engine

__all__ = ["ENGINES", "RequestEngine", "FlowEngine", "choose_engine"]

ENGINES = {"requests": RequestEngine, "flow": FlowEngine}
