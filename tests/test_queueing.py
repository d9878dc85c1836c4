"""sim.queueing against textbook numbers and the reference formulas of tests/validation/queueing.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.queueing import (
    CAP,
    allen_cunneen,
    blocking,
    erlang,
    poisson_share,
    pooled_wait,
    response_tail,
    supermarket,
    supermarket_wait,
)
from tests.validation import queueing as reference


def one(x: float) -> np.ndarray:
    return np.array([x])


@pytest.mark.parametrize(("c", "a", "b", "wait"), [
    (10, 5.0, 0.01838, 0.03611),  # Erlang B(10, 5) = 0.018385 (Erlang's tables); C = B / (1 - rho (1 - B))
    (2, 1.0, 0.2, 1 / 3),  # B(2, 1) = 1/5, C(2, 1) = 1/3
    (1, 0.5, 1 / 3, 0.5),  # M/M/1: B = a / (1 + a), C = rho
    (10, 7.0, 0.07874, 0.2217),
])
def test_erlang_b_and_c_are_the_textbook_values(c, a, b, wait):
    got_b, got_c = erlang(np.array([c]), np.array([a]))
    assert got_b[0] == pytest.approx(b, abs=5e-5)
    assert got_c[0] == pytest.approx(wait, abs=5e-4)


def test_the_array_path_agrees_with_the_scalar_path_and_the_reference():
    big_b, big_c = erlang(np.arange(1, 20), np.full(19, 5.0))  # more than 8 elements: the array recursion
    for k in (1, 5, 6, 19):
        small_b, _ = erlang(np.array([k]), np.array([5.0]))
        assert big_b[k - 1] == pytest.approx(small_b[0])
        assert big_b[k - 1] == pytest.approx(reference.erlang_b(k, 5.0))
        if k > 5:
            assert big_c[k - 1] == pytest.approx(reference.erlang_c(k, 5.0))


@pytest.mark.parametrize(("c", "lam", "q"), [(2, 2.0, 3), (4, 3.5, 10), (1, 0.5, 0), (3, 5.0, 2)])
def test_blocking_is_the_last_state_of_mmck(c, lam, q):
    expected = reference.mmck_distribution(lam, 1.0, c, c + q)[-1]  # PASTA: arrivals see the full system
    assert blocking(np.array([c]), np.array([lam]), np.array([float(q)]))[0] == pytest.approx(expected)


def test_blocking_without_a_waiting_room_is_erlang_b_and_without_a_limit_is_the_overflow():
    assert blocking(np.array([10]), one(7.0), one(0.0))[0] == pytest.approx(0.07874, abs=1e-5)
    assert blocking(np.array([2]), one(1.0), one(math.inf))[0] == 0.0
    assert blocking(np.array([2]), one(4.0), one(math.inf))[0] == pytest.approx(0.5)  # twice the capacity


def test_response_tail():
    no, yes, det = one(0.0), one(1.0), np.array([False])
    assert response_tail(one(2.0), yes, no, yes, det)[0] == pytest.approx(math.exp(-2))  # P(Exp(1) > 2)
    assert response_tail(one(2.0), yes, yes, yes, det)[0] == pytest.approx(3 * math.exp(-2))  # Erlang-2
    # Rates apart: the hypoexponential tail (mu e^-theta t - theta e^-mu t) / (mu - theta).
    mu, theta, t = 1.0, 3.0, 0.7
    expected = (mu * math.exp(-theta * t) - theta * math.exp(-mu * t)) / (mu - theta)
    assert response_tail(one(t), yes, yes, one(theta), det)[0] == pytest.approx(expected)
    # Deterministic service of 1: late for sure before 1, then only if it waited long enough.
    assert response_tail(one(0.5), yes, one(0.3), yes, np.array([True]))[0] == 1.0
    assert response_tail(one(1.5), yes, one(0.3), yes, np.array([True]))[0] == pytest.approx(0.3 * math.exp(-0.5))


def test_the_mm1_response_tail_is_exponential():
    lam, mu = 0.7, 1.0  # M/M/1: waits with probability rho, the wait of those at rate mu - lam
    q99 = reference.mm1_response_quantile(lam, mu, 0.99)
    assert response_tail(one(q99), one(1 / mu), one(lam / mu), one(mu - lam), np.array([False]))[0] == \
        pytest.approx(0.01)


def test_poisson_share():
    a, c = 3.0, 5
    pmf = [math.exp(-a) * a**k / math.factorial(k) for k in range(c)]
    for x in range(c):
        assert poisson_share(float(x), a, c) == pytest.approx(pmf[x] / sum(pmf))
    assert poisson_share(5.0, a, c) == 0.0 and poisson_share(-1.0, a, c) == 0.0


@pytest.mark.parametrize(("c", "rho"), [(1, 0.5), (4, 0.8), (10, 0.9)])
def test_allen_cunneen_with_poisson_arrivals_and_exponential_service_is_mmc(c, rho):
    mean_service = 0.1
    wait_p, theta = allen_cunneen(one(c * rho), one(float(c)), np.array([c]), one(mean_service), one(1.0), one(1.0))
    lam, mu = c * rho / mean_service, 1 / mean_service
    assert wait_p[0] == pytest.approx(reference.erlang_c(c, c * rho))
    assert wait_p[0] / theta[0] == pytest.approx(reference.mmc_mean_wait(lam, mu, c))
    # Regular arrivals and deterministic service: no wait left but the floor's.
    _, smooth = allen_cunneen(one(c * rho), one(float(c)), np.array([c]), one(mean_service), one(0.0), one(0.0))
    assert smooth[0] == pytest.approx(theta[0] * 20)


# ------------------------------------------------------------------------------ the supermarket model


@pytest.mark.parametrize("rho", [0.3, 0.7, 0.9, 0.98])
@pytest.mark.parametrize("d", [2, 3])
def test_one_worker_is_mitzenmachers_closed_form(rho, d):
    """s_k = rho^((d^k - 1) / (d - 1)); an arrival waits with probability s_1^d, on average sum_k s_k^d."""
    s = [rho ** ((d**k - 1) / (d - 1)) for k in range(1, 60)]
    wait_p, mean = supermarket(one(rho), 1, d)
    assert wait_p[0] == pytest.approx(s[0] ** d, rel=1e-9)
    assert mean[0] == pytest.approx(sum(x**d for x in s), rel=1e-9)


@pytest.mark.parametrize("c", [1, 2, 4, 8])
@pytest.mark.parametrize("rho", [0.3, 0.7, 0.9, 0.98])
def test_one_choice_is_mmc(c, rho):
    wait_p, mean = supermarket(one(rho), c, 1)
    erlang_c = reference.erlang_c(c, c * rho)
    assert wait_p[0] == pytest.approx(erlang_c, rel=1e-9)
    assert mean[0] == pytest.approx(erlang_c / (c * (1 - rho)), rel=1e-7)  # in mean services


def test_more_choices_wait_less():
    rho = np.array([0.5, 0.8, 0.95])
    waits = [supermarket(rho, 4, d)[1] for d in (1, 2, 3, 5)]
    for fewer, more in zip(waits, waits[1:], strict=False):
        assert (more < fewer).all()
    assert supermarket(np.array([0.0]), 4, 2)[0][0] == 0.0


@given(st.floats(0.01, CAP), st.integers(1, 6))
def test_the_fixed_point_balances_every_level(rho, c):
    """a s_{k-1}^d = k s_k + s_{k+1} + ... + s_c below c workers: solve the levels back from P(wait)."""
    d = 2
    wait_p, _ = supermarket(one(rho), c, d)
    s = [0.0] * (c + 1)
    s[c] = wait_p[0] ** (1 / d)
    for k in range(c, 0, -1):
        s[k - 1] = ((k * s[k] + sum(s[k + 1:])) / (c * rho)) ** (1 / d)
    assert s[0] == pytest.approx(1.0, rel=1e-9)
    assert all(x >= y for x, y in zip(s, s[1:], strict=False))


def test_the_table_interpolates_the_fixed_point():
    rho = np.array([0.1, 0.45, 0.8, 0.9, 0.97])
    c = np.full(rho.size, 4)
    wait_p, theta = supermarket_wait(rho * 4, c.astype(float), c, np.full(rho.size, 0.1), np.full(rho.size, 2),
                                     np.ones(rho.size))
    exact_p, exact_w = supermarket(rho, 4, 2)
    assert wait_p == pytest.approx(exact_p, rel=1e-4)
    assert wait_p / theta == pytest.approx(exact_w * 0.1, rel=1e-4)  # the mean wait, seconds


def test_a_pool_of_one_is_mmc_and_a_large_pool_hardly_waits():
    load, c, per_try = one(3.2), one(4.0), one(0.1)
    alone = pooled_wait(load, c, np.array([4]), per_try, one(1.0), one(1.0))
    poisson = allen_cunneen(load, c, np.array([4]), per_try, one(1.0), one(1.0))
    assert alone[0] == pytest.approx(poisson[0], rel=1e-4) and alone[1] == pytest.approx(poisson[1])
    pooled = [pooled_wait(load, c, np.array([4]), per_try, one(float(n)), one(1.0)) for n in (1, 4, 100)]
    means = [p[0][0] / p[1][0] for p in pooled]
    assert means[0] > means[1] > means[2] and means[2] < 1e-3 * means[0]
    # Four servers of four workers at 90%: Erlang C of 16 workers offered 14.4 erlangs.
    p, theta = pooled_wait(one(3.6), c, np.array([4]), per_try, one(4.0), one(1.0))
    assert p[0] == pytest.approx(reference.erlang_c(16, 14.4), rel=1e-4)
    assert p[0] / theta[0] == pytest.approx(reference.mmc_mean_wait(144.0, 10.0, 16), rel=1e-4)
