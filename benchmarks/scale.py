"""The global-day topology at any number of servers, for the scaling benchmark.

:func:`scaled` reads ``benchmarks/scenarios/global-day.yaml`` (or another scale scenario) and resizes it to
``servers`` mailbox servers, keeping everything per server the same:

- each of the ten datacenters gets ``servers / 10`` servers, in groups of 1,000 (one group when a
  datacenter has 1,000 or fewer; ``mbx-usw-g1``, ``mbx-usw-g2``, ... when it has more);
- mailbox databases: four per server (each database group scaled by ``servers / 10,000``), so each
  server still holds 16 database copies;
- the peak rate of every region, its users, the directory's workers and queue, the links' capacities and
  the failover pacing are multiplied by the same factor, so the peak load per server (100 requests/s at
  the global peak of 10^6/s for 10,000 servers), the utilisation of every queue and of every link, and
  the time a datacenter's failover takes do not change;
- a directory that would need more than ``MAX_WORKERS`` (10,000) workers, a scenario's limit, gets that
  many, each faster by the same factor: the same capacity and utilisation, a shorter call (the
  100,000-server day's directory: 10,000 workers of a quarter of the call time, not 40,000);
- faults are kept (shares of servers scale by themselves); with a shorter ``duration``, the faults that
  would start after the end are dropped.

The result is YAML text for :func:`sim.parse_scenario`::

    python benchmarks/scale.py 100000 > /tmp/day-100k.yaml       # print the 100k-server day
    python benchmarks/scale.py 1000 --duration 1h --engine requests
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, without installing the package
    sys.path.insert(0, str(ROOT))

from sim.scenario import MAX_WORKERS  # noqa: E402
from sim.units import parse_bandwidth, parse_duration, parse_rate  # noqa: E402

DAY = ROOT / "benchmarks" / "scenarios" / "global-day.yaml"
YEAR = ROOT / "benchmarks" / "scenarios" / "planners-year.yaml"
BASE_SERVERS = 10_000
GROUP = 1_000

__all__ = ["DAY", "YEAR", "BASE_SERVERS", "scaled", "scaled_data", "server_count"]


def server_count(data: dict[str, Any]) -> int:
    """Mailbox servers in a scenario given as plain data."""
    return sum(g["count"] for d in data["topology"]["datacenters"] for g in d["servers"])


def _faster(service: Any, by: float) -> Any:
    """A service time (a duration, or a distribution with a ``mean``) ``by`` times as long."""
    if isinstance(service, dict):
        return {**service, "mean": parse_duration(service["mean"]) * by}
    return parse_duration(service) * by


def _whole(x: float, what: str) -> int:
    n = round(x)
    if n < 1 or abs(n - x) > 1e-9 * max(1.0, x):
        raise ValueError(f"{what} does not scale to a whole number (got {x:g})")
    return n


def scaled_data(
    servers: int,
    source: Path = DAY,
    duration: str | None = None,
    engine: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Return the scenario in ``source`` resized to ``servers`` mailbox servers, as plain data."""
    with open(source, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data = copy.deepcopy(data)
    base = server_count(data)
    factor = servers / base
    topo = data["topology"]
    dcs = topo["datacenters"]
    per_dc = _whole(servers / len(dcs), f"{servers} servers over {len(dcs)} datacenters")
    for dc in dcs:
        (group,) = dc["servers"]  # the scale scenarios have one group per datacenter
        if per_dc <= GROUP:
            dc["servers"] = [{**group, "count": per_dc}]
        else:
            k = _whole(per_dc / GROUP, f"{per_dc} servers per datacenter in groups of {GROUP}")
            dc["servers"] = [{**group, "id": f"{group['id']}-g{j + 1}", "count": GROUP} for j in range(k)]
    for db in topo["databases"]:
        db["count"] = _whole(db["count"] * factor, f"database group {db['id']}")
    for region in topo["regions"]:
        region["users"] = round(region.get("users", 0) * factor)
    for link in topo.get("links", []):
        link["capacity"] = parse_bandwidth(link["capacity"]) * factor
    for dep in topo.get("dependencies", []):
        dep["workers"] = max(1, round(dep.get("workers", 64) * factor))
        if dep["workers"] > MAX_WORKERS:  # the scenario's limit: the same capacity from faster workers
            dep["service_time"] = _faster(dep.get("service_time", "10ms"), MAX_WORKERS / dep["workers"])
            dep["workers"] = MAX_WORKERS
        if dep.get("queue_limit") is not None:
            dep["queue_limit"] = max(1, round(dep["queue_limit"] * factor))
    for load in data["workload"]["regions"].values():
        load["peak"] = parse_rate(load["peak"]) * factor
    failover = data.get("policies", {}).get("failover", {})
    if failover.get("max_activations_per_minute"):
        failover["max_activations_per_minute"] = max(1, round(failover["max_activations_per_minute"] * factor))
    if duration is not None:
        data["duration"] = duration
        end = parse_duration(duration)
        data["faults"] = [f for f in data.get("faults", []) if f.get("at") is None or parse_duration(f["at"]) < end]
    if engine is not None:
        data["engine"] = engine
    if servers != base:
        data["description"] = f"{data['name']} resized to {servers:,} mailbox servers (benchmarks/scale.py)."
    data["name"] = name or f"{data['name']}-{_short(servers)}"
    return data


def _short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def scaled(servers: int, source: Path = DAY, duration: str | None = None, engine: str | None = None,
           name: str | None = None) -> str:
    """Return the scenario in ``source`` resized to ``servers`` mailbox servers, as YAML text."""
    data = scaled_data(servers, source, duration, engine, name)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("servers", type=int, help="mailbox servers (a multiple of 10; of 10,000 above 10,000)")
    parser.add_argument("--source", type=Path, default=DAY, help="scale scenario to resize [global-day.yaml]")
    parser.add_argument("--duration", help="shorter run, e.g. 2h (faults starting later are dropped)")
    parser.add_argument("--engine", choices=["requests", "flow", "auto"])
    args = parser.parse_args(argv)
    sys.stdout.write(scaled(args.servers, args.source, args.duration, args.engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
