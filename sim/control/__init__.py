"""The control plane: health checks, database failover, the global traffic manager, overload and crash
under overload, metric alerts.

These are SimPy processes that watch the :class:`~sim.cluster.Cluster` and change it, whatever engine
moves the traffic. They ask the engine one question, through :class:`Probe`: would a health check sent
to this server now be answered in time? The :class:`Monitor` reads only the run's counters. One module
each: :mod:`~sim.control.sweeps` (the question, and the sweep every interval the health checks, the
traffic manager and the overload monitor share), :mod:`~sim.control.health`,
:mod:`~sim.control.failover`, :mod:`~sim.control.traffic`, :mod:`~sim.control.overload`,
:mod:`~sim.control.alerts`.
"""

from sim.control.alerts import Monitor
from sim.control.failover import Failover
from sim.control.health import HealthChecker
from sim.control.overload import OverloadMonitor, Restarter
from sim.control.sweeps import LATE, Probe, Sweeps, trigger_at
from sim.control.traffic import TrafficManager

__all__ = ["Probe", "Sweeps", "LATE", "trigger_at", "HealthChecker", "Failover", "TrafficManager",
           "OverloadMonitor", "Restarter", "Monitor"]
