"""A synthetic day of a 10,000-server service, as stored records, to measure the report at scale.

Simulating 24 hours of 10,000 servers takes far too long for a test; the report only reads records,
so this builds records of that size directly: 8 regions, 20 datacenters of 500 servers, 30 links,
one-minute windows over 24 hours, random server crashes all day and a datacenter outage at noon that
cascades (servers down, ejections, databases failing over, overloads next door, SLO breaches).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

import sim
from sim.report.stored import StoredResult

REGIONS = [f"region-{i}" for i in range(8)]
DCS = [f"dc-{i:02d}" for i in range(20)]
SERVERS_PER_DC = 500
DAY = 86_400.0
WINDOW = 60.0


def scenario() -> sim.Scenario:
    data = {
        "name": "synthetic-day",
        "duration": "24h",
        "topology": {
            "regions": [
                {
                    "id": r,
                    "users": 10_000_000,
                    "datacenters": {DCS[(2 * i + k) % len(DCS)]: f"{10 + 10 * k}ms" for k in range(3)},
                }
                for i, r in enumerate(REGIONS)
            ],
            "datacenters": [
                {
                    "id": dc,
                    "location": f"city {dc}",
                    "servers": [{"id": f"m{dc[3:]}", "count": SERVERS_PER_DC, "service_time": "50ms"}],
                }
                for dc in DCS
            ],
            "links": [
                {"between": [DCS[i], DCS[(i + k) % len(DCS)]], "capacity": "100Gbps", "latency": "20ms"}
                for i in range(len(DCS))
                for k in (1, 3)
                if i < 15
            ],
            "databases": [
                {
                    "id": "db",
                    "count": 2000,
                    "placement": [{"datacenter": DCS[0], "copies": 1}, {"datacenter": DCS[1], "copies": 1}],
                }
            ],
            "dependencies": [{"id": "directory", "service_time": "5ms"}],
        },
        "workload": {"regions": {r: {"peak": "1000/s", "profile": "diurnal"} for r in REGIONS}},
        "faults": [
            {"id": "random-hardware", "kind": "server_crash", "target": {}, "mtbf": "2000h", "mttr": "8h"},
            {
                "id": "dc-00-outage",
                "kind": "datacenter_outage",
                "target": {"ids": [DCS[0]]},
                "at": "12h",
                "duration": "2h",
            },
        ],
        "slo": {"availability": "99.9%", "window": "1m"},
        "engine": "flow",  # a day of 10,000 servers, as the flow engine would run it
    }
    return sim.parse_scenario(yaml.safe_dump(data, sort_keys=False), "synthetic.yaml")


def result() -> StoredResult:
    rng = np.random.default_rng(7)
    sc = scenario()
    n = int(DAY / WINDOW)
    events: list[dict] = []

    def add(t: float, kind: str, node: str, cause: int | None, fault: str | None, detail: str = "") -> int:
        events.append(
            {
                "id": len(events),
                "time": round(float(t), 3),
                "kind": kind,
                "node": node,
                "cause": cause,
                "fault": fault,
                "detail": detail,
            }
        )
        return len(events) - 1

    servers = [f"m{dc[3:]}-{k:03d}" for dc in DCS for k in range(1, SERVERS_PER_DC + 1)]
    # Random hardware all day: ~120 crashes, each with its ejection, databases and repair.
    for t in np.sort(rng.uniform(0, DAY, 120)):
        s = servers[int(rng.integers(len(servers)))]
        start = add(
            t, "fault_start", f"random-hardware/{s}", None, "random-hardware", "server_crash (random)"
        )
        down = add(t, "server_down", s, start, "random-hardware", "crashed")
        add(t + 15, "ejected", s, down, "random-hardware", "3 health checks failed (down)")
        end_t = min(DAY, t + rng.exponential(8 * 3600))
        end = add(
            end_t, "fault_end", f"random-hardware/{s}", start, "random-hardware", "server_crash repaired"
        )
        up = add(end_t, "server_up", s, end, "random-hardware", "repaired")
        add(end_t + 15, "readmitted", s, up, "random-hardware", "2 health checks passed")
    # Noon: dc-00 goes dark; its servers, databases, users move; dc-01 overloads; breaches.
    noon = 12 * 3600.0
    start = add(noon, "fault_start", "dc-00-outage", None, "dc-00-outage", "datacenter_outage: dc-00")
    dark = add(noon, "datacenter_down", DCS[0], start, "dc-00-outage", "outage")
    downs = [
        add(noon, "server_down", s, dark, "dc-00-outage", "datacenter down") for s in servers[:SERVERS_PER_DC]
    ]
    for d in downs:
        add(noon + 15, "ejected", events[d]["node"], d, "dc-00-outage", "3 health checks failed (down)")
    for i in range(2000):
        lost = add(
            noon,
            "database_unavailable",
            f"db-{i + 1:04d}",
            downs[i % len(downs)],
            "dc-00-outage",
            "active copy lost",
        )
        add(noon + 30, "failover", f"db-{i + 1:04d}", lost, "dc-00-outage", "copy activated")
    shifts = [
        add(noon + 60, "traffic_shift", r, dark, "dc-00-outage", "dc-00 -> dc-01. nearest healthy")
        for r in REGIONS[:3]
    ]
    prev = shifts[0]
    for k in range(400):  # overloads feeding each other in dc-01
        prev = add(
            noon + 60 + 5 * k,
            "overloaded",
            servers[SERVERS_PER_DC + k % SERVERS_PER_DC],
            prev,
            "dc-00-outage",
            "queue wait 1.2s > 0.5s",
        )
        add(noon + 62 + 5 * k, "overload_cleared", events[prev]["node"], prev, "dc-00-outage", "")
    for r in REGIONS[:3]:
        b = add(noon + 120, "slo_breach", r, shifts[0], "dc-00-outage", "availability below the objective")
        add(noon + 3 * 3600, "slo_recovered", r, b, "dc-00-outage", "availability back above the objective")
    end = add(noon + 7200, "fault_end", "dc-00-outage", start, "dc-00-outage", "datacenter_outage ends")
    add(noon + 7200, "datacenter_up", DCS[0], end, "dc-00-outage", "")
    events.sort(key=lambda e: (e["time"], e["id"]))

    hit = (np.arange(n) >= 720) & (np.arange(n) < 900)
    timeseries = []
    for r_i, region in enumerate(REGIONS):
        req = rng.poisson(60_000, n)
        bad = np.where(hit & (r_i < 3), rng.uniform(0.01, 0.3, n), rng.uniform(0, 0.0005, n))
        ok = (req * (1 - bad)).astype(int)
        for w in range(n):
            timeseries.append(
                {
                    "time": w * WINDOW,
                    "region": region,
                    "requests": int(req[w]),
                    "ok": int(ok[w]),
                    "failed": int(req[w] - ok[w]),
                    "attempts": int(req[w] * (1 + 2 * bad[w])),
                    "retries": int(req[w] * 2 * bad[w]),
                    "timeouts": int((req[w] - ok[w]) // 2),
                    "errors": 0,
                    "shed": 0,
                    "lb_retries": 0,
                    "dep_attempts": 0,
                    "dep_retries": 0,
                    "breaker_rejected": 0,
                    "budget_exhausted": 0,
                    "availability": ok[w] / req[w],
                    "amplification": 1 + 2 * bad[w],
                    "latency_p50": float(rng.uniform(0.04, 0.06)),
                    "latency_p99": float(rng.uniform(0.2, 2.0)),
                }
            )
    dc_series = []
    for d, dc in enumerate(DCS):
        for w in range(n):
            down = d == 0 and hit[w]
            dc_series.append(
                {
                    "time": w * WINDOW,
                    "datacenter": dc,
                    "offered": float(rng.uniform(800, 1200)),
                    "capacity": 0.0 if down else 40_000.0,
                    "healthy": 0 if down else 498,
                    "up": 0 if down else 499,
                    "servers": SERVERS_PER_DC,
                }
            )
    link_series = []
    for link in sc.topology.links:
        name = "~".join(link.between)
        for w in range(n):
            util = float(rng.uniform(0.2, 1.1))
            link_series.append(
                {
                    "time": w * WINDOW,
                    "link": name,
                    "offered_bps": util * 1e11,
                    "background_bps": 0.0,
                    "capacity_bps": 1e11,
                    "utilisation": util,
                    "crossings": 1000,
                    "lost": 0,
                }
            )
    req = sum(r["requests"] for r in timeseries)
    ok = sum(r["ok"] for r in timeseries)
    regions = {
        r: {
            "availability": 0.999,
            "nines": 3.0,
            "requests": req // 8,
            "succeeded": ok // 8,
            "downtime_minutes": 180.0 if i < 3 else 0.0,
            "latency_p50": 0.05,
            "latency_p99": 0.9,
        }
        for i, r in enumerate(REGIONS)
    }
    summary = {
        "manifest": {
            "scenario": sc.name,
            "seed": 1,
            "engine": "flow",
            "duration": DAY,
            "version": "synthetic",
        },
        "availability": ok / req,
        "nines": 2.5,
        "downtime_minutes": 180.0,
        "requests": req,
        "succeeded": ok,
        "latency": {"p50": 0.05, "p99": 0.9, "mean": 0.08},
        "amplification": 1.01,
        "counts": {"failed": req - ok, "retries": 10, "attempts": req + 10, "timeouts": 5},
        "regions": regions,
        "worst_region": REGIONS[0],
        "faults": [
            {
                "id": "random-hardware",
                "kind": "server_crash",
                "occurrences": 120,
                "start": 10.0,
                "end": DAY,
                "downtime_minutes": 0.0,
                "time_to_detect": 15.0,
                "time_to_recover": 0.0,
                "recovered": True,
                "affected": servers[:200],
                "affected_count": 120,
                "blast_radius": {
                    "servers": 120,
                    "databases": 0,
                    "datacenters": 0,
                    "regions_breached": 0,
                    "users": 0,
                },
                "cascade_depth": 3,
                "events": 720,
            },
            {
                "id": "dc-00-outage",
                "kind": "datacenter_outage",
                "occurrences": 1,
                "start": noon,
                "end": noon + 7200,
                "downtime_minutes": 180.0,
                "time_to_detect": 15.0,
                "time_to_recover": 3600.0,
                "recovered": True,
                "affected": servers[:200],
                "affected_count": 2501,
                "blast_radius": {
                    "servers": 500,
                    "databases": 2000,
                    "datacenters": 1,
                    "regions_breached": 3,
                    "users": 9_000_000,
                },
                "cascade_depth": 405,
                "events": len(events) - 720,
            },
        ],
        "worst_fault": "dc-00-outage",
        "recovery": {
            "last_fault_end": noon + 7200,
            "recovered": True,
            "metastable": False,
            "time_to_recover": 3600.0,
        },
        "slo": {
            "availability": 0.999,
            "latency_p99": None,
            "window": WINDOW,
            "availability_met": False,
            "latency_met": True,
            "met": False,
        },
    }
    return StoredResult(
        folder=Path("."),
        scenario=sc,
        summary=summary,
        events=events,
        timeseries=timeseries,
        datacenter_series=dc_series,
        link_series=link_series,
    )
