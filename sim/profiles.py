"""Daily load profiles: what ``profile:`` of a region's load means, as (time of day, factor) points.

A profile is a periodic, piecewise-linear factor over the day, at most 1 at its peak: one of the
built-in shapes (``flat``, ``diurnal``, ``monday_morning``) or the points a scenario lists.
:mod:`sim.workload` turns it into ``rate(t)``; :mod:`sim.sizing` integrates it to size a run before
anything is built. Nothing here imports the scenario models: both sides read the same points.

>>> profile_points(type("Load", (), {"profile": [(6 * H, 0.5), (18 * H, 1.0)]})())
[(0.0, 0.75), (21600.0, 0.5), (64800.0, 1.0), (86400.0, 0.75)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario import RegionLoad

__all__ = ["DAY", "PROFILES", "profile_points"]

DAY = 86400.0
H = 3600.0

PROFILES: dict[str, list[tuple[float, float]]] = {
    "flat": [(0.0, 1.0), (DAY, 1.0)],
    "diurnal": [
        (0 * H, 0.20), (4 * H, 0.10), (8 * H, 0.50), (12 * H, 0.90),
        (15 * H, 1.00), (19 * H, 0.70), (22 * H, 0.40), (24 * H, 0.20),
    ],
    "monday_morning": [
        (0 * H, 0.15), (5 * H, 0.12), (7 * H, 0.45), (8 * H, 0.90), (8.75 * H, 1.00),
        (9.5 * H, 0.90), (10.5 * H, 0.78), (13 * H, 0.72), (17 * H, 0.60), (20 * H, 0.35), (24 * H, 0.15),
    ],
}


def profile_points(load: RegionLoad) -> list[tuple[float, float]]:
    """The profile's (time of day, factor) points, sorted, closed over one day."""
    if isinstance(load.profile, str):
        return PROFILES[load.profile]
    points = sorted((t % DAY, f) for t, f in load.profile)
    first_t, first_f = points[0]
    last_t, last_f = points[-1]
    # Close the curve periodically so that the day wraps smoothly.
    span = first_t + DAY - last_t
    wrap = last_f + (first_f - last_f) * (DAY - last_t) / span if span > 0 else first_f
    return [(0.0, wrap), *points, (DAY, wrap)] if points[0][0] > 0 else [*points, (DAY, first_f)]
