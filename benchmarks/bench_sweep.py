"""Sweep throughput: runs per second on the process pool (1 and 2 workers) and on a Dask LocalCluster.

The same N runs (replications of one scenario, about a second each on this machine) go through:

- the process pool with 1 worker, then with 2 workers (target: 2 workers >= 1.8x one worker);
- a ``distributed.LocalCluster`` of 2 worker processes on loopback (target: Dask's overhead per run under
  10% of a 1-second run).

Each executor is started and warmed up (one run per worker) before the clock starts, so start-up is not
counted; the executors take turns, ``--repeats`` times, and each one's fastest turn counts (on a shared
machine a burst of other work then hits them alike). The rows of every executor are checked to be
identical. Overhead per run is ``(wall(dask) - wall(pool, 2)) * 2 / N``: the extra worker-seconds Dask
spends per run.

    python benchmarks/bench_sweep.py                  # 16 runs x 3 turns of retry-storm, 30 min simulated
    python benchmarks/bench_sweep.py --runs 8 --repeats 1     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(executor, experiment, replications):
    from sim.experiments.runner import MemoryStore, run_experiment

    run_experiment(
        experiment, range(1000, 1000 + executor.workers), MemoryStore(experiment), executor
    )  # warm up
    start = time.perf_counter()
    rows = run_experiment(experiment, replications, MemoryStore(experiment), executor)
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16, help="runs per executor and repeat [16]")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the fastest counts [3]")
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "mechanisms" / "retry-storm.yaml"))
    parser.add_argument("--duration", default="30m", help="simulated time per run [30m: about a second]")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    import sim
    from sim.experiments import Dask, ProcessPool
    from sim.experiments.metrics import DEFAULT_METRICS, metric_names
    from sim.experiments.plan import Experiment, Point
    from sim.units import parse_duration

    scenario = sim.load_scenario(args.scenario)
    scenario = scenario.model_copy(update={"duration": parse_duration(args.duration)})
    known = metric_names(scenario)
    experiment = Experiment(
        "replications",
        scenario.name,
        [Point(0, scenario)],
        [known[m] for m in DEFAULT_METRICS],
        scenario.seed,
    )
    replications = range(args.runs)

    start = time.perf_counter()
    for i in range(3):
        sim.run(scenario, seed=i)
    one_run = (time.perf_counter() - start) / 3

    pools = {"pool-1": ProcessPool(1), "pool-2": ProcessPool(2)}
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster)
    executors = {**pools, "dask-2": Dask(client=client)}
    walls: dict[str, list[float]] = {name: [] for name in executors}
    rows = {}
    try:
        for executor in executors.values():  # start and warm up every executor first
            timed(executor, experiment, range(0))
        for _ in range(args.repeats):  # interleaved, so a burst of other work hits every executor alike
            for name, executor in executors.items():
                wall, rows[name] = timed(executor, experiment, replications)
                walls[name].append(wall)
    finally:
        for executor in executors.values():
            executor.close()
        client.close()
        cluster.close()

    identical = rows["pool-1"] == rows["pool-2"] == rows["dask-2"]
    wall = {name: min(w) for name, w in walls.items()}
    rate = {name: args.runs / w for name, w in wall.items()}
    speedup = rate["pool-2"] / rate["pool-1"]
    overhead = (wall["dask-2"] - wall["pool-2"]) * 2 / args.runs
    print(
        f"{scenario.name}: {args.runs} runs per executor; one run in this process {one_run:.3f} s "
        f"(load average {os.getloadavg()[0]:.2f})"
    )
    print(f"{'executor':<22}{'best wall (s)':>14}{'runs/s':>10}   all walls (s)")
    for name, label in (
        ("pool-1", "process pool, 1"),
        ("pool-2", "process pool, 2"),
        ("dask-2", "Dask LocalCluster, 2"),
    ):
        turns = ", ".join(f"{w:.2f}" for w in walls[name])
        print(f"{label:<22}{wall[name]:>14.2f}{rate[name]:>10.3f}   {turns}")
    print(f"2 workers / 1 worker = {speedup:.2f}x (target >= 1.8)")
    print(
        f"Dask overhead per run = {overhead * 1000:.0f} ms = {overhead / one_run * 100:.1f}% of a run "
        f"({overhead * 100:.1f}% of a 1-second run; target < 10%)"
    )
    print(f"rows identical across executors: {identical}")
    out = ROOT / "benchmarks" / "results" / f"bench_sweep-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "scenario": scenario.name,
                "runs": args.runs,
                "one_run_s": one_run,
                "wall_s": walls,
                "runs_per_s": rate,
                "speedup_2_vs_1": speedup,
                "dask_overhead_per_run_s": overhead,
                "rows_identical": identical,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
        + "\n"
    )
    if not identical:
        raise SystemExit("rows differ between executors")


if __name__ == "__main__":
    main()
