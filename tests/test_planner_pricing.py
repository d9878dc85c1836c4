"""The planner's pricing of overload episodes (two roads to the same table) and its sensitivity sweep."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.planner.fleet import replay
from sim.planner.outages import draw_outages
from sim.planner.sensitivity import FACTORS, sensitivity, variant
from sim.planner.year import Fleet, _overload
from sim.planner.years import YearsSummary, plan_years
from tests.test_planner import LAYOUT as PLANNER_LAYOUT

# The planner tests' layout, its two datacenters of four servers at 0.8 and 0.97 of capacity at the peak: a
# server that takes a crashed one's databases is overloaded, and the busiest lose a little even when quiet
# (episodes signed -1 too); two copies where the first is.
LAYOUT = (
    PLANNER_LAYOUT.replace("name: planner-layout\nseed: 5\nduration: 6h", "name: pricing\nseed: 3\nduration: 20d")
    .replace("[{datacenter: a, copies: 1}", "[{datacenter: a, copies: 2}")
    .replace("[{datacenter: b, copies: 1}", "[{datacenter: b, copies: 2}")
    .replace("west: {peak: 40/s}", "west: {peak: 370/s, profile: diurnal}")
    .replace("east: {peak: 30/s, profile: diurnal}", "east: {peak: 300/s, profile: diurnal, start: 6h}")
    .replace("  - {id: crashes, kind: server_crash, target: {}, mtbf: 3h, mttr: 20m}\n"
             "  - {id: dark, kind: datacenter_outage, target: {ids: [b]}, at: 2h, duration: 10m}",
             "  - {id: crashes, kind: server_crash, target: {}, mtbf: 48h, mttr: 6h}"))


@pytest.fixture(scope="module")
def scenario() -> sim.Scenario:
    return sim.parse_scenario(LAYOUT, "pricing.yaml")


def test_the_kinds_table_and_the_cells_price_overload_alike(scenario: sim.Scenario) -> None:
    """Overload episodes are priced per kind of server state, either over every window of each kind (a
    dense table) or only over the windows the episodes are in: the same requests lost, window by window."""
    fleet = Fleet(scenario)
    for seed in (1, 2):
        outages = draw_outages(scenario, fleet.cluster, seed, scenario.duration)
        history = replay(fleet.cluster, outages, scenario.policies.failover, scenario.duration, fleet.neighbours)
        dense = _overload(fleet, history, scenario.duration, dense=True)
        cells = _overload(fleet, history, scenario.duration, dense=False)
        assert dense.sum() > 0  # failovers do overload servers here
        assert np.allclose(dense, cells, rtol=1e-9, atol=1e-9 * dense.max())


def test_variants_change_what_they_name(scenario: sim.Scenario) -> None:
    by = {f.name: f for f in FACTORS}
    slow = variant(scenario, by["mtbf"], True)
    assert not isinstance(slow, str) and slow.faults[0].mtbf == 2 * scenario.faults[0].mtbf
    fewer = variant(scenario, by["copies"], False)
    assert not isinstance(fewer, str)
    assert [p.copies for p in fewer.topology.databases[0].placement] == [2]  # the last placed copy went
    more = variant(scenario, by["copies"], True)
    assert not isinstance(more, str) and [p.copies for p in more.topology.databases[0].placement] == [3, 1]
    lean = variant(scenario, by["servers"], False)
    assert not isinstance(lean, str) and lean.topology.datacenters[0].servers[0].count == 3
    one_copy = variant(fewer, by["copies"], False)
    assert not isinstance(one_copy, str)
    assert variant(one_copy, by["copies"], False) == "databases 'dw' have one copy already"


def test_sensitivity_pairs_each_variant_with_the_layout(scenario: sim.Scenario) -> None:
    """Failures twice as rare cost fewer minutes, twice as frequent more; fewer servers (less headroom)
    more: each change is the paired mean over the same years, largest swing first."""
    years = 6
    base = YearsSummary.of(scenario, plan_years(scenario, years))
    by = {f.name: f for f in FACTORS}
    result = sensitivity(scenario, base, years, factors=(by["mtbf"], by["servers"]))
    swing = {s.factor.name: s for s in result.swings}
    mtbf = swing["mtbf"]
    assert mtbf.low_change is not None and mtbf.high_change is not None
    assert mtbf.low_change.mean > 0 > mtbf.high_change.mean
    assert mtbf.low is not None
    paired_by_hand = np.mean([v["downtime_minutes"] - b["downtime_minutes"]
                              for v, b in zip(mtbf.low.rows, base.rows, strict=True)])
    assert mtbf.low_change.mean == pytest.approx(paired_by_hand)
    assert swing["servers"].low_change is not None and swing["servers"].low_change.mean > 0
    assert [s.width for s in result.swings] == sorted((s.width for s in result.swings), reverse=True)
