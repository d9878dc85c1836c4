"""Backoff between retries: exponential growth, then jitter.

A jitter is a function ``(exponential_delay, previous_delay, base, cap, u) -> delay`` where ``u`` is a
uniform variate in [0, 1); register new ones with :func:`register_jitter`. The names follow the AWS
Architecture Blog's "Exponential Backoff and Jitter": ``none``, ``full``, ``equal``, ``decorrelated``.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.scenario import Backoff, RetryBudget

__all__ = ["JITTERS", "register_jitter", "backoff_delay", "Budget"]

Jitter = Callable[[float, float, float, float, float], float]
JITTERS: dict[str, Jitter] = {}


def register_jitter(name: str) -> Callable[[Jitter], Jitter]:
    """Decorator: make a jitter available as ``backoff.jitter: name``."""

    def add(fn: Jitter) -> Jitter:
        JITTERS[name] = fn
        return fn

    return add


@register_jitter("none")
def _none(exp: float, prev: float, base: float, cap: float, u: float) -> float:
    return exp


@register_jitter("full")
def _full(exp: float, prev: float, base: float, cap: float, u: float) -> float:
    return u * exp


@register_jitter("equal")
def _equal(exp: float, prev: float, base: float, cap: float, u: float) -> float:
    return exp / 2 + u * exp / 2


@register_jitter("decorrelated")
def _decorrelated(exp: float, prev: float, base: float, cap: float, u: float) -> float:
    high = max(base, 3 * prev)
    return min(cap, base + u * (high - base))


def backoff_delay(policy: Backoff, retry: int, previous: float, u: float) -> float:
    """Delay before retry number ``retry`` (1 for the first retry), given the previous delay.

    >>> from sim.scenario import Backoff, RetryBudget
    >>> backoff_delay(Backoff(base=0.1, multiplier=2, max=1, jitter="none"), 3, 0.0, 0.5)
    0.4
    """
    if policy.kind == "none":
        return 0.0
    exp = min(policy.max, policy.base * policy.multiplier ** (retry - 1))
    return JITTERS[policy.jitter](exp, previous or policy.base, policy.base, policy.max, u)


class Budget:
    """A retry budget as a token bucket: each first try deposits ``ratio`` of a token, time deposits
    ``min_per_second``; a retry takes a whole token or is not sent. The bucket holds at most ten
    seconds' worth of the minimum plus ``10 * ratio`` tokens (a short burst of retries).

    >>> from sim.scenario import RetryBudget
    >>> b = Budget(RetryBudget(ratio=0.5, min_per_second=0))
    >>> b.deposit(); b.deposit(); b.withdraw(0.0), b.withdraw(0.0)
    (True, False)
    """

    __slots__ = ("ratio", "rate", "cap", "tokens", "updated")

    def __init__(self, policy: RetryBudget):
        self.ratio = policy.ratio
        self.rate = policy.min_per_second
        self.cap = 10.0 * self.rate + max(1.0, 10.0 * self.ratio)
        self.tokens = 0.0
        self.updated = 0.0

    def deposit(self) -> None:
        """A first try was sent."""
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def withdraw(self, now: float) -> bool:
        """Take a token for a retry at ``now``; False means the budget is spent."""
        if self.rate:
            self.tokens = min(self.cap, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
