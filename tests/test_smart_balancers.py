"""Weighted least outstanding, least response time (EWMA) and consistent hashing (mailbox affinity),
against their definitions, and in the request engine."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.policies import BALANCERS, unsupported_on_flow
from sim.policies.balancers import ConsistentHash, LeastResponseTime, WeightedLeastOutstanding
from sim.rng import Streams
from tests.conftest import scenario_from


class _Server:
    def __init__(self, name: str, workers: int = 1):
        self.name, self.workers, self.load = name, workers, 0

    def outstanding(self) -> int:
        return self.load

    def __repr__(self) -> str:
        return self.name


def _stream():
    return Streams(1).stream("b")


# ---------------------------------------------------------------------------- weighted least outstanding

@settings(max_examples=80, deadline=None)
@given(workers=st.lists(st.integers(1, 8), min_size=20, max_size=20),
       ops=st.lists(st.tuples(st.integers(0, 19), st.sampled_from([1, -1])), max_size=300),
       pool_change=st.integers(0, 300))
def test_weighted_least_outstanding_always_picks_a_least_loaded_member_per_worker(workers, ops, pool_change):
    """The heap (lazy deletion) answers as a scan of the pool would, through any changes and a rebuilt pool."""
    servers = [_Server(f"s{i}", w) for i, w in enumerate(workers)]
    wlo = WeightedLeastOutstanding(_stream())
    pool = servers[:15]
    for k, (i, step) in enumerate(ops):
        if k == pool_change:
            pool = servers[5:]  # the engine rebuilds a pool as a new list
        server = servers[i]
        server.load = max(0, server.load + step)
        wlo.changed(server)
        best = min(s.load / s.workers for s in pool)
        picked = wlo.pick(pool)
        assert picked in pool and picked.load / picked.workers == best
        other = wlo.pick_other(pool, [picked])
        assert other is not picked
        assert other.load / other.workers == min(s.load / s.workers for s in pool if s is not picked)
        assert wlo.pick(pool) is picked  # setting the tried ones aside puts them back


def test_weighted_least_outstanding_spreads_requests_in_proportion_to_workers():
    """Requests that stay (none answered): after any multiple of the pool's 15 workers, each server holds
    exactly its workers' share; in between, none is more than one request ahead of it."""
    servers = [_Server("a", 8), _Server("b", 4), _Server("c", 2), _Server("d", 1)]
    wlo = WeightedLeastOutstanding(_stream())
    for n in range(1, 151):
        s = wlo.pick(servers)
        s.load += 1
        wlo.changed(s)
        for t in servers:
            assert t.load <= math.ceil(n * t.workers / 15) + 1
        if n % 15 == 0:
            assert [t.load for t in servers] == [8 * n // 15, 4 * n // 15, 2 * n // 15, n // 15]


def test_weighted_least_outstanding_is_least_outstanding_on_equal_servers():
    """Pick for pick, so the same run to the bit (ties to the server changed longest ago in both)."""
    s = scenario_from({"duration": "2m", "policies": {"client": {"retries": 1},
                                                      "load_balancer": {"retries": 1, "try_timeout": "100ms"}},
                       "workload": {"regions": {"users": {"peak": "600/s"}}}})
    runs = {}
    for algorithm in ("least_outstanding", "weighted_least_outstanding"):
        lb = s.policies.load_balancer.model_copy(update={"algorithm": algorithm})
        each = s.model_copy(update={"policies": s.policies.model_copy(update={"load_balancer": lb})})
        runs[algorithm] = sim.run(each).summary
    assert runs["least_outstanding"]["requests"] > 50_000
    assert runs["least_outstanding"]["latency"] == runs["weighted_least_outstanding"]["latency"]
    assert runs["least_outstanding"]["counts"] == runs["weighted_least_outstanding"]["counts"]


def test_weighted_least_outstanding_runs_on_the_flow_engine_only_over_equal_servers():
    equal = scenario_from({"policies": {"load_balancer": {"algorithm": "weighted_least_outstanding"}}})
    assert unsupported_on_flow(equal) == []
    unequal = scenario_from({"topology": {"datacenters": [
        {"id": "dc-a", "servers": [{"id": "a", "count": 2, "workers": 4, "service_time": "20ms"},
                                   {"id": "a2", "count": 2, "workers": 2, "service_time": "20ms"}]},
        {"id": "dc-b", "servers": [{"id": "b", "count": 4, "workers": 4, "service_time": "20ms"}]}]},
        "policies": {"load_balancer": {"algorithm": "weighted_least_outstanding"}}})
    (path, message), = unsupported_on_flow(unequal)
    assert path == ("policies", "load_balancer", "algorithm")
    assert "datacenter 'dc-a' has servers of 2, 4 workers" in message


# ---------------------------------------------------------------------------- least response time

def _lrt_score(lrt: LeastResponseTime, s: _Server) -> float:
    return lrt.ewma.get(s, lrt.prior if lrt.prior is not None else 1.0) * (s.load + 1)  # the definition


@settings(max_examples=80, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 9), st.sampled_from([1, -1, 0]), st.floats(0.001, 5.0)),
                    max_size=200))
def test_least_response_time_picks_the_lowest_ewma_times_outstanding_plus_one(ops):
    """Against the definition, kept here by hand: ewma <- ewma + 0.2 (latency - ewma), the first observation
    of a server its ewma; a server not yet observed counts at the first latency the balancer saw."""
    servers = [_Server(f"s{i}") for i in range(10)]
    lrt = LeastResponseTime(_stream())
    ewma: dict[_Server, float] = {}
    prior = None
    for i, step, latency in ops:
        server = servers[i]
        if step == 0:  # an answer: its response time observed
            ewma[server] = latency if server not in ewma else ewma[server] + 0.2 * (latency - ewma[server])
            prior = latency if prior is None else prior
            lrt.observe(server, latency)  # (stands for changed: the try is over)
        else:
            server.load = max(0, server.load + step)
            lrt.changed(server)
        assert lrt.ewma == pytest.approx(ewma) and lrt.prior == prior
        picked = lrt.pick(servers)
        assert _lrt_score(lrt, picked) == pytest.approx(min(_lrt_score(lrt, s) for s in servers))
        other = lrt.pick_other(servers, [picked])
        assert other is not picked
        assert _lrt_score(lrt, other) == pytest.approx(min(_lrt_score(lrt, s) for s in servers if s is not picked))


def test_least_response_time_sends_a_server_ten_times_as_fast_ten_times_as_much():
    """Requests that stay: each was sent where 10 ms × (count + 1) or 100 ms × (count + 1) was lower, so
    the last to the fast one had 10 ms × fast ≤ 100 ms × (slow + 1), and the last to the slow one
    100 ms × slow ≤ 10 ms × (fast + 1): ten to one, within ten."""
    fast, slow = _Server("fast"), _Server("slow")
    lrt = LeastResponseTime(_stream())
    lrt.pick([fast, slow])
    for server, latency in ((fast, 0.01), (slow, 0.1)):
        lrt.observe(server, latency)
    for _ in range(220):
        s = lrt.pick([fast, slow])
        s.load += 1
        lrt.changed(s)
    assert 10 * slow.load <= fast.load + 1 and fast.load <= 10 * (slow.load + 1)
    assert (fast.load, slow.load) == (200, 20)


# ---------------------------------------------------------------------------- consistent hashing

def test_the_ring_sends_a_mailbox_to_one_server_and_moves_only_the_leavers_share():
    """n = 20 servers, K = 20,000 mailboxes. Removing a server moves exactly the mailboxes it held (no
    other changes owner) and brings them back when it returns. How many it held: its arcs are V = 100
    spacings of n V uniform points, so its share has mean 1/n and standard deviation about
    1 / (n sqrt(V)) (a sum of V spacings of mean 1/(n V), each of sd about the same); the K mailboxes fall
    on it binomially around that share, sd sqrt(p (1 - p) / K). Each server's share of K is within four
    of the combined standard errors of 1/n; and every mailbox is held by one server, so the shares add
    up to 1 exactly."""
    n, keys = 20, range(20_000)
    servers = [_Server(f"mbx-{i:02d}") for i in range(n)]
    ring = ConsistentHash(_stream())
    before = {k: ring.pick(servers, key=k) for k in keys}
    assert all(ring.pick(list(servers), key=k) is before[k] for k in range(0, 20_000, 97))  # a rebuilt ring
    held = Counter(before.values())
    assert sum(held.values()) == len(keys)
    p = 1 / n
    se = math.sqrt(1 / (n * n * ConsistentHash.VNODES) + p * (1 - p) / len(keys))
    for leaver in servers[:5]:
        pool = [s for s in servers if s is not leaver]
        after = {k: ring.pick(pool, key=k) for k in keys}
        moved = [k for k in keys if after[k] is not before[k]]
        assert all(before[k] is leaver for k in moved) and len(moved) == held[leaver]
        assert abs(len(moved) / len(keys) - p) < 4 * se, (leaver, len(moved), se)
        assert len({after[k] for k in moved}) > n // 2  # spread over the others, not dumped on a neighbour
        assert all(ring.pick(servers, key=k) is before[k] for k in moved)  # it returns: they come back
    for s in servers:
        assert abs(held[s] / len(keys) - p) < 4 * se


def test_the_ring_is_the_same_in_every_process():
    """A fixed hash (blake2b), not Python's salted hash(): these owners are the same in any run."""
    servers = [_Server(f"mbx-{i:02d}") for i in range(8)]
    ring = ConsistentHash(_stream())
    assert [ring.pick(servers, key=k).name for k in range(8)] == \
        ["mbx-03", "mbx-00", "mbx-03", "mbx-07", "mbx-06", "mbx-07", "mbx-07", "mbx-07"]


def test_a_retry_goes_to_the_next_server_clockwise():
    servers = [_Server(f"mbx-{i:02d}") for i in range(6)]
    ring = ConsistentHash(_stream())
    for k in range(50):
        first = ring.pick(servers, key=k)
        second = ring.pick_other(servers, [first], key=k)
        assert second is not first
        assert second is ring.pick([s for s in servers if s is not first], key=k)  # where it would move to
        assert ring.pick_other(servers, servers, key=k) is first  # all tried: the owner again


def test_the_engine_keeps_a_mailbox_on_its_front_end_until_that_front_end_leaves(monkeypatch):
    """Every pick of the request engine, recorded: while the pool stands, a database's requests all go to
    one front end; a crashed, ejected server's databases move, and no other database does."""
    picks: list[tuple[int, int, str]] = []  # (pool's id, database, front end)
    real = ConsistentHash.pick

    def pick(self, pool, key=None):
        front = real(self, pool, key)
        picks.append((id(pool), key, front.name))
        return front

    monkeypatch.setattr(ConsistentHash, "pick", pick)
    s = scenario_from({
        "duration": "4m",
        "topology": {"databases": [{"id": "db", "count": 40, "placement": [{"datacenter": "dc-a", "copies": 1},
                                                                           {"datacenter": "dc-b", "copies": 1}]}]},
        "policies": {"load_balancer": {"algorithm": "consistent_hash"}},
        "faults": [{"id": "crash", "kind": "server_crash", "at": "2m", "target": {"ids": ["a-02"]}}]})
    result = sim.run(s)
    assert result.summary["availability"] > 0.95
    owners: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    pools = []
    for pool, db, name in picks:
        assert db is not None
        if pool not in owners:
            pools.append(pool)
        owners[pool][db].add(name)
    assert all(len(names) == 1 for pool in pools for names in owners[pool].values())  # affinity
    first, last = ({db: next(iter(names)) for db, names in owners[p].items()} for p in (pools[0], pools[-1]))
    assert len(pools) >= 2 and "a-02" in first.values() and "a-02" not in last.values()
    common = first.keys() & last.keys()
    assert len(common) >= 30
    assert all(first[db] == last[db] for db in common if first[db] != "a-02")
    assert any(first[db] != last[db] for db in common)


def test_least_response_time_and_the_ring_have_no_fluid_view():
    for name in ("least_response_time", "consistent_hash"):
        assert not BALANCERS[name].supports_flow
        s = scenario_from({"policies": {"load_balancer": {"algorithm": name}}})
        (path, message), = unsupported_on_flow(s)
        assert path == ("policies", "load_balancer", "algorithm") and f"'{name}' has no fluid view" in message
