"""Engines move traffic; everything else (scenario, cluster, faults, control plane, metrics) is shared.

An engine implements :class:`sim.cluster.Listener` (react to servers stopping and starting, pools
changing) and :class:`sim.control.Probe` (answer health checks), plus ``start()`` and
``drain_time()``. Register it in :data:`ENGINES` under the name ``engine:`` uses in a scenario.
"""

from sim.engine.requests import RequestEngine

__all__ = ["ENGINES", "RequestEngine"]

ENGINES = {"requests": RequestEngine}
