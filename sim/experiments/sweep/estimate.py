"""How long a sweep's runs should take together, scaled from timed pilot runs of its smallest and largest
points (``cascadesim sweep --dry-run``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.experiments.plan import Point
from sim.experiments.sweep.design import Sweep
from sim.scenario import Scenario
from sim.sizing import expected_load

__all__ = ["estimate_sweep", "SweepEstimate", "Pilot"]


@dataclass(frozen=True)
class Pilot:
    """A timed run of one point: ``seconds`` for the whole run, of which ``share`` was actually run."""

    point: int
    engine: str
    seconds: float
    share: float


@dataclass(frozen=True)
class SweepEstimate:
    """How long a sweep's runs should take together (``seconds`` of run time, before any parallelism), and
    the pilot runs it was scaled from.
    """

    seconds: float
    pilots: tuple[Pilot, ...]


def _size(scenario: Scenario) -> float:
    """What a run's time grows with: on the request engine the tries its requests may make (expected user
    requests times the retry layers' amplification), on the flow engine simulated time (its cost does not
    depend on the request rate).
    """
    if scenario.engine == "flow":
        return scenario.duration
    return max(expected_load(scenario).tries, 1.0)


def estimate_sweep(sweep: Sweep, pilot: Callable[[Scenario], tuple[float, float]]) -> SweepEstimate:
    """Estimate the run time of ``sweep`` from pilot runs of its smallest and largest points per engine.

    ``pilot(scenario)`` times one run and returns (seconds for the whole run, share actually run); the
    caller holds the clock (nothing here reads it). Every other point's time is interpolated between the
    two pilots by its size (:func:`_size`), or scaled from the one pilot when all points are the same size.
    A rough guide: a retry storm makes a point slower than its size says, a quiet run faster.
    """
    by_engine: dict[str, list[Point]] = {}
    for point in sweep.points:
        by_engine.setdefault(point.scenario.engine, []).append(point)
    total, pilots = 0.0, []
    for engine, points in by_engine.items():
        sizes = {p.index: _size(p.scenario) for p in points}
        small = min(points, key=lambda p: sizes[p.index])
        large = max(points, key=lambda p: sizes[p.index])
        timed = [(p, *pilot(p.scenario)) for p in ([large] if sizes[small.index] == sizes[large.index] else
                                                   [small, large])]
        pilots += [Pilot(p.index, engine, seconds, share) for p, seconds, share in timed]
        (p0, t0, _), (p1, t1, _) = timed[0], timed[-1]
        s0, s1 = sizes[p0.index], sizes[p1.index]
        for p in points:
            s = sizes[p.index]
            each = t1 * s / s1 if s1 == s0 else t0 + (t1 - t0) * (s - s0) / (s1 - s0)
            total += max(each, 0.0) * sweep.replications
    return SweepEstimate(total, tuple(pilots))
