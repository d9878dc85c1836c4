"""The topology graph and the free functions that answer questions about it."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.loader import parse_scenario
from sim.topology import (
    EXAMPLE,
    build_topology,
    database_copies,
    database_id,
    databases_of_region,
    databases_on,
    datacenter_of,
    datacenters_for_region,
    nodes_of_kind,
    reachable,
    regions_cut_off,
    server_id,
    servers_in,
)

TEXT = """\
name: topo
duration: 1h
topology:
  regions:
    - {id: europe, users: 1000, datacenters: {eu-west: 10ms, eu-north: 30ms, us-east: 90ms}}
    - {id: america, datacenters: {us-east: 5ms, eu-west: 80ms}}
    - {id: nordics, datacenters: {eu-north: 8ms, eu-west: 8ms}}
  datacenters:
    - id: eu-west
      load_balancers: 2
      labels: {zone: a, tier: gold}
      servers:
        - {id: we, count: 4, workers: 8, service_time: 20ms, labels: {tier: silver}}
    - id: eu-north
      load_balancers: 1
      servers:
        - {id: nr, count: 3, service_time: 20ms}
    - id: us-east
      servers:
        - {id: us-a, count: 2, service_time: 20ms}
        - {id: us-b, count: 1, service_time: 20ms}
  links:
    - {between: [eu-west, eu-north], capacity: 40Gbps, latency: 25ms}
    - {between: [eu-west, us-east], capacity: 10Gbps, latency: 80ms}
  databases:
    - id: db-eu
      count: 6
      regions: [europe, nordics]
      placement: [{datacenter: eu-west, copies: 2}, {datacenter: eu-north}]
    - id: db-us
      count: 2
      placement: [{datacenter: us-east}]
  dependencies:
    - {id: directory, service_time: 2ms}
workload:
  regions: {europe: {peak: 10/s}}
"""


@pytest.fixture(scope="module")
def G():
    return build_topology(parse_scenario(TEXT))


def test_ids():
    assert server_id("mbx-eu", 7) == "mbx-eu-07"
    assert server_id("mbx-eu", 123) == "mbx-eu-123"
    assert database_id("db-eu", 42) == "db-eu-0042"


def test_nodes_and_their_kinds(G):
    assert nodes_of_kind(G, "region") == ["europe", "america", "nordics"]
    assert nodes_of_kind(G, "datacenter") == ["eu-west", "eu-north", "us-east"]
    assert nodes_of_kind(G, "load_balancer") == [
        "eu-west/lb-1",
        "eu-west/lb-2",
        "eu-north/lb-1",
        "us-east/lb-1",
        "us-east/lb-2",
    ]
    assert nodes_of_kind(G, "server") == [
        "we-01",
        "we-02",
        "we-03",
        "we-04",
        "nr-01",
        "nr-02",
        "nr-03",
        "us-a-01",
        "us-a-02",
        "us-b-01",
    ]
    assert nodes_of_kind(G, "database") == [database_id("db-eu", n) for n in range(1, 7)] + [
        "db-us-0001",
        "db-us-0002",
    ]
    assert nodes_of_kind(G, "dependency") == ["directory"]
    assert G.graph["name"] == "topo"


def test_node_attributes(G):
    assert G.nodes["europe"]["users"] == 1000
    server = G.nodes["we-02"]
    assert (server["datacenter"], server["group"], server["workers"]) == ("eu-west", "we", 8)
    assert server["labels"] == {"zone": "a", "tier": "silver"}  # the group's labels win over the datacenter's
    assert G.nodes["nr-01"]["workers"] == 4  # default
    assert G.nodes["db-eu-0001"]["regions"] == ["europe", "nordics"]
    assert G.nodes["db-us-0001"]["regions"] == [
        "europe",
        "america",
        "nordics",
    ]  # no regions given: all of them


def test_edges(G):
    assert G.edges["europe", "eu-west"] == {"kind": "serves", "latency": 0.01}
    assert G.edges["eu-west", "eu-north"] == {"kind": "link", "capacity": 40e9, "latency": 0.025}
    assert G.edges["eu-west", "we-01"]["kind"] == "member"
    assert G.edges["eu-west/lb-2", "we-04"]["kind"] == "pool"
    assert G.edges["directory", "us-east"]["kind"] == "uses"
    assert not G.has_edge("eu-north", "us-east")


def test_servers_in_and_datacenter_of(G):
    assert servers_in(G, "eu-west") == ["we-01", "we-02", "we-03", "we-04"]
    assert servers_in(G, "us-east") == ["us-a-01", "us-a-02", "us-b-01"]
    assert datacenter_of(G, "nr-02") == "eu-north"
    assert datacenter_of(G, "eu-west/lb-1") == "eu-west"


def test_database_copies_in_activation_order(G):
    # Two copies in eu-west (stride 4 // 2 = 2), then one in eu-north; the first is the active copy.
    assert database_copies(G, "db-eu-0001") == ["we-01", "we-03", "nr-01"]
    assert database_copies(G, "db-eu-0002") == ["we-02", "we-04", "nr-02"]
    assert database_copies(G, "db-eu-0004") == ["we-04", "we-02", "nr-01"]
    assert database_copies(G, "db-eu-0005") == ["we-01", "we-03", "nr-02"]
    assert database_copies(G, "db-us-0002") == ["us-a-02"]
    ranks = [G.edges["db-eu-0001", s]["rank"] for s in database_copies(G, "db-eu-0001")]
    assert ranks == [0, 1, 2]


def test_databases_on_is_the_inverse_of_copies(G):
    assert sorted(databases_on(G, "we-01")) == ["db-eu-0001", "db-eu-0003", "db-eu-0005"]
    for server in nodes_of_kind(G, "server"):
        for db in databases_on(G, server):
            assert server in database_copies(G, db)
    for db in nodes_of_kind(G, "database"):
        for server in database_copies(G, db):
            assert db in databases_on(G, server)


def test_databases_of_region(G):
    assert databases_of_region(G, "america") == ["db-us-0001", "db-us-0002"]
    assert len(databases_of_region(G, "europe")) == 8


def test_datacenters_for_region_nearest_first(G):
    assert datacenters_for_region(G, "europe") == ["eu-west", "eu-north", "us-east"]
    assert datacenters_for_region(G, "america") == ["us-east", "eu-west"]
    assert datacenters_for_region(G, "nordics") == ["eu-north", "eu-west"]  # a tie goes by name


def test_reachable(G):
    assert reachable(G, "europe") == set(G.nodes)
    assert reachable(G, "europe", without=["europe"]) == set()
    # Without eu-west's and us-east's datacenters, america is on its own.
    assert reachable(G, "america", without=["us-east", "eu-west"]) == {"america"}
    # The shared dependency still joins the other datacenters; eu-west's load balancers hang off its
    # servers and the datacenter only.
    west = ["eu-west", *servers_in(G, "eu-west")]
    left = reachable(G, "nordics", without=west)
    assert {"eu-north", "nr-01", "directory", "us-east", "america", "europe", "db-eu-0001"} <= left
    assert not left & {"eu-west/lb-1", "eu-west/lb-2", *west}


def test_regions_cut_off(G):
    assert regions_cut_off(G, []) == []
    assert regions_cut_off(G, ["eu-west"]) == []
    assert regions_cut_off(G, ["eu-west", "us-east"]) == ["america"]
    assert regions_cut_off(G, ["eu-west", "eu-north"]) == ["nordics"]
    assert regions_cut_off(G, ["eu-west", "eu-north", "us-east"]) == ["europe", "america", "nordics"]


def test_module_example():
    G = build_topology(parse_scenario(EXAMPLE))
    assert database_copies(G, "db-0001") == ["mbx-a-01", "mbx-b-01"]
    assert datacenters_for_region(G, "users") == ["dc-a", "dc-b"]


LAYOUT = """\
name: layout
duration: 1h
topology:
  regions: [{{id: users, datacenters: {{dc-a: 1ms, dc-b: 2ms}}}}]
  datacenters:
    - {{id: dc-a, servers: [{{id: a, count: {a}, service_time: 10ms}}]}}
    - {{id: dc-b, servers: [{{id: b, count: {b}, service_time: 10ms}}]}}
  databases:
    - id: db
      count: {dbs}
      placement: [{{datacenter: dc-a, copies: {ca}}}, {{datacenter: dc-b, copies: {cb}}}]
workload: {{regions: {{users: {{peak: 1/s}}}}}}
"""


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_never_two_copies_on_one_server_and_actives_spread(data):
    a, b = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    ca, cb = data.draw(st.integers(1, a)), data.draw(st.integers(1, b))
    dbs = data.draw(st.integers(1, 40))
    G = build_topology(parse_scenario(LAYOUT.format(a=a, b=b, ca=ca, cb=cb, dbs=dbs)))
    active = Counter()
    for db in nodes_of_kind(G, "database"):
        copies = database_copies(G, db)
        assert len(copies) == ca + cb
        assert len(set(copies)) == len(copies)  # never two copies of one database on one server
        assert [datacenter_of(G, s) for s in copies] == ["dc-a"] * ca + ["dc-b"] * cb  # placement order
        active[copies[0]] += 1
    counts = [active.get(s, 0) for s in servers_in(G, "dc-a")]
    assert max(counts) - min(counts) <= 1  # active copies spread round-robin


def test_the_direct_build_is_the_graph_networkx_would_build(G):
    """``build_topology`` writes nodes and edges into networkx's own dicts (``_add_nodes``, ``_add_edges``)
    to build 100,000-server fleets in seconds. The same nodes and edges given to networkx's public
    ``add_nodes_from`` / ``add_edges_from`` must give the same graph, its nodes and edges listed in the
    same order, with the same attributes: a guard for a networkx release that changes how a graph keeps
    them."""
    import networkx as nx

    public = nx.Graph()
    public.add_nodes_from((n, dict(data)) for n, data in G.nodes(data=True))
    public.add_edges_from((u, v, dict(data)) for u, v, data in G.edges(data=True))
    assert list(public.nodes(data=True)) == list(G.nodes(data=True))
    assert list(public.edges(data=True)) == list(G.edges(data=True))
    assert public.adj == G.adj and public.nodes == G.nodes  # (nx.utils.graphs_equal, less G.graph's attributes)
