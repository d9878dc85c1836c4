"""The waits a try sees at a server: the law of a fluid queue's state, for :mod:`sim.engine.flow.servers`.

A server's backlog (worker-seconds waiting) makes a new try wait ``backlog / workers``. On top of that
fluid wait, the stationary M/M/c wait at the server's utilisation gives the spread of waits below
saturation. Above it, while the backlog grows, the queue runs ahead of its fluid path by what
reflection at an empty queue added: the stationary wait at the demand mirrored about the capacity
(:func:`sim.queueing.mirrored`), continuous at saturation and none from twice the capacity on. With
``policies.server.max_queue_wait`` (tau) the stationary queue is M/M/c+D instead, at
any load: a try that would wait longer than what is left of tau above the fluid wait is refused (but
none while the queue grows, :meth:`QueueLaw._growing`), and the wait of those served is the M/M/c wait cut
at it (:func:`sim.queueing.impatient`). A queue limit's
room that would cut the waits (more than :data:`ROOM_REACH` of them would pass what is left of it) makes the
stationary queue M/M/c/K at the demand offered, below saturation too (:func:`sim.queueing.waiting_room`:
its shares and mean wait, as a wait cut at a bound; :meth:`QueueLaw._room_waits`). A waiting room that
overload keeps full is that stationary queue at the load offered with the whole room (M/M/c/K for a queue
limit's, M/M/c+D with the room's time as the bound for ``max_queue_wait``'s): the fluid backlog stays at
the room and carries none of the wait (:meth:`QueueLaw._full_waits`), so the waits of those admitted lie
below the room's time, most of them near it. So does a queue limit's room that fills and drains within the
base step, from the moment more is offered than the workers do; while a longer room fills (a queue limit's
or tau's), it cuts the spread on top of the fluid backlog but refuses nothing (the fluid does, once it is
full). The formulas live in :mod:`sim.queueing` (Erlang C with Allen–Cunneen's correction, M/M/c+D) and in
the balancers' fluid views (:meth:`sim.policies.Balancer.fluid_wait`); this module applies them to a fluid
queue's state (:class:`QueueLaw`), and :mod:`sim.engine.flow.servers` holds that state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from sim.engine.flow.arrays import TINY, some
from sim.policies import Balancer
from sim.policies.balancers import PoolLoad
from sim.queueing import CAP, allen_cunneen, impatient, mirrored, truncated_mean, waiting_room

__all__ = ["ROOM_REACH", "Pool", "QueueLaw", "QueueParams", "room_load"]

ROOM_REACH = 1e-12
"""A queue limit's room cuts the waits where more than this share of them would pass it (M/M/c/K from there,
:meth:`QueueLaw._room_waits`; below, the waits of an unlimited queue are the same to that precision)."""

Pool = Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""The pools of some servers, asked for where the balancer's fluid view gives their waits: per server, the
load it would carry at its pool's utilisation, the running members of its pool and the pool's size
(:class:`~sim.policies.balancers.PoolLoad`)."""


class QueueParams(NamedTuple):
    """The parameters of some servers (one per class) that their waits are taken from, as
    :meth:`Servers._params <sim.engine.flow.servers.Servers._params>` keeps them.
    """

    up: np.ndarray
    workers: np.ndarray
    iworkers: np.ndarray
    service: np.ndarray
    limit: np.ndarray  # queue limit (inf: none)
    places: np.ndarray  # its whole waiting places
    finite: np.ndarray  # whether there is a limit
    room: np.ndarray  # whether there is a waiting room
    ca2: np.ndarray
    cs2: np.ndarray
    every_up: bool  # (as a rule)
    every_finite: bool  # every one has a queue limit
    every_room: bool  # every one has a waiting room
    room_load: np.ndarray  # below this load (and with no backlog) a queue limit's room cuts no wait

    def if_up(self, x: np.ndarray, other: float = 0.0) -> np.ndarray:
        """``x`` where the server is up, else ``other``: ``np.where(up, x, other)``, or ``x`` itself when every one
        is up (the same values; read it, never write it).
        """
        return x if self.every_up else np.where(self.up, x, other)



class QueueLaw:
    """The waits of fluid queues from their state, under the scenario's server policies: ``max_queue_wait``
    (``max_wait``, inf: none), the base ``step`` (a room that fills and drains within it is stationary) and the
    load balancer (whose fluid view spreads the waits where it decides where the work goes, ``balanced``).
    :meth:`waits` sets ``binds``: whether a bound cuts any wait short (then the waits are given with
    ``refused``, ``wait_bound``, ``wait_rate`` and ``drain``).
    """

    def __init__(self, max_wait: float, step: float, balancer: type[Balancer], balanced: bool):
        self.max_wait = max_wait
        self.bounded = bool(np.isfinite(max_wait))  # the stationary queue is M/M/c+D where the bound binds
        self.step = step
        self.balancer = balancer
        self.balanced = balanced
        self.binds = False

    def waits(self, p: QueueParams, per_try: np.ndarray, load: np.ndarray, rate: np.ndarray, backlog: np.ndarray,
              demand: np.ndarray, erlang_b: np.ndarray | None = None,
              erlang_c: tuple[np.ndarray, np.ndarray] | None = None, pool: Pool | None = None) -> dict[str, np.ndarray]:
        """The waits of servers of parameters ``p`` whose tries bring ``per_try`` of work each, at their ``load``,
        ``rate``, ``backlog`` and ``demand`` (see :meth:`Servers.queue_state
        <sim.engine.flow.servers.Servers.queue_state>`): by name, and sets ``binds``. ``erlang_b``: Erlang B of
        their workers at their demand, and ``erlang_c``: (offered load, Erlang C of their workers at it), if the
        caller has them (each serves where that is the load the stationary wait is taken at). ``pool``: their
        pools' load, where the balancer's fluid view gives the waits (``balanced``).
        """
        up, workers = p.up, p.workers
        cap = p.if_up(workers)
        with np.errstate(divide="ignore", invalid="ignore"):
            fluid_wait = np.where(cap > 0, backlog / np.maximum(cap, TINY), 0.0)
        full = self.full(p, backlog, per_try, cap, demand)
        if full is not None:
            return self._full_waits(p, full, erlang_b, load, rate, backlog, demand, erlang_c, cap, per_try, pool)
        filling = demand > workers
        limited = self.limited(p, per_try, cap) if some(demand >= p.room_load) or some(backlog) else None
        if limited is not None and some(filling):  # (a queue limit's room that fills and drains within a step is
            # stationary at the demand offered, M/M/c/K below: its refusals keep it from filling further)
            filling &= ~(limited & (p.limit * per_try <= workers * self.step))
        if some(filling):  # a growing queue's lead on its fluid backlog: the stationary wait at the mirrored load
            lead = mirrored(demand, workers)
            ratio = np.where(filling, lead / np.maximum(demand, TINY), 1.0)
            load, rate, demand, erlang_b, erlang_c = load * ratio, rate * ratio, lead, None, None
        else:
            ratio = None
        self.binds = False
        if self.bounded:  # M/M/c+D at the load offered (any load: refusals keep it stable)
            scale = self._scale(p, per_try)
            bound = np.maximum(self.max_wait - fluid_wait, 0.0)
            wait_rate = (workers - demand) / scale
            # Whether the bound cuts any wait short: when none keeps more than e^-40 of its wait beyond it,
            # M/M/c+D is M/M/c to 1e-17, and the waits are those without a bound (below; ``cut``).
            self.binds = some(wait_rate * bound < 40.0)
        out: dict[str, np.ndarray] = {}
        viewed = False
        if self.binds:
            refused, wait_p = impatient(p.iworkers, demand, bound / scale, erlang_b)
            if ratio is not None:
                refused = self._growing(refused, filling)
            wait_p = np.where(up & (demand > 0), wait_p, 0.0)
            with np.errstate(divide="ignore"):
                theta = 1.0 / truncated_mean(wait_rate, bound)  # so that wait_p / theta is the mean wait
            out.update(refused=refused, wait_bound=bound, wait_rate=wait_rate,
                       drain=workers / scale)  # (while every worker is busy, one frees at this rate)
        elif self.balanced:  # the balancer's fluid view: how it spreads the waits
            assert pool is not None
            shared, serving, size = pool()
            shared = shared if ratio is None else shared * ratio
            wait_p, theta = self.balancer.fluid_wait(PoolLoad(load, shared, workers, p.iworkers, per_try, p.cs2, size,
                                                              serving))
            viewed = True
        else:  # the databases decide: Poisson arrivals
            known = None  # (as a rule the step refused nothing, and the load is the demand whose Erlang C is known)
            if erlang_c is not None and np.array_equal(np.minimum(load, workers * CAP), erlang_c[0]):
                known = erlang_c[1]
            wait_p, theta = allen_cunneen(load, workers, p.iworkers, per_try, p.ca2, p.cs2, known)
        if not p.every_room:  # no waiting room: served at once or refused
            wait_p = np.where(p.room, wait_p, 0.0)
        if limited is not None:  # a queue limit's room, where it cuts the waits: M/M/c/K
            left = np.maximum(p.limit * per_try / np.maximum(cap, TINY) - fluid_wait, 0.0)  # what is left of it
            with np.errstate(invalid="ignore", over="ignore"):  # P(Wq > left) as the waits have it (e^-inf x 0: none)
                reach = wait_p * np.exp(-(out["wait_rate"] if self.binds else theta) * left)
            cuts = limited & (demand > 0) & ((reach >= ROOM_REACH) | (demand >= workers))
            if some(cuts):
                wait_p, theta = self._room_waits(p, cuts, left, demand, per_try, erlang_b, out, wait_p, theta,
                                                 load if viewed else None, None if ratio is None else filling)
        out.update(fluid_wait=fluid_wait, wait_p=wait_p, theta=theta, per_try=per_try)
        return out

    @staticmethod
    def _growing(refused: np.ndarray, filling: np.ndarray) -> np.ndarray:
        """``max_queue_wait``'s refusals of a queue that is still growing (``filling``): none. Its fluid backlog
        fills the room first, as a queue limit's does (:meth:`_room_waits`), and the full room is then M/M/c+D
        with the whole bound (:meth:`_full_waits`), which idles now and then and so refuses more than the excess
        over the workers. Refusing by what is left of the bound above the fluid backlog while it grows would
        stall it below the room, where those refusals match the excess, and a bound a few services long would
        serve the workers' whole capacity (one worker of 240 ms offered 120% with a 1-s bound: 83.4% served,
        against M/M/1+D's 76.1%; ``tests/validation/test_flow_idle_spells.py``).
        """
        return np.where(filling, 0.0, refused)

    def limited(self, p: QueueParams, per_try: np.ndarray, cap: np.ndarray) -> np.ndarray | None:
        """Per server, whether its waiting room (:meth:`room`) is a queue limit's: waiting places, up, and
        fewer than ``max_queue_wait`` lets wait; None where none is (as a rule: known from the parameters).
        """
        limited = p.finite & p.room & p.up
        if self.bounded:
            limited &= p.limit * per_try < self.max_wait * cap
        return limited if some(limited) else None

    def _room_waits(self, p: QueueParams, cuts: np.ndarray, left: np.ndarray, demand: np.ndarray, per_try: np.ndarray,
                    erlang_b: np.ndarray | None, out: dict[str, np.ndarray], wait_p: np.ndarray,
                    theta: np.ndarray, view: np.ndarray | None = None,
                    filling: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The waits of the servers where a queue limit's room (``left`` seconds of it above the fluid
        backlog) cuts them (``cuts``): stationary M/M/c/K at the ``demand`` offered
        (:func:`sim.queueing.waiting_room`), in the time of Allen–Cunneen's scale (:meth:`_scale`; so the room's
        time is ``left / scale`` mean services, ``workers x`` that many places), as a wait of rate ``wait_rate``
        cut at ``wait_bound`` with ``refused`` the share it turns away; ``out`` takes them (and ``binds`` is
        set), the others' stay. Returns (``wait_p``, ``theta``) with those servers' in place.

        ``view``: the load at which ``wait_p`` and ``theta`` are the balancer's fluid view of an unlimited
        queue, not Poisson arrivals': the room then scales that view, the share that waits by M/M/c/K's
        over Allen–Cunneen's at that load and the wait's time by the view's mean over Allen–Cunneen's (so a
        room that barely cuts leaves the view as it was). ``filling``: where the queue
        is growing (its stationary law taken at the mirrored load, :func:`sim.queueing.mirrored`): the room
        cuts the spread there but refuses nothing; the fluid backlog fills it, and its refusals are the full
        room's.
        """
        scale = self._scale(p, per_try)
        places = np.where(cuts, p.workers * left / scale, 0.0)
        refused, room_p, mean, bound = waiting_room(p.iworkers, np.where(cuts, demand, p.workers), places,
                                                    None if erlang_b is None else np.where(cuts, erlang_b, 0.0))
        if view is not None:
            poisson_p, poisson_theta = allen_cunneen(view, p.workers, p.iworkers, per_try, p.ca2, p.cs2)
            viewed = cuts & (poisson_p > 0) & (theta > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                room_p = np.where(viewed, np.minimum(room_p * wait_p / poisson_p, 1.0), room_p)
                scale = scale * np.where(viewed, poisson_theta / theta, 1.0)  # the view's mean wait over Poisson's
        if filling is not None:
            refused = np.where(filling, 0.0, refused)
        if not self.binds:  # (no other wait is cut: theirs are uncut, an infinite bound)
            out.update(refused=np.zeros(np.shape(cuts)), wait_bound=np.full(np.shape(cuts), np.inf),
                       wait_rate=theta, drain=p.workers / scale)
            self.binds = True
        with np.errstate(divide="ignore"):
            for name, values in (("refused", refused), ("wait_bound", bound * scale),
                                 ("wait_rate", (p.workers - demand) / scale), ("drain", p.workers / scale)):
                out[name] = np.where(cuts, values, out[name])
            return np.where(cuts, room_p, wait_p), np.where(cuts, 1.0 / (mean * scale), theta)

    def room(self, p: QueueParams, per_try: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """The waiting room of each server (worker-seconds): its queue limit's tries, or what
        ``max_queue_wait`` lets wait, whichever is less (inf: none).
        """
        if p.every_finite:
            room = p.limit * per_try
        else:
            room = np.where(p.finite, np.where(p.finite, p.limit, 0.0) * per_try, np.inf)
        return np.minimum(room, self.max_wait * cap) if self.bounded else room

    def full(self, p: QueueParams, backlog: np.ndarray, per_try: np.ndarray, cap: np.ndarray,
              demand: np.ndarray) -> np.ndarray | None:
        """Per server, whether its fluid backlog fills its waiting room (:meth:`room`) while more work is
        offered than its workers do; None where none does (as a rule: checked first, at the cost of one
        comparison).
        """
        overloaded = demand >= p.workers
        if not some(overloaded):
            return None
        room = self.room(p, per_try, cap)
        full = overloaded & np.isfinite(room) & (backlog > 0) & (backlog >= room * (1.0 - 1e-9))
        return full if some(full) else None

    @staticmethod
    def _scale(p: QueueParams, per_try: np.ndarray) -> np.ndarray:
        """The unit of an M/M/c wait (seconds): the mean work of a try, times Allen–Cunneen's variability."""
        return np.maximum(per_try, TINY) * np.maximum((p.ca2 + p.cs2) / 2.0, 0.05)

    def _full_waits(self, p: QueueParams, full: np.ndarray, erlang_b: np.ndarray | None, load: np.ndarray,
                    rate: np.ndarray, backlog: np.ndarray, demand: np.ndarray,
                    erlang_c: tuple[np.ndarray, np.ndarray] | None, cap: np.ndarray, per_try: np.ndarray,
                    pool: Pool | None) -> dict[str, np.ndarray]:
        """:meth:`waits` where some servers' waiting rooms are full (``full``) while more work is offered
        than their workers do. Such a queue is stationary at the load offered with the whole room: M/M/c/K
        where the room is a queue limit's (:meth:`_room_waits`), M/M/c+D with the room's time as the bound
        on the wait where it is ``max_queue_wait``'s (:func:`sim.queueing.impatient`): it refuses what does
        not fit, and the waits of those it admits lie below the room's time, most of them near it. The
        fluid backlog stays at the room (:meth:`Servers.advance
        <sim.engine.flow.servers.Servers.advance>`) and carries none of the wait. The others' waits
        are :meth:`waits`'s, uncut where they were.
        """
        # (a full room's backlog taken as none: its fluid wait is 0, and no server is found full again)
        out = self.waits(p, per_try, load, rate, np.where(full, 0.0, backlog), demand, erlang_b, erlang_c, pool)
        scale = self._scale(p, per_try)
        if not self.binds:  # (no bound cut any other wait: theirs are uncut, an infinite bound)
            out.update(refused=np.zeros(np.shape(full)), wait_bound=np.full(np.shape(full), np.inf),
                       wait_rate=out["theta"], drain=p.workers / scale)
            self.binds = True
        bound = self.room(p, per_try, cap) / np.maximum(cap, TINY)
        limited = self.limited(p, per_try, cap)
        deadline = full if limited is None else full & ~limited  # (max_queue_wait's rooms; queue limits': M/M/c/K)
        if some(deadline):
            wait_rate = (p.workers - demand) / scale
            refused, wait_p = impatient(p.iworkers, demand, np.where(deadline, bound, 0.0) / scale, erlang_b)
            with np.errstate(divide="ignore"):
                theta = 1.0 / truncated_mean(wait_rate, np.where(deadline, bound, 1.0))
            for name, values in (("refused", refused), ("wait_bound", bound), ("wait_rate", wait_rate),
                                 ("drain", p.workers / scale), ("wait_p", wait_p), ("theta", theta)):
                out[name] = np.where(deadline, values, out[name])
        if limited is not None and some(full & limited):
            out["wait_p"], out["theta"] = self._room_waits(p, full & limited, bound, demand, per_try, erlang_b, out,
                                                           out["wait_p"], out["theta"])
        return out


def room_load(workers: np.ndarray, ca2: np.ndarray, cs2: np.ndarray, limit: np.ndarray,
               limited: np.ndarray) -> np.ndarray:
    """Below this load (and with no backlog) a queue limit's room (where ``limited``) cuts no wait: it cuts more
    than e^-40 of the waits only if (1 - rho) x limit / variability < 40 (a wait of rate at least (c - a) /
    scale, Allen–Cunneen's or a balancer's shorter one, past limit x per_try / c).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(limited, workers * (1.0 - 40.0 * np.maximum((ca2 + cs2) / 2.0, 0.05) / limit), np.inf)
