"""Confidence intervals over replications, kept within what the metric can be, and verdicts on differences.

One function, :func:`interval_for`, picks the interval from the metric's declared :data:`Domain`:

=============  ==========================================  ============================================
domain         examples                                    interval (``Interval.method``)
=============  ==========================================  ============================================
proportion     recovered, metastable, SLO met (0/1 runs)   Wilson score (``Wilson``)
bounded        availability (a fraction in [0, 1])         expanded percentile bootstrap (``bootstrap``)
nonnegative    downtime, time to recover, latency, counts  the same bootstrap
unbounded      (paired differences)                        Student t (``Student t``)
=============  ==========================================  ============================================

Below :data:`BOOTSTRAP_FROM` replications a bounded or non-negative metric gets Student's t clipped to
the metric's range (``Student t, clipped`` when the clip bound): see :func:`bootstrap_interval` for why.
Differences between layouts are paired t intervals (:func:`paired_interval`), clipped to the range a
difference can take (±1 for a share). :func:`verdict` says whether a difference is significant, and
refuses to say with fewer than :func:`min_replications` pairs.

Student's t quantile is computed here rather than taken from scipy (not a dependency): in closed form for
1 and 2 degrees of freedom, from a table for the 95% interval up to 9, and otherwise by the Cornish-Fisher
expansion (Abramowitz & Stegun 26.7.5, four terms), which is within 0.8% of the exact value at 3 degrees
of freedom (99% interval), 0.03% at 5 and 0.001% from 10 on.

>>> round(t_quantile(0.975, 9), 3)
2.262
>>> iv = mean_interval([0.99, 0.98, 0.97])
>>> round(iv.mean, 3), round(iv.half_width, 4), iv.n, iv.method
(0.98, 0.0248, 3, 'Student t')
>>> iv = interval_for([True, True, True, False], "proportion")
>>> round(iv.low, 3), round(iv.high, 3), iv.method
(0.301, 0.954, 'Wilson')
>>> verdict(paired_interval([1, 1], [0, 0])).text
'not enough replications (2 of 6)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

__all__ = [
    "Domain",
    "DOMAINS",
    "Interval",
    "Verdict",
    "BOOTSTRAP_FROM",
    "BOOTSTRAP_RESAMPLES",
    "t_quantile",
    "interval_for",
    "mean_interval",
    "wilson_interval",
    "bootstrap_interval",
    "paired_interval",
    "min_replications",
    "verdict",
]

Domain = Literal["proportion", "bounded", "nonnegative", "unbounded"]
"""What values a metric can take, which decides its interval (:func:`interval_for`)."""

DOMAINS: dict[Domain, tuple[float, float]] = {
    "proportion": (0.0, 1.0),
    "bounded": (0.0, 1.0),
    "nonnegative": (0.0, math.inf),
    "unbounded": (-math.inf, math.inf),
}
"""Each domain's range: every interval of a metric in it lies within."""

BOOTSTRAP_FROM = 8
"""Fewest values for a bootstrap interval (below, Student's t clipped to the range; see
:func:`bootstrap_interval`)."""

BOOTSTRAP_RESAMPLES = 10_000
_BOOTSTRAP_SEED = 20_140_014  # fixed: an interval depends on the values alone
_CHUNK = 1 << 20  # resampled values held at once

# t(0.975, df) for df 3..9, where the expansion is least accurate.
_T975 = {3: 3.182446, 4: 2.776445, 5: 2.570582, 6: 2.446912, 7: 2.364624, 8: 2.306004, 9: 2.262157}


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1 (got {p})")
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1 (got {df})")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    if df in _T975 and abs(p - 0.975) < 1e-12:
        return _T975[df]
    if df in _T975 and abs(p - 0.025) < 1e-12:
        return -_T975[df]
    z = NormalDist().inv_cdf(p)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values with its two-sided confidence interval ``[low, high]``, and the ``method``
    that made it: ``Wilson``, ``bootstrap``, ``Student t`` or ``paired t``, the last two followed by
    ``, clipped`` when the interval was cut to the metric's range.

    With one value the interval is unknown (``low``/``high`` are ``None``; a Wilson interval exists from
    one value on); with none, so is the mean.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    std: float | None
    confidence: float = 0.95
    method: str = "Student t"

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (``None`` when it is unknown)."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    @property
    def collapsed(self) -> bool:
        """Whether the interval is a single point: every value was the same. That is no spread to
        estimate from, not certainty, so reports say so instead of showing ``[x, x]``.
        """
        return self.low is not None and self.high is not None and self.low == self.high

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (for a verdict, use :func:`verdict`)."""
        return self.low is not None and self.high is not None and not (self.low <= value <= self.high)

    def as_dict(self) -> dict[str, float | int | str | None]:
        """Plain numbers, for JSON."""
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "half_width": self.half_width,
            "n": self.n,
            "std": self.std,
            "confidence": self.confidence,
            "method": self.method,
        }


def _numbers(values: Iterable[float | int | bool | None]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        x = float(v)
        if not math.isnan(x):
            out.append(x)
    return out


def _moments(xs: list[float]) -> tuple[float, float]:
    n = len(xs)
    mean = math.fsum(xs) / n
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))


def interval_for(
    values: Iterable[float | int | bool | None], domain: Domain, confidence: float = 0.95
) -> Interval:
    """The interval of the mean of ``values`` for a metric in ``domain``: the one place that decides.

    ``None`` and NaN are left out; booleans count 0/1.

    >>> interval_for([0.0, 0.0, 0.0, 1.5, 2.0], "nonnegative").low     # Student's t would say -0.51
    0.0
    >>> interval_for([0.0, 0.0, 0.0, 1.5, 2.0], "nonnegative").method
    'Student t, clipped'
    """
    if domain not in DOMAINS:
        raise ValueError(f"no domain '{domain}' (domains: {', '.join(DOMAINS)})")
    if domain == "proportion":
        return wilson_interval(values, confidence)
    if domain == "unbounded":
        return mean_interval(values, confidence)
    xs = _numbers(values)
    lo, hi = DOMAINS[domain]
    outside = [x for x in xs if not lo <= x <= hi]
    if outside:
        raise ValueError(f"a {domain} metric lies within [{lo:g}, {hi:g}] (got {outside[0]:g})")
    if len(xs) >= BOOTSTRAP_FROM:
        return bootstrap_interval(xs, confidence, (lo, hi))
    return mean_interval(xs, confidence, (lo, hi))


def _clip(
    mean: float, low: float, high: float, bounds: tuple[float, float] | None
) -> tuple[float, float, bool]:
    if bounds is None:
        return low, high, False
    lo, hi = bounds
    clipped = low < lo or high > hi
    return max(lo, min(low, mean)), min(hi, max(high, mean)), clipped


def mean_interval(
    values: Iterable[float | int | bool | None],
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
    method: str = "Student t",
) -> Interval:
    """Mean and Student t interval of ``values`` (``None`` and NaN are left out; booleans count 0/1).

    With ``bounds`` the interval is cut to them (the method then says ``, clipped``): the true mean lies
    within the metric's range, so cutting away what is impossible loses no coverage.
    """
    xs = _numbers(values)
    n = len(xs)
    if n == 0:
        return Interval(None, None, None, 0, None, confidence, method)
    if n == 1:
        return Interval(xs[0], None, None, 1, None, confidence, method)
    mean, std = _moments(xs)
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    low, high, clipped = _clip(mean, mean - half, mean + half, bounds)
    return Interval(mean, low, high, n, std, confidence, f"{method}, clipped" if clipped else method)


def wilson_interval(values: Iterable[float | int | bool | None], confidence: float = 0.95) -> Interval:
    """The share of runs where ``values`` is true, with its Wilson score interval.

    The Wilson interval inverts the normal test of a proportion, so it stays within [0, 1], is not
    empty at 0 or n successes, and covers close to its nominal level down to a handful of runs, where
    the t interval on 0/1 values gives ``[-5%, 155%]`` for 3 of 4.

    >>> iv = wilson_interval([True] * 5)
    >>> round(iv.low, 3), iv.high
    (0.566, 1.0)
    """
    xs = _numbers(values)
    bad = [x for x in xs if x not in (0.0, 1.0)]
    if bad:
        raise ValueError(f"a share of runs counts values that are 0 or 1, true or false (got {bad[0]:g})")
    n = len(xs)
    if n == 0:
        return Interval(None, None, None, 0, None, confidence, "Wilson")
    k = math.fsum(xs)
    p = k / n
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 or n successes one end is exactly the boundary (the formula's rounding would leave it 1e-17 off).
    low = 0.0 if k == 0 else max(0.0, min(p, centre - half))
    high = 1.0 if k == n else min(1.0, max(p, centre + half))
    std = _moments(xs)[1] if n > 1 else None
    return Interval(p, low, high, n, std, confidence, "Wilson")


def bootstrap_interval(
    values: Iterable[float | int | bool | None],
    confidence: float = 0.95,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Interval:
    """Mean of ``values`` with the expanded percentile bootstrap interval (for bounded or skewed metrics).

    Why this interval for availability, downtime, time to recover:

    - It is an interval for the *mean* — what downtime per year and mean availability are. A log or logit
      transformed t interval is one for the geometric or logit mean instead: for availabilities of four
      runs at 99.99% and one at 50%, logit-t gives [90.5%, 99.9996%], which leaves out the mean, 90.0%.
    - Its ends are means of resamples of the values, so they lie between the smallest and largest value,
      hence within the metric's range, and zeros or exact 1s need no special case (log 0 and logit 1
      are infinite).
    - It is asymmetric where the values are skewed (rare long outages make downtime so).
    - *Expanded* (Hesterberg 2015, "What teachers should know about the bootstrap"): the percentiles
      taken are ``Φ(±√(n/(n−1))·t(n−1))`` rather than ``α/2``, which undoes the plain percentile
      interval's narrowness in small samples (it divides by n, and uses z where t belongs).

    Its limit: it never reaches past the values seen, and the range of ``n`` values holds the median
    with probability ``1 − 2^(1−n)`` at most: 75% at n = 3, 94% at n = 5, 99.2% at n = 8. So
    :func:`interval_for` uses it from :data:`BOOTSTRAP_FROM` (8) values on, and Student's t clipped to
    the range below — clipping loses no coverage, the true mean being within the range.

    Deterministic: :data:`BOOTSTRAP_RESAMPLES` resamples of the sorted values, drawn by a numpy Generator
    with a fixed seed, so the interval depends on the values alone (not their order, the process or any
    global random state). Every value the same gives ``[x, x]`` (:attr:`Interval.collapsed`).
    """
    xs = sorted(_numbers(values))
    n = len(xs)
    if n < 2:
        return mean_interval(xs, confidence, bounds, "bootstrap")
    mean, std = _moments(xs)
    if xs[0] == xs[-1]:
        return Interval(xs[0], xs[0], xs[0], n, 0.0, confidence, "bootstrap")
    tail = NormalDist().cdf(-math.sqrt(n / (n - 1)) * t_quantile(0.5 + confidence / 2, n - 1))
    data = np.asarray(xs)
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    means = np.empty(BOOTSTRAP_RESAMPLES)
    rows = max(1, _CHUNK // n)
    for start in range(0, BOOTSTRAP_RESAMPLES, rows):
        k = min(rows, BOOTSTRAP_RESAMPLES - start)
        means[start : start + k] = data[rng.integers(0, n, size=(k, n))].mean(axis=1)
    q_low, q_high = np.quantile(means, [tail, 1.0 - tail])
    # The mean is inside by construction of the resamples' distribution; the guard keeps it so for any
    # draw, and the bounds hold against the last bit of rounding in the resamples' means.
    low, high, _ = _clip(mean, float(q_low), float(q_high), (max(bounds[0], xs[0]), min(bounds[1], xs[-1])))
    return Interval(mean, low, high, n, std, confidence, "bootstrap")


def paired_interval(
    a: Sequence[float | int | bool | None],
    b: Sequence[float | int | bool | None],
    confidence: float = 0.95,
    domain: Domain = "unbounded",
) -> Interval:
    """Interval of the mean of ``b[i] - a[i]`` over the pairs where both are known (paired t).

    Pairing is what common random numbers buy: replication ``i`` of both layouts saw the same failures,
    so the noise they share cancels in the difference. The interval is cut to the range a difference of
    the ``domain`` can take (±1 for shares and fractions).
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} and {len(b)})")
    diffs = [
        float(y) - float(x)
        for x, y in zip(a, b, strict=True)
        if x is not None and y is not None and not math.isnan(float(x)) and not math.isnan(float(y))
    ]
    lo, hi = DOMAINS[domain]
    return mean_interval(diffs, confidence, (lo - hi, hi - lo), "paired t")


def min_replications(confidence: float = 0.95) -> int:
    """The fewest pairs on which a difference may be called significant at ``confidence``: 6 at 95%.

    It is the smallest ``n`` with ``2^(1−n) ≤ 1 − confidence``: below it no distribution-free paired test
    can reach the level at all (the sign test's and the signed-rank test's smallest two-sided p-value
    with 5 pairs is 2/32 = 6.25%), so a verdict would rest wholly on the differences being normal, which
    5 values cannot show. From it on, ``n`` pairs that all differ by the same amount are significant by
    the sign test.

    >>> min_replications(0.95), min_replications(0.99), min_replications(0.9)
    (6, 8, 5)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (got {confidence})")
    n = 2
    while 2.0 ** (1 - n) > (1.0 - confidence) * (1 + 1e-12):
        n += 1
    return n


Status = Literal["significant", "not significant", "not enough replications"]


@dataclass(frozen=True)
class Verdict:
    """Whether a paired difference is significant, by which ``test``, on ``n`` pairs of ``needed``."""

    status: Status
    test: str  # "paired t", "sign test", or "" when there were too few pairs to test
    n: int
    needed: int

    @property
    def significant(self) -> bool:
        """Whether the difference is significant."""
        return self.status == "significant"

    @property
    def text(self) -> str:
        """``significant (paired t)``, ``not significant``, ``not enough replications (2 of 6)``."""
        if self.status == "not enough replications":
            return f"not enough replications ({self.n} of {self.needed})"
        return f"significant ({self.test})" if self.significant else self.status


def verdict(diff: Interval) -> Verdict:
    """Whether the paired difference ``diff`` (from :func:`paired_interval`) is significant.

    Never with fewer than :func:`min_replications` pairs. With enough, by the paired t interval excluding
    zero; when every pair differs by the same amount the t interval is a point (no spread is no
    certainty), so the exact sign test decides: ``n`` pairs of one sign have ``p = 2^(1−n)``.

    >>> verdict(paired_interval([0.0] * 6, [1.0] * 6)).text
    'significant (sign test)'
    """
    needed = min_replications(diff.confidence)
    if diff.mean is None or diff.n < needed:
        return Verdict("not enough replications", "", diff.n, needed)
    if not diff.std:
        p = 1.0 if diff.mean == 0 else 2.0 ** (1 - diff.n)
        status: Status = "significant" if p <= (1.0 - diff.confidence) * (1 + 1e-12) else "not significant"
        return Verdict(status, "sign test", diff.n, needed)
    return Verdict("significant" if diff.excludes(0.0) else "not significant", "paired t", diff.n, needed)
