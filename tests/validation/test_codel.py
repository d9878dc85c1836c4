"""CoDel under sustained overload: the request engine against RFC 8289's own pseudo-code, and the sojourn
time CoDel is built to hold.

One server, one worker, exponential service of mean ``1 / MU`` (10 ms), Poisson arrivals at ``LAM`` = 1.2
times its capacity for 10 minutes, clients that never give up or retry: without a defence the queue grows
for the whole run (the last request waits about 0.2 × 600 s = 100 s). With CoDel (target 50 ms, interval
100 ms) the server drops at the head and its queue stays short.

No closed form gives CoDel's mean sojourn, so the engine is held to the algorithm itself: :func:`reference`
is RFC 8289's ``dodequeue``/``dequeue`` (section 5) transcribed line by line over a single FIFO queue fed
the same kind of arrivals and services (its own generator). Its one adaptation is the engine's: the RFC's
"at most one packet left in the queue" (``bytes() <= MAXPACKET``) is "no request left behind". Over
``SEEDS`` seeds each, the engine's mean response of the served requests and share of requests dropped must
lie within 4 standard errors of the reference's (the standard error of a difference of two independent
means, sqrt(se_a² + se_b²); with 5 + 5 degrees of freedom about 0.3% of honest differences fall beyond).

Then what CoDel promises, from its definition: a request is served after waiting more than ``target`` only
while the standing queue has been above target for less than an interval or between two drops, and
CoDel drops until the wait is back under ``target``. So the served requests' mean wait sits a fraction of an
interval above the target: between ``target`` and ``target + interval`` (a band, not a formula; measured
about 1.8 × target here). The test could fail: with an interval of 1 s the drop rate needed to hold the
queue, ``LAM - MU`` = 20 drops a second, takes ``count`` ≈ (20 × 1 s)² = 400 drops to reach, and the
served requests wait about 1.4 s on average (:func:`test_too_long_an_interval_does_not_hold_the_target`).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from functools import cache

import numpy as np

import sim

LAM, MU = 120.0, 100.0
TARGET, INTERVAL = 0.05, 0.1
DURATION = 600.0
SEEDS = 6


def scenario(interval: float = INTERVAL) -> sim.Scenario:
    return sim.parse_scenario(f"""
name: codel-overload
engine: requests
duration: {DURATION:.0f}s
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - id: dc
      servers:
        - {{id: srv, count: 1, workers: 1, queue_limit: null,
            service_time: {{distribution: exponential, mean: {1 / MU!r}s}}}}
workload: {{regions: {{users: {{peak: {LAM!r}/s}}}}}}
policies:
  client: {{timeout: 60s, retries: 0}}
  load_balancer: {{retries: 0, health_check: {{enabled: false}}}}
  server: {{codel: {{target: {TARGET!r}s, interval: {interval!r}s}}}}
slo: {{window: 1h}}
""")


def reference(seed: int, interval: float = INTERVAL) -> tuple[float, float]:
    """RFC 8289's CoDel on one FIFO queue with one server: (mean response of the served, share dropped)."""
    rng = np.random.default_rng(seed)
    n = int(LAM * DURATION * 1.2)
    arrive = np.cumsum(rng.exponential(1 / LAM, n))
    arrive = arrive[arrive < DURATION].tolist()
    service = rng.exponential(1 / MU, len(arrive)).tolist()
    queue: deque[int] = deque()
    st = {"first_above_time": 0.0, "dropping": False, "drop_next": 0.0, "count": 0, "lastcount": 0, "drops": 0}

    def dodequeue(now: float) -> tuple[int | None, bool]:
        if not queue:
            st["first_above_time"] = 0.0
            return None, False
        r = queue.popleft()
        sojourn_time = now - arrive[r]
        ok_to_drop = False
        if sojourn_time < TARGET or not queue:
            st["first_above_time"] = 0.0
        elif st["first_above_time"] == 0.0:
            st["first_above_time"] = now + interval
        elif now >= st["first_above_time"]:
            ok_to_drop = True
        return r, ok_to_drop

    def dequeue(now: float) -> int | None:
        r, ok_to_drop = dodequeue(now)
        if r is None:
            st["dropping"] = False
            return None
        if st["dropping"]:
            if not ok_to_drop:
                st["dropping"] = False
            while now >= st["drop_next"] and st["dropping"]:
                st["drops"] += 1
                st["count"] += 1
                r, ok_to_drop = dodequeue(now)
                if not ok_to_drop:
                    st["dropping"] = False
                else:
                    st["drop_next"] += interval / math.sqrt(st["count"])
        elif ok_to_drop:
            st["drops"] += 1
            r, ok_to_drop = dodequeue(now)
            st["dropping"] = True
            delta = st["count"] - st["lastcount"]
            st["count"] = 1
            if delta > 1 and now - st["drop_next"] < 16 * interval:
                st["count"] = delta
            st["drop_next"] = now + interval / math.sqrt(st["count"])
            st["lastcount"] = st["count"]
        return r

    responses: list[float] = []
    busy_until = math.inf  # when the request in service ends (inf: idle)
    i = 0
    while i < len(arrive) or busy_until < math.inf:
        if i < len(arrive) and arrive[i] < busy_until:
            now = arrive[i]
            queue.append(i)
            if busy_until == math.inf:  # idle: taken at once (sojourn 0)
                r = dequeue(now)
                assert r is not None
                busy_until = now + service[r]
                responses.append(busy_until - arrive[r])
            i += 1
            continue
        now = busy_until
        r = dequeue(now)
        busy_until = math.inf if r is None else now + service[r]
        if r is not None:
            responses.append(busy_until - arrive[r])
    return statistics.mean(responses), st["drops"] / len(arrive)


@cache
def engine_runs(interval: float = INTERVAL, seeds: int = SEEDS) -> list[tuple[float, float]]:
    out = []
    for seed in range(1, seeds + 1):
        s = sim.run(scenario(interval), seed=seed).summary
        assert s["counts"]["timeouts"] == 0  # nobody gives up: every request is served or dropped
        out.append((s["latency"]["mean"], s["counts"]["shed"] / s["requests"]))
    return out


@cache
def reference_runs() -> list[tuple[float, float]]:
    return [reference(seed) for seed in range(1001, 1001 + SEEDS)]


def _mean_se(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


def test_the_engine_drops_as_rfc_8289_does():
    for k, what in enumerate(("mean response of the served", "share dropped")):
        a, se_a = _mean_se([r[k] for r in engine_runs()])
        b, se_b = _mean_se([r[k] for r in reference_runs()])
        assert abs(a - b) <= 4 * math.hypot(se_a, se_b), \
            f"{what}: engine {a:.4f} ± {se_a:.4f}, RFC {b:.4f} ± {se_b:.4f}"


def test_the_served_wait_stays_near_the_target():
    waits = [response - 1 / MU for response, _ in engine_runs()]  # the served requests' service has mean 1/MU
    mean, se = _mean_se(waits)
    assert TARGET - 4 * se <= mean <= TARGET + INTERVAL + 4 * se, f"mean wait {mean:.4f} ± {se:.4f}"
    # The server serves at most MU a second, so at least 1 - MU / LAM of the requests are dropped (more
    # when CoDel overshoots and the worker idles; the reference test pins the figure).
    dropped, se = _mean_se([share for _, share in engine_runs()])
    assert dropped >= 1 - MU / LAM - 4 * se, f"dropped {dropped:.4f} ± {se:.4f}"


def test_too_long_an_interval_does_not_hold_the_target():
    """The band above is not so wide that anything passes: at an interval of 1 s the control law is too slow
    and the served requests wait far longer than ``TARGET + INTERVAL``."""
    mean, se = _mean_se([response - 1 / MU for response, _ in engine_runs(1.0, 3)])
    assert mean - 4 * se > TARGET + INTERVAL, f"mean wait {mean:.4f} ± {se:.4f}"
