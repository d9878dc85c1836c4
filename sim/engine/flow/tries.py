"""The tries of a step: where a step's attempts go, what they meet, and the loads they bring.

The attempts of each region go to the datacenter it is routed to, where the load balancers spread their
tries over the pool; each try runs the front end, the dependency calls and the mailbox server holding
the active copy, and crosses a link when those two are in different datacenters. A try's time is a
deterministic part (round trip, link latency and congestion delay, front end, dependencies, fluid wait)
plus a stochastic part (stationary wait + service, exponential; deterministic service is kept exact),
so the share of tries past their timeout is ``P(Wq + S > timeout − deterministic part)`` in closed form
(:func:`sim.queueing.response_tail`), and the latency of the successes is the law of the stochastic part
given that it beat the timeout (:mod:`sim.engine.flow.latency`). Load-balancer retries are resolved
here, within the step (where a region has no databases, a retry goes to the servers the balancer has not
tried: :mod:`sim.engine.flow.elsewhere`); when their backoff is not short against the step, their load (and
that of the server's dependency retries) is offered when their backoff ends (:mod:`sim.engine.flow.deferrals`
takes it out of the step's loads and puts it in the delay buffer).

A client retry of a try that its mailbox server refused because it was full is refused again with the
server's ``again`` (:mod:`sim.engine.flow.servers`), not its ``shed``: such retries wait where they failed
(a region's are shared over its rows in proportion to the refusals there), so a row's retries meet the
mix of the two, and its first attempts and retries are told apart in their outcomes.

Pairs whose server is in the same state see the same outcomes: the tries are computed per *row*, one per
group of live pairs (a region and a class of servers, :mod:`sim.engine.flow.classes`), then one
"database unavailable" row per region; loads and failures are handed back to the pairs in proportion to
their attempts at the end. The request types are computed side by side ([type, row] arrays, element by
element as each type alone, sums over the types adding them in the types' order: the answers of one type
after another). What changes only with the classes, the routes or the servers' revision (the front ends'
pools, the rows' paths to their servers) is kept from step to step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sim.engine.base import RequestType
from sim.engine.flow import latency
from sim.engine.flow.arrays import TINY, some, sums
from sim.engine.flow.classes import Classes, ClassView
from sim.engine.flow.databases import BinSums, Pairs
from sim.engine.flow.deferrals import Deferrals, Later, Rates, Sent
from sim.engine.flow.delays import ROWS
from sim.engine.flow.dependencies import Dependencies, DependencyCalls, Links
from sim.engine.flow.elsewhere import retry_spread
from sim.engine.flow.lb_tries import Balanced, Kept, LoadBalancerTries
from sim.engine.flow.records import BINS, Records
from sim.engine.flow.servers import Servers
from sim.policies import BackoffSums, Budget
from sim.queueing import response_tail
from sim.scenario import Scenario

__all__ = ["Loads", "RegionOutcomes", "TryOutcome", "Tries"]


class RegionOutcomes(NamedTuple):
    """Per [region, request type], how many attempts of one kind (first attempts, or retries) succeeded,
    erred, timed out, and of the errors how many a full mailbox server refused.
    """

    ok: np.ndarray
    error: np.ndarray
    timeout: np.ndarray
    full: np.ndarray


class Loads(NamedTuple):
    """What the step's tries brought, per second: per server (work after and before refusals, in
    worker-seconds per second, tries, and the sum of their work squared: the rows of ``per_server``,
    :data:`~sim.engine.flow.delays.ROWS`), per dependency (calls, work) and per link (bits). ``work2`` gives
    the variability of the work a server's tries bring (front ends' and mailboxes', of every request type).
    """

    per_server: np.ndarray  # [work, demand, tries, work2; server]
    work: np.ndarray
    demand: np.ndarray
    tries: np.ndarray
    work2: np.ndarray  # sum over the admitted tries of their work squared (second moment x tries), per second
    dep_calls: np.ndarray
    dep_work: np.ndarray
    link_bps: np.ndarray
    full: np.ndarray | None  # [server, retry number - 1]: the demand of retries of tries it refused because it was full

    @classmethod
    def of(cls, per_server: np.ndarray, dep_calls: np.ndarray, dep_work: np.ndarray, link_bps: np.ndarray,
           full: np.ndarray | None) -> Loads:
        """The loads of ``per_server`` (its rows are ``work``, ``demand``, ``tries`` and ``work2``)."""
        work, demand, tries, work2 = per_server
        return cls(per_server, work, demand, tries, work2, dep_calls, dep_work, link_bps, full)


class TryOutcome(NamedTuple):
    """The step's tries: their outcomes per region, the failures per entry, their latency and their loads."""

    first: RegionOutcomes  # of first attempts
    retries: RegionOutcomes  # of client retries
    fails: np.ndarray  # failed attempts per entry of the support (``Pairs.sup``; none on a region's own pairs)
    latency: np.ndarray  # [region, bin] the successes' try times (before the age of their requests)
    loads: Loads
    refail: np.ndarray  # per region: how much likelier than its average attempt a failed one fails where it failed


class _Sent(NamedTuple):
    """What :meth:`Tries.within` reads of the last :meth:`Tries.send`."""

    view: ClassView
    front: _FrontEnds
    rows: _Rows
    paths: _Paths
    totals: _Totals
    per_pair: np.ndarray  # per live pair: its loads (ROWS), then its failures
    lost: np.ndarray  # per row: its failed attempts (none where the region has no databases)


class _FrontEnds(NamedTuple):
    """What tries meet at the front ends: per region (of the datacenter it is routed to) and per class."""

    down: np.ndarray  # per region: share of its tries reaching a front end that is down
    shed: np.ndarray  # per region: share refused at the front end
    error: np.ndarray  # per region: share answered with an error there
    time: np.ndarray  # per region: work and wait at the front end
    no_pool: np.ndarray  # per region: no route, or no pool
    share: np.ndarray  # per class: its share of its datacenter's front-end tries (times its size)
    speed: np.ndarray  # per class: speed now (with warm-up)


class _Pools(NamedTuple):
    """What the front ends' pools are made of, kept while the classes, the routes and the servers stand
    (``key``; no warm-up under way): per class, per datacenter and per region.
    """

    key: tuple[ClassView, np.ndarray, int]  # the classes, the routes, the servers' revision
    dc: np.ndarray  # per class: its datacenter
    share: np.ndarray  # per class: its share of its datacenter's front-end tries (times its size)
    fronting: np.ndarray  # per class: the same where it does proxy work (a stage of its own), else 0
    speed: np.ndarray  # per class: speed now (with warm-up)
    time: np.ndarray  # per datacenter: the front end's work
    dsafe: np.ndarray  # per region: the datacenter it is routed to (0 for none)
    down: np.ndarray  # per region: share of its tries reaching a front end that is down
    error: np.ndarray  # per region: share answered with an error there
    no_pool: np.ndarray  # per region: no route, or no pool


class _Grouping(NamedTuple):
    """The groups of live pairs, and what they were taken from (kept while that stands)."""

    classes: ClassView
    support: np.ndarray
    live_at: np.ndarray
    live_server: np.ndarray  # the live pairs' servers
    rep: np.ndarray  # the first live pair of each group
    inv: np.ndarray  # each live pair's group
    runs: tuple[np.ndarray, np.ndarray] | None  # ``inv`` as runs of one group (see :func:`_runs`)
    sums: BinSums  # sums per group of values per live pair
    sel: np.ndarray  # per row (the groups, then each region's "database unavailable"), the entry standing for it
    server_pair: np.ndarray | None  # each server's live pair, when every server has exactly one (else None)


class _Rows(NamedTuple):
    """The rows of a step: one per group of live pairs, then one "database unavailable" row per region."""

    live_at: np.ndarray  # the live pairs (carrying attempts in this step): where in the support
    live_server: np.ndarray  # their servers
    live_w: np.ndarray  # their attempts
    inv: np.ndarray  # each live pair's group (row)
    runs: tuple[np.ndarray, np.ndarray] | None  # ``inv`` as runs of one group (see :func:`_runs`)
    group_w: np.ndarray  # attempts per group
    sel: np.ndarray  # per row, the entry standing for it
    weights: np.ndarray  # attempts per row
    share0: np.ndarray  # the share of them that are first attempts
    pairs: int  # rows of pairs (the rest are per region)
    live_share0: np.ndarray  # per live pair: the share of its attempts that are first attempts
    live_first_w: np.ndarray  # per live pair: its attempts times that share (its first attempts, as rows count them)
    server_pair: np.ndarray | None  # each server's live pair, when every server has exactly one (else None)


class _Paths(NamedTuple):
    """Per row, where its tries go and what they meet there (the fields from ``server`` on: rows of pairs)."""

    region: np.ndarray
    dc: np.ndarray  # the datacenter the region is routed to (-1: no route)
    own: np.ndarray  # the region has no databases: the pool's server does the mailbox work
    down: np.ndarray  # share reaching a front end that is down
    front_shed: np.ndarray
    front_error: np.ndarray
    front_time: np.ndarray
    no_pool: np.ndarray
    pair_region: np.ndarray
    server: np.ndarray  # the mailbox server
    server_dc: np.ndarray
    speed: np.ndarray  # the mailbox server's speed now
    link: np.ndarray  # the link crossed (-1: none)
    crosses: np.ndarray
    loss: np.ndarray  # the link's loss ([type, row] where the types' sizes differ)
    delay: np.ndarray  # the link's latency and congestion delay (the same)
    rtt: np.ndarray  # the region's round trip to its datacenter
    dc_bin: np.ndarray  # per row: the datacenter the region is routed to (0 for none: ``routed`` says)
    routed: np.ndarray  # per row: whether the region has a datacenter to go to
    pair_dc_bin: np.ndarray  # ``dc_bin`` of the rows of pairs
    pooled: bool  # whether every row's region has a pool to go to (``no_pool`` is False everywhere)
    crossed: np.ndarray  # per row of pairs that crosses a link: the link
    sent: np.ndarray  # per row of pairs: 1 - ``loss``
    front_pass: np.ndarray  # per row of pairs: 1 - ``front_shed``
    front_ok: np.ndarray  # per row of pairs: 1 - ``front_error``
    service: np.ndarray  # per row of pairs: the mailbox server's mean service (at speed 1, work 1)
    det: np.ndarray  # per row of pairs: whether the mailbox server's service is deterministic
    moment2: np.ndarray  # per row of pairs: the second moment of its service over the mean's square (1 + cs2)


class _Mailboxes(NamedTuple):
    """Per row of pairs, the mailbox server's state at the start of the step."""

    up: np.ndarray
    shed: np.ndarray
    err: np.ndarray
    wait: np.ndarray  # fluid wait
    wait_p: np.ndarray  # stationary: chance of waiting
    theta: np.ndarray  # stationary: 1 / the mean wait of those who wait
    rate: np.ndarray  # stationary: rate of the wait's exponential (``theta`` unless it is cut)
    bound: np.ndarray | None  # stationary: where the wait is cut (``max_queue_wait``; None: nowhere, ``Servers.cut``)


class _Chances(NamedTuple):
    """Per try of a request type and row: success, error, timeout, and the parts they are made of; from
    :meth:`Tries._chances` for the step's request types at once ([type, row]), :meth:`of_type` one of them.
    """

    ok: np.ndarray
    error: np.ndarray
    timeout: np.ndarray
    service: np.ndarray  # per row of pairs: the mailbox work
    base: np.ndarray  # the deterministic part of a try's time
    tau: np.ndarray  # the time left for its stochastic part
    late: np.ndarray  # the share of the stochastic part past ``tau``
    reach: np.ndarray  # the share reaching the mailbox server
    first: tuple[np.ndarray, ...]  # ok / error / timeout: the share of each that is first attempts'
    full: tuple[np.ndarray, ...]  # first attempts / retries: the share of their errors a full mailbox server refused

    def of_type(self, k: int) -> _Chances:
        """The chances of the ``k``-th request type (of those computed together): views, no copies."""
        return _Chances(self.ok[k], self.error[k], self.timeout[k], self.service[k], self.base[k], self.tau[k],
                        self.late[k], self.reach[k], tuple(x[k] for x in self.first),
                        tuple(x[k] for x in self.full))


class _Calls(NamedTuple):
    """The dependency calls of the request types sent in a step: each type's, and their shares of tries whose
    calls all succeed, their time and the worker time they hold, as [type, 1] columns.
    """

    each: list[DependencyCalls]
    ok: np.ndarray
    time: np.ndarray
    held: np.ndarray


class _Totals:
    """What the step's tries add up to over the request types (summed in place, in their order)."""

    __slots__ = ("ok", "error", "timeout", "work", "demand", "tries", "work2", "dep_calls", "dep_work", "link_bps",
                 "hist", "dc_tries", "lb_retries", "shed", "dep_attempts", "dep_retries", "front_dc", "later")

    def __init__(self, rows: int, pairs: int, regions: int, dcs: int, deps: int, links: int):
        self.ok, self.error, self.timeout = np.zeros(rows), np.zeros(rows), np.zeros(rows)  # per row
        self.work, self.demand, self.tries = np.zeros(pairs), np.zeros(pairs), np.zeros(pairs)  # per row of pairs
        self.work2 = np.zeros(pairs)
        self.dep_calls, self.dep_work = np.zeros(deps), np.zeros(deps)
        self.link_bps = np.zeros(links)
        self.hist = np.zeros((regions, BINS))
        self.dc_tries = np.zeros(dcs)
        self.lb_retries, self.shed = np.zeros(regions), np.zeros(regions)
        self.dep_attempts, self.dep_retries = np.zeros(regions), np.zeros(regions)
        self.front_dc = np.zeros(dcs)  # tries per second reaching each datacenter's front ends
        self.later: list[Later] = []  # what comes after a backoff (its part in the sums above too)


class Tries:
    """The tries stage of a step (:meth:`send`), over the engine's servers, pairs, dependencies and links."""

    def __init__(self, scenario: Scenario, servers: Servers, classes: Classes, pairs: Pairs, deps: Dependencies,
                 links: Links, records: Records, types: list[RequestType], lb_budgets: list[Budget | None]):
        self.client, self.lb = scenario.policies.client, scenario.policies.load_balancer
        self.servers, self.classes, self.pairs, self.deps, self.links = servers, classes, pairs, deps, links
        self.records, self.types, self.lb_budgets = records, types, lb_budgets
        self.n_regions, self.n_dcs = pairs.n_regions, servers.n_dcs
        self.shares = np.array([rt.share for rt in types])  # per request type: its share of first attempts
        # The time the load balancer's backoffs take (None: it retries at once)
        self.lb_sums = BackoffSums(self.lb.backoff, self.lb.retries, self.client.timeout) \
            if self.lb.retries and self.lb.backoff.kind != "none" else None
        # Retries' load offered when their backoff ends, unless it is short against the step
        self.deferrals = Deferrals(scenario.flow.step, servers.n, self.n_dcs, deps, links.count, self.lb, self.lb_sums,
                                   self.client.timeout, self._sums)
        self.lb_tries = LoadBalancerTries(self.lb, self.client.timeout, self.lb_sums, lb_budgets,
                                          self.deferrals.lb_later, self._sums, self.n_regions, self.n_dcs)
        self.work = np.array([rt.work for rt in types], dtype=float)  # and its work
        # The sizes a crossing has (one link state is read per size and step) and each type's size among them
        self._sizes = sorted({rt.bits for rt in types})
        self._size_of = np.array([self._sizes.index(rt.bits) for rt in types])
        self._groups: _Grouping | None = None
        self._pools: _Pools | None = None
        # (the grouping, the routes and the pools they were taken at; the paths, the links crossed, their latency)
        self._kept_paths: tuple[_Grouping | None, np.ndarray, _Pools | None, _Paths, list[int],
                                np.ndarray] | None = None
        self._every: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # support, all its pairs, their servers
        self._tinies = np.zeros(0)  # TINY, as many as asked for (np.maximum(x, TINY) costs more with a scalar)
        self._bins: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # :meth:`_sums`' bins per index, size
        self._sent: _Sent | None = None  # what :meth:`within` reads of the last send

    def send(self, t: float, h: float, w: int, route: np.ndarray, mass0: np.ndarray,
             mass_r: np.ndarray, retry_types: np.ndarray, full: np.ndarray | None = None) -> TryOutcome:
        """Send the step's attempts: per region ``mass0`` first attempts (spread over the mailbox servers
        as the region's databases are, in the mix's shares of request types) and ``mass_r`` retries (spread
        as their failures were, of the types in ``retry_types`` [region, type]; ``full`` [region, retry
        number - 1] of them retry tries a full server refused), in the step from ``t`` of length ``h`` in
        window ``w``, to the datacenters of ``route``.
        """
        c, lb = self.client, self.lb
        T = c.timeout
        tt = min(T, lb.try_timeout) if lb.try_timeout is not None else T
        view = self.classes.current()  # one server stands for each class, ``size`` of them
        front = self._front_ends(t, view, route)
        rows = self._rows(view, route, mass0, mass_r)
        paths = self._paths(view, front, rows, route)
        s, b = self.servers, paths.server
        at = s.at
        state = s.at_each(("shed", "fluid_wait", "wait_p", "theta", "wait_rate"), b)
        shed, fluid_wait, wait_p, theta, wait_rate = state
        box = _Mailboxes(s.up[b], shed, s.err[b], fluid_wait, wait_p, theta, wait_rate, s.cut(b))
        bunched = self._bunched(rows, paths, box, full)
        again = None if bunched is None or not some(at("again", b) != box.shed) else \
            box.shed + bunched * (at("again", b) - box.shed)  # (None where retries are refused as first attempts)
        totals = _Totals(rows.weights.size, rows.pairs, self.n_regions, self.n_dcs, self.deps.n, self.links.count)
        K = len(self.types)
        outcomes = np.zeros((8, self.n_regions, K))  # first attempts' ok, error, timeout; the retries'; their full
        retried = sums(retry_types, axis=1)
        retry_mix = np.where(retried[:, None] > 0, retry_types / np.maximum(retried, TINY)[:, None], 0.0)
        # Per live pair: work, demand, tries, work squared and failures. A row's pairs share its outcomes per try
        # of each type, but not their mix of types when retries are sent (a pair's retries are of the types that
        # failed there); without retries, every pair's tries are in the mix's shares.
        mixed = K > 1 and some(mass_r)
        # Per row of pairs, of work, demand, tries, work squared and failures per try of each type, summed over
        # the types in the mix's shares (for first attempts) and in the retries' (for retries).
        per_try = np.zeros((2, ROWS + 1, rows.pairs))
        successes: list[latency.Successes] = []
        # Per [type, row]: the tries and the share of them that are first attempts.
        if K == 1:  # every try is of the one type
            tries0, first_share = (rows.weights * self.types[0].share)[None], rows.share0[None]
        else:  # the row's first attempts in the mix's share, its retries in their own types' shares
            part0 = rows.share0 * self.shares[:, None]
            part = part0 + (1.0 - rows.share0) * retry_mix[paths.region].T
            tries0, first_share = rows.weights * part, np.where(part > 0, part0 / np.maximum(part, TINY), 0.0)
        active = [k for k in range(K) if some(tries0[k])]  # the types sent in this step
        each_calls = [self.deps.calls(self.types[k].deps, tt, h, float(sums(tries0[k]))) for k in active]
        if active:  # the sent types at once, as [type, row] arrays (element by element as one type would be)
            columns = np.array([(c.ok, c.time, c.held) for c in each_calls]).T[:, :, None]
            calls = _Calls(each_calls, *columns)
            every = len(active) == K
            sent = slice(None) if every else active
            if not every and paths.loss.ndim == 2:  # (the types' sizes differ: a link's loss and delay per type)
                paths = paths._replace(loss=paths.loss[active], delay=paths.delay[active], sent=paths.sent[active])
            firsts = first_share if every else first_share[active]
            chances = self._chances(rows, paths, box, calls, self.work[active], tt, firsts, again)
            balanced = self._balance(rows, paths, box, chances, tries0 if every else tries0[active], tt, h, totals)
            mixed_box = box if again is None else box._replace(
                shed=firsts[:, : rows.pairs] * box.shed + (1.0 - firsts[:, : rows.pairs]) * again)
            booked = self._book(w, h, rows, paths, mixed_box, calls, chances, balanced, totals,
                                [self.types[k].bits for k in active])
            successes = latency.of_types(balanced.ok[:, : rows.pairs], balanced.elapsed[:, : rows.pairs], latency.Parts(
                chances.base, chances.tau, chances.service, box.wait_p, box.rate, box.bound, paths.det,
                paths.pair_region, paths.server_dc), self.n_regions, self.n_dcs)
            self._by_type(outcomes, sent, paths.region, balanced, chances)
            if mixed:  # per try of each type, weighed by the mix's shares and by the retries'
                row_tries = tries0[sent, : rows.pairs]
                each = np.where(row_tries > 0, 1.0 / np.maximum(row_tries, TINY), 0.0)
                retry_share = retry_mix[paths.region[: rows.pairs]].T[sent]  # [type, row]
                lost = balanced.error[:, : rows.pairs] + balanced.timeout[:, : rows.pairs]
                x = np.empty((len(active), ROWS + 1, rows.pairs))  # [type, quantity, row]
                x[:, :ROWS] = np.stack(booked, axis=1)
                x[:, ROWS] = lost
                x *= each[:, None, :]
                # (summed over the types in their order: a sum along the first axis adds them one by one)
                per_try[0] = sums(self.shares[sent][:, None, None] * x, axis=0)
                per_try[1] = sums(retry_share[:, None, :] * x, axis=0)
        latency.record(totals.hist, successes)
        counts = self.records.counts
        counts["lb_retries"][:, w] += totals.lb_retries
        counts["shed"][:, w] += totals.shed
        counts["dep_attempts"][:, w] += totals.dep_attempts
        counts["dep_retries"][:, w] += totals.dep_retries
        self.records.dc_offered[:, w] += totals.dc_tries
        first, retries = self._by_region(outcomes, route, mass0, mass_r, retry_mix)
        if mixed:  # back to the pairs: each by its first attempts and its retries
            first_w = rows.live_first_w
            retry_w = rows.live_w - first_w
            per_pair, other = _each(per_try, rows)  # (in place: no temporaries of every pair)
            per_pair *= first_w
            other *= retry_w
            per_pair += other
        else:  # back to the pairs: each carries its share of its group's attempts
            part = _each(np.where(rows.group_w > 0, 1.0 / np.maximum(rows.group_w, TINY), 0.0), rows) * rows.live_w
            lost = (totals.error + totals.timeout)[: rows.pairs]
            per_pair = _each(np.array((totals.work, totals.demand, totals.tries, totals.work2, lost)), rows)
            per_pair *= part
        fails = self._fails(rows, paths, totals, per_pair[ROWS])
        if totals.later:  # the load of what is sent after a backoff: later, where that ends after the step
            self._defer(t, h, view, front, rows, totals, per_pair)
        loads = self._loads(view, front, rows, totals, per_pair, bunched, full)
        due = self.deferrals.due(t, h)  # and what comes due now of what was put off before
        if due is not None:
            per = loads.per_server + due.per_server
            loads = Loads.of(per, loads.dep_calls + due.dep_calls, loads.dep_work + due.dep_work,
                             loads.link_bps + due.link_bps, loads.full)
        lost = totals.error + totals.timeout
        if self.pairs.any_own:  # (a region without databases: its tries wait nowhere, see _fails)
            lost = np.where(paths.own, 0.0, lost)
        self._sent = _Sent(view, front, rows, paths, totals, per_pair, lost)
        return TryOutcome(first, retries, fails, totals.hist, loads, self._refail(rows, paths, lost))

    def _refail(self, rows: _Rows, paths: _Paths, lost: np.ndarray) -> np.ndarray:
        """Per region, how much likelier than the step's average attempt an attempt that failed fails again
        where it failed (its database's server, or its unavailable database: a retry goes to the same
        database): the failures' mean failure share (per row, ``lost`` of its attempts) over the attempts' (1
        where nothing failed, and where the region has no databases: its retries go through the balancer
        again, as its first attempts).
        """
        R = self.n_regions
        if not some(lost):
            return np.ones(R)
        with np.errstate(invalid="ignore", divide="ignore"):
            again = np.where(rows.weights > 0, lost * lost / np.maximum(rows.weights, TINY), 0.0)
            failed = np.bincount(paths.region, weights=lost, minlength=R)
            tried = np.bincount(paths.region, weights=rows.weights, minlength=R)
            return np.where(failed > 0, np.bincount(paths.region, weights=again, minlength=R) * tried
                            / np.maximum(failed * failed, TINY), 1.0)

    def within(self, loads: Loads, in_step: np.ndarray, sent: np.ndarray, w: int) -> Loads:
        """``loads`` (the last :meth:`send`'s) with the load of ``in_step`` more client retries per region, sent
        within that step (in window ``w``) after failing in it (``sent`` attempts per region were sent in it):
        each brings the load a try of its row brought, in the rows where its region's tries failed (a retry
        goes back to its database), or, where the region has no databases, as its tries went (through the
        balancer again). They make as many load-balancer retries and dependency calls per attempt as their
        region's attempts of the step (counted), and are offered to their datacenters.
        """
        assert self._sent is not None
        view, front, rows, paths, totals, per_pair, lost = self._sent
        R, D, P = self.n_regions, self.n_dcs, rows.pairs
        region = paths.region
        with np.errstate(invalid="ignore", divide="ignore"):
            failed = np.bincount(region, weights=lost, minlength=R)
            to_failed = np.where(failed > 0, in_step / np.maximum(failed, TINY), 0.0)
            more = to_failed[region] * lost  # per row: the retries sent there
            if self.pairs.any_own:
                to_sent = np.where(sent > 0, in_step / np.maximum(sent, TINY), 0.0)
                more = np.where(paths.own, to_sent[region] * rows.weights, more)
            grow = np.where(rows.weights > 0, more / np.maximum(rows.weights, TINY), 0.0)  # per row
            # Their front ends' tries, as their datacenters' tries grow
            dc, routed = np.maximum(paths.dc[:P], 0), paths.dc[:P] >= 0
            each_dc = np.bincount(dc, weights=rows.weights[:P] * routed, minlength=D)
            more_dc = np.bincount(dc, weights=more[:P] * routed, minlength=D)
            front_dc = totals.front_dc * np.where(each_dc > 0, more_dc / np.maximum(each_dc, TINY), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            each_r = np.where(sent > 0, in_step / np.maximum(sent, TINY), 0.0)  # per region, per attempt sent
            dc_grow = np.where(each_dc > 0, more_dc / np.maximum(each_dc, TINY), 0.0)
        counts = self.records.counts
        for name, per_attempt in (("lb_retries", totals.lb_retries), ("dep_attempts", totals.dep_attempts),
                                  ("dep_retries", totals.dep_retries)):
            counts[name][:, w] += per_attempt * each_r
        self.records.dc_offered[:, w] += totals.dc_tries * dc_grow
        extra = self._per_server(view, front, rows, per_pair[:ROWS] * grow[:P].take(rows.inv), front_dc)
        every = float(sums(rows.weights[:P]))
        g = float(sums(more[:P])) / every if every > 0 else 0.0
        per = loads.per_server + extra
        return Loads.of(per, loads.dep_calls * (1.0 + g), loads.dep_work * (1.0 + g),
                        loads.link_bps * (1.0 + g), loads.full)

    # ------------------------------------------------------------------------------ where tries go

    def _front_ends(self, t: float, view: ClassView, route: np.ndarray) -> _FrontEnds:
        """Per datacenter: the pool's running share and what a try sees at the front end (averaged)."""
        s = self.servers
        ix = view.rep
        key = (view, route, s.revision)
        pools = self._pools
        if pools is None or pools.key[0] is not view or pools.key[1] is not route or pools.key[2] != s.revision \
                or s.next_warm != math.inf:  # (a warm-up under way: the speeds change with ``t``)
            pools = self._pools = self._pools_now(t, view, route, key)
        D = self.n_dcs
        dc_k, fw, dsafe, own_r = pools.dc, pools.fronting, pools.dsafe, self.pairs.own
        front_wait = np.bincount(dc_k, weights=fw * s.served_wait(ix), minlength=D)
        front_shed = np.bincount(dc_k, weights=fw * s.at("shed", ix), minlength=D)
        # Per region (the datacenter it is routed to): what its tries meet at the front ends.
        f_shed, frontend = front_shed[dsafe], pools.time[dsafe] + front_wait[dsafe]
        if self.pairs.any_own:  # (a region without databases meets none)
            f_shed, frontend = np.where(own_r, 0.0, f_shed), np.where(own_r, 0.0, frontend)
        return _FrontEnds(pools.down, f_shed, pools.error, frontend, pools.no_pool, pools.share, pools.speed)

    def _pools_now(self, t: float, view: ClassView, route: np.ndarray,
                   key: tuple[ClassView, np.ndarray, int]) -> _Pools:
        """What the front ends' pools are made of (see :class:`_Pools`)."""
        s = self.servers
        ix, size = view.rep, view.size
        D = self.n_dcs
        speed_k = s.speed[ix] * np.where(s.warm_until[ix] > t, s.warm_speed[ix], 1.0)
        pw, dc_k = s.pool_weight[ix], s.dc_of[ix]
        up_w = pw * s.up[ix]  # a server's share of the tries, if up
        up_share = np.bincount(dc_k, weights=up_w * size, minlength=D)
        has_pool = np.bincount(dc_k, weights=pw * size, minlength=D) > 0
        fw = np.where(up_share[dc_k] > 0, up_w / np.maximum(up_share[dc_k], TINY), 0.0) * size  # the class's
        # A front end is a stage of its own (queued, refused, erring) only where it does proxy work, as in the
        # request engine: one whose ``frontend_time`` is 0 passes the try on to the mailbox server at once.
        fronting = fw * (s.frontend[ix] > 0)
        front_err = np.bincount(dc_k, weights=fronting * s.err[ix], minlength=D)
        front_time = np.bincount(dc_k, weights=fw * s.frontend[ix] / speed_k, minlength=D)
        own_r = self.pairs.own
        dsafe = np.maximum(route, 0)
        q_down = np.where(own_r, 0.0, 1.0 - up_share[dsafe])  # tries reaching a front end that is down
        f_err = np.where(own_r, 0.0, front_err[dsafe])
        no_pool = (route < 0) | ~has_pool[dsafe]
        return _Pools(key, dc_k, fw, fronting, speed_k, front_time, dsafe, q_down, f_err, no_pool)

    def _rows(self, view: ClassView, route: np.ndarray, mass0: np.ndarray, mass_r: np.ndarray) -> _Rows:
        """Attempts per entry of the support (the pairs that can carry any, then the unavailable entries),
        grouped into rows. A region without databases sends its tries to the pool's servers directly.
        """
        pairs = self.pairs
        R, P = self.n_regions, pairs.n_pairs
        sup, Ps = pairs.sup, pairs.sup_pairs
        spread = pairs.spread
        if pairs.any_own:
            pairs.pool_shares(route, self.servers.dc_of, self.servers.pool_weight)
            spread = np.where(pairs.sup_own, pairs.prior_sup(), spread)
        # (x + 0.0 is x: with no retries due the first attempts are the weights)
        if some(mass_r):
            first = pairs.each_entry(mass0) * pairs.prior_sup()
            weights = first + pairs.each_entry(mass_r) * spread
        else:
            first = weights = pairs.each_entry(mass0) * pairs.prior_sup()
        # Only the pairs that carry attempts in this step (the active copies, and where retries wait),
        # and every region's "database unavailable" entry.
        carrying = weights[:Ps] > 0
        if np.logical_and.reduce(carrying):  # (as a rule) every pair of the support: slices, its pairs' servers kept
            if self._every is None or self._every[0] is not sup:
                self._every = (sup, np.arange(Ps), pairs.pair_server[sup[:Ps]])
            _, live_at, b_all = self._every
            live, live_w, live_first = sup[:Ps], weights[:Ps], first[:Ps]
        else:
            live_at = np.flatnonzero(carrying)  # where in sup
            live = sup[live_at]
            live_w, live_first = weights[live_at], first[live_at]
            b_all = None  # (their servers: kept with the groups)
        # The share of first attempts, where there are attempts (only those of live pairs are read).
        live_share0 = live_first / np.maximum(live_w, self._tiny(live_w.size))
        tail_w = weights[Ps:]
        share0 = np.where(tail_w > 0, first[Ps:] / np.maximum(tail_w, TINY), 0.0)
        # Pairs whose server is in the same state see the same outcomes: one row per group of them (a
        # region and a class of servers), carrying the group's attempts.
        cached = self._groups
        if cached is not None and cached.classes is view and cached.support is sup \
                and (cached.live_at is live_at or np.array_equal(cached.live_at, live_at)):
            # the same classes and pairs: the same groups
            groups = cached
        else:
            if b_all is None:
                b_all = pairs.pair_server[live]
            key = view.of[b_all] * R + pairs.pair_region[live]
            _, rep, inv = np.unique(key, return_index=True, return_inverse=True) if self.classes.lump \
                else (None, np.arange(live.size), np.arange(live.size))
            groups = self._groups = _Grouping(view, sup, live_at, b_all, rep, inv, _runs(inv), BinSums(inv, rep.size),
                                              np.concatenate([live[rep], np.arange(P, P + R)]),
                                              _one_each(b_all, self.servers.n))
        live_first_w = live_w * live_share0
        group_w = groups.sums(live_w)
        group_m0 = groups.sums(live_first_w)
        weights = np.concatenate([group_w, tail_w])
        share0 = np.concatenate([np.where(group_w > 0, group_m0 / np.maximum(group_w, TINY), 0.0), share0])
        return _Rows(live_at, groups.live_server, live_w, groups.inv, groups.runs, group_w, groups.sel, weights, share0,
                     groups.rep.size, live_share0, live_first_w, groups.server_pair)

    def _tiny(self, n: int) -> np.ndarray:
        """``n`` times TINY, as an array (a read-only view)."""
        if self._tinies.size < n:
            self._tinies = np.full(n, TINY)
            self._tinies.flags.writeable = False
        return self._tinies[:n]

    def _paths(self, view: ClassView, front: _FrontEnds, rows: _Rows, route: np.ndarray) -> _Paths:
        """Per row: its region's front ends; per row of pairs: the mailbox server, the link to it and what
        crossing costs. What does not change while the rows, the routes and the front ends' pools stand is
        kept (:meth:`_ways`); the links' state and the front ends' refusals and times are read each step.
        """
        links, kept = self.links, self._kept_paths
        if kept is None or kept[0] is not self._groups or kept[1] is not route or kept[2] is not self._pools:
            kept = self._kept_paths = (self._groups, route, self._pools, *self._ways(view, front, rows, route))
        ways, used, hop = kept[3:]
        link, crosses, reg = ways.link, ways.crosses, ways.region
        sizes = self._sizes
        if len(sizes) == 1:  # every type crosses at one size: per row of pairs
            delay_l, loss_l = links.state(sizes[0], used)
            b_loss = loss_l[link] * crosses  # index -1 is the "no link" entry: no loss, no delay
            b_delay = delay_l[link] * crosses + hop
        else:  # per type and row of pairs: a larger crossing has more packets to lose and wait for
            states = [links.state(bits, used) for bits in sizes]
            delay_l = np.array([s.delay for s in states])[self._size_of]
            loss_l = np.array([s.loss for s in states])[self._size_of]
            b_loss = loss_l[:, link] * crosses
            b_delay = delay_l[:, link] * crosses + hop
        front_shed = front.shed[reg]
        return ways._replace(front_shed=front_shed, front_time=front.time[reg], loss=b_loss, delay=b_delay,
                             sent=1.0 - b_loss, front_pass=1.0 - front_shed[: ways.server.size])

    def _ways(self, view: ClassView, front: _FrontEnds, rows: _Rows,
              route: np.ndarray) -> tuple[_Paths, list[int], np.ndarray]:
        """:meth:`_paths` without the links' state and the front ends' refusals and times (zeros), the links
        crossed, and per row of pairs the link's latency (0 where none is crossed).
        """
        pairs, links, P = self.pairs, self.links, rows.pairs
        reg = pairs.entry_region[rows.sel]
        d_e = route[reg]
        pair_region = pairs.pair_region[rows.sel[:P]]
        b = pairs.pair_server[rows.sel[:P]]
        bdc = self.servers.dc_of[b]
        speed_b = front.speed[view.of[b]]
        own_e = pairs.own[reg]
        dp = d_e[:P]
        link = np.where(own_e[:P] | (dp < 0), -1, links.between[np.maximum(dp, 0), bdc])
        crosses = (bdc != dp) & (link >= 0)
        # (only the links crossed: a link's state costs a call into the network, and the others' is unread)
        used = sorted(set(link[crosses].tolist()))
        hop = np.where((bdc != dp) & (dp >= 0), links.latency[np.maximum(dp, 0), bdc], 0.0)
        rtt = links.rtt[pair_region, np.maximum(dp, 0)]
        none = np.zeros(reg.size)
        front_error = front.error[reg]
        no_pool = front.no_pool[reg]
        paths = _Paths(region=reg, dc=d_e, own=own_e, down=front.down[reg], front_shed=none, front_error=front_error,
                       front_time=none, no_pool=no_pool, pair_region=pair_region, server=b, server_dc=bdc,
                       speed=speed_b, link=link, crosses=crosses, loss=none[:P], delay=none[:P], rtt=rtt,
                       dc_bin=np.maximum(d_e, 0), routed=d_e >= 0, pair_dc_bin=np.maximum(dp, 0),
                       pooled=not some(no_pool), crossed=link[crosses], sent=none[:P], front_pass=none[:P],
                       front_ok=1.0 - front_error[:P],
                       service=self.servers.service[b], det=self.servers.det[b],
                       moment2=1.0 + self.servers.cs2[b])
        return paths, used, hop

    def _bunched(self, rows: _Rows, paths: _Paths, box: _Mailboxes, full: np.ndarray | None) -> np.ndarray | None:
        """Per row of pairs, the share of its client retries that retry a try its mailbox server refused
        because it was full (None: there are none). Such retries wait where they failed, so a region's
        ``full`` (per retry number) is shared over its rows in proportion to the refusals there (their
        retries times the server's ``shed``); a region without databases sends its retries through the
        balancer again, which finds the server that refused it once in the pool's size.
        """
        if full is None or not self.servers.can_bunch or not some(full):
            return None
        P, R = rows.pairs, self.n_regions
        region = paths.region[:P]
        retries = rows.weights[:P] * (1.0 - rows.share0[:P])
        refusing = retries * box.shed
        total = np.bincount(region, weights=refusing, minlength=R)[region]
        mass = full.sum(axis=1)[region] * refusing / np.maximum(total, TINY)
        share = np.where(retries > 0, np.minimum(mass / np.maximum(retries, TINY), 1.0), 0.0)
        return np.where(paths.own[:P], share / self.servers.pool_size[paths.server], share)

    # ------------------------------------------------------------------------------ one request type

    def _chances(self, rows: _Rows, paths: _Paths, box: _Mailboxes, calls: _Calls, work: np.ndarray,
                 tt: float, first: np.ndarray, again: np.ndarray | None) -> _Chances:
        """Per try of request types of ``work`` (one per type, making ``calls``), per type and row: success,
        error and timeout, for a row whose tries of the type are ``first`` first attempts (a share, per type
        and row); its retries are refused at the mailbox with the chance ``again`` (per row of pairs; None:
        ``box.shed``, as first attempts). The types are computed together, element by element as one would be.
        """
        P, R, K = rows.pairs, self.n_regions, work.size
        qd, fsh, fer = paths.down[:P], paths.front_shed[:P], paths.front_error[:P]
        sent, passed, front_ok = paths.sent, paths.front_pass, paths.front_ok  # 1 - loss, 1 - fsh, 1 - fer
        col = (slice(None), None)
        dep_ok = calls.ok
        svc = paths.service * work[col] / paths.speed
        base = paths.rtt + paths.delay + paths.front_time[:P] + calls.time + box.wait
        tau = tt - base
        p_late = response_tail(tau, svc, box.wait_p, box.rate, paths.det, box.bound)
        reach = sent * passed * front_ok * dep_ok
        front = sent * (fsh + passed * fer + passed * front_ok * (1.0 - dep_ok))
        up = 1.0 - qd  # (reaching a front end that is up)
        reach_up, on_time, no_err = reach * box.up, 1.0 - p_late, 1.0 - box.err
        bunch = self.servers.can_bunch  # (else no account of full refusals)

        def at(shed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
            """Per try and row: success, error, timeout (the database-unavailable rows: an error), and the
            errors that a full mailbox server refused (None where no server can be full), when it refuses ``shed``.
            """
            kept = 1.0 - shed
            ok_b = reach_up * kept * on_time * no_err
            err_b = front + reach_up * (shed + kept * on_time * box.err)
            p_s, p_e = np.zeros((K, P + R)), np.empty((K, P + R))
            p_s[:, :P], p_e[:, :P] = up * ok_b, up * err_b
            p_e[:, P:] = 1.0 - paths.down[P:]
            full = None
            if bunch:
                full = np.zeros((K, P + R))
                full[:, :P] = up * reach * box.up * shed
            if not paths.pooled:  # (as a rule every region has a pool: where(False, x, y) is y)
                p_s = np.where(paths.no_pool, 0.0, p_s)
                p_e = np.where(paths.no_pool, 1.0, p_e)
                full = None if full is None else np.where(paths.no_pool, 0.0, full)
            return p_s, p_e, np.maximum(0.0, 1.0 - p_s - p_e), full

        p_s, p_e, p_t, full = at(box.shed)
        firsts: tuple[np.ndarray, ...] = (first, first, first)  # the same for each outcome
        if full is None:  # no server at which retries bunch: no account of full refusals
            none = np.zeros(p_e.shape)
            return _Chances(p_s, p_e, p_t, svc, base, tau, p_late, reach, firsts, (none, none))
        with np.errstate(invalid="ignore", divide="ignore"):
            full_share = np.where(p_e > 0, np.minimum(full / np.maximum(p_e, TINY), 1.0), 0.0)
            shares = (full_share, full_share)
            if again is not None:  # retries refused with their own chance: mix the two kinds per row
                both = (p_s, p_e, p_t)
                *other, full_r = at(again)
                assert full_r is not None
                mixed = [first * x + (1.0 - first) * y for x, y in zip(both, other, strict=True)]
                firsts = tuple(np.where(m > 0, first * x / np.maximum(m, TINY), first)
                               for x, m in zip(both, mixed, strict=True))
                shares = (full_share,
                          np.where(other[1] > 0, np.minimum(full_r / np.maximum(other[1], TINY), 1.0), 0.0))
                p_s, p_e, p_t = mixed
        return _Chances(p_s, p_e, p_t, svc, base, tau, p_late, reach, firsts, shares)

    def _balance(self, rows: _Rows, paths: _Paths, box: _Mailboxes, chances: _Chances, tries0: np.ndarray,
                 tt: float, h: float, totals: _Totals) -> Balanced:
        """The load balancers' tries of the request types [type, row], grouped by how many timed out so far
        (each took ``tt``): a failed try is retried on another server within the retries and the budget,
        until the client's deadline (:func:`~sim.engine.flow.elsewhere.retry_spread` says which row a retry
        lands in). With retry budgets the types take their turns (a budget lets through what the types before
        left it); without, they are resolved together.
        """
        P = rows.pairs
        elsewhere = retry_spread(paths.region[:P], paths.own[:P], rows.weights[:P], rows.inv, chances.ok[..., :P],
                                 chances.error[..., :P], self.n_regions, self._sums) if self.lb.retries else None
        kept = self._in_time(rows, paths, box, chances) if self.lb_sums is not None else None
        return self.lb_tries.resolve(chances.ok, chances.error, chances.timeout, tries0, tt, h, paths.region,
                                     paths.dc, totals.lb_retries, elsewhere, kept)

    def _in_time(self, rows: _Rows, paths: _Paths, box: _Mailboxes,
                 chances: _Chances) -> Kept:
        """Of a try's chance of success ([type, row]), the share left when the client's deadline cuts its
        time by ``cut``: the response must come within ``tau - cut`` rather than ``tau``
        (:func:`sim.queueing.response_tail`). The rows past the pairs' (no server) have no success to cut.
        """
        P = rows.pairs

        def kept(cut: float) -> np.ndarray:
            late = response_tail(chances.tau - cut, chances.service, box.wait_p, box.rate, paths.det, box.bound)
            on_time = 1.0 - chances.late
            out = np.ones(chances.ok.shape)
            out[..., :P] = np.where(on_time > 0, np.minimum((1.0 - late) / np.maximum(on_time, TINY), 1.0), 0.0)
            return out

        return kept

    def _book(self, w: int, h: float, rows: _Rows, paths: _Paths, box: _Mailboxes, calls: _Calls,
              chances: _Chances, balanced: Balanced, totals: _Totals,
              bits: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Add the request types' outcomes and loads ([type, row], each type making ``calls`` of crossings of
        ``bits``) to the totals: front ends (spread over the pool), dependencies, mailbox servers, links; and
        the work wasted and queued to the records. Returns what each type added per row of pairs: the
        mailbox servers' work, demand, tries and work squared (a try's second moment: its service's, the
        server's law at the type's mean, after the time its dependency calls held the worker, taken as fixed).
        Sums over the types add them in the types' order.
        """
        P, R, D = rows.pairs, self.n_regions, self.n_dcs
        qd, fsh = paths.down[:P], paths.front_shed[:P]
        sent, passed = paths.sent, paths.front_pass  # 1 - loss, 1 - fsh
        n_tries = balanced.tries
        totals.ok = sums(balanced.ok, axis=0)
        totals.error = sums(balanced.error, axis=0)
        totals.timeout = sums(balanced.timeout, axis=0)
        totals.dc_tries = sums(self._sums(paths.dc_bin, n_tries * paths.routed, D), axis=0)
        nb = n_tries[:, :P] * (1.0 - qd)  # tries reaching a running front end, per pair
        if not paths.pooled:  # (x * True is x)
            nb = nb * ~paths.no_pool[:P]
        totals.shed = sums(self._sums(paths.pair_region, nb * (sent * fsh + chances.reach * box.up * box.shed), R),
                           axis=0)
        # Loads per second: front ends (spread over the pool), dependencies, mailbox servers.
        # (x * True is x: as a rule no region is without databases)
        to_front = nb * ~paths.own[:P] * passed if self.pairs.any_own else nb * passed
        totals.front_dc = sums(self._sums(paths.pair_dc_bin, to_front, D) / h, axis=0)
        into_back = nb / h * sent * passed * paths.front_ok * box.up
        booked = into_back * (1.0 - box.shed)
        svc = chances.service
        work_b = calls.ok * svc + calls.held
        square = calls.ok * svc * (paths.moment2 * svc + 2.0 * calls.held) + calls.held * calls.held
        if self.servers.cancel:  # work that would start after its caller gave up is not done
            done = box.wait <= chances.tau
            work_b, square = np.where(done, work_b, 0.0), np.where(done, square, 0.0)
        work, demand, work2 = booked * work_b, into_back * work_b, booked * square
        totals.work = sums(work, axis=0)
        totals.demand = sums(demand, axis=0)
        totals.tries = sums(booked, axis=0)
        totals.work2 = sums(work2, axis=0)
        rec = self.records
        # The work wasted, the tries queued and their time in the queue, per type (each summed over its rows)
        wasted, queued, queue_time = sums(np.array((booked * calls.ok * chances.late,
                                               booked * np.minimum(1.0, box.wait_p + (box.wait > 0)),
                                               booked * (box.wait + box.wait_p / box.theta))), axis=2).tolist()
        for i, c in enumerate(calls.each):  # (type by type, as the records' running sums have always been added)
            rec.wasted += wasted[i] * h
            rec.queued += queued[i] * h
            rec.queue_time += queue_time[i] * h
            if some(c.per_try):  # (a type that calls no dependency adds zeros: x + 0.0 is x)
                called = np.bincount(paths.pair_region, weights=into_back[i], minlength=R) * h
                totals.dep_attempts += float(sums(c.per_try)) * called
                totals.dep_retries += c.retries * called
                totals.dep_calls += c.per_try * float(sums(called)) / h
                totals.dep_work += c.per_try * float(sums(called)) / h * self.deps.service * self.deps.factor
        crosses = paths.crosses
        if paths.crossed.size:
            K = n_tries.shape[0]
            across = (nb * passed * crosses)[:, crosses]  # tries put on a link
            # (the bits, the crossings and the losses in one sum: [quantity x type, link])
            link = self._sums(paths.crossed, np.concatenate((across / h * np.array(bits)[:, None], across,
                                                             across * paths.loss[..., crosses])), self.links.count)
            bps, crossings, lost = link[:K], link[K: 2 * K], link[2 * K:]
            for i in range(K):
                totals.link_bps += bps[i]
                rec.link_crossings[:, w] += crossings[i]
                rec.link_lost[:, w] += lost[i]
        if balanced.later or any(c.later for c in calls.each):
            linear = Sent(n_tries[:, :P], nb, to_front, into_back, (work, demand, booked, work2), bits,
                          paths.pair_dc_bin, passed, crosses, paths.crossed)
            totals.later = self.deferrals.collect(h, linear, balanced.later, calls.each)
        return work, demand, booked, work2

    def _defer(self, t: float, h: float, view: ClassView, front: _FrontEnds, rows: _Rows, totals: _Totals,
               per_pair: np.ndarray) -> None:
        """Of the loads sent after a backoff (``totals.later``), keep in the step what comes within it and put
        the rest in the delay buffer (:meth:`Deferrals.defer <sim.engine.flow.deferrals.Deferrals.defer>`): out
        of the totals and of ``per_pair`` (per live pair: its loads, :data:`ROWS`), in place.
        """

        def spread(ratio: np.ndarray, front_dc: np.ndarray) -> np.ndarray:
            """Per server, the share ``ratio`` [quantity, row of pairs] of its pairs' loads, and its front ends'."""
            return self._per_server(view, front, rows, per_pair[:ROWS] * _each(ratio, rows), front_dc)

        booked = np.array((totals.work, totals.demand, totals.tries, totals.work2))  # [quantity, row of pairs]
        rates = Rates(totals.front_dc, totals.dep_calls, totals.dep_work, totals.link_bps)
        kept, gone = self.deferrals.defer(t, h, totals.later, booked, rates, spread)
        totals.front_dc, totals.dep_calls, totals.dep_work, totals.link_bps = kept
        if gone is not None:
            per_pair[:ROWS] *= _each(np.maximum(1.0 - gone, 0.0), rows)

    def _sums(self, index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
        """Per row of ``weights`` ([row, entry], or one row), the sums of its entries in ``n`` bins by ``index``
        (per entry): one bincount for every row, each bin adding the same terms in the same order as a
        bincount of its own (the bins of every row kept while ``index`` is the same array).
        """
        if weights.ndim == 1:
            return np.bincount(index, weights=weights, minlength=n)
        rows = weights.shape[0]
        key = (id(index), rows * n)
        kept = self._bins.get(key)
        if kept is not None and kept[0] is index:
            bins = kept[1]
        else:
            bins = (np.arange(rows)[:, None] * n + index).ravel()
            if len(self._bins) >= 64:  # (indices of steps gone by)
                self._bins.clear()
            self._bins[key] = (index, bins)
        return np.bincount(bins, weights=weights.ravel(), minlength=rows * n).reshape(rows, n)

    # ------------------------------------------------------------------------------ back to regions and servers

    def _by_type(self, out: np.ndarray, sent: slice | list[int], reg: np.ndarray, balanced: Balanced,
                 chances: _Chances) -> None:
        """Per region, the outcomes of the request types' tries ([type, row]) into ``out`` [quantity, region,
        type] (the types ``sent``): first attempts' ok, error, timeout, then the retries', then the errors
        of each that a full mailbox server refused (with the shares of a single try's outcomes,
        ``chances.first`` and ``chances.full``).
        """
        R = self.n_regions
        first, full = chances.first, chances.full
        ok, err, timeout = balanced.ok, balanced.error, balanced.timeout
        # The eight sums of every type in one bincount: quantity q of type k, region r in bin (q K + k) R + r
        # (each bin adds the same terms in the same order as a bincount of its own).
        weights = np.array((ok * first[0], err * first[1], timeout * first[2], ok, err, timeout,
                            err * first[1] * full[0], err * (1.0 - first[1]) * full[1]))  # [q, type, row]
        by = self._sums(reg, weights.reshape(-1, reg.size), R).reshape(8, -1, R).transpose(0, 2, 1)  # [q, region, type]
        out[:3, :, sent] = by[:3]
        out[3:6, :, sent] = by[3:6] - by[:3]
        out[6:, :, sent] = by[6:]

    def _by_region(self, outcomes: np.ndarray, route: np.ndarray, mass0: np.ndarray, mass_r: np.ndarray,
                   retry_mix: np.ndarray) -> tuple[RegionOutcomes, RegionOutcomes]:
        """Per [region, type]: the outcomes of first attempts and of retries (regions with no route: every
        attempt is an error at once).
        """
        s0, e0, t0, sr, e_r, tr, f0, fr = outcomes
        if not some(route < 0):  # (as a rule every region has a route)
            return RegionOutcomes(s0, e0, t0, f0), RegionOutcomes(sr, e_r, tr, fr)
        unrouted = (route < 0)[:, None]
        e0 = np.where(unrouted, mass0[:, None] * self.shares[None, :], e0)
        e_r = np.where(unrouted, mass_r[:, None] * retry_mix, e_r)
        f0, fr = np.where(unrouted, 0.0, f0), np.where(unrouted, 0.0, fr)
        return RegionOutcomes(s0, e0, t0, f0), RegionOutcomes(sr, e_r, tr, fr)

    def _fails(self, rows: _Rows, paths: _Paths, totals: _Totals, lost_pairs: np.ndarray) -> np.ndarray:
        """Failures per entry of the support: ``lost_pairs`` per live pair, and the unavailable entries'
        (none where the region has no databases: its tries wait nowhere).
        """
        P, Ps = rows.pairs, self.pairs.sup_pairs
        own = paths.own[:P]
        lost = np.where(own.take(rows.inv), 0.0, lost_pairs) if self.pairs.any_own and some(own) else lost_pairs
        unavailable = totals.error[P:] + totals.timeout[P:]
        if self.pairs.any_own:
            unavailable = np.where(paths.own[P:], 0.0, unavailable)
        if rows.live_at.size == Ps:  # every pair
            return np.concatenate((lost, unavailable))
        fails = np.zeros(self.pairs.sup.size)
        fails[rows.live_at] = lost
        fails[Ps:] = unavailable
        return fails

    def _per_server(self, view: ClassView, front: _FrontEnds, rows: _Rows, per_pair: np.ndarray,
                    front_dc: np.ndarray) -> np.ndarray:
        """Per server [work, demand, tries, work2]: its live pairs' (``per_pair``) and its share of its front
        ends' tries (``front_dc`` per datacenter; a front end's work is deterministic).
        """
        s, n = self.servers, self.servers.n
        ix, _, size = view
        if rows.server_pair is not None:  # (as a rule) one live pair per server: a gather, + 0.0 as a bincount's
            loads = per_pair[:ROWS].take(rows.server_pair, axis=1)
            loads += 0.0  # (-0.0 + 0.0 is 0.0: the same bits as the sums)
        else:
            loads = np.empty((ROWS, n))
            for q in range(ROWS):
                loads[q] = np.bincount(rows.live_server, weights=per_pair[q], minlength=n)
        work, demand, tries_at, work2 = loads
        if some(front_dc):  # per server of each class
            to_front = front_dc[s.dc_of[ix]] * np.where(size > 0, front.share / np.maximum(size, 1.0), 0.0)
            each_work = s.frontend[ix] / front.speed
            # (per server from its class: the work, the tries and the work squared in one gather)
            front_work, front_tries, front_work2 = self.classes.each(np.array((
                to_front * each_work, to_front * (s.frontend[ix] > 0), to_front * each_work * each_work)))
            work += front_work
            demand += front_work
            tries_at += front_tries
            work2 += front_work2
        return loads

    def _loads(self, view: ClassView, front: _FrontEnds, rows: _Rows, totals: _Totals,
               per_pair: np.ndarray, bunched: np.ndarray | None, full: np.ndarray | None) -> Loads:
        """Per server: the work, demand and tries of its pairs (``per_pair``: per live pair, from the send)
        and its share of its front ends' tries; and the demand of the retries of tries it refused because
        it was full (``bunched``: their share of each row's retries, ``full`` [region, retry number - 1]).
        """
        n = self.servers.n
        b_all = rows.live_server
        loads = self._per_server(view, front, rows, per_pair, totals.front_dc)
        by_retry = None
        if bunched is not None and full is not None:
            region = self.pairs.pair_region[self.pairs.sup[rows.live_at]]
            mix = full / np.maximum(full.sum(axis=1), TINY)[:, None]  # [region, retry number - 1]
            part = per_pair[1] * (1.0 - rows.live_share0) * bunched[rows.inv]
            by_retry = np.stack([np.bincount(b_all, weights=part * mix[region, k], minlength=n)
                                 for k in range(full.shape[1])], axis=1)
        return Loads.of(loads, totals.dep_calls, totals.dep_work, totals.link_bps, by_retry)


def _runs(inv: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The live pairs' groups ``inv`` as runs of one group (each run's group, its length) when there are
    few runs (as a rule: a region's pairs come together, and most of its servers are alike), else None.
    """
    if not inv.size:
        return None
    starts = np.flatnonzero(np.concatenate(([True], inv[1:] != inv[:-1])))
    if starts.size * 16 > inv.size:
        return None
    return inv[starts], np.diff(np.append(starts, inv.size))


def _one_each(servers: np.ndarray, n: int) -> np.ndarray | None:
    """Each of the ``n`` servers' place in ``servers`` (the live pairs' servers) when every server is there
    exactly once (then a bincount of values per live pair by server is a gather of them), else None.
    """
    if servers.size != n:
        return None
    place = np.full(n, -1, dtype=np.int64)
    place[servers] = np.arange(n)
    return place if bool((place >= 0).all()) else None


def _each(per_group: np.ndarray, rows: _Rows) -> np.ndarray:
    """Values per group (along the last axis) handed to each live pair of the group: by runs when they are
    few (a repeat costs less than a gather; the same values), else by a gather.
    """
    if rows.runs is None:
        return per_group.take(rows.inv, axis=-1)
    group, length = rows.runs
    return per_group.take(group, axis=-1).repeat(length, axis=-1)
