"""Pluggable policies, one registry per family.

- :mod:`sim.policies.balancers` — load-balancer algorithms, ``BALANCERS[name]``;
- :mod:`sim.policies.retries` — backoff jitter, ``JITTERS[name]``.
"""

from sim.policies.balancers import BALANCERS, Balancer, register_balancer
from sim.policies.retries import JITTERS, backoff_delay, register_jitter

__all__ = ["BALANCERS", "Balancer", "register_balancer", "JITTERS", "backoff_delay", "register_jitter"]
