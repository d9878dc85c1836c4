"""The queueing formulas of load-balanced pools (:mod:`sim.balancing`) against their limits, against
Markov chains built here independently (every server labelled, every queue length, solved densely), and
as the balancers' fluid views use them."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest

import sim.balancing
from sim.balancing import PoolChain, erlang_arrivals, refined_mean_field, shortest_queue, two_choices
from sim.policies import BALANCERS
from sim.policies.balancers import PoolLoad
from sim.queueing import erlang, supermarket


def one(x: float) -> np.ndarray:
    return np.array([x])


def mean_wait(formula, rho: float, n: int, c: int) -> tuple[float, float]:
    """(P(wait), mean wait in services) of a formula returning (P(wait), rate)."""
    p, rate = formula(one(rho), n, c)
    return float(p[0]), float(p[0] / rate[0])


def mmc(rho: float, c: int) -> tuple[float, float]:
    _, wait_p = erlang(np.array([c]), one(c * rho))
    return float(wait_p[0]), float(wait_p[0] / (c * (1 - rho)))


def stationary(generator: np.ndarray) -> np.ndarray:
    """The stationary law of a generator (rows add up to 0)."""
    system = generator.T.copy()
    system[-1, :] = 1.0
    rhs = np.zeros(len(system))
    rhs[-1] = 1.0
    return np.linalg.solve(system, rhs)


def erlang_chain(n: int, c: int, rho: float, top: int = 400) -> tuple[float, float]:
    """E_n/M/c as a chain of (arrival phase, requests in the system), up to ``top`` requests."""
    rate = n * c * rho  # each of the n phases of an interarrival time
    size = n * (top + 1)
    q = np.zeros((size, size))
    for j in range(top + 1):
        for phase in range(n):
            i = j * n + phase
            if phase < n - 1:
                q[i, i + 1] += rate
            elif j < top:
                q[i, (j + 1) * n] += rate
            if j > 0:
                q[i, i - n] += min(j, c)
    q -= np.diag(q.sum(axis=1))
    pi = stationary(q).reshape(top + 1, n)
    arriving = pi[:, n - 1] / pi[:, n - 1].sum()  # an arrival ends the last phase
    queue = np.arange(top + 1)
    return float(arriving[c:].sum()), float((arriving * np.maximum(queue - c + 1, 0)).sum() / c)


def labelled_pool(n: int, c: int, rho: float, route: str, top: int) -> tuple[float, float]:
    """A pool of n labelled servers, each with up to ``top`` requests, as the request engine's balancers
    pick: the shortest queue (first of the shortest), or the shorter of two drawn with replacement (the
    first drawn on a tie). Returns (P(an arrival waits), its mean wait in services)."""
    states = list(itertools.product(range(top + 1), repeat=n))
    index = {s: i for i, s in enumerate(states)}
    lam = n * c * rho
    q = np.zeros((len(states), len(states)))
    waits, ahead = np.zeros(len(states)), np.zeros(len(states))
    for s in states:
        i = index[s]
        if route == "shortest":
            picks = {min(range(n), key=lambda k: s[k]): 1.0}
        else:
            picks = {}
            for a, b in itertools.product(range(n), repeat=2):
                chosen = b if s[b] < s[a] else a
                picks[chosen] = picks.get(chosen, 0.0) + 1.0 / n**2
        for k, p in picks.items():
            waits[i] += p * (s[k] >= c)
            ahead[i] += p * max(s[k] - c + 1, 0)
            if s[k] < top:
                q[i, index[s[:k] + (s[k] + 1,) + s[k + 1:]]] += lam * p
        for k in range(n):
            if s[k] > 0:
                q[i, index[s[:k] + (s[k] - 1,) + s[k + 1:]]] += min(s[k], c)
    q -= np.diag(q.sum(axis=1))
    pi = stationary(q)
    return float(pi @ waits), float(pi @ ahead / c)


def test_the_docstring_examples_hold():
    result = doctest.testmod(sim.balancing)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------------------------------------ round robin: E_n/M/c


@pytest.mark.parametrize("c", [1, 2, 8])
@pytest.mark.parametrize("rho", [0.3, 0.7, 0.95])
def test_one_server_in_turn_is_mmc(c, rho):
    p, rate = erlang_arrivals(one(rho), 1, c)
    exact, _ = mmc(rho, c)
    assert p[0] == pytest.approx(exact, rel=1e-4)
    assert rate[0] == pytest.approx(c * (1 - rho), rel=1e-6)


@pytest.mark.parametrize(("n", "c", "rho"),
                         [(2, 1, 0.5), (3, 1, 0.9), (4, 2, 0.9), (5, 4, 0.7), (16, 1, 0.9), (8, 8, 0.95)])
def test_erlang_arrivals_match_their_markov_chain(n, c, rho):
    p, w = mean_wait(erlang_arrivals, rho, n, c)
    chain_p, chain_w = erlang_chain(n, c, rho, top=max(60, 3000 // n))
    assert p == pytest.approx(chain_p, rel=2e-4)
    assert w == pytest.approx(chain_w, rel=2e-4)


def test_erlang_arrivals_tend_to_deterministic_arrivals():
    """D/M/1: an arrival waits with probability sigma = exp(-(1 - sigma) / rho), for Exp(1 - sigma)."""
    rho = 0.9
    sigma = 0.5
    for _ in range(2000):
        sigma = math.exp(-(1 - sigma) / rho)
    p, rate = erlang_arrivals(one(rho), 5000, 1)
    assert p[0] == pytest.approx(sigma, rel=1e-3)
    assert rate[0] == pytest.approx(1 - sigma, rel=1e-2)


@pytest.mark.parametrize("c", [1, 4])
def test_the_more_servers_in_turn_the_less_a_server_waits(c):
    waits = [mean_wait(erlang_arrivals, 0.85, n, c)[1] for n in (1, 2, 4, 16, 64)]
    assert all(a > b for a, b in itertools.pairwise(waits))


# ------------------------------------------------------------------------------ the shortest queue


@pytest.mark.parametrize("c", [1, 4])
def test_a_pool_of_one_is_mmc(c):
    for formula in (shortest_queue, two_choices):
        p, w = mean_wait(formula, 0.9, 1, c)
        assert (p, w) == pytest.approx(mmc(0.9, c), rel=1e-12)


# The labelled pools stop at ``top`` requests a server, which shortens their waits a little: these are
# chosen where that is below the tolerance (one more request a server moves them by less).
@pytest.mark.parametrize(("n", "c", "rho", "top"), [(2, 1, 0.8, 60), (2, 2, 0.8, 40), (3, 1, 0.6, 12), (3, 2, 0.7, 14)])
def test_the_shortest_queue_chain_is_the_pools(n, c, rho, top):
    exact = labelled_pool(n, c, rho, "shortest", top)
    assert PoolChain(n, c).solve(rho) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize(("n", "c", "rho", "top"), [(2, 1, 0.8, 60), (3, 2, 0.6, 14)])
def test_two_choices_chain_is_the_pools(n, c, rho, top):
    exact = labelled_pool(n, c, rho, "two", top)
    assert PoolChain(n, c, "two").solve(rho) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize(("n", "c", "rho", "limits"), [(4, 2, 0.95, (12, 3)), (8, 1, 0.95, (6, 4)),
                                                        (16, 1, 0.95, (4, 3)), (16, 4, 0.95, (4, 3))])
def test_the_shapes_left_out_hardly_matter(n, c, rho, limits):
    """The chain keeps the shapes that hold the pool: more of them change its answers by < 0.2% at 0.95."""
    kept = PoolChain(n, c).solve(rho)
    more = PoolChain(n, c, limits=limits).solve(rho)
    assert kept[0] == pytest.approx(more[0], rel=2e-3)
    assert kept[1] == pytest.approx(more[1], rel=2e-3)


@pytest.mark.parametrize(("n", "c"), [(4, 2), (16, 1), (32, 8)])
def test_reading_between_grid_points_is_close_to_solving_there(n, c):
    for rho in (0.62, 0.87, 0.93):
        p, w = mean_wait(shortest_queue, rho, n, c)
        exact_p, exact_w = PoolChain(n, c).solve(rho)
        assert p == pytest.approx(exact_p, rel=2e-3)
        assert w == pytest.approx(exact_w, rel=2e-3)


@pytest.mark.parametrize(("n", "c"), [(2, 1), (4, 2), (8, 1), (16, 4), (32, 1), (64, 1)])
@pytest.mark.parametrize("rho", [0.7, 0.9])
def test_balancing_waits_between_one_queue_and_chance(n, c, rho):
    """One M/M/(n c) queue waits least; then the shortest queue, the shorter of two, taking turns, and
    independent M/M/c queues (random choice)."""
    pooled = mmc(rho, n * c)[1]
    waits = [mean_wait(f, rho, n, c)[1] for f in (shortest_queue, two_choices, erlang_arrivals)]
    assert pooled < waits[0] < waits[1] < waits[2] < mmc(rho, c)[1]


def test_larger_pools_than_the_chain_solves_wait_less():
    waits = [mean_wait(shortest_queue, 0.9, n, 1)[1] for n in (16, 32, 33, 64, 256)]
    assert all(a > b for a, b in itertools.pairwise(waits))


def test_a_bad_route_is_named():
    with pytest.raises(ValueError, match="route must be 'shortest' or 'two', not 'best'"):
        PoolChain(2, 1, "best")


# ------------------------------------------------------------------------------ two choices


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_the_refined_mean_field_starts_from_the_supermarket_model(c, rho):
    p0, _, w0, _ = refined_mean_field(rho, c)
    p, w = supermarket(one(rho), c, 2)
    assert p0 == pytest.approx(p[0], rel=1e-9)
    assert w0 == pytest.approx(w[0], rel=1e-9)


@pytest.mark.parametrize("c", [1, 2])
def test_large_pools_approach_the_supermarket_model_as_1_over_n(c):
    rho = 0.9
    p0, p1, w0, w1 = refined_mean_field(rho, c)
    far_p, far_w = mean_wait(two_choices, rho, 10**9, c)  # read between grid points as the others are
    assert (far_p, far_w) == pytest.approx((p0, w0), rel=2e-4)
    for n in (1000, 10_000):
        p, w = mean_wait(two_choices, rho, n, c)
        assert n * (w - far_w) == pytest.approx(w1, rel=20 / n + 2e-3)
        assert n * (p - far_p) == pytest.approx(p1, rel=20 / n + 2e-3)


def test_two_choices_of_three_is_their_chain():
    p, w = mean_wait(two_choices, 0.7, 3, 2)
    assert (p, w) == pytest.approx(PoolChain(3, 2, "two").solve(0.7), rel=2e-3)


# ------------------------------------------------------------------------------ the fluid views


def pool_load(load: float, n: int, c: int = 4, cs2: float = 1.0, per_try: float = 0.1) -> PoolLoad:
    same = np.array([load])
    return PoolLoad(same, same, np.array([float(c)]), np.array([c]), np.array([per_try]), np.array([cs2]),
                    np.array([float(n)]), np.array([float(n)]))


@pytest.mark.parametrize(("name", "formula"), [("round_robin", erlang_arrivals), ("least_outstanding", shortest_queue),
                                               ("power_of_two", two_choices)])
def test_a_fluid_view_is_its_formula_per_second(name, formula):
    wait_p, theta = BALANCERS[name].fluid_wait(pool_load(3.4, 6))
    p, rate = formula(one(3.4 / 4), 6, 4)
    assert wait_p[0] == pytest.approx(p[0])
    assert theta[0] == pytest.approx(rate[0] / 0.1)


@pytest.mark.parametrize("name", ["round_robin", "least_outstanding", "power_of_two"])
def test_regular_service_shortens_the_wait_as_allen_cunneen_says(name):
    exponential = BALANCERS[name].fluid_wait(pool_load(3.4, 6))
    regular = BALANCERS[name].fluid_wait(pool_load(3.4, 6, cs2=0.0))
    ca2 = 1 / 6 if name == "round_robin" else 1.0
    assert regular[0][0] == exponential[0][0]
    assert exponential[1][0] / regular[1][0] == pytest.approx(ca2 / (ca2 + 1))


@pytest.mark.parametrize("name", ["round_robin", "least_outstanding", "power_of_two"])
def test_an_idle_pool_does_not_wait(name):
    wait_p, theta = BALANCERS[name].fluid_wait(pool_load(0.0, 6))
    assert wait_p[0] == 0.0 and theta[0] > 0
