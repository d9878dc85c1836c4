"""The flow engine: speed and memory at global scale, against the request engine, and as it scales.

Four benchmarks (``python benchmarks/bench_flow.py PART``, PART one of ``day``, ``year``, ``engines``,
``scaling`` or ``all``):

- **day**: ``benchmarks/scenarios/global-day.yaml`` — 10 datacenters, 10,000 mailbox servers, 40,000
  databases with 4 copies, 10^6 requests/s at the global peak, 24 h in 1-second steps, a bad update and
  a datacenter outage. Target: under 20 s wall and under 2 GiB peak memory on one core.
- **year**: ``benchmarks/scenarios/planners-year.yaml`` — the same topology for 365 days in 1-minute steps,
  random server failures (MTBF 2,000 h, MTTR 8 h) and two datacenter outages. Target: under 20 s.
- **engines**: scenarios both engines can run (``benchmarks/side-by-side.yaml``: 2.4 million requests
  with a datacenter outage; ``scenarios/quickstart.yaml``), each engine timed in the same process.
  Target: flow at least 100x faster, availability within 0.5 percentage points.
- **scaling**: the global day at 1k, 10k and 100k servers (``benchmarks/scale.py``: same peak load per
  server); time and memory should grow about linearly.

Every measurement runs in a fresh ``python`` process (single-threaded: ``OMP/OPENBLAS/MKL_NUM_THREADS=1``)
that imports ``sim``, loads the scenario and times ``sim.run`` with ``time.perf_counter``. Its peak
memory is the child's ``ru_maxrss`` (KiB on Linux) from ``os.wait4`` — ``getrusage(RUSAGE_CHILDREN)``
for that one child; ``RUSAGE_CHILDREN`` itself is a maximum over every child so far, so it could not
tell two measurements apart. The baseline, a process that only imports ``sim``, is measured the same
way. CPU seconds (user + system) of the child are reported beside the wall time.

Prints a table per part, writes the figures to ``benchmarks/results/bench_flow-<part>-<date>.json``
(git-ignored) and replaces the part's block of the "Flow engine" section of ``benchmarks/README.md``
(between ``<!-- flow:start -->`` and ``<!-- flow:end -->``; the section is added when missing).

    python benchmarks/bench_flow.py all                       # everything (a few minutes)
    python benchmarks/bench_flow.py day year
    python benchmarks/bench_flow.py engines --seeds 3         # the request engine over 3 seeds
    python benchmarks/bench_flow.py scaling --sizes 1000,10000 --scaling-duration 2h
    python benchmarks/bench_flow.py day --engine requests --servers 1000 --duration 2s --no-readme
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
README = BENCH / "README.md"
DAY = ROOT / "benchmarks" / "scenarios" / "global-day.yaml"
YEAR = ROOT / "benchmarks" / "scenarios" / "planners-year.yaml"
ENGINE_SCENARIOS = [BENCH / "side-by-side.yaml", ROOT / "scenarios" / "quickstart.yaml"]
PARTS = ("day", "year", "engines", "scaling")
MARK = "<!-- RESULT "
GIB = 1024**3
MIB = 1024**2

DAY_WALL, DAY_MEMORY, YEAR_WALL = 20.0, 2 * GIB, 20.0
SPEEDUP, AGREEMENT_PP = 100.0, 0.5


# ============================================================================================ the child


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this (fresh) process and return its figures."""
    t0 = time.perf_counter()
    sys.path[:0] = [str(ROOT), str(BENCH)]
    import sim

    imported = time.perf_counter()
    if spec["what"] == "baseline":
        return {"import_seconds": imported - t0}
    if spec["what"] == "engines":
        return _child_engines(spec)
    import scale

    if spec.get("servers") or spec.get("duration"):
        from sim.loader import parse_scenario

        servers = spec.get("servers") or scale.server_count(_yaml(spec["path"]))
        text = scale.scaled(servers, Path(spec["path"]), spec.get("duration"), spec.get("engine"))
        scenario = parse_scenario(text, f"{Path(spec['path']).name} at {servers} servers")
    else:
        overrides = {"engine": spec["engine"]} if spec.get("engine") else None
        scenario = sim.load_scenario(spec["path"], overrides)
    clock = _time_engine_steps()
    loaded = time.perf_counter()
    if spec.get("profile"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(sim.run, scenario)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    else:
        result = sim.run(scenario)
    ran = time.perf_counter()
    return {
        "scenario": scenario.name,
        "engine": result.summary.get("engine", scenario.engine),
        "servers": sum(g.count for d in scenario.topology.datacenters for g in d.servers),
        "databases": sum(g.count for g in scenario.topology.databases),
        "duration": scenario.duration,
        "import_seconds": imported - t0,
        "load_seconds": loaded - imported,
        "run_seconds": ran - loaded,
        # Where the run's time goes: building the model (until the flow engine's first step), the flow
        # engine's steps, and the rest of the loop (faults, health checks, failovers, records, SimPy).
        **({"setup_seconds": clock["first"] - loaded, "engine_seconds": clock["engine"],
            "answers_seconds": clock["answers"],
            "loop_seconds": ran - clock["first"] - clock["engine"] - clock["answers"]} if clock["first"] else {}),
        **_figures(result),
    }


def _time_engine_steps() -> dict[str, float]:
    """Time spent in the flow engine's steps (``FlowEngine.catch_up``) and in its answers to the control
    plane's sweeps (``probe_all``, ``wait_all``), and when the first step began."""
    from sim.engine.flow import FlowEngine

    clock = {"engine": 0.0, "answers": 0.0, "first": 0.0}

    def timed(method: Any, bucket: str) -> Any:
        def run(self: Any, *args: Any) -> Any:
            t = time.perf_counter()
            if bucket == "engine":
                clock["first"] = clock["first"] or t
            try:
                return method(self, *args)
            finally:
                clock[bucket] += time.perf_counter() - t
        return run

    FlowEngine.catch_up = timed(FlowEngine.catch_up, "engine")  # type: ignore[method-assign]
    FlowEngine.probe_all = timed(FlowEngine.probe_all, "answers")  # type: ignore[method-assign]
    FlowEngine.wait_all = timed(FlowEngine.wait_all, "answers")  # type: ignore[method-assign]
    return clock


def _yaml(path: str) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _figures(result: Any) -> dict[str, Any]:
    s = result.summary
    counts = s.get("counts", {})
    return {
        "availability": s["availability"],
        "requests": s["requests"],
        "downtime_minutes": s.get("downtime_minutes"),
        "latency_p99": (s.get("latency") or {}).get("p99"),
        "events": len(result.trace.records),
        "counts": {k: counts.get(k) for k in ("server_down", "ejected", "failover", "traffic_shift", "retries",
                                              "timeouts")},
    }


def _child_engines(spec: dict[str, Any]) -> dict[str, Any]:
    """Both engines on one scenario, in this one process: the request engine once per seed, then the
    flow engine ``repeats`` times (deterministic: the median wall counts)."""
    import gc

    import sim

    runs: dict[str, list[dict[str, Any]]] = {"requests": [], "flow": []}
    plan = [("requests", seed) for seed in spec["seeds"]] + [("flow", spec["seeds"][0])] * spec["repeats"]
    for engine, seed in plan:
        scenario = sim.load_scenario(spec["path"], {"engine": engine})
        gc.collect()
        t0 = time.perf_counter()
        result = sim.run(scenario, seed=seed)
        wall = time.perf_counter() - t0
        runs[engine].append({"seed": seed, "run_seconds": wall, **_figures(result)})
        print(f"    {engine:8s} seed {seed}: {wall:8.3f} s  availability {result.summary['availability']:.5%}",
              file=sys.stderr, flush=True)
    return {"scenario": scenario.name, "path": spec["path"], "runs": runs}


# ============================================================================================ the parent


DEFAULT_TIMEOUT = 1800.0
LIMIT = {"timeout": DEFAULT_TIMEOUT}  # seconds per measurement; --timeout


def measure(spec: dict[str, Any], label: str) -> dict[str, Any]:
    """Run ``spec`` in a fresh process; return its figures with wall, CPU time and peak memory.

    The process is killed after ``LIMIT["timeout"]`` seconds (the figures then say ``timed_out``).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "_child", json.dumps(spec)]
    print(f"  {label} ...", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    timer = threading.Timer(LIMIT["timeout"], proc.kill)
    timer.start()
    out = ""
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()  # the child's stderr goes straight to ours
    finally:
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the running maximum
        proc.returncode = os.waitstatus_to_exitcode(status)
        timer.cancel()
    wall = time.perf_counter() - t0
    line = next((x for x in reversed(out.splitlines()) if x.startswith(MARK)), None)
    figures: dict[str, Any] = json.loads(line[len(MARK):]) if line else {}
    figures.update(
        label=label,
        ok=proc.returncode == 0 and line is not None,
        returncode=proc.returncode,
        timed_out=wall >= LIMIT["timeout"] and proc.returncode < 0,
        process_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
    )
    if figures["timed_out"]:
        print(f"  {label}: TIMED OUT after {LIMIT['timeout']:g} s (killed)", flush=True)
    elif not figures["ok"]:
        print(f"  {label}: FAILED (exit status {proc.returncode}); see the traceback above", flush=True)
    return figures


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for name in ("simpy", "numpy", "networkx"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gib(n: float | None) -> str:
    return "—" if n is None else f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:,.0f} MiB"


def secs(x: float | None) -> str:
    return "—" if x is None else f"{x:,.2f} s" if x < 100 else f"{x:,.0f} s"


def pct(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def span(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size and seconds % size == 0 or unit == "min" and seconds >= size:
            return f"{seconds / size:,.4g} {unit}"
    return f"{seconds:g} s"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else "**met**" if ok else "**missed**"


def _spec(args: argparse.Namespace, path: Path, servers: int | None = None, duration: str | None = None,
          ) -> dict[str, Any]:
    return {"what": "run", "path": str(path), "engine": args.engine, "servers": servers or args.servers,
            "duration": duration or args.duration, "profile": args.profile}


# ------------------------------------------------------------------------------------ parts


def bench_single(args: argparse.Namespace, part: str, baseline: dict[str, Any]) -> dict[str, Any]:
    path, target_wall, target_mem = (DAY, DAY_WALL, DAY_MEMORY) if part == "day" else (YEAR, YEAR_WALL, None)
    r = measure(_spec(args, path), f"{part}: {path.relative_to(ROOT)}")
    if r["ok"]:
        r["above_baseline_bytes"] = r["peak_rss_bytes"] - baseline["peak_rss_bytes"]
        full = _full_duration(path)
        if r["duration"] < full:  # --duration: judge the time scaled up to the whole run (stated as such)
            r["full_duration"] = full
            setup = r.get("setup_seconds", 0.0)  # built once, whatever the duration
            r["extrapolated_seconds"] = setup + (r["run_seconds"] - setup) * full / r["duration"]
        r["wall_met"] = r.get("extrapolated_seconds", r["run_seconds"]) < target_wall
        r["memory_met"] = None if target_mem is None else r["peak_rss_bytes"] < target_mem
    r["target_wall_seconds"], r["target_memory_bytes"] = target_wall, target_mem
    print_single(part, r, baseline)
    return r


def _full_duration(path: Path) -> float:
    from sim.units import parse_duration

    return parse_duration(_yaml(str(path))["duration"])


def print_single(part: str, r: dict[str, Any], baseline: dict[str, Any]) -> None:
    if not r["ok"]:
        return
    print(f"\n{part}: {r['scenario']} ({r['engine']} engine), {r['servers']:,} servers, {r['databases']:,} databases, "
          f"{span(r['duration'])} simulated")
    target = f"target < {r['target_wall_seconds']:g} s: {'met' if r['wall_met'] else 'MISSED'}"
    rows = [("sim.run wall", secs(r["run_seconds"]), "" if "extrapolated_seconds" in r else target)]
    if "extrapolated_seconds" in r:
        rows.append((f"  x {span(r['full_duration'])} / {span(r['duration'])} (extrapolated)",
                     secs(r["extrapolated_seconds"]), target))
    for name, value, note in _split(r):
        rows.append((name, value, note))
    rows += [
        ("process wall (start, import, load, run)", secs(r["process_seconds"]), ""),
        ("process CPU (user + system)", secs(r["cpu_seconds"]), ""),
        ("loading the scenario", secs(r["load_seconds"]), ""),
        ("peak memory (max RSS)", gib(r["peak_rss_bytes"]),
         "" if r["memory_met"] is None else f"target < 2 GiB: {'met' if r['memory_met'] else 'MISSED'}"),
        ("  of which python + import sim", gib(baseline["peak_rss_bytes"]), ""),
        ("availability", pct(r["availability"]), f"downtime {r['downtime_minutes']:,.0f} min"),
        ("user requests", f"{r['requests']:,.4g}", f"events in the log: {r['events']:,}"),
    ]
    for name, value, note in rows:
        print(f"  {name:42s} {value:>12s}  {note}")


def _split(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Where ``sim.run``'s time went (flow engine only), each part extrapolated when the run was shortened."""
    if "engine_seconds" not in r:
        return []
    scale = r["full_duration"] / r["duration"] if "extrapolated_seconds" in r else 1.0
    note = (lambda x: f"x {scale:,.4g}: {secs(x * scale)}") if scale != 1.0 else (lambda x: "")
    return [("  building the model", secs(r["setup_seconds"]), ""),
            ("  the flow engine's steps", secs(r["engine_seconds"]), note(r["engine_seconds"])),
            ("  its answers to health checks", secs(r["answers_seconds"]), note(r["answers_seconds"])),
            ("  the rest: faults, checks, failovers", secs(r["loop_seconds"]),
             note(r["loop_seconds"]))]


def bench_engines(args: argparse.Namespace) -> dict[str, Any]:
    paths = [Path(p) for p in args.scenario] if args.scenario else ENGINE_SCENARIOS
    out = []
    for path in paths:
        first = args.seed if args.seed is not None else int(_yaml(str(path)).get("seed", 0))
        spec = {"what": "engines", "path": str(path), "seeds": list(range(first, first + args.seeds)),
                "repeats": args.repeats}
        r = measure(spec, f"engines: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        if r["ok"]:
            req, flow = r["runs"]["requests"], r["runs"]["flow"]
            r["requests_seconds"] = sum(x["run_seconds"] for x in req) / len(req)
            r["flow_seconds"] = sorted(x["run_seconds"] for x in flow)[len(flow) // 2]
            r["speedup"] = r["requests_seconds"] / r["flow_seconds"]
            r["requests_availability"] = sum(x["availability"] for x in req) / len(req)
            r["requests_availability_range"] = [min(x["availability"] for x in req),
                                                max(x["availability"] for x in req)]
            r["flow_availability"] = flow[0]["availability"]
            r["difference_pp"] = (r["flow_availability"] - r["requests_availability"]) * 100
            r["speed_met"] = r["speedup"] >= SPEEDUP
            r["agreement_met"] = abs(r["difference_pp"]) <= AGREEMENT_PP
            r["requests"] = req[0]["requests"]
        out.append(r)
    print_engines(out)
    return {"scenarios": out}


def print_engines(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'scenario':14s} {'requests':>11s} {'request eng.':>13s} {'flow eng.':>10s} {'speed-up':>9s} "
          f"{'avail. requests':>16s} {'avail. flow':>12s} {'diff (pp)':>10s}")
    for r in rows:
        if not r["ok"]:
            print(f"{r['label']}: failed")
            continue
        print(f"{r['scenario']:14s} {r['requests']:>11,} {r['requests_seconds']:>11.2f} s {r['flow_seconds']:>8.3f} s "
              f"{r['speedup']:>8.0f}x {pct(r['requests_availability']):>16s} {pct(r['flow_availability']):>12s} "
              f"{r['difference_pp']:>+10.3f}")
        print(f"{'':14s} target >= {SPEEDUP:g}x: {'met' if r['speed_met'] else 'MISSED'}; "
              f"|diff| <= {AGREEMENT_PP} pp: {'met' if r['agreement_met'] else 'MISSED'}")


def bench_scaling(args: argparse.Namespace, baseline: dict[str, Any]) -> dict[str, Any]:
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    rows = []
    for n in sizes:
        spec = _spec(args, DAY, servers=n, duration=args.scaling_duration)
        spec["servers"] = n
        r = measure(spec, f"scaling: {n:,} servers")
        if r["ok"]:
            r["above_baseline_bytes"] = r["peak_rss_bytes"] - baseline["peak_rss_bytes"]
        rows.append(r)
    ok = [r for r in rows if r["ok"]]
    for a, b in zip(ok, ok[1:], strict=False):
        ratio = math.log(b["servers"] / a["servers"])
        b["time_exponent"] = math.log(b["run_seconds"] / a["run_seconds"]) / ratio
        if a["above_baseline_bytes"] > 0 and b["above_baseline_bytes"] > 0:
            b["memory_exponent"] = math.log(b["above_baseline_bytes"] / a["above_baseline_bytes"]) / ratio
    out = {"sizes": sizes, "duration": args.scaling_duration or "24h", "rows": rows,
           "baseline_bytes": baseline["peak_rss_bytes"]}
    print_scaling(out)
    return out


def print_scaling(out: dict[str, Any]) -> None:
    print(f"\nscaling: global day ({out['duration']}), same peak load per server; exponent 1.0 = linear "
          "(from the previous size)")
    print(f"{'servers':>8s} {'databases':>10s} {'sim.run':>10s} {'us/server/h':>12s} {'time exp.':>10s} "
          f"{'peak RSS':>10s} {'above base':>11s} {'mem exp.':>9s} {'availability':>13s}")
    for r in out["rows"]:
        if not r["ok"]:
            print(f"{r['label']}: failed")
            continue
        per = r["run_seconds"] / r["servers"] / (r["duration"] / 3600) * 1e6
        te, me = r.get("time_exponent"), r.get("memory_exponent")
        print(f"{r['servers']:>8,} {r['databases']:>10,} {secs(r['run_seconds']):>10s} {per:>12.1f} "
              f"{'' if te is None else f'{te:.2f}':>10s} {gib(r['peak_rss_bytes']):>10s} "
              f"{gib(r['above_baseline_bytes']):>11s} {'' if me is None else f'{me:.2f}':>9s} "
              f"{pct(r['availability']):>13s}")


# ------------------------------------------------------------------------------------ README

INTRO = """\
## `bench_flow.py`: the flow engine at global scale

The rate-based engine (`engine: flow`, `sim/engine/flow/`) on the two scale scenarios, against the
request engine, and as the topology grows. Each measurement runs in a fresh single-threaded Python
process (`OMP/OPENBLAS/MKL_NUM_THREADS=1`) that imports `sim`, loads the scenario and times `sim.run`
(building the model, the run and the summary; not the reports) with `time.perf_counter`; its peak
memory is the child's `ru_maxrss` from `os.wait4` (the `RUSAGE_CHILDREN` figure of that one child),
including Python and `import sim` (the baseline, measured alone). Figures go to
`benchmarks/results/bench_flow-<part>-<date>-<time>.json`; each part rewrites its own block below.

```bash
python benchmarks/bench_flow.py all                  # day, year, engines, scaling (a few minutes)
python benchmarks/bench_flow.py day                  # or year, engines, scaling; several at once
python benchmarks/bench_flow.py engines --seeds 3    # the request engine over 3 seeds
python benchmarks/bench_flow.py scaling --sizes 1000,10000 --scaling-duration 2h
python benchmarks/bench_flow.py day --profile        # cProfile of sim.run, top 40 by cumulative time
```

- **day**: `benchmarks/scenarios/global-day.yaml`: 10 datacenters, 10,000 servers, 40,000 databases x 4
  copies, 10^6 requests/s at peak, 24 h in 1 s steps, a bad update and a datacenter outage. Target:
  under 20 s wall and under 2 GiB peak memory, one core.
- **year**: `benchmarks/scenarios/planners-year.yaml`: the same topology, 365 days in 1 min steps, random
  crashes (MTBF 2,000 h, MTTR 8 h) and 2 datacenter outages. Target: under 20 s wall.
- **engines**: `benchmarks/side-by-side.yaml` (2.4 M requests, a 5-minute datacenter outage) and
  `scenarios/quickstart.yaml`, both engines in one process. Target: flow at least 100x faster, with
  availability within 0.5 percentage points.
- **scaling**: the global day at 1k, 10k and 100k servers (`benchmarks/scale.py`: same peak load per
  server, 4 databases per server). Target: about linear in time and memory.
"""


def failure(r: dict[str, Any]) -> str:
    if r.get("timed_out"):
        return f"timed out after {r['process_seconds']:,.0f} s (killed)"
    return f"failed (exit status {r['returncode']})"


def block(part: str, body: str) -> str:
    return f"<!-- flow:{part}:start -->\n{wrap(body).rstrip()}\n<!-- flow:{part}:end -->"


def wrap(markdown: str, width: int = 105) -> str:
    """Wrap the prose paragraphs of ``markdown`` (not tables, headings, lists or code)."""
    out = []
    for line in markdown.split("\n"):
        if len(line) <= width or line.startswith(("|", "#", "-", " ", "`")):
            out.append(line)
        else:
            out.append(textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def machine_line(m: dict[str, Any], when: str) -> str:
    versions = ", ".join(f"{k} {m[k]}" for k in ("simpy", "numpy", "networkx") if k in m)
    load = "–".join(f"{x:g}" for x in m.get("load_average_range", m["load_average"][:1]))
    return (f"{when}, Python {m['python']} ({m['implementation']}), {versions}, {m['platform'].split('-with')[0]}, "
            f"{m['cpus']} cores ({m['cpu']}), load average {load} during the run.")


def md_single(part: str, r: dict[str, Any], baseline: dict[str, Any], when: str, m: dict[str, Any]) -> str:
    title = {"day": "Global day", "year": "Planner's year"}[part]
    if not r["ok"]:
        return (f"### {title}\n\n{machine_line(m, when)}\n\n"
                f"**{failure(r)}**: see the run's output.")
    if "extrapolated_seconds" in r:
        title += f" (the first {span(r['duration'])} of {span(r['full_duration'])}; time extrapolated)"
    lines = [
        f"### {title}",
        "",
        f"{machine_line(m, when)} `{r['scenario']}`, {r['engine']} engine, {r['servers']:,} servers, "
        f"{r['databases']:,} databases, {span(r['duration'])} simulated, {r['requests']:,.3g} user requests.",
        "",
        "| figure | value | target |",
        "|---|---:|---|",
        f"| `sim.run` wall | **{secs(r['run_seconds'])}** | "
        + ("" if "extrapolated_seconds" in r else f"< {r['target_wall_seconds']:g} s: {verdict(r['wall_met'])}")
        + " |",
        *([f"| extrapolated to {span(r['full_duration'])} (x {r['full_duration'] / r['duration']:,.4g}) | "
           f"**{secs(r['extrapolated_seconds'])}** | < {r['target_wall_seconds']:g} s: {verdict(r['wall_met'])} |"]
          if "extrapolated_seconds" in r else []),
        *[f"| {name.strip()} | {value} | {note} |" for name, value, note in _split(r)],
        f"| process wall (start, import, load, run) | {secs(r['process_seconds'])} | |",
        f"| process CPU (user + system) | {secs(r['cpu_seconds'])} | |",
        f"| peak memory (max RSS) | **{gib(r['peak_rss_bytes'])}** | "
        + ("" if r["memory_met"] is None else f"< 2 GiB: {verdict(r['memory_met'])}") + " |",
        f"| of which Python + `import sim` | {gib(baseline['peak_rss_bytes'])} | |",
        f"| availability | {pct(r['availability'])} | |",
        f"| downtime (SLO windows below target) | {r['downtime_minutes']:,.0f} min | |",
        f"| events in the log | {r['events']:,} | |",
    ]
    return "\n".join(lines)


def md_engines(res: dict[str, Any], when: str, m: dict[str, Any]) -> str:
    lines = ["### Engines side by side", "", machine_line(m, when), "",
             "| scenario | user requests | request engine | flow engine | speed-up | availability, requests "
             "| availability, flow | difference | targets (>= 100x; <= 0.5 pp) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res["scenarios"]:
        if not r["ok"]:
            lines.append(f"| {r['label']} | {failure(r)} | | | | | | | |")
            continue
        n = len(r["runs"]["requests"])
        spread = ""
        if n > 1:
            lo, hi = r["requests_availability_range"]
            spread = f" ({pct(lo)}–{pct(hi)} over {n} seeds)"
        lines.append(
            f"| `{r['scenario']}` | {r['requests']:,} | {r['requests_seconds']:.2f} s | {r['flow_seconds']:.3f} s | "
            f"**{r['speedup']:,.0f}x** | {pct(r['requests_availability'])}{spread} | {pct(r['flow_availability'])} | "
            f"**{r['difference_pp']:+.3f} pp** | {verdict(r['speed_met'])}; {verdict(r['agreement_met'])} |")
    lines += ["", "The request engine's time is the mean over its seeds, the flow engine's the median of "
              f"{len(res['scenarios'][0]['runs']['flow']) if res['scenarios'] and res['scenarios'][0]['ok'] else 3} "
              "runs (it is deterministic); both include building the model. The speed-up grows with the request "
              "rate: the request engine's cost is per request, the flow engine's per step and server."]
    return "\n".join(lines)


def md_scaling(out: dict[str, Any], when: str, m: dict[str, Any]) -> str:
    lines = ["### Scaling", "", f"{machine_line(m, when)} The global day, {out['duration']} simulated, "
             f"same peak load per server; baseline (Python + `import sim`) {gib(out['baseline_bytes'])}. "
             "Exponent: log(ratio of time or memory) / log(ratio of servers) from the previous size; 1.0 is linear.",
             "", "| servers | databases | `sim.run` wall | µs per server per simulated hour | time exponent | "
             "peak RSS | above baseline | memory exponent | availability |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in out["rows"]:
        if not r["ok"]:
            lines.append(f"| {r['label']} | {failure(r)} | | | | | | | |")
            continue
        per = r["run_seconds"] / r["servers"] / (r["duration"] / 3600) * 1e6
        te, me = r.get("time_exponent"), r.get("memory_exponent")
        lines.append(
            f"| {r['servers']:,} | {r['databases']:,} | {secs(r['run_seconds'])} | {per:,.1f} | "
            f"{'' if te is None else f'{te:.2f}'} | {gib(r['peak_rss_bytes'])} | {gib(r['above_baseline_bytes'])} | "
            f"{'' if me is None else f'{me:.2f}'} | {pct(r['availability'])} |")
        for what, e in (("time", te), ("memory", me)):
            if e is not None and not 0.8 <= e <= 1.2:
                why = ("superlinear" if e > 1 else
                       "sublinear: a fixed cost per step or per run weighs most at the smaller size")
                notes.append(f"{what} grows as N^{e:.2f} up to {r['servers']:,} servers ({why})")
    if notes:
        lines += ["", "Not linear: " + "; ".join(notes) + "."]
    elif sum(r["ok"] for r in out["rows"]) >= 2:
        lines += ["", "Time and memory grow about linearly (exponents within 0.8–1.2)."]
    return "\n".join(lines)


def update_readme(blocks: dict[str, str]) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- flow:start -->", "<!-- flow:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        section, tail = rest.split(end, 1)
    else:
        head, section, tail = text.rstrip() + "\n\n", "", "\n"
    parts = {}
    for part in PARTS:
        found = re.search(rf"<!-- flow:{part}:start -->.*?<!-- flow:{part}:end -->", section, re.S)
        parts[part] = found.group(0) if found else block(part, f"*`{part}` not run yet.*")
    for part, body in blocks.items():
        parts[part] = block(part, body)
    new = start + "\n" + INTRO + "\n" + "\n\n".join(parts[p] for p in PARTS) + "\n" + end
    README.write_text(head + new + tail, encoding="utf-8")


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        figures = _child(json.loads(argv[1]))
        print(MARK + json.dumps(figures), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="+", choices=[*PARTS, "all"])
    parser.add_argument("--engine", choices=["requests", "flow", "auto"],
                        help="override the scenarios' engine for day/year/scaling (to try the scripts)")
    parser.add_argument("--servers", type=int, help="resize day/year to this many servers (benchmarks/scale.py)")
    parser.add_argument("--duration", help="shorten day/year, e.g. 2h (faults starting later are dropped)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="servers for scaling [1000,10000,100000]")
    parser.add_argument("--scaling-duration", help="simulated time of each scaling run [the whole day]")
    parser.add_argument("--scenario", action="append", help="engines: scenario to run (repeatable) "
                        "[benchmarks/side-by-side.yaml, scenarios/quickstart.yaml]")
    parser.add_argument("--seeds", type=int, default=1, help="engines: request-engine runs, seeds from --seed [1]")
    parser.add_argument("--seed", type=int, default=None, help="engines: first seed [the scenario's]")
    parser.add_argument("--repeats", type=int, default=3, help="engines: flow-engine runs; the median counts [3]")
    parser.add_argument("--profile", action="store_true", help="day/year/scaling: cProfile sim.run (slower)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"kill a measurement after this many seconds [{DEFAULT_TIMEOUT:g}]")
    parser.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    LIMIT["timeout"] = args.timeout
    parts = list(PARTS) if "all" in args.parts else [p for p in PARTS if p in args.parts]

    stamp = dt.datetime.now().astimezone()
    when = f"{stamp:%Y-%m-%d %H:%M}"
    before = machine()
    print(f"bench_flow: {', '.join(parts)}; Python {before['python']}, {before['cpus']} cores ({before['cpu']}), "
          f"load average {before['load_average'][0]:g}")
    baseline = measure({"what": "baseline"}, "baseline: python + import sim")
    print(f"  baseline: {gib(baseline['peak_rss_bytes'])} peak RSS, import {baseline.get('import_seconds', 0):.2f} s")
    results: dict[str, Any] = {}
    for part in parts:
        print(f"\n== {part}", flush=True)
        if part in ("day", "year"):
            results[part] = bench_single(args, part, baseline)
        elif part == "engines":
            results[part] = bench_engines(args)
        else:
            results[part] = bench_scaling(args, baseline)
    after = machine()
    m = {**after, "load_average_range": sorted({before["load_average"][0], after["load_average"][0]})}

    blocks = {}
    for part, res in results.items():
        if part in ("day", "year"):
            blocks[part] = md_single(part, res, baseline, when, m)
        elif part == "engines":
            blocks[part] = md_engines(res, when, m)
        else:
            blocks[part] = md_scaling(res, when, m)
        payload = {"benchmark": f"bench_flow-{part}", "date": stamp.isoformat(timespec="seconds"),
                   "machine": m, "baseline": baseline, "options": {k: str(v) for k, v in vars(args).items()},
                   "results": res}
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"bench_flow-{part}-{stamp:%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    trial = args.engine or args.servers or args.profile  # a shorter --duration is reported as such
    if not args.no_readme and not trial:
        update_readme(blocks)
        print(f"updated {README.relative_to(ROOT)} (flow section: {', '.join(blocks)})")
    elif trial and not args.no_readme:
        print("not updating the README: --engine/--servers/--profile change what is measured")
    failed = [p for p, r in results.items() if not all(x["ok"] for x in _measurements(r))]
    return 1 if failed else 0


def _measurements(res: dict[str, Any]) -> list[dict[str, Any]]:
    if "scenarios" in res:
        return res["scenarios"]
    if "rows" in res:
        return res["rows"]
    return [res]


if __name__ == "__main__":
    sys.exit(main())
