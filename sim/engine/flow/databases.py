"""Where each region's tries go: (region, server) pairs, and the databases that point at them.

A region's first attempts are spread over the mailbox servers holding the active copies of its databases
(its databases weigh the same); a region without databases sends its tries to its datacenters' servers
directly (the picked server does the mailbox work). *A retry goes to the same database*: the client
retries pending per region are kept where their failures happened, and move with the databases when
their active copies fail over (``Cluster.active_log``), so a retry does not escape an unavailable
database with the probability of a fresh request.
"""

from __future__ import annotations

import numpy as np

from sim.cluster import Cluster
from sim.engine.flow.arrays import TINY

__all__ = ["BinSums", "Pairs"]


class BinSums:
    """Sums of weights per bin, as ``np.bincount(bins, weights, minlength=n)``. Where the bins come in a few
    long runs (the support region by region, the groups of live pairs), each run is summed at once
    (``np.add.reduceat``, ten times faster than a bincount over 100,000 entries, and pairwise, so no less
    exact) and the runs' sums are added per bin.
    """

    def __init__(self, bins: np.ndarray, n: int):
        self.n = n
        self.bins, self.starts = bins, None
        if bins.size:
            starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
            if starts.size * 16 <= bins.size:
                self.starts, self.run_bins = starts, bins[starts]

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        """The sums of ``weights`` (one per entry) per bin."""
        if self.starts is None:
            return np.bincount(self.bins, weights=weights, minlength=self.n)
        return np.bincount(self.run_bins, weights=np.add.reduceat(weights, self.starts), minlength=self.n)


class Pairs:
    """The entries a region's tries go to, and per entry where first attempts and pending retries are.

    Entries: (region, server) pairs, one per server that can hold the active copy of one of the region's
    databases (or, for a region without databases, every server of its datacenters), then one "database
    unavailable" entry per region. Per entry: the share of the region's first attempts that go there
    (``prior``) and the client retries pending there (``posterior``). A step looks only at the support
    (``sup``): the pairs that have held a database's active copy (only they can carry first attempts or
    pending retries), a region's own pairs, and the unavailable entries. Retries are pending only there,
    so ``posterior`` is kept per entry of the support (``at_sup`` maps an entry to its place there, -1
    outside); so is ``spread``, where the retries due in the current step go.
    """

    def __init__(self, cluster: Cluster):
        n_regions, n = len(cluster.region_ids), len(cluster.servers)
        self.n_regions = n_regions
        pair_region: list[int] = []
        pair_server: list[int] = []
        self.own = np.zeros(n_regions, dtype=bool)  # the region has no databases: its tries go to the pool
        self.region_dbs: list[np.ndarray] = []
        for r, dbs in enumerate(cluster.region_databases):
            if dbs:
                holders = sorted({s for db in dbs for s in cluster.copies[db]})
            else:
                self.own[r] = True
                holders = sorted({s for dc in cluster.region_preference[r] for s in cluster.servers_of_dc[dc]})
            pair_region += [r] * len(holders)
            pair_server += holders
            self.region_dbs.append(np.array(dbs, dtype=np.int64))
        self.pair_region = np.array(pair_region, dtype=np.int64)
        self.pair_server = np.array(pair_server, dtype=np.int64)
        P = self.n_pairs = len(pair_server)
        self.entry_region = np.concatenate([self.pair_region, np.arange(n_regions)])
        self.entry_own = self.own[self.entry_region]
        self.any_own = bool(self.own.any())  # (as a rule no region is without databases)
        self.prior = np.zeros(P + n_regions)
        self.posterior = np.zeros(0)  # per entry of the support (``_support``)
        self.sup = np.zeros(0, dtype=np.int64)
        self.in_sup = np.zeros(P + n_regions, dtype=bool)
        self.in_sup[P:] = True
        self.in_sup[:P] = self.own[self.pair_region]
        self._prior_sup: np.ndarray | None = None  # ``prior`` over the support, while neither changes
        self._support()
        self.db_entry: np.ndarray | None = None  # per database of every region (concatenated): its entry
        all_dbs = [d for d in self.region_dbs if d.size]
        self.all_dbs = np.concatenate(all_dbs) if all_dbs else np.zeros(0, np.int64)
        self.all_db_region = np.concatenate([np.full(d.size, r) for r, d in enumerate(self.region_dbs) if d.size]) \
            if all_dbs else np.zeros(0, np.int64)
        self.region_db_weight = np.array([1.0 / d.size if d.size else 0.0 for d in self.region_dbs])
        self.entry_of = np.full((n_regions, n), -1, dtype=np.int64)  # (region, server) -> its entry
        self.entry_of[self.pair_region, self.pair_server] = np.arange(P)
        self.db_count = np.zeros(P + n_regions, dtype=np.int64)  # databases pointing at each entry
        self.db_order = np.argsort(self.all_dbs, kind="stable")  # where each database sits in all_dbs
        self.db_start = np.searchsorted(self.all_dbs[self.db_order], np.arange(len(cluster.active) + 1))
        self._log_read = 0

    def _support(self) -> None:
        """Take the support from ``in_sup`` (it only grows), and lay the pending retries out over it."""
        entries = self.in_sup.size
        if self.posterior.size:
            held = np.zeros(entries)
            held[self.sup] = self.posterior
        self.sup = np.flatnonzero(self.in_sup)  # pairs first (sorted), then the R unavailable entries
        self.posterior = held[self.sup] if self.posterior.size else np.zeros(self.sup.size)
        self.at_sup = np.full(entries, -1, dtype=np.int64)
        self.at_sup[self.sup] = np.arange(self.sup.size)
        self.sup_pairs = self.sup.size - self.n_regions
        self.sup_region = self.entry_region[self.sup]
        self.by_region = BinSums(self.sup_region, self.n_regions)  # sums per region of values per entry
        er = self.sup_region  # (region by region, then the unavailable entries: a few runs of one region)
        starts = np.flatnonzero(np.concatenate(([True], er[1:] != er[:-1])))
        self._runs = (er[starts], np.diff(np.append(starts, er.size))) if starts.size * 16 <= er.size else None
        self.sup_own = self.entry_own[self.sup]
        self._prior_sup = None
        self.spread = self.prior_sup()  # where the retries due in the step go, per entry of sup

    def each_entry(self, per_region: np.ndarray) -> np.ndarray:
        """Values per region handed to each entry of the support (``per_region.take(sup_region)``; by runs of
        one region when they are few, as a rule: a repeat costs less than a gather).
        """
        if self._runs is None:
            return per_region.take(self.sup_region)
        region, length = self._runs
        return per_region.take(region).repeat(length)

    def prior_sup(self) -> np.ndarray:
        """``prior`` over the support (kept until either changes; read it, never write it)."""
        if self._prior_sup is None:
            self._prior_sup = self.prior[self.sup]
        return self._prior_sup

    # ------------------------------------------------------------------------------ databases move

    def follow(self, cluster: Cluster) -> None:
        """Point the databases at their active copies, if any moved since the last call (or on the first)."""
        if (self.db_entry is None or len(cluster.active_log) != self._log_read) and self.all_dbs.size:
            self._move(cluster)

    def _move(self, cluster: Cluster) -> None:
        """Point the databases whose active copy moved since the last call (``Cluster.active_log``) at
        their new entries: first attempts follow them (``prior``), and so do the client retries pending
        for them (``posterior``: an entry's pending retries are split evenly over its databases). An entry
        that no database pointed at before joins the support.
        """
        log = cluster.active_log
        if self.db_entry is None:
            at = np.arange(self.all_dbs.size)
        else:
            changed = np.unique(np.array(log[self._log_read:], dtype=np.int64))
            lo, hi = self.db_start[changed], self.db_start[changed + 1]
            at = self.db_order[np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(),
                                                                                strict=True)])] \
                if changed.size else np.zeros(0, np.int64)
        self._log_read = len(log)
        if not at.size:
            return
        region = self.all_db_region[at]
        act = np.array(cluster.active, dtype=np.int64)[self.all_dbs[at]] if self.db_entry is None \
            else np.array([cluster.active[d] for d in self.all_dbs[at].tolist()], dtype=np.int64)
        entry = np.where(act >= 0, self.entry_of[region, np.maximum(act, 0)], -1)
        entry = np.where(entry >= 0, entry, self.n_pairs + region)  # no active copy: unavailable
        if self.db_entry is None:
            self.db_entry = entry
        else:
            old = self.db_entry[at]
            moving = old != entry
            at, old, entry = at[moving], old[moving], entry[moving]
            if not at.size:
                return
            grew = self._join(entry)  # (first: the pending retries follow their databases there)
            post = self.posterior
            if post[~self.sup_own].any():  # pending retries move with databases
                was, now = self.at_sup[old], self.at_sup[entry]
                per_db = post[was] / np.maximum(self.db_count[old], 1)
                np.subtract.at(post, was, per_db)
                np.add.at(post, now, per_db)
                np.maximum(post, 0.0, out=post)
            np.subtract.at(self.db_count, old, 1)
            self.db_entry[at] = entry
        np.add.at(self.db_count, entry, 1)
        # A region's databases weigh the same: an entry's share of first attempts is count x weight.
        self.prior = np.where(self.entry_own, self.prior, self.db_count * self.region_db_weight[self.entry_region])
        self._prior_sup = None
        if self._join(entry) or grew:  # a new support: the retries due go as first attempts (until taken again)
            self.spread = self.prior_sup()

    def _join(self, entry: np.ndarray) -> bool:
        """The ``entry`` not in the support yet join it. Returns whether any did."""
        if self.in_sup[entry].all():
            return False
        self.in_sup[entry] = True
        self._support()
        return True

    # ------------------------------------------------------------------------------ retries come and go

    def retries_leave(self, due: np.ndarray) -> None:
        """``due`` client retries per region come due in this step: they leave the pending ones from where
        they are pending, and go there (``spread``; as first attempts would where none is pending).
        """
        post = self.posterior
        held = self.by_region(post)
        share = np.where(held > 0, due / np.maximum(held, TINY), 0.0)
        has = held > 0
        spread = post / self.each_entry(np.maximum(held, TINY))
        self.spread = spread if np.logical_and.reduce(has) else np.where(self.each_entry(has), spread, self.prior_sup())
        self.posterior = post * self.each_entry(np.maximum(0.0, 1.0 - share))

    def no_retries_due(self) -> None:
        """No client retry comes due in this step: ``spread`` is that of first attempts."""
        self.spread = self.prior_sup()

    def retries_wait(self, fails: np.ndarray, retried: np.ndarray) -> None:
        """The step's failures (``fails`` per entry of the support) that its clients retry (``retried`` per
        region, spread over the region's failures) wait where they failed.
        """
        failed = self.by_region(fails)
        keep = np.where(failed > 0, retried / np.maximum(failed, TINY), 0.0)
        self.posterior += fails * self.each_entry(keep)

    def pool_shares(self, route: np.ndarray, dc_of: np.ndarray, pool_weight: np.ndarray) -> None:
        """Regions without databases: their first attempts go to the servers of the datacenter they are
        routed to, as the pool's weights say (``prior`` of their own pairs).
        """
        own_p = self.entry_own[:self.n_pairs]
        sp_ = self.pair_server[own_p]
        in_dc = dc_of[sp_] == route[self.pair_region[own_p]]
        self.prior[:self.n_pairs][own_p] = np.where(in_dc, pool_weight[sp_], 0.0)
        self._prior_sup = None
