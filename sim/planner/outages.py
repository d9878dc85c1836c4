"""The outages of a planner's year: when each server and datacenter is down, from the scenario's own faults.

A random fault (``mtbf``/``mttr``) is drawn exactly as the engines draw it (:class:`sim.fault_base.Renewals`):
each target alternates standard exponential up and repair times from its own stream
``fault/<fault id>/<target>``, so a target's k-th failure is the same here, in every engine and in every
layout that has the target (common random numbers). With ``repair: {crews: N}`` a failure that finds every
crew busy waits for one, first failed first served (:class:`sim.fault_base.Crews`). A scheduled fault
starts at ``at`` and lasts ``duration`` (or to the end). Targets are picked as the engines pick them
(:func:`sim.faults.select_targets`).

Only server crashes and datacenter outages are planned; :func:`unplannable` names the faults of other kinds.
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np

from sim.cluster import Cluster
from sim.faults import select_targets
from sim.rng import Streams
from sim.scenario import Scenario

__all__ = ["PLANNED_KINDS", "Outages", "draw_outages", "unplannable"]

PLANNED_KINDS = ("server_crash", "datacenter_outage")
"""The fault kinds the planner models: what takes servers (or a whole datacenter) down for a while."""


class Outages(NamedTuple):
    """Intervals [start, end) of servers and datacenters down, each with the fault it comes from.

    ``server``/``server_start``/``server_end``/``server_fault`` are one row per server outage (not merged:
    faults stack, a server is down while any of its outages lasts); ``dc``… the same per datacenter.
    ``fault_ids`` names the faults, in the order of ``scenario.faults``.
    """

    server: np.ndarray
    server_start: np.ndarray
    server_end: np.ndarray
    server_fault: np.ndarray
    dc: np.ndarray
    dc_start: np.ndarray
    dc_end: np.ndarray
    dc_fault: np.ndarray
    fault_ids: list[str]


def unplannable(scenario: Scenario) -> list[tuple[int, str, str]]:
    """The faults the planner does not model, as (index in ``faults``, fault id, kind)."""
    return [(i, scenario.fault_id(i), f.kind) for i, f in enumerate(scenario.faults) if f.kind not in PLANNED_KINDS]


def draw_outages(scenario: Scenario, cluster: Cluster, seed: int, horizon: float) -> Outages:
    """The outages of the run of ``scenario`` with ``seed`` up to ``horizon`` seconds (what its faults do)."""
    streams = Streams(seed)
    rows: dict[str, list[tuple[int, float, float, int]]] = {"server": [], "datacenter": []}
    for i, fault in enumerate(scenario.faults):
        if fault.kind not in PLANNED_KINDS:
            continue
        fault_id = scenario.fault_id(i)
        targets = select_targets(cluster, fault.targets, fault.target, streams.generator(f"fault/{fault_id}"))
        if fault.at is not None:
            end = horizon if fault.duration is None else fault.at + fault.duration
            if fault.at < horizon:
                rows[fault.targets] += [(index, fault.at, min(end, horizon), i) for index, _ in targets]
            continue
        assert fault.mtbf is not None and fault.mttr is not None
        crews = None if fault.repair is None else fault.repair.crews
        names = [f"fault/{fault_id}/{name}" for _, name in targets]
        draws = [_Draws(rng) for rng in streams.generators(names)]
        for target, start, end in _renewals(draws, fault.mtbf, fault.mttr, crews, horizon):
            rows[fault.targets].append((targets[target][0], start, end, i))
    server = np.array(rows["server"], dtype=float).reshape(-1, 4)
    dc = np.array(rows["datacenter"], dtype=float).reshape(-1, 4)
    return Outages(server[:, 0].astype(np.int64), server[:, 1], server[:, 2], server[:, 3].astype(np.int64),
                   dc[:, 0].astype(np.int64), dc[:, 1], dc[:, 2], dc[:, 3].astype(np.int64),
                   [scenario.fault_id(i) for i in range(len(scenario.faults))])


class _Draws:
    """A target's standard exponential variates, in blocks (the same sequence as one at a time)."""

    __slots__ = ("rng", "block", "used")

    def __init__(self, rng: np.random.Generator):
        self.rng, self.block, self.used = rng, rng.standard_exponential(16), 0

    def next(self) -> float:
        if self.used == len(self.block):
            self.block, self.used = self.rng.standard_exponential(2 * len(self.block)), 0
        self.used += 1
        return float(self.block[self.used - 1])


def _renewals(draws: list[_Draws], mtbf: float, mttr: float, crews: int | None,
              horizon: float) -> list[tuple[int, float, float]]:
    """The failures of an alternating renewal process per target as (target, failed at, repaired at): up
    ``mtbf`` × a draw, repair ``mttr`` × the next draw, in that order; with ``crews`` a repair waits for a
    crew (first failed, first served). A repair past ``horizon`` ends there.
    """
    out: list[tuple[int, float, float]] = []
    if crews is None:  # each target on its own
        for k, d in enumerate(draws):
            t = d.next() * mtbf
            while t < horizon:
                end = t + d.next() * mttr
                out.append((k, t, min(end, horizon)))
                t = end + d.next() * mtbf
        return out
    # With crews: failures and repairs in time order (failures first at a tie, as the engines book the
    # next failure after the repair's end).
    heap: list[tuple[float, int, int, int]] = []  # (time, order, kind: 0 repaired / 1 failed, target)
    seq = 0
    for k, d in enumerate(draws):
        heapq.heappush(heap, (d.next() * mtbf, seq, 1, k))
        seq += 1
    busy, waiting = 0, []  # waiting: (failed at, target), first failed first served
    failed_at: dict[int, float] = {}
    while heap:
        t, _, kind, k = heapq.heappop(heap)
        if t >= horizon:
            break
        if kind == 1:  # a failure: a crew now, or wait
            failed_at[k] = t
            if busy < crews:
                busy += 1
                heapq.heappush(heap, (t + draws[k].next() * mttr, seq, 0, k))
                seq += 1
            else:
                waiting.append(k)
            continue
        out.append((k, failed_at.pop(k), t))  # repaired: its next failure, and the crew moves on
        heapq.heappush(heap, (t + draws[k].next() * mtbf, seq, 1, k))
        seq += 1
        if waiting:
            w = waiting.pop(0)
            heapq.heappush(heap, (t + draws[w].next() * mttr, seq, 0, w))
            seq += 1
        else:
            busy -= 1
    out += [(k, t, horizon) for k, t in failed_at.items()]  # still down at the horizon
    return out
