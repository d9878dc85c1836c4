"""Engines move traffic; everything else (scenario, cluster, faults, control plane, metrics) is shared.

An engine implements :class:`sim.engine.base.Engine`: it listens to the cluster, answers the control
plane's health checks and waits, delivers mail, and runs (``start``, ``drain_time``, ``finish``).
:class:`~sim.engine.base.EngineBase` holds what engines share. Register an engine in :data:`ENGINES`
under the name ``engine:`` uses in a scenario.
"""

from sim.engine.base import Engine, EngineBase, EngineClass
from sim.engine.flow import FlowEngine
from sim.engine.requests import RequestEngine
from sim.scenario import choose_engine

__all__ = ["ENGINES", "Engine", "EngineBase", "RequestEngine", "FlowEngine", "choose_engine"]

ENGINES: dict[str, EngineClass] = {"requests": RequestEngine, "flow": FlowEngine}
