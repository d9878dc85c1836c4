"""The base of every fault kind: its timing, what it acts through, and how it is started.

:class:`FaultSpec` is the pydantic model every kind subclasses (one module per family: :mod:`sim.faults`
for the shipped ones, :mod:`sim.fault_lb` for load-balancer failures); :class:`FaultContext` is what a
fault acts through during a run. The shared timing: :func:`scheduled`, the process of ``at``/``duration``,
and :class:`Renewals`, the scheduler of ``mtbf``/``mttr`` for all the targets of a random fault, with
:class:`Crews`, the repair crews they may share (``repair: {crews: N}``). It imports no fault kind, so a
kind's own module can subclass :class:`FaultSpec` and :mod:`sim.faults` can list that kind in its registry
without a cycle.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import simpy
from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.events import FAULT_END, FAULT_START
from sim.schedule import later
from sim.spec import Id, Model, Target
from sim.units import Duration, format_duration

if TYPE_CHECKING:
    import numpy as np

    from sim.cluster import Cluster
    from sim.faults import Detection
    from sim.rng import Streams

__all__ = ["Watcher", "FaultContext", "Repair", "FaultSpec", "Crews", "Renewals", "scheduled"]


class Watcher(Protocol):
    """The detection service a watched fault reports to (the control plane's :class:`~sim.control.Monitor`)."""

    def watch(self, detection: Detection, start: float, on_alert: Callable[[int, str], None]) -> None:
        """Evaluate ``detection`` from now on, the values up to ``start`` being the baseline; call
        ``on_alert(region, detail)`` once, when its detector fires.
        """
        ...


@dataclass(frozen=True)
class FaultContext:
    """What a fault acts through during a run; :func:`sim.run.run` builds one.

    ``env``: the clock; ``cluster``: the state it changes (and the trace its events go to); ``streams``:
    the random streams it draws from; ``monitor``: the detection service that watches a rollout (``None``
    in a run without one: a fault that needs it says so).
    """

    env: simpy.Environment
    cluster: Cluster
    streams: Streams
    monitor: Watcher | None = None


def _seconds(value: float | None) -> str:
    return "missing" if value is None else f"{value:g}s"


class Repair(Model):
    """Who repairs a random fault's failures: ``crews`` crews shared by all its targets.

    A target that fails while every crew is busy waits, in order of failure, for the first crew free; its
    repair time (the ``mttr`` draw) starts when a crew takes it. Without ``repair`` every failure is repaired
    at once (as many crews as targets).
    """

    crews: int = Field(
        ge=1, le=1_000_000_000, description="targets under repair at once, at most; the others wait in order of failure"
    )


class FaultSpec(Model):
    """Base of every fault kind: ``id``, ``target`` and timing.

    Timing is either ``at`` (+ optional ``duration``; none means until the end) or a random
    renewal process per target with ``mtbf``/``mttr`` (exponential up and repair times), repaired by
    ``repair.crews`` crews shared by its targets (none: unlimited).
    Override :meth:`start` and :meth:`end` (or :meth:`inject`); set ``targets`` to what the target
    selects: ``server``, ``datacenter``, ``dependency``, ``region`` or ``link``.
    """

    targets: ClassVar[str] = "server"

    kind: str
    id: Id | None = Field(
        None, description="the fault's name in events and reports (null: <kind>-<position>); give the same "
        "failure the same id in layouts you compare"
    )
    target: Target = Field(
        default_factory=Target, description="what it hits: filters (ids, datacenters, groups, labels), then a mode"
    )
    at: Duration | None = Field(
        None, description="when it starts, from the start of the run (or give mtbf and mttr)", examples=["10m"]
    )
    duration: Duration | None = Field(
        None, description="how long it lasts, with at (null: until the end of the run)", examples=["20m"]
    )
    mtbf: Duration | None = Field(
        None, description="random faults: mean time between failures of each target (exponential)", examples=["2000h"]
    )
    mttr: Duration | None = Field(
        None, description="random faults: mean time to repair each failure (exponential), from when a crew "
        "takes it", examples=["8h"]
    )
    repair: Repair | None = Field(
        None, description="random faults: the repair crews its targets share, e.g. {crews: 2} (null: unlimited, "
        "every failure repaired at once)"
    )

    @field_validator("repair")
    @classmethod
    def _repair_is_random(cls, value: Repair | None, info: ValidationInfo) -> Repair | None:
        if value is not None and info.data.get("at") is not None:
            raise ValueError(
                "repair crews repair random failures: give it with mtbf and mttr, not with at (a scheduled "
                "fault ends after its duration)"
            )
        return value

    @model_validator(mode="after")
    def _timing(self) -> FaultSpec:
        scheduled = self.at is not None
        random = self.mtbf is not None or self.mttr is not None
        given = ", ".join(k for k in ("at", "duration", "mtbf", "mttr") if getattr(self, k) is not None)
        if scheduled and random:
            raise ValueError(
                f"two kinds of timing (got {given}; expected either at (+ duration) or mtbf + mttr)"
            )
        if not scheduled and not random:
            what = f"got only {given}" if given else "got none"
            raise ValueError(f"no start time ({what}; expected at (+ duration) or mtbf + mttr)")
        if random and (self.mtbf is None or self.mttr is None or self.mtbf <= 0 or self.mttr <= 0):
            raise ValueError(
                f"a random fault needs both mtbf and mttr, each more than 0 (got mtbf {_seconds(self.mtbf)}, "
                f"mttr {_seconds(self.mttr)})"
            )
        if random and self.duration is not None:
            raise ValueError(
                "duration goes with at; a random fault's downtimes come from mttr (got duration)"
            )
        return self

    # -- behaviour -------------------------------------------------------------------------------

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        """The fault begins on ``target`` (an index into the cluster's table of ``targets``)."""
        raise NotImplementedError

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        """The fault ends on ``target``."""
        raise NotImplementedError

    def references(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """Return the names this fault uses beyond its ``target``, for the reference checks.

        Each is ``(path in the fault, kind, name)``, kind one of ``datacenter``, ``region`` or
        ``dependency``; :func:`sim.validate.check_references` reports those that do not exist.
        """
        return []

    def inject(self, ctx: FaultContext, fault_id: str, targets: list[tuple[int, str]]) -> None:
        """Start the processes of this fault; the default applies the shared timing to start/end."""
        if self.at is not None:
            ctx.env.process(scheduled(ctx, self, fault_id, targets))
        else:
            Renewals(ctx, self, fault_id, targets)


class Crews:
    """The repair crews of one random fault, shared by its targets: at most ``n`` repairs at once.

    A target that fails calls :meth:`take`; when every crew is busy it gets an event that fires when a crew
    is handed to it — first failed, first served (failures at one instant in the order SimPy runs them,
    which is fixed). A crew that finishes calls :meth:`release`: it goes straight to the longest-waiting
    target, else it is free. The machine-repairman queue of :mod:`sim.reliability`.
    """

    def __init__(self, env: simpy.Environment, n: int):
        self.env, self.n = env, n
        self.busy = 0
        self.waiting: deque[simpy.Event] = deque()

    def take(self) -> simpy.Event | None:
        """Take a free crew (``None``), or join the queue: the event fires when a crew is handed over."""
        if self.busy < self.n:
            self.busy += 1
            return None
        handed = self.env.event()
        self.waiting.append(handed)
        return handed

    def release(self) -> None:
        """A repair is done: hand the crew to the longest-waiting target, or free it."""
        if self.waiting:
            self.waiting.popleft().succeed()
        else:
            self.busy -= 1


def scheduled(
    ctx: FaultContext, fault: Any, fault_id: str, targets: list[tuple[int, str]]
) -> Generator[simpy.Event, None, None]:
    """Start ``fault`` on every target at ``at``; end it ``duration`` later (none: it lasts the run). The
    pools its targets' changes touch are announced once each (:meth:`Cluster.batched_pools`).
    """
    env, cluster = ctx.env, ctx.cluster
    trace = cluster.trace
    assert fault.at is not None
    yield env.timeout(fault.at)
    names = ", ".join(name for _, name in targets) or "no target matched"
    start = trace.record(env.now, FAULT_START, fault_id, None, f"{fault.kind}: {names}", fault=fault_id)
    with cluster.batched_pools():  # a drain of thousands of servers rebuilds each pool once
        for index, _ in targets:
            fault.start(cluster, index, start)
    if fault.duration is None:
        return
    yield env.timeout(fault.duration)
    end = trace.record(env.now, FAULT_END, fault_id, start, f"{fault.kind} ends")
    with cluster.batched_pools():
        for index, _ in targets:
            fault.end(cluster, index, end)


_FIRST_BLOCK_MAX = 128  # draws in a target's first block, at most (they stay in memory for the run)
_BLOCK_MAX = 1024  # draws in any later block, at most: blocks double up to it


class Renewals:
    """The random failures of one fault (``mtbf``/``mttr``): an alternating renewal process per target, all
    driven from here.

    Each target alternates an exponential up time and an exponential repair time, drawn from its own stream
    ``fault/<fault id>/<target>`` in that order (up, repair, up, ...), so its k-th up and repair times
    depend only on the seed, the fault id, the target's name and k: the same in every layout that has the
    target, with or without crews (common random numbers). The draws come in blocks (:class:`_Target`).

    Nothing runs per target but its own events: each failure and each repair's end is a bare callback on
    SimPy's queue (:func:`sim.schedule.later`), booked with the same delay from the same moment as a
    process's timeout would be, so it happens at the same time, in the same (time, priority, insertion)
    order. With ``repair`` crews a failure that finds every crew busy waits in :class:`Crews`' queue
    (first failed, first served) and its repair time starts when a crew is handed to it.
    """

    def __init__(self, ctx: FaultContext, fault: FaultSpec, fault_id: str, targets: list[tuple[int, str]]):
        assert fault.mtbf is not None and fault.mttr is not None
        self.env, self.cluster, self.streams = ctx.env, ctx.cluster, ctx.streams
        self.fault, self.fault_id, self.mtbf, self.mttr = fault, fault_id, fault.mtbf, fault.mttr
        self.crews = None if fault.repair is None else Crews(ctx.env, fault.repair.crews)
        first = _first_block(ctx.cluster.scenario.duration, self.mtbf, self.mttr)
        names = [self.stream_name(name) for _, name in targets]
        for (index, name), rng in zip(targets, ctx.streams.generators(names), strict=True):
            target = _Target(self, index, name, rng.standard_exponential(first))  # rng is let go
            later(self.env, target.draw() * self.mtbf, target.fail)

    def stream_name(self, target: str) -> str:
        """The name of ``target``'s stream."""
        return f"fault/{self.fault_id}/{target}"

    def _fail(self, target: _Target) -> None:
        """``target`` fails: its fault starts, and its repair starts now or when a crew is free."""
        env, crews, kind = self.env, self.crews, self.fault.kind
        handed = None if crews is None else crews.take()
        waits = "" if crews is None or handed is None else f"; waiting for a repair crew (all {crews.n} busy)"
        target.start = self.cluster.trace.record(
            env.now, FAULT_START, target.name, None, f"{kind} (random){waits}", fault=self.fault_id
        )
        self.fault.start(self.cluster, target.index, target.start)
        if handed is None:
            self._repair(target, "")
        else:
            failed = env.now
            handed.callbacks.append(
                lambda _: self._repair(target, f" (waited {format_duration(env.now - failed)} for a crew)")
            )

    def _repair(self, target: _Target, waited: str) -> None:
        """A crew takes ``target``'s failure: its repair time runs from now."""
        target.waited = waited
        later(self.env, target.draw() * self.mttr, target.repaired)

    def _repaired(self, target: _Target) -> None:
        """``target``'s repair is done: its fault ends, its crew moves on, its next up time starts."""
        end = self.cluster.trace.record(
            self.env.now, FAULT_END, target.name, target.start, f"{self.fault.kind} repaired{target.waited}"
        )
        self.fault.end(self.cluster, target.index, end)
        if self.crews is not None:
            self.crews.release()
        later(self.env, target.draw() * self.mtbf, target.fail)


def _first_block(horizon: float, mtbf: float, mttr: float) -> int:
    """Draws in a target's first block: its up/repair pairs in ``horizon`` with room to spare (the mean
    number plus three standard deviations, plus two), so that few targets ever need a second block.
    """
    cycles = horizon / (mtbf + mttr)
    return min(2 * int(cycles + 3 * math.sqrt(cycles) + 2), _FIRST_BLOCK_MAX)


class _Target:
    """One target of a random fault: where it is, the draws of its stream, the record of its failure.

    Its standard exponential variates come from numpy in blocks. The generator that drew the first block is
    let go and the block kept as an array, so a target holds no object the garbage collector tracks beyond
    itself and its next event (a live generator is several, and over a large fleet enough to set off a
    full collection of the run's heap); a target that needs a second block rebuilds its stream and skips
    the first block. Each later block is twice the last, up to ``_BLOCK_MAX``. Consecutive blocks of a
    generator are its one-by-one sequence, and ``standard_exponential() * scale`` is what
    ``exponential(scale)`` computes, so the times are those of drawing one at a time.
    """

    __slots__ = ("owner", "index", "name", "block", "used", "rng", "start", "waited")

    def __init__(self, owner: Renewals, index: int, name: str, first: np.ndarray):
        self.owner, self.index, self.name = owner, index, name
        self.block, self.used = first, 0
        self.rng: np.random.Generator | None = None  # rebuilt when the first block is used up
        self.start = -1  # the fault_start record of the current failure
        self.waited = ""  # how long it waited for a crew, for its fault_end

    def draw(self) -> float:
        """The next standard exponential variate of the target's stream."""
        i = self.used
        if i == len(self.block):
            if self.rng is None:
                self.rng = self.owner.streams.generator(self.owner.stream_name(self.name))
                self.rng.standard_exponential(i)  # the first block, drawn again
            self.block = self.rng.standard_exponential(min(2 * i, _BLOCK_MAX))
            i = 0
        self.used = i + 1
        return float(self.block[i])

    def fail(self, _: Any) -> None:
        """The callback of its failure."""
        self.owner._fail(self)

    def repaired(self, _: Any) -> None:
        """The callback of its repair's end."""
        self.owner._repaired(self)
