"""Queueing formulas: Erlang B and C, M/M/c/K blocking, the tail of a response time, the stationary
M/M/c number in system, the Allen–Cunneen wait of G/G/c, the mean-field fixed point of a pool
balanced by the shortest of ``d`` queues (the supermarket model), and a pool balanced by the shortest
queue of all (about one queue for the whole pool).

Free functions over numpy arrays (one element per server or class of servers), with no state and no
randomness: the flow engine reads its servers' waits from them, and so can anyone checking a number.
References: Kleinrock, *Queueing Systems* vol. 1; Gross & Harris, *Fundamentals of Queueing Theory*;
Mitzenmacher, "The power of two choices in randomized load balancing" (IEEE TPDS, 2001); Allen,
*Probability, Statistics and Queueing Theory* (the Allen–Cunneen approximation).

>>> b, c = erlang(np.array([10, 2]), np.array([5.0, 1.0]))
>>> round(float(b[0]), 5), round(float(c[1]), 6)
(0.01838, 0.333333)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "erlang",
    "blocking",
    "response_tail",
    "poisson_share",
    "allen_cunneen",
    "supermarket",
    "supermarket_wait",
    "pooled_wait",
    "CAP",
]

_TINY = 1e-12
CAP = 0.98
"""Stationary waits are taken at a utilisation of at most this (the fluid backlog carries the rest)."""


def erlang(c: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Erlang B and Erlang C for ``c`` servers (integers >= 1) and offered load ``a`` (< c for C).

    Erlang B is the share of arrivals an M/M/c/c system turns away; Erlang C the share of arrivals to
    M/M/c that wait, ``C = B / (1 - rho (1 - B))`` with ``rho = a / c`` (capped just below 1). The
    recursion B(k) = a B(k-1) / (k + a B(k-1)) runs over arrays up to the largest ``c``, or per
    element in plain Python for a few large pools (a directory with hundreds of workers).
    """
    if c.size <= 8:
        b = np.empty(c.size)
        for i, (ci, ai) in enumerate(zip(c.tolist(), a.tolist(), strict=True)):
            if ci > ai + 9.0 * math.sqrt(max(ai, 0.0)) + 10.0:  # nine standard deviations of Poisson(a)
                b[i] = 0.0  # short: the recursion would fall below 1e-15 long before k = c
                continue
            x = 1.0
            for k in range(1, ci + 1):
                x = ai * x / (k + ai * x)
                if x < 1e-15:  # B decreases with k: nothing left to lose
                    x = 0.0
                    break
            b[i] = x
    else:
        b = np.ones_like(a)
        for k in range(1, (int(c.max()) if c.size else 0) + 1):
            nb = a * b / (k + a * b)
            b = np.where(k <= c, nb, b)
    rho = np.minimum(a / c, 0.999999)
    erlang_c = b / (1.0 - rho * (1.0 - b))
    return b, np.clip(erlang_c, 0.0, 1.0)


def blocking(c: np.ndarray, a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """M/M/c/(c+q): the share of arrivals that find ``q`` waiting and every worker busy, at offered
    load ``a`` (any size; ``q`` may be infinite, then the share is what overload cannot serve).

    >>> float(blocking(np.array([2]), np.array([2.0]), np.array([3.0]))[0]) == 2 / 11
    True
    """
    erlang_b, _ = erlang(c, a)
    rho = a / np.maximum(c, 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        qf = np.where(np.isfinite(q), q, 0.0)
        geo = np.where(np.abs(rho - 1.0) < 1e-9, qf, rho * (1.0 - rho ** qf) / np.where(np.abs(rho - 1.0) < 1e-9,
                                                                                        1.0, 1.0 - rho))
        block = erlang_b * rho ** qf / (1.0 + erlang_b * geo)
    infinite = ~np.isfinite(q)
    return np.where(infinite, np.where(rho > 1.0, 1.0 - 1.0 / np.maximum(rho, _TINY), 0.0),
                    np.nan_to_num(np.clip(block, 0.0, 1.0), nan=1.0 - 1.0 / np.maximum(rho, 1.0)))


def response_tail(tau: np.ndarray, mean: np.ndarray, wait_p: np.ndarray, theta: np.ndarray,
                  deterministic: np.ndarray) -> np.ndarray:
    """P(Wq + S > tau): Wq is 0 with probability 1 - ``wait_p``, else exponential with rate ``theta``;
    S is exponential with ``mean`` (or exactly ``mean`` where ``deterministic``).

    >>> one = np.array([1.0])
    >>> round(float(response_tail(np.array([2.0]), one, one, one, np.array([False]))[0]), 6)  # Erlang-2
    0.406006
    """
    tau = np.maximum(tau, 0.0)
    mu = 1.0 / np.maximum(mean, _TINY)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = np.exp(-mu * tau)
        diff = theta - mu
        close = np.abs(diff) < 1e-9 * np.maximum(mu, 1.0)
        both = np.where(close, (1.0 + mu * tau) * a,
                        (theta * a - mu * np.exp(-theta * tau)) / np.where(close, 1.0, diff))
        expo = (1.0 - wait_p) * a + wait_p * np.clip(both, 0.0, 1.0)
        det = np.where(tau < mean, 1.0, wait_p * np.exp(-theta * np.maximum(tau - mean, 0.0)))
    return np.clip(np.where(deterministic, det, expo), 0.0, 1.0)


def poisson_share(x: float, a: float, c: int) -> float:
    """P(N = x | N < c) for N ~ Poisson(a) (x real, 0 <= x < c): the M/M/c number in system below c
    workers, up to the factor P(N < c).

    >>> round(poisson_share(0, 1.0, 2), 6)  # P(N = 0) / P(N <= 1) = 1 / 2
    0.5
    """
    if x < 0.0 or x >= c:
        return 0.0
    if a <= 0.0:
        return 1.0 if x < 1.0 else 0.0
    log_a = math.log(a)
    pmf = math.exp(x * log_a - a - math.lgamma(x + 1.0))
    cdf = math.fsum(math.exp(k * log_a - a - math.lgamma(k + 1.0)) for k in range(c))
    return min(1.0, pmf / cdf) if cdf > 0.0 else 0.0


def allen_cunneen(load: np.ndarray, workers: np.ndarray, iworkers: np.ndarray, per_try: np.ndarray,
                  ca2: np.ndarray, cs2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stationary wait of a G/G/c queue offered ``load`` erlangs (worker-seconds per second), as
    (P(wait), the rate of the exponential wait of those who wait).

    P(wait) is Erlang C at the load capped at :data:`CAP` of the workers; the wait of those who wait
    has the M/M/c rate ``(c - a) / per_try`` (never below 2% of ``c / per_try``), scaled by
    Allen–Cunneen's ``(ca2 + cs2) / 2`` (the squared coefficients of variation of the arrivals and the
    service; 1 and 1 for M/M/c, so the mean wait is Erlang C's ``C per_try / (c - a)``).
    """
    a = np.minimum(load, workers * CAP)
    _, wait_p = erlang(iworkers, a)
    wait_p = np.where(load > 0, wait_p, 0.0)
    variability = np.maximum((ca2 + cs2) / 2.0, 0.05)
    theta = np.maximum(workers - a, 0.02 * workers) / np.maximum(per_try, _TINY) / variability
    return wait_p, theta


# ------------------------------------------------------------------------------ the supermarket model

_GRID = 4000  # utilisations tabulated per (workers, choices), from 0 to CAP


def supermarket(rho: np.ndarray, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean-field fixed point of a large pool of servers with ``c`` workers each, where each arrival
    samples ``d`` servers and joins the one with the fewest requests (JSQ(d); ``d = 1`` is random
    choice), at utilisation ``rho`` < 1. Returns (P(an arrival waits), its mean wait in mean services).

    With ``s_k`` the share of servers holding at least ``k`` requests and ``a = c rho``, the flow across
    each level balances: ``a s_{k-1}^d = k s_k + s_{k+1} + ... + s_c`` for ``k <= c`` and
    ``s_k = rho s_{k-1}^d`` above. ``s_c`` is found by bisection (the backward recursion from it must
    give ``s_0 = 1``). An arrival finds ``k`` or more with probability ``s_k^d``: it waits with
    probability ``s_c^d``, on average ``(s_c^d + s_{c+1}^d + ...) / c`` services. For ``c = 1`` this is
    Mitzenmacher's ``s_k = rho^((d^k - 1) / (d - 1))``; for ``d = 1``, M/M/c (Erlang C).

    >>> p, w = supermarket(np.array([0.9]), 1, 2)  # s_1 = 0.9, s_2 = 0.9^3, ...
    >>> round(float(p[0]), 6), round(float(w[0]), 4)
    (0.81, 1.6141)
    """
    rho = np.asarray(rho, dtype=float)
    out_p, out_w = np.zeros(rho.shape), np.zeros(rho.shape)
    live = rho > 0
    if not live.any():
        return out_p, out_w
    r = rho[live]
    a = c * r
    inv_d = 1.0 / d
    lo, hi = np.full(r.shape, -745.0), np.zeros(r.shape)  # log s_c
    for _ in range(64):
        mid = (lo + hi) / 2
        s = np.exp(mid)
        above = np.zeros(r.shape)
        for k in range(c, 0, -1):
            s, above = ((k * s + above) / a) ** inv_d, above + s
        low = s <= 1.0  # s_0 from this s_c: too small, so s_c is larger
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    s = np.exp((lo + hi) / 2)
    first = s ** d
    total = first.copy()
    term = first
    for _ in range(100_000):
        s = r * term
        term = s ** d
        total += term
        if not (term > 1e-17 * total).any():
            break
    out_p[live] = first
    out_w[live] = total / c
    return out_p, out_w


@lru_cache(maxsize=256)
def _table(c: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`supermarket` on a grid of utilisations, as logarithms (interpolated by :func:`supermarket_wait`)."""
    grid = np.linspace(0.0, CAP, _GRID + 1)
    p, w = supermarket(grid, c, d)
    with np.errstate(divide="ignore"):
        return grid, np.maximum(np.log(p), -745.0), np.maximum(np.log(w), -745.0)


def supermarket_wait(load: np.ndarray, workers: np.ndarray, iworkers: np.ndarray, per_try: np.ndarray,
                     d: np.ndarray, cs2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stationary wait at servers of a pool balanced by the shortest of ``d`` queues, each offered
    ``load`` erlangs, as :func:`allen_cunneen` gives it: (P(wait), rate of the exponential wait of those
    who wait). From :func:`supermarket` at the load capped at :data:`CAP` (tabulated per workers and
    ``d``, interpolated in the logarithm), the wait scaled by ``(1 + cs2) / 2`` for the service's
    variability (never below 2% of ``c / per_try``, as Allen–Cunneen's).
    """
    rho = np.minimum(load, workers * CAP) / np.maximum(workers, 1.0)
    wait_p, mean = np.zeros(rho.shape), np.zeros(rho.shape)
    ds = np.asarray(d, dtype=np.int64)
    pairs = np.stack([iworkers, ds], axis=1)
    for c, dk in np.unique(pairs, axis=0).tolist() if pairs.size else []:
        at = (iworkers == c) & (ds == dk)
        grid, log_p, log_w = _table(int(c), int(dk))
        wait_p[at] = np.exp(np.interp(rho[at], grid, log_p))
        mean[at] = np.exp(np.interp(rho[at], grid, log_w))
    wait_p = np.where(load > 0, wait_p, 0.0)
    variability = np.maximum((1.0 + cs2) / 2.0, 0.05)
    per = np.maximum(per_try, _TINY)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        theta = np.where(mean > 0, wait_p / np.maximum(mean, 1e-300) / per, workers / per)  # none wait: any rate
    theta = np.maximum(theta, 0.02 * workers / per) / variability
    return wait_p, theta


@lru_cache(maxsize=256)
def _pooled_table(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Erlang C of ``n`` servers on a grid of utilisations, as logarithms (see :func:`pooled_wait`)."""
    grid = np.linspace(0.0, CAP, _GRID + 1)
    a = grid * n
    b = np.ones_like(a)
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    c = b / (1.0 - grid * (1.0 - b))
    with np.errstate(divide="ignore"):
        return grid, np.maximum(np.log(np.clip(c, 0.0, 1.0)), -745.0)


def pooled_wait(load: np.ndarray, workers: np.ndarray, iworkers: np.ndarray, per_try: np.ndarray,
                pool: np.ndarray, cs2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stationary wait at servers of a pool of ``pool`` servers balanced by the shortest queue of all,
    each offered ``load`` erlangs, as :func:`allen_cunneen` gives it: (P(wait), rate of the exponential
    wait of those who wait).

    Joining the shortest queue keeps every worker of the pool busy before any request waits, so the pool
    is about one M/M/(n c) queue: Erlang C of ``n c`` workers offered ``n a`` (tabulated per ``n c``,
    interpolated in the logarithm), the wait of those who wait at rate ``(n c - n a) / per_try``, scaled
    by ``(1 + cs2) / 2``. ``pool = 1`` is :func:`allen_cunneen` with Poisson arrivals; a large pool
    approaches perfect balancing (nobody waits below saturation).
    """
    capped = np.minimum(load, workers * CAP)
    rho = capped / np.maximum(workers, 1.0)
    total = (iworkers * np.maximum(pool, 1.0)).astype(np.int64)
    wait_p = np.zeros(rho.shape)
    for n in np.unique(total).tolist():
        at = total == n
        grid, log_c = _pooled_table(int(n))
        wait_p[at] = np.exp(np.interp(rho[at], grid, log_c))
    wait_p = np.where(load > 0, wait_p, 0.0)
    size = np.maximum(pool, 1.0)
    variability = np.maximum((1.0 + cs2) / 2.0, 0.05)
    theta = np.maximum(size * (workers - capped), 0.02 * size * workers) / np.maximum(per_try, _TINY) / variability
    return wait_p, theta
