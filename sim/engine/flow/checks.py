"""Health checks on the flow engine: what each server's last check said, so that the next is as alike as
a real queue's (:class:`HealthMemory`), and how much a class of servers' answers persist
(:class:`ClassPersistence`, from :func:`sim.queueing.check_persistence`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.queueing import check_persistence

__all__ = ["ClassPersistence", "HealthMemory"]


class ClassPersistence:
    """The classes' queues as :func:`sim.queueing.check_persistence` reads them: workers, load offered (before
    refusals: a full room's chain refuses by itself), mean work of a try, waiting places (its queue limit,
    inf: none) and the chance a check fails now.
    """

    def __init__(self, workers: np.ndarray, load: np.ndarray, per_try: np.ndarray, places: np.ndarray,
                 fail: np.ndarray):
        self.workers, self.load, self.per_try, self.places, self.fail = workers, load, per_try, places, fail

    def __call__(self, of: int, lag: float) -> float:
        """The persistence of class ``of``'s answers over ``lag`` seconds."""
        return check_persistence(int(self.workers[of]), float(self.load[of]), float(self.fail[of]),
                                 lag / max(float(self.per_try[of]), 1e-12), float(self.places[of]))


class HealthMemory:
    """What each server's last health check said, so that the next one is as alike as a real queue's.

    A check fails when the server's wait is beyond the check's timeout: a queue long now is likely long
    5 s later, so consecutive checks of a server are not independent draws. Each server keeps a rank
    ``u`` in [0, 1] (the place of its queue among the lengths it could have: low is long) and when it was
    last asked; a check fails when ``u < p``, the chance it fails now. Between two checks the rank
    is kept with the chance ``r`` that the queue remembers (:func:`sim.queueing.check_persistence`, at
    the server's workers and current load, over the time since the last check), else drawn afresh. So
    each check fails with exactly its ``p`` whatever came before (the rank is uniform), and at a steady
    ``p``: ``P(fail | failed) = p + (1 - p) r``, ``P(fail | passed) = p (1 - r)``. When ``p`` changes the
    rank says where the queue was: one that failed at ``p`` fails at any higher ``p`` while kept.

    A certain answer pins the rank: a server that fails for sure (down, or a fluid backlog beyond the
    timeout) is at the longest (``u = 0``), one that passes for sure (idle, out of the pool) at the
    shortest (``u = 1``): a queue draining from overload is likely still long, one readmitted empty
    likely still short, for as long as the queue remembers. A server that stops, starts or changes
    version forgets (:meth:`forget`): a restarted process's next answer is a fresh draw.

    Quiet sweeps (:class:`sim.control.Probe`) skip the checks while every answer is certain, and the
    health checks sweep every ``interval`` while any is drawn: so a rank pinned at the last check asked
    would have been pinned again at each skipped sweep, and is kept as if asked one ``interval`` ago (the
    answers those of sweeping every interval, as the control plane's decisions are).

    >>> memory = HealthMemory(2, 5.0)
    >>> rng = np.random.default_rng(1)
    >>> memory.answer(0.0, np.array([1.0, 0.0]), np.arange(2), None, rng).tolist()  # certain answers
    [False, True]
    >>> memory.rank.tolist()
    [0.0, 1.0]
    """

    def __init__(self, n: int, interval: float):
        self.interval = interval
        self.rank = np.full(n, 0.5)  # (never read before a server is asked: its first answer is fresh)
        self.asked = np.full(n, -np.inf)  # when each server last answered (-inf: never, or forgotten)
        self.pinned = np.zeros(n, dtype=bool)  # whether that answer was certain

    def forget(self, server: int) -> None:
        """The server's next answer is a fresh draw."""
        self.asked[server] = -np.inf
        self.pinned[server] = False

    def answer(self, now: float, fail: np.ndarray, of: np.ndarray, persist: Callable[[int, float], float] | None,
               rng: np.random.Generator) -> np.ndarray:
        """Per server, whether a check now passes, given the chance ``fail`` it fails; ``of`` each server's
        class and ``persist(class, lag)`` its persistence over ``lag`` seconds (None: no answer is uncertain).
        Draws two uniforms per uncertain server (keep the rank or not; a fresh rank).
        """
        rank, asked = self.rank, self.asked
        unsure = np.flatnonzero((fail > 1e-6) & (fail < 1.0))
        if unsure.size:
            assert persist is not None
            lag = np.where(self.pinned[unsure], np.minimum(now - asked[unsure], self.interval), now - asked[unsure])
            keep = np.where(lag <= 0.0, 1.0, 0.0)  # asked twice at one instant: the same answer
            seen = np.isfinite(lag) & (lag > 0.0)
            if seen.any():  # one persistence per class and lag (the servers of a class are asked together)
                pairs, back = np.unique(np.stack([of[unsure][seen].astype(float), lag[seen]]), axis=1,
                                        return_inverse=True)
                each = np.array([persist(int(k), float(t)) for k, t in pairs.T])
                keep[seen] = each[np.ravel(back)]
            draws = rng.random((2, unsure.size))
            rank[unsure] = np.where(draws[0] < keep, rank[unsure], draws[1])
        sure_pass, sure_fail = fail <= 1e-6, fail >= 1.0
        rank[sure_pass] = 1.0
        rank[sure_fail] = 0.0
        np.logical_or(sure_pass, sure_fail, out=self.pinned)
        asked[:] = now
        return rank >= fail
