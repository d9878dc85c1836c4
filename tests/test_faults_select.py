"""Fault target selection: filters (ids, datacenters, groups, labels), then a mode (all/one/count/percent)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.cluster
import sim.topology
import sim.trace
from sim.faults import select_targets
from sim.loader import parse_scenario
from sim.scenario import Target

TEXT = """\
name: select
duration: 1h
topology:
  regions: [{id: users, datacenters: {dc-a: 5ms, dc-b: 20ms, dc-c: 40ms}}]
  datacenters:
    - id: dc-a
      labels: {zone: west}
      servers:
        - {id: a-mbx, count: 4, service_time: 10ms, labels: {role: mailbox}}
        - {id: a-edge, count: 2, service_time: 10ms, labels: {role: edge}}
    - id: dc-b
      labels: {zone: west, power: shared}
      servers:
        - {id: b-mbx, count: 3, service_time: 10ms, labels: {role: mailbox}}
    - id: dc-c
      labels: {zone: east}
      servers:
        - {id: c-mbx, count: 5, service_time: 10ms, labels: {role: mailbox, zone: east-2}}
  dependencies:
    - {id: directory, service_time: 1ms}
    - {id: antispam, kind: third_party, service_time: 5ms}
workload: {regions: {users: {peak: 10/s}}}
"""

ALL_SERVERS = (
    [f"a-mbx-0{n}" for n in range(1, 5)]
    + ["a-edge-01", "a-edge-02"]
    + [f"b-mbx-0{n}" for n in range(1, 4)]
    + [f"c-mbx-0{n}" for n in range(1, 6)]
)


@pytest.fixture(scope="module")
def cluster():
    scenario = parse_scenario(TEXT, "select.yaml")
    return sim.cluster.Cluster(
        simpy.Environment(), scenario, sim.topology.build_topology(scenario), sim.trace.Trace()
    )


def pick(cluster, kind: str = "server", seed: int = 0, **target) -> list[str]:
    chosen = select_targets(cluster, kind, Target.model_validate(target), np.random.default_rng(seed))
    for index, name in chosen:  # indices point into the cluster's own tables
        table = {
            "server": [s.id for s in cluster.servers],
            "datacenter": cluster.datacenter_ids,
            "dependency": cluster.dependency_ids,
        }[kind]
        assert table[index] == name
    return [name for _, name in chosen]


# ---------------------------------------------------------------------------------------------- filters


def test_no_filter_selects_everything(cluster):
    assert pick(cluster) == ALL_SERVERS


def test_ids(cluster):
    assert pick(cluster, ids=["b-mbx-02", "a-mbx-01"]) == ["a-mbx-01", "b-mbx-02"]  # in cluster order
    assert pick(cluster, ids=["nowhere-01"]) == []


def test_datacenters(cluster):
    assert pick(cluster, datacenters=["dc-b"]) == ["b-mbx-01", "b-mbx-02", "b-mbx-03"]
    assert pick(cluster, datacenters=["dc-b", "dc-a"]) == ALL_SERVERS[:9]


def test_groups(cluster):
    assert pick(cluster, groups=["a-edge"]) == ["a-edge-01", "a-edge-02"]
    assert pick(cluster, groups=["a-edge", "c-mbx"]) == ["a-edge-01", "a-edge-02"] + ALL_SERVERS[9:]


def test_labels_from_group_and_datacenter(cluster):
    assert pick(cluster, labels={"role": "edge"}) == ["a-edge-01", "a-edge-02"]
    assert pick(cluster, labels={"zone": "west", "role": "mailbox"}) == ALL_SERVERS[:4] + ALL_SERVERS[6:9]
    assert pick(cluster, labels={"power": "shared"}) == ["b-mbx-01", "b-mbx-02", "b-mbx-03"]
    assert pick(cluster, labels={"zone": "east-2"}) == ALL_SERVERS[9:]  # the group's label wins
    assert pick(cluster, labels={"zone": "east"}) == []
    assert pick(cluster, labels={"role": "nothing"}) == []


def test_filters_combine_with_and(cluster):
    assert pick(cluster, datacenters=["dc-a"], labels={"role": "mailbox"}, ids=["a-mbx-02", "b-mbx-01"]) == [
        "a-mbx-02"
    ]
    assert pick(cluster, groups=["a-mbx"], datacenters=["dc-b"]) == []


def test_datacenter_targets(cluster):
    assert pick(cluster, "datacenter") == ["dc-a", "dc-b", "dc-c"]
    assert pick(cluster, "datacenter", ids=["dc-c"]) == ["dc-c"]
    assert pick(cluster, "datacenter", datacenters=["dc-b", "dc-a"]) == ["dc-a", "dc-b"]
    assert pick(cluster, "datacenter", labels={"zone": "west"}) == ["dc-a", "dc-b"]


def test_dependency_targets(cluster):
    assert pick(cluster, "dependency") == ["directory", "antispam"]
    assert pick(cluster, "dependency", ids=["antispam"]) == ["antispam"]


# ------------------------------------------------------------------------------------------------ modes


def test_mode_all(cluster):
    assert pick(cluster, datacenters=["dc-c"], mode="all") == ALL_SERVERS[9:]


def test_mode_one(cluster):
    chosen = pick(cluster, datacenters=["dc-c"], mode="one")
    assert len(chosen) == 1 and chosen[0] in ALL_SERVERS[9:]


@pytest.mark.parametrize(("count", "expected"), [(1, 1), (3, 3), (5, 5), (50, 5)])
def test_mode_count(cluster, count, expected):
    chosen = pick(cluster, datacenters=["dc-c"], mode={"count": count})
    assert len(chosen) == expected
    assert len(set(chosen)) == expected and set(chosen) <= set(ALL_SERVERS[9:])
    assert chosen == sorted(chosen, key=ALL_SERVERS.index)  # in cluster order


@pytest.mark.parametrize(
    ("percent", "expected"),
    [("0%", 0), ("10%", 1), ("20%", 3), ("50%", 7), ("100%", 14), (0.01, 1), ("25%", 4)],
)
def test_mode_percent(cluster, percent, expected):
    # Rounded to the nearest whole target, and at least one unless the percentage is 0.
    chosen = pick(cluster, mode={"percent": percent})
    assert len(chosen) == expected
    assert len(set(chosen)) == expected


def test_modes_apply_after_filters(cluster):
    assert pick(cluster, ids=["nowhere-01"], mode="one") == []
    assert set(pick(cluster, groups=["a-edge"], mode={"count": 1})) <= {"a-edge-01", "a-edge-02"}
    assert len(pick(cluster, "datacenter", mode={"percent": "50%"})) == 2


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 2**32),
    st.sampled_from(["one", {"count": 3}, {"percent": "40%"}, {"count": 20}]),
    st.sampled_from([{}, {"datacenters": ["dc-a", "dc-c"]}, {"labels": {"role": "mailbox"}}]),
)
def test_same_seed_same_choice(cluster, seed, mode, filters):
    first = pick(cluster, seed=seed, mode=mode, **filters)
    assert pick(cluster, seed=seed, mode=mode, **filters) == first
    everything = pick(cluster, **filters)
    assert set(first) <= set(everything)


def test_different_seeds_spread_the_choice(cluster):
    seen = {tuple(pick(cluster, seed=seed, mode="one")) for seed in range(200)}
    assert len(seen) == len(ALL_SERVERS)


def test_selection_is_uniform_enough(cluster):
    counts = dict.fromkeys(ALL_SERVERS, 0)
    runs = 2800
    for seed in range(runs):
        for name in pick(cluster, seed=seed, mode={"count": 2}):
            counts[name] += 1
    expected = runs * 2 / len(ALL_SERVERS)  # 400 per server
    # Binomial(2800, 1/7): standard deviation about 18.5; allow five of them.
    assert all(abs(c - expected) < 5 * 18.6 for c in counts.values()), counts
