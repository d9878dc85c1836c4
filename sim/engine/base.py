"""The engine seam: everything the rest of a run asks of whatever moves the traffic.

An engine is built as ``Engine(env, scenario, cluster, streams, recorder)`` (registered by name in
:data:`sim.engine.ENGINES`), and

- listens to the cluster (:class:`~sim.cluster.Listener`): ``server_down``, ``server_up``,
  ``rotation_changed``, ``dependency_changed``, ``load_changed``, ``version_changed``;
- answers the control plane (:class:`~sim.control.Probe`): ``probe``/``probe_all`` (would a health check
  be answered in time?), ``wait``/``wait_all`` (how long would a new request wait?), and declares what
  the control plane may skip: ``quiet_ok``, ``wakers``, ``wake_floor``, ``probe_drew``;
- delivers mail (:class:`~sim.mail.Deliverer`): ``deliver``;
- runs: ``start()`` when the clock starts, ``drain_time()`` past the scenario's duration, ``finish()``
  at the end (write out what it batched); the control plane sets ``crash_hook``, called with a server
  that runs out of memory.

:class:`EngineBase` holds what every engine shares: the wiring, the quiet-sweep declarations with their
defaults (an engine swept every interval), the drain time, the request types and the warm-ups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from sim.cluster import Listener
from sim.control import Probe
from sim.mail import Deliverer

if TYPE_CHECKING:
    import simpy

    from sim.cluster import Cluster
    from sim.recorder import Recorder
    from sim.rng import Streams
    from sim.scenario import Scenario, ServerGroup

__all__ = ["Engine", "EngineBase", "EngineClass", "RequestType", "request_types"]


class Engine(Listener, Probe, Deliverer, Protocol):
    """What a run asks of an engine (see the module docstring); :class:`EngineBase` implements the shared part."""

    crash_hook: Callable[[int], None] | None

    def start(self) -> None:
        """Start moving traffic (the clock is at 0)."""
        ...

    def drain_time(self) -> float:
        """How long after the scenario's duration the run goes on, so every request finishes or fails."""
        ...

    def finish(self) -> None:
        """At the end of the run: write out what was batched into the recorder."""
        ...


EngineClass = Callable[["simpy.Environment", "Scenario", "Cluster", "Streams", "Recorder"], Engine]
"""How an engine is built: ``Engine(env, scenario, cluster, streams, recorder)``."""


class RequestType(NamedTuple):
    """One type of user request: its share of the requests, its work (a multiple of the mailbox server's
    service time), the dependencies it calls (indices) and the bits it puts on a link it crosses.
    """

    share: float
    work: float
    deps: tuple[int, ...]
    bits: float


def request_types(scenario: Scenario) -> list[RequestType]:
    """The scenario's request types, in the order of ``workload.requests``."""
    dep_index = {d.id: i for i, d in enumerate(scenario.topology.dependencies)}
    return [RequestType(rt.share, rt.work, tuple(dep_index[d] for d in rt.dependencies), 8 * rt.size)
            for rt in scenario.workload.requests.values()]


class EngineBase:
    """The shared part of an engine. A subclass implements the listener methods, ``probe``, ``probe_all``,
    ``wait``, ``wait_all``, ``start`` and ``deliver``; it overrides ``finish`` if it batches records.

    Quiet sweeps: an engine whose answers change only when its state does (not as the clock runs) sets
    ``quiet_ok = True`` and calls :meth:`wake` after any change of its state that can alter an answer of
    ``probe_all`` or ``wait_all``; it may stay silent while every running server passes its checks for
    certain and waits less than ``wake_floor`` (the control plane lowers it to the smallest wait it
    tells apart). ``probe_all`` sets ``probe_drew`` when it drew any answer at random. The defaults are
    those of an engine swept every interval (see :class:`sim.control.Probe`).
    """

    quiet_ok: bool = False

    def __init__(
        self, env: simpy.Environment, scenario: Scenario, cluster: Cluster, streams: Streams, recorder: Recorder
    ):
        self.env, self.scenario, self.cluster, self.rec = env, scenario, cluster, recorder
        self.crash_hook: Callable[[int], None] | None = None
        self.wakers: list[Callable[[], None]] = []
        self.wake_floor = math.inf
        self.probe_drew = False
        groups = {g.id: g for d in scenario.topology.datacenters for g in d.servers}
        self.groups: list[ServerGroup] = [groups[s.group] for s in cluster.servers]  # per server

    def wake(self) -> None:
        """Tell the control plane's sleeping sweeps that an answer may have changed."""
        for wake in self.wakers:
            wake()

    def drain_time(self) -> float:
        """How long after the last arrival every request has certainly finished or failed
        (:meth:`~sim.scenario.ClientPolicy.drain_time`, which ``limits.max_drain`` bounds).
        """
        return self.scenario.policies.client.drain_time()

    def finish(self) -> None:
        """Nothing batched: the recorder's tables are final."""

    def warm_up(self, server: int) -> tuple[float, float] | None:
        """For ``server`` starting now: (until when, at what share of its speed) it warms up, or None."""
        warmup = self.groups[server].warmup
        if warmup.duration > 0 and warmup.capacity < 1.0:
            return self.env.now + warmup.duration, warmup.capacity
        return None
