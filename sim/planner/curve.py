"""What a mailbox server loses at a given load: the planner's overload curve, measured on the flow engine.

For a server group (workers, service time, queue limit) under the scenario's request mix and policies,
``failed(u)`` is the share of the user requests whose database is active on one such server that fail
(after the clients' retries) when its mailbox work offered by first attempts is ``u`` times its workers.
It is measured, not derived: one short flow-engine run per point of :data:`GRID`, on a scenario of one
region and one server holding one database at a flat load, the region's front ends in another datacenter
(no faults; the client's breaker and retry budgets off, since one server's failures do not move a whole
region's; the planner adds the front-end work of the server's share of its datacenter to ``u``). The
first minute is warm-up; the share is read from the minutes after it. Curves are cached on disk by a
hash of what they depend on (:func:`cache_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sim.scenario import Scenario
from sim.sizing import mix_work
from sim.version import VERSION

__all__ = ["GRID", "Curve", "cache_dir", "measure_curve"]

GRID = (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0,
        4.0)
"""Loads (mailbox work offered by first attempts, per worker) at which the curve is measured."""

_WARMUP_WINDOWS = 1
_WINDOWS = 4
_METHOD = 2  # the measuring scenario's design: a change to it must not read curves measured on the old one


class Curve:
    """``failed(u)``: piecewise linear through the measured points, 0 at no load; above the last point the
    served share falls as ``1 / u`` (the server serves what it can).
    """

    def __init__(self, u: np.ndarray, failed: np.ndarray):
        self.u = np.concatenate([[0.0], u])
        self.failed = np.concatenate([[0.0], np.clip(failed, 0.0, 1.0)])
        self.floor = self._floor()

    def _floor(self) -> float:
        """The load under which the curve is below 1e-9 (nothing worth counting is lost)."""
        above = np.flatnonzero(self.failed > 1e-9)
        return float(self.u[max(above[0] - 1, 0)]) if above.size else float(self.u[-1])

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        last_u, last_f = self.u[-1], self.failed[-1]
        inside = np.interp(u, self.u, self.failed)
        beyond = 1.0 - (1.0 - last_f) * last_u / np.maximum(u, last_u)
        return np.where(u > last_u, beyond, inside)


def cache_dir() -> Path:
    """Where measured curves are kept: ``$CASCADESIM_CACHE/planner``, else ``~/.cache/cascadesim/planner``."""
    root = os.environ.get("CASCADESIM_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "cascadesim"
    return base / "planner"


def _curve_scenario(scenario: Scenario, group: dict[str, Any], rate: float) -> Scenario:
    """One region, one server of ``group`` holding one database, at ``rate`` first attempts per second."""
    d = scenario.model_dump()
    server = dict(group, id="server", count=1, frontend_time=0.0, labels={})
    policies = d["policies"]
    policies["client"] = dict(policies["client"], budget=None, breaker=None)
    policies["load_balancer"] = dict(policies["load_balancer"], budget=None)
    d.update(
        name="planner-curve", description="", seed=1, duration=60.0 * _WINDOWS, engine="flow",
        flow=dict(d["flow"], step=1.0, max_step=1.0, noise=False),
        faults=[], impact=None,
        slo=dict(d["slo"], window=60.0),
    )
    # The region's front ends are elsewhere (a datacenter of its own that never saturates), as in a fleet
    # where they are spread over a whole pool: the server measured does mailbox work only.
    front = {"id": "front", "count": 1, "workers": 10_000, "service_time": {"distribution": "exponential",
                                                                          "mean": 1e-3, "cv": 1.0},
             "frontend_time": 0.0, "queue_limit": None}
    d["topology"] = dict(
        d["topology"],
        regions=[{"id": "region", "users": 1000, "datacenters": {"front": 0.01}}],
        datacenters=[{"id": "front", "servers": [front]}, {"id": "back", "servers": [server]}],
        links=[{"between": ["front", "back"], "capacity": 1e15, "latency": 1e-3}],
        databases=[{"id": "db", "count": 1, "regions": ["region"], "placement": [{"datacenter": "back", "copies": 1}]}],
    )
    d["workload"] = dict(d["workload"], regions={"region": {"peak": rate, "profile": "flat"}}, mail=None)
    return Scenario.model_validate(d)


@functools.cache
def source_hash(*, planner: bool = False) -> str:
    """A hash of the model's source (the flow engine, its formulas, the control plane…; with ``planner``
    the planner's own code too), so that what other code measured or planned is not taken for this code's,
    even within one version: a curve is measured again, a plan folder is not resumed.
    """
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if (planner or "planner" not in path.parts) and "cli" not in path.parts and "report" not in path.parts:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _key(scenario: Scenario, group: dict[str, Any]) -> str:
    """What a curve depends on, hashed."""
    d = scenario.model_dump(mode="json")
    policies = {k: v for k, v in d["policies"].items() if k != "failover"}  # one server: nothing fails over
    parts = {"group": group, "policies": policies, "requests": d["workload"]["requests"],
             "dependencies": d["topology"]["dependencies"], "grid": GRID, "version": VERSION,
             "windows": [_WARMUP_WINDOWS, _WINDOWS], "method": _METHOD, "source": source_hash()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def measure_curve(scenario: Scenario, group: dict[str, Any], *, cache: bool = True) -> Curve:
    """The overload curve of servers of ``group`` (a server group as ``model_dump`` gives it) under the
    scenario's mix and policies: from the cache, or measured and cached.
    """
    from sim.run import run  # the planner measures with the engines (run imports the whole model)

    group = {k: v for k, v in group.items() if k not in ("id", "count", "labels")}
    key = _key(scenario, group)
    path = cache_dir() / f"curve-{key}.json"
    if cache and path.exists():
        try:
            data = json.loads(path.read_text())
            return Curve(np.array(data["u"]), np.array(data["failed"]))
        except (ValueError, KeyError):
            pass  # a damaged cache entry is measured again
    work = group["service_time"]["mean"] * mix_work(scenario)  # a first attempt's mailbox work, seconds
    failed = []
    for u in GRID:
        rate = u * group["workers"] / work
        result = run(_curve_scenario(scenario, group, rate))
        rec = result.recorder
        requests = sum(rec.requests[0][_WARMUP_WINDOWS:_WINDOWS])
        lost = sum(rec.failed[0][_WARMUP_WINDOWS:_WINDOWS])
        failed.append(lost / requests if requests else 0.0)
    curve = Curve(np.array(GRID), np.array(failed))
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            json.dump({"u": list(GRID), "failed": failed, "group": group}, f)
        os.replace(f.name, path)
    return curve
