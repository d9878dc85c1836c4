"""The load a step's tries send after a backoff: which part of the step's loads it is, and what of it leaves the step.

A load-balancer retry after ``j`` timeouts and ``k`` backoffs goes out ``j tt + B_k`` after its request's
first try (:func:`sim.engine.flow.delays.backoff_law`), a server's dependency retry after its own backoff
(``DependencyCalls.later``, :mod:`sim.engine.flow.dependencies`). The tries stage
(:mod:`sim.engine.flow.tries`) books their load with the step's, as if it all came in the step; here

- :meth:`Deferrals.collect` says which part of the booked loads each such retry is (a :class:`Later`: its
  law and its rates), from the step's tries per request type and row of pairs (:class:`Sent`);
- :meth:`Deferrals.defer` takes out of the step's loads the part sent after the step's end and puts it in
  the delay buffer (:class:`sim.engine.flow.delays.Delays`), per slot it comes due in;
- :meth:`Deferrals.due` hands back, per second, what comes due in a step.

Only the load moves: the retries' outcomes stay with the step that failed (:mod:`sim.engine.flow.tries`).
A load-balancer backoff whose mean is short against the step (:data:`sim.engine.flow.delays.SHORT_BACKOFF`)
sends nothing later (``Deferrals.lb_later`` is False).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from sim.engine.flow.arrays import TINY, some
from sim.engine.flow.delays import ROWS, SHORT_BACKOFF, Delays, Law, backoff_law
from sim.engine.flow.dependencies import Dependencies, DependencyCalls
from sim.policies import BackoffSums, backoff_span
from sim.scenario import LoadBalancerPolicy

__all__ = ["Deferrals", "Due", "Later", "Rates", "Sent", "Sums"]

Sums = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
"""Per row of ``weights`` ([row, entry], or one row), the sums of its entries in ``n`` bins by ``index``:
``sums(index, weights, n)`` (the tries stage's, which adds each bin's terms in a bincount's order)."""


class Later(NamedTuple):
    """The load of tries (or calls) sent some time after the step's first tries: its law and its rates, as
    if it all came in the step: per row of pairs [work, demand, tries], front ends' tries per datacenter,
    calls and work per dependency, bits per second per link.
    """

    law: Law
    reach: float  # the longest delay
    rows: np.ndarray | None  # [3, row of pairs]; None: dependency calls only
    front_dc: np.ndarray | None
    dep_calls: np.ndarray
    dep_work: np.ndarray
    link_bps: np.ndarray | None


class Sent(NamedTuple):
    """The step's tries per [request type, row of pairs] and what they brought, linear in the tries (the
    tries stage's booking), with where they go: what :meth:`Deferrals.collect` takes shares of.
    """

    tries: np.ndarray  # the load balancers' tries
    reaching: np.ndarray  # of them, those reaching a running front end
    to_front: np.ndarray  # those the front ends' servers take
    into_back: np.ndarray  # those reaching the mailbox server (and making its dependency calls)
    booked: tuple[np.ndarray, ...]  # the mailbox servers' loads (work, demand, tries, work squared: ROWS)
    bits: list[float]  # per type: the size of a crossing
    dc: np.ndarray  # per row of pairs: the datacenter of its front ends
    front_pass: np.ndarray  # per row of pairs: the share the front ends let through
    crosses: np.ndarray  # per row of pairs: whether it crosses a link
    crossed: np.ndarray  # per row of pairs that crosses a link: the link


class Rates(NamedTuple):
    """The step's loads per second that a later load takes its part of: the front ends' tries per
    datacenter, the calls and work per dependency, the bits per link.
    """

    front_dc: np.ndarray
    dep_calls: np.ndarray
    dep_work: np.ndarray
    link_bps: np.ndarray


class Due(NamedTuple):
    """What comes due from the delay buffer in a step, per second: per server its loads (:data:`ROWS`), calls
    and work per dependency, bits per link.
    """

    per_server: np.ndarray
    dep_calls: np.ndarray
    dep_work: np.ndarray
    link_bps: np.ndarray


class Deferrals:
    """The load of the retries sent after a backoff, and the delay buffer it waits in (``delays``), for a
    scenario's load balancer (``lb``, its backoffs' sums ``lb_sums``: None when it retries at once) and
    client ``timeout``, over ``servers`` servers, ``dcs`` datacenters, the dependencies ``deps`` and
    ``links`` links, with the base step ``dt``; ``sums`` adds values up by index (:data:`Sums`).
    """

    def __init__(self, dt: float, servers: int, dcs: int, deps: Dependencies, links: int, lb: LoadBalancerPolicy,
                 lb_sums: BackoffSums | None, timeout: float, sums: Sums):
        self.delays = Delays(dt, servers, deps.n, links)
        self.dcs, self.deps, self.links, self.sums = dcs, deps, links, sums
        self.lb_sums, self.timeout = lb_sums, timeout
        self.try_timeout = min(timeout, lb.try_timeout) if lb.try_timeout is not None else timeout
        # Whether the load balancer's retries send their load after their backoff (not short against the step)
        self.lb_later = lb_sums is not None and sum(backoff_span(lb.backoff, 1)) / 2 >= SHORT_BACKOFF * dt

    @property
    def waiting(self) -> bool:
        """Whether any load waits in the delay buffer."""
        return bool(self.delays.slots)

    def collect(self, h: float, sent: Sent, later: dict[tuple[int, int], np.ndarray],
                calls: list[DependencyCalls]) -> list[Later]:
        """The loads of the tries sent after a backoff (``later``: per (j, k), the load balancers' tries [type,
        row] sent after ``j`` timeouts and ``k`` backoffs, ``j tt + B_k`` after their first try) and of the
        dependency retries (``calls[i].later``, the ``i``-th type's) of the other tries, as if they came in
        the step of length ``h``; :meth:`defer` sends them later.
        """
        P, D = sent.dc.size, self.dcs
        T, tt = self.timeout, self.try_timeout
        cost = self.deps.service * self.deps.factor
        n_tries = sent.tries
        carried = np.zeros(len(calls))  # per type: the tries per second reaching dependencies sent later
        out = []
        for (j, k), mass in sorted(later.items()):
            f = np.where(n_tries > 0, mass[:, :P] / np.maximum(n_tries, TINY), 0.0)  # their share of the tries
            rows = np.array([(x * f).sum(axis=0) for x in sent.booked])
            front_dc = (self.sums(sent.dc, sent.to_front * f, D) / h).sum(axis=0)
            dep_calls, dep_work = np.zeros(self.deps.n), np.zeros(self.deps.n)
            for i, c in enumerate(calls):
                if some(c.per_try):
                    called = float((sent.into_back[i] * f[i]).sum())
                    carried[i] += called
                    dep_calls += c.per_try * called
                    dep_work += c.per_try * called * cost
            link_bps = None
            if sent.crossed.size:
                across = (sent.reaching * f * sent.front_pass * sent.crosses)[:, sent.crosses]
                link_bps = self.sums(sent.crossed, across / h * np.array(sent.bits)[:, None], self.links).sum(axis=0)
            assert self.lb_sums is not None
            law, reach = backoff_law(self.lb_sums, k, j * tt, T - j * tt)
            out.append(Later(law, reach, rows, front_dc, dep_calls, dep_work, link_bps))
        for i, c in enumerate(calls):  # the dependency retries of the tries sent now
            if c.later:
                called = float(sent.into_back[i].sum()) - carried[i]
                for law, reach, per_try in c.later:
                    out.append(Later(law, reach, None, None, per_try * called, per_try * called * cost, None))
        return out

    def defer(self, t: float, h: float, later: list[Later], booked: np.ndarray, rates: Rates,
              spread: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[Rates, np.ndarray | None]:
        """Of the loads sent after a backoff (``later``, from :meth:`collect`) by the step from ``t`` of length
        ``h``, keep in the step what comes within it and put the rest in the delay buffer, per slot it comes
        due in. ``booked`` [load (:data:`ROWS`); row of pairs] and ``rates`` are the step's loads with all of
        it; ``spread(ratio, front_dc)`` gives per server [load; server] the share ``ratio``
        (per quantity and row of pairs) of each row's loads and the front ends' tries ``front_dc`` per
        datacenter. Returns the step's ``rates`` without what was put off, and the share of each row's
        ``booked`` put off (None: none).
        """
        delays = self.delays
        gone_rows = np.zeros(booked.shape)
        front_dc, dep_calls, dep_work, link_bps = rates
        waiting = []
        for each in later:
            stay, slots = delays.later(t, h, each.law, each.reach)
            gone = 1.0 - stay
            if gone <= 0.0 or not slots:
                continue
            per_server = np.zeros((ROWS, delays.n))
            if each.rows is not None and each.front_dc is not None:
                ratio = np.where(booked > 0, each.rows / np.maximum(booked, TINY), 0.0)
                per_server = spread(ratio, each.front_dc)
                gone_rows += gone * ratio
                front_dc = np.maximum(front_dc - gone * each.front_dc, 0.0)
            link = np.zeros(self.links)
            if each.link_bps is not None:
                link = each.link_bps
                link_bps = np.maximum(link_bps - gone * link, 0.0)
            dep_calls = np.maximum(dep_calls - gone * each.dep_calls, 0.0)
            dep_work = np.maximum(dep_work - gone * each.dep_work, 0.0)
            waiting.append((slots, delays.pack(per_server, each.dep_calls, each.dep_work, link) * h))
        if waiting:
            delays.put_all(waiting)
        return Rates(front_dc, dep_calls, dep_work, link_bps), gone_rows if some(gone_rows) else None

    def due(self, t: float, h: float) -> Due | None:
        """What comes due from the delay buffer in the step from ``t`` of length ``h``, per second (None:
        nothing).
        """
        due = self.delays.take_due(t, h)
        if due is None:
            return None
        per_server, calls, work, bits = self.delays.unpack(due)
        return Due(per_server / h, calls / h, work / h, bits / h)
