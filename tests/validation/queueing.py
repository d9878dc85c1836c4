"""Closed-form results the engine is validated against, and the statistics of the comparison.

Formulas (Kleinrock, *Queueing Systems* vol. 1; Gross & Harris, *Fundamentals of Queueing Theory*):

- Erlang B, the blocking probability of M/M/c/c with offered load ``a = lam / mu`` erlangs, by the
  stable recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``;
- Erlang C, the probability that an arrival to M/M/c waits, ``C = B / (1 - rho (1 - B))`` with
  ``rho = a / c``; the mean wait is ``C / (c mu - lam)``;
- M/M/c/K (``K - c`` waiting places) from its birth-death stationary distribution;
- M/M/1+D, an arrival refused when the work it finds exceeds ``D``: that work has an atom ``p0`` at 0,
  density ``p0 lam e^((lam - mu) v)`` below ``D`` and ``f(D) e^(-mu (v - D))`` above (Gross & Harris, the
  virtual-wait balance); the worker serves ``mu (1 - p0)`` a second;
- the M/M/1 response time is exponential with rate ``mu - lam``;
- a repairable unit with exponential up and down times is up a fraction ``MTBF / (MTBF + MTTR)``
  of the time, and by PASTA a Poisson arrival finds it up with that probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "erlang_b",
    "erlang_c",
    "mmc_mean_wait",
    "mmc_mean_response",
    "mm1_response_quantile",
    "mmck_distribution",
    "mm1d_served",
    "availability",
    "Estimate",
    "across_seeds",
]


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c (no waiting room) offered ``a`` erlangs."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival to M/M/c offered ``a < c`` erlangs has to wait."""
    if a >= c:
        raise ValueError(f"offered load {a} erlangs is not below the {c} servers: M/M/c is unstable")
    b = erlang_b(c, a)
    return b / (1.0 - (a / c) * (1.0 - b))


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    """Mean time in queue (before service) in M/M/c."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_mean_response(lam: float, mu: float, c: int) -> float:
    """Mean response (sojourn) time in M/M/c: queueing plus service."""
    return mmc_mean_wait(lam, mu, c) + 1.0 / mu


def mm1_response_quantile(lam: float, mu: float, q: float) -> float:
    """The ``q`` quantile of the M/M/1 FIFO response time (exponential with rate ``mu - lam``)."""
    return -math.log1p(-q) / (mu - lam)


def mmck_distribution(lam: float, mu: float, c: int, k: int) -> list[float]:
    """Stationary probabilities of 0..k requests in M/M/c/K (c workers, k - c waiting places)."""
    weights = [1.0]
    for n in range(1, k + 1):
        weights.append(weights[-1] * lam / (min(n, c) * mu))
    total = sum(weights)
    return [w / total for w in weights]


def mm1d_served(lam: float, mu: float, bound: float) -> float:
    """Requests M/M/1+D serves a second (``lam != mu``): ``mu (1 - p0)``, ``p0`` from the work's density
    normalised (one over the atom, the integral below ``bound`` and the tail above it).
    """
    grow = math.exp((lam - mu) * bound)
    p0 = 1.0 / (1.0 + lam * (grow - 1.0) / (lam - mu) + lam / mu * grow)
    return mu * (1.0 - p0)


def availability(mtbf: float, mttr: float) -> float:
    """Long-run fraction of time a repairable unit is up."""
    return mtbf / (mtbf + mttr)


@dataclass(frozen=True)
class Estimate:
    """The mean of one statistic over independent seeds, with its standard error."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def se(self) -> float:
        """Sample standard deviation over seeds / sqrt(seeds)."""
        return float(np.std(self.values, ddof=1) / math.sqrt(len(self.values)))

    def mean_se(self) -> tuple[float, float]:
        """(mean, standard error)."""
        return self.mean, self.se

    def tolerance(self, floor: float) -> float:
        """Four standard errors, but never less than ``floor`` (a lucky small SE must not make it flaky)."""
        return max(4.0 * self.se, floor)

    def check(self, theory: float, floor: float, resolves: float) -> None:
        """Assert the estimate agrees with ``theory`` and that the test is sharp enough to mean something.

        ``resolves`` is the absolute bias the test must be able to detect: four standard errors have
        to stay below it, or a passing test would say little.
        """
        tol = self.tolerance(floor)
        assert abs(self.mean - theory) < tol, (
            f"engine {self.mean:.6g} vs theory {theory:.6g}: off by {self.mean - theory:+.3g}, "
            f"more than the tolerance {tol:.3g} (SE {self.se:.3g} over {len(self.values)} seeds; "
            f"per seed: {', '.join(f'{v:.5g}' for v in self.values)})"
        )
        assert 4.0 * self.se < resolves, (
            f"4 SE = {4 * self.se:.3g} is not below the bias this test must detect ({resolves:.3g}): "
            "run longer or over more seeds"
        )


def across_seeds(values: Sequence[float]) -> Estimate:
    """Wrap per-seed values of one statistic."""
    if len(values) < 3:
        raise ValueError(f"a standard error needs at least 3 seeds, got {len(values)}")
    return Estimate(tuple(float(v) for v in values))
