"""What a server runs: a software :class:`Version` and what it does to the server; :data:`GOOD` at the start.

The :class:`~sim.cluster.Cluster` holds each server's version and announces changes
(``version_changed``); a rollout (:mod:`sim.rollout`) makes new ones; the engines read their effect.
A module of its own so that a rollout can make versions without importing the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Version", "GOOD"]


@dataclass(frozen=True, slots=True)
class Version:
    """What the software a server runs does to it: ``speed`` (1 nominal; 0.5 takes twice as long),
    ``error_rate`` (share of the requests it serves answered with an error), ``leak_rate`` (bytes of
    memory lost per second of running).
    """

    name: str = "good"
    speed: float = 1.0
    error_rate: float = 0.0
    leak_rate: float = 0.0


GOOD = Version()
"""The version every server runs at the start."""
