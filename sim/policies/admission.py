"""Admission control: a token-bucket rate limit (per region, at the load balancers) and an adaptive
concurrency limit (AIMD, per server). Both refuse at once: a refused attempt is an error its client may
retry, and uses no server worker.

- :class:`TokenBucket` — ``rate`` tokens a second fill a bucket of ``burst``; an attempt takes a token or
  is refused. Long-run, the admitted rate is ``min(offered, rate)`` (plus the burst once).
- :class:`AimdLimit` — Netflix's concurrency-limits ``AIMDLimit``: the limit on the requests a server
  holds grows by one for each answer faster than ``timeout`` while the server is at least half full, and
  is multiplied by ``backoff_ratio`` after a slower one. The limit so finds the concurrency the server
  can hold without its latency growing past ``timeout``.

Per request only (the request engine); the flow engine has no view of them and a flow scenario using
them is refused (:func:`sim.policies.unsupported_on_flow`).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario import ConcurrencyLimitPolicy, RateLimitPolicy

__all__ = ["TokenBucket", "AimdLimit"]


class TokenBucket:
    """One token bucket: :meth:`take` a token for each attempt, refused (False) when none is left.

    The bucket starts full. Tokens are counted continuously: ``rate × elapsed`` since the last look,
    capped at ``burst``.

    >>> from sim.scenario import RateLimitPolicy
    >>> b = TokenBucket(RateLimitPolicy(rate=2.0, burst=2))
    >>> b.take(0.0), b.take(0.0), b.take(0.0)  # the burst, then nothing
    (True, True, False)
    >>> b.take(0.4), b.take(0.5), b.take(0.5)  # half a second: one token back
    (False, True, False)
    """

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, policy: RateLimitPolicy):
        self.rate = policy.rate
        self.burst = float(policy.burst)
        self.tokens = self.burst
        self.last = 0.0

    def take(self, now: float) -> bool:
        """Whether an attempt at ``now`` is admitted (it takes a token) or refused."""
        tokens = self.tokens + (now - self.last) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class AimdLimit:
    """One server's adaptive concurrency limit (additive increase, multiplicative decrease).

    Ask :meth:`allow` with how many requests the server holds before admitting one, and tell
    :meth:`admitted` when each admitted request will end and how long it will have taken. An answer
    counts when it ends, not when it is booked: the samples wait in a heap until then, so a decision
    only sees the answers given before it.

    For each answer (Netflix's ``AIMDLimit.update``): slower than ``timeout``, the limit becomes
    ``max(min, limit × backoff_ratio)``; otherwise, if the server held at least half the limit, it grows
    by one, up to ``max``.

    >>> from sim.scenario import ConcurrencyLimitPolicy
    >>> c = AimdLimit(ConcurrencyLimitPolicy(initial=4, min=2, max=8, timeout=1.0, backoff_ratio=0.5))
    >>> c.allow(0.0, 3), c.allow(0.0, 4)
    (True, False)
    >>> c.admitted(0.0, 0.2, 3); c.admitted(0.0, 0.3, 3)  # two fast answers, due at 0.2 and 0.3
    >>> c.allow(0.25, 4), c.limit  # the one at 0.2 has come: the limit grew
    (True, 5.0)
    >>> c.admitted(0.25, 2.25, 4); c.allow(3.0, 0), c.limit  # 0.3 fast (+1), 2.25 slow (x 0.5)
    (True, 3.0)
    """

    __slots__ = ("initial", "min", "max", "timeout", "backoff_ratio", "limit", "samples")

    def __init__(self, policy: ConcurrencyLimitPolicy):
        self.initial = float(policy.initial)
        self.min = float(policy.min)
        self.max = float(policy.max)
        self.timeout = policy.timeout
        self.backoff_ratio = policy.backoff_ratio
        self.reset()

    def reset(self) -> None:
        """Forget everything (the server restarted empty)."""
        self.limit = self.initial
        self.samples: list[tuple[float, float, int]] = []  # heap: (end, latency, held when admitted)

    def _catch_up(self, now: float) -> None:
        samples = self.samples
        while samples and samples[0][0] <= now:
            _, latency, held = heapq.heappop(samples)
            if latency > self.timeout:
                limit = self.limit * self.backoff_ratio
                self.limit = limit if limit > self.min else self.min
            elif 2 * held >= self.limit:
                limit = self.limit + 1.0
                self.limit = limit if limit < self.max else self.max

    def allow(self, now: float, held: int) -> bool:
        """Whether a server holding ``held`` requests at ``now`` may admit one more."""
        if self.samples and self.samples[0][0] <= now:
            self._catch_up(now)
        return held < int(self.limit)

    def admitted(self, now: float, end: float, held: int) -> None:
        """A request admitted at ``now``, when the server held ``held``, is answered at ``end``."""
        heapq.heappush(self.samples, (end, end - now, held + 1))
