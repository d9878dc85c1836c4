"""The closed forms of ``queueing.py`` against published numbers and against each other."""

import math

import pytest
from queueing import (
    across_seeds,
    availability,
    erlang_b,
    erlang_c,
    mm1_response_quantile,
    mmc_mean_response,
    mmc_mean_wait,
    mmck_distribution,
)


@pytest.mark.parametrize(
    ("c", "a", "expected"),
    [
        (1, 1.0, 0.5),  # B(1, a) = a / (1 + a)
        (2, 1.0, 0.2),  # (a^2/2) / (1 + a + a^2/2)
        (10, 7.0, 0.07874),  # the figure; also Erlang B tables
        (4, 3.0, 0.2061),
    ],
)
def test_erlang_b(c: int, a: float, expected: float) -> None:
    assert erlang_b(c, a) == pytest.approx(expected, abs=5e-5)


def test_erlang_b_matches_the_direct_formula() -> None:
    c, a = 10, 7.0
    terms = [a**k / math.factorial(k) for k in range(c + 1)]
    assert erlang_b(c, a) == pytest.approx(terms[-1] / sum(terms), rel=1e-12)


def test_erlang_c_mm4() -> None:
    assert erlang_c(4, 3.0) == pytest.approx(0.5094, abs=5e-5)
    # W_q = C / (c mu - lam), and c mu - lam = 1 here
    assert mmc_mean_wait(3.0, 1.0, 4) == pytest.approx(0.5094, abs=5e-5)
    assert mmc_mean_response(3.0, 1.0, 4) == pytest.approx(1.5094, abs=5e-5)


def test_erlang_c_of_one_server_is_rho() -> None:
    assert erlang_c(1, 0.8) == pytest.approx(0.8)
    assert mmc_mean_response(0.8, 1.0, 1) == pytest.approx(5.0)  # 1 / (mu - lam)


def test_erlang_c_refuses_an_unstable_queue() -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(4, 4.0)


def test_mm1_p99() -> None:
    assert mm1_response_quantile(0.8, 1.0, 0.99) == pytest.approx(23.03, abs=5e-3)  # ln(100) / 0.2


def test_mmck_reduces_to_erlang_b_without_waiting_room() -> None:
    p = mmck_distribution(7.0, 1.0, 10, 10)
    assert sum(p) == pytest.approx(1.0)
    assert p[-1] == pytest.approx(erlang_b(10, 7.0), rel=1e-12)


def test_mm2_with_three_waiting_places() -> None:
    p = mmck_distribution(2.0, 1.0, 2, 5)  # weights 1, 2, 2, 2, 2, 2
    assert p == pytest.approx([1 / 11] + [2 / 11] * 5)


def test_availability() -> None:
    assert availability(100.0, 10.0) == pytest.approx(100 / 110)


def test_estimate_tolerance_and_resolution() -> None:
    est = across_seeds([1.0, 1.1, 0.9, 1.0])
    assert est.mean == pytest.approx(1.0)
    assert est.se == pytest.approx(math.sqrt(0.02 / 3) / 2)
    est.check(1.0, floor=0.01, resolves=1.0)
    with pytest.raises(AssertionError, match="vs theory"):
        est.check(2.0, floor=0.01, resolves=1.0)
    with pytest.raises(AssertionError, match="not below the bias"):
        est.check(1.0, floor=0.01, resolves=0.1)
