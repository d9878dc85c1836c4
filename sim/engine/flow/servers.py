"""Servers as fluid queues: their parameters and state as vectors over the cluster's servers.

A server's backlog (worker-seconds waiting) grows by the work admitted in a step and shrinks by its
capacity (``workers`` seconds per second while up); a new try waits ``backlog / workers``, and on top of
that a stationary wait whose law (M/M/c with Allen–Cunneen's correction, the balancers' fluid views,
M/M/c+D under ``max_queue_wait``, M/M/c/K in a queue limit's room, full or filling) lives in
:mod:`sim.engine.flow.waits`. This module holds what it is applied to: the parameters, the state a step and
the listeners change, the waits a try sees (:meth:`Servers.queue_state`) and the queue update of a step
(:meth:`Servers.advance`): what a full room refuses, with its carry from step to step, and the stationary
refusals of a short queue.

A client retry of a try that a server refused because it was full comes back a backoff later, when the
server is likely still full: it is refused with the chance ``again``, not ``shed``
(:func:`sim.queueing.retrial_blocking`, which also gives ``shed`` under such retries).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.cluster import Cluster
from sim.engine.flow.arrays import TINY, some
from sim.engine.flow.waits import QueueLaw, QueueParams, room_load
from sim.policies import BALANCERS, backoff_span
from sim.queueing import (
    WINDOW,
    blocking,
    erlang,
    response_tail,
    retrial_blocking,
    spread_tail,
)
from sim.scenario import Scenario
from sim.software import Version

__all__ = ["Servers"]


class _PerServer:
    """A quantity of :class:`Servers` per server that a step computes per class (``backlog``, ``shed``, the
    waits...): read whole, it is handed to every server then (:meth:`Servers.whole`); :meth:`Servers.at`
    reads a few servers' without that.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, servers: Any, owner: Any = None) -> np.ndarray:
        return servers.whole(self.name)

    def __set__(self, servers: Any, values: np.ndarray) -> None:
        servers.kept.pop(self.name, None)
        servers.full[self.name] = values


class Servers:
    """Every server of the cluster as a fluid queue: parameters, state and waits, one entry per server.

    The state changes in two ways: a step's queue update (:meth:`advance`, for whole classes of servers
    in the same state at once) and the cluster's listener calls (:meth:`stop`, :meth:`start`,
    :meth:`set_version`, :meth:`set_pool`), which count in ``revision`` so that the classes are taken again.
    A step leaves its state per class (``kept``: the classes' values and each server's class): a quantity is
    handed to every server only when something reads it whole (``full``), which most steps never do.
    """

    backlog = _PerServer()  # worker-seconds waiting
    load = _PerServer()  # worker-seconds per second offered in the last step (utilisation x workers)
    rate = _PerServer()  # tries per second admitted in the last step
    shed = _PerServer()  # share refused in the last step
    again = _PerServer()  # the same for client retries of tries it refused because it was full
    demand = _PerServer()  # worker-seconds per second offered in the last step (before refusals)
    fluid_wait = _PerServer()  # the waits (queue_state)
    wait_p = _PerServer()
    theta = _PerServer()
    per_try = _PerServer()
    wait_rate = _PerServer()
    refused = _PerServer()  # (these three only where max_queue_wait binds)
    wait_bound = _PerServer()
    drain = _PerServer()
    drained = _PerServer()  # requests served from the backlog since the server last admitted a try
    carry = _PerServer()  # a full room's work admitted beyond it (or short of it) in the last step
    work_cs2 = _PerServer()  # the variability (squared coefficient of variation) of its tries' work, last admitted

    def __init__(self, scenario: Scenario, cluster: Cluster):
        servers = cluster.servers
        n = self.n = len(servers)
        policies = scenario.policies
        self.cancel = policies.server.cancellation  # deadline propagation: the backlog holds no more than callers wait
        self.timeout = policies.client.timeout
        # The delays of the client's retries after a refusal (errors are retried at once, after the backoff).
        self.spans = np.array([backoff_span(policies.client.backoff, k) for k in range(1, policies.client.retries + 1)]
                              or [(0.0, 0.0)])
        self.workers = np.array([s.workers for s in servers], dtype=float)
        self.iworkers = np.array([s.workers for s in servers], dtype=np.int64)
        self.service = np.array([s.service.mean for s in servers])
        self.det = np.array([s.service.distribution == "deterministic" for s in servers])
        self.cs2 = np.array([0.0 if s.service.distribution == "deterministic"
                             else s.service.cv ** 2 if s.service.distribution == "lognormal" else 1.0
                             for s in servers])
        # The balancer decides where the work goes when no region has mailbox databases (otherwise a
        # database's server is given and arrivals are Poisson): then its fluid view gives the waits, from
        # each server's pool (set_pool). ``ca2``, 1/k in a pool of k unless the balancer picks at
        # random, is part of the classes' key.
        self.balancer = BALANCERS[policies.load_balancer.algorithm]
        self.balanced = not any(cluster.region_databases)
        self.in_pool = np.zeros(n, dtype=bool)
        self.pool_size = np.ones(n)
        self.ca2 = np.ones(n)
        self.smooth = self.balanced and policies.load_balancer.algorithm != "random"
        self.frontend = np.array([s.frontend_time for s in servers])
        limit = [s.queue_limit for s in servers]
        self.queue_limit = np.array([np.inf if q is None else q for q in limit], dtype=float)
        # Whether any server's queue is small enough for retries to bunch at it (:meth:`bunched`): if none
        # is, the tries stage keeps no account of the retries of full-server refusals (same answers, less work).
        self.can_bunch = bool((self.iworkers + self.queue_limit < WINDOW).any())
        max_wait = policies.server.max_queue_wait
        self.law = QueueLaw(np.inf if max_wait is None else max_wait, scenario.flow.step, self.balancer, self.balanced)
        self.dc_of = np.array([s.datacenter for s in servers], dtype=np.int64)
        self.n_dcs = len(cluster.datacenter_ids)
        # State, per server.
        self.up = np.ones(n, dtype=bool)
        self.speed = np.ones(n)
        self.warm_until = np.zeros(n)
        self.warm_speed = np.ones(n)
        self.err = np.zeros(n)
        self.leak = np.zeros(n)
        self.up_since = np.zeros(n)
        self.full: dict[str, np.ndarray] = {}  # per-server quantities as every server's values
        self.kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # or as (per class, each server's class)
        self.backlog, self.load, self.rate, self.shed, self.again, self.demand = (np.zeros(n) for _ in range(6))
        self.epoch = np.zeros(n, dtype=np.int64)
        self.mail_work = np.zeros(n)  # worker-seconds of mail delivered since the last step
        self.mail_tries = np.zeros(n)
        self.pool_weight = np.zeros(n)  # a server's share of its datacenter's tries (0: not in the pool)
        self.revision = 0  # counts changes to servers made outside the steps (listener calls, warm-ups ending)
        self.advances = 0  # counts the steps' updates (:meth:`advance`): with ``revision``, the state's version
        self._kept_params: tuple[Any, int, QueueParams] | None = None  # (servers, revision, their parameters)
        self.next_warm = math.inf  # the earliest end of a warm-up under way
        # Waits, per server (queue_state); the last three only where max_queue_wait binds.
        self.fluid_wait, self.wait_p, self.theta, self.per_try, self.wait_rate = (np.zeros(n) for _ in range(5))
        self.drained, self.carry = np.zeros(n), np.zeros(n)
        self.work_cs2 = self.cs2.copy()  # (its service's until tries come: front ends' and mailboxes' of every type)
        self.refused, self.wait_bound, self.drain = (np.zeros(n) for _ in range(3))
        self.queue_state()

    # ------------------------------------------------------------------------------ state per class or per server

    def whole(self, name: str) -> np.ndarray:
        """Every server's ``name`` (handed from its class's if the last step left it per class)."""
        values = self.full.get(name)
        if values is None:
            per_class, of = self.kept[name]
            values = self.full[name] = per_class.take(of)
        return values

    def at(self, name: str, ix: Any) -> np.ndarray:
        """The servers ``ix``'s ``name``: the same as ``whole(name)[ix]``, without handing it to every server."""
        values = self.full.get(name)
        if values is not None:
            return values[ix]
        per_class, of = self.kept[name]
        return per_class[of[ix]]

    def at_each(self, names: tuple[str, ...], ix: Any) -> list[np.ndarray]:
        """``at(name, ix)`` for each of ``names`` (the servers' classes looked up once for those kept per class)."""
        out = []
        held, of_ix = None, None
        for name in names:
            values = self.full.get(name)
            if values is not None:
                out.append(values[ix])
                continue
            per_class, of = self.kept[name]
            if of is not held:
                held, of_ix = of, of[ix]
            out.append(per_class[of_ix])
        return out

    def _params(self, ix: Any) -> QueueParams:
        """The parameters of the servers ``ix`` (kept while they are the same servers and no listener changed
        any: ``revision``).
        """
        kept = self._kept_params
        if kept is not None and kept[0] is ix and kept[1] == self.revision:
            return kept[2]
        limit, up = self.queue_limit[ix], self.up[ix]
        finite, room = np.isfinite(limit), limit > 0
        workers, ca2, cs2 = self.workers[ix], self.ca2[ix], self.cs2[ix]
        params = QueueParams(up, workers, self.iworkers[ix], self.service[ix], limit, np.floor(limit), finite,
                         room, ca2, cs2, bool(up.all()), bool(finite.all()), bool(room.all()),
                         room_load(workers, ca2, cs2, limit, finite & room))
        self._kept_params = (ix, self.revision, params)
        return params

    @staticmethod
    def _mixed(p: QueueParams, cs2: np.ndarray) -> QueueParams:
        """``p`` with ``cs2``, the variability of the work the servers' tries bring (a front end's short
        proxy work among the mailbox work, request types of different work), for their service's.
        """
        if cs2 is p.cs2 or np.array_equal(cs2, p.cs2):
            return p
        return p._replace(cs2=cs2, room_load=room_load(p.workers, p.ca2, cs2, p.limit, p.finite & p.room))

    # ------------------------------------------------------------------------------ waits

    @property
    def binds(self) -> bool:
        """Whether the waits last taken (:meth:`queue_state`, :meth:`advance`) are cut short anywhere
        (``max_queue_wait``, a queue limit's room): then ``refused``, ``wait_bound`` and ``drain`` hold
        (:attr:`QueueLaw.binds <sim.engine.flow.waits.QueueLaw.binds>`).
        """
        return self.law.binds

    def queue_state(self, ix: Any = slice(None), inv: Any = slice(None), erlang_b: np.ndarray | None = None) -> None:
        """Waits and stationary queue parameters of every server, from its backlog and last load; computed
        for the servers ``ix`` (one per class of servers in the same state) and handed to all by ``inv``
        (``erlang_b``: Erlang B of their workers at their last demand, if the caller has it).

        A try waits the fluid wait plus, with probability ``wait_p``, a stationary wait of mean
        ``1 / theta``: exponential at rate ``wait_rate`` (= ``theta``), or, where ``max_queue_wait`` cuts
        waits short (``binds``), at rate ``wait_rate`` cut at ``wait_bound`` (what is left of the bound
        above the fluid wait). Then ``refused`` is the M/M/c+D share of the offered tries that would wait
        longer (:func:`sim.queueing.impatient`, at each server's workers with Poisson arrivals, the tries'
        mean work and Allen–Cunneen's variability), whatever the balancer. Where a queue limit's room cuts
        the waits they are M/M/c/K's in the same form (:meth:`QueueLaw._room_waits
        <sim.engine.flow.waits.QueueLaw._room_waits>`), and ``refused`` its share.
        """
        waits = self._waits(ix, erlang_b, self.load[ix], self.rate[ix], self.backlog[ix], self.demand[ix])
        for name, values in waits.items():
            setattr(self, name, values[inv])
        if not self.binds:
            self.wait_rate = self.theta

    def _waits(self, ix: Any, erlang_b: np.ndarray | None, load: np.ndarray, rate: np.ndarray, backlog: np.ndarray,
               demand: np.ndarray, erlang_c: tuple[np.ndarray, np.ndarray] | None = None,
               cs2: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`queue_state` for the servers ``ix`` at their ``load``, ``rate``, ``backlog`` and ``demand``: the
        waits of each (by name; sets ``binds``), by the queue law (:meth:`QueueLaw.waits
        <sim.engine.flow.waits.QueueLaw.waits>`). ``erlang_c``: (offered load, Erlang C of the servers' workers
        at it), if the caller has it. ``cs2``: the variability of their tries' work (None: ``work_cs2``, the last
        step's).
        """
        p = self._mixed(self._params(ix), self.at("work_cs2", ix) if cs2 is None else cs2)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_try = np.where(rate > 0, load / np.maximum(rate, TINY), self._last_try(ix, p))
        out = self.law.waits(p, per_try, load, rate, backlog, demand, erlang_b, erlang_c, lambda: self._pool(ix))
        return out

    def _pool(self, ix: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pools of the servers ``ix`` (:data:`~sim.engine.flow.waits.Pool`)."""
        shared, serving = self.pool_load()
        return shared[ix], serving[ix], self.pool_size[ix]

    def _last_try(self, ix: Any, p: QueueParams) -> np.ndarray:
        """The mean work of a try at the servers ``ix`` when none came in the step: that of the tries last
        admitted, which make up what still waits (a server taken out of rotation while warming up holds
        requests of twice the nominal work, and counts its queue, its room and its memory in them), or
        the nominal service time if it never had one.
        """
        last = self.at("per_try", ix)
        return np.where(last > 0, last, p.service)

    def cut(self, ix: Any) -> np.ndarray | None:
        """Where the stationary waits of the servers ``ix`` are cut (``max_queue_wait``), or None where no
        wait is cut short (:func:`sim.queueing.response_tail` and its kin then take the uncut waits).
        """
        return self.at("wait_bound", ix) if self.binds else None

    def pool_load(self) -> tuple[np.ndarray, np.ndarray]:
        """Per server: the load it would carry at its pool's utilisation (the running members' load over
        their workers; its own load outside a pool) and the running members of its pool (at least 1).
        """
        running = self.in_pool & self.up
        dcs = self.n_dcs
        load = np.bincount(self.dc_of, weights=np.where(running, self.load, 0.0), minlength=dcs)
        workers = np.bincount(self.dc_of, weights=np.where(running, self.workers, 0.0), minlength=dcs)
        serving = np.bincount(self.dc_of, weights=running, minlength=dcs)
        rho = np.where(workers > 0, load / np.maximum(workers, TINY), 0.0)[self.dc_of]
        shared = np.where(self.in_pool & (workers[self.dc_of] > 0), rho * self.workers, self.load)
        return shared, np.where(self.in_pool, np.maximum(serving[self.dc_of], 1.0), 1.0)

    def wait_now(self, ix: Any = slice(None)) -> np.ndarray:
        """Expected wait of a try arriving now at each server ``ix`` (fluid backlog plus stationary wait):
        with ``max_queue_wait`` the wait it would be offered, refused or not (as the request engine's
        ``Station.wait``: beyond the bound by the time until a worker frees, at rate ``drain``).
        """
        at = self.at
        wait = at("fluid_wait", ix) + at("wait_p", ix) / at("theta", ix)
        if not self.binds:
            return wait
        refused = at("refused", ix)
        with np.errstate(invalid="ignore"):  # (inf x 0 where no wait is cut: np.where drops it)
            beyond = refused * (at("wait_bound", ix) + 1.0 / at("drain", ix) - at("wait_p", ix) / at("theta", ix))
        return wait + np.where(refused > 0, beyond, 0.0)

    def served_wait(self, ix: Any = slice(None)) -> np.ndarray:
        """Expected wait of the tries the servers ``ix`` admit now."""
        return self.at("fluid_wait", ix) + self.at("wait_p", ix) / self.at("theta", ix)

    def probe_failure(self, timeout: float, ix: Any = slice(None)) -> np.ndarray:
        """Per server (of ``ix``), the chance that a health check sent now is not answered within
        ``timeout``: down, or its wait (the fluid backlog's, plus the stationary M/M/c wait) is longer.
        With ``max_queue_wait`` that is the wait a check would be offered, as the request engine's check
        reads it (``Station.wait``): a check that would be refused waits longer than the bound.
        """
        at = self.at
        room = timeout - at("fluid_wait", ix)
        if self.binds:  # the wait offered, as the request engine's check reads it: the admitted's (cut at
            # the bound: P(Wq > room) as a response of no work) or beyond the bound, refused
            none, bound, refused = np.zeros(np.shape(room)), at("wait_bound", ix), at("refused", ix)
            tail = response_tail(np.maximum(room, 0.0), none, at("wait_p", ix), at("wait_rate", ix), none == 0.0, bound)
            beyond = refused * np.exp(-at("drain", ix) * np.maximum(room - bound, 0.0))
            late = np.where(room > 0, (1.0 - refused) * tail + beyond, 1.0)
        else:  # the fluid wait give or take the departures' spread (the queue ahead, and those served since
            # the server last admitted a try), then the stationary wait: spread_tail
            per_try, workers = at("per_try", ix), self.workers[ix]
            ahead = at("fluid_wait", ix) + at("drained", ix) * per_try / workers
            variance = at("work_cs2", ix) * per_try / workers * ahead
            late = spread_tail(room, np.sqrt(variance), at("wait_p", ix), at("wait_rate", ix))
        return np.where(self.up[ix], late, 1.0)

    # ------------------------------------------------------------------------------ a step's update

    def end_warmups(self, t: float) -> None:
        """Warm-ups that have ended by ``t`` are forgotten (their servers join the classes of their peers)."""
        if t < self.next_warm - 1e-12:
            return
        ended = (self.warm_until > 0.0) & (self.warm_until <= t + 1e-12)
        self.warm_until[ended] = 0.0
        going = self.warm_until[self.warm_until > 0.0]
        self.next_warm = float(going.min()) if going.size else math.inf
        self.revision += 1

    def add_mail(self, loads: np.ndarray, h: float) -> None:
        """Mail delivered during a step of ``h`` is load too: add it to the step's ``loads`` (in place; [work,
        demand, tries, work2; server], each delivery's work the server's law at its mean).
        """
        if some(self.mail_tries):
            work, demand, tries, work2 = loads
            work += self.mail_work / h
            demand += self.mail_work / h
            tries += self.mail_tries / h
            with np.errstate(invalid="ignore", divide="ignore"):
                work2 += np.where(self.mail_tries > 0, (1.0 + self.cs2) * self.mail_work * self.mail_work
                                  / np.maximum(self.mail_tries, TINY), 0.0) / h
            self.mail_work[:] = 0.0
            self.mail_tries[:] = 0.0

    def advance(self, ix: np.ndarray, inv: np.ndarray, loads: np.ndarray, h: float,
                full: np.ndarray | None = None) -> None:
        """Backlogs grow by the work admitted and shrink by capacity; the share of the demand (the work
        before refusals) they refuse next is what does not fit. Per server, ``loads``: ``work`` and ``demand``
        (worker-seconds per second, after and before refusals), ``tries`` per second and ``work2``, their
        work squared (the variability of the work, which the waits take: ``work_cs2``), and ``full``
        [server, retry number - 1], the part of the demand that client retries of tries it refused because
        it was full bring; computed for one server ``ix`` per class and handed to all by ``inv``.

        Below saturation a queue with a limit refuses a share of its tries at random (M/M/c/K). One that
        fills and drains within the step (``settles``) refuses a larger share ``again`` of the retries of
        those it refused (:meth:`bunched`); a longer queue refuses them as it refuses others (in overload
        its fluid backlog, which persists from step to step, does the refusing).
        """
        self.advances += 1
        p = self._params(ix)
        workers, limit = p.workers, p.limit
        work, demand, tries, work2 = loads[:, ix]
        backlog0 = self.at("backlog", ix)
        cap = p.if_up(workers)
        offered = work * h
        backlog = p.if_up(np.maximum(0.0, backlog0 + offered - cap * h))
        per_try = np.maximum(np.where(tries > 0, work / np.maximum(tries, TINY), self._last_try(ix, p)), TINY)
        room = self.law.room(p, per_try, cap)
        if self.cancel:
            room = np.minimum(room, self.timeout * cap)
        # A full waiting room stays full while more work is offered than the workers do: the queue's own
        # refusals (stationary M/M/c+D, :meth:`QueueLaw._full_waits
        # <sim.engine.flow.waits.QueueLaw._full_waits>`) keep it from growing, and must not empty it.
        kept_full = self.law.full(p, backlog0, self.at("per_try", ix), cap, demand)
        over = backlog > room if kept_full is None else (backlog > room) | kept_full
        fits = np.maximum(room - backlog0, 0.0) + cap * h
        carry = self._carry(ix, over, offered, fits, room)
        with np.errstate(invalid="ignore", divide="ignore"):
            admitted = np.maximum(fits - carry, 0.0)
            wanted = demand * h
            shed = np.where(wanted > admitted, 1.0 - admitted / np.maximum(wanted, TINY), 0.0)
        # Below saturation the fluid refuses nothing; a short queue still overflows now and then.
        erlang_b, erlang_c = erlang(p.iworkers, demand)
        stationary = blocking(p.iworkers, demand, p.places, erlang_b)
        # In overload a long queue absorbs a burst (the fluid backlog says how much); the stationary
        # share holds only below saturation, or when the queue fills and drains within the step.
        settles = limit * per_try <= workers * h
        holds = (demand < workers) | settles
        stationary = np.where(holds, stationary, 0.0)
        again, chain = stationary, np.zeros(stationary.shape, dtype=bool)
        if full is not None and some(full):  # (where the queue settles: a long one's refusals are the fluid's)
            settled = np.where(settles[:, None], full[ix], 0.0)
            stationary, again, chain = self.bunched(ix, demand, per_try, settled, stationary)
        # A queue that settles within the step keeps what it admits within its capacity by itself; the
        # fluid share would count the retries it refuses again as work to fit.
        shed = np.where(chain, 0.0, shed)
        with np.errstate(invalid="ignore", divide="ignore"):
            cs2 = np.where((tries > 0) & (work > 0), np.maximum(tries * work2 / np.maximum(work * work, TINY) - 1.0,
                                                                0.0), self.at("work_cs2", ix))
        state = {"backlog": np.where(over, room, backlog), "carry": carry, "load": p.if_up(work),
                 "rate": p.if_up(tries), "demand": p.if_up(demand), "work_cs2": cs2}
        # Out of rotation a queue drains at its workers' pace, one departure after another: what is left
        # spreads as the count of those served (Poisson's while every worker is busy: variance = mean).
        drained0 = self.at("drained", ix)
        draining = (tries <= 0) & (backlog > 0)
        if some(draining) or some(drained0):
            state["drained"] = np.where(draining, drained0 + (backlog0 - backlog) / per_try, 0.0)
        if self.balanced:  # the balancer's fluid view reads every server's load (pool_load)
            self.load = state["load"].take(inv)
        state.update(self._waits(ix, p.if_up(erlang_b), state["load"], state["rate"], state["backlog"],
                                 state["demand"], (demand, erlang_c), cs2))
        if self.binds:  # M/M/c+D: those who would wait past max_queue_wait, at any load (retries as others);
            # M/M/c/K where a queue limit's room cuts the waits, but where retries of the tries it refused bunch
            # (``chain``), retrial_blocking's shares are that room's, with those retries
            refused = state["refused"]
            if some(chain):
                limited = self.law.limited(p, per_try, cap)
                refused = refused if limited is None else np.where(chain & limited, 0.0, refused)
            stationary = np.maximum(stationary, refused)
            again = np.maximum(again, refused)
        # (shares: np.minimum and np.maximum clip them as np.clip does, at a fraction of its cost)
        state["shed"] = p.if_up(np.minimum(np.maximum(np.maximum(shed, stationary), 0.0), 1.0))
        state["again"] = p.if_up(np.minimum(np.maximum(np.maximum(shed, again), 0.0), 1.0))
        # Kept per class: a server's are its class's (handed to every server only when read whole).
        for name, values in state.items():
            self.full.pop(name, None)
            self.kept[name] = (values, inv)
        if not self.binds:
            self.full.pop("wait_rate", None)
            self.kept["wait_rate"] = self.kept["theta"]

    def _carry(self, ix: np.ndarray, over: np.ndarray, offered: np.ndarray, fits: np.ndarray,
               room: np.ndarray) -> np.ndarray:
        """What the servers ``ix`` whose room is full (``over``) admitted beyond what fitted (``fits``), or short
        of it by at most a ``room`` (while a full room's own stationary refusals decide, it admits less than
        fits step after step, and no later step owes it more than a room), added up over the steps while it
        stays full; the steps after refuse that much more, or less.

        A full room's refusals are the share of a step's demand that did not fit, and the next step's demand
        differs (Poisson noise, retries): taken alone, they let a full server serve more than its workers do
        (by the mean of the ratio of two steps' demands, above 1: 4% at 20 tries a step). The fluid backlog
        stays at the room, and the waits read it.
        """
        return np.where(over, np.maximum(self.at("carry", ix) + offered - fits, -room), 0.0)

    def bunched(self, ix: np.ndarray, demand: np.ndarray, per_try: np.ndarray, full: np.ndarray,
                stationary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stationary refusals of the servers ``ix`` (``demand``, ``per_try`` and ``stationary``, the
        M/M/c/K share, of those, 0 where it does not hold; ``full`` [server, retry number - 1], the demand
        that retries of tries they refused because they were full bring), where such retries come and the
        share is at least 1e-9: (the share of other tries refused, the share of those retries refused) by
        :func:`sim.queueing.retrial_blocking`, which follows the server's queue from full over each
        retry's backoff (``spans``, in the server's mean services), on queues of fewer than
        :data:`~sim.queueing.WINDOW` states (workers and waiting places: the model is checked against the
        request engine there, ``tests/validation/test_flow_retrial.py``). Elsewhere both are
        ``stationary``. The third array tells where they were computed.
        """
        stationary, again = stationary.copy(), stationary.copy()
        limit, up = self.queue_limit[ix], self.up[ix]
        retrying = full.sum(axis=1)
        small = self.iworkers[ix] + np.where(np.isfinite(limit), limit, np.inf) < WINDOW  # followed whole
        chain = (retrying > 0) & small & up & (stationary > 1e-9)
        for i in np.flatnonzero(chain):
            refused, each = retrial_blocking(int(self.iworkers[ix][i]), int(limit[i]), float(demand[i] - retrying[i]),
                                             full[i], self.spans / per_try[i])
            stationary[i], again[i] = refused, float(full[i] @ each) / retrying[i]
        return stationary, again, chain

    # ------------------------------------------------------------------------------ listener calls

    def stop(self, server: int) -> None:
        """The server stopped: what it held is lost."""
        self.revision += 1
        self.up[server] = False
        self.backlog[server] = 0.0
        self.drained[server] = 0.0
        self.carry[server] = 0.0
        self.epoch[server] += 1

    def start(self, server: int, now: float, warm: tuple[float, float] | None) -> None:
        """The server runs again, empty, and warming up (until when, at what share of its speed) if ``warm``."""
        self.revision += 1
        self.up[server] = True
        self.backlog[server] = 0.0
        self.drained[server] = 0.0
        self.up_since[server] = now
        if warm is not None:
            self.warm_until[server], self.warm_speed[server] = warm
            self.next_warm = min(self.next_warm, warm[0])

    def set_version(self, server: int, version: Version, now: float) -> None:
        """Another version runs on the server: its speed, error rate and leak; a fresh process."""
        self.revision += 1
        self.speed[server], self.err[server], self.leak[server] = version.speed, version.error_rate, version.leak_rate
        self.up_since[server] = now

    def set_pool(self, datacenter: int, members: np.ndarray, misweight: tuple[list[int], float] | None) -> None:
        """``members`` are now the pool of ``datacenter``'s load balancers: each member's share of its tries
        (a ``misweight`` (favoured servers, share) sends that share to a few servers, the rest is spread evenly).
        """
        self.revision += 1
        weight = self.pool_weight
        weight[self.dc_of == datacenter] = 0.0
        if members.size:
            share = np.full(members.size, 1.0 / members.size)
            if misweight is not None:
                favoured = np.isin(members, np.array(misweight[0], dtype=np.int64))
                if favoured.any():
                    share = share * (1.0 - misweight[1]) + favoured * (misweight[1] / favoured.sum())
            weight[members] = share
        if self.balanced:
            here = self.dc_of == datacenter
            self.pool_size[here], self.in_pool[here] = 1.0, False
            self.pool_size[members], self.in_pool[members] = members.size, True
        if self.smooth:
            self.ca2[self.dc_of == datacenter] = 1.0
            if members.size:
                self.ca2[members] = 1.0 / members.size
