"""sim.queueing against textbook numbers and the reference formulas of tests/validation/queueing.py."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.queueing
from sim.queueing import (
    CAP,
    allen_cunneen,
    blocking,
    erlang,
    first_passage_rate,
    from_full,
    impatient,
    mirrored,
    response_cells,
    response_tail,
    retrial_blocking,
    spread_tail,
    supermarket,
    truncated_mean,
    waiting_room,
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


# ------------------------------------------------------------------------------ M/M/c with a bound on the wait


def bounded_mmc(c: int, a: float, tau: float) -> tuple[float, float, float]:
    """M/M/c+D (mean service 1, arrivals refused when their offered wait would pass ``tau``) from its
    stationary measure, summed numerically: (refused share, share of the admitted that wait, their mean
    wait). Below ``c`` busy workers the measure is ``a^k / k!``; while all are busy the offered wait has
    the density ``a^c / (c-1)! e^(-(c - a) v)`` up to tau and the mass ``f(tau) / c`` above it."""
    below = sum(a**k / math.factorial(k) for k in range(c))
    v = np.linspace(0.0, tau, 200_001)
    f = a**c / math.factorial(c - 1) * np.exp(-(c - a) * v)
    waiting = float(np.trapezoid(f, v))
    refused = float(f[-1]) / c
    mean = float(np.trapezoid(v * f, v)) / waiting
    return refused / (below + waiting + refused), waiting / (below + waiting), mean


@pytest.mark.parametrize(("c", "a", "tau"), [(1, 0.8, 2.0), (1, 1.3, 2.0), (8, 6.4, 0.5), (8, 10.4, 0.5),
                                             (4, 4.0, 1.0), (3, 12.0, 0.2)])
def test_a_bound_on_the_wait_is_mmc_plus_d(c, a, tau):
    refused, wait_p = impatient(np.array([c]), one(a), one(tau))
    expected = bounded_mmc(c, a, tau)
    assert refused[0] == pytest.approx(expected[0], rel=1e-6)
    assert wait_p[0] == pytest.approx(expected[1], rel=1e-6)
    assert truncated_mean(one(c - a), one(tau))[0] == pytest.approx(expected[2], rel=1e-6)


@pytest.mark.parametrize(("c", "a"), [(1, 0.5), (4, 3.0), (10, 7.0), (10, 9.9)])
def test_no_bound_is_erlang_c_and_no_wait_is_erlang_b(c, a):
    refused, wait_p = impatient(np.array([c, c]), np.array([a, a]), np.array([math.inf, 0.0]))
    assert refused[0] == 0.0 and wait_p[0] == pytest.approx(reference.erlang_c(c, a), rel=1e-9)
    assert refused[1] == pytest.approx(reference.erlang_b(c, a), rel=1e-9) and wait_p[1] == 0.0
    far = impatient(np.array([c]), one(a), one(1e4))  # a long bound: M/M/c, what is left beyond is nothing
    assert far[0][0] < 1e-12 and far[1][0] == pytest.approx(reference.erlang_c(c, a), rel=1e-9)
    assert truncated_mean(one(c - a), one(1e4))[0] == pytest.approx(1 / (c - a))  # Erlang C's wait


def test_no_bound_in_overload_refuses_what_cannot_be_served():
    refused, wait_p = impatient(np.array([4, 1]), np.array([8.0, 1.3]), np.array([math.inf, 1e4]))
    assert refused == pytest.approx([0.5, 1 - 1 / 1.3], rel=1e-6) and wait_p == pytest.approx([1.0, 1.0])
    # The waits of the served pile up against the bound: the truncated mean tends to it.
    assert truncated_mean(one(-3.0), one(20.0))[0] == pytest.approx(20.0 - 1 / 3)


@given(st.integers(1, 12), st.floats(0.0, 30.0), st.floats(0.0, 50.0))
def test_a_longer_bound_refuses_fewer(c, a, tau):
    short = impatient(np.array([c]), one(a), one(tau))[0][0]
    longer = impatient(np.array([c]), one(a), one(tau + 0.5))[0][0]
    assert 0.0 <= longer <= short + 1e-12 <= 1.0 + 1e-12
    assert short <= reference.erlang_b(c, a) + 1e-12  # no bound refuses more than no waiting room


# ------------------------------------------------------------------------------ M/M/c/K as a cut wait


def mmck_waits(c: int, a: float, places: int) -> tuple[float, float, float]:
    """M/M/c/(c + places), mean service 1, from the textbook's stationary law (PASTA): (refused share, share of
    the admitted that wait, the mean wait of those who wait: an arrival that finds ``c + j`` waits ``j + 1``
    completions at rate ``c``)."""
    p = reference.mmck_distribution(a, 1.0, c, c + places)
    waiting = sum(p[c:-1])
    mean = sum(p[c + j] * (j + 1) / c for j in range(places)) / waiting
    return p[-1], waiting / (1.0 - p[-1]), mean


@pytest.mark.parametrize(("c", "places"), [(1, 1), (1, 5), (2, 3), (4, 4), (4, 20), (8, 24), (8, 200)])
@pytest.mark.parametrize("rho", [0.3, 0.8, 0.95, 0.999, 1.0, 1.001, 1.02, 1.1, 1.4, 3.0])
def test_a_waiting_room_is_mmck(c, places, rho):
    a = c * rho
    refused, wait_p, mean, bound = waiting_room(np.array([c]), one(a), one(float(places)))
    expected = mmck_waits(c, a, places)
    assert refused[0] == pytest.approx(expected[0], rel=1e-9, abs=1e-300)
    assert wait_p[0] == pytest.approx(expected[1], rel=1e-9)
    assert mean[0] == pytest.approx(expected[2], rel=1e-7)
    # the bound gives the cut exponential of rate c - a (what the engine's tails read) that very mean
    assert truncated_mean(one(c - a), bound)[0] == pytest.approx(expected[2], rel=1e-7)


def test_a_waiting_room_between_its_limits():
    c, a = np.array([4, 4, 4]), np.array([3.0, 3.0, 40.0])
    refused, wait_p, mean, bound = waiting_room(c, a, np.array([0.0, 2000.0, 24.0]))
    # no waiting place: Erlang B, nobody waits
    assert refused[0] == pytest.approx(reference.erlang_b(4, 3.0), rel=1e-12) and wait_p[0] == 0.0
    # a long room: M/M/c, Erlang C's share and its mean wait 1 / (c - a), the bound far beyond it
    assert refused[1] < 1e-200 and wait_p[1] == pytest.approx(reference.erlang_c(4, 3.0), rel=1e-12)
    assert mean[1] == pytest.approx(1.0, rel=1e-12) and bound[1] > 50.0
    # heavy overload (rho = 10): the admitted find the room all but full and wait nearly K completions,
    # (K - 1 / (rho - 1)) / c; a tenth is served
    assert mean[2] == pytest.approx((24 - 1 / 9) / 4, rel=1e-9) and refused[2] == pytest.approx(0.9, rel=1e-9)


@given(st.integers(1, 12), st.floats(0.05, 5.0), st.floats(0.0, 60.0))
def test_a_larger_room_refuses_fewer_and_is_continuous_in_places(c, rho, places):
    a = np.array([c * rho])
    small = waiting_room(np.array([c]), a, one(places))
    larger = waiting_room(np.array([c]), a, one(places + 0.5))
    near = waiting_room(np.array([c]), a, one(places + 1e-9))
    assert 0.0 <= larger[0][0] <= small[0][0] + 1e-12 <= 1.0 + 1e-12
    for x, y in ((small[0], near[0]), (small[1], near[1]), (small[1] * small[2], near[1] * near[2])):
        assert y[0] == pytest.approx(x[0], rel=1e-4, abs=1e-7)  # the shares and the mean wait of the admitted


def test_the_truncated_mean_between_its_limits():
    rates = np.array([5.0, 1e-9, 0.0, -1e-9, -5.0, 1e6, -1e6])
    got = truncated_mean(rates, np.full(rates.size, 2.0))
    assert got[1:4] == pytest.approx([1.0, 1.0, 1.0])  # flat: the middle
    assert got[0] == pytest.approx(0.2 - 2 * math.exp(-10) / (1 - math.exp(-10)))
    assert got[4] == pytest.approx(2.0 - got[0])  # the mirror image
    assert got[5] == pytest.approx(1e-6) and got[6] == pytest.approx(2.0 - 1e-6)
    assert truncated_mean(one(0.5), one(math.inf))[0] == pytest.approx(2.0)


def tail_by_quadrature(t: float, mean: float, p: float, rate: float, bound: float, det: bool) -> float:
    """P(Wq + S > t) by summing over the wait: Wq = 0 (1 - p) or density prop. to exp(-rate w) on [0, bound]."""
    w = np.linspace(0.0, bound if math.isfinite(bound) else 60.0 / rate, 200_001)
    f = np.exp(-rate * (w - (bound if rate < 0 else 0.0)))
    f /= np.trapezoid(f, w)
    service_late = (w + mean > t).astype(float) if det else np.exp(-np.maximum(t - w, 0) / mean)
    none = float(mean > t) if det else math.exp(-t / mean)
    return (1 - p) * none + p * float(np.trapezoid(f * service_late, w))


@pytest.mark.parametrize(("t", "mean", "p", "rate", "bound", "det"), [
    (2.0, 1.0, 0.7, 0.5, 1.5, False), (2.0, 1.0, 0.7, -0.8, 1.5, False), (3.0, 0.5, 0.9, -30.0, 2.0, False),
    (1.0, 1.0, 0.5, 1.0, 0.5, False), (0.3, 1.0, 0.7, 0.0, 1.5, False), (2.0, 1.0, 0.7, 1.0, 1.5, False),
    (2.0, 1.0, 0.7, -0.8, 1.5, True), (1.6, 1.0, 0.4, 3.0, 2.0, True), (0.5, 1.0, 0.4, 3.0, 2.0, True),
])
def test_the_tail_of_a_response_with_a_bounded_wait(t, mean, p, rate, bound, det):
    got = response_tail(one(t), one(mean), one(p), one(rate), np.array([det]), one(bound))[0]
    assert got == pytest.approx(tail_by_quadrature(t, mean, p, rate, bound, det), abs=1e-6)


def test_an_unreachable_bound_is_no_bound():
    rng = np.random.default_rng(7)
    n = 200
    t, mean, p = rng.uniform(0, 5, n), rng.uniform(0.1, 2, n), rng.uniform(0, 1, n)
    rate, det = rng.uniform(0.05, 5, n), rng.random(n) < 0.3
    free = response_tail(t, mean, p, rate, det)
    assert response_tail(t, mean, p, rate, det, np.full(n, math.inf)) == pytest.approx(free, abs=1e-12)
    assert response_tail(t, mean, p, rate, det, np.full(n, 1e3)) == pytest.approx(free, abs=1e-12)


def conditional_by_quadrature(t: float, mean: float, p: float, rate: float, bound: float) -> tuple[float, float]:
    """(E[X | X <= t], the median of X given X <= t) for X = Wq + S with exponential S, by summing over the
    wait: given Wq = w, ``P(S <= x - w)`` and ``E[S; S <= x - w]`` are closed forms."""
    w = np.linspace(0.0, bound if math.isfinite(bound) else 60.0 / rate, 200_001)
    f = np.exp(-rate * (w - (bound if rate < 0 else 0.0)))
    f /= np.trapezoid(f, w)

    def below(x: float) -> float:
        left = np.maximum(x - w, 0.0)
        return (1 - p) * -math.expm1(-x / mean) + p * float(np.trapezoid(f * -np.expm1(-left / mean), w))

    left = np.maximum(t - w, 0.0)
    part = mean * (1.0 - np.exp(-left / mean) * (1.0 + left / mean))  # E[S; S <= t - w]
    time = (1 - p) * mean * (1.0 - math.exp(-t / mean) * (1.0 + t / mean)) \
        + p * float(np.trapezoid(f * (w * -np.expm1(-left / mean) + part), w))
    total = below(t)
    lo, hi = 0.0, t
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if below(mid) < 0.5 * total else (lo, mid)
    return time / total, lo


@pytest.mark.parametrize(("t", "mean", "p", "rate", "bound"), [
    (3.0, 1.0, 0.8, 0.2, math.inf), (8.0, 1.0, 0.8, 0.2, math.inf), (2.5, 1.0, 0.45, 1.6, math.inf),
    (2.5, 1.0, 0.9, -2.4, 0.5), (3.0, 1.0, 0.78, -0.3, 2.0), (1e3, 1.0, 0.8, 0.2, math.inf),
    (1e3, 1.0, 0.5, 1.0, math.inf), (2.0, 1.0, 0.5, 1.0, math.inf),  # the wait's rate the service's
])
def test_the_cells_of_the_responses_that_beat_a_deadline(t, mean, p, rate, bound):
    cut = None if math.isinf(bound) else one(bound)
    values, shares = response_cells(one(t), one(mean), one(p), one(rate), np.array([False]), cut)
    assert shares.sum() == pytest.approx(1.0) and (values <= t + 1e-12).all() and (np.diff(values) > 0).all()
    exact_mean, exact_median = conditional_by_quadrature(t, mean, p, rate, bound)
    assert float((values * shares).sum()) == pytest.approx(exact_mean, rel=2e-3)
    cum = np.cumsum(shares[0])
    k = int(np.searchsorted(cum, 0.5))  # the median is in the cell that holds the 50th percentile
    assert values[0, max(k - 1, 0)] <= exact_median <= values[0, min(k + 1, values.shape[1] - 1)]


def test_cells_of_an_mm1_response_without_a_deadline():
    """M/M/1: the response is exponential at rate mu - lam; far from the deadline its mean is 1 / (mu - lam)."""
    lam = 0.8
    values, shares = response_cells(one(1e3), one(1.0), one(lam), one(1 - lam), np.array([False]))
    assert float((values * shares).sum()) == pytest.approx(1 / (1 - lam), rel=1e-3)


def test_cells_with_deterministic_service_start_at_it():
    values, shares = response_cells(one(100.0), one(1.0), one(0.4), one(2.0), np.array([True]))
    assert values[0, 0] == 1.0 and shares[0, 0] == pytest.approx(0.6, rel=1e-4)  # those who do not wait
    assert float((values * shares).sum()) == pytest.approx(1.0 + 0.4 * 0.5, rel=1e-3)  # + P(wait) / theta


# ------------------------------------------------------------------------------ retries of refused tries


def expm(q: np.ndarray) -> np.ndarray:
    """exp(q) by scaling and squaring a Taylor series: brute force, for small matrices."""
    squarings = max(0, int(np.ceil(np.log2(max(np.abs(q).sum(axis=1).max(), 1e-300)))) + 4)
    x = q / 2.0**squarings
    out, term = np.eye(len(q)), np.eye(len(q))
    for k in range(1, 30):
        term = term @ x / k
        out = out + term
    for _ in range(squarings):
        out = out @ out
    return out


def brute_from_full(birth: np.ndarray, death: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The mean of P(X(t) = n | X(0) = K) over t uniform on [lo, hi], by the generator's exponential at
    Simpson's points."""
    K = birth.size
    q = np.diag(birth, 1) + np.diag(death[1:], -1)
    q -= np.diag(q.sum(axis=1))
    if hi == lo:
        return expm(q * lo)[K]
    ts = np.linspace(lo, hi, 201)
    weights = np.ones(ts.size)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    rows = np.array([expm(q * t)[K] for t in ts])
    return weights @ rows / weights.sum()


@pytest.mark.parametrize(("birth", "death"), [
    ([3.0, 3.0, 3.0, 3.0], [0.0, 1.0, 2.0, 3.0, 4.0]),  # M/M/4/4 at 3 erlangs
    ([0.5, 2.0, 7.0, 0.1, 4.0], [0.0, 1.0, 1.0, 3.0, 0.5, 2.0]),  # any birth-death chain
    ([0.5], [0.0, 1.0]),  # M/M/1/1
])
def test_from_full_is_the_chains_transient_averaged_over_the_delay(birth, death):
    birth, death = np.array(birth), np.array(death)
    spans = np.array([[0.0, 0.0], [0.0, 0.1], [0.3, 0.3], [0.5, 3.0], [40.0, 60.0]])
    got = from_full(birth, death, spans)
    for (lo, hi), row in zip(spans, got, strict=True):
        assert row == pytest.approx(brute_from_full(birth, death, lo, hi), abs=1e-9)
    assert got[0] == pytest.approx(np.eye(birth.size + 1)[-1])  # at once: still full
    assert got.sum(axis=1) == pytest.approx(np.ones(len(spans)))


@pytest.mark.parametrize(("c", "q", "a"), [(4, 0, 3.0), (1, 0, 0.5), (4, 2, 3.0), (8, 20, 7.5)])
def test_without_retries_the_queue_refuses_what_mmck_does(c, q, a):
    refused, again = retrial_blocking(c, q, a, np.zeros(2), np.array([[0.0, 0.1], [0.0, 0.2]]))
    expected = float(blocking(one(c), one(a), one(float(q)))[0])
    assert refused == pytest.approx(expected, rel=1e-9)
    assert again == pytest.approx([expected, expected], rel=1e-9)


@pytest.mark.parametrize(("c", "q", "a", "full"), [(4, 0, 3.0, 0.7), (1, 0, 0.5, 0.4), (4, 2, 3.0, 0.3),
                                                   (4, 300, 3.9, 0.2)])
def test_retries_after_a_long_backoff_meet_the_queue_as_random_tries_do(c, q, a, full):
    """Long against the queue's relaxation time, a retry comes at random: M/M/c/K at all the tries' load
    (also on a queue longer than the window its retries' chain is followed on)."""
    refused, again = retrial_blocking(c, q, a, np.array([full]), np.array([[5000.0, 10000.0]]))
    expected = float(blocking(one(c), one(a + full), one(float(q)))[0])
    assert refused == pytest.approx(expected, rel=1e-6)
    assert again == pytest.approx([expected], rel=1e-6)


@pytest.mark.parametrize(("c", "q", "a"), [(4, 0, 3.0), (1, 0, 0.5), (4, 2, 3.0)])
def test_retries_at_once_are_refused_and_short_ones_bunch(c, q, a):
    """A retry at once finds the queue full still and changes nothing; a short backoff refuses retries
    more than random tries, less the longer it is."""
    refused, again = retrial_blocking(c, q, a, np.array([0.5]), np.array([[0.0, 0.0]]))
    assert again == pytest.approx([1.0])
    assert refused == pytest.approx(float(blocking(one(c), one(a), one(float(q)))[0]), rel=1e-9)
    spans = np.array([[0.0, 0.1], [0.0, 0.2], [0.0, 1.0]])
    refused, again = retrial_blocking(c, q, a, np.array([0.3, 0.2, 0.1]), spans)
    assert 1.0 > again[0] > again[1] > again[2] > refused


def test_the_docstring_examples_hold():
    result = doctest.testmod(sim.queueing)
    assert result.attempted > 0 and result.failed == 0


def _killed_chain_rate(lam: float, mu: float, c: int, m: int) -> float:
    """The same rate by another road: the stationary distribution of the chain on 0..m whose arrival at
    m sends it back to 0 (a linear solve), and the flux of those arrivals, ``lam · p_m``."""
    n = m + 1
    q = np.zeros((n, n))
    for k in range(n):
        q[k, k + 1 if k < m else 0] += lam
        if k > 0:
            q[k, k - 1] += min(k, c) * mu
    q -= np.diag(q.sum(axis=1))
    a = np.vstack([q.T, np.ones(n)])
    p = np.linalg.lstsq(a, np.r_[np.zeros(n), 1.0], rcond=None)[0]
    return lam * p[m]


@given(lam=st.floats(0.1, 50.0), mu=st.floats(0.1, 10.0), c=st.integers(1, 12), m=st.integers(0, 40))
def test_first_passage_rate_is_the_flux_of_a_chain_restarted_empty(lam, mu, c, m):
    expected = _killed_chain_rate(lam, mu, c, m)
    got = float(first_passage_rate(np.array(lam), np.array(mu), np.array(float(c)), np.array(float(m))))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_first_passage_rate_far_below_the_level_is_the_stationary_tail_seen_once_per_excursion():
    """M/M/4 at 85%, level 50: the chain rarely gets there, so restarts hardly matter, and of the
    arrivals that find 50 in system (``lam · P(N = 50)``) only the first of each excursion counts: about
    ``1 − rho`` of them, the chance that the excursion turns down at once (within 1%)."""
    lam, mu, c = 68.0, 20.0, 4
    a, rho = lam / mu, lam / mu / c
    p0 = 1.0 / (sum(a**j / math.factorial(j) for j in range(c)) + a**c / math.factorial(c) / (1 - rho))
    tail = lam * p0 * a**c / math.factorial(c) * rho ** (50 - c)
    assert float(first_passage_rate(lam, mu, c, 50)) == pytest.approx(tail * (1 - rho), rel=0.01)


@given(st.integers(1, 64), st.floats(0.0, 3.0))
def test_a_growing_queues_lead_is_the_stationary_wait_at_the_mirrored_load(c, rho):
    workers = np.array([float(c)])
    lead = float(mirrored(workers * rho, workers)[0])
    if rho <= 1.0:
        assert lead == pytest.approx(c * rho)  # the workers keep up: the load itself
    else:
        assert lead == pytest.approx(c * max(2.0 - rho, 0.0))  # less the further past capacity, none from 2c


@pytest.mark.parametrize("eps", [0.1, 0.03, 0.01])
def test_the_mirrored_mm1_queue_holds_the_brownian_lead_in_heavy_traffic(eps):
    """M/M/1 at 1 + eps runs ahead of its fluid path by sigma^2 / 2m = (2 + eps) / 2 eps requests (Brownian
    reflection); the stationary M/M/1 at the mirrored 1 - eps holds rho^2 / (1 - rho) waiting: their ratio,
    2 (1 - eps)^2 / (2 + eps) = 1 - 2.5 eps + O(eps^2), tends to 1 as the overload vanishes."""
    rho = float(mirrored(np.array([1.0 + eps]), np.array([1.0]))[0])
    waiting = rho * rho / (1.0 - rho)
    brownian = (2.0 + eps) / (2.0 * eps)
    assert abs(waiting / brownian - 1.0) <= 3.0 * eps


@given(room=st.floats(-2.0, 3.0), sd=st.floats(0.01, 1.0), wait_p=st.floats(0.0, 1.0), rate=st.floats(0.1, 50.0))
def test_spread_tail_is_the_tail_of_a_normal_plus_a_stationary_wait(room, sd, wait_p, rate):
    """P(X + E > room), X normal, E = 0 or exponential: against the convolution, integrated numerically
    over the normal's density (E > room − x: certain below x = room, else e^(−rate (room − x)))."""
    x = np.linspace(-9.0 * sd, 9.0 * sd, 400_001)
    density = np.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))
    beyond = np.exp(-rate * np.maximum(room - x, 0.0))
    waited = float(np.trapezoid(density * beyond, x))
    expected = (1.0 - wait_p) * 0.5 * math.erfc(room / (sd * math.sqrt(2.0))) + wait_p * waited
    got = float(spread_tail(np.array([room]), np.array([sd]), np.array([wait_p]), np.array([rate]))[0])
    assert got == pytest.approx(expected, abs=2e-4)


def test_spread_tail_without_spread_is_the_stationary_tail():
    room, wait_p, rate = np.array([-0.5, 0.0, 0.3, 2.0]), np.full(4, 0.4), np.full(4, 5.0)
    got = spread_tail(room, np.zeros(4), wait_p, rate)
    assert got.tolist() == [1.0, 1.0, pytest.approx(0.4 * math.exp(-1.5)), pytest.approx(0.4 * math.exp(-10.0))]
    # and a far tail neither overflows nor loses the exponential's part
    far = spread_tail(np.array([30.0]), np.array([0.5]), np.array([1.0]), np.array([40.0]))
    assert 0.0 <= far[0] < 1e-300 or far[0] == pytest.approx(math.exp(-40.0 * 30.0 + 0.5 * 20.0 ** 2), rel=1e-6)
