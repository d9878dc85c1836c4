"""Backoff between retries (exponential growth, then jitter) and retry budgets, each with two views.

Per request (the request engine): :func:`backoff_delay` draws one delay; :meth:`Budget.deposit` and
:meth:`Budget.withdraw` move whole tokens. Per step (the flow engine): :func:`backoff_span` is the
interval a retry's delay is spread over, uniformly; :meth:`Budget.fill` and :meth:`Budget.allow` move
fractions of tokens for a step's first tries and retries.

A jitter is a :class:`Jitter` registered with :func:`register_jitter` under the name
``backoff.jitter`` uses. The names follow the AWS Architecture Blog's "Exponential Backoff and Jitter":
``none``, ``full``, ``equal``, ``decorrelated``; ``exponential`` is the memoryless retry time of the
retrial-queue literature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from sim.scenario import Backoff, RetryBudget

__all__ = ["Jitter", "JITTERS", "register_jitter", "backoff_delay", "backoff_span", "BackoffSums", "Budget"]

JitterFunction = Callable[[float, float, float, float, float], float]


class Jitter:
    """How a backoff is spread. Override :meth:`draw` (the request engine) and, for the flow engine,
    :meth:`span` (and leave :attr:`supports_flow` True).

    Both take ``exp``, the exponential delay before jitter (``min(cap, base * multiplier**(k-1))`` before
    retry ``k``), ``previous``, the delay before the previous retry (``base`` before the first), and the
    policy's ``base`` and ``cap`` (``max``).
    """

    supports_flow: ClassVar[bool] = True

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        """One delay, from the uniform variate ``u`` in [0, 1)."""
        raise NotImplementedError

    def span(self, exp: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        """The interval (low, high) the flow engine spreads the delays over, uniformly."""
        raise NotImplementedError


class _FromFunction(Jitter):
    """A jitter registered as a plain function: per request only (the flow engine cannot spread it)."""

    supports_flow = False

    def __init__(self, fn: JitterFunction):
        self.fn = fn

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        return self.fn(exp, previous, base, cap, u)


JITTERS: dict[str, Jitter] = {}


def register_jitter(name: str) -> Callable[[type[Jitter] | JitterFunction], type[Jitter] | JitterFunction]:
    """Decorator: make a jitter available as ``backoff.jitter: name``.

    Decorate a :class:`Jitter` subclass (both engines), or a function ``(exp, previous, base, cap, u) ->
    delay`` (the request engine only; :func:`sim.policies.unsupported_on_flow` says so).
    """

    def add(obj: type[Jitter] | JitterFunction) -> type[Jitter] | JitterFunction:
        JITTERS[name] = obj() if isinstance(obj, type) else _FromFunction(obj)
        return obj

    return add


@register_jitter("none")
class NoJitter(Jitter):
    """The exponential delay itself."""

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        return exp

    def span(self, exp: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return exp, exp


@register_jitter("full")
class FullJitter(Jitter):
    """Uniform between 0 and the exponential delay."""

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        return u * exp

    def span(self, exp: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return 0.0, exp


@register_jitter("equal")
class EqualJitter(Jitter):
    """Half the exponential delay, plus uniform up to the other half."""

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        return exp / 2 + u * exp / 2

    def span(self, exp: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return exp / 2, exp


@register_jitter("decorrelated")
class DecorrelatedJitter(Jitter):
    """Uniform between ``base`` and three times the previous delay, capped. The flow engine takes the
    previous exponential delay for the previous delay (it keeps no per-request draws).
    """

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        high = max(base, 3 * previous)
        return min(cap, base + u * (high - base))

    def span(self, exp: float, previous: float, base: float, cap: float) -> tuple[float, float]:
        return base, max(base, min(cap, 3 * previous))


@register_jitter("exponential")
class ExponentialJitter(Jitter):
    """Exponentially distributed with the exponential delay as its mean, never longer than ``max``: a
    memoryless retry time. With ``multiplier: 1`` every try waits Exp(``base``), the classical retrial queue's
    orbit (each blocked request retries at rate 1/``base``), whose answers are textbook
    (``tests/validation/test_retrial.py``). Keep ``max`` a good many means above the mean (at 10 means,
    5 in 100,000 draws are cut). Per request only: the flow engine spreads retries over an interval.
    """

    supports_flow = False

    def draw(self, exp: float, previous: float, base: float, cap: float, u: float) -> float:
        return min(cap, -exp * math.log1p(-u))


def _exponential(policy: Backoff, retry: int) -> float:
    return min(policy.max, policy.base * policy.multiplier ** (retry - 1))


def backoff_delay(policy: Backoff, retry: int, previous: float, u: float) -> float:
    """Delay before retry number ``retry`` (1 for the first retry), given the previous delay.

    >>> from sim.scenario import Backoff
    >>> backoff_delay(Backoff(base=0.1, multiplier=2, max=1, jitter="none"), 3, 0.0, 0.5)
    0.4
    """
    if policy.kind == "none":
        return 0.0
    return JITTERS[policy.jitter].draw(_exponential(policy, retry), previous or policy.base, policy.base,
                                       policy.max, u)


def backoff_span(policy: Backoff, retry: int) -> tuple[float, float]:
    """The interval a rate of retries number ``retry`` is spread over (uniformly) after their failure:
    the fluid view of :func:`backoff_delay`.

    >>> from sim.scenario import Backoff
    >>> backoff_span(Backoff(base=0.1, multiplier=2, max=1, jitter="equal"), 3)
    (0.2, 0.4)
    """
    if policy.kind == "none":
        return 0.0, 0.0
    previous = _exponential(policy, retry - 1) if retry > 1 else policy.base
    return JITTERS[policy.jitter].span(_exponential(policy, retry), previous, policy.base, policy.max)


class BackoffSums:
    """The fluid view of a run of backoffs: the time the backoffs before retries 1 to ``k`` take together,
    each drawn uniformly from its :func:`backoff_span`, as a distribution up to ``horizon`` (the client's
    timeout; what lies beyond is never needed). The flow engine's load balancer uses it to send a retry
    only if its backoff ends before the client's deadline, as the request engine does per request.

    Each distribution is point masses on a grid of ``GRID`` steps, the uniforms projected on its hat
    functions (which keeps their means), convolved one retry after another.

    >>> from sim.scenario import Backoff
    >>> sums = BackoffSums(Backoff(base=1.0, multiplier=1.0, max=1.0, jitter="full"), 2, 4.0)
    >>> [round(sums.cdf(1, x), 3) for x in (0.5, 1.5)], round(sums.cdf(2, 1.0), 3)  # U(0, 1); U(0, 1) + U(0, 1)
    ([0.5, 1.0], 0.5)
    >>> round(sums.mean_below(1, 0.5), 3), sums.cdf(0, 0.1), sums.mean_below(0, 0.1)
    (0.25, 1.0, 0.0)
    """

    GRID = 4096

    def __init__(self, policy: Backoff, retries: int, horizon: float):
        n = self.GRID
        self.dx = dx = horizon / n
        x = np.arange(n + 1) * dx
        mass = np.zeros(n + 1)
        mass[0] = 1.0
        self.cum: list[tuple[np.ndarray, np.ndarray]] = [(np.cumsum(mass), np.cumsum(mass * x))]
        for k in range(1, retries + 1):
            lo, hi = backoff_span(policy, k)
            edges = np.arange(-1, n + 2) * dx  # G at x_{i-1}, x_i, x_{i+1}: the hat projection of U(lo, hi)
            if hi > lo:
                g = np.where(edges < lo, 0.0, np.where(edges <= hi, (edges - lo) ** 2 / (2 * (hi - lo)),
                                                       edges - (lo + hi) / 2))
            else:
                g = np.maximum(edges - lo, 0.0)
            kernel = (g[2:] - 2 * g[1:-1] + g[:-2]) / dx
            mass = np.convolve(mass, kernel)[: n + 1]
            self.cum.append((np.cumsum(mass), np.cumsum(mass * x)))
        self.mid = x + dx / 2  # a point's mass counts as below x from halfway to the next point on

    def cdf(self, k: int, x: float) -> float:
        """P(the first ``k`` backoffs take less than ``x``)."""
        if x <= 0.0:
            return 0.0
        if k == 0:
            return 1.0
        return float(np.interp(x, self.mid, self.cum[k][0]))

    def mean_below(self, k: int, x: float) -> float:
        """E[the first ``k`` backoffs' time | it is less than ``x``] (0 when it never is)."""
        if k == 0 or x <= 0.0:
            return 0.0
        below = self.cdf(k, x)
        return float(np.interp(x, self.mid, self.cum[k][1])) / below if below > 0 else 0.0


class Budget:
    """A retry budget as a token bucket: each first try deposits ``ratio`` of a token, time deposits
    ``min_per_second``; the bucket holds at most ten seconds' worth of the minimum plus ``10 * ratio``
    tokens (a short burst of retries).

    Per request, a retry takes a whole token or is not sent (:meth:`deposit`, :meth:`withdraw`). Per
    step, a fluid of retries takes what there is, fractions included (:meth:`fill`, :meth:`allow`).
    An object serves one engine: the two views share the bucket's state.

    >>> from sim.scenario import RetryBudget
    >>> b = Budget(RetryBudget(ratio=0.5, min_per_second=0))
    >>> b.deposit(); b.deposit(); b.withdraw(0.0), b.withdraw(0.0)
    (True, False)
    >>> b.fill(3.0, 1.0); b.allow(2.0)
    0.75
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

    def fill(self, first_tries: float, dt: float) -> None:
        """A step of ``dt`` seconds sent ``first_tries`` first tries."""
        self.tokens = min(self.cap, self.tokens + self.ratio * first_tries + self.rate * dt)

    def allow(self, retries: float) -> float:
        """Take tokens for up to ``retries`` retries of a step; return the share that may go."""
        if retries <= 0:
            return 1.0
        paid = min(retries, max(self.tokens, 0.0))  # a fluid pays fractions of a token
        self.tokens -= paid
        return paid / retries
