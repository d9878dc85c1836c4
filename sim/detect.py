"""Anomaly detectors for monitoring: is a value out of line with what came before.

A detector sees one number per check interval (an error rate, a latency percentile) and answers one
question, :meth:`Detector.observe`: does this value fire the alert? Each exposes ``baseline`` and
``limit`` (what it compared the value against) so an alert can say why it fired. Detectors know nothing
about the simulation; :class:`sim.control.Monitor` feeds them from the run's counters.

>>> rule = ThresholdRule(rise=0.01, history=[0.001, 0.003])
>>> rule.observe(0.005), rule.observe(0.05)
(False, True)
>>> band = EwmaBand(alpha=0.3, k=3.0, history=[10.0, 11.0, 9.0, 10.0])
>>> band.observe(10.5), band.observe(30.0)
(False, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

__all__ = ["Detector", "ThresholdRule", "EwmaBand"]


class Detector(Protocol):
    """What a monitor asks of a detector. Implementations override :meth:`observe`."""

    @property
    def baseline(self) -> float:
        """The normal level the detector compares against."""
        ...

    @property
    def limit(self) -> float:
        """The value above which :meth:`observe` fires."""
        ...

    def observe(self, value: float) -> bool:
        """Take the next value of the series; return whether it fires the alert."""
        ...


class ThresholdRule:
    """A static rule: fire when a value exceeds the baseline by more than ``rise``.

    The baseline is the mean of ``history`` (the values seen before the change under watch), or 0 when
    there is none. It does not move afterwards: a slow drift fires as surely as a jump.
    """

    def __init__(self, rise: float, history: Iterable[float] = ()):
        if rise < 0:
            raise ValueError(f"a threshold rule needs a rise of 0 or more (got {rise!r})")
        self._baseline = 0.0
        for k, value in enumerate(history, 1):
            self._baseline += (value - self._baseline) / k  # running mean: exact for a constant history
        self.rise = rise

    @property
    def baseline(self) -> float:
        """The mean of the history."""
        return self._baseline

    @property
    def limit(self) -> float:
        """Baseline plus the allowed rise."""
        return self._baseline + self.rise

    def observe(self, value: float) -> bool:
        """Whether ``value`` exceeds the limit."""
        return value > self.limit


class EwmaBand:
    """An anomaly detector: fire when a value rises above the band of an exponentially weighted average.

    The band is ``k`` exponentially weighted standard deviations wide, and at least ``floor``.

    The average and variance follow the series with weight ``alpha`` on the newest value (Finch 2009,
    "Incremental calculation of weighted mean and variance"). ``history`` primes them. A value that
    fires is not learned, so a sustained anomaly keeps firing rather than becoming the new normal.
    ``floor`` keeps a series that has been perfectly flat (zero errors, say) from firing on noise.
    No value fires before ``warmup`` values have been learned.
    """

    def __init__(
        self, alpha: float, k: float, floor: float = 0.0, history: Iterable[float] = (), warmup: int = 2
    ):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"an EWMA weight is in (0, 1] (got alpha {alpha!r})")
        if k <= 0 or floor < 0:
            raise ValueError(f"an EWMA band needs k > 0 and floor >= 0 (got k {k!r}, floor {floor!r})")
        self.alpha, self.k, self.floor, self.warmup = alpha, k, floor, warmup
        self.mean = 0.0
        self.variance = 0.0
        self.n = 0
        for value in history:
            self._learn(value)

    @property
    def baseline(self) -> float:
        """The moving average."""
        return self.mean

    @property
    def limit(self) -> float:
        """The top of the band: average plus ``max(k * sd, floor)``."""
        return self.mean + max(self.k * math.sqrt(self.variance), self.floor)

    def observe(self, value: float) -> bool:
        """Whether ``value`` is above the band; if it is not, learn it."""
        if self.n >= self.warmup and value > self.limit:
            return True
        self._learn(value)
        return False

    def _learn(self, value: float) -> None:
        if self.n == 0:
            self.mean = value
        else:
            diff = value - self.mean
            step = self.alpha * diff
            self.mean += step
            self.variance = (1.0 - self.alpha) * (self.variance + diff * step)
        self.n += 1
