"""Analytic reliability: how often k of n repairable units are up, from their Markov model.

The structure of a layout alone — how many servers, how many copies of a database and where, how fast
they fail and are repaired, by how many crews — fixes how often a database has every copy down, with no
traffic simulated. These free functions compute it; the tests check the random faults of both engines
against them (``tests/validation/test_repairman.py``), and :func:`sim.bounds.structure_bound` applies
them to a scenario: what a planner shows beside its simulated figures as the "structure-only bound".
Pure numpy: it knows nothing of scenarios.

**The model** (the machine-repairman model: Gross & Harris, *Fundamentals of Queueing Theory*, §2.7,
finite-source queues; Trivedi, *Probability and Statistics with Reliability, Queuing and Computer Science
Applications*, ch. 8, birth–death processes). ``n`` identical units each fail at rate λ = 1/MTBF while
up; ``c`` crews repair one failed unit each at rate μ = 1/MTTR, the others waiting. The number down, j,
is a birth–death chain, from j to j + 1 at rate ``(n − j) λ`` and to j − 1 at ``min(j, c) μ``, whose
stationary distribution is

    π_j ∝ n! / (n − j)! · (λ/μ)^j / ∏_{i=1..j} min(i, c).

With ``c = n`` (independent repair, cascadesim's default) the units are independent and π is binomial
with P(down) = λ / (λ + μ) = MTTR / (MTBF + MTTR). Only the ratio MTTR/MTBF enters: with ``c = n``
the answer holds for any distribution of up and repair times (each unit is an alternating renewal
process), with ``c < n`` exactly for exponential ones, which is what cascadesim draws.

**Which units are down.** The units are exchangeable, so given j down every set of j units is equally
likely to be the down set. A given set of ``a`` units is all down and another of ``b`` all up with
probability Σ_j π_j · C(n − a − b, j − a) / C(n, j): the copies of a database on ``m`` of the ``n``
servers are all down with Σ_j π_j · C(j, m) / C(n, m), which is ``q^m`` with independent repair.

>>> round(pool_availability(4, 3, mtbf=1000.0, mttr=10.0), 6)  # 3 of 4 up, independent repair
0.99942
>>> round(pool_availability(4, 3, mtbf=1000.0, mttr=10.0, crews=1), 6)  # one crew: two down twice as often
0.998824
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "MINUTES_PER_YEAR",
    "down_distribution",
    "expected_down",
    "expected_up",
    "pool_availability",
    "set_probability",
    "all_down",
    "minutes_per_year",
]

MINUTES_PER_YEAR = 365 * 24 * 60
"""Minutes in the year of :mod:`sim.units` (``1y`` is 365 days): 525,600."""


def _check(n: int, mtbf: float, mttr: float, crews: int | None) -> None:
    if n < 1:
        raise ValueError(f"a pool needs at least one unit (got n = {n})")
    if not (mtbf > 0 and mttr > 0 and math.isfinite(mtbf) and math.isfinite(mttr)):
        raise ValueError(f"mtbf and mttr must be finite and more than 0 (got mtbf {mtbf:g}, mttr {mttr:g})")
    if crews is not None and crews < 1:
        raise ValueError(f"crews must be at least 1, or None for one per unit (got {crews})")


def down_distribution(n: int, mtbf: float, mttr: float, crews: int | None = None) -> np.ndarray:
    """Stationary probabilities of 0, 1, …, n units down (the machine-repairman chain; see the module).

    ``crews=None`` (or ``crews >= n``) is independent repair. Computed in logarithms, so a fleet of
    10^5 units with one crew neither overflows nor divides by zero.

    >>> down_distribution(2, mtbf=1.0, mttr=0.5, crews=1).round(4).tolist()  # (1 : 1 : 0.5) / 2.5
    [0.4, 0.4, 0.2]
    >>> down_distribution(2, mtbf=1.0, mttr=0.5).round(4).tolist()  # binomial, P(down) = 1/3
    [0.4444, 0.4444, 0.1111]
    """
    _check(n, mtbf, mttr, crews)
    c = n if crews is None else min(crews, n)
    j = np.arange(1, n + 1, dtype=float)  # the step from j - 1 down to j
    log_step = np.log(n - j + 1.0) + math.log(mttr / mtbf) - np.log(np.minimum(j, c))
    log_w = np.concatenate(([0.0], np.cumsum(log_step)))
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def expected_down(n: int, mtbf: float, mttr: float, crews: int | None = None) -> float:
    """Mean number of the ``n`` units down (failed, waiting for a crew or under repair).

    >>> round(expected_down(10, mtbf=90.0, mttr=10.0), 12)  # n · MTTR / (MTBF + MTTR)
    1.0
    """
    pi = down_distribution(n, mtbf, mttr, crews)
    return float(np.dot(np.arange(n + 1), pi))


def expected_up(n: int, mtbf: float, mttr: float, crews: int | None = None) -> float:
    """Mean number of the ``n`` units up."""
    return n - expected_down(n, mtbf, mttr, crews)


def pool_availability(n: int, k: int, mtbf: float, mttr: float, crews: int | None = None) -> float:
    """Probability that at least ``k`` of the ``n`` units are up (a k-of-n pool): 1 − Σ_{j > n − k} π_j.

    Summed from the tail, so an unavailability of 10^-12 keeps its digits.
    """
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n = {n} units (got k = {k})")
    pi = down_distribution(n, mtbf, mttr, crews)
    return float(max(0.0, 1.0 - pi[n - k + 1 :].sum()))


def set_probability(
    n: int, down: int, up: int, mtbf: float, mttr: float, crews: int | None = None
) -> float:
    """Probability that ``down`` given units of the ``n`` are all down and ``up`` other given ones all up.

    Σ_j π_j · C(n − down − up, j − down) / C(n, j) (exchangeable units; see the module).

    >>> round(set_probability(3, 1, 1, mtbf=2.0, mttr=1.0), 6)  # independent: q (1 - q), q = 1/3
    0.222222
    """
    if down < 0 or up < 0 or down + up > n:
        raise ValueError(f"down + up must be at most n = {n} units, each at least 0 (got down {down}, up {up})")
    return _set_probability(n, down, up, mtbf, mttr, crews)


@functools.lru_cache(maxsize=4096)
def _set_probability(n: int, down: int, up: int, mtbf: float, mttr: float, crews: int | None) -> float:
    pi = down_distribution(n, mtbf, mttr, crews)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=float)))))
    rest = n - down - up
    j = np.arange(down, down + rest + 1)  # the down sets that hold the given ones and spare the others
    log_ratio = (  # C(rest, j - down) / C(n, j)
        log_fact[rest] - log_fact[j - down] - log_fact[rest - (j - down)]
        - (log_fact[n] - log_fact[j] - log_fact[n - j])
    )
    return float(min(1.0, np.dot(pi[j], np.exp(log_ratio))))


def all_down(m: int, n: int, mtbf: float, mttr: float, crews: int | None = None) -> float:
    """Probability that ``m`` given units of the ``n`` (a database's copies on their servers) are all down.

    >>> round(all_down(2, 4, mtbf=90.0, mttr=10.0), 6)  # independent repair: 0.1 ** 2
    0.01
    """
    return set_probability(n, m, 0, mtbf, mttr, crews)


def minutes_per_year(unavailability: float) -> float:
    """Expected minutes a year of ``unavailability`` (a share of the time): 0.0001 → 52.56 minutes."""
    return unavailability * MINUTES_PER_YEAR
