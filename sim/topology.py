"""The topology as a networkx graph, and the questions asked of it as free functions.

Nodes carry ``kind``: ``region``, ``datacenter``, ``load_balancer``, ``server``, ``database``,
``dependency``; a server carries ``spare`` (an autoscaler's: not running at the start, no database
copies), a database ``copies`` (a tuple of the servers holding one, in order of preference) and
``regions``. Edges carry ``kind``:

- ``serves`` region — datacenter, with ``latency`` (round-trip seconds);
- ``link`` datacenter — datacenter, with ``capacity`` (bit/s) and ``latency``;
- ``member`` datacenter — load balancer / server;
- ``pool`` load balancer — server;
- ``copy`` database — server, with ``rank`` (0 is the preferred active copy);
- ``uses`` dependency — datacenter (every datacenter calls the shared dependencies).

The edges between servers and their datacenter, load balancers and databases (two million at 100,000
servers) share one attribute dict per kind (and rank), and the servers of a group share their
``labels``, the databases of a group their ``regions``: read them, do not change them in place.

>>> from sim.loader import parse_scenario
>>> G = build_topology(parse_scenario(EXAMPLE))
>>> database_copies(G, "db-0001")
['mbx-a-01', 'mbx-b-01']
>>> datacenters_for_region(G, "users")
['dc-a', 'dc-b']
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import networkx as nx

from sim.scenario import Scenario

__all__ = [
    "build_topology",
    "nodes_of_kind",
    "servers_in",
    "datacenter_of",
    "database_copies",
    "databases_on",
    "databases_of_region",
    "datacenters_for_region",
    "reachable",
    "regions_cut_off",
    "server_id",
    "database_id",
    "paused_gc",
]

EXAMPLE = """
name: doc
duration: 1h
topology:
  regions: [{id: users, datacenters: {dc-a: 10ms, dc-b: 40ms}}]
  datacenters:
    - {id: dc-a, servers: [{id: mbx-a, count: 2, service_time: 10ms}]}
    - {id: dc-b, servers: [{id: mbx-b, count: 2, service_time: 10ms}]}
  links: [{between: [dc-a, dc-b], capacity: 10Gbps, latency: 30ms}]
  databases: [{id: db, count: 2, placement: [{datacenter: dc-a}, {datacenter: dc-b}]}]
workload: {regions: {users: {peak: 10/s}}}
"""


def server_id(group: str, n: int) -> str:
    """Id of server ``n`` (from 1) of a server group: ``mbx-eu-07``."""
    return f"{group}-{n:02d}"


def database_id(group: str, n: int) -> str:
    """Id of database ``n`` (from 1) of a database group: ``db-eu-0042``."""
    return f"{group}-{n:04d}"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building large tables of long-lived objects (it would
    scan the growing heap again and again: a third of the time at 10,000 servers). Also a decorator.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@paused_gc()
def build_topology(scenario: Scenario) -> nx.Graph:
    """Build the typed graph of ``scenario``'s topology.

    Database copies are placed deterministically: for each datacenter in a group's placement, copy
    ``k`` of database ``n`` goes to server ``(n + k * stride) mod servers`` of that datacenter, which
    spreads active copies evenly and never puts two copies of one database on one server.
    """
    topo = scenario.topology
    G = nx.Graph(name=scenario.name)
    member, pool = {"kind": "member"}, {"kind": "pool"}  # shared by the edges of servers (see the module)
    for region in topo.regions:
        G.add_node(region.id, kind="region", users=region.users)
    dc_servers: dict[str, list[str]] = {}
    for dc in topo.datacenters:
        G.add_node(dc.id, kind="datacenter", location=dc.location, labels=dict(dc.labels))
        lbs = [f"{dc.id}/lb-{i}" for i in range(1, dc.load_balancers + 1)]
        for lb in lbs:
            G.add_node(lb, kind="load_balancer", datacenter=dc.id)
            G.add_edge(dc.id, lb, kind="member")
        servers = dc_servers[dc.id] = []
        for group in dc.servers:  # added in bulk (much faster), in the order one at a time would use
            ids = [server_id(group.id, n) for n in range(1, group.slots + 1)]
            labels = {**dc.labels, **group.labels}  # one dict for the group (see the module)
            _add_nodes(G, (
                (sid, {"kind": "server", "datacenter": dc.id, "group": group.id, "workers": group.workers,
                       "labels": labels, "spare": n > group.count})
                for n, sid in enumerate(ids, start=1)
            ))
            ends = (dc.id, *lbs)
            _add_edges(G, ((sid, ends) for sid in ids), [member] + [pool] * len(lbs))
            servers.extend(ids[:group.count])  # an autoscaler's spares hold no database copies
    for region in topo.regions:
        for dc_name, latency in region.datacenters.items():
            G.add_edge(region.id, dc_name, kind="serves", latency=latency)
    for link in topo.links:
        a, b = link.between
        G.add_edge(a, b, kind="link", capacity=link.capacity, latency=link.latency)
    for dep in topo.dependencies:
        G.add_node(dep.id, kind="dependency", role=dep.kind, workers=dep.workers)
        for dc in topo.datacenters:
            G.add_edge(dep.id, dc.id, kind="uses")
    all_regions = [r.id for r in topo.regions]
    for db_group in topo.databases:
        ids = [database_id(db_group.id, n) for n in range(1, db_group.count + 1)]
        regions = list(db_group.regions or all_regions)  # one list for the group (see the module)
        ranks = []  # per copy rank, the server of each database: servers[(n + k * stride) % len(servers)]
        for place in db_group.placement:
            servers = dc_servers[place.datacenter]
            stride = max(1, len(servers) // place.copies)
            for k in range(place.copies):
                start = k * stride % len(servers)
                turn = servers[start:] + servers[:start]
                ranks.append((turn * (db_group.count // len(servers) + 1))[:db_group.count])
        placed = list(zip(*ranks, strict=True))  # tuples: a million lists would weigh on the garbage collector
        _add_nodes(G, (
            (did, {"kind": "database", "group": db_group.id, "regions": regions, "copies": copies})
            for did, copies in zip(ids, placed, strict=True)
        ))
        _add_edges(G, zip(ids, placed, strict=True), [{"kind": "copy", "rank": rank} for rank in range(len(ranks))])
    return G


def _add_nodes(G: nx.Graph, nodes: Iterable[tuple[str, dict]]) -> None:
    """``G.add_nodes_from(nodes)`` for (node, attributes) pairs, each node keeping its own dict as given."""
    node, adj = G._node, G._adj
    for n, data in nodes:
        if n in node:
            node[n].update(data)
        else:
            node[n], adj[n] = data, {}


def _add_edges(G: nx.Graph, stars: Iterable[tuple[str, Sequence[str]]], data: list[dict]) -> None:
    """``G.add_edges_from`` for stars of edges between nodes of ``G``: for each (node, others), in order, an
    edge to each of the others, the ``i``-th carrying the shared attribute dict ``data[i]``. The adjacency
    is written in one pass, without a dict per edge (networkx's loop copies two dicts an edge: most of the
    topology's build at 100,000 servers).
    """
    adj = G._adj
    for node, others in stars:
        around = adj[node]
        for other, attributes in zip(others, data, strict=True):
            if other in around:  # an edge given twice: its attributes merged, in a dict of its own
                attributes = {**around[other], **attributes}
            around[other] = adj[other][node] = attributes


def nodes_of_kind(G: nx.Graph, kind: str) -> list[str]:
    """All nodes of one kind, in insertion (scenario) order."""
    return [n for n, k in G.nodes(data="kind") if k == kind]


def _neighbors(G: nx.Graph, node: str, edge_kind: str) -> Iterable[tuple[str, dict]]:
    for other, data in G[node].items():
        if data.get("kind") == edge_kind:
            yield other, data


def servers_in(G: nx.Graph, datacenter: str) -> list[str]:
    """Return the mailbox servers of a datacenter, in scenario order."""
    return [n for n, _ in _neighbors(G, datacenter, "member") if G.nodes[n]["kind"] == "server"]


def datacenter_of(G: nx.Graph, node: str) -> str:
    """Return the datacenter a server or load balancer belongs to."""
    return G.nodes[node]["datacenter"]


def database_copies(G: nx.Graph, database: str) -> list[str]:
    """Servers holding a copy of ``database``, in activation preference (active copy first): the node's
    ``copies`` (``build_topology`` keeps them in order, as the copy edges' ranks), or from its edges.
    """
    held = G.nodes[database].get("copies")
    if held is not None:
        return list(held)
    copies = [(data["rank"], server) for server, data in G.adj[database].items() if data.get("kind") == "copy"]
    copies.sort(key=_first)  # stable: equal ranks keep the graph's order
    return [server for _, server in copies]


def _first(item: tuple[int, str]) -> int:
    return item[0]


def databases_on(G: nx.Graph, server: str) -> list[str]:
    """Databases with a copy on ``server``."""
    return [db for db, _ in _neighbors(G, server, "copy")]


def databases_of_region(G: nx.Graph, region: str) -> list[str]:
    """Databases holding the mailboxes of users in ``region``."""
    return [n for n, d in G.nodes(data=True) if d["kind"] == "database" and region in d["regions"]]


def datacenters_for_region(G: nx.Graph, region: str) -> list[str]:
    """Datacenters that may serve ``region``, nearest (lowest round-trip time) first."""
    options = sorted(_neighbors(G, region, "serves"), key=lambda item: (item[1]["latency"], item[0]))
    return [dc for dc, _ in options]


def reachable(G: nx.Graph, source: str, without: Iterable[str] = ()) -> set[str]:
    """Nodes still connected to ``source`` once the nodes in ``without`` are gone."""
    gone = set(without)
    if source in gone:
        return set()
    view = nx.subgraph_view(G, filter_node=lambda n: n not in gone)
    return set(nx.node_connected_component(view, source))


def regions_cut_off(G: nx.Graph, without: Iterable[str]) -> list[str]:
    """Regions left with no datacenter that may serve them once ``without`` (datacenters) are gone."""
    gone = set(without)
    return [r for r in nodes_of_kind(G, "region") if all(dc in gone for dc in datacenters_for_region(G, r))]
