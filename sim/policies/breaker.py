"""Client-side circuit breakers: closed → open → half-open → closed.

Closed, the breaker counts attempts and failures in a sliding window of one-second buckets; when at
least ``min_requests`` attempts were made and ``error_threshold`` of them failed, it opens. Open, every
attempt fails at once, without load on the service, for ``open_time``. Then it is half-open: it lets
``probes`` attempts through; if all succeed it closes, if one fails it opens again.
"""

from __future__ import annotations

from collections import deque

from sim.scenario import CircuitBreaker

__all__ = ["Breaker", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Breaker:
    """One breaker (the engine keeps one per region). :meth:`allow`, then :meth:`record` the outcome.

    >>> from sim.scenario import CircuitBreaker
    >>> b = Breaker(CircuitBreaker(error_threshold=0.5, min_requests=2, window=10, open_time=5, probes=1))
    >>> b.record(0.0, False); b.record(0.1, False)
    'open'
    >>> b.allow(1.0), b.allow(6.0), b.record(6.1, True)
    (False, True, 'closed')
    """

    __slots__ = ("policy", "state", "buckets", "opened_at", "probes_left", "probes_out")

    def __init__(self, policy: CircuitBreaker):
        self.policy = policy
        self.state = CLOSED
        self.buckets: deque[list[int]] = deque()  # [second, attempts, failures]
        self.opened_at = 0.0
        self.probes_left = 0
        self.probes_out = 0

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

    def _open(self, now: float) -> str:
        self.state = OPEN
        self.opened_at = now
        self.buckets.clear()
        return OPEN
