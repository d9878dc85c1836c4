"""Queueing formulas: Erlang B and C, M/M/c/K blocking, M/M/c with a bound on the wait (M/M/c+D), the
tail of a response time, the stationary M/M/c number in system, the Allen–Cunneen wait of G/G/c, the
mean-field fixed point of a pool balanced by the shortest of ``d`` queues (the supermarket model, on which
:mod:`sim.balancing` builds its finite pools), how long a health check's answer persists
(:func:`check_persistence`).

Free functions over numpy arrays (one element per server or class of servers; :func:`allen_cunneen_one`
over the floats of one queue, with the arrays' answers), with no state and no randomness: the flow engine
reads its servers' waits from them, and so can anyone checking a number.
References: Kleinrock, *Queueing Systems* vol. 1; Gross & Harris, *Fundamentals of Queueing Theory*;
Baccelli & Hebuterne, "On queues with impatient customers" (Performance '81, 1981) and Zeltyn &
Mandelbaum, "Call centers with impatient customers" (Queueing Systems, 2005) for M/M/c+D;
Mitzenmacher, "The power of two choices in randomized load balancing" (IEEE TPDS, 2001); Allen,
*Probability, Statistics and Queueing Theory* (the Allen–Cunneen approximation); Morse, "Stochastic
properties of waiting lines" (Operations Research, 1955), Karlin & McGregor, "The differential equations
of birth-and-death processes, and the Stieltjes moment problem" (Trans. AMS, 1957) and Abate & Whitt,
"Simple spectral representations for the M/M/1 queue" (Queueing Systems, 1988) for the persistence.

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
    "impatient",
    "truncated_mean",
    "waiting_room",
    "response_tail",
    "response_cells",
    "first_passage_rate",
    "allen_cunneen",
    "allen_cunneen_one",
    "float_max",
    "float_min",
    "supermarket",
    "from_full",
    "retrial_blocking",
    "check_persistence",
    "CAP",
    "WINDOW",
    "mirrored",
]

_TINY = 1e-12
CAP = 0.98
"""Stationary waits are taken at a utilisation of at most this (the fluid backlog carries the rest)."""


def mirrored(demand: np.ndarray, workers: np.ndarray) -> np.ndarray:
    """The load whose stationary wait stands for a growing queue's lead on its fluid backlog: the demand
    where the workers keep up, ``2 x workers - demand`` (at least 0) where more comes than they do.

    A queue offered more than its capacity grows at the excess, but it started empty, and while it was
    short it stood still now and then: it runs ahead of its fluid path by what reflection at zero added.
    For a Brownian queue of drift ``m > 0`` and variance ``σ²`` that lead is the depth of the path's
    lowest point, an exponential of mean ``σ² / 2m``: the stationary queue's at drift ``-m`` (Harrison,
    *Brownian Motion and Stochastic Flow Systems*, 1985, §1.9 and §3.6). So a growing queue's spread is the
    stationary wait at the demand mirrored about the capacity: equal to it at saturation (both capped at
    :data:`CAP`), falling as the overload grows, none from twice the capacity on.
    """
    return np.where(demand > workers, np.maximum(2.0 * workers - demand, 0.0), demand)


def erlang(c: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Erlang B and Erlang C for ``c`` servers (integers >= 1) and offered load ``a`` (< c for C).

    Erlang B is the share of arrivals an M/M/c/c system turns away; Erlang C the share of arrivals to
    M/M/c that wait, ``C = B / (1 - rho (1 - B))`` with ``rho = a / c`` (capped just below 1). The
    recursion B(k) = a B(k-1) / (k + a B(k-1)) runs over arrays up to the largest ``c``, or per
    element in plain Python for a few large pools (a directory with hundreds of workers).
    """
    if c.size <= 8:
        b = np.array([_erlang_b(ci, ai) for ci, ai in zip(c.tolist(), a.tolist(), strict=True)], dtype=float)
    else:
        b = np.ones(np.shape(a))
        ab, below = np.empty(b.shape), np.empty(b.shape)  # a B(k-1), k + a B(k-1): in place, no temporaries
        least, most = (int(c.min()), int(c.max())) if c.size else (0, 0)
        for k in range(1, most + 1):
            np.multiply(a, b, out=ab)
            np.add(ab, k, out=below)
            if k <= least:  # every element recurses (as a rule: a class's workers are alike)
                np.divide(ab, below, out=b)
            else:
                b = np.where(k <= c, ab / below, b)
    rho = np.minimum(a / c, 0.999999)
    erlang_c = b / (1.0 - rho * (1.0 - b))
    return b, np.minimum(np.maximum(erlang_c, 0.0), 1.0)


def _erlang_b(c: int, a: float) -> float:
    """Erlang B of ``c`` servers at offered load ``a``, in plain Python (:func:`erlang` for a few pools)."""
    if c > a + 9.0 * math.sqrt(max(a, 0.0)) + 10.0:  # nine standard deviations of Poisson(a)
        return 0.0  # short: the recursion would fall below 1e-15 long before k = c
    x = 1.0
    for k in range(1, c + 1):
        x = a * x / (k + a * x)
        if x < 1e-15:  # B decreases with k: nothing left to lose
            return 0.0
    return x


def float_max(a: float, b: float) -> float:
    """``np.maximum`` of two floats: the larger, NaN if either is."""
    return a if a >= b or a != a else b


def float_min(a: float, b: float) -> float:
    """``np.minimum`` of two floats: the smaller, NaN if either is."""
    return a if a <= b or a != a else b


def blocking(c: np.ndarray, a: np.ndarray, q: np.ndarray, erlang_b: np.ndarray | None = None) -> np.ndarray:
    """M/M/c/(c+q): the share of arrivals that find ``q`` waiting and every worker busy, at offered
    load ``a`` (any size; ``q`` may be infinite, then the share is what overload cannot serve).
    ``erlang_b``: Erlang B of ``c`` at ``a`` (:func:`erlang`), if the caller has it.

    >>> float(blocking(np.array([2]), np.array([2.0]), np.array([3.0]))[0]) == 2 / 11
    True
    """
    if erlang_b is None:
        erlang_b, _ = erlang(c, a)
    rho = a / np.maximum(c, 1)
    finite = np.isfinite(q)
    every = np.count_nonzero(finite) == finite.size
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        qf = q if every else np.where(finite, q, 0.0)
        one = np.abs(rho - 1.0) < 1e-9
        power = rho ** qf
        geo = np.where(one, qf, rho * (1.0 - power) / np.where(one, 1.0, 1.0 - rho))
        block = np.minimum(np.maximum(erlang_b * power / (1.0 + erlang_b * geo), 0.0), 1.0)
    nan = np.isnan(block)
    if np.count_nonzero(nan):  # (0/0 or inf/inf where rho^q overflows: the share overload cannot serve)
        block = np.where(nan, 1.0 - 1.0 / np.maximum(rho, 1.0), block)
    if every:
        return block
    return np.where(finite, block, np.where(rho > 1.0, 1.0 - 1.0 / np.maximum(rho, _TINY), 0.0))


def impatient(c: np.ndarray, a: np.ndarray, bound: np.ndarray,
              erlang_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """M/M/c where an arrival that would wait longer than ``bound`` (in mean services) is refused at once
    (M/M/c+D): ``c`` workers (integers >= 1), offered ``a`` erlangs (any size). Returns (the share of
    arrivals refused, the share of admitted arrivals that wait). The wait of those who wait is
    exponential at rate ``(c - a)`` per mean service (of either sign) cut at ``bound``:
    :func:`truncated_mean`, :func:`response_tail` with its ``bound``. ``erlang_b``: Erlang B of ``c`` at
    ``a`` (:func:`erlang`), if the caller has it.

    While every worker is busy let V be the wait an arrival would be offered: it falls at rate 1, and an
    admitted arrival (V <= tau) raises it by the time until one more worker frees, exponential at rate
    ``c mu``. Crossings of a level v > 0 balance: ``f(v) = lam p(c-1) e^(-c mu v) + lam int_0^min(v, tau)
    f(u) e^(-c mu (v - u)) du``, so ``f(v) = lam p(c-1) e^(-theta v)`` up to tau (``theta = c mu - lam``)
    and ``f(tau) e^(-c mu (v - tau))`` above it, where arrivals are refused; below ``c`` busy workers
    ``p(k)`` is proportional to ``a^k / k!``. With ``r = B / (1 - B)`` (Erlang B of ``c`` workers at
    ``a``) and ``s = theta tau``, an arrival finds a free worker, waits, or is refused in the proportions
    ``1 : r c (1 - e^(-s)) / (c - a) : r e^(-s)`` (times ``e^s`` when ``s < 0``, in overload, to keep them
    finite). So ``bound`` -> infinity is Erlang C below saturation (and ``1 - c / a`` above), and
    ``bound = 0`` is Erlang B. Refusing on the offered wait is the same as letting customers of patience
    tau leave the queue: they never reach a worker, so nobody behind them waits less.

    >>> refused, wait_p = impatient(np.array([1, 1]), np.array([0.8, 1.3]), np.array([2.0, 2.0]))
    >>> [round(float(x), 4) for x in refused], [round(float(x), 4) for x in wait_p]
    ([0.1878, 0.3417], [0.5687, 0.7808])
    """
    if erlang_b is None:
        erlang_b, _ = erlang(c, a)
    r = erlang_b / np.maximum(1.0 - erlang_b, 1e-300)
    gap = np.abs(c - a)
    y = np.where(gap > 0, bound * np.maximum(gap, _TINY), 0.0)  # |s|
    waits = r * c * np.where(gap > 0, -np.expm1(-y) / np.maximum(gap, _TINY), bound)  # r c (1 - e^-|s|) / |c - a|
    e = np.exp(-y)
    below = a <= c
    free = np.where(below, 1.0, e)
    refused = r * np.where(below, e, 1.0)
    finite = np.isfinite(waits)  # not: an infinite bound at exactly the workers' load
    waits = np.where(finite, waits, 0.0)
    seated = free + waits
    share = np.where(finite, refused / np.maximum(seated + refused, _TINY), 0.0)
    wait_p = np.where(finite, waits / np.maximum(seated, _TINY), 1.0)
    return np.minimum(share, 1.0), np.minimum(wait_p, 1.0)


def truncated_mean(rate: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """The mean of a wait whose density is proportional to ``exp(-rate w)`` on ``[0, bound]`` (``rate`` of
    either sign; ``bound`` may be infinite, then ``rate`` > 0 and the mean is ``1 / rate``): the wait of
    those who wait in M/M/c+D (:func:`impatient`), ``bound (1/s - 1/(e^s - 1))`` with ``s = rate bound``.

    >>> [round(float(x), 6) for x in truncated_mean(np.array([1.0, 0.0, -1.0, 2.0]), np.array([1.0, 1.0, 1.0, np.inf]))]
    [0.418023, 0.5, 0.581977, 0.5]
    """
    rate, bound = np.asarray(rate, dtype=float), np.asarray(bound, dtype=float)
    finite = np.isfinite(bound)
    b = np.where(finite, bound, 0.0)
    s = rate * b
    small = np.abs(s) < 1e-6
    big = np.where(small, 1.0, s)
    cut = b * np.where(small, 0.5 - s / 12.0, 1.0 / big - 1.0 / np.expm1(np.minimum(big, 700.0)))
    return np.where(finite, cut, 1.0 / np.maximum(rate, _TINY))


def waiting_room(c: np.ndarray, a: np.ndarray, places: np.ndarray,
                 erlang_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """M/M/c/(c+``places``) in the form :func:`impatient` gives M/M/c+D: ``c`` workers (integers >= 1),
    offered ``a`` erlangs (> 0, any size), ``places`` waiting places (>= 0, not necessarily whole; an
    Allen–Cunneen scale stretches a room's time into more or fewer of them). Returns (the share of arrivals
    refused, the share of admitted arrivals that wait, the mean wait of those who wait and the bound their
    wait is cut at, both in mean services): the wait of those who wait is taken as exponential at rate
    ``c - a`` per mean service (of either sign) cut at that bound, the M/M/c+D shape, so that
    :func:`response_tail` and its kin read it as a bound's. ``erlang_b``: Erlang B of ``c`` at ``a``.

    With ``rho = a / c`` and ``r = B / (1 - B)``, an arrival finds a free worker, waits, or is refused in the
    proportions ``1 : r (1 - rho^K) / (1 - rho) : r rho^K`` (the birth-death law; ``K = places``), which
    are :func:`impatient`'s at the bound ``K ln(1/rho) / (c - a)`` (``K / c`` at ``rho = 1``): so the two
    shares are exact. Those who wait find ``j < K`` waiting with chances proportional to ``rho^j`` and wait
    ``j + 1`` completions at rate ``c``: ``(1 / (1 - rho) - K rho^K / (1 - rho^K)) / c`` on average,
    ``(K + 1) / 2c`` at ``rho = 1``, ``K / c`` in heavy overload and Erlang C's ``1 / (c - a)`` for a long
    room. The bound is the one that gives the cut exponential that mean (:func:`truncated_mean`; Newton's
    method on the log of ``s / (e^s - 1)``, concave, from the shares' bound), so the mean wait is exact too.

    >>> refused, wait_p, mean, bound = waiting_room(np.array([2]), np.array([2.0]), np.array([3.0]))
    >>> float(refused[0]) == 2 / 11, float(wait_p[0]) == 2 / 3, round(float(mean[0]), 12), round(float(bound[0]), 9)
    (True, True, 1.0, 2.0)
    """
    workers = np.asarray(c)
    c, a, places = (np.asarray(x, dtype=float) for x in (c, a, places))
    eps = 1.0 - a / c  # (c - a) / c
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rho = np.log(np.maximum(a / c, 1e-300))  # -(1 - rho) - (1 - rho)^2 / 2 - ...
        x = -places * log_rho  # K ln(1/rho)
        one = np.abs(x) < 1e-6  # rho within 1e-6 / K of 1: its value at 1 (to a relative 1e-7)
        ratio = np.where(eps == 0.0, 1.0, -log_rho / np.where(eps == 0.0, 1.0, eps))  # ln(1/rho) / (1 - rho)
        refused, wait_p = impatient(workers, a, places / c * ratio, erlang_b)  # the shares' bound, in mean services
        # c x the mean wait of those who wait: 1 / (1 - rho) - K / (rho^-K - 1), or (K + 1) / 2
        cm = np.where(one, (places + 1.0) / 2.0,
                      1.0 / np.where(one, 1.0, eps) - places / np.expm1(np.minimum(x, 700.0)))
        # s = (c - a) x bound solves phi(s) = 1 - (c - a) x mean, phi(s) = s / (e^s - 1)
        target = np.log(np.maximum(1.0 - eps * cm, 1e-300))
        s = np.where(one, 0.0, x)
        for _ in range(60):
            big = np.minimum(s, 700.0)
            small = np.abs(big) < 1e-4
            e1 = np.expm1(np.where(small, 1.0, big))
            log_phi = np.where(small, -big / 2.0 - big * big / 24.0, np.log(np.where(small, 1.0, big / e1)))
            slope = np.where(small, -0.5 - big / 12.0, 1.0 / np.where(small, 1.0, big) - (e1 + 1.0) / e1)
            step = (log_phi - target) / slope
            s = np.where(one, 0.0, s - step)
            if not (np.abs(step) > 1e-13 * (1.0 + np.abs(s))).any():
                break
        bound = np.where(one, (places + 1.0) / c, s / np.where(one, 1.0, c * eps))
    live = places > 0
    mean = np.where(live, cm / c, 0.0)
    return refused, np.where(live, wait_p, 0.0), mean, np.where(live, bound, 0.0)


def response_tail(tau: np.ndarray, mean: np.ndarray, wait_p: np.ndarray, theta: np.ndarray,
                  deterministic: np.ndarray, bound: np.ndarray | None = None) -> np.ndarray:
    """P(Wq + S > tau): Wq is 0 with probability 1 - ``wait_p``, else exponential with rate ``theta``
    (cut at ``bound`` if given: the density proportional to ``exp(-theta w)`` on ``[0, bound]``, ``theta``
    of either sign, as :func:`impatient` has it); S is exponential with ``mean`` (or exactly ``mean``
    where ``deterministic``).

    With a bound b and m = min(tau, b): ``P(Wq + S > tau | it waits) = P(Wq > tau) + int_0^m f(w)
    e^(-mu (tau - w)) dw``, each term a product of exponentials written so that nothing overflows when
    ``theta`` < 0.

    >>> one = np.array([1.0])
    >>> round(float(response_tail(np.array([2.0]), one, one, one, np.array([False]))[0]), 6)  # Erlang-2
    0.406006
    >>> round(float(response_tail(np.array([2.0]), one, one, one, np.array([False]), np.array([np.inf]))[0]), 6)
    0.406006
    """
    tau = np.maximum(tau, 0.0)
    mu = 1.0 / np.maximum(mean, _TINY)
    if bound is not None:
        return _bounded_response_tail(tau, mean, mu, wait_p, theta, deterministic, bound)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = np.exp(-mu * tau)
        diff = theta - mu
        close = np.abs(diff) < 1e-9 * np.maximum(mu, 1.0)
        both = np.where(close, (1.0 + mu * tau) * a,
                        (theta * a - mu * np.exp(-theta * tau)) / np.where(close, 1.0, diff))
        out = (1.0 - wait_p) * a + wait_p * np.minimum(np.maximum(both, 0.0), 1.0)
        if np.count_nonzero(deterministic):
            det = np.where(tau < mean, 1.0, wait_p * np.exp(-theta * np.maximum(tau - mean, 0.0)))
            out = np.where(deterministic, det, out)
    return np.minimum(np.maximum(out, 0.0), 1.0)


def _bounded_response_tail(tau: np.ndarray, mean: np.ndarray, mu: np.ndarray, wait_p: np.ndarray,
                           theta: np.ndarray, deterministic: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """:func:`response_tail` with the wait cut at ``bound`` (``tau`` >= 0). Every exponent is <= 0 and every
    divisor at least a tiny number, so nothing overflows.
    """
    k = np.abs(theta)
    live = k > 1e-12
    kk = np.maximum(k, 1e-12)
    norm = np.maximum(np.where(live, -np.expm1(-k * bound) / kk, bound), _TINY)  # int_0^b e^(-|theta| u) du
    decay = np.maximum(theta, 0.0)

    def waited(t: np.ndarray) -> np.ndarray:  # P(Wq > t | it waits), t >= 0
        rest = np.maximum(bound - t, 0.0)
        with np.errstate(invalid="ignore"):  # past the bound (0 x inf): the branch np.where drops
            return np.where(t < bound, np.exp(-decay * t) * np.where(live, -np.expm1(-k * rest) / kk, rest) / norm,
                            0.0)

    m = np.minimum(tau, bound)
    delta = mu - theta
    d = np.abs(delta)
    inner = np.where(d > 1e-12, -np.expm1(-d * m) / np.maximum(d, 1e-12), m)  # int_0^m e^(-|delta| u) du
    served = np.exp(np.maximum(delta * m, 0.0) - mu * tau + np.minimum(theta, 0.0) * np.minimum(bound, 1e300))
    both = np.minimum(np.maximum(waited(tau) + served * inner / norm, 0.0), 1.0)
    out = (1.0 - wait_p) * np.exp(-mu * tau) + wait_p * both
    if np.count_nonzero(deterministic):
        det = np.where(tau < mean, 1.0, wait_p * waited(np.maximum(tau - mean, 0.0)))
        out = np.where(deterministic, det, out)
    return np.minimum(np.maximum(out, 0.0), 1.0)


_REACH = 9.2  # a response is followed to where about e^-9.2 = 1e-4 of it is left


@lru_cache(maxsize=8)
def _cell_probs(cells: int) -> np.ndarray:
    """0, 1/cells, ..., 1 (the last just below: that edge is set apart)."""
    probs = np.arange(cells + 1) / cells
    probs[-1] = 1.0 - 1e-9
    return probs


def response_cells(tau: np.ndarray, mean: np.ndarray, wait_p: np.ndarray, theta: np.ndarray,
                   deterministic: np.ndarray, bound: np.ndarray | None = None,
                   cells: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The law of ``Wq + S`` given ``Wq + S <= tau`` (the responses that beat a deadline ``tau``; ``Wq``
    and ``S`` as :func:`response_tail` has them), per element, as ``cells + 1`` values and their shares:
    two arrays of shape ``(n, cells + 1)``, the shares of each row adding up to 1.

    The cells are cut at the quantiles of an exponential twice as long as the response's mean, up to
    ``tau`` or far into the response's tail, whichever is first; each holds the response's own mass in it
    (from :func:`response_tail`) at its mean for a density decaying at the tail's rate there (the
    service's, or the wait's if slower). The first value is the shortest response (0, or the
    deterministic service) with the share that has it (those who do not wait, with deterministic
    service). So the mean and the percentiles are those of the truncated law, not of an exponential of
    the same mean cut at ``tau`` (``tests/test_queueing.py`` holds them to a quadrature of the law).

    >>> one = np.array([1.0])
    >>> values, shares = response_cells(np.array([2.0]), one, one * 0.0, one, np.array([False]))
    >>> mean = float((values * shares).sum())  # Exp(1) given below 2: 1 - 2 e^-2 / (1 - e^-2)
    >>> round(mean, 3), round(1 - 2 * math.exp(-2) / (1 - math.exp(-2)), 3)
    (0.687, 0.687)
    """
    det = np.count_nonzero(deterministic) > 0
    lo = np.where(deterministic, mean, 0.0) if det else np.zeros(np.shape(mean))
    serve = mean - lo if det else mean  # the exponential service's mean (none when deterministic)
    mu = 1.0 / np.maximum(mean, _TINY)
    if bound is None:
        wait_mean = 1.0 / np.maximum(theta, _TINY)
        reach = _REACH * wait_mean
        rate = np.minimum(mu, theta)  # how the tail decays: the slower of the service and the wait
    else:
        wait_mean = truncated_mean(theta, bound)
        reach = np.minimum(bound, _REACH * np.abs(wait_mean))
        rate = mu
    if det:  # the deterministic service's tail is the wait's
        rate = np.where(deterministic, theta, rate)
    top = np.maximum(np.minimum(tau, lo + _REACH * serve + np.where(wait_p > 0, reach, 0.0)), lo)
    ref = np.maximum(2.0 * (serve + wait_p * wait_mean), _TINY)
    span = np.expm1((lo - top) / ref)  # minus the reference's mass below the top
    edges = lo[:, None] - ref[:, None] * np.log1p(_cell_probs(cells) * span[:, None])
    edges[:, -1] = top
    col = (slice(None), None)
    if bound is None and not det:  # response_tail's M/M/c law, as two exponentials: (1 + k) e^-mu x - k e^-theta x
        gap = theta - mu
        gap = np.where(np.abs(gap) < 1e-7 * mu, 1e-7 * mu, gap)  # equal rates: a hair apart
        k = wait_p * mu / gap
        late = (1.0 + k)[col] * np.exp((-mu)[col] * edges) - k[col] * np.exp((-mu - gap)[col] * edges)
    else:
        late = response_tail(edges, mean[col], wait_p[col], theta[col], deterministic[col],
                             None if bound is None else bound[col])
    shares = np.empty_like(late)
    shares[:, 0] = 1.0 - late[:, 0]
    np.subtract(late[:, :-1], late[:, 1:], out=shares[:, 1:])
    np.maximum(shares, 0.0, out=shares)
    width = edges[:, 1:] - edges[:, :-1]
    s = rate[:, None] * width
    s = np.where(np.abs(s) < 1e-6, 1e-6, s)  # (the cell's mean differs from its middle by s / 12 of it)
    values = np.empty_like(edges)
    values[:, 0] = lo  # the shortest response; then each cell's mean (:func:`truncated_mean`, inlined)
    values[:, 1:] = edges[:, :-1] + width * (1.0 / s - 1.0 / np.expm1(np.minimum(s, 700.0)))
    total = shares.sum(axis=1)
    shares[:, 0] += total <= 0.0  # none beats the deadline (at the precision of doubles): the shortest
    return values, shares / np.maximum(total, _TINY)[:, None]


def first_passage_rate(lam: np.ndarray, mu: np.ndarray, c: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The rate at which an arrival finds ``m`` in an M/M/c system (arrivals ``lam``, each worker ``mu``)
    that starts empty again at once each time one does: the reciprocal of the mean time from empty to
    that arrival (renewal-reward), for arrays of one shape.

    With ``T_k`` the mean time to go from ``k`` in system to ``k + 1``, ``T_0 = 1/lam`` and
    ``T_k = 1/lam + (min(k, c) mu / lam) T_(k-1)``; the time from empty to an arrival that finds ``m`` is
    ``T_0 + ... + T_m``. Worker by worker up to ``min(m, c)``, then in closed form: beyond ``c`` the
    recursion is geometric with ratio ``r = c mu / lam``. Far below the level this is ``lam`` times the
    stationary ``P(N = m)``; near it, lower, since the system restarts empty (the crash of a server that
    runs out of memory, :mod:`sim.engine.flow.crashes`). ``m <= 0``: every arrival, ``lam``.

    >>> float(first_passage_rate(np.array(1.0), np.array(1.0), np.array(1.0), np.array(1.0)))  # 1/(1 + 2)
    0.3333333333333333
    """
    lam, mu, c, m = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (lam, mu, c, m)))
    lam = np.maximum(lam, _TINY)
    m = np.maximum(np.floor(m), 0.0)
    step = 1.0 / lam
    total = step.copy()
    top = np.minimum(m, c)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, int(top.max(initial=0.0)) + 1):
            live = k <= top
            step = np.where(live, 1.0 / lam + (k * mu / lam) * step, step)
            total = np.where(live, total + step, total)
        n = np.maximum(m - c, 0.0)  # levels beyond the workers
        r = c * mu / lam
        near_one = np.abs(r - 1.0) < 1e-9
        r_safe = np.where(near_one, 2.0, r)
        limit = (1.0 / lam) / (1.0 - r_safe)  # T_k -> limit + (T_c - limit) r^(k - c)
        growth = r_safe * np.expm1(n * np.log(r_safe)) / (r_safe - 1.0)  # r + r^2 + ... + r^n
        geometric = n * limit + (step - limit) * growth
        linear = n * step + n * (n + 1.0) / 2.0 / lam  # r = 1: T_k = T_c + (k - c) / lam
        total = total + np.where(n > 0.0, np.where(near_one, linear, geometric), 0.0)
        return np.where(np.isfinite(total), 1.0 / total, 0.0)


def allen_cunneen(load: np.ndarray, workers: np.ndarray, iworkers: np.ndarray, per_try: np.ndarray,
                  ca2: np.ndarray, cs2: np.ndarray,
                  erlang_c: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The stationary wait of a G/G/c queue offered ``load`` erlangs (worker-seconds per second), as
    (P(wait), the rate of the exponential wait of those who wait). ``erlang_c``: Erlang C of ``iworkers`` at
    the capped load (below), if the caller has it.

    P(wait) is Erlang C at the load capped at :data:`CAP` of the workers; the wait of those who wait
    has the M/M/c rate ``(c - a) / per_try`` (never below 2% of ``c / per_try``), scaled by
    Allen–Cunneen's ``(ca2 + cs2) / 2`` (the squared coefficients of variation of the arrivals and the
    service; 1 and 1 for M/M/c, so the mean wait is Erlang C's ``C per_try / (c - a)``).
    """
    a = np.minimum(load, workers * CAP)
    wait_p = erlang(iworkers, a)[1] if erlang_c is None else erlang_c
    wait_p = np.where(load > 0, wait_p, 0.0)
    variability = np.maximum((ca2 + cs2) / 2.0, 0.05)
    theta = np.maximum(workers - a, 0.02 * workers) / np.maximum(per_try, _TINY) / variability
    return wait_p, theta


def allen_cunneen_one(load: float, workers: float, iworkers: int, per_try: float, ca2: float,
                      cs2: float) -> tuple[float, float]:
    """:func:`allen_cunneen` of one queue, in floats: the same answers as for arrays of one element, at a
    fraction of the cost (a dependency's queue, every step).
    """
    a = float_min(load, workers * CAP)
    b = _erlang_b(iworkers, a)
    rho = float_min(a / iworkers, 0.999999)
    wait_p = float_min(float_max(b / (1.0 - rho * (1.0 - b)), 0.0), 1.0) if load > 0 else 0.0
    variability = float_max((ca2 + cs2) / 2.0, 0.05)
    theta = float_max(workers - a, 0.02 * workers) / float_max(per_try, _TINY) / variability
    return wait_p, theta


# ------------------------------------------------------------------------------ retries of refused tries

WINDOW = 48
""":func:`retrial_blocking` follows a retry's chain on the top this-many states of a longer queue."""
_JUMPS = 100_000  # :func:`from_full` follows at most this many jumps


def _stationary(birth: np.ndarray, death: np.ndarray) -> np.ndarray:
    """The stationary law of a birth-death chain on ``0..K`` (``birth[n]`` from ``n`` to ``n + 1`` for
    ``n < K``, ``death[n]`` from ``n`` to ``n - 1`` for ``n >= 1``, ``death[0]`` unused): the balance
    ``pi[n + 1] / pi[n] = birth[n] / death[n + 1]``, summed in logs.
    """
    log_w = np.concatenate([[0.0], np.cumsum(np.log(np.maximum(birth, _TINY)) - np.log(death[1:]))])
    pi = np.exp(log_w - log_w.max())
    return pi / pi.sum()


def _jump(x: np.ndarray, stay: np.ndarray, rise: np.ndarray, fall: np.ndarray, out: np.ndarray,
          moved: np.ndarray) -> np.ndarray:
    """One jump of a uniformised birth-death chain from the law ``x``: each state stays with ``stay``, rises
    with ``rise`` (states ``0..K-1``) and falls with ``fall`` (states ``1..K``), into ``out`` (``moved``: a
    buffer of ``K`` elements).
    """
    np.multiply(x, stay, out=out)
    np.multiply(x[:-1], rise, out=moved)
    out[1:] += moved
    np.multiply(x[1:], fall, out=moved)
    out[:-1] += moved
    return out


def from_full(birth: np.ndarray, death: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """A birth-death chain on ``0..K`` (``birth[n]`` from ``n`` to ``n + 1`` for ``n < K``, ``death[n]``
    from ``n`` to ``n - 1`` for ``n >= 1``, ``death[0]`` unused) that is in state ``K`` at time 0: for
    each delay uniform on ``spans[i] = (lo, hi)``, the mean over the delay of ``P(X(delay) = n)``, as
    an array [delay, n].

    By uniformisation: at a rate ``L`` above every state's, the chain jumps (or stays) as a discrete
    chain ``J`` at the events of a Poisson process, so ``P(X(t) = .) = sum_j P(N(L t) = j) J^j e_K``;
    over a uniform delay the weight of ``j`` jumps is ``(P(N(L lo) <= j) - P(N(L hi) <= j)) / (L (hi -
    lo))``. The sum stops where the weights left are below 1e-13 or ``J^j e_K`` has settled on the
    stationary law (to 1e-12), which then takes the weights left (as it does past :data:`_JUMPS`
    jumps). Elementwise numpy only: a short delay costs a few jumps, whatever ``K``.

    >>> p = from_full(np.array([1.0]), np.array([0.0, 2.0]), np.array([[0.0, 0.0], [50.0, 50.0]]))
    >>> [round(float(x), 6) for x in p[:, 1]]  # from full: still full at once; then 1 / 3 of the time
    [1.0, 0.333333]
    """
    birth, death = np.asarray(birth, dtype=float), np.asarray(death, dtype=float)
    spans = np.asarray(spans, dtype=float).reshape(-1, 2)
    K = birth.size
    up = np.concatenate([birth, [0.0]])
    down = np.where(np.arange(K + 1) > 0, death, 0.0)
    rate = 1.05 * max(float((up + down).max()), _TINY)  # above every state's: the jumps are aperiodic
    p_up, p_down = up / rate, down / rate
    p_stay = 1.0 - p_up - p_down
    stationary = _stationary(birth, death)
    lo, hi = rate * spans[:, 0], rate * spans[:, 1]  # in jumps
    most = min(int(np.ceil(hi.max() + 12.0 * np.sqrt(hi.max()) + 30.0)), _JUMPS)
    j = np.arange(most + 1)
    log_j = np.concatenate([[0.0], np.cumsum(np.log(np.maximum(j[1:], 1)))])  # log j!

    def cdf(m: np.ndarray) -> np.ndarray:
        """[span, j]: P(N(m) <= j) for N(m) Poisson of mean m."""
        with np.errstate(divide="ignore"):
            log_pmf = j[None, :] * np.log(np.maximum(m, 1e-300))[:, None] - m[:, None] - log_j[None, :]
        pmf = np.where(m[:, None] > 0, np.exp(log_pmf), (j == 0)[None, :].astype(float))
        return np.minimum(np.cumsum(pmf, axis=1), 1.0)

    width = hi - lo
    wide = width > 1e-9
    point = cdf(lo)
    point[:, 1:] -= point[:, :-1].copy()  # P(N(lo) = j)
    weights = np.where(wide[:, None], (cdf(lo) - cdf(hi)) / np.where(wide, width, 1.0)[:, None], point)
    weights = np.maximum(weights, 0.0)
    out = np.zeros((spans.shape[0], K + 1))
    x, nxt, moved = np.zeros(K + 1), np.empty(K + 1), np.empty(K)
    x[K] = 1.0
    rise, fall = p_up[:-1], p_down[1:]
    left = weights[:, ::-1].cumsum(axis=1)[:, ::-1]  # the weight of j jumps or more
    for step in range(most + 1):
        out += weights[:, step, None] * x[None, :]
        if step == most:  # (the most jumps followed: the weights left go to the stationary law)
            out += np.maximum(1.0 - weights.sum(axis=1), 0.0)[:, None] * stationary[None, :]
            break
        if left[:, step + 1].max() < 1e-13:
            break
        if np.abs(x - stationary).sum() < 1e-12:  # settled: the weights left go to the stationary law
            out += left[:, step + 1, None] * stationary[None, :]
            break
        x, nxt = _jump(x, p_stay, rise, fall, nxt, moved), x
    return np.clip(out, 0.0, 1.0)


def retrial_blocking(c: int, q: int, a: float, full: np.ndarray, spans: np.ndarray) -> tuple[float, np.ndarray]:
    """M/M/c/(c+q) offered ``a`` erlangs of tries that come at random (Poisson) and ``full[k]`` erlangs of
    retries of tries it refused because it was full, each ``spans[k] = (lo, hi)`` mean services after
    that refusal (uniformly). Returns (the share of time it is full, which is the share of the random
    tries it refuses; the share of the retries ``k`` it refuses).

    Retries bunch: a retry comes back to a queue that was full a moment ago, and is refused again with
    the chance that the queue is full ``delay`` after being full, ``p_k(K)`` below, not with the share
    of time it is full (the two agree when the delay is long against the queue's relaxation time). The
    queue is taken as a birth-death chain whose arrival rate in state ``n`` is the mean rate at which
    tries arrive in it: ``a`` plus ``sum_k full[k] p_k(n) / pi(n)``, where ``p_k(n)`` is the chance of
    being in state ``n`` a retry ``k``'s delay after being full (:func:`from_full`) and ``pi`` the
    chain's stationary law (each level is crossed upwards as often as downwards, so ``pi`` holds for
    any arrivals; that arrivals in a state come at its mean rate is the approximation). The extra rate
    is kept below ten times ``a``, the retries and ``c``: retries of a burst of refusals that come back
    to a queue now seldom full are not a stationary flow, and would otherwise make the chain stiff. ``pi`` and
    ``p_k`` are found together by iteration from plain M/M/c/K. Above :data:`WINDOW` states a retry's
    chain is followed on the top :data:`WINDOW` (it does not reach further down within a short delay):
    its law is the queue's ``pi`` plus what that chain's law adds to the chain's own stationary law, so
    that a long delay still gives ``pi``.

    >>> refused, again = retrial_blocking(4, 0, 3.0, np.array([0.0]), np.array([[0.0, 0.1]]))
    >>> round(refused, 6)  # no retries: Erlang B
    0.206107
    >>> refused, again = retrial_blocking(4, 0, 3.0, np.array([0.7]), np.array([[0.0, 0.1]]))
    >>> round(refused, 3), round(float(again[0]), 3)  # a retry 0.05 services on finds it full again
    (0.228, 0.84)
    """
    full, spans = np.asarray(full, dtype=float), np.asarray(spans, dtype=float)
    K = c + q
    death = np.minimum(np.arange(K + 1), c).astype(float)
    base = np.full(K, max(a, _TINY))
    birth = base.copy()
    m = min(K + 1, WINDOW)
    low = K + 1 - m  # a retry's chain is followed on the states low..K
    retries = float(full.sum())
    for _ in range(40):
        pi = _stationary(birth, death)
        if retries <= 0.0 or pi[K] <= 0.0:  # (a queue never full: nothing to retry)
            return float(pi[K]), pi[K] * np.ones(full.size)
        law = from_full(birth[low:], np.concatenate([[0.0], death[low + 1:]]), spans)  # [k, n - low]
        if low > 0:  # what the window's chain adds to its own stationary law, added to the queue's
            law = np.maximum(law - pi[low:] / max(float(pi[low:].sum()), _TINY) + pi[low:], 0.0)
            law = np.concatenate([np.broadcast_to(pi[:low], (len(spans), low)), law], axis=1)
        arrive = full @ law  # retries arriving in each state, per mean service
        extra = arrive[:-1] / np.maximum(pi[:K], _TINY)
        new = base + np.minimum(extra, 10.0 * (a + retries + c))
        done = np.abs(new - birth).max() <= 1e-8 * (a + retries)
        birth = new
        if done:
            break
    return float(pi[K]), law[:, -1]


# ------------------------------------------------------------------------------ consecutive health checks

_PERSIST_STEP = 0.01  # :func:`check_persistence` takes the utilisation on this grid (one chain each)
_PERSIST_STATES = 400  # and follows at most this many states above the workers
_PERSIST_JUMPS = 5000  # and its uniformised chain at most about this many jumps
_PERSIST_OVER = 2.0  # a waiting room's chain is taken at a utilisation of at most this


@lru_cache(maxsize=256)
def _chain(c: int, step: int, places: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M/M/c (mean service 1) at utilisation ``step`` x :data:`_PERSIST_STEP` with ``places`` waiting places
    (-1: none, then truncated where the stationary law's tail falls below 1e-7, or :data:`_PERSIST_STATES`
    above ``c``: 3e-4 at :data:`CAP`): its birth and death rates and stationary law.
    """
    rho = step * _PERSIST_STEP
    top = c + (places if places >= 0 else min(int(math.ceil(math.log(1e-7) / math.log(rho))), _PERSIST_STATES))
    n = np.arange(top + 1)
    birth = np.where(n < top, c * rho, 0.0)
    death = np.minimum(n, c).astype(float)
    return birth, death, _stationary(birth[:-1], death)


def _poisson(mean: float, size: int) -> np.ndarray:
    """P(Poisson(mean) = j) for j < size."""
    j = np.arange(size)
    if mean <= 0.0:
        return (j == 0).astype(float)
    log_j = np.concatenate([[0.0], np.cumsum(np.log(np.maximum(j[1:], 1)))])
    return np.exp(j * math.log(mean) - mean - log_j)


def _late(c: int, tau: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(d completions within tau while every worker is busy), P(a check waits longer than tau | n in
    system)) over d, n < size: fewer than the ``n - c + 1`` completions it waits for come within tau.
    """
    done = _poisson(c * tau, size)
    n = np.arange(size)
    return done, np.where(n >= c, np.minimum(np.cumsum(done), 1.0)[np.maximum(n - c, 0)], 0.0)


@lru_cache(maxsize=4096)
def _persistence(c: int, step: int, places: int, p: float, lag: float) -> float:
    """:func:`check_persistence` at utilisation ``step`` x :data:`_PERSIST_STEP` (``places`` -1: no limit)."""
    birth, death, pi = _chain(c, step, places)
    a = c * step * _PERSIST_STEP
    size = pi.size
    waits = float(pi[c:].sum())  # P(wait): Erlang C without a room's limit
    if places < 0:  # the timeout in mean services that makes p the M/M/c chance C exp(-(c - a) tau)
        tau = math.log(waits / p) / (c - a) if 0.0 < p < waits else 0.0
    else:  # the same by bisection (a room's chain: no closed form)
        lo, hi = 0.0, 1.0
        while hi < 1e6 and float(pi @ _late(c, hi, size)[1]) > p:
            hi *= 2.0
        for _ in range(40 if p < waits else 0):
            mid = (lo + hi) / 2.0
            lo, hi = (mid, hi) if float(pi @ _late(c, mid, size)[1]) > p else (lo, mid)
        tau = hi if p < waits else 0.0
    done, late = _late(c, tau, size)
    share = float(pi @ late)  # the chain's own P(late): p, up to the truncation
    if not 0.0 < share < 1.0:
        return 0.0
    # Late now, and the number in system tau later: the n - c + 1 completions the check waits for did not
    # all come, so every worker was busy: d < n - c + 1 completions (Poisson(c tau)), arrivals Poisson(a tau)
    # (those past a full room's last place are taken as refused at the end).
    kept = np.convolve(pi[::-1], done)[size - 1::-1]  # [k]: sum over d of pi[k + d] P(d completions)
    kept[:c] = 0.0
    spread = np.convolve(kept, _poisson(a * tau, size))
    x = spread[:size].copy()
    x[-1] += spread[size:].sum()
    # Then lag - tau more, by uniformisation (as from_full): jumps at rate ``rate``, Poisson many.
    rate = 1.05 * float((birth + death).max())
    up, down = birth / rate, death / rate
    stay = 1.0 - up - down
    t = max(lag - tau, 0.0)
    beyond = max(t - _PERSIST_JUMPS / rate, 0.0)  # past that many jumps: the slowest rate (below)
    mean = rate * (t - beyond)
    weights = _poisson(mean, int(math.ceil(mean + 12.0 * math.sqrt(mean) + 30.0)))
    mass = float(x.sum())
    both, left = 0.0, 1.0
    rise, fall = up[:-1], down[1:]
    nxt, moved = np.empty(size), np.empty(size - 1)
    for j, w in enumerate(weights.tolist()):
        both += w * float(x @ late)
        left -= w
        if left < 1e-12:
            break
        if j % 64 == 63 and float(np.abs(x - mass * pi).sum()) < 1e-9 * mass:  # settled: the weight left
            both += left * mass * share  # at the stationary law
            break
        x, nxt = _jump(x, stay, rise, fall, nxt, moved), x
    r = (both / share - share) / (1.0 - share)
    if beyond > 0.0:  # a mixture of exponentials falls at least at its slowest rate: at most Morse's gap
        r *= math.exp(-beyond * min(1.0, c * (1.0 - math.sqrt(min(a / c, CAP))) ** 2))
    return min(max(r, 0.0), 1.0)


def check_persistence(c: int, a: float, p: float, lag: float, places: float = math.inf) -> float:
    """How much a health check's answer persists: for an M/M/c queue (``c`` workers offered ``a`` erlangs,
    mean service 1, FIFO) whose checks are late with chance ``p``, the correlation ``r`` of "a check would
    be late" now and ``lag`` mean services later, so that ``P(late again | late) = p + (1 - p) r`` and
    ``P(late | in time) = p (1 - r)`` (which keep the share of late checks at ``p``). With ``places``
    (a queue limit) the chain is M/M/c/(c + places), at any load up to twice the workers' (a full room's
    queue fluctuates below its limit, and forgets faster than an unlimited one near saturation); above
    400 places, as none.

    The check's timeout ``tau`` is the one that makes ``p`` the M/M/c chance ``C exp(-(c - a) tau)``
    (Erlang C ``C``; 0 if ``p >= C``; with a room, found by bisection), so a flow engine whose waits are
    not exactly M/M/c (Allen–Cunneen, a fluid backlog) gets the persistence of a queue late as often as
    its own. With ``N`` in system a check is late with chance ``f(N) = P(Poisson(c tau) <= N - c)``
    (fewer than the ``N - c + 1`` completions it waits for come within ``tau``), and given the past that
    is exact: service is memoryless. A late check
    also says that every worker stayed busy for ``tau``: the number in system ``tau`` later is ``N`` plus
    Poisson(``a tau``) arrivals less fewer than ``N - c + 1`` Poisson(``c tau``) completions. From there
    the chain runs ``lag - tau`` more (by uniformisation, as :func:`from_full`). So ``P(late, then late)``
    is exact for ``lag >= tau`` up to the truncation (below ``tau`` the two checks' waits overlap and this
    is an approximation). By the spectral representation of a birth–death chain (Karlin & McGregor, 1957)
    ``r`` is a mixture of exponentials in the lag (Abate & Whitt, "Simple spectral representations for
    the M/M/1 queue", Queueing Systems 3, 1988), whose slowest rate is the gap of the spectrum: for M/M/1
    Morse's relaxation time ``T = 1 / (mu (1 - sqrt(rho))^2)`` (Morse, "Stochastic properties of waiting
    lines", Operations Research 3, 1955), about ``1 / (c mu (1 - sqrt(rho))^2)`` for M/M/c near
    saturation. ``r`` falls well below ``exp(-lag / T)`` at lags of a few mean waits: Morse's exponential
    alone would make checks far too alike (``tests/validation/test_flow_probes.py`` checks both engines
    against this). Past 5,000 jumps of the chain (a long lag on many workers) ``r`` falls at
    ``min(mu, c mu (1 - sqrt(rho))^2)`` from there, no faster than the mixture does. The utilisation is
    taken on a grid of 0.01 (at most :data:`CAP` without a room), ``p`` and the lag to two digits (``p``
    below 1% to one, and above 99.5% ``1 - p`` to one: rounded to 1, a check late for certain would keep
    an earlier answer in time for good).

    >>> p = 0.26  # M/M/4 at 87%, a check late 26% of the time, 10 and 50 services (1 s, 5 s) apart
    >>> [round(p + (1 - p) * check_persistence(4, 3.48, p, lag), 2) for lag in (10.0, 50.0)]
    [0.55, 0.31]
    >>> check_persistence(4, 3.48, p, 1e6)  # long after: independent
    0.0
    """
    if c < 1 or a <= 0.0 or not 0.0 < p < 1.0 or lag != lag or lag == math.inf:
        return 0.0
    room = 0 <= places <= _PERSIST_STATES  # followed whole; a longer one as none
    most = _PERSIST_OVER if room else CAP
    step = max(int(round(min(a / c, most) / _PERSIST_STEP)), 1)
    if not room and step * _PERSIST_STEP >= 1.0:  # (CAP on the grid)
        step = int(CAP / _PERSIST_STEP)
    digits = float(f"{p:.2g}" if p >= 0.01 else f"{p:.1g}")  # (below 1%: it barely changes an answer)
    if digits >= 1.0:  # within 0.5% of certain: 1 - p to one digit, so that a late check stays uncertain (at
        digits = 1.0 - float(f"{1.0 - p:.1g}")  # p = 1 the chain never forgets a check in time: r = 1)
    return _persistence(int(c), step, int(places) if room else -1, digits, float(f"{max(lag, 0.0):.2g}"))


# ------------------------------------------------------------------------------ the supermarket model



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


def _erfcx(z: float) -> float:
    """``exp(z²) erfc(z)`` for ``z ≥ 0`` (its asymptotic series where the product would overflow)."""
    if z < 20.0:
        return math.exp(z * z) * math.erfc(z)
    return (1.0 - 0.5 / (z * z) + 0.75 / z ** 4) / (z * math.sqrt(math.pi))


def spread_tail(room: np.ndarray, sd: np.ndarray, wait_p: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """P(X + E > room), element by element, for X ~ N(0, sd²) and E none with probability 1 − ``wait_p``,
    else exponential at ``rate``: a check's wait beyond its fluid part, whose queue ahead departs one by
    one (X, the spread of those departures' times) on top of a stationary M/M/c wait (E). With ``sd`` 0 it
    is ``wait_p · exp(−rate · room)`` for positive ``room``, else 1.

    >>> float(spread_tail(np.array([0.0]), np.array([0.2]), np.array([0.0]), np.array([1.0]))[0])
    0.5
    """
    out = np.empty(np.shape(room))
    root2 = math.sqrt(2.0)
    for i, (r, s, q, lam) in enumerate(zip(np.ravel(room).tolist(), np.ravel(sd).tolist(),
                                           np.ravel(wait_p).tolist(), np.ravel(rate).tolist(), strict=True)):
        if s <= 0.0:
            out.flat[i] = 1.0 if r <= 0.0 else q * math.exp(-lam * r)
            continue
        p = 0.5 * math.erfc(r / (s * root2))
        if q > 0.0 and lam > 0.0:  # + q e^(−λr + λ²s²/2) Φ((r − λs²)/s), in a form that neither overflows
            z = (lam * s * s - r) / (s * root2)
            p += q * 0.5 * (math.exp(-lam * r + 0.5 * (lam * s) ** 2) * math.erfc(z) if z <= 0.0
                            else math.exp(-r * r / (2.0 * s * s)) * _erfcx(z))
        out.flat[i] = min(p, 1.0)
    return out
