"""A planner's year: the requests each region loses, per SLO window, from the fleet's state and the overload curves.

Per window ``w`` and region ``r`` (window midpoints; a region's databases weigh the same, as in the engines):

- **quiet fleet**: every server at its own load, losing its overload curve's share of its databases'
  requests (:mod:`sim.planner.curve`); a server's load ``u`` is the mailbox work its active databases'
  first attempts bring, plus its share of its datacenter's front-end work, per worker;
- **failover overload**: while the active copies are elsewhere (:mod:`sim.planner.fleet`), each server's
  loss at its actual load, less its quiet loss; a stopped server loses nothing of its own;
- **failover delay** and **no copy up**: a database without an active copy until ``e`` loses the requests
  whose every attempt falls in the gap: an arrival at ``x`` if ``x + S < e``, ``S`` the sum of the clients'
  backoffs (errors come back at once), each window's arrivals at that window's rate (:func:`_gap_loss`);
  the arrivals of a gap's first ``database_delay`` seconds are the failover delay's, the later ones no
  copy up's (a database whose every copy is down waits longer than its failover);
- **datacenter outage**: a region sent to a dark datacenter loses its requests the same way until the
  traffic manager moves it (the first 5-second sweep ``datacenter_delay`` after it saw the outage), and
  its databases' gaps do not count those arrivals again; an outage while the region is still elsewhere
  (not yet moved back from the last) costs it nothing.

Not modelled (the engines are): links (congestion, latency), the front ends of a crashed server until it
is ejected (load-balancer and client retries make up for most of it), the tries that only pass through an
overloaded server's front end, a restarted server's warm-up, mail.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.planner.curve import Curve, measure_curve
from sim.planner.fleet import History, Neighbours, replay
from sim.planner.outages import Outages, draw_outages
from sim.policies import backoff_span
from sim.scenario import Scenario
from sim.sizing import mix_work
from sim.topology import build_topology
from sim.trace import Trace
from sim.workload import rates

__all__ = ["MECHANISMS", "Fleet", "YearLoss", "plan_year"]

MECHANISMS = ("quiet", "failover_overload", "failover_delay", "no_copy", "datacenter_outage")
"""Where a year's lost requests come from (the order of :attr:`YearLoss.by_mechanism`)."""

_CHUNK = 1_000_000  # window cells evaluated at once
_SWEEP = 5.0  # the traffic manager's sweep interval (sim.control.TrafficManager.CHECK_INTERVAL)


class YearLoss(NamedTuple):
    """One planned run: per window and region, the requests and those lost; lost by mechanism (totals)."""

    requests: np.ndarray  # [window, region]
    lost: np.ndarray  # [window, region]
    by_mechanism: np.ndarray  # [mechanism, region], MECHANISMS' order


class Fleet:
    """What a planned year reads of a scenario, built once for all its years: the cluster, the windows'
    rates, the servers' quiet loads and overload curves, the clients' retry spans.
    """

    def __init__(self, scenario: Scenario, *, cache: bool = True):
        self.scenario = scenario
        self.cluster = cluster = Cluster(simpy.Environment(), scenario, build_topology(scenario), Trace())
        R, n = len(cluster.region_ids), len(cluster.servers)
        window, duration = scenario.slo.window, scenario.duration
        self.window = window
        W = max(1, math.ceil(duration / window - 1e-9))
        edges = np.minimum(np.arange(W + 1) * window, duration)
        self.length = np.diff(edges)  # seconds of each window (the last may be short)
        mid = (edges[:-1] + edges[1:]) / 2
        loads = [scenario.workload.regions.get(r) for r in cluster.region_ids]
        self.rate = np.zeros((W, R))  # requests per second at each window's middle
        for r, load in enumerate(loads):
            if load is not None:
                self.rate[:, r] = rates(load, mid)
        self.requests = self.rate * self.length[:, None]
        # A region's databases weigh the same: each database's share of each region's requests [db, region].
        self.db_dense = np.zeros((len(cluster.copies), R))
        for r, dbs in enumerate(cluster.region_databases):
            np.add.at(self.db_dense[:, r], np.array(dbs, dtype=np.int64), 1.0 / max(len(dbs), 1))
        self.home = np.array([c[0] for c in cluster.copies], dtype=np.int64)  # each database's quiet server
        self.base = self.weights(self.home, n)
        # The same table by database, sparse (CSR): the regions each database serves and its share of each.
        self.db_ptr = np.r_[0, np.cumsum((self.db_dense > 0).sum(axis=1))]
        self.db_region = np.nonzero(self.db_dense)[1]
        self.db_share = self.db_dense[self.db_dense > 0]
        # Per server: workers, a first attempt's mailbox work, front-end work per try, and its curve.
        groups = {g.id: g for d in scenario.topology.datacenters for g in d.servers}
        dumps = {g.id: g.model_dump() for g in groups.values()}
        curves: dict[str, Curve] = {gid: measure_curve(scenario, dumps[gid], cache=cache) for gid in groups}
        servers = cluster.servers
        self.curve_of = [curves[s.group] for s in servers]
        self.floor = np.array([c.floor for c in self.curve_of])  # per server: its curve's first load of loss
        self.group_of = np.array([list(groups).index(s.group) for s in servers])
        self.curves = [curves[g] for g in groups]
        self.workers = np.array([s.workers for s in servers], dtype=float)
        self.mailbox = np.array([s.service.mean for s in servers]) * mix_work(scenario)  # a first attempt's
        self.frontend = np.array([s.frontend_time for s in servers])
        self.dc_of = np.array([s.datacenter for s in servers], dtype=np.int64)
        # Front-end tries per server: its datacenter's regions' requests over its servers (quiet routes).
        D = len(cluster.datacenter_ids)
        per_dc = np.zeros((W, D))
        for r, prefs in enumerate(cluster.region_preference):
            if prefs:
                per_dc[:, prefs[0]] += self.rate[:, r]
        sizes = np.array([max(len(m), 1) for m in cluster.servers_of_dc], dtype=float)
        self.front_rate = per_dc / sizes  # [window, dc]
        self.peak = self.rate.max(axis=0)
        self.db_peak = self.db_dense @ self.peak  # each database's requests per second at the regions' peaks
        self.front_peak = self.front_rate.max(axis=0)
        self.quiet_peak = self.u_peak(np.arange(n), self.base)  # per server: its quiet load's upper bound
        self.quiet = self._quiet()
        self.neighbours = Neighbours(cluster)
        self.retry_span = _retry_sums(scenario)

    def weights(self, active: np.ndarray, n: int) -> np.ndarray:
        """Per server, per region: the share of the region's requests whose database is active on it
        (``active``: each database's server, -1 for none).
        """
        on = active >= 0
        w = np.zeros((n, self.db_dense.shape[1]))
        np.add.at(w, active[on], self.db_dense[on])
        return w

    def u_peak(self, servers: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """An upper bound of each server's load over the run (with ``weights`` [server, region])."""
        return ((weights @ self.peak) * self.mailbox[servers]
                + self.front_peak[self.dc_of[servers]] * self.frontend[servers]) / self.workers[servers]

    def failed(self, servers: np.ndarray, weights: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """The share of their requests that ``servers`` carrying ``weights`` [cell, region] lose in
        ``windows`` (one cell each): their overload curves at their loads.
        """
        rate = self.rate[windows]
        u = ((weights * rate).sum(axis=1) * self.mailbox[servers]
             + self.front_rate[windows, self.dc_of[servers]] * self.frontend[servers]) / self.workers[servers]
        failed = np.zeros(u.size)
        for g, curve in enumerate(self.curves):
            at = self.group_of[servers] == g
            if at.any():
                failed[at] = curve(u[at])
        return failed

    def failed_kinds(self, servers: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The share of their requests that ``servers`` carrying ``weights`` [kind, region] lose in each
        window [window, kind]: their overload curves at their loads.
        """
        u = ((self.rate @ weights.T) * self.mailbox[servers]
             + self.front_rate[:, self.dc_of[servers]] * self.frontend[servers]) / self.workers[servers]
        failed = np.zeros(u.shape)
        for g, curve in enumerate(self.curves):
            at = np.flatnonzero(self.group_of[servers] == g)
            if at.size:
                failed[:, at] = curve(u[:, at].ravel()).reshape(-1, at.size)
        return failed

    def loss(self, servers: np.ndarray, weights: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Requests per second lost [cell, region] at ``servers`` carrying ``weights`` [cell, region] in
        ``windows`` (one cell each).
        """
        return weights * self.rate[windows] * self.failed(servers, weights, windows)[:, None]

    def _quiet(self) -> np.ndarray:
        """The quiet fleet's loss [window, region]: servers alike (group, datacenter, databases) once."""
        W, R = self.rate.shape
        lost = np.zeros((W, R))
        keys = np.column_stack([self.group_of, self.dc_of, self.base])
        _, rep, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
        busy = self.u_peak(rep, self.base[rep]) >= self.floor[rep]
        windows = np.arange(W)
        for s, c in zip(rep[busy].tolist(), counts[busy].tolist(), strict=True):
            srv = np.full(W, s)
            lost += c * self.loss(srv, np.broadcast_to(self.base[s], (W, R)), windows) * self.length[:, None]
        return lost


def plan_year(fleet: Fleet, seed: int) -> YearLoss:
    """The requests lost in the run of ``fleet``'s scenario with ``seed`` (see the module docstring)."""
    scenario, cluster = fleet.scenario, fleet.cluster
    horizon = scenario.duration
    outages = draw_outages(scenario, cluster, seed, horizon)
    history = replay(cluster, outages, scenario.policies.failover, horizon, fleet.neighbours)
    W, R = fleet.rate.shape
    by = np.zeros((len(MECHANISMS), W, R))
    by[0] = fleet.quiet
    by[1] = _overload(fleet, history, horizon)
    unrouted = _unrouted(fleet, outages, scenario.policies.failover.datacenter_delay, horizon, by[4])
    _gaps(fleet, history, horizon, scenario.policies.failover.database_delay, unrouted, by)
    lost = np.clip(by.sum(axis=0), 0.0, fleet.requests)
    return YearLoss(fleet.requests, lost, by.sum(axis=1))


def _overload(fleet: Fleet, history: History, horizon: float, dense: bool | None = None) -> np.ndarray:
    """Requests lost [window, region] by servers whose databases are not their quiet ones, less their
    quiet loss.
    """
    W, R = fleet.rate.shape
    out = np.zeros((W, R))
    if history.time.size == 0:
        return out
    # Each change as two rows: the database leaves its old server and joins its new one.
    gone, come = history.old >= 0, history.new >= 0
    srv = np.concatenate([history.old[gone], history.new[come]])
    t = np.concatenate([history.time[gone], history.time[come]])
    db = np.concatenate([history.db[gone], history.db[come]])
    sign = np.concatenate([-np.ones(gone.sum()), np.ones(come.sum())])
    order = np.lexsort((np.arange(srv.size), t, srv))
    srv, t, db, sign = srv[order], t[order], db[order], sign[order]
    first = np.flatnonzero(np.r_[True, srv[1:] != srv[:-1]])  # each server's rows are one run
    start_of = np.repeat(first, np.diff(np.r_[first, srv.size]))
    end = np.r_[t[1:], horizon]
    end[np.r_[srv[1:] != srv[:-1], True]] = horizon  # a server's last change lasts to the end
    # After each change: whether the server holds other databases than its quiet ones (a database away
    # from its quiet server, or one of its own gone), and an upper bound of its load (the changes' work
    # at the regions' peaks, a running sum per server).
    home = fleet.home[db] == srv
    moved = _run_sum(np.where(home, -sign, sign), start_of)
    extra = _run_sum(sign * fleet.db_peak[db], start_of) * fleet.mailbox[srv] / fleet.workers[srv]
    u_quiet = fleet.quiet_peak[srv]
    floor = fleet.floor[srv]
    busy_quiet = u_quiet >= floor  # it loses requests when quiet, too
    keep = (end > t) & (np.abs(moved) > 0.5) & ((u_quiet + extra >= floor) | busy_quiet)
    idx = np.flatnonzero(keep)
    srv, t, end, busy_quiet = srv[idx], t[idx], end[idx], busy_quiet[idx]
    weights = fleet.base[srv] + _weights_since(fleet, db, sign, start_of, idx)  # each kept row's weights
    # Episodes: a server at its weights over [t, end) and, where it loses requests when quiet too, the same
    # server at its quiet weights over the same span, signed -1. Episodes alike (group, datacenter,
    # weights) lose alike in a window: each kind's share is evaluated once per window it is in.
    q = np.flatnonzero(busy_quiet)
    s = np.r_[srv, srv[q]]
    a, b = np.r_[t, t[q]], np.r_[end, end[q]]
    wts = np.vstack([weights, fleet.base[srv[q]]])
    sign = np.r_[np.ones(srv.size), -np.ones(q.size)]
    keys = np.column_stack([fleet.group_of[s], fleet.dc_of[s], np.round(wts, 12)])
    _, rep, kind = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    kind = kind.ravel()
    order = np.argsort(kind, kind="stable")
    bounds = np.searchsorted(kind[order], np.arange(rep.size + 1))
    per = max(1, _CHUNK // W)  # kinds at once: [window, kind] tables of about _CHUNK cells
    for k0 in range(0, rep.size, per):
        k1 = min(k0 + per, rep.size)
        rows = order[bounds[k0]:bounds[k1]]
        first = np.minimum((a[rows] // fleet.window).astype(np.int64), W - 1)
        last = np.clip(np.ceil(b[rows] / fleet.window).astype(np.int64) - 1, first, W - 1)
        few = 4 * int((last - first + 1).sum()) < W * (k1 - k0) if dense is None else not dense
        if few:  # few cells: those the episodes are in
            w, k, sec = _cells(fleet, a[rows], b[rows], first, last, kind[rows] - k0, sign[rows], k1 - k0)
            r = rep[k0 + k]
            _add(out, w, wts[r], fleet.failed(s[r], wts[r], w) * sec, fleet)
        else:  # every window of every kind of the chunk
            seconds = _seconds(fleet, a[rows], b[rows], first, last, kind[rows] - k0, sign[rows], k1 - k0)
            r = rep[k0:k1]
            out += fleet.rate * ((seconds * fleet.failed_kinds(s[r], wts[r])) @ wts[r])
    return out


def _ranges(first: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ``i``'s ``counts[i]`` consecutive integers from ``first[i]``, all rows' after each other: (the row
    of each, the integer).
    """
    which = np.repeat(np.arange(first.size), counts)
    return which, np.repeat(first, counts) + (np.arange(which.size) - np.repeat(np.cumsum(counts) - counts, counts))


def _run_sum(x: np.ndarray, start_of: np.ndarray) -> np.ndarray:
    """Running sums of ``x`` that start again at each run (``start_of``: each row's run's first row)."""
    cum = np.cumsum(x)
    return cum - np.where(start_of > 0, cum[np.maximum(start_of - 1, 0)], 0.0)


def _weights_since(fleet: Fleet, db: np.ndarray, sign: np.ndarray, start_of: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
    """At ``rows``: the weights [row, region] that the changes (``db``, ``sign``) of each row's run up to it
    add, region by region over the databases' sparse shares.
    """
    counts = fleet.db_ptr[db + 1] - fleet.db_ptr[db]
    at, entry = _ranges(fleet.db_ptr[db], counts)  # one entry per change and region its database serves
    region, value = fleet.db_region[entry], fleet.db_share[entry] * sign[at]
    out = np.zeros((rows.size, fleet.db_dense.shape[1]))
    for r in np.unique(region).tolist():
        mine = region == r
        rows_r, cum = at[mine], np.cumsum(value[mine])

        def upto(i: np.ndarray, rows_r: np.ndarray = rows_r, cum: np.ndarray = cum) -> np.ndarray:
            k = np.searchsorted(rows_r, i, side="right") - 1
            return np.where(k >= 0, cum[np.maximum(k, 0)], 0.0)

        out[:, r] = upto(rows) - upto(start_of[rows] - 1)
    return out


def _seconds(fleet: Fleet, a: np.ndarray, b: np.ndarray, first: np.ndarray, last: np.ndarray, kind: np.ndarray,
             sign: np.ndarray, kinds: int) -> np.ndarray:
    """Signed seconds [window, kind] that episodes [a, b) (in windows ``first`` to ``last``) of each kind
    spend in each window: the windows inside an episode whole (counted by a running sum), its first and
    last in part.
    """
    W, window = fleet.length.size, fleet.window
    whole = np.zeros((W + 1, kinds))
    inner = last > first + 1
    np.add.at(whole, (first[inner] + 1, kind[inner]), sign[inner])
    np.add.at(whole, (last[inner], kind[inner]), -sign[inner])
    seconds = np.cumsum(whole[:W], axis=0) * fleet.length[:, None]
    one = last == first
    head = np.where(one, b - a, (first + 1) * window - a)
    np.add.at(seconds, (first, kind), sign * head)
    two = ~one
    np.add.at(seconds, (last[two], kind[two]), sign[two] * (b[two] - last[two] * window))
    return seconds


def _cells(fleet: Fleet, a: np.ndarray, b: np.ndarray, first: np.ndarray, last: np.ndarray, kind: np.ndarray,
           sign: np.ndarray, kinds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same seconds as :func:`_seconds`, only where episodes are: (window, kind, signed seconds)."""
    window = fleet.window
    which, w = _ranges(first, last - first + 1)
    overlap = np.minimum(b[which], (w + 1) * window) - np.maximum(a[which], w * window)
    cell, at = np.unique(w * kinds + kind[which], return_inverse=True)
    sec = np.bincount(at.ravel(), weights=sign[which] * np.clip(overlap, 0.0, None), minlength=cell.size)
    return cell // kinds, cell % kinds, sec


def _add(out: np.ndarray, w: np.ndarray, weights: np.ndarray, seconds: np.ndarray, fleet: Fleet) -> None:
    """Add to ``out[window, region]`` the requests of ``weights`` [cell, region] in windows ``w`` over
    ``seconds`` (per cell, signed; cells of 0 are skipped).
    """
    nz = np.flatnonzero(seconds)
    if nz.size == 0:
        return
    W, R = out.shape
    amount = weights[nz] * fleet.rate[w[nz]] * seconds[nz, None]
    index = (w[nz, None] * R + np.arange(R)[None, :]).ravel()
    out += np.bincount(index, weights=amount.ravel(), minlength=W * R).reshape(W, R)


def _retry_sums(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """The distribution of the sum of a request's backoffs over its retries (uniform each, as the flow
    engine spreads them): grid points and CDF.
    """
    client = scenario.policies.client
    step = 0.01
    density = np.array([1.0])
    for k in range(1, client.retries + 1):
        lo, hi = backoff_span(client.backoff, k)
        n = max(int(round((hi - lo) / step)), 0)
        kernel = np.zeros(int(round(lo / step)) + n + 1)
        kernel[int(round(lo / step)):] = 1.0 / (n + 1)
        density = np.convolve(density, kernel)
    grid = np.arange(density.size) * step
    return grid, np.cumsum(density) / density.sum()


def _lost_in_gap(fleet: Fleet, gap: np.ndarray) -> np.ndarray:
    """``E[(D − S)⁺]`` for each gap ``D``: how long, of a gap, a request's attempts all fall in it
    (``Σ_k p_k (D − s_k)⁺ = D·F(D) − Σ_{s_k ≤ D} p_k s_k`` over the grid of ``S``).
    """
    grid, cdf = fleet.retry_span
    pmf = np.diff(np.r_[0.0, cdf])
    first, moment = np.cumsum(pmf), np.cumsum(pmf * grid)
    k = np.searchsorted(grid, gap, side="right") - 1
    inside = k >= 0
    kk = np.maximum(k, 0)
    return np.where(inside, gap * first[kk] - moment[kk], 0.0)


def _gap_loss(fleet: Fleet, start: np.ndarray, end: np.ndarray, deadline: np.ndarray, share: np.ndarray,
              region: np.ndarray, out: np.ndarray) -> None:
    """Add to ``out[window, region]`` the requests lost by arrivals in [start, end) (per row) whose every
    attempt falls before ``deadline``, of ``share`` of the region's requests, at each window's own rate.

    An arrival at ``x`` is lost when ``x + S < deadline`` (``S`` the sum of its backoffs), so a window's
    piece [x0, x1) of the arrivals loses ``rate · share · (G(deadline − x0) − G(deadline − x1))`` with
    ``G(y) = E[(y − S)⁺]`` (:func:`_lost_in_gap`), counted in the window the requests arrived in.
    ``share`` may be negative (arrivals priced elsewhere taken out).
    """
    window = fleet.window
    W, R = out.shape
    keep = end > start
    start, end, deadline, share, region = start[keep], end[keep], deadline[keep], share[keep], region[keep]
    if start.size == 0:
        return
    first = np.minimum((start // window).astype(np.int64), W - 1)
    last = np.clip(np.ceil(end / window).astype(np.int64) - 1, first, W - 1)
    which, w = _ranges(first, last - first + 1)
    x0 = np.maximum(start[which], w * window)
    x1 = np.maximum(np.minimum(end[which], (w + 1) * window), x0)
    d = deadline[which]
    lost = _lost_in_gap(fleet, d - x0) - _lost_in_gap(fleet, d - x1)
    amount = fleet.rate[w, region[which]] * share[which] * lost
    out += np.bincount(w * R + region[which], weights=amount, minlength=out.size).reshape(out.shape)


def _gaps(fleet: Fleet, history: History, horizon: float, delay: float, unrouted: list[list[tuple[float, float]]],
          by: np.ndarray) -> None:
    """Databases without an active copy: failover delay (a gap's first ``delay`` seconds, the arrivals then)
    and no copy up (the arrivals after). A region's arrivals while it is sent to a dark datacenter
    (``unrouted``: per region, its spans) are lost there already: taken out of the gaps.
    """
    lost_at = history.new == -1
    if not lost_at.any():
        return
    order = np.lexsort((history.time, history.db))
    db, t, new = history.db[order], history.time[order], history.new[order]
    starts = np.flatnonzero(new == -1)
    nxt = starts + 1
    same = (nxt < db.size)
    same[same] = db[nxt[same]] == db[starts[same]]
    end = np.where(same, t[np.minimum(nxt, db.size - 1)], horizon)
    start = t[starts]
    row, reg = np.nonzero(fleet.db_dense[db[starts]])  # each gap once per region its database serves
    if row.size == 0:
        return
    a, b, share = start[row], end[row], fleet.db_dense[db[starts][row], reg]
    # The arrivals of each gap, less those while its region is sent to a dark datacenter (signed -1).
    cut_rows, cut_a, cut_b = [], [], []
    for r, spans in enumerate(unrouted):
        for ua, ub in spans:
            hit = np.flatnonzero((reg == r) & (a < ub) & (b > ua))
            cut_rows.append(hit)
            cut_a.append(np.maximum(a[hit], ua))
            cut_b.append(np.minimum(b[hit], ub))
    cut = np.concatenate(cut_rows) if cut_rows else np.zeros(0, dtype=np.int64)
    rows = np.r_[np.arange(row.size), cut]
    starts_x = np.r_[a, np.concatenate(cut_a) if cut_a else []]
    ends_x = np.r_[b, np.concatenate(cut_b) if cut_b else []]
    signed = np.r_[share, -share[cut]]
    # A gap's first ``delay`` seconds are the failover's own (a copy up would be active by then), the rest
    # is the time with no copy up; the two pieces' losses add up to the whole gap's (each arrival once).
    split, deadline, region = a[rows] + delay, b[rows], reg[rows]
    _gap_loss(fleet, starts_x, np.minimum(ends_x, split), deadline, signed, region, by[2])
    _gap_loss(fleet, np.maximum(starts_x, split), ends_x, deadline, signed, region, by[3])


def _unrouted(fleet: Fleet, outages: Outages, dc_delay: float, horizon: float,
              out: np.ndarray) -> list[list[tuple[float, float]]]:
    """Regions sent to a dark datacenter until the traffic manager moves them: their loss into ``out``;
    returns each region's spans sent there.

    The traffic manager sees an outage at its first sweep from its start and moves the region
    ``datacenter_delay`` later (both on its 5-second sweeps); it moves the region back as long after the
    datacenter returns. An outage that starts while the region is still elsewhere costs it nothing.
    """
    cluster = fleet.cluster
    R = fleet.rate.shape[1]
    spans: list[list[tuple[float, float]]] = [[] for _ in range(R)]
    away_until = [0.0] * R  # the region is sent elsewhere until then (its datacenter's last outage)
    moving = math.ceil(dc_delay / _SWEEP - 1e-9) * _SWEEP
    order = np.argsort(outages.dc_start, kind="stable")
    for i in order.tolist():
        dc, a, b = int(outages.dc[i]), float(outages.dc_start[i]), float(outages.dc_end[i])
        moved = math.ceil(a / _SWEEP - 1e-9) * _SWEEP + moving
        back = math.ceil(b / _SWEEP - 1e-9) * _SWEEP + moving
        for r, prefs in enumerate(cluster.region_preference):
            if not prefs or prefs[0] != dc:
                continue
            elsewhere = len(prefs) >= 2
            if elsewhere and a < away_until[r]:  # not back yet from the last outage: it is elsewhere
                away_until[r] = max(away_until[r], back)
                continue
            stop = min(b, moved if elsewhere else b, horizon)
            if stop > a:
                spans[r].append((a, stop))
            if elsewhere:
                away_until[r] = max(away_until[r], back) if stop >= moved else away_until[r]
    for r in range(R):
        if spans[r]:
            a_, b_ = np.array([s[0] for s in spans[r]]), np.array([s[1] for s in spans[r]])
            _gap_loss(fleet, a_, b_, b_, np.ones(a_.size), np.full(a_.size, r), out)
    return spans
