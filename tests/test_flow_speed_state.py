"""The flow engine's shortcuts for speed give the answers of the long way round.

A step leaves the servers' state per class (``Servers.kept``) and hands it to every server only when
something reads it whole; the client-retry ring is written through slices. These tests read the state
both ways, and check the slices against the slots they stand for.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.engine.flow import FlowEngine
from sim.engine.flow.retries import _slots
from sim.engine.flow.servers import Servers
from tests.shipped import ROOT

MECHANISMS = ROOT / "scenarios" / "mechanisms"
STATE = ("backlog", "load", "rate", "demand", "shed", "again", "fluid_wait", "wait_p", "theta", "per_try",
         "wait_rate")


def _servers_after(path, monkeypatch) -> Servers:
    """The servers of a lumped flow-engine run of ``path``, as the last step left them."""
    built: list[FlowEngine] = []
    start = FlowEngine.start

    def recording(self: FlowEngine) -> None:
        built.append(self)
        start(self)

    monkeypatch.setattr(FlowEngine, "start", recording)
    monkeypatch.setattr(FlowEngine, "lump_from", 0)
    sim.run(sim.load_scenario(path, {"engine": "flow"}))
    return built[0].servers


@pytest.mark.parametrize("name", ["failover-overload", "retry-storm"])
def test_a_few_servers_read_as_every_servers_state_reads(name, monkeypatch):
    servers = _servers_after(MECHANISMS / f"{name}.yaml", monkeypatch)
    assert servers.kept, "the last step left its state per class"
    some = np.array([0, servers.n - 1, servers.n // 2])
    for quantity in STATE:
        before = servers.at(quantity, some)
        whole = servers.whole(quantity)
        assert np.array_equal(before, whole[some]), quantity
        assert np.array_equal(servers.at(quantity, some), before), quantity  # and the same once expanded
    # The waits a check sees, whichever way they are read.
    assert np.array_equal(servers.wait_now(some), servers.wait_now()[some])
    assert np.array_equal(servers.probe_failure(2.0, some), servers.probe_failure(2.0)[some])


@pytest.mark.parametrize("expanded", [False, True])
def test_a_listeners_write_is_read_by_the_next_look(expanded, monkeypatch):
    servers = _servers_after(MECHANISMS / "failover-overload.yaml", monkeypatch)
    if expanded:
        servers.whole("backlog")
    servers.backlog[1] = 7.0  # as a listener writes (stop, start): into every server's values
    servers.stop(0)
    assert servers.at("backlog", np.array([0, 1])).tolist() == [0.0, 7.0]
    assert not servers.up[0]


@pytest.mark.parametrize("first, last, slots", [(3, 5, 8), (6, 9, 8), (7, 13, 8), (0, 6, 8), (5, 5, 8), (9, 8, 8)])
def test_ring_slices_are_the_slots(first, last, slots):
    ring = np.zeros(slots)
    for part in _slots(first, last, slots):
        ring[part] += 1.0
    expected = np.zeros(slots)
    expected[np.arange(first, last + 1) % slots] += 1.0
    assert np.array_equal(ring, expected)


def test_ring_slices_refuse_to_wrap_twice():
    with pytest.raises(ValueError, match="more than once"):
        _slots(0, 8, 8)
