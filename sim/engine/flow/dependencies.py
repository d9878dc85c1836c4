"""Dependencies and links: what a try meets between the front end and the mailbox server.

A dependency (a shared service the servers call, ``topology.dependencies``) is a fluid queue like a
server: a backlog that grows by the calls' work and shrinks by its workers, a stationary M/M/c wait on
top (:func:`sim.queueing.allen_cunneen`), a queue limit that refuses what does not fit, and whose room,
where it would cut the waits, makes the stationary queue M/M/c/K (:func:`sim.queueing.waiting_room`; a room
that overload keeps full, or that fills and drains within a step, that law with the whole room). A call is
late when the fluid wait and the stationary law's wait and service pass the dependency timeout. A request type's
calls are resolved per try: the share whose calls all succeed within ``dependency_timeout`` (after the
server's dependency retries, within their budget, each sent only if its backoff ends before the try's
deadline), their time (a success after failed calls carries them and the backoffs between), and the worker
time they hold. When the dependency backoff is not short against the step, a retry call's load comes when
its backoff ends (``DependencyCalls.later``, :mod:`sim.engine.flow.delays`); the server's worker is still
held all along, within the step.

A link (``topology.links``) is read through :class:`sim.network.Network`: the delay and loss a crossing
sees now (``Network.conditions``) and, at the end of a step, the bits per second that crossed it
(``Network.carry``: the same load estimate, saturation and loss as per-request crossings).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sim.cluster import Cluster
from sim.engine.flow.arrays import TINY
from sim.engine.flow.delays import SHORT_BACKOFF, Law, backoff_law
from sim.engine.flow.waits import ROOM_REACH
from sim.policies import BackoffSums, Budget, backoff_span
from sim.queueing import allen_cunneen_one, float_max, float_min, response_tail, waiting_room
from sim.scenario import Scenario

__all__ = ["DependencyCalls", "Dependencies", "LinkState", "Links"]

_INF = math.inf


class DependencyCalls(NamedTuple):
    """A request type's dependency calls, per try reaching them."""

    ok: float  # the share of tries whose calls all succeed
    time: float  # the time of the calls when they succeed
    retries: float  # dependency retries per try
    per_try: np.ndarray  # calls per try, per dependency
    held: float  # the server's worker time held while calling
    # of ``per_try``, the retry calls sent after a backoff that is not short against the step: (the law of
    # their delay after the try reached the dependencies, its longest, calls per try per dependency)
    later: tuple[tuple[Law, float, np.ndarray], ...] = ()


class Dependencies:
    """Every dependency as a fluid queue (vectors over ``topology.dependencies``), and their budgets."""

    def __init__(self, scenario: Scenario):
        deps = scenario.topology.dependencies
        self.sp = scenario.policies.server
        self.n = len(deps)
        self.workers = np.array([d.workers for d in deps], dtype=float)
        self.iworkers = np.array([d.workers for d in deps], dtype=np.int64)
        self.service = np.array([d.service_time.mean for d in deps])
        self.det = np.array([d.service_time.distribution == "deterministic" for d in deps])
        self.limit = np.array([np.inf if d.queue_limit is None else d.queue_limit for d in deps], dtype=float)
        self.backlog = np.zeros(self.n)
        self.load = np.zeros(self.n)
        self.shed = np.zeros(self.n)
        self.down = np.zeros(self.n, dtype=bool)
        self.factor = np.ones(self.n)
        db = self.sp.dependency_budget
        self.budgets = [Budget(db) if db else None for _ in range(self.n)]
        # The time the backoffs before the retries take (None: it retries at once)
        backoff, retries = self.sp.dependency_backoff, self.sp.dependency_retries
        self.sums = BackoffSums(backoff, retries, scenario.policies.client.timeout) \
            if retries and backoff.kind != "none" else None
        # Whether a retry call's load comes when its backoff ends (not short against the step)
        self.later = self.sums is not None and sum(backoff_span(backoff, 1)) / 2 >= SHORT_BACKOFF * scenario.flow.step
        self.step = scenario.flow.step  # a room that fills and drains within it is stationary (_state)
        self._unbounded, self._none = np.full(self.n, np.inf), np.zeros(self.n)  # (no room cuts a wait: read only)
        self._state(np.zeros(self.n))

    def read(self, cluster: Cluster) -> None:
        """Read which dependencies are down and how slow each is (``Cluster.dependency_down``, ``_factor``).
        One back up starts empty (its backlog is kept at none while down) and refuses nothing until its
        next step says otherwise: the share an outage's calls overflowed its room by is not its own.
        """
        down = np.array(cluster.dependency_down, dtype=bool)
        back = self.down & ~down
        if back.any():
            self.shed = np.where(back, 0.0, self.shed)
        self.down = down
        self.factor = np.array(cluster.dependency_factor, dtype=float)

    def calls(self, deps: tuple[int, ...], tt: float, h: float, tries: float) -> DependencyCalls:
        """The dependency calls of a request type calling ``deps``, for ``tries`` tries in a step of ``h``
        that each wait at most ``tt``.

        Per dependency, call ``k`` (0: the first, then the retries) is made after ``k`` failed calls of mean
        time ``t_fail`` and ``k`` backoffs: only if they end before the try's deadline, ``B_k < tt - k
        t_fail`` for the backoffs' sum ``B_k`` (:class:`~sim.policies.BackoffSums`), as the request engine
        sends a retry only if its backoff ends in time. A success at call ``k`` takes ``k t_fail +
        E[B_k | B_k < tt - k t_fail]`` on top of its own call; the server's worker is held all along. Call
        ``k`` goes to the dependency ``k t_fail + B_k`` after the first (``later``, when that is not short).
        """
        per_try = np.zeros(self.n)
        later: list[tuple[Law, float, np.ndarray]] = []
        retries_per_try = 0.0
        if not deps:
            return DependencyCalls(1.0, 0.0, retries_per_try, per_try, 0.0)
        sp = self.sp
        ok_all, time_ok, held = 1.0, 0.0, 0.0
        limit = min(sp.dependency_timeout, tt)
        for d in deps:
            if self.down[d]:
                fail_one, t_one, t_fail = 1.0, 0.0, 0.0
            else:
                svc = self.service[d] * self.factor[d]
                wait = self.fluid[d]  # (the stationary wait is the law's, in the tail)
                late = float(response_tail(np.array([limit - wait]), np.array([svc]), np.array([self.wait_p[d]]),
                                           np.array([self.rate[d]]), np.array([self.det[d]]), self._bound(d))[0])
                shed = self.shed[d]
                fail_one = 1.0 - (1.0 - shed) * (1.0 - late)
                t_one = wait + self._answered(d, svc, limit - wait, late)
                t_fail = (late * (1.0 - shed) * limit) / max(fail_one, TINY)
            budget, sums = self.budgets[d], self.sums
            calls, reach, spent, p_fail_all = 0.0, 1.0, 0.0, 0.0
            in_time, waited = 1.0, 0.0  # P(B_k < tt - k t_fail) and E[B_k | that], for the call k made last
            before = 0.0  # sum over the calls k of P(success at k) x (k t_fail + E[B_k | made])
            for k in range(sp.dependency_retries + 1):
                calls += reach
                spent += reach * fail_one * t_fail
                before += reach * (1.0 - fail_one) * (k * t_fail + waited)
                p_fail = reach * fail_one
                if k == sp.dependency_retries or p_fail <= 1e-12:
                    p_fail_all += p_fail
                    break
                share = budget.allow(p_fail * tries) if budget is not None else 1.0
                retries_per_try += p_fail * share  # (counted when allowed, sent or not, as the request engine)
                sent = 1.0
                if sums is not None:  # sent only if its backoff ends before the try's deadline
                    room = tt - (k + 1) * t_fail
                    below = sums.cdf(k + 1, room)
                    sent = below / in_time if in_time > 0 else 0.0
                    mean = sums.mean_below(k + 1, room)
                    spent += p_fail * share * sent * max(mean - waited, 0.0)  # the worker waits the backoff
                    in_time, waited = below, mean
                p_fail_all += p_fail * (1.0 - share * sent)  # not retried: refused by the budget, or too late
                reach = p_fail * share * sent
                if self.later and sums is not None and reach > 0:  # call k + 1 goes out (k + 1) t_fail + B_k+1 on
                    law, longest = backoff_law(sums, k + 1, (k + 1) * t_fail, tt - (k + 1) * t_fail)
                    one = np.zeros(self.n)
                    one[d] = reach
                    later.append((law, longest, one))
            if budget is not None:
                budget.fill(tries, h)
            per_try[d] += calls
            p_ok = 1.0 - p_fail_all
            ok_all *= p_ok
            extra = before / p_ok if p_ok > TINY else 0.0  # a success's failed calls and backoffs
            time_ok += t_one + extra
            held += p_ok * (t_one + extra) + spent - before
        return DependencyCalls(ok_all, time_ok, retries_per_try, per_try, held, tuple(later))

    _GRID = np.linspace(0.0, 1.0, 65)

    def _answered(self, d: int, svc: float, room: float, late: float) -> float:
        """The mean time of a call to dependency ``d`` (stationary wait and service of mean ``svc``) that is
        answered within ``room``, of which ``late`` are not: ``(int_0^room P(R > x) dx - room late) / (1 -
        late)``, the integral by the trapezoid rule on 64 steps. Without late calls it is the mean.
        """
        mean = self.wait_p[d] / self.theta[d] + svc
        if late <= 1e-9 or room <= 0.0 or late >= 1.0 - 1e-12:
            return mean if late <= 1e-9 else max(room, 0.0)
        x = self._GRID * room
        n = x.size
        bound = self._bound(d)
        tail = response_tail(x, np.full(n, svc), np.full(n, self.wait_p[d]), np.full(n, self.rate[d]),
                             np.full(n, self.det[d]), None if bound is None else np.full(n, bound[0]))
        area = float(((tail[1:] + tail[:-1]) / 2.0).sum()) * (x[1] - x[0])
        return (area - room * late) / (1.0 - late)

    def _bound(self, d: int) -> np.ndarray | None:
        """Where dependency ``d``'s stationary wait is cut (its queue limit's room, :meth:`_state`), as
        :func:`sim.queueing.response_tail` takes it; None where it is not.
        """
        bound = self.bound[d]
        return None if bound == _INF else np.array([bound])

    def advance(self, calls: np.ndarray, work: np.ndarray, h: float) -> None:
        """The queues move on by a step of ``h`` that brought ``calls`` per second and ``work``
        (worker-seconds per second), per dependency.
        """
        shed, backlog = [], []
        # (dependency by dependency in floats: the same answers as the vectors' elements, at a fraction of
        # the cost for a few queues; np.maximum and np.minimum as float_max and float_min)
        for down, workers, back, w, c, service, limit in zip(self.down.tolist(), self.workers.tolist(),
                                                             self.backlog.tolist(), work.tolist(), calls.tolist(),
                                                             self.service.tolist(), self.limit.tolist(), strict=True):
            cap = 0.0 if down else workers
            grown = float_max(0.0, back + w * h - cap * h)
            per = w / float_max(c, TINY) if c > 0 else service
            room = limit * per
            admitted = float_max(room - back, 0.0) + cap * h
            refused = 1.0 - admitted / float_max(w * h, TINY) if w * h > admitted else 0.0
            shed.append(float_min(float_max(refused, 0.0), 1.0))
            backlog.append(0.0 if down else float_min(grown, float_max(room, 0.0)))
        self.shed, self.backlog = np.array(shed, dtype=float), np.array(backlog, dtype=float)
        self.load = work
        self._state(calls)
        if self.refused is not self._none:  # a room's stationary refusals (M/M/c/K), where more than the fluid's
            self.shed = np.maximum(self.shed, self.refused)

    def _state(self, calls: np.ndarray) -> None:
        """The waits a call sees: the fluid backlog's, plus the stationary M/M/c wait at the last load
        (:func:`sim.queueing.allen_cunneen` of Poisson calls and exponential service, dependency by dependency).
        Where a queue limit's room cuts that wait (more than :data:`~sim.engine.flow.waits.ROOM_REACH` of it
        would pass what is left of the room), M/M/c/K at the load offered instead
        (:func:`sim.queueing.waiting_room`, as a server's, :meth:`sim.engine.flow.waits.QueueLaw._room_waits`):
        the wait cut at ``bound``, and ``refused`` the share it turns away (none while the queue grows: the
        fluid backlog fills the room). A room that overload keeps full, or that fills and drains within a
        step, is that law with the whole room and no fluid wait.
        """
        fluid, wait_p, theta, rooms = [], [], [], []
        for d, (down, workers, iworkers, back, load, c, service, factor, limit) in enumerate(zip(
                self.down.tolist(), self.workers.tolist(), self.iworkers.tolist(), self.backlog.tolist(),
                self.load.tolist(), calls.tolist(), self.service.tolist(), self.factor.tolist(), self.limit.tolist(),
                strict=True)):
            cap = 0.0 if down else workers
            per = load / float_max(c, TINY) if c > 0 else service * factor
            room = limit * per / workers if 0 < limit < _INF and not down and load > 0 else _INF  # (seconds)
            full = room < _INF and load >= workers and (room <= self.step or 0 < back >= limit * per * (1.0 - 1e-9))
            filling = load > workers and not full
            if filling:  # a growing queue's lead on its fluid backlog (sim.queueing.mirrored)
                load = float_max(2.0 * workers - load, 0.0)
            p, rate = allen_cunneen_one(load, workers, iworkers, per, 1.0, 1.0)
            wait = back / float_max(cap, TINY) if cap > 0 and not full else 0.0
            if room < _INF:
                left = float_max(room - wait, 0.0)
                if full or load >= workers or p * math.exp(-rate * left) >= ROOM_REACH:
                    refused, p, mean, bound = (float(x[0]) for x in waiting_room(
                        np.array([iworkers]), np.array([load]), np.array([workers * left / per])))
                    rooms.append((d, (workers - load) / per, bound * per, 0.0 if filling else refused))
                    rate = 1.0 / (mean * per) if mean > 0 else _INF  # (theta: the mean wait of those who wait)
            fluid.append(wait)
            wait_p.append(p)
            theta.append(rate)
        self.fluid, self.wait_p, self.theta = (np.array(x, dtype=float) for x in (fluid, wait_p, theta))
        self.rate, self.bound, self.refused = self.theta, self._unbounded, self._none
        if rooms:
            self.rate, self.bound, self.refused = self.theta.copy(), self.bound.copy(), self.refused.copy()
            for d, rate, bound, refused in rooms:
                self.rate[d], self.bound[d], self.refused[d] = rate, bound, refused


class LinkState(NamedTuple):
    """Per link, what a crossing sees now; a last entry (index -1) for "no link" (no delay, no loss)."""

    delay: np.ndarray
    loss: np.ndarray


class Links:
    """The paths between regions and datacenters: round trips, link latencies, the links themselves."""

    def __init__(self, cluster: Cluster, n_regions: int, n_dcs: int):
        self.network = cluster.network
        self.count = len(self.network.links)
        self.rtt = np.array(cluster.rtt, dtype=float).reshape(n_regions, n_dcs)  # region -> datacenter
        self.latency = np.array(cluster.link_latency, dtype=float).reshape(n_dcs, n_dcs)
        self.between = np.array(self.network.between, dtype=np.int64).reshape(n_dcs, n_dcs)  # the link, or -1

    def state(self, bits: float, used: list[int] | None = None) -> LinkState:
        """Per link, the delay and loss a crossing of ``bits`` sees now (only on the links ``used``, if
        given: the others' stay 0).
        """
        links = self.network.links
        delay = np.zeros(len(links) + 1)
        loss = np.zeros(len(links) + 1)
        for i in range(len(links)) if used is None else used:
            delay[i], loss[i] = self.network.conditions(i, bits)
        return LinkState(delay, loss)

    def carry(self, bps: np.ndarray, h: float, bits: float) -> None:
        """The links carry ``bps`` (per link) for ``h`` seconds; ``bits``: a crossing's size."""
        for i, lk in enumerate(self.network.links):
            if bps[i] > 0 or lk.rate > 0:
                self.network.carry(i, float(bps[i]), h, bits)
