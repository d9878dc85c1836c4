"""Where a load balancer's retry goes: to a server it has not tried, in the rows of the tries stage.

A retry goes to another server. Where there are databases that changes only the front end (the pool's
average already): the mailbox server is the database's, the row's, so every retry stays in its row. In a
region without databases a row is a class of the pool's servers, so a retry leaves it: the balancer
spreads it as it spreads first tries, over the servers it has not tried (:func:`retry_spread`). The tries
stage (:mod:`sim.engine.flow.tries`) applies the spread to each round of retries.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.engine.flow.arrays import TINY

__all__ = ["Spread", "retry_spread"]

Spread = Callable[[np.ndarray, int], np.ndarray]
"""``spread(x, tried)``: the retries per row (``[type, row]`` or one row), each having had ``tried`` tries,
moved to the rows they land in."""


def retry_spread(region: np.ndarray, own: np.ndarray, weights: np.ndarray, inv: np.ndarray, ok: np.ndarray,
                 error: np.ndarray, regions: int,
                 sums: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> Spread | None:
    """Where the load balancer's retries go (None where every retry stays in its row), over the rows of
    pairs: per row its ``region``, whether the region has no databases (``own``: the pool's servers do
    the mailbox work), its tries (``weights``) and a try's chances of success and error (``ok``,
    ``error``: [type, row] or per row); ``inv`` gives each live pair's row (a row of ``m`` of them
    stands for ``m`` servers), ``sums`` adds values up by index (``sums(index, weights, n)`` per row of
    ``weights``) over ``regions`` regions.

    The rows of a region whose tries fare alike (the same chances: one class of servers, or servers
    alike below the size where classes are lumped) are one group; taking the ``k`` servers tried to be
    of the group (as they are where one class of servers fails), a group of ``m`` servers carrying
    ``W_g`` of its region's ``W`` tries sends a retry to a row ``r'`` carrying ``W_r'`` with the chance
    ``(W_r' - [r' in g] k W_r' / m) / (W - k W_g / m)``. (Before, the retries of a class of crashed
    servers went back to it.)

    A region without databases whose pool is a crashed server (row 0) and three running ones (row 1, one
    class): a retry of the crashed server goes to the running ones, and of the retries of the running ones
    a third goes to the crashed server (one of the three servers not tried).

    >>> sums = lambda index, weights, n: np.bincount(index, weights=weights, minlength=n)
    >>> spread = retry_spread(region=np.array([0, 0]), own=np.array([True, True]), weights=np.array([1.0, 3.0]),
    ...                       inv=np.array([0, 1, 1, 1]), ok=np.array([0.0, 0.9]), error=np.array([1.0, 0.05]),
    ...                       regions=1, sums=sums)
    >>> spread(np.array([1.0, 0.0]), 1).tolist(), spread(np.array([0.0, 0.3]), 1).round(6).tolist()
    ([0.0, 1.0], [0.1, 0.2])
    """
    P, R = own.size, regions
    if not own.any():
        return None
    pool = np.where(own, weights, 0.0)  # W_r
    total = np.bincount(region, weights=pool, minlength=R)[region]  # W
    alike = np.vstack([region, ok.reshape(-1, P), error.reshape(-1, P)])
    _, group = np.unique(alike, axis=1, return_inverse=True)
    group = group.reshape(-1)
    groups = int(group.max()) + 1
    in_group = np.bincount(group, weights=pool, minlength=groups)  # W_g
    servers = np.bincount(group, weights=np.bincount(inv, minlength=P) * own, minlength=groups)  # m
    each = (in_group / np.maximum(servers, 1.0))[group]  # W_g / m, per row
    in_group = in_group[group]
    share = np.where(in_group > 0, pool / np.maximum(in_group, TINY), 0.0)  # W_r' / W_g

    def spread(x: np.ndarray, tried: int) -> np.ndarray:
        away = np.minimum(tried * each, in_group)  # the tried servers' share of the tries
        rest = total - away
        moves = own & (rest > 1e-9 * total)  # (not a pool of one server, or of servers all tried)
        frac = np.where(moves, x[..., :P] / np.maximum(rest, TINY), 0.0)
        into = sums(region, frac, R)[..., region] * pool - sums(group, frac * away, groups)[..., group] * share
        out = x.copy()
        out[..., :P] = np.where(moves, into, x[..., :P])
        return out

    return spread
