"""M/M/8 at utilisation 0.9: cascadesim's request engine against the textbook SimPy model.

The same queue three ways, in one process, best wall time of ``--repeats`` runs each:

- **cascadesim**: a normal scenario — a load balancer (health checks on, every 5 s, never failing
  here) in front of one server with 8 workers and an unbounded queue, exponential service with mean
  10 ms, Poisson arrivals at 720/s, client timeout 30 s with 2 retries (never used), metrics per
  60 s window — run with ``sim.run``;
- **textbook**: a SimPy process per request on a ``simpy.Resource(capacity=8)``, drawing each
  interarrival and service time from a ``numpy.random.Generator`` as it goes;
- **textbook, pre-drawn**: the same, with every random number drawn up front in two numpy arrays
  (the strongest plain-SimPy baseline; reported for context, not used for the ratio).

Prints requests per second (requests simulated / wall seconds) for each and the ratio
cascadesim / textbook, plus each model's mean response time with a batch-means standard error and
the Erlang C value; exits with status 1 if the means disagree. Writes the figures as JSON to
``benchmarks/results/``.

    python benchmarks/bench_mm8.py                  # about a million requests, best of 3
    python benchmarks/bench_mm8.py --requests 1e5 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

import sim  # noqa: E402

WORKERS = 8
UTILISATION = 0.9
MEAN_SERVICE = 0.010  # seconds
RATE = UTILISATION * WORKERS / MEAN_SERVICE  # 720 requests/s


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c offered ``a`` erlangs."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - (a / c) * (1.0 - b))


def theory_mean_response() -> float:
    mu = 1.0 / MEAN_SERVICE
    return MEAN_SERVICE + erlang_c(WORKERS, RATE / mu) / (WORKERS * mu - RATE)


def batch_means_se(values: np.ndarray, batches: int = 50) -> float:
    """Standard error of the mean of a correlated series, from ``batches`` contiguous batch means."""
    n = values.size // batches * batches
    means = values[:n].reshape(batches, -1).mean(axis=1)
    return float(means.std(ddof=1) / math.sqrt(batches))


# ------------------------------------------------------------------------------------------ cascadesim


def scenario(duration: float) -> sim.Scenario:
    return sim.parse_scenario(f"""
name: bench-mm8
duration: {duration:.3f}s
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - id: dc
      servers:
        - {{id: srv, count: 1, workers: {WORKERS}, queue_limit: null,
            service_time: {{distribution: exponential, mean: {MEAN_SERVICE}s}}}}
workload: {{regions: {{users: {{peak: {RATE:g}/s}}}}}}
policies:
  client: {{timeout: 30s, retries: 2}}
  load_balancer: {{health_check: {{enabled: true, interval: 5s, timeout: 1s}}}}
slo: {{window: 60s}}
""")


def run_cascadesim(duration: float, seed: int) -> tuple[int, np.ndarray, dict]:
    result = sim.run(scenario(duration), seed=seed)
    counts = result.summary["counts"]
    latency = np.frombuffer(result.recorder.latency, dtype=np.float64)
    extra = {k: counts[k] for k in ("timeouts", "retries", "shed", "ejected", "failed")}
    return result.summary["requests"], latency, extra


# ------------------------------------------------------------------------------------------ textbook


def run_textbook(duration: float, seed: int) -> tuple[int, np.ndarray, dict]:
    """The model as a SimPy tutorial writes it."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=WORKERS)
    latency: list[float] = []
    mean_gap = 1.0 / RATE

    def request(env: simpy.Environment) -> simpy.events.ProcessGenerator:
        arrived = env.now
        with workers.request() as turn:
            yield turn
            yield env.timeout(rng.exponential(MEAN_SERVICE))
        latency.append(env.now - arrived)

    def arrivals(env: simpy.Environment) -> simpy.events.ProcessGenerator:
        while True:
            yield env.timeout(rng.exponential(mean_gap))
            if env.now >= duration:
                return
            env.process(request(env))

    env.process(arrivals(env))
    env.run()
    return len(latency), np.array(latency), {}


def run_textbook_predrawn(duration: float, seed: int) -> tuple[int, np.ndarray, dict]:
    """The textbook model with its random numbers drawn up front."""
    rng = np.random.default_rng(seed)
    n_max = int(RATE * duration + 10 * math.sqrt(RATE * duration) + 100)
    gaps = rng.exponential(1.0 / RATE, n_max).tolist()
    services = rng.exponential(MEAN_SERVICE, n_max).tolist()
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=WORKERS)
    latency: list[float] = []

    def request(env: simpy.Environment, service: float) -> simpy.events.ProcessGenerator:
        arrived = env.now
        with workers.request() as turn:
            yield turn
            yield env.timeout(service)
        latency.append(env.now - arrived)

    def arrivals(env: simpy.Environment) -> simpy.events.ProcessGenerator:
        for gap, service in zip(gaps, services, strict=True):
            yield env.timeout(gap)
            if env.now >= duration:
                return
            env.process(request(env, service))
        raise RuntimeError("drew too few interarrival times")

    env.process(arrivals(env))
    env.run()
    return len(latency), np.array(latency), {}


# ------------------------------------------------------------------------------------------ harness

Model = Callable[[float, int], tuple[int, np.ndarray, dict]]


def measure(name: str, model: Model, duration: float, repeats: int, seed: int) -> dict:
    """Best of ``repeats`` wall times (seeds ``seed``, ``seed + 1``, ...); statistics of the best run."""
    best: dict | None = None
    walls = []
    for r in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        n, latency, extra = model(duration, seed + r)
        wall = time.perf_counter() - t0
        walls.append(wall)
        print(
            f"  {name:22s} run {r + 1}/{repeats}: {n:,} requests in {wall:.2f} s = {n / wall:,.0f} req/s",
            flush=True,
        )
        if best is None or wall < best["wall_seconds"]:
            best = {
                "requests": n,
                "wall_seconds": wall,
                "requests_per_second": n / wall,
                "mean_response": float(latency.mean()),
                "mean_response_se": batch_means_se(latency),
                "seed": seed + r,
                **extra,
            }
    assert best is not None
    best["all_wall_seconds"] = walls
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=float, default=1e6, help="expected requests per run (default 1e6)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per model; the fastest counts (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-predrawn", action="store_true", help="skip the pre-drawn textbook variant")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    duration = args.requests / RATE
    theory = theory_mean_response()
    print(
        f"M/M/{WORKERS}, utilisation {UTILISATION}, {RATE:g} req/s for {duration:,.1f} s "
        f"(~{args.requests:,.0f} requests), best of {args.repeats}"
    )
    models: list[tuple[str, Model]] = [("cascadesim", run_cascadesim), ("textbook", run_textbook)]
    if not args.no_predrawn:
        models.append(("textbook_predrawn", run_textbook_predrawn))
    results = {name: measure(name, model, duration, args.repeats, args.seed) for name, model in models}

    cs, tb = results["cascadesim"], results["textbook"]
    ratio = cs["requests_per_second"] / tb["requests_per_second"]
    print()
    print(f"{'model':20s} {'req/s':>10s} {'mean response':>15s} {'± SE':>9s}")
    for name, r in results.items():
        print(
            f"{name:20s} {r['requests_per_second']:10,.0f} {r['mean_response'] * 1e3:12.4f} ms "
            f"{r['mean_response_se'] * 1e3:7.4f}"
        )
    print(f"{'Erlang C':20s} {'':10s} {theory * 1e3:12.4f} ms")
    print(f"\nratio cascadesim / textbook = {ratio:.2f}")
    if "textbook_predrawn" in results:
        print(
            f"ratio cascadesim / textbook pre-drawn = "
            f"{cs['requests_per_second'] / results['textbook_predrawn']['requests_per_second']:.2f}"
        )

    problems = []
    for name, r in results.items():
        z = (r["mean_response"] - theory) / r["mean_response_se"]
        if abs(z) > 4:
            problems.append(f"{name} mean response is {z:+.1f} SE from Erlang C")
    z = (cs["mean_response"] - tb["mean_response"]) / math.hypot(
        cs["mean_response_se"], tb["mean_response_se"]
    )
    if abs(z) > 4:
        problems.append(f"cascadesim and textbook mean responses differ by {z:+.1f} SE")
    if cs["timeouts"] or cs["retries"] or cs["shed"] or cs["ejected"]:
        problems.append(f"the cascadesim run was not a plain queue: {cs}")
    for p in problems:
        print("DISAGREEMENT:", p)

    stamp = dt.datetime.now().astimezone()
    report = {
        "benchmark": "bench_mm8",
        "date": stamp.isoformat(timespec="seconds"),
        "queue": {
            "workers": WORKERS,
            "utilisation": UTILISATION,
            "arrival_rate": RATE,
            "mean_service": MEAN_SERVICE,
            "duration": duration,
        },
        "theory_mean_response": theory,
        "requests_target": args.requests,
        "repeats": args.repeats,
        "results": results,
        "ratio_cascadesim_over_textbook": ratio,
        "agree": not problems,
        "problems": problems,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "simpy": simpy.__version__,
            "numpy": np.__version__,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench_mm8-{stamp:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
