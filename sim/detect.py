"""Anomaly detectors for monitoring: is a value out of line with what came before.

A detector sees one number per check interval (an error rate, a latency percentile) and answers one
question, :meth:`Detector.observe`: does this value fire the alert? Each exposes ``baseline`` and
``limit`` (what it compared the value against) so an alert can say why it fired. Detectors know nothing
about the simulation; :class:`sim.control.Monitor` feeds them from the run's counters.

Failure detection is the other question a detector answers: has a server stopped? :func:`phi` is the
suspicion level of the phi-accrual detector and :class:`PhiAccrual` keeps its heartbeat history for every
server at once; :class:`sim.control.HealthChecker` feeds it the health checks' answers.

>>> rule = ThresholdRule(rise=0.01, history=[0.001, 0.003])
>>> rule.observe(0.005), rule.observe(0.05)
(False, True)
>>> band = EwmaBand(alpha=0.3, k=3.0, history=[10.0, 11.0, 9.0, 10.0])
>>> band.observe(10.5), band.observe(30.0)
(False, True)
>>> round(phi(2.0, mean=1.0, std=0.5), 2)  # two standard deviations late: -log10(0.02275)
1.64
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import numpy as np

__all__ = ["Detector", "ThresholdRule", "EwmaBand", "phi", "PhiAccrual"]


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


_SQRT2 = math.sqrt(2.0)


def phi(elapsed: float, mean: float, std: float) -> float:
    """The phi-accrual suspicion level (Hayashibara, Défago, Yared & Katayama, "The phi accrual failure
    detector", SRDS 2004): ``-log10`` of the chance that a heartbeat comes more than ``elapsed`` after the
    previous one, when the gaps between heartbeats are normal with ``mean`` and ``std``. Phi 1 means a
    10% chance of a gap this long, phi 8 one in 10^8; infinite where that chance underflows.

    >>> phi(1.0, mean=1.0, std=0.1)  # exactly the mean gap: an even chance
    0.3010299956639812
    >>> round(phi(1.5, mean=1.0, std=0.1), 1)  # five standard deviations: -log10(2.87e-7)
    6.5
    """
    later = 0.5 * math.erfc((elapsed - mean) / (std * _SQRT2))
    return -math.log10(later) if later > 0.0 else math.inf


class PhiAccrual:
    """Phi-accrual failure detection for ``n`` servers at once: each remembers the gaps between the last
    ``window`` heartbeats it answered and is suspected while :func:`phi` of the time since its latest
    heartbeat, against the gaps' mean and standard deviation (at least ``min_std``), is at least
    ``threshold``.

    A heartbeat is sent to every server at each :meth:`beat` and arrives after that server's ``delay``
    (how long its answer takes; they arrive in the order they were sent); a server that is down answers
    nothing and loses the heartbeats on their way. A server that comes back up starts a new history,
    primed with gaps of ``expected`` (mean) and ``expected / 4`` (standard deviation), as Akka's detector
    is, until it has two gaps of its own.

    >>> d = PhiAccrual(2, threshold=8.0, window=10, min_std=0.1, expected=1.0)
    >>> up = np.array([True, True])
    >>> for t in range(5):
    ...     _ = d.beat(float(t), up, np.zeros(2))
    >>> d.beat(5.0, np.array([True, False]), np.zeros(2)).tolist()  # one missed beat: phi 0.3
    [False, False]
    >>> d.beat(6.0, np.array([True, False]), np.zeros(2)).tolist()  # two: ten standard deviations late
    [False, True]
    >>> round(float(d.level[1]), 1)  # -log10(7.6e-24)
    23.1
    """

    def __init__(self, n: int, threshold: float, window: int, min_std: float, expected: float):
        self.threshold, self.window, self.min_std, self.expected = threshold, window, min_std, expected
        self.gaps = np.zeros((n, window))  # ring of the last gaps between heartbeats
        self.filled = np.zeros(n, dtype=np.int64)  # gaps held (at most window)
        self.next = np.zeros(n, dtype=np.int64)  # where the next gap goes in the ring
        self.last = np.full(n, np.nan)  # when the latest heartbeat arrived (nan: none since it came up)
        self.on_way: list[deque[float]] = [deque() for _ in range(n)]  # arrival times of heartbeats sent
        self.was_up = np.ones(n, dtype=bool)
        self.level = np.zeros(n)  # phi at the latest beat

    def beat(self, now: float, up: np.ndarray, delay: np.ndarray, down_since: np.ndarray | None = None) -> np.ndarray:
        """Send a heartbeat to every server that is up (answered ``delay`` later), take in those arrived by
        ``now`` (by ``down_since``, when the server went down, for a server that is down), and return which
        servers are suspected now (phi at least the threshold).
        """
        came_back = up & ~self.was_up
        if came_back.any():  # a fresh process: a new history
            self.filled[came_back] = 0
            self.next[came_back] = 0
            self.last[came_back] = np.nan
        self.was_up = up.copy()
        on_way = self.on_way
        at_once = up & (delay <= 0.0)
        for i in np.flatnonzero(~up | ~at_once).tolist():  # the few that are down or slow, one by one
            if not up[i]:  # those on their way when it went down are lost with it
                stopped = now if down_since is None else min(now, float(down_since[i]))
                while on_way[i] and on_way[i][0] <= stopped:
                    self._arrive(np.array([i]), np.array([on_way[i].popleft()]))
                on_way[i].clear()
                continue
            on_way[i].append(max(now + float(delay[i]), on_way[i][-1] if on_way[i] else -math.inf))
            while on_way[i] and on_way[i][0] <= now:
                self._arrive(np.array([i]), np.array([on_way[i].popleft()]))
        quick = np.flatnonzero(at_once)
        if len(quick):  # answered at once (and any earlier heartbeats of theirs have arrived already)
            for i in quick[[bool(on_way[i]) for i in quick]].tolist():
                while on_way[i]:
                    self._arrive(np.array([i]), np.array([on_way[i].popleft()]))
            self._arrive(quick, np.full(len(quick), now))
        self.level = self.phi_at(now)
        return self.level >= self.threshold

    def phi_at(self, now: float) -> np.ndarray:
        """Phi of every server at ``now``: :func:`phi` of the servers whose heartbeat is later than the mean
        gap, 0 for the others (their phi is below -log10(1/2), under any threshold the scenario allows) and
        for those with no heartbeat since they came up.
        """
        k = self.filled
        held = np.arange(self.window)[None, :] < k[:, None]
        counted = np.maximum(k, 1)
        mean = np.where(held, self.gaps, 0.0).sum(axis=1) / counted
        var = np.where(held, (self.gaps - mean[:, None]) ** 2, 0.0).sum(axis=1) / counted
        primed = k < 2
        mean = np.where(primed, self.expected, mean)
        std = np.maximum(np.where(primed, self.expected / 4, np.sqrt(var)), self.min_std)
        elapsed = now - self.last  # nan where no heartbeat: not late
        level = np.zeros(len(k))
        for i in np.flatnonzero(elapsed > mean).tolist():
            level[i] = phi(float(elapsed[i]), float(mean[i]), float(std[i]))
        return level

    def _arrive(self, servers: np.ndarray, times: np.ndarray) -> None:
        """Heartbeats of ``servers`` arrived at ``times``: each gap since the previous one is learned."""
        last = self.last[servers]
        seen = ~np.isnan(last)
        if seen.any():
            s = servers[seen]
            self.gaps[s, self.next[s]] = times[seen] - last[seen]
            self.next[s] = (self.next[s] + 1) % self.window
            self.filled[s] = np.minimum(self.filled[s] + 1, self.window)
        self.last[servers] = times
