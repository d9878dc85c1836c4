"""Pluggable policies, one definition each, used by both engines; one registry per family.

- :mod:`sim.policies.balancers` — load-balancer algorithms, ``BALANCERS[name]``;
- :mod:`sim.policies.retries` — backoff jitter, ``JITTERS[name]``, and retry budgets;
- :mod:`sim.policies.breaker` — client circuit breakers;
- :mod:`sim.policies.codel` — CoDel on a server's queue (per request only);
- :mod:`sim.policies.bulkheads` — bulkheads: a server's workers partitioned per dependency (per request
  only);
- :mod:`sim.policies.admission` — admission control: token-bucket rate limits and adaptive concurrency
  limits (per request only).

Each offers a per-request view (the request engine) and a per-step fluid view (the flow engine). A
registry entry says whether it has the fluid view (``supports_flow``); :func:`unsupported_on_flow`
lists what a scenario uses that the flow engine cannot run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.policies.admission import AimdLimit, TokenBucket
from sim.policies.balancers import BALANCERS, Balancer, register_balancer
from sim.policies.breaker import Breaker
from sim.policies.bulkheads import Bulkheads, bulkhead_workers
from sim.policies.codel import CoDel
from sim.policies.retries import JITTERS, BackoffSums, Budget, Jitter, backoff_delay, backoff_span, register_jitter

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = ["BALANCERS", "Balancer", "register_balancer", "JITTERS", "Jitter", "backoff_delay", "backoff_span",
           "BackoffSums", "register_jitter", "Budget", "Breaker", "CoDel", "TokenBucket", "AimdLimit", "Bulkheads",
           "bulkhead_workers", "unsupported_on_flow"]


def unsupported_on_flow(scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """What ``scenario`` uses that has no fluid view, as (field path, message): the flow engine cannot run
    it. Names missing from a registry are left to the reference checks. The flow engine reads the load
    balancer's algorithm and the client's, the load balancer's and the server's dependency backoffs.

    >>> from sim.loader import parse_scenario
    >>> from sim.topology import EXAMPLE
    >>> unsupported_on_flow(parse_scenario(EXAMPLE))
    []
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    policies = scenario.policies
    algorithm = policies.load_balancer.algorithm
    balancer = BALANCERS.get(algorithm)
    if balancer is not None and not balancer.supports_flow:
        usable = ", ".join(sorted(name for name, cls in BALANCERS.items() if cls.supports_flow))
        problems.append((("policies", "load_balancer", "algorithm"),
                         f"load-balancer algorithm '{algorithm}' has no fluid view, so the flow engine cannot "
                         f"run it: use engine: requests, or one of {usable}"))
    elif balancer is not None and balancer.uses_workers:
        for dc in scenario.topology.datacenters:
            workers = sorted({group.workers for group in dc.servers})
            if len(workers) > 1:
                problems.append((("policies", "load_balancer", "algorithm"),
                                 f"load-balancer algorithm '{algorithm}' has no fluid view over servers of unequal "
                                 f"workers (over equal ones it is least_outstanding's), and datacenter '{dc.id}' has "
                                 f"servers of {', '.join(map(str, workers))} workers: use engine: requests"))
                break
    usable = ", ".join(sorted(name for name, j in JITTERS.items() if j.supports_flow))
    client, lb, server = policies.client, policies.load_balancer, policies.server
    for who, field, backoff, used in (("client", "backoff", client.backoff, True),
                                      ("load_balancer", "backoff", lb.backoff, lb.retries > 0),
                                      ("server", "dependency_backoff", server.dependency_backoff,
                                       server.dependency_retries > 0)):
        jitter = JITTERS.get(backoff.jitter)
        if used and backoff.kind != "none" and jitter is not None and not jitter.supports_flow:
            problems.append(((("policies", who, field, "jitter")),
                             f"jitter '{backoff.jitter}' has no fluid view (no span to spread retries over), so the "
                             f"flow engine cannot run it: use engine: requests, or one of {usable}"))
    # Request-engine defences: (field path, set in this scenario, what it is, why no fluid view, how to turn off).
    for path, on, what, why, off in (
        (("server", "codel"), server.codel is not None, "CoDel",
         "the flow engine's servers keep no queue of requests to drop from", "codel: null"),
        (("load_balancer", "rate_limit"), lb.rate_limit is not None, "a rate limit",
         "the flow engine does not count attempts against a token bucket", "rate_limit: null"),
        (("load_balancer", "hedge"), lb.hedge is not None, "hedging",
         "the flow engine keeps no per-request latency to hedge on", "hedge: null"),
        (("server", "concurrency_limit"), server.concurrency_limit is not None, "a concurrency limit",
         "the flow engine's servers keep no answers to adapt it from", "concurrency_limit: null"),
        (("server", "fallbacks"), bool(server.fallbacks), "a fallback",
         "the flow engine does not tell degraded answers apart", "fallbacks: []"),
        (("server", "bulkheads"), bool(server.bulkheads), "a bulkhead",
         "the flow engine's servers are one pool of workers", "bulkheads: {}"),
    ):
        if on:
            problems.append((("policies", *path), f"{what} has no fluid view ({why}), so the flow engine cannot "
                                                  f"run it: use engine: requests, or {off}"))
    return problems
