"""The request engine's cost per request with each load-balancer algorithm, as the pool grows.

One datacenter of N one-worker servers (100 ms exponential service) at 20% utilisation (``--utilisation``),
health checks off, no retries: the same scenario for every algorithm, so what differs is the cost of a
pick (at a low load, so that queueing, which the algorithms change, costs little). Each
algorithm runs ``--repeats`` times at each size; the fastest run counts. The figure is wall-clock
microseconds per simulated request of the whole ``sim.run`` (building the cluster and summing up
included), and the ratio of each algorithm to round robin measured in the same run.

    python benchmarks/bench_balancers.py                    # 10, 1,000 and 10,000 servers
    python benchmarks/bench_balancers.py --sizes 10000 --requests 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import time

import sim
from sim.loader import parse_scenario

ALGORITHMS = ("round_robin", "random", "power_of_two", "least_outstanding", "weighted_least_outstanding",
              "least_response_time", "consistent_hash")  # no mailbox databases: consistent_hash picks at random


def scenario(servers: int, algorithm: str, requests: int, utilisation: float) -> sim.Scenario:
    rate = utilisation * servers / 0.1  # that share of the pool's capacity
    seconds = max(10.0, requests / rate)
    text = f"""
name: bench-balancers
seed: 1
duration: {seconds:.3f}s
engine: requests
topology:
  regions: [{{id: users, datacenters: {{dc: 1ms}}}}]
  datacenters:
    - id: dc
      servers: [{{id: s, count: {servers}, workers: 1, service_time: {{mean: 100ms, distribution: exponential}}}}]
workload:
  regions: {{users: {{peak: {rate:.3f}/s}}}}
policies:
  client: {{timeout: 30s, retries: 0}}
  load_balancer: {{algorithm: {algorithm}, health_check: {{enabled: false}}}}
limits: {{max_servers: 100000, max_workers: 1000000}}
"""
    return parse_scenario(text, "bench-balancers.yaml")


def measure(servers: int, algorithm: str, requests: int, repeats: int, utilisation: float) -> tuple[float, int]:
    """Best wall-clock microseconds per request over ``repeats`` runs, and the requests of a run."""
    s = scenario(servers, algorithm, requests, utilisation)
    best, n = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = sim.run(s)
        elapsed = time.perf_counter() - t0
        n = result.stats.requests
        best = min(best, elapsed / n * 1e6)
    return best, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--utilisation", type=float, default=0.2,
                    help="of the pool (low, so that queueing, which the algorithms change, costs little)")
    args = ap.parse_args()
    print(f"{'servers':>8} {'algorithm':<18} {'µs/request':>11} {'× round robin':>14} {'requests':>9}")
    for n in args.sizes:
        base = None
        for algorithm in ALGORITHMS:
            us, requests = measure(n, algorithm, args.requests, args.repeats, args.utilisation)
            base = us if algorithm == "round_robin" else base
            assert base is not None
            print(f"{n:>8,} {algorithm:<18} {us:>11.1f} {us / base:>14.2f} {requests:>9,}", flush=True)


if __name__ == "__main__":
    main()
