"""Bulkheads: a server's workers partitioned per dependency, so a slow dependency holds only its share.

Thread-per-request servers tie a worker up while it waits for a dependency; with one pool of workers, a
slow directory holds them all and requests that never call it queue behind (``slow-dependency.yaml``).
With bulkheads (as Hystrix's thread pools or resilience4j's ``Bulkhead``), the requests that call a
dependency with a bulkhead are served by a compartment of ``round(share × workers)`` workers (at least
one) with a queue of its own (``queue_limit``; more are refused at once); the other requests share the
workers left. A request that calls several such dependencies goes to the first one's compartment, in the
order its request type lists them.

Per request only (the request engine's booking servers); the flow engine has no view of them and a flow
scenario using them is refused (:func:`sim.policies.unsupported_on_flow`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario import Bulkhead

__all__ = ["Bulkheads", "bulkhead_workers"]


def bulkhead_workers(workers: int, bulkheads: Mapping[str, Bulkhead]) -> list[int]:
    """The workers of each reserved compartment of a server of ``workers``, in the order of ``bulkheads``.

    >>> from sim.scenario import Bulkhead
    >>> bulkhead_workers(8, {"directory": Bulkhead(workers=0.25), "search": Bulkhead(workers=0.01)})
    [2, 1]
    """
    return [max(1, round(b.workers * workers)) for b in bulkheads.values()]


class Bulkheads:
    """Which compartment a request's work goes to: 0 (shared) or 1, 2, ... (the bulkheads, in order).

    >>> from sim.scenario import Bulkhead
    >>> b = Bulkheads({"search": Bulkhead(workers=0.1), "directory": Bulkhead(workers=0.25, queue_limit=5)},
    ...               ["directory", "search", "quota"])
    >>> b.compartment(()), b.compartment((2,)), b.compartment((0,)), b.compartment((2, 1, 0))
    (0, 0, 2, 1)
    >>> b.sizes(8), b.queue_limits
    ([1, 2], [None, 5])
    """

    __slots__ = ("bulkheads", "of_dependency", "queue_limits")

    def __init__(self, bulkheads: Mapping[str, Bulkhead], dependencies: Sequence[str]):
        self.bulkheads = dict(bulkheads)
        order = list(self.bulkheads)
        # per dependency (by index), its compartment (0: no bulkhead of its own)
        self.of_dependency = [order.index(d) + 1 if d in self.bulkheads else 0 for d in dependencies]
        self.queue_limits = [b.queue_limit for b in self.bulkheads.values()]  # None: the server's

    def compartment(self, deps: Sequence[int]) -> int:
        """The compartment of a request that calls the dependencies ``deps`` (indices), in that order."""
        of = self.of_dependency
        for dep in deps:
            if of[dep]:
                return of[dep]
        return 0

    def sizes(self, workers: int) -> list[int]:
        """The workers of each reserved compartment of a server of ``workers``."""
        return bulkhead_workers(workers, self.bulkheads)
