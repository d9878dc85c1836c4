"""The load balancers' retries within a step (flow engine): what the tries of a step become once each failed
try has been retried on another server, within the retries, the budget and the client's deadline.

A try that failed with an error is retried at once (or after the load balancer's backoff); one that timed out
took the try timeout ``tt`` first. So the tries of a row are grouped by how many of their request's tries timed
out so far (``j``) and how many backoffs they waited (``k``); a group reaches the deadline when ``j`` timeouts and
``k`` backoffs pass the client's timeout (:class:`~sim.policies.BackoffSums` gives the backoffs' sums' law). A
retry lands in the row its server's database or pool gives (``elsewhere``: :func:`~sim.engine.flow.elsewhere.
retry_spread`); with retry budgets the request types take their turns, a budget letting through what the types
before left it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from sim.engine.flow.arrays import some
from sim.engine.flow.elsewhere import Spread
from sim.policies import BackoffSums, Budget
from sim.scenario import LoadBalancerPolicy

__all__ = ["Balanced", "Kept", "LoadBalancerTries"]

Kept = Callable[[float], np.ndarray]
"""Of a try's chance of success ([type, row]), the share left when the client's deadline cuts its time by a
number of seconds (``Tries._in_time``)."""


class Balanced(NamedTuple):
    """Per row, the load balancers' tries of one request type (their retries resolved) and outcomes."""

    tries: np.ndarray
    ok: np.ndarray
    error: np.ndarray
    timeout: np.ndarray
    elapsed: np.ndarray  # mass x time of the earlier tries of the successes
    later: dict[tuple[int, int], np.ndarray]  # (j, k): the tries sent after j timeouts and k backoffs (k >= 1)


class LoadBalancerTries:
    """The load balancers' policy (``lb``), the client's ``timeout``, the law of the backoffs' sums (``sums``;
    None: no backoff), the retry ``budgets`` per datacenter, whether tries sent after a backoff bring their load
    later (``later``, :mod:`sim.engine.flow.deferrals`), and how values per row are summed into bins (``bins``).
    """

    def __init__(self, lb: LoadBalancerPolicy, timeout: float, sums: BackoffSums | None, budgets: list[Budget | None],
                 later: bool, bins: Callable[[np.ndarray, np.ndarray, int], np.ndarray], regions: int, dcs: int):
        self.lb, self.timeout, self.sums, self.budgets = lb, timeout, sums, budgets
        self.later, self.bins, self.regions, self.dcs = later, bins, regions, dcs

    def resolve(self, p_s: np.ndarray, p_e: np.ndarray, p_t: np.ndarray, tries0: np.ndarray, tt: float, h: float,
                region: np.ndarray, dc: np.ndarray, total: np.ndarray, elsewhere: Spread | None,
                kept: Kept | None) -> Balanced:
        """The load balancers' tries of the request types [type, row] (``tries0`` first tries, each a success,
        an error or a timeout with the chances ``p_s``, ``p_e``, ``p_t``; per row its ``region`` and the
        datacenter ``dc`` it is routed to), each taking ``tt`` to time out, in a step of ``h``: their outcomes,
        and the retries added per region to ``total``. ``elsewhere`` moves the retries to the rows they land in;
        ``kept`` (with backoffs) gives the share of a try's chance of success left when the deadline cuts its
        time.
        """
        if any(bud is not None for bud in self.budgets):
            each = [self._one(p_s[i], p_e[i], p_t[i], tries0[i], tt, h, region, dc, total, elsewhere,
                              None if kept is None else _kind(kept, i))
                    for i in range(tries0.shape[0])]
            later = {key: np.stack([b.later.get(key, np.zeros(tries0.shape[1])) for b in each])
                     for key in sorted(set().union(*(b.later for b in each)))}
            tries, ok, error, timeout, elapsed = (np.stack(x) for x in zip(*(b[:5] for b in each), strict=True))
            return Balanced(tries, ok, error, timeout, elapsed, later)
        return self._one(p_s, p_e, p_t, tries0, tt, h, region, dc, total, elsewhere, kept)

    def _one(self, p_s: np.ndarray, p_e: np.ndarray, p_t: np.ndarray, tries0: np.ndarray, tt: float, h: float,
             reg: np.ndarray, d_e: np.ndarray, total: np.ndarray, elsewhere: Spread | None = None,
             kept: Kept | None = None) -> Balanced:
        """:meth:`resolve` for tries of one request type per row (with the chances ``p_s``, ``p_e``, ``p_t``),
        or of every type at once ([type, row]) where no budget holds them back.
        """
        lb, T = self.lb, self.timeout
        R, D = self.regions, self.dcs
        shape = tries0.shape
        budget_dc = self.budgets
        budgeted = any(bud is not None for bud in budget_dc)
        if budgeted:
            firsts = np.bincount(np.maximum(d_e, 0), weights=tries0 * (d_e >= 0), minlength=D)
            for d, bud in enumerate(budget_dc):
                if bud is not None:
                    bud.fill(float(firsts[d]), h)
        state = {0: tries0}
        n_tries = np.zeros(shape)
        s_tot, e_tot, t_tot, elapsed = (np.zeros(shape) for _ in range(4))
        lb_retries = []  # per round: the retries per [type, region]
        sums = self.sums
        later: dict[tuple[int, int], np.ndarray] = {}
        for k in range(lb.retries + 1):
            nxt: dict[int, np.ndarray] = {}
            # State (j, k): tries after j earlier ones timed out (each took tt) and k backoffs, which (with
            # backoffs) ended before the deadline less the j timeouts: sums.cdf(k, room) of them did.
            for j, mj in state.items():
                n_tries += mj
                if k and self.later:  # sent j tt + B_k after the first try: its load then
                    later[(j, k)] = mj
                ok_m = mj * p_s
                if sums is not None and kept is not None and k:  # a try that starts near the deadline
                    lost = self._cut(sums, k, T - j * tt, tt, kept)  # succeeds only within the time left:
                    if lost is not None:  # the answers that come later are the client's timeouts
                        lost = ok_m * lost
                        ok_m = ok_m - lost
                        t_tot += lost
                s_tot += ok_m
                if j:
                    elapsed += ok_m * j * tt
                err_m, to_m = mj * p_e, mj * p_t
                if sums is None:
                    if (j + 1) * tt >= T - 1e-9:  # this try ran into the client's deadline
                        t_tot += to_m
                        to_m = np.zeros(shape)
                else:
                    room, room_t = T - j * tt, T - (j + 1) * tt
                    reached, below_t = sums.cdf(k, room), sums.cdf(k, room_t)
                    if k:
                        elapsed += ok_m * sums.mean_below(k, room)
                    in_time = below_t / reached if reached > 0 else 0.0  # the rest ran into it
                    t_tot += to_m * (1.0 - in_time)
                    to_m = to_m * in_time
                retry = err_m + to_m
                if k < lb.retries and some(retry):
                    if sums is not None:  # a retry whose backoff would end past the deadline is not sent: an error
                        err_m = err_m * (sums.cdf(k + 1, room) / reached if reached > 0 else 0.0)
                        to_m = to_m * (sums.cdf(k + 1, room_t) / below_t if below_t > 0 else 0.0)
                        e_tot += retry - err_m - to_m
                        retry = err_m + to_m
                    if budgeted:
                        want = np.bincount(np.maximum(d_e, 0), weights=retry * (d_e >= 0), minlength=D)
                        share_dc = np.array([bud.allow(float(want[d])) if bud is not None else 1.0
                                             for d, bud in enumerate(budget_dc)])
                        allowed = share_dc[np.maximum(d_e, 0)]
                        lb_retries.append(self.bins(reg, retry * allowed, R))
                        e_tot += retry * (1.0 - allowed)
                        err_m, to_m = err_m * allowed, to_m * allowed
                    else:  # every retry allowed (x * 1.0 is x, and none given up)
                        lb_retries.append(self.bins(reg, retry, R))
                    if elsewhere is not None:  # (each has had k + 1 tries)
                        err_m, to_m = elsewhere(err_m, k + 1), elsewhere(to_m, k + 1)
                    nxt[j] = nxt.get(j, 0.0) + err_m
                    nxt[j + 1] = nxt.get(j + 1, 0.0) + to_m
                else:
                    e_tot += retry
            state = nxt
        if lb_retries:  # (added type by type, each round in turn, as the types taking turns would)
            for added in np.stack(lb_retries, axis=-2).reshape(-1, R):
                total += added
        return Balanced(n_tries, s_tot, e_tot, t_tot, elapsed, later)

    _CUTS = 4  # parts of the last try timeout before the deadline, by the midpoint rule

    @classmethod
    def _cut(cls, sums: BackoffSums, k: int, room: float, tt: float,
             kept: Kept) -> np.ndarray | None:
        """Of the successes of tries sent after ``k`` backoffs that ended before ``room`` (the deadline less
        the tries timed out before), the share lost because the try started less than ``tt`` before the
        deadline: its answer must come within the time left, ``room - B_k`` (None: no try starts that late).
        """
        reached = sums.cdf(k, room)
        start = max(room - tt, 0.0)
        if reached <= 0.0 or sums.cdf(k, start) >= reached:
            return None
        edges = start + (room - start) * np.arange(cls._CUTS + 1) / cls._CUTS
        below = np.array([sums.cdf(k, float(x)) for x in edges])
        lost = 0.0
        for i in range(cls._CUTS):
            share = (below[i + 1] - below[i]) / reached
            if share > 0.0:  # cut by how far past ``room - tt`` it started
                lost = lost + share * (1.0 - kept(float((edges[i] + edges[i + 1]) / 2 - (room - tt))))
        return lost if isinstance(lost, np.ndarray) else None


def _kind(kept: Kept, i: int) -> Kept:
    """``kept`` for the ``i``-th request type alone."""
    return lambda cut: kept(cut)[i]
