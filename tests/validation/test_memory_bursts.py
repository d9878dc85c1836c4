"""Running out of memory in a burst, below saturation: the flow engine against the request engine.

Four servers of an M/M/4 pool at 85% utilisation hold room for 50 requests each (memory), far above
the mean of about 7: a server crashes only when its queue happens to swell that far. The request
engine checks every arrival; the flow engine draws the crash from the rate of the first arrivals that
find the limit, in an M/M/4 that restarts empty after each crash (``sim.engine.flow.crashes.Memory``:
17.3 expected over the four runs, where the stationary rate of arrivals at the limit would give 115).
Over four seeds the two must count the same crashes within three standard errors of the difference of
two Poisson counts.
"""

from __future__ import annotations

import math

import sim
from sim.loader import parse_scenario

SCENARIO = """
name: memory-bursts
seed: 1
duration: 30m
topology:
  regions: [{id: users, datacenters: {dc: 10ms}}]
  datacenters:
    - id: dc
      servers:
        - id: mbx
          count: 4
          workers: 4
          service_time: 50ms
          queue_limit: 400
          memory: {limit: 10GB, base: 4GB, per_request: 120MB}   # room for 50 requests
          restart_time: 1s
workload:
  regions: {users: {peak: 272/s}}                              # 68/s per server: 85%
policies:
  client: {timeout: 30s, retries: 0}
  load_balancer: {algorithm: random, health_check: {interval: 1h, timeout: 30s}}
slo: {availability: 90%}
"""


def crashes(engine: str) -> int:
    scenario = parse_scenario(SCENARIO, "memory-bursts.yaml", {"engine": engine})
    return sum(sim.run(scenario, seed=seed).summary["counts"]["server_down"] for seed in (1, 2, 3, 4))


def test_bursts_run_servers_out_of_memory_as_often_on_both_engines() -> None:
    requests, flow = crashes("requests"), crashes("flow")
    assert requests >= 8, "too few crashes to compare"
    assert abs(flow - requests) <= 3 * math.sqrt(requests + flow), (flow, requests)
