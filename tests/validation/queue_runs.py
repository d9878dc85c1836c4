"""Scenarios that make cascadesim a textbook queue, and runs that measure it.

A plain queue is one region at zero latency from one datacenter with one server (``srv-01``), no
databases, no retries, a client timeout far beyond any response, and no health checks, so nothing
but the queue shapes the response time.

What the public :class:`~sim.result.Result` does not show (whether a request waited, how many were in
the system over time) is observed with :func:`run_probed`, which wraps two engine methods for the
length of one run: ``Station.admit`` (asking the public ``Station.wait`` first) and
``RequestEngine.start`` (to add a process sampling ``Station.outstanding()`` on a fixed grid). The
wrappers draw no random numbers and change no state the engine reads, so the run is the same run.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import simpy

import sim
from sim.engine.requests import RequestEngine
from sim.engine.stations import Station

__all__ = ["ONE_DATACENTER", "queue_scenario", "deadline_queue", "repairable_scenario", "Measured", "run_plain",
           "run_probed", "up_fraction"]

ONE_DATACENTER: dict[str, Any] = {
    "name": "validation",
    "topology": {"regions": [{"id": "users", "datacenters": {"dc": "0s"}}], "links": []},
    "policies": {"load_balancer": {"health_check": {"enabled": False}}},
    "slo": {"window": "1m"},
}
"""A base for ``tests.conftest.scenario_from``: one region at zero latency from one datacenter ``dc`` (whose
servers, and the workload, the test gives), no links and no health checks."""


def queue_scenario(
    lam: float, workers: int, duration: float, queue_limit: int | None = None, timeout: float = 1000.0,
    servers: int = 1, algorithm: str | None = None, retries: int = 0, backoff: str | None = None,
) -> sim.Scenario:
    """M/M/c (``queue_limit=None``) or M/M/c/K (``K = workers + queue_limit``) with mean service 1 s; with
    ``servers`` > 1, a pool of such servers that the load balancer's ``algorithm`` spreads ``lam`` over;
    with ``retries``, clients that retry a failed request after ``backoff`` (a YAML mapping, e.g.
    ``"{base: 100ms, jitter: full}"``)."""
    limit = "null" if queue_limit is None else str(queue_limit)
    balancer = "" if algorithm is None else f"algorithm: {algorithm}, "
    client = f"timeout: {timeout:.0f}s, retries: {retries}" + ("" if backoff is None else f", backoff: {backoff}")
    return sim.parse_scenario(f"""
name: validation-queue
duration: {duration:.0f}s
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - id: dc
      servers:
        - {{id: srv, count: {servers}, workers: {workers}, queue_limit: {limit},
            service_time: {{distribution: exponential, mean: 1s}}}}
workload: {{regions: {{users: {{peak: {lam!r}/s}}}}}}
policies:
  client: {{{client}}}
  load_balancer: {{{balancer}health_check: {{enabled: false}}}}
slo: {{window: 1h}}
""")


def deadline_queue(engine: str, service: float, rate: float, bound: float, duration: float,
                   noise: bool = False) -> sim.Scenario:
    """M/M/1+D on ``engine``: one server of one worker (exponential service of mean ``service`` seconds) that
    refuses what would wait over ``max_queue_wait`` = ``bound`` seconds, holding the one database of a region
    that sends ``rate`` requests a second (Poisson; with the flow engine's noise if ``noise``), whose client
    waits 5 s and never retries.
    """
    from tests.conftest import scenario_from

    return scenario_from({
        "duration": f"{duration:g}s", "engine": engine, "flow": {"noise": noise},
        "topology": {"datacenters": [{"id": "dc", "servers": [{
            "id": "mbx", "count": 1, "workers": 1, "service_time": f"{service * 1000:g}ms"}]}],
            "databases": [{"id": "db", "count": 1, "regions": ["users"], "placement": [{"datacenter": "dc"}]}]},
        "workload": {"regions": {"users": {"peak": f"{rate:g}/s", "profile": "flat"}}},
        "policies": {"client": {"timeout": "5s", "retries": 0}, "server": {"max_queue_wait": f"{bound:g}s"}},
        "slo": {"window": "1m"},
    }, base=ONE_DATACENTER)


def repairable_scenario(
    mtbf: float, mttr: float, lam: float, duration: float, service: str = "1ms"
) -> sim.Scenario:
    """One single-worker server that crashes and is repaired at random; tiny service time.

    The traffic manager's ``datacenter_delay`` is set beyond the run: with one datacenter it would
    otherwise send users "nowhere" during a long outage and bring them back only ``datacenter_delay``
    after the repair, which is a policy effect, not the server's availability.
    """
    return sim.parse_scenario(f"""
name: validation-repairable
duration: {duration:.0f}s
topology:
  regions: [{{id: users, datacenters: {{dc: 0s}}}}]
  datacenters:
    - {{id: dc, servers: [{{id: srv, count: 1, workers: 1, queue_limit: null, service_time: {service}}}]}}
workload: {{regions: {{users: {{peak: {lam!r}/s}}}}}}
policies:
  client: {{timeout: 1s, retries: 0}}
  load_balancer: {{health_check: {{enabled: false}}}}
  failover: {{datacenter_delay: 100y}}
faults: [{{kind: server_crash, target: {{ids: [srv-01]}}, mtbf: {mtbf:g}s, mttr: {mttr:g}s}}]
slo: {{window: 1h}}
""")


@dataclass
class Measured:
    """What one run of a plain queue showed."""

    seed: int
    duration: float
    workers: int
    requests: int
    succeeded: int
    shed: int
    timeouts: int
    latency_mean: float
    latency_p99: float
    # From the probe (zero when the run was not probed):
    admitted: int = 0
    waited: int = 0
    wait_sum: float = 0.0
    service_sum: float = 0.0
    samples: int = 0
    in_system_sum: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def arrival_rate(self) -> float:
        return self.requests / self.duration

    @property
    def blocking(self) -> float:
        return self.shed / self.requests

    @property
    def p_wait(self) -> float:
        return self.waited / self.admitted

    @property
    def mean_wait(self) -> float:
        return self.wait_sum / self.admitted

    @property
    def utilisation(self) -> float:
        """Busy worker-seconds booked / available worker-seconds."""
        return self.service_sum / (self.workers * self.duration)

    @property
    def in_system(self) -> float:
        """Time-average number of requests in the system (sampled on a grid)."""
        return self.in_system_sum / self.samples


def _measure(result: sim.Result, seed: int) -> Measured:
    s = result.summary
    lat = np.frombuffer(result.recorder.latency, dtype=np.float64)
    return Measured(
        seed=seed,
        duration=result.scenario.duration,
        workers=result.scenario.topology.datacenters[0].servers[0].workers,
        requests=s["requests"],
        succeeded=s["succeeded"],
        shed=s["counts"]["shed"],
        timeouts=s["counts"]["timeouts"],
        latency_mean=float(lat.mean()),
        latency_p99=float(s["latency"]["p99"]),
    )


def run_plain(scenario: sim.Scenario, seed: int) -> tuple[Measured, sim.Result]:
    """Run the engine untouched."""
    result = sim.run(scenario, seed=seed)
    return _measure(result, seed), result


def run_probed(scenario: sim.Scenario, seed: int, sample_every: float = 1.7) -> Measured:
    """Run with the admission and occupancy probes described in the module docstring."""
    counts = {
        "admitted": 0,
        "waited": 0,
        "wait_sum": 0.0,
        "service_sum": 0.0,
        "samples": 0,
        "in_system_sum": 0.0,
    }
    admit, start = Station.admit, RequestEngine.start

    def probed_admit(station: Station, now: float, service: float, *limits: float) -> float:
        wait = station.wait(now)
        end = admit(station, now, service, *limits)
        if end >= 0:
            counts["admitted"] += 1
            counts["service_sum"] += service
            if wait > 0:
                counts["waited"] += 1
                counts["wait_sum"] += wait
        return end

    def sampler(env: simpy.Environment, stations: Iterable[Station], until: float) -> Generator:
        stations = list(stations)
        while env.now + sample_every < until:
            yield env.timeout(sample_every)
            counts["samples"] += 1
            counts["in_system_sum"] += sum(st.outstanding() for st in stations)

    def probed_start(engine: RequestEngine) -> None:
        start(engine)
        engine.env.process(sampler(engine.env, engine.stations, engine.scenario.duration))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Station, "admit", probed_admit)
        mp.setattr(RequestEngine, "start", probed_start)
        result = sim.run(scenario, seed=seed)
    measured = _measure(result, seed)
    for name, value in counts.items():
        setattr(measured, name, value)
    return measured


def up_fraction(events: list[dict[str, Any]], node: str, until: float) -> float:
    """Fraction of ``[0, until]`` during which ``node`` was up, from its server_down/server_up events."""
    down = 0.0
    since: float | None = None
    for e in events:
        if e["node"] != node or e["time"] > until:
            continue
        if e["kind"] == "server_down":
            assert since is None, f"{node} went down twice without coming up (event {e['id']})"
            since = e["time"]
        elif e["kind"] == "server_up":
            assert since is not None, f"{node} came up without going down (event {e['id']})"
            down += e["time"] - since
            since = None
    if since is not None:
        down += until - since
    return 1.0 - down / until
