"""CoDel, Controlled Delay (Nichols & Jacobson, "Controlling Queue Delay", ACM Queue 2012; RFC 8289), as
a server's queue discipline: requests are taken from the queue as before (oldest first, or newest first
under adaptive LIFO), and CoDel decides, each time a free worker takes one, whether to drop it instead.

It judges the *sojourn time*, how long the request taken waited. While that stays below ``target``, or
the queue is empty behind it, nothing happens. Once it has stayed above ``target`` for a whole
``interval``, CoDel drops the request at the head and enters its dropping state: the next drops come
``interval / sqrt(count)`` apart (``count`` drops so far), so the drop rate grows until the sojourn
falls below ``target``, which ends the state. Re-entered soon after (within 16 intervals), it starts
from the drop rate it had reached (RFC 8289's ``count - lastcount``). A dropped request is answered at
once with an error, which its client may retry.

Per request only (the request engine's event-driven servers); the flow engine has no view of it and a
flow scenario using it is refused (:func:`sim.policies.unsupported_on_flow`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario import CoDelPolicy

__all__ = ["CoDel"]

_MEMORY = 16  # intervals: a dropping state re-entered within this long starts at the rate it had reached


class CoDel:
    """One server's CoDel state. Call :meth:`take` for every request a free worker takes (with its sojourn
    and how many wait behind it) and drop it when it answers True; call :meth:`idle` when a free worker
    finds the queue empty.

    Drops follow RFC 8289's control law: the first an interval after the sojourn went above target,
    then ``interval / sqrt(count)`` apart while it stays above.

    >>> from sim.scenario import CoDelPolicy
    >>> c = CoDel(CoDelPolicy(target=0.005, interval=0.1))
    >>> c.take(0.0, 0.010, 5), c.take(0.05, 0.010, 5), c.take(0.1, 0.010, 5)  # above for an interval
    (False, False, True)
    >>> c.dropping, c.count, round(c.drop_next, 4)  # next drop interval / sqrt(1) later
    (True, 1, 0.2)
    >>> c.take(0.1, 0.010, 5), c.take(0.15, 0.010, 5), c.take(0.2, 0.010, 5)  # the next one is served
    (False, False, True)
    >>> c.take(0.2, 0.010, 5), round(c.drop_next, 4)  # then drops come interval / sqrt(2) apart
    (False, 0.2707)
    >>> c.take(0.21, 0.001, 5), c.dropping  # below target: the dropping state ends
    (False, False)
    """

    __slots__ = ("target", "interval", "first_above", "dropping", "drop_next", "count", "lastcount", "after")

    def __init__(self, policy: CoDelPolicy):
        self.target = policy.target
        self.interval = policy.interval
        self.reset()

    def reset(self) -> None:
        """Forget everything (the server restarted empty)."""
        self.first_above = 0.0  # when the sojourn will have been above target for an interval (0: it is not)
        self.dropping = False
        self.drop_next = 0.0
        self.count = 0  # drops since the dropping state was entered (carried over when re-entered soon)
        self.lastcount = 0
        self.after = ""  # where the next request taken stands in RFC 8289's dequeue (see :meth:`take`)

    def _ok_to_drop(self, now: float, sojourn: float, behind: int) -> bool:
        """Whether the sojourn has stayed above target for an interval (RFC 8289's ``dodequeue``)."""
        if sojourn < self.target or behind == 0:  # no standing queue: the queue empties behind it
            self.first_above = 0.0
            return False
        if self.first_above == 0.0:
            self.first_above = now + self.interval
            return False
        return now >= self.first_above

    def take(self, now: float, sojourn: float, behind: int) -> bool:
        """Whether to drop the request a free worker takes, which waited ``sojourn`` with ``behind`` queued.

        RFC 8289's ``dequeue`` looks at requests one after another until it delivers one; ``after`` says
        where in it this one is: first (``""``), right after a drop in the dropping state (``"loop"``) or
        right after the drop that entered it (``"entry"``).
        """
        ok = self._ok_to_drop(now, sojourn, behind)
        after, self.after = self.after, ""
        if after == "entry":  # the RFC delivers the request after the first drop, whatever its sojourn
            return False
        if after == "loop":
            if not ok:
                self.dropping = False
                return False
            self.drop_next += self.interval / math.sqrt(self.count)
        elif self.dropping and not ok:
            self.dropping = False
            return False
        if self.dropping:
            if now < self.drop_next:
                return False
            self.count += 1
            self.after = "loop"
            return True
        if not ok:
            return False
        self.dropping = True
        delta = self.count - self.lastcount
        self.count = delta if delta > 1 and now - self.drop_next < _MEMORY * self.interval else 1
        self.drop_next = now + self.interval / math.sqrt(self.count)
        self.lastcount = self.count
        self.after = "entry"
        return True

    def idle(self) -> None:
        """A free worker found the queue empty: no standing queue, no dropping state."""
        self.first_above = 0.0
        self.dropping = False
        self.after = ""
