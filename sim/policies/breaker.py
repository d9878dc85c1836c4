"""Client-side circuit breakers: closed → open → half-open → closed.

Closed, the breaker counts attempts and failures in a sliding window; when at least ``min_requests``
attempts were made and ``error_threshold`` of them failed, it opens. Open, every attempt fails at once,
without load on the service, for ``open_time``. Then it is half-open: it lets ``probes`` attempts
through; if all succeed it closes, if one fails it opens again.

Two views of the same states. Per request (the request engine): :meth:`Breaker.allow` an attempt,
:meth:`Breaker.record` its outcome, in one-second buckets. Per step (the flow engine):
:meth:`Breaker.admits` says what share of a step's attempts is sent, :meth:`Breaker.observe` judges the
step's attempts and failures; half-open, ``probes`` attempts go and all succeed with probability
``(1 - failure share)^probes``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario import CircuitBreaker

__all__ = ["Breaker", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Breaker:
    """One breaker (the engine keeps one per region). Per request, :meth:`allow`, then :meth:`record` the
    outcome; per step, :meth:`admits`, then :meth:`observe` the step. An object serves one engine.

    >>> from sim.scenario import CircuitBreaker
    >>> b = Breaker(CircuitBreaker(error_threshold=0.5, min_requests=2, window=10, open_time=5, probes=1))
    >>> b.record(0.0, False); b.record(0.1, False)
    'open'
    >>> b.allow(1.0), b.allow(6.0), b.record(6.1, True)
    (False, True, 'closed')
    >>> f = Breaker(b.policy)  # the flow engine's: a step of 10 attempts, 6 failed
    >>> f.observe(7.0, 10.0, 6.0, None), f.admits(8.0), f.admits(12.0), f.observe(13.0, 1.0, 0.0, None)
    ('open', 0.0, 1.0, 'closed')
    """

    __slots__ = ("policy", "state", "buckets", "opened_at", "probes_left", "probes_out", "steps")

    def __init__(self, policy: CircuitBreaker):
        self.policy = policy
        self.state = CLOSED
        self.buckets: deque[list[int]] = deque()  # [second, attempts, failures]
        self.opened_at = 0.0
        self.probes_left = 0
        self.probes_out = 0
        self.steps: deque[tuple[float, float, float]] = deque()  # per step: (time, attempts, failures)

    # ------------------------------------------------------------------------------ per request

    def allow(self, now: float) -> bool:
        """Whether an attempt may be sent at ``now``."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if now - self.opened_at < self.policy.open_time:
                return False
            self.state = HALF_OPEN
            self.probes_left = self.policy.probes
            self.probes_out = 0
        if self.probes_left > 0:
            self.probes_left -= 1
            self.probes_out += 1
            return True
        return False

    def record(self, now: float, ok: bool) -> str | None:
        """Note an attempt's outcome; return the new state if it changed."""
        if self.state == HALF_OPEN:
            if not ok:
                return self._open(now)
            self.probes_out -= 1
            if self.probes_left == 0 and self.probes_out <= 0:
                self.state = CLOSED
                self.buckets.clear()
                return CLOSED
            return None
        if self.state == OPEN:
            return None  # a late answer to an attempt sent before the breaker opened
        second = int(now)
        buckets = self.buckets
        if not buckets or buckets[-1][0] != second:
            buckets.append([second, 0, 0])
            horizon = second - self.policy.window
            while buckets[0][0] <= horizon:
                buckets.popleft()
        bucket = buckets[-1]
        bucket[1] += 1
        if not ok:
            bucket[2] += 1
            attempts = sum(b[1] for b in buckets)
            failures = sum(b[2] for b in buckets)
            if attempts >= self.policy.min_requests and failures >= self.policy.error_threshold * attempts:
                return self._open(now)
        return None

    # ------------------------------------------------------------------------------ per step

    def admits(self, now: float) -> float:
        """The share of a step's attempts sent at ``now`` (0 while open; half-open, the caller sends the
        ``probes`` attempts, since it knows how many attempts there are).
        """
        if self.state == OPEN and now - self.opened_at >= self.policy.open_time:
            self.state = HALF_OPEN
        return 0.0 if self.state == OPEN else 1.0

    def observe(self, now: float, attempts: float, failures: float, noise: float | None) -> str | None:
        """Note a step's outcome (the attempts it let through and their failures); return the new state if
        it changed. Half-open, the probes all succeed with probability ``(1 - failures / attempts)^probes``:
        they do when ``noise`` (a uniform variate, or 0.5 without noise: the median) is below it.
        """
        p = self.policy
        if self.state == HALF_OPEN:
            share_ok = 1.0 - failures / attempts if attempts > 0 else 1.0
            passed = share_ok ** p.probes
            if (noise if noise is not None else 0.5) < passed:
                self.state = CLOSED
                self.steps.clear()
                return CLOSED
            return self._open(now)
        if self.state != CLOSED:
            return None
        self.steps.append((now, attempts, failures))
        while self.steps and self.steps[0][0] <= now - p.window:
            self.steps.popleft()
        total = sum(s[1] for s in self.steps)
        failed = sum(s[2] for s in self.steps)
        if total >= p.min_requests and failed > 0 and failed >= p.error_threshold * total:
            return self._open(now)
        return None

    def _open(self, now: float) -> str:
        self.state = OPEN
        self.opened_at = now
        self.buckets.clear()
        self.steps.clear()
        return OPEN
