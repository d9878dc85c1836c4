"""The analytic reliability models (sim/reliability.py) and the structure-only bound (sim/bounds.py).

Closed forms first (independent repair is binomial, one unit is MTBF/(MTBF+MTTR), one crew by hand),
then the product form against the chain's generator solved as a linear system, then properties.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
import sim.bounds
import sim.reliability
from sim.bounds import structure_bound
from sim.reliability import (
    MINUTES_PER_YEAR,
    all_down,
    down_distribution,
    expected_down,
    expected_up,
    minutes_per_year,
    pool_availability,
    set_probability,
)
from sim.topology import EXAMPLE
from sim.units import parse_duration


def binomial(n: int, q: float) -> np.ndarray:
    return np.array([math.comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(n + 1)])


def generator_solution(n: int, mtbf: float, mttr: float, crews: int) -> np.ndarray:
    """The stationary distribution from the generator matrix: pi Q = 0, sum pi = 1 (no product form)."""
    lam, mu = 1 / mtbf, 1 / mttr
    q = np.zeros((n + 1, n + 1))
    for j in range(n + 1):
        if j < n:
            q[j, j + 1] = (n - j) * lam
        if j > 0:
            q[j, j - 1] = min(j, crews) * mu
        q[j, j] = -q[j].sum()
    a = np.vstack([q.T, np.ones(n + 1)])
    b = np.zeros(n + 2)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


@pytest.mark.parametrize(("n", "mtbf", "mttr"), [(1, 100.0, 10.0), (4, 2000.0, 8.0), (12, 3.0, 1.0)])
def test_independent_repair_is_binomial(n, mtbf, mttr):
    q = mttr / (mtbf + mttr)
    np.testing.assert_allclose(down_distribution(n, mtbf, mttr), binomial(n, q), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(down_distribution(n, mtbf, mttr, crews=n), binomial(n, q), rtol=1e-12)
    np.testing.assert_allclose(down_distribution(n, mtbf, mttr, crews=n + 5), binomial(n, q), rtol=1e-12)
    assert expected_down(n, mtbf, mttr) == pytest.approx(n * q, rel=1e-12)
    assert expected_up(n, mtbf, mttr) == pytest.approx(n * (1 - q), rel=1e-12)


@pytest.mark.parametrize("crews", [None, 1, 3])
def test_one_unit_is_up_mtbf_over_mtbf_plus_mttr(crews):
    assert down_distribution(1, 90.0, 10.0, crews).tolist() == pytest.approx([0.9, 0.1], rel=1e-12)
    assert pool_availability(1, 1, 90.0, 10.0, crews) == pytest.approx(0.9, rel=1e-12)


def test_one_crew_by_hand():
    """Three units, λ/μ = 1/2, one crew: weights 1, 3/2, 3/2·2/2, 3/2·1/2 → (1, 1.5, 1.5, 0.75) / 4.75."""
    pi = down_distribution(3, mtbf=2.0, mttr=1.0, crews=1)
    assert pi.tolist() == pytest.approx([1 / 4.75, 1.5 / 4.75, 1.5 / 4.75, 0.75 / 4.75], rel=1e-12)
    assert pool_availability(3, 2, 2.0, 1.0, crews=1) == pytest.approx(2.5 / 4.75, rel=1e-12)
    assert expected_down(3, 2.0, 1.0, crews=1) == pytest.approx((1.5 + 3.0 + 2.25) / 4.75, rel=1e-12)


@pytest.mark.parametrize(("n", "crews"), [(2, 1), (5, 2), (9, 3), (20, 1)])
def test_product_form_solves_the_chain(n, crews):
    np.testing.assert_allclose(down_distribution(n, 7.0, 2.0, crews), generator_solution(n, 7.0, 2.0, crews),
                               rtol=1e-9, atol=1e-15)


def test_a_large_fleet_with_one_crew_stays_finite():
    pi = down_distribution(100_000, mtbf=1000.0, mttr=10.0, crews=1)
    assert np.isfinite(pi).all() and pi.sum() == pytest.approx(1.0)
    # one crew repairs 0.1/h while 100,000 units fail 100/h: almost all are down
    assert expected_down(100_000, 1000.0, 10.0, crews=1) > 99_000


def test_pools_at_the_ends():
    pi = down_distribution(5, 50.0, 10.0, crews=2)
    assert pool_availability(5, 0, 50.0, 10.0, crews=2) == 1.0
    assert pool_availability(5, 5, 50.0, 10.0, crews=2) == pytest.approx(pi[0], rel=1e-12)
    q = 10.0 / 60.0
    assert pool_availability(5, 3, 50.0, 10.0) == pytest.approx(binomial(5, q)[:3].sum(), rel=1e-12)


def test_copies_all_down():
    q = 10.0 / 100.0
    for m in range(4):
        assert all_down(m, 6, 90.0, 10.0) == pytest.approx(q**m, rel=1e-12)  # independent: q^m
    assert all_down(6, 6, 90.0, 10.0, crews=2) == pytest.approx(down_distribution(6, 90.0, 10.0, 2)[6], rel=1e-12)
    # one given unit is down the mean share of the time, crews or not
    assert all_down(1, 6, 9.0, 1.0, crews=1) == pytest.approx(expected_down(6, 9.0, 1.0, 1) / 6, rel=1e-12)
    assert set_probability(5, 2, 3, 90.0, 10.0) == pytest.approx(q**2 * (1 - q) ** 3, rel=1e-12)
    # crews make copies fail together: more than the square of the single-copy share
    single = all_down(1, 6, 9.0, 1.0, crews=1)
    assert all_down(2, 6, 9.0, 1.0, crews=1) > single**2


def test_a_copy_set_is_any_set_of_units():
    """Exchangeability: over all (down, up) splits of two given units the probabilities add up to 1."""
    parts = [set_probability(6, 2, 0, 9.0, 1.0, 1), set_probability(6, 0, 2, 9.0, 1.0, 1),
             2 * set_probability(6, 1, 1, 9.0, 1.0, 1)]
    assert sum(parts) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: down_distribution(0, 1.0, 1.0), "a pool needs at least one unit (got n = 0)"),
        (lambda: down_distribution(3, 0.0, 1.0), "mtbf and mttr must be finite and more than 0 (got mtbf 0, mttr 1)"),
        (lambda: down_distribution(3, 1.0, 1.0, crews=0), "crews must be at least 1, or None for one per unit (got 0)"),
        (lambda: pool_availability(3, 4, 1.0, 1.0), "k must be between 0 and n = 3 units (got k = 4)"),
        (lambda: all_down(4, 3, 1.0, 1.0), "down + up must be at most n = 3 units, each at least 0 (got down 4, up 0)"),
    ],
)
def test_bad_arguments_name_the_value_and_the_rule(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_the_year_is_the_units_year():
    assert MINUTES_PER_YEAR * 60 == parse_duration("1y")
    assert minutes_per_year(0.0001) == pytest.approx(52.56)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 30),
    ratio=st.floats(0.001, 2.0),
    data=st.data(),
)
def test_more_crews_and_fewer_needed_never_lower_availability(n, ratio, data):
    k = data.draw(st.integers(0, n), label="k")
    crews = data.draw(st.integers(1, n), label="crews")
    a = pool_availability(n, k, 1.0, ratio, crews)
    assert 0.0 <= a <= 1.0
    if crews < n:
        assert pool_availability(n, k, 1.0, ratio, crews + 1) >= a - 1e-12
    if k > 0:
        assert pool_availability(n, k - 1, 1.0, ratio, crews) >= a - 1e-12
    assert pool_availability(n, k, 1.0, ratio) >= a - 1e-12  # independent repair: as many crews as units


# ------------------------------------------------------------------------------------- structure_bound


def bound_of(faults: str) -> sim.bounds.StructureBound:
    return structure_bound(sim.parse_scenario(EXAMPLE + f"faults: [{faults}]\n"))


def test_the_bound_counts_the_crews():
    """EXAMPLE: two databases, each with a copy in dc-a and one in dc-b; four servers, one crew."""
    bound = bound_of("{id: hw, kind: server_crash, target: {}, mtbf: 9h, mttr: 1h, repair: {crews: 1}}")
    (region,) = bound.regions
    assert region.databases == 2 and bound.faults == ("hw",) and bound.left_out == ()
    assert region.unavailability == pytest.approx(all_down(2, 4, 9.0, 1.0, crews=1), rel=1e-12)
    assert region.minutes_per_year == pytest.approx(region.unavailability * 525_600)


def test_the_bound_with_datacenter_outages():
    """Crashes and datacenter outages, independent repair: each copy is down 1 − (1 − q_dc)(1 − q_server)."""
    bound = bound_of(
        "{id: hw, kind: server_crash, target: {}, mtbf: 99h, mttr: 1h}, "
        "{id: dark, kind: datacenter_outage, target: {}, mtbf: 999h, mttr: 1h}"
    )
    copy = 1 - (1 - 0.001) * (1 - 0.01)
    assert bound.regions[0].unavailability == pytest.approx(copy**2, rel=1e-9)
    assert bound.faults == ("hw", "dark")


def test_the_bound_says_what_it_leaves_out():
    bound = bound_of(
        "{id: hw, kind: server_crash, target: {}, mtbf: 99h, mttr: 1h}, "
        "{id: again, kind: server_crash, target: {ids: [mbx-b-02]}, mtbf: 9h, mttr: 1h}, "
        "{id: once, kind: server_crash, target: {}, at: 10m, duration: 5m}, "
        "{id: surge, kind: traffic_surge, target: {}, multiplier: 2, mtbf: 9h, mttr: 1h}"
    )
    assert bound.faults == ("hw",)
    assert bound.left_out == (
        ("again", "mbx-b-02 already fails with fault hw (one process each)"),
        ("once", "scheduled (at): not part of the long run"),
        ("surge", "traffic_surge: loses no database copy"),
    )
    assert bound.regions[0].unavailability == pytest.approx(0.01**2, rel=1e-9)


def test_a_copy_that_never_fails_keeps_the_database():
    bound = bound_of("{id: hw, kind: server_crash, target: {datacenters: [dc-a]}, mtbf: 9h, mttr: 1h}")
    assert bound.regions[0].unavailability == 0.0


@pytest.mark.parametrize("module", [sim.reliability, sim.bounds])
def test_the_docstring_examples_hold(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
