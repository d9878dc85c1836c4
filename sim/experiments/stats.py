"""Confidence intervals for the mean of replications, and for paired differences.

Intervals use Student's t distribution with ``n - 1`` degrees of freedom. Its quantile is computed here
rather than taken from scipy (not a dependency): in closed form for 1 and 2 degrees of freedom, from a
table for the 95% interval up to 9, and otherwise by the Cornish-Fisher expansion (Abramowitz & Stegun
26.7.5, four terms), which is within 0.8% of the exact value at 3 degrees of freedom (99% interval),
0.03% at 5 and 0.001% from 10 on.

>>> round(t_quantile(0.975, 9), 3)
2.262
>>> iv = mean_interval([0.99, 0.98, 0.97])
>>> round(iv.mean, 3), round(iv.half_width, 4), iv.n
(0.98, 0.0248, 3)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Interval", "t_quantile", "mean_interval", "paired_interval"]

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
    """The mean of ``n`` values with its two-sided confidence interval ``[low, high]``.

    With one value the interval is unknown (``low``/``high`` are ``None``); with none, so is the mean.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int
    std: float | None
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (``None`` when it is unknown)."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def excludes(self, value: float = 0.0) -> bool:
        """Whether ``value`` lies outside the interval (a significant difference from it)."""
        return self.low is not None and self.high is not None and not (self.low <= value <= self.high)

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain numbers, for JSON."""
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "half_width": self.half_width,
            "n": self.n,
            "std": self.std,
            "confidence": self.confidence,
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


def mean_interval(values: Iterable[float | int | bool | None], confidence: float = 0.95) -> Interval:
    """Mean and t confidence interval of ``values`` (``None`` and NaN are left out; booleans count 0/1)."""
    xs = _numbers(values)
    n = len(xs)
    if n == 0:
        return Interval(None, None, None, 0, None, confidence)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(mean, None, None, 1, None, confidence)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    std = math.sqrt(var)
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, std, confidence)


def paired_interval(
    a: Sequence[float | int | bool | None], b: Sequence[float | int | bool | None], confidence: float = 0.95
) -> Interval:
    """Interval of the mean of ``b[i] - a[i]`` over the pairs where both are known (paired t).

    Pairing is what common random numbers buy: replication ``i`` of both layouts saw the same failures,
    so the noise they share cancels in the difference.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} and {len(b)})")
    diffs = [
        float(y) - float(x)
        for x, y in zip(a, b, strict=True)
        if x is not None and y is not None and not math.isnan(float(x)) and not math.isnan(float(y))
    ]
    return mean_interval(diffs, confidence)
