"""The state of the service during a run, independent of how traffic moves.

:class:`Cluster` turns the topology graph into integer-indexed tables (servers, datacenters, databases,
regions) and holds what faults and the control plane change: which servers are up, which the load
balancers send traffic to, which copy of each database is active, which datacenter serves each region.
Every change is recorded in the :class:`~sim.trace.Trace` with its cause, and announced to the engine
through the :class:`Listener` methods, so engines never poll. The load balancers' panic mode is judged here,
where their pool changes (:meth:`Cluster.batched_pools` announces many changes of a pool at once).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import networkx as nx
import numpy as np
import simpy

from sim.events import (
    BREAKER_CLOSED,
    BREAKER_OPEN,
    DATACENTER_DOWN,
    DATACENTER_UP,
    DEPENDENCY_DOWN,
    DEPENDENCY_SLOW,
    DEPENDENCY_SPEED_RESTORED,
    DEPENDENCY_UP,
    EJECTED,
    KINDS,
    MISWEIGHT,
    PANIC,
    PANIC_OVER,
    READMITTED,
    SERVER_DOWN,
    SERVER_LAUNCHED,
    SERVER_RETIRED,
    SERVER_UP,
    SURGE,
    SURGE_END,
    TRAFFIC_SHIFT,
    WEIGHTS_RESTORED,
)
from sim.network import Network
from sim.scenario import Scenario, ServiceTime
from sim.sizing import mix_work, server_capacity
from sim.software import GOOD, Version
from sim.topology import (
    database_copies,
    datacenters_for_region,
    paused_gc,
)
from sim.trace import Trace

__all__ = ["Cluster", "Server", "Listener", "Version", "GOOD"]


class Listener(Protocol):
    """What the cluster announces to whoever listens (the engine, the failover controller).

    A listener implements every method; those it does not care about do nothing.
    """

    def server_down(self, server: int) -> None:
        """Server ``server`` stopped: everything it holds is lost."""

    def server_up(self, server: int) -> None:
        """Server ``server`` is running again, empty."""

    def rotation_changed(self, datacenter: int) -> None:
        """The load balancers of ``datacenter`` send traffic to a different set of servers (or panic:
        ``Cluster.panicking``); within :meth:`Cluster.batched_pools`, once for all the changes made in it.
        """

    def dependency_changed(self, dependency: int) -> None:
        """A shared dependency went down, came back, or changed speed."""

    def load_changed(self, region: int) -> None:
        """The offered load of ``region`` was scaled (``Cluster.load_scale``)."""

    def version_changed(self, server: int) -> None:
        """Server ``server`` runs another software version (``Server.version``): a fresh process."""


@dataclass(slots=True)
class Server:
    """One mailbox server: what it is and whether it runs."""

    index: int
    id: str
    datacenter: int
    group: str
    workers: int
    service: ServiceTime
    frontend_time: float
    queue_limit: int | None
    labels: dict[str, str]
    down: int = 0  # how many faults hold it down; up when 0
    down_event: int | None = None
    up_event: int | None = None
    rotation_event: int | None = None
    overload_event: int | None = None  # while overloaded: the event that said so
    received_event: int | None = None  # the latest failover that made it active for a database
    in_rotation: bool = True
    drained: int = 0  # operators hold it out of rotation; health checks do not bring it back
    databases: list[int] = field(default_factory=list)
    version: Version = GOOD
    version_event: int | None = None  # the event that put the running version on it (None: from the start)
    spare: bool = False  # an autoscaler's: beyond its group's count, parked at the start, no database copies
    parked: bool = False  # a spare the autoscaler has not launched or has retired: down, drained, not a target

    @property
    def up(self) -> bool:
        """Whether the server is running."""
        return self.down == 0


class Cluster:
    """Indexed topology plus mutable service state. See the module docstring."""

    @paused_gc()
    def __init__(self, env: simpy.Environment, scenario: Scenario, graph: nx.Graph, trace: Trace):
        self.env = env
        self.scenario = scenario
        self.graph = graph
        self.trace = trace
        self.listeners: list[Listener] = []
        # Called before any change of state (engines that integrate over time catch up to now first).
        self.before_change: list[Callable[[], None]] = []
        topo = scenario.topology

        self.datacenter_ids = [d.id for d in topo.datacenters]
        dc_index = {name: i for i, name in enumerate(self.datacenter_ids)}
        self.region_ids = [r.id for r in topo.regions]
        region_index = {name: i for i, name in enumerate(self.region_ids)}

        self.servers: list[Server] = []
        groups = {g.id: g for d in topo.datacenters for g in d.servers}
        databases: list[tuple[str, dict]] = []
        for name, node in graph.nodes(data=True):  # in insertion (scenario) order, as nodes_of_kind gives them
            kind = node["kind"]
            if kind == "server":
                g = groups[node["group"]]
                self.servers.append(
                    Server(
                        index=len(self.servers),
                        id=name,
                        datacenter=dc_index[node["datacenter"]],
                        group=g.id,
                        workers=g.workers,
                        service=g.service_time,
                        frontend_time=g.frontend_time,
                        queue_limit=g.queue_limit,
                        labels=node["labels"],
                        spare=node["spare"],
                    )
                )
            elif kind == "database":
                databases.append((name, node))
        self.server_index = {s.id: s.index for s in self.servers}
        self.servers_of_dc: list[list[int]] = [[] for _ in self.datacenter_ids]
        for s in self.servers:
            self.servers_of_dc[s.datacenter].append(s.index)
        self.dc_down = [0] * len(self.datacenter_ids)
        self.dc_down_event: list[int | None] = [None] * len(self.datacenter_ids)
        self.dc_up_event: list[int | None] = [None] * len(self.datacenter_ids)
        # The server state as vectors and per-datacenter counts, kept in step by the methods below, so the
        # control plane and the metrics read them instead of looping over every server.
        n = len(self.servers)
        self.up_mask = np.ones(n, dtype=bool)  # down == 0
        self.rotation_mask = np.ones(n, dtype=bool)  # in_rotation
        self.drained_mask = np.zeros(n, dtype=bool)  # drained > 0
        self.parked_mask = np.zeros(n, dtype=bool)  # an autoscaler's spare, not running (see launch, retire)
        for s in self.servers:  # spares start parked: held down and drained, out of rotation, without events
            if s.spare:
                s.parked, s.down, s.drained, s.in_rotation = True, 1, 1, False
                self.parked_mask[s.index], self.up_mask[s.index] = True, False
                self.drained_mask[s.index], self.rotation_mask[s.index] = True, False
        self.up_count = [sum(not self.servers[i].parked for i in members) for members in self.servers_of_dc]
        self.healthy_count = list(self.up_count)  # servers up and in rotation, per datacenter
        # The load balancers' panic mode, per datacenter (see _pool_changed): judged from the servers they
        # know (not parked) and those of them in rotation, counted here. Every server they know starts in
        # rotation, so none starts in panic (its threshold is at most 100%).
        self.panic_threshold = scenario.policies.load_balancer.panic_threshold
        self.known_count = list(self.up_count)
        self.rotation_count = list(self.up_count)
        self.panicking = [False] * len(self.datacenter_ids)
        self._batched: dict[int, None] | None = None  # within batched_pools: the pools changed, in order
        work = mix_work(scenario)  # requests of the mix per second each serves when busy
        of_group = {g.id: server_capacity(g.workers, g.service_time.mean, work) for g in groups.values()}
        self._capacity = [of_group[s.group] for s in self.servers]
        self._healthy_capacity: list[float | None] = [None] * len(self.datacenter_ids)  # None: sum again
        # A datacenter whose servers all have the same capacity c: the loop's sum over m servers is c
        # added m times, whichever they are; tabulated (the same float) by m.
        self._capacity_sums: list[list[float] | None] = []
        for members in self.servers_of_dc:
            same = {self._capacity[i] for i in members}
            sums = None
            if len(same) == 1:
                c, total, sums = same.pop(), 0.0, [0.0]
                for _ in members:
                    total += c
                    sums.append(total)
            self._capacity_sums.append(sums)
        # Called after every change of server state (up, rotation, drain), with the server (None: any):
        # the control plane's sweeps sleep while nothing changes (see ``sim.control``).
        self.wakers: list[Callable[[int | None], None]] = []

        self.database_ids = [name for name, _ in databases]
        self.database_index = {name: i for i, name in enumerate(self.database_ids)}
        # Each database's copies as server indices (as database_copies names them, read from the nodes at
        # hand), and each server's databases in database order: one array of every copy's server, cut.
        held = [database_copies(graph, db) if data.get("copies") is None else data["copies"] for db, data in databases]
        counts = np.fromiter(map(len, held), dtype=np.int64, count=len(held))
        holders = np.fromiter(map(self.server_index.__getitem__, itertools.chain.from_iterable(held)),
                              dtype=np.int64, count=int(counts.sum()))
        flat, cuts = holders.tolist(), np.cumsum(counts).tolist()
        self.copies: list[list[int]] = [flat[a:b] for a, b in itertools.pairwise([0, *cuts])]
        by_server = np.repeat(np.arange(len(held)), counts)[np.argsort(holders, kind="stable")].tolist()
        cuts = np.cumsum(np.bincount(holders, minlength=n)).tolist()
        for server, (a, b) in zip(self.servers, itertools.pairwise([0, *cuts]), strict=True):
            server.databases = by_server[a:b]
        self.active = [c[0] for c in self.copies]  # server holding the active copy, -1 if none; see activate()
        self.active_log: list[int] = []  # the databases whose active copy changed, in order (see activate())
        # databases_of_region() for every region, in one pass over the databases (the same lists)
        self.region_databases: list[list[int]] = [[] for _ in self.region_ids]
        regions_of: dict[tuple[str, ...], list[int]] = {}  # the regions' indices, once per list of names
        for i, (_, data) in enumerate(databases):
            names = tuple(data["regions"])
            known = regions_of.get(names)
            if known is None:
                known = regions_of[names] = [region_index[r] for r in dict.fromkeys(names) if r in region_index]
            for k in known:
                self.region_databases[k].append(i)

        self.region_preference = [
            [dc_index[d] for d in datacenters_for_region(graph, r)] for r in self.region_ids
        ]
        self.rtt = [[0.0] * len(self.datacenter_ids) for _ in self.region_ids]
        for r in topo.regions:
            for dc_name, latency in r.datacenters.items():
                self.rtt[region_index[r.id]][dc_index[dc_name]] = latency
        n_dc = len(self.datacenter_ids)
        self.link_latency = [[0.0] * n_dc for _ in range(n_dc)]
        for link in topo.links:
            a, b = (dc_index[x] for x in link.between)
            self.link_latency[a][b] = self.link_latency[b][a] = link.latency
        self.route = [prefs[0] for prefs in self.region_preference]  # datacenter per region, -1 if none

        self.dependency_ids = [d.id for d in topo.dependencies]
        self.dependency_down = [0] * len(self.dependency_ids)
        self.dependency_factor = [1.0] * len(self.dependency_ids)  # service-time multiplier
        self.load_scale = [1.0] * len(self.region_ids)  # traffic multiplier (surges)
        self.misweights: dict[int, tuple[list[int], float]] = {}  # datacenter -> (servers, share)
        self.last_harm: list[int | None] = [None] * len(self.datacenter_ids)  # latest harmful event per dc
        self.shift_event: list[int | None] = [None] * len(self.datacenter_ids)  # latest traffic shift in/out
        self.network = Network(env, trace, topo.links, self.datacenter_ids)  # inter-datacenter links
        self.network.load_cause = self.link_load_cause
        self.network.harm = self.note_harm

    def load_cause(self, server: int) -> int | None:
        """Why ``server`` might be overloaded: the later of a failover onto it and its datacenter's
        latest harmful event (a peer crashed or ejected, users moved in).
        """
        s = self.servers[server]
        candidates = [c for c in (s.received_event, self.last_harm[s.datacenter]) if c is not None]
        return max(candidates) if candidates else None

    def link_load_cause(self, a: int, b: int) -> int | None:
        """Return the latest event that moved traffic onto the link between datacenters ``a`` and ``b``.

        That is a traffic shift into or out of either, or a failover onto a server in either.
        """
        servers = self.servers
        candidates = [self.shift_event[a], self.shift_event[b]]
        candidates += [servers[s].received_event for dc in (a, b) for s in self.servers_of_dc[dc]]
        known = [c for c in candidates if c is not None]
        return max(known) if known else None

    def changing(self) -> None:
        """About to change the state: let whoever integrates over time catch up to now first."""
        for hook in self.before_change:
            hook()

    def wake(self, server: int | None = None) -> None:
        """The state of ``server`` (None: of any) changed: wake whoever sleeps until it does (:attr:`wakers`)."""
        for wake in self.wakers:
            wake(server)

    def note_harm(self, dc: int, rid: int) -> None:
        """Remember ``rid`` as the latest harmful event in ``dc``: the cause emergent events point at."""
        self.last_harm[dc] = rid

    @property
    def now(self) -> float:
        """Simulated time."""
        return self.env.now

    # -------------------------------------------------------------------------------------- servers

    def server_down(self, server: int, cause: int | None, detail: str = "", kind: str = SERVER_DOWN) -> None:
        """A fault takes ``server`` down (faults stack: it is up again when all have ended); recorded as
        ``kind`` (the autoscaler's stop is ``server_retired``), harm in its datacenter if the kind is.
        """
        self.changing()
        s = self.servers[server]
        s.down += 1
        if s.down == 1:
            dc = s.datacenter
            self.up_mask[server] = False
            self.up_count[dc] -= 1
            if s.in_rotation:
                self.healthy_count[dc] -= 1
                self._healthy_capacity[dc] = None
            s.down_event = self.trace.record(self.now, kind, s.id, cause, detail)
            if KINDS[kind].harm:
                self.note_harm(s.datacenter, s.down_event)
            for listener in self.listeners:
                listener.server_down(server)
            self.wake(server)

    def server_up(self, server: int, cause: int | None, detail: str = "", kind: str = SERVER_UP) -> None:
        """A fault holding ``server`` down has ended (recorded as ``kind`` if it runs now)."""
        self.changing()
        s = self.servers[server]
        s.down -= 1
        if s.down == 0:
            dc = s.datacenter
            self.up_mask[server] = True
            self.up_count[dc] += 1
            if s.in_rotation:
                self.healthy_count[dc] += 1
                self._healthy_capacity[dc] = None
            s.up_event = self.trace.record(self.now, kind, s.id, cause, detail)
            for listener in self.listeners:
                listener.server_up(server)
            self.wake(server)

    def set_rotation(self, server: int, in_rotation: bool, cause: int | None, detail: str = "") -> int:
        """The load balancers eject ``server`` from their pool or readmit it; returns the event id."""
        self.changing()
        s = self.servers[server]
        self._rotate(server, in_rotation)
        rid = self.trace.record(self.now, READMITTED if in_rotation else EJECTED, s.id, cause, detail)
        s.rotation_event = rid
        if not in_rotation:
            self.note_harm(s.datacenter, rid)
        self._pool_changed(s.datacenter)
        self.wake(server)
        return rid

    def _rotate(self, server: int, in_rotation: bool) -> None:
        """Put ``server`` in the pool or take it out, keeping the counts (nothing recorded or announced)."""
        s = self.servers[server]
        if s.in_rotation != in_rotation:
            step = 1 if in_rotation else -1
            if s.down == 0:
                self.healthy_count[s.datacenter] += step
                self._healthy_capacity[s.datacenter] = None
            if not s.parked:
                self.rotation_count[s.datacenter] += step
        s.in_rotation = in_rotation
        self.rotation_mask[server] = in_rotation

    def _park(self, server: int, parked: bool) -> None:
        """Park ``server`` (the load balancers forget it) or unpark it, keeping the counts."""
        s = self.servers[server]
        if s.parked != parked:
            step = -1 if parked else 1
            self.known_count[s.datacenter] += step
            if s.in_rotation:
                self.rotation_count[s.datacenter] += step
        s.parked = parked
        self.parked_mask[server] = parked

    def _pool_changed(self, dc: int) -> None:
        """The pool of ``dc``'s load balancers changed: judge their panic mode, then announce the change
        to the listeners (at the end of :meth:`batched_pools`, within one).

        As Envoy does, the balancers panic while fewer than ``panic_threshold`` of the servers they know
        are in rotation, and then send to every server not drained (:func:`sim.engine.pools.pool`).
        Entering or leaving panic is recorded; panic counts as harm in the datacenter.
        """
        healthy, known = self.rotation_count[dc], self.known_count[dc]
        panic = self.panic_threshold > 0 and healthy < self.panic_threshold * known
        if panic != self.panicking[dc]:
            self.panicking[dc] = panic
            rid = self.trace.record(self.now, PANIC if panic else PANIC_OVER, self.datacenter_ids[dc],
                                    self.last_harm[dc] if panic else None, f"{healthy} of {known} servers healthy")
            if panic:
                self.note_harm(dc, rid)
        if self._batched is not None:
            self._batched[dc] = None
            return
        for listener in self.listeners:
            listener.rotation_changed(dc)

    @contextmanager
    def batched_pools(self) -> Iterator[None]:
        """Within it, the pools changed are announced to the listeners once each, at the end, in the order
        they first changed: a sweep that ejects or readmits thousands of servers (a datacenter's outage)
        has each engine rebuild the datacenter's pool once, not once per server. Everything else happens
        change by change as without it: the records and their causes, harm, panic, the wakes. Nothing may
        read a listener's pools inside it.
        """
        if self._batched is not None:  # within one already: that one announces
            yield
            return
        self._batched = {}
        try:
            yield
        finally:
            changed, self._batched = self._batched, None
            for dc in changed:
                for listener in self.listeners:
                    listener.rotation_changed(dc)

    # ---------------------------------------------------------------------------------- the autoscaler

    def launch(self, server: int, cause: int | None, detail: str = "") -> None:
        """The autoscaler starts parked ``server``: it runs (warming up, as after a restart) in its
        datacenter's pool, recorded as ``server_launched`` (unless a datacenter outage still holds it down).
        """
        self.changing()
        s = self.servers[server]
        self._park(server, False)
        s.drained -= 1
        self.drained_mask[server] = s.drained > 0
        self._rotate(server, True)
        self.server_up(server, cause, detail, kind=SERVER_LAUNCHED)
        s.rotation_event = cause
        self._pool_changed(s.datacenter)
        self.wake(server)

    def retire(self, server: int, cause: int | None) -> None:
        """The autoscaler takes ``server`` out of its pool to stop it (:meth:`stop`, after the drain)."""
        self.changing()
        s = self.servers[server]
        s.drained += 1
        self.drained_mask[server] = True
        if s.in_rotation:
            self._rotate(server, False)
            s.rotation_event = cause
        self._pool_changed(s.datacenter)
        self.wake(server)

    def stop(self, server: int, cause: int | None, detail: str = "") -> None:
        """The autoscaler stops retired ``server``: parked again, recorded as ``server_retired``."""
        self._park(server, True)
        self.server_down(server, cause, detail, kind=SERVER_RETIRED)

    # ---------------------------------------------------------------------------------- datacenters

    def datacenter_down(self, dc: int, cause: int | None, detail: str = "") -> None:
        """The whole datacenter goes dark: every server in it stops."""
        self.dc_down[dc] += 1
        if self.dc_down[dc] == 1:
            rid = self.trace.record(self.now, DATACENTER_DOWN, self.datacenter_ids[dc], cause, detail)
            self.dc_down_event[dc] = rid
            for s in self.servers_of_dc[dc]:
                self.server_down(s, rid, "datacenter down")
            self.wake()

    def datacenter_up(self, dc: int, cause: int | None, detail: str = "") -> None:
        """The datacenter's power and network are back; its servers start again."""
        self.dc_down[dc] -= 1
        if self.dc_down[dc] == 0:
            rid = self.trace.record(self.now, DATACENTER_UP, self.datacenter_ids[dc], cause, detail)
            self.dc_up_event[dc] = rid
            for s in self.servers_of_dc[dc]:
                self.server_up(s, rid, "datacenter up")
            self.wake()

    def healthy_servers(self, dc: int) -> int:
        """Servers of ``dc`` that are up and in the load balancers' pool (a count kept up to date)."""
        return self.healthy_count[dc]

    def healthy_capacity(self, dc: int) -> float:
        """Requests per second the servers of ``dc`` that are up and in rotation serve when busy.

        Summed in server order, as a loop over the servers would (so the float is the same): from a
        table when the datacenter's servers are alike, else again after a server joined or left the set.
        """
        sums = self._capacity_sums[dc]
        if sums is not None:
            return sums[self.healthy_count[dc]]
        capacity = self._healthy_capacity[dc]
        if capacity is None:
            capacity = 0.0
            servers, of = self.servers, self._capacity
            for i in self.servers_of_dc[dc]:
                s = servers[i]
                if s.down == 0 and s.in_rotation:
                    capacity += of[i]
            self._healthy_capacity[dc] = capacity
        return capacity

    def why_not_serving(self, dc: int) -> int | None:
        """The latest event that explains why ``dc`` serves no traffic (outage, crash or ejection)."""
        if self.dc_down[dc]:
            return self.dc_down_event[dc]
        candidates = [
            s.down_event if s.down else s.rotation_event
            for s in (self.servers[i] for i in self.servers_of_dc[dc])
            if s.down or not s.in_rotation
        ]
        known = [c for c in candidates if c is not None]
        return max(known) if known else None

    def why_serving(self, dc: int) -> int | None:
        """The latest event that brought ``dc`` back to serving: its power back, or a server of it
        restarted or readmitted to the pool.
        """
        known = [self.dc_up_event[dc]] + [
            max((e for e in (s.up_event, s.rotation_event) if e is not None), default=None)
            for s in (self.servers[i] for i in self.servers_of_dc[dc])
            if not s.down and s.in_rotation
        ]
        return max((c for c in known if c is not None), default=None)

    def set_route(self, region: int, dc: int, cause: int | None, detail: str = "") -> None:
        """The traffic manager sends ``region``'s users to ``dc`` (-1: nowhere)."""
        self.changing()
        old = self.route[region]
        self.route[region] = dc
        to = self.datacenter_ids[dc] if dc >= 0 else "nowhere"
        frm = self.datacenter_ids[old] if old >= 0 else "nowhere"
        rid = self.trace.record(self.now, TRAFFIC_SHIFT, self.region_ids[region], cause, f"{frm} -> {to}. {detail}")
        if dc >= 0:
            self.note_harm(dc, rid)  # the users it brings are a load the datacenter did not have
        for moved in (old, dc):  # their mailboxes may now be reached over a link
            if moved >= 0:
                self.shift_event[moved] = rid

    # ---------------------------------------------------------------------------------- databases

    def activate(self, db: int, server: int) -> None:
        """The copy of ``db`` on ``server`` is now the active one (-1: none is). The failover controller
        records why; this only changes the state and lets engines notice (``active_log``, read from where
        they left off).
        """
        self.changing()
        self.active[db] = server
        self.active_log.append(db)

    # ---------------------------------------------------------------------------------- dependencies

    def dependency_set(self, dep: int, down: bool, cause: int | None, detail: str = "") -> None:
        """A fault takes a shared dependency down (``down=True``) or ends."""
        self.changing()
        before = self.dependency_down[dep]
        self.dependency_down[dep] += 1 if down else -1
        after = self.dependency_down[dep]
        if (before == 0) != (after == 0):
            kind = DEPENDENCY_DOWN if after else DEPENDENCY_UP
            rid = self.trace.record(self.now, kind, self.dependency_ids[dep], cause, detail)
            if after:
                for dc in range(len(self.datacenter_ids)):
                    self.note_harm(dc, rid)
            for listener in self.listeners:
                listener.dependency_changed(dep)

    def dependency_slow(self, dep: int, factor: float, cause: int | None) -> None:
        """Multiply a dependency's service time by ``factor`` (a slowdown starts > 1, ends < 1)."""
        self.changing()
        self.dependency_factor[dep] *= factor
        kind = DEPENDENCY_SLOW if factor > 1 else DEPENDENCY_SPEED_RESTORED
        rid = self.trace.record(self.now, kind, self.dependency_ids[dep], cause,
                                f"service time x{self.dependency_factor[dep]:.3g}")
        if factor > 1:
            for dc in range(len(self.datacenter_ids)):  # every datacenter calls the shared dependencies
                self.note_harm(dc, rid)
        for listener in self.listeners:
            listener.dependency_changed(dep)

    # ---------------------------------------------------------------------------------- load

    def scale_load(self, region: int, factor: float, cause: int | None) -> None:
        """Multiply a region's offered load by ``factor`` (a surge starts > 1, ends < 1)."""
        self.changing()
        self.load_scale[region] *= factor
        kind = SURGE if factor > 1 else SURGE_END
        rid = self.trace.record(self.now, kind, self.region_ids[region], cause,
                                f"offered load x{self.load_scale[region]:.3g}")
        if factor > 1 and self.route[region] >= 0:
            self.note_harm(self.route[region], rid)
        for listener in self.listeners:
            listener.load_changed(region)

    # ---------------------------------------------------------------------------------- clients

    def breaker_changed(self, region: int, state: str) -> None:
        """The client breaker of ``region`` opened (``state`` "open") or closed. An opening is caused by
        the latest harm in the region's datacenter, and is harm there itself.
        """
        dc = self.route[region]
        cause = self.last_harm[dc] if dc >= 0 and state == "open" else None
        kind = BREAKER_OPEN if state == "open" else BREAKER_CLOSED
        rid = self.trace.record(self.now, kind, self.region_ids[region], cause, f"client breaker {state}")
        if state == "open" and dc >= 0:
            self.note_harm(dc, rid)

    # ---------------------------------------------------------------------------------- operators

    def drain(self, server: int, drained: bool, cause: int | None, detail: str | None = None) -> None:
        """Operators take ``server`` out of rotation (``drained``) or put it back.

        Health checks never readmit a drained server. ``detail`` says why (default: an operator did it).
        """
        s = self.servers[server]
        s.drained += 1 if drained else -1
        self.drained_mask[server] = s.drained > 0
        if drained and s.drained == 1 and s.in_rotation:
            self.set_rotation(server, False, cause, detail or "drained by an operator")
        elif not drained and s.drained == 0 and not s.in_rotation and s.down == 0:
            self.set_rotation(server, True, cause, detail or "undrained by an operator")
        self.wake(server)

    def misweight(self, servers: list[int], share: float, cause: int | None) -> None:
        """Load balancers send ``share`` of each affected datacenter's traffic to ``servers`` (0 ends it)."""
        self.changing()
        by_dc: dict[int, list[int]] = {}
        for i in servers:
            by_dc.setdefault(self.servers[i].datacenter, []).append(i)
        for dc, members in by_dc.items():
            if share > 0:
                self.misweights[dc] = (members, share)
            else:
                self.misweights.pop(dc, None)
            names = ", ".join(self.servers[i].id for i in members)
            self.trace.record(self.now, MISWEIGHT if share > 0 else WEIGHTS_RESTORED,
                              self.datacenter_ids[dc], cause, f"{share:.0%} of traffic to {names}")
            self._pool_changed(dc)

    # ---------------------------------------------------------------------------------- software

    def set_version(
        self, server: int, version: Version, kind: str, cause: int | None, detail: str = ""
    ) -> int:
        """``server`` runs ``version`` from now (an update or a rollback, recorded as ``kind``).

        Returns the event id. A version that harms (slower, errors, leaks) is the latest harm of its
        datacenter, so what it sets off (overload, breakers) points back at it.
        """
        self.changing()
        s = self.servers[server]
        s.version = version
        rid = self.trace.record(self.now, kind, s.id, cause, detail)
        s.version_event = rid
        if version != GOOD:
            self.note_harm(s.datacenter, rid)
        for listener in self.listeners:
            listener.version_changed(server)
        return rid
