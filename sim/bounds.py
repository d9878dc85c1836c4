"""The structure-only bound: what a layout's structure alone says about its availability.

How many servers, where each database's copies are, how often servers and datacenters fail at random
and how fast the crews repair them fix the share of the time a database has every copy down, with no
traffic simulated (the Markov models of :mod:`sim.reliability`). A planner shows it beside its simulated
downtime: a run adds failover delays and overloads, and a client retry that outlasts a short loss takes
a little off.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import simpy

from sim.cluster import Cluster, Server
from sim.faults import DatacenterOutage, ServerCrash, select_targets
from sim.reliability import minutes_per_year, set_probability
from sim.rng import Streams
from sim.scenario import Scenario
from sim.topology import build_topology
from sim.trace import Trace

__all__ = ["RegionBound", "StructureBound", "structure_bound"]


@dataclass(frozen=True)
class RegionBound:
    """The structure-only bound of one region.

    ``unavailability``: the long-run share of the region's requests whose database has every copy down
    (requests pick one of the region's databases uniformly); ``minutes_per_year``: the same in expected
    minutes a year. Both ``None`` when the region has no databases.
    """

    region: str
    databases: int
    unavailability: float | None
    minutes_per_year: float | None


@dataclass(frozen=True)
class StructureBound:
    """The bound per region, and which faults it counts: ``faults`` (ids), ``left_out`` ``(id, why)``."""

    regions: tuple[RegionBound, ...]
    faults: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]


@dataclass(frozen=True, eq=False)
class _Process:
    """One random fault's failures over its ``n`` targets (servers or datacenters)."""

    fault: str
    n: int
    mtbf: float
    mttr: float
    crews: int | None

    def probability(self, down: int, up: int) -> float:
        """``down`` given targets all down and ``up`` others all up."""
        return set_probability(self.n, down, up, self.mtbf, self.mttr, self.crews)


def structure_bound(scenario: Scenario, seed: int | None = None) -> StructureBound:
    """The long-run share of each region's requests that find every copy of their database down.

    From the scenario's random ``server_crash`` and ``datacenter_outage`` faults (``mtbf``/``mttr``, with
    their ``repair`` crews) and where the databases' copies are: a server is down while its crash fault
    or its datacenter's outage is active, faults fail independently of each other, and targets are picked
    as a run with ``seed`` (default: the scenario's) picks them, from the same stream. Left out, and
    listed: scheduled faults (``at``), other kinds, and a fault with a target that an earlier fault of
    its kind already fails (the model gives each server one failure process).

    >>> from sim.loader import parse_scenario
    >>> from sim.topology import EXAMPLE
    >>> text = EXAMPLE + "faults: [{id: hw, kind: server_crash, target: {}, mtbf: 99h, mttr: 1h}]"
    >>> region = structure_bound(parse_scenario(text)).regions[0]
    >>> round(region.unavailability, 10), round(region.minutes_per_year, 2)  # two copies, each down 1%
    (0.0001, 52.56)
    """
    seed = scenario.seed if seed is None else seed
    cluster = Cluster(simpy.Environment(), scenario, build_topology(scenario), Trace())
    streams = Streams(seed)
    crashes: dict[int, _Process] = {}  # server -> the process that fails it
    outages: dict[int, _Process] = {}  # datacenter -> the process that takes it out
    counted: list[str] = []
    left_out: list[tuple[str, str]] = []
    for i, fault in enumerate(scenario.faults):
        fid = scenario.fault_id(i)
        if fault.mtbf is None or fault.mttr is None:
            left_out.append((fid, "scheduled (at): not part of the long run"))
            continue
        if isinstance(fault, ServerCrash):
            owner = crashes
        elif isinstance(fault, DatacenterOutage):
            owner = outages
        else:
            left_out.append((fid, f"{fault.kind}: loses no database copy"))
            continue
        targets = select_targets(cluster, fault.targets, fault.target, streams.generator(f"fault/{fid}"))
        if not targets:
            left_out.append((fid, "no target matched"))
            continue
        taken = [(index, name) for index, name in targets if index in owner]
        if taken:
            index, name = taken[0]
            left_out.append((fid, f"{name} already fails with fault {owner[index].fault} (one process each)"))
            continue
        crews = None if fault.repair is None else fault.repair.crews
        process = _Process(fid, len(targets), fault.mtbf, fault.mttr, crews)
        for index, _ in targets:
            owner[index] = process
        counted.append(fid)

    cache: dict[tuple[int, ...], float] = {}
    regions = []
    for r, name in enumerate(cluster.region_ids):
        dbs = cluster.region_databases[r]
        if not dbs:
            regions.append(RegionBound(name, 0, None, None))
            continue
        total = 0.0
        for d in dbs:
            copies = tuple(sorted(cluster.copies[d]))
            if copies not in cache:
                cache[copies] = _all_copies_down(copies, cluster.servers, crashes, outages)
            total += cache[copies]
        u = total / len(dbs)
        regions.append(RegionBound(name, len(dbs), u, minutes_per_year(u)))
    return StructureBound(tuple(regions), tuple(counted), tuple(left_out))


def _all_copies_down(
    copies: tuple[int, ...], servers: list[Server], crashes: dict[int, _Process], outages: dict[int, _Process]
) -> float:
    """P(every server of ``copies`` down), summed over which of their datacenters are out.

    Given the datacenters out (their outage processes: those out, the others of the same process up),
    the copies outside them must all have crashed, each crash process independently.
    """
    if not copies:
        return 1.0  # a database without a copy is never there
    dcs = list(dict.fromkeys(sorted(servers[s].datacenter for s in copies)))
    exposed = [d for d in dcs if d in outages]
    processes = list(dict.fromkeys(outages[d] for d in exposed))  # in datacenter order: a fixed sum
    total = 0.0
    for out in product((False, True), repeat=len(exposed)):
        dark = {d for d, o in zip(exposed, out, strict=True) if o}
        p = 1.0
        for process in processes:
            mine = [d for d in exposed if outages[d] is process]
            down = sum(1 for d in mine if d in dark)
            p *= process.probability(down, len(mine) - down)
        standing = [s for s in copies if servers[s].datacenter not in dark]
        if any(s not in crashes for s in standing):
            continue  # a copy on a server that never crashes, in a datacenter still up
        for process in dict.fromkeys(crashes[s] for s in standing):
            p *= process.probability(sum(1 for s in standing if crashes[s] is process), 0)
        total += p
    return min(1.0, total)
