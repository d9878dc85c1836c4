"""Offered load over time: a region's peak rate shaped by a daily profile.

A profile is a periodic, piecewise-linear factor over the day, at most 1 at its peak (:mod:`sim.profiles`
holds the built-in shapes: ``flat``, ``diurnal`` with an afternoon peak and a night trough,
``monday_morning`` with everyone signing in between 08:00 and 09:30 local time). ``RegionLoad.start``
says what local time the run starts at.

>>> from sim.scenario import RegionLoad
>>> load = RegionLoad(peak=100.0, profile="monday_morning", start=8.75 * 3600)
>>> rate_function(load)(0.0)
100.0
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np

from sim.profiles import DAY, PROFILES, profile_points
from sim.scenario import RegionLoad, Scenario

__all__ = ["PROFILES", "profile_points", "rate_function", "rates", "peak_rate", "expected_requests"]

def rate_function(load: RegionLoad) -> Callable[[float], float]:
    """Return ``rate(t)`` in requests per second, ``t`` in seconds since the start of the run."""
    points = profile_points(load)
    times = [p[0] for p in points]
    factors = [p[1] for p in points]
    peak, start = load.peak, load.start
    if all(f == factors[0] for f in factors):
        constant = peak * factors[0]
        return lambda t: constant

    def rate(t: float) -> float:
        x = (start + t) % DAY
        i = bisect.bisect_right(times, x) - 1
        i = min(max(i, 0), len(times) - 2)
        t0, t1 = times[i], times[i + 1]
        w = (x - t0) / (t1 - t0) if t1 > t0 else 0.0
        return peak * (factors[i] + w * (factors[i + 1] - factors[i]))

    return rate


def rates(load: RegionLoad, times: np.ndarray) -> np.ndarray:
    """``rate(t)`` at many times at once (the planner's windows): the same interpolation as
    :func:`rate_function`, vectorised.

    >>> from sim.scenario import RegionLoad
    >>> load = RegionLoad(peak=100.0, profile="diurnal", start=3600.0)
    >>> t = np.array([0.0, 5000.0, 86_399.0])
    >>> rates(load, t).tolist() == [rate_function(load)(x) for x in t]
    True
    """
    points = profile_points(load)
    tp = np.array([p[0] for p in points])
    fp = np.array([p[1] for p in points])
    x = (load.start + np.asarray(times, dtype=float)) % DAY
    i = np.clip(np.searchsorted(tp, x, side="right") - 1, 0, len(tp) - 2)
    t0, t1 = tp[i], tp[i + 1]
    w = np.where(t1 > t0, (x - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0)
    return load.peak * (fp[i] + w * (fp[i + 1] - fp[i]))


def peak_rate(load: RegionLoad) -> float:
    """The highest rate the region's profile reaches (the thinning bound for arrivals)."""
    return load.peak * max(f for _, f in profile_points(load))


def expected_requests(scenario: Scenario, step: float = 60.0) -> float:
    """Expected number of user requests in the whole run (midpoint rule over ``step`` seconds)."""
    total = 0.0
    duration = scenario.duration
    for load in scenario.workload.regions.values():
        rate = rate_function(load)
        t = 0.0
        while t < duration:
            dt = min(step, duration - t)
            total += rate(t + dt / 2) * dt
            t += dt
    return total
