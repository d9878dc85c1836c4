"""Queueing formulas of load-balanced pools: the wait at a server of a pool of ``n`` servers with ``c``
workers each, exponential service, Poisson arrivals to the pool, as the balancer spreads them.

- :func:`erlang_arrivals` — round robin: a server sees every ``n``-th arrival, so Erlang-``n``
  interarrival times: E_n/M/c, solved exactly as GI/M/c (Takács; Gross & Harris, *Fundamentals of
  Queueing Theory*, GI/M/c).
- :func:`shortest_queue` — join the shortest queue (``least_outstanding``): the pool's own Markov
  chain, solved numerically (:class:`PoolChain`).
- :func:`two_choices` — the shorter of two servers drawn at random (``power_of_two``): the mean field's
  fixed point with its 1/n correction (the refined mean field of Gast & Van Houdt, "A refined mean field
  approximation", SIGMETRICS 2018), fitted through the exact pools of one, two and three servers.

Each returns, per utilisation ``rho`` (an array, below 1), the probability that an arrival waits and the
rate of its wait in services (per mean service time): the mean wait is ``wait_p / rate`` mean services.
The wait of those who wait is exponential for round robin; for the others it is a mixture of Erlangs, and
the rate gives its mean. Pools of given ``n`` and ``c`` are tabulated on a grid of utilisations, once
(round robin) or point by point as the utilisations come up (the chains): a call costs a few
interpolations.

>>> p, rate = erlang_arrivals(np.array([0.9]), 1, 2)  # E_1/M/2 is M/M/2: Erlang C 0.8526, rate 0.2
>>> round(float(p[0]), 4), round(float(rate[0]), 4)
(0.8526, 0.2)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

from sim.queueing import CAP, erlang

__all__ = ["erlang_arrivals", "shortest_queue", "two_choices", "PoolChain", "refined_mean_field", "EXACT_POOL"]

_TINY = 1e-300
_GRID = 4000  # utilisations tabulated for round robin, from 0 to CAP

EXACT_POOL = 32
"""The largest pool :func:`shortest_queue` solves as a chain; larger pools are read from it (see there)."""


def _mmc(rho: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """M/M/c: (Erlang C, rate of the wait ``c (1 - rho)`` per mean service)."""
    _, wait_p = erlang(np.full(rho.shape, c, dtype=np.int64), c * rho)
    return np.where(rho > 0, wait_p, 0.0), c * (1.0 - rho)


# ------------------------------------------------------------------------------ round robin: E_n/M/c


def _takacs(rho: np.ndarray, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """E_n/M/c at utilisations ``rho`` (0 < rho < 1), service rate 1: (P(wait), 1 - sigma).

    With interarrival transform ``A(s) = (1 + s / (n a))^-n`` (``a = c rho`` arrivals per mean service),
    sigma is the root in (0, 1) of ``sigma = A(c (1 - sigma))``; an arrival finds ``j >= c`` in the system
    with probability ``K sigma^(j - c)`` and waits ``Exp(c (1 - sigma))``. Takács's boundary sum gives
    ``P(wait) = K / (1 - sigma) = 1 / (1 + (1 - sigma) sum_j binom(c, j) h_j / (C_j (1 - b_j)))`` with
    ``b_j = A(j)``, ``C_j = prod_{i <= j} b_i / (1 - b_i)``, ``h_j = (c (1 - b_j) - j) / (c (1 - sigma) - j)``
    (every term positive; summed as logarithms, as ``C_j`` spans hundreds of orders of magnitude).
    """
    a = c * rho
    na = n * a

    def transform(s: np.ndarray) -> np.ndarray:
        return np.exp(-n * np.log1p(s / na))

    lo, hi = np.zeros(rho.shape), np.ones(rho.shape)
    for _ in range(64):
        mid = (lo + hi) / 2
        above = transform(c * (1.0 - mid)) > mid  # still left of the root
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    gap = 1.0 - (lo + hi) / 2  # 1 - sigma
    terms = []
    log_c = np.zeros(rho.shape)
    for j in range(1, c + 1):
        log_b = -n * np.log1p(j / na)
        log_1mb = np.log1p(-np.exp(log_b))
        log_c = log_c + log_b - log_1mb
        num = c * -np.expm1(log_b) - j
        den = c * gap - j
        near = np.abs(den) < 1e-9 * c
        slope = 1.0 - (c / a) * np.exp(-(n + 1) * np.log1p(c * gap / na))  # -h'(c (1 - sigma)), at 0/0
        ratio = np.where(near, slope, num / np.where(near, 1.0, den))
        binom = math.lgamma(c + 1) - math.lgamma(j + 1) - math.lgamma(c - j + 1)
        terms.append(binom - log_c - log_1mb + np.log(np.maximum(ratio, _TINY)))
    log_sum = np.logaddexp.reduce(np.stack(terms), axis=0)
    return np.exp(-np.logaddexp(0.0, np.log(gap) + log_sum)), gap


@lru_cache(maxsize=256)
def _erlang_table(n: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_takacs` on a grid of utilisations: (grid, log P(wait), 1 - sigma)."""
    grid = np.linspace(0.0, CAP, _GRID + 1)
    wait_p, gap = np.zeros(grid.size), np.ones(grid.size)
    wait_p[1:], gap[1:] = _takacs(grid[1:], n, c)
    with np.errstate(divide="ignore"):
        return grid, np.maximum(np.log(wait_p), -745.0), gap


def erlang_arrivals(rho: np.ndarray, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """A server of ``c`` workers whose arrivals are every ``n``-th of a Poisson stream (round robin over
    ``n`` servers; Erlang-``n`` interarrival times), at utilisation ``rho`` (capped at :data:`CAP`):
    (P(an arrival waits), rate of its exponential wait per mean service, ``c (1 - sigma)``). Exact:
    E_n/M/c is GI/M/c (see :func:`_takacs`); ``n = 1`` is M/M/c, and as ``n`` grows it tends to D/M/c.

    >>> p, rate = erlang_arrivals(np.array([0.9]), 4, 2)  # a pool of 4 servers x 2 workers
    >>> round(float(p[0]), 4), round(float(p[0] / rate[0]), 4)  # the mean wait: 2.51 services
    (0.7864, 2.5097)
    """
    rho = np.minimum(np.asarray(rho, dtype=float), CAP)
    grid, log_p, gap = _erlang_table(int(n), int(c))
    wait_p = np.where(rho > 0, np.exp(np.interp(rho, grid, log_p)), 0.0)
    return wait_p, c * np.interp(rho, grid, gap)


# ------------------------------------------------------------------------------ the pool's chain


def _compositions(n: int, spread: int) -> np.ndarray:
    """Every ``(k_0, ..., k_spread)`` of non-negative counts adding up to ``n`` with ``k_0 >= 1``."""
    rows = []
    for bars in combinations(range(n - 1 + spread), spread):  # stars and bars over the n - 1 others
        edges = (-1, *bars, n - 1 + spread)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(spread + 1)])
    counts = np.array(rows, dtype=np.int64).reshape(-1, spread + 1)
    counts[:, 0] += 1
    return counts


def _shapes(n: int, spread: int, deep: int) -> np.ndarray:
    """The shapes a pool may take: servers counted by their queue above the shortest one, at most
    ``spread`` above it, and at most ``deep`` servers below the three highest levels occupied.
    """
    counts = _compositions(n, spread)
    top = spread - np.argmax(counts[:, ::-1] > 0, axis=1)
    below = np.where(np.arange(spread + 1)[None, :] < (top - 2)[:, None], counts, 0).sum(axis=1)
    return counts[below <= deep]


def _shape_limits(n: int, route: str) -> tuple[int, int]:
    """(spread, deep) of the chain of a pool of ``n``: every shape of a small pool up to a spread that
    holds all but about 1e-5 of it at utilisation 0.95; in a large one, the shortest queue keeps the
    servers within three levels but for a few (more shapes change P(wait) and the mean wait by < 0.2% at
    utilisation 0.95, ``tests/test_balancing.py``). Two choices spread a small pool further.
    """
    if route == "two":
        if n not in (2, 3):
            raise ValueError(f"two choices are solved as a chain for pools of 2 or 3 servers, not {n}")
        return {2: 30, 3: 15}[n], n - 1
    if n <= 11:
        spread = {2: 30, 3: 12, 4: 8, 5: 6, 6: 6}.get(n, 5)
        return spread, min(n - 1, 3)
    return 3, 2


class PoolChain:
    """The Markov chain of a pool of ``n`` servers of ``c`` workers (exponential service, rate 1 per
    worker) where each arrival joins the shortest queue (``route="shortest"``) or the shorter of two
    servers drawn at random with replacement (``route="two"``; ties to the first drawn).

    A state is the pool's sorted queue lengths: the level ``N`` (requests in the pool) and a *shape*, the
    count of servers at each queue length above the shortest (:func:`_shapes` keeps the shapes that carry
    the pool; a departure that would leave them is taken from a server at the top instead). Arrivals
    raise ``N`` by one and departures lower it by one, so the generator is block tridiagonal in ``N`` with
    blocks of a few dozen shapes, solved by linear level reduction: from the top down, the matrices
    ``G_N`` of where the pool first returns to ``N - 1`` (whose rows add up to 1: the diagonal of each
    block is taken from its off-diagonal rates, as in the GTH algorithm, so nothing cancels where the
    level drifts up), then the levels from the bottom up. Above ``n (c + spread)`` every worker is busy
    and the chain repeats every ``n`` levels with probabilities ``rho^n`` apart: it is solved six periods
    beyond, the last two are dropped (the truncation bends them) and the rest is summed in closed form.
    Below ``n c rho - 10 sqrt(n c rho)`` the levels carry nothing and are cut off.

    :meth:`solve` returns (P(an arrival waits), its mean wait in mean services). ``limits``: the shapes'
    (spread, deep) instead of :func:`_shape_limits`'s.
    """

    PERIODS = 6
    DROPPED = 2

    def __init__(self, n: int, c: int, route: str = "shortest", limits: tuple[int, int] | None = None):
        if route not in ("shortest", "two"):
            raise ValueError(f"route must be 'shortest' or 'two', not {route!r}")
        spread, deep = limits if limits is not None else _shape_limits(n, route)
        shapes = _shapes(n, spread, deep)
        count = len(shapes)
        base = (n + 1) ** np.arange(spread + 2, dtype=np.int64)
        codes = shapes @ base[:-1]
        order = np.argsort(codes)
        sorted_codes = codes[order]

        def find(counts: np.ndarray) -> np.ndarray:
            """Index of each shape (over levels 0..spread+1 above the shortest), -1 if not kept."""
            code = counts[:, : spread + 1] @ base[:-1]
            at = np.minimum(np.searchsorted(sorted_codes, code), count - 1)
            return np.where((sorted_codes[at] == code) & (counts[:, spread + 1] == 0), order[at], -1)

        top_level = n * (c + spread) + self.PERIODS * n
        lows = top_level // n
        low = np.repeat(np.arange(lows + 1), count)  # the shortest queue
        shape = np.tile(np.arange(count), lows + 1)
        level = n * low + (shapes @ np.arange(spread + 1))[shape]
        keep = level <= top_level
        low, shape, level = low[keep], shape[keep], level[keep]
        by_level = np.lexsort((shape, level))
        low, shape, level = low[by_level], shape[by_level], level[by_level]
        first = np.searchsorted(level, np.arange(top_level + 2))
        pos = np.arange(level.size) - first[level]
        state = -np.ones((lows + 2, count), dtype=np.int64)
        state[low, shape] = np.arange(level.size)

        counts = shapes[shape]
        rows = np.arange(level.size)
        wide = np.zeros((level.size, spread + 2), dtype=np.int64)

        def settle(moved: np.ndarray, lowest: np.ndarray) -> np.ndarray:
            """The state of counts ``moved`` over levels ``lowest``, ``lowest + 1``, ... (-1: not kept)."""
            moved, lowest = moved.copy(), lowest.copy()
            for _ in range(spread + 2):
                empty = moved[:, 0] == 0
                if not empty.any():
                    break
                moved[empty] = np.roll(moved[empty], -1, axis=1)
                lowest[empty] += 1
            found = find(moved)
            return np.where(found >= 0, state[np.maximum(lowest, 0), np.maximum(found, 0)], -1)

        # Arrivals: to level j above the shortest with probability share[:, j].
        if route == "shortest":
            share = np.zeros((level.size, spread + 1))
            share[:, 0] = 1.0
        else:
            at_least = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1] / n
            share = at_least**2 - np.concatenate([at_least[:, 1:], np.zeros((level.size, 1))], axis=1) ** 2
        queue = low[:, None] + np.arange(spread + 1)[None, :]
        self.arrival_waits = (share * (queue >= c)).sum(axis=1)
        self.arrival_ahead = (share * np.maximum(queue - c + 1, 0)).sum(axis=1)  # departures to wait for
        wide[:, : spread + 1] = counts
        wide[:, 0] -= 1
        wide[:, 1] += 1
        to_shortest = settle(wide, low)
        up_src, up_dst, up_p = [], [], []
        for j in range(spread + 1):
            live = (share[:, j] > 0) & (level < top_level)
            wide[:, : spread + 1] = counts
            wide[:, spread + 1] = 0
            wide[:, j] -= 1
            wide[:, j + 1] += 1
            dst = np.where(live, settle(wide, low), -1)
            dst = np.where(live & (dst < 0), to_shortest, dst)  # would spread too far: to the shortest
            up_src.append(rows[live])
            up_dst.append(dst[live])
            up_p.append(share[live, j])
        # Departures from level j above the shortest, at min(queue, c) per server there.
        top = spread - np.argmax(counts[:, ::-1] > 0, axis=1)
        wide[:, : spread + 1] = counts
        wide[:, spread + 1] = 0
        wide[rows, top] -= 1
        wide[rows, np.maximum(top - 1, 0)] += 1
        from_top = settle(wide, low)
        dn_src, dn_dst, dn_r = [], [], []
        for j in range(spread + 1):
            rate = counts[:, j] * np.minimum(low + j, c)
            live = rate > 0
            wide[:, 0] = 0
            wide[:, 1:] = counts
            wide[:, j + 1] -= 1
            wide[:, j] += 1
            dst = np.where(live, settle(wide, low - 1), -1)
            dst = np.where(live & (dst < 0), from_top, dst)
            dn_src.append(rows[live])
            dn_dst.append(dst[live])
            dn_r.append(rate[live])
        up = _Moves(np.concatenate(up_src), np.concatenate(up_dst), np.concatenate(up_p), level, pos)
        down = _Moves(np.concatenate(dn_src), np.concatenate(dn_dst), np.concatenate(dn_r), level, pos)
        if ((up.dst < 0).any() or (down.dst < 0).any() or (level[up.dst] != level[up.src] + 1).any()
                or (level[down.dst] != level[down.src] - 1).any()):
            raise AssertionError(f"pool chain n={n} c={c} {route}: a move leaves the states kept")
        self.n, self.c, self.route, self.top_level = n, c, route, top_level
        self.width = int(np.max(np.diff(first)))
        self.first, self.pos, self.up, self.down = first, pos, up, down
        self.leaving = np.bincount(down.src, weights=down.value, minlength=level.size)

    def _block(self, moves: _Moves, level: int) -> np.ndarray:
        """The moves out of ``level`` as a dense (width x width) block (row: from, column: to)."""
        block = np.zeros((self.width, self.width))
        at = slice(moves.start[level], moves.start[level + 1])
        np.add.at(block, (moves.src_pos[at], moves.dst_pos[at]), moves.value[at])
        return block

    def _vector(self, values: np.ndarray, level: int) -> np.ndarray:
        out = np.zeros(self.width)
        at = slice(self.first[level], self.first[level + 1])
        out[self.pos[at]] = values[at]
        return out

    def solve(self, rho: float) -> tuple[float, float]:
        """(P(an arrival waits), its mean wait in mean services) at utilisation ``0 < rho < 1``."""
        n, c, width = self.n, self.c, self.width
        lam = n * c * rho
        load = lam  # erlangs offered to the pool (service rate 1)
        bottom = max(0, int(load - 10.0 * math.sqrt(load)))
        top = self.top_level
        eye = np.eye(width)
        rates: dict[int, np.ndarray] = {}
        returns = np.zeros((width, width))
        sizes = np.diff(self.first)
        for level in range(top, bottom - 1, -1):
            valid = np.arange(width) < sizes[level]  # a level's states are its first positions
            leaving = self._vector(self.leaving, level) if level > bottom else np.zeros(width)
            if level < top:
                back = lam * (self._block(self.up, level) @ returns)  # flow up that comes back to this level
                off = back * (1.0 - eye)
                block = np.diag(leaving + off.sum(axis=1)) - off
            else:
                block = np.diag(leaving)
            block[~valid, ~valid] = 1.0
            if level == bottom:
                break
            inverse = np.linalg.inv(block)
            returns = inverse @ self._block(self.down, level)
            rates[level] = lam * self._block(self.up, level - 1) @ inverse
        # The bottom level's shares: the null vector of its censored generator (rows add up to 0).
        if valid.sum() == 1:
            start = valid.astype(float)
        else:
            system = block.copy()
            system[:, np.argmax(valid)] = valid
            rhs = np.zeros(width)
            rhs[np.argmax(valid)] = 1.0
            start = np.maximum(np.linalg.solve(system.T, rhs), 0.0) * valid
        used = top - self.DROPPED * n  # the levels read; above, the period below it repeats
        waits, ahead = np.zeros(used + 1), np.zeros(used + 1)
        log_mass = np.full(used + 1, -np.inf)
        shares, log_scale = start / start.sum(), 0.0
        for level in range(bottom, used + 1):
            if level > bottom:
                shares = shares @ rates[level]
                total = shares.sum()
                shares = shares / total
                log_scale += math.log(total)
            log_mass[level] = log_scale
            waits[level] = shares @ self._vector(self.arrival_waits, level)
            ahead[level] = shares @ self._vector(self.arrival_ahead, level)
        mass = np.exp(log_mass - log_mass.max())
        total, waited, queued = mass.sum(), (mass * waits).sum(), (mass * ahead).sum()
        period = rho**n
        last = slice(used - n + 1, used + 1)
        tail = mass[last] * period / (1.0 - period)
        total += tail.sum()
        waited += tail.sum()  # every worker busy up there
        queued += (tail * ahead[last]).sum() + (mass[last] * period / (1.0 - period) ** 2).sum()
        return waited / total, queued / total / c


@dataclass(frozen=True, slots=True)
class _Moves:
    """Transitions of a :class:`PoolChain` grouped by the level they leave: from state ``src`` to
    ``dst`` with probability or rate ``value``; ``start[N]:start[N + 1]`` are those leaving level ``N``.
    """

    src: np.ndarray
    dst: np.ndarray
    value: np.ndarray
    src_pos: np.ndarray
    dst_pos: np.ndarray
    start: np.ndarray

    def __init__(self, src: np.ndarray, dst: np.ndarray, value: np.ndarray, level: np.ndarray, pos: np.ndarray):
        order = np.argsort(level[src], kind="stable")
        src, dst, value = src[order], dst[order], value[order]
        object.__setattr__(self, "src", src)
        object.__setattr__(self, "dst", dst)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "src_pos", pos[src])
        object.__setattr__(self, "dst_pos", pos[dst])
        object.__setattr__(self, "start", np.searchsorted(level[src], np.arange(int(level.max()) + 2)))


# ------------------------------------------------------------------------------ grids of utilisations

_X_TOP = -math.log1p(-CAP)
_POINTS = 160
_STEP = _X_TOP / (_POINTS - 1)
"""The chains are solved at utilisations ``1 - exp(-x)`` for ``x`` evenly spaced up to :data:`CAP`
(about 0.012 apart at 0.5, 0.0025 at 0.9), and read between them linearly in ``x`` and in the
logarithms of P(wait) and of the mean wait, which are nearly straight there (a wait grows like
``1 / (1 - rho)``)."""


def _grid_rho(k: int) -> float:
    return -math.expm1(-k * _STEP)


class _Lazy:
    """P(wait) and the mean wait of one pool at the grid's utilisations, solved by ``point(k)`` the first
    time a utilisation in the cells beside point ``k`` comes up, and read between them (:meth:`read`).
    """

    __slots__ = ("point", "log_p", "log_w", "done")

    def __init__(self, point: Callable[[int], tuple[float, float]]):
        self.point = point
        self.log_p, self.log_w = np.zeros(_POINTS), np.zeros(_POINTS)
        self.done = np.zeros(_POINTS, dtype=bool)
        self.done[0] = True  # rho = 0: nobody waits (read linearly from there, not in logarithms)

    def read(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(wait), mean wait in mean services) at utilisations ``rho`` (clipped to [0, CAP])."""
        x = np.log1p(-np.clip(rho, 0.0, CAP)) * (-1.0 / _STEP)
        cell = np.minimum(x.astype(np.int64), _POINTS - 2)
        frac = x - cell
        above = cell + 1
        if not (self.done[cell].all() and self.done[above].all()):
            for k in np.unique(np.concatenate([cell, above])).tolist():
                if not self.done[k]:
                    p, w = self.point(k)
                    self.log_p[k], self.log_w[k] = math.log(max(p, _TINY)), math.log(max(w, _TINY))
                    self.done[k] = True
        lo_p, lo_w = self.log_p[cell], self.log_w[cell]
        wait_p = np.exp(lo_p + frac * (self.log_p[above] - lo_p))
        mean = np.exp(lo_w + frac * (self.log_w[above] - lo_w))
        first = cell == 0
        if first.any():
            wait_p[first] = frac[first] * math.exp(self.log_p[1])
            mean[first] = frac[first] * math.exp(self.log_w[1])
        return wait_p, mean


def _as_rate(wait_p: np.ndarray, mean: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(wait), the rate that gives ``mean``); where nobody waits (read as below 1e-290), any rate (``c``)."""
    waits = wait_p > 1e-290
    return np.where(waits, wait_p, 0.0), np.where(waits, wait_p / np.maximum(mean, _TINY), float(c))


@lru_cache(maxsize=64)
def _chain(n: int, c: int, route: str) -> PoolChain:
    return PoolChain(n, c, route)


def _shortest_point(n: int, c: int, k: int) -> tuple[float, float]:
    """The chain at grid point ``k``, unless one M/M/(n c) queue would hardly ever wait (below 1e-12):
    then nobody waits to speak of, and an arrival that does waits for one of its server's ``c`` workers.
    """
    rho = _grid_rho(k)
    pooled, _ = _mmc(np.array([rho]), n * c)
    if pooled[0] < 1e-12:
        return float(pooled[0]), float(pooled[0]) / c
    return _chain(n, c, "shortest").solve(rho)


@lru_cache(maxsize=256)
def _shortest_table(n: int, c: int) -> _Lazy:
    return _Lazy(lambda k: _shortest_point(n, c, k))


def shortest_queue(rho: np.ndarray, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """A pool of ``n`` servers of ``c`` workers where each arrival joins a server with the fewest
    requests (``least_outstanding``), at utilisation ``rho`` (capped at :data:`CAP`): (P(an arrival
    waits), the rate of its wait per mean service, so that ``wait_p / rate`` is its mean wait).

    Exact for pools up to :data:`EXACT_POOL` servers (:class:`PoolChain`; n = 1 is M/M/c). An arrival
    waits only when every worker of the pool is busy, as in one M/M/(n c) queue, but then it waits for
    its own server's workers only, and a worker may idle at another server meanwhile: so it waits less
    often than in M/M/(n c) and longer when it does. Larger pools are read from the chain of
    :data:`EXACT_POOL` servers at the utilisation with the same ``(1 - rho) sqrt(n c)`` (the Halfin–Whitt
    scaling, under which the waits of both change slowly); this overstates the wait by about 10-20% for
    a pool twice as large.

    >>> p, rate = shortest_queue(np.array([0.9]), 16, 1)  # M/M/16 would wait with P 0.590, 0.369 services
    >>> round(float(p[0]), 4), round(float(p[0] / rate[0]), 4)
    (0.4576, 0.578)
    """
    rho = np.minimum(np.asarray(rho, dtype=float), CAP)
    n, c = int(n), int(c)
    if n <= 1:
        return _mmc(rho, c)
    if n > EXACT_POOL:
        rho = np.maximum(1.0 - (1.0 - rho) * math.sqrt(n / EXACT_POOL), 0.0)
        n = EXACT_POOL
    return _as_rate(*_shortest_table(n, c).read(rho), c)


# ------------------------------------------------------------------------------ two choices


def _lyapunov(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The symmetric ``W`` with ``a W + W a' + q = 0`` (``a`` stable), by the squared Smith iteration."""
    size = a.shape[0]
    eye = np.eye(size)
    shift = math.sqrt(float(np.abs(np.diag(a)).max() * max(np.abs(np.diag(a)).min(), 1e-6)))
    left = np.linalg.inv(a - shift * eye)
    u = left @ (a + shift * eye)
    w = 2.0 * shift * left @ q @ left.T
    for _ in range(100):
        w = w + u @ w @ u.T
        u = u @ u
        if np.abs(u).max() < 1e-18:
            break
    return (w + w.T) / 2.0


def refined_mean_field(rho: float, c: int) -> tuple[float, float, float, float]:
    """The stationary wait of a pool of ``n`` servers of ``c`` workers balanced by the shorter of two
    servers drawn with replacement, to order 1/n: ``(p0, p1, w0, w1)`` with P(wait) = ``p0 + p1 / n`` and
    mean wait (in mean services) = ``w0 + w1 / n``.

    With ``x_k`` the share of servers holding at least ``k`` requests, drawing with replacement makes the
    drift of the pool exactly ``f_k(x) = a (x_{k-1}^2 - x_k^2) - min(k, c) (x_k - x_{k+1})`` (``a = c rho``)
    at any ``n``; its fixed point is the supermarket model's (``p0, w0``, :func:`sim.queueing.supermarket`).
    Gast & Van Houdt's expansion: with ``A`` the drift's Jacobian there and ``Q`` the diagonal of the
    transitions' rates, the covariance of ``x`` is ``W / n`` with ``A W + W A' + Q = 0``, and since ``f``
    is quadratic, ``E[f(x)] = 0`` gives the mean exactly as ``x + V / n`` with ``A V + a (W_{k-1,k-1} -
    W_{kk}) = 0``. An arrival waits when both servers drawn hold ``c`` or more: ``E[x_c^2] = x_c^2 + (2 x_c
    V_c + W_cc) / n``; it waits ``sum_{k >= c} E[x_k^2] / c`` services on average.

    >>> p0, p1, w0, w1 = refined_mean_field(0.9, 1)  # x_k = 0.9^(2^k - 1); 16 servers wait 1.89 services
    >>> round(p0, 4), round(w0, 4), round(w0 + w1 / 16, 4)
    (0.81, 1.6141, 1.8909)
    """
    a = c * rho
    levels = c + 16
    lo, hi = -745.0, 0.0  # log x_c, by bisection: the backward recursion from it must end at x_0 = 1
    for _ in range(200):
        mid = (lo + hi) / 2
        s, above = math.exp(mid), 0.0
        for k in range(c, 0, -1):
            s, above = math.sqrt((k * s + above) / a), above + s
        lo, hi = (mid, hi) if s <= 1.0 else (lo, mid)
    x = np.zeros(levels + 2)
    x[0] = 1.0
    s, above = math.exp((lo + hi) / 2), 0.0
    x[c] = s
    for k in range(c, 1, -1):
        s, above = math.sqrt((k * s + above) / a), above + s
        x[k - 1] = s
    for k in range(c + 1, levels + 1):
        x[k] = rho * x[k - 1] ** 2
    served = np.minimum(np.arange(1, levels + 1), c).astype(float)
    jac = np.diag(-2.0 * a * x[1:-1] - served) + np.diag(served[:-1], 1) + np.diag(2.0 * a * x[1:-2], -1)
    noise = np.diag(a * (x[:-2] ** 2 - x[1:-1] ** 2) + served * (x[1:-1] - x[2:]))
    cov = _lyapunov(jac, noise)
    var = np.diag(cov)
    bias = np.linalg.solve(jac, -a * (np.concatenate([[0.0], var[:-1]]) - var))
    xs = x[1:-1]
    second = 2.0 * xs * bias + var  # the 1/n term of E[x_k^2]
    return (float(xs[c - 1] ** 2), float(second[c - 1]), float((xs[c - 1:] ** 2).sum() / c),
            float(second[c - 1:].sum() / c))


@lru_cache(maxsize=16384)
def _two_chain_point(n: int, c: int, k: int) -> tuple[float, float]:
    return _chain(n, c, "two").solve(_grid_rho(k))


@lru_cache(maxsize=256)
def _two_table(n: int, c: int) -> _Lazy:
    if n <= 3:
        return _Lazy(lambda k: _two_chain_point(n, c, k))
    powers = (1.0 / n) ** np.arange(5)

    def point(k: int) -> tuple[float, float]:
        fit_p, fit_w = _two_point(c, k)
        return min(max(float(fit_p @ powers), 0.0), 1.0), max(float(fit_w @ powers), 0.0)

    return _Lazy(point)


@lru_cache(maxsize=4096)
def _two_point(c: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """At grid point ``k``: coefficients in 1/n of P(wait) and of the mean wait (degree 4, lowest first)."""
    rho = _grid_rho(k)
    p0, p1, w0, w1 = refined_mean_field(rho, c)
    alone_p, alone_rate = _mmc(np.array([rho]), c)
    exact = {1: (float(alone_p[0]), float(alone_p[0] / alone_rate[0]))}
    for n in (2, 3):
        exact[n] = _two_chain_point(n, c, k)
    inv = np.array([1.0, 1 / 2, 1 / 3])
    powers = inv[:, None] ** np.arange(2, 5)[None, :]
    fit_p = np.linalg.solve(powers, [exact[n][0] - p0 - p1 / n for n in (1, 2, 3)])
    fit_w = np.linalg.solve(powers, [exact[n][1] - w0 - w1 / n for n in (1, 2, 3)])
    return np.concatenate([[p0, p1], fit_p]), np.concatenate([[w0, w1], fit_w])


def two_choices(rho: np.ndarray, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """A pool of ``n`` servers of ``c`` workers where each arrival draws two servers at random (with
    replacement) and joins the one with fewer requests (``power_of_two``), at utilisation ``rho`` (capped
    at :data:`CAP`): (P(an arrival waits), the rate of its wait per mean service).

    In 1/n, the wait is the mean field's with its 1/n term (:func:`refined_mean_field`), plus the terms
    in 1/n^2 to 1/n^4 that make it exact for pools of one (M/M/c), two and three servers (their chains,
    :class:`PoolChain`). So it is exact at n <= 3, right to order 1/n for large pools, and in between
    an interpolation in 1/n, within the request engine's noise from 4 to 32 servers
    (``tests/validation/test_flow_queues.py``).

    >>> p, rate = two_choices(np.array([0.9]), 4, 2)  # the mean field says 0.618 services
    >>> round(float(p[0] / rate[0]), 3)
    1.321
    """
    rho = np.minimum(np.asarray(rho, dtype=float), CAP)
    n, c = int(n), int(c)
    if n <= 1:
        return _mmc(rho, c)
    return _as_rate(*_two_table(n, c).read(rho), c)
