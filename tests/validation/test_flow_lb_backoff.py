"""The load balancer's retries with a backoff: the flow engine against the request engine.

Four servers behind a load balancer that retries a failed try three times, after a backoff of full jitter
growing from 400 ms (200 ms for timeouts), with a client that waits 1 s and never retries. A retry whose
backoff would end past the client's deadline is not sent (the balancer answers with an error), so with
backoffs this long the deadline decides how many tries a request gets. The flow engine resolves the
retries within its step; it takes their backoffs from the distribution of their sums
(:class:`sim.policies.BackoffSums`). Before it did, it gave every request all four tries: +5.0 pp of
availability on the errors and +5.4 pp on the timeouts.

- **errors**: a bad version answers half the requests with an error, at once (2 ms of service): each try
  succeeds with 1/2, so availability during it is 1/2 + 1/4 + 1/8 P(D1 + D2 < 1 s) + 1/16 P(D1 + D2 + D3
  < 1 s), with Dk uniform on [0, 0.4 2^(k-1)] s: 0.8832 (:func:`by_the_formula`, by integration on a grid
  independent of the engine's). The flow engine must lie within 4 standard errors of the request engine's
  paired mean, and both near the formula.
- **timeouts**: service exponential with a mean of 250 ms and a try timeout of 300 ms: 30% of tries time
  out. A try that starts less than a try timeout before the client's deadline must answer within the time
  left: its chance of success is cut there (``response_tail`` at the time left, per state of the retries,
  :meth:`Tries._cut <sim.engine.flow.tries.Tries._cut>`). Judged against the whole try timeout, a few
  answers that came after the deadline counted as successes (+1.9 pp: the flow engine 95.6% where the
  request engine serves 93.7%).
"""

from __future__ import annotations

import math
import statistics
from functools import cache

import numpy as np
import pytest
import yaml

import sim

pytestmark = pytest.mark.slow  # about 20 CPU-seconds

SEEDS = range(1, 7)
CASES = {
    "errors": ("2ms", 4, "{base: 400ms, multiplier: 2, max: 4s, jitter: full}",
               [{"id": "bad", "kind": "bad_update", "at": "1m", "rollout": {"canary": "100%"},
                 "effect": {"error_rate": "50%"}}]),
    "timeouts": ("250ms", 64, "{base: 200ms, multiplier: 2, max: 4s, jitter: full}", []),
}


def scenario(case: str, engine: str, seed: int) -> sim.Scenario:
    service, workers, backoff, faults = CASES[case]
    return sim.parse_scenario(yaml.safe_dump({
        "name": "lb-backoff", "seed": seed, "duration": "10m", "engine": engine,
        "topology": {"regions": [{"id": "users", "datacenters": {"dc": "1ms"}}],
                     "datacenters": [{"id": "dc", "servers": [
                         {"id": "web", "count": 4, "workers": workers, "service_time": service}]}]},
        "workload": {"regions": {"users": {"peak": "100/s"}}},
        "policies": {"client": {"timeout": "1s", "retries": 0},
                     "load_balancer": {"algorithm": "round_robin", "retries": 3, "try_timeout": "300ms",
                                       "backoff": yaml.safe_load(backoff), "health_check": {"enabled": False}}},
        "faults": faults,
    }), "lb-backoff.yaml")


@cache
def availability(case: str, engine: str, seed: int) -> float:
    return sim.run(scenario(case, engine, seed)).summary["availability"]


def by_the_formula() -> float:
    """Availability of the errors case, as the rule gives it: the sums of uniform backoffs by numerical
    convolution on a fine grid (not the engine's :class:`~sim.policies.BackoffSums`)."""
    dx = 1e-4
    x = np.arange(0, 1.0, dx)
    density = [np.where(x < 0.4 * 2**k, 1 / (0.4 * 2**k), 0.0) for k in range(3)]
    two = np.convolve(density[0], density[1])[: x.size] * dx
    three = np.convolve(two, density[2])[: x.size] * dx
    during = 1 / 2 + 1 / 4 + 1 / 8 * two.sum() * dx + 1 / 16 * three.sum() * dx
    return (1 * 60 + during * 9 * 60) / 600  # the bad version runs from minute 1 of 10


@pytest.mark.parametrize("case", list(CASES))
def test_the_flow_engines_lb_retries_wait_out_their_backoff(case: str):
    diffs = [100 * (availability(case, "flow", s) - availability(case, "requests", s)) for s in SEEDS]
    mean, se = statistics.mean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))
    bound = 4 * se
    assert abs(mean) <= bound, f"{case}: flow - requests {mean:+.2f} pp (SE {se:.2f}), more than {bound:.2f} pp"
    if case == "errors":
        expected = by_the_formula()
        assert abs(expected - 0.8832 * 0.9 - 0.1) < 0.002  # (the formula, as the docstring works it out)
        requests = [availability(case, "requests", s) for s in SEEDS]
        spread = statistics.stdev(requests) / math.sqrt(len(requests))
        assert abs(statistics.mean(requests) - expected) <= 4 * spread + 0.002  # the request engine: the rule
        assert abs(availability(case, "flow", 1) - expected) <= 0.002  # the flow engine: its mean
