"""The scenario: typed, validated, immutable description of one what-if.

A scenario is data. ``sim.loader`` turns a YAML file into a :class:`Scenario` once, at the edge; nothing
past that point sees a dict. Every model forbids unknown keys and fills defaults, and its JSON Schema is
what ``cascadesim schema`` prints (shipped as ``scenarios/scenario.schema.json``).

Cross-references (a fault naming a datacenter, a region's latency table, a database placement) are
checked by :func:`check_references`, which returns every problem at once with the path of the field
that holds it, so the loader can point at the line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from sim.units import Bandwidth, Duration, Percent, Rate

__all__ = [
    "Scenario",
    "Topology",
    "Region",
    "Datacenter",
    "ServerGroup",
    "ServiceTime",
    "Link",
    "DatabaseGroup",
    "CopyPlacement",
    "Dependency",
    "Workload",
    "RegionLoad",
    "RequestType",
    "Policies",
    "ClientPolicy",
    "Backoff",
    "LoadBalancerPolicy",
    "HealthCheck",
    "FailoverPolicy",
    "Fault",
    "Target",
    "Mode",
    "Slo",
    "Limits",
    "check_references",
]

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class Model(BaseModel):
    """Base for every scenario model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------- topology


def _service_time_shorthand(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"distribution": "exponential", "mean": value}
    return value


class ServiceTime(Model):
    """How long one request occupies a worker: ``20ms`` is shorthand for exponential with mean 20 ms."""

    distribution: Literal["exponential", "deterministic", "lognormal"] = "exponential"
    mean: Duration = Field(gt=0)
    cv: float = Field(1.0, gt=0, description="coefficient of variation (std/mean), lognormal only")


ServiceTimeField = Annotated[
    ServiceTime,
    BeforeValidator(_service_time_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "mean of an exponential service time, e.g. 20ms"},
                {"type": "number"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mean"],
                    "properties": {
                        "distribution": {"enum": ["exponential", "deterministic", "lognormal"]},
                        "mean": {"type": ["string", "number"], "description": "duration, e.g. 20ms"},
                        "cv": {"type": "number", "exclusiveMinimum": 0},
                    },
                },
            ],
            "description": "service time: a mean (exponential) or {distribution, mean, cv}",
        }
    ),
]


class ServerGroup(Model):
    """A pool of identical mailbox servers; server ids are ``<id>-<n>`` (``mbx-eu-01``)."""

    id: Id
    count: int = Field(ge=1)
    workers: int = Field(4, ge=1, description="requests served at once")
    service_time: ServiceTimeField
    frontend_time: Duration = Field(
        0.0, description="proxy work when this server fronts a request whose mailbox lives elsewhere"
    )
    queue_limit: int | None = Field(100, ge=0, description="waiting requests beyond the workers; null: none")
    labels: dict[str, str] = Field(default_factory=dict)


class Datacenter(Model):
    """A datacenter: a load-balancer tier in front of mailbox servers."""

    id: Id
    location: str = ""
    load_balancers: int = Field(2, ge=1)
    servers: list[ServerGroup] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


class Region(Model):
    """Where users are, and the round-trip time from there to each datacenter that may serve them."""

    id: Id
    users: int = Field(0, ge=0)
    datacenters: dict[str, Duration] = Field(
        min_length=1, description="datacenter id -> round-trip time; the nearest healthy one serves"
    )


class Link(Model):
    """An inter-datacenter link."""

    between: tuple[Id, Id]
    capacity: Bandwidth
    latency: Duration = 0.0


class CopyPlacement(Model):
    """How many copies of each database a datacenter holds."""

    datacenter: Id
    copies: int = Field(1, ge=1)


class DatabaseGroup(Model):
    """Mailbox databases and the layout of their copies.

    ``placement`` lists datacenters in activation preference: the first copy placed is active, the
    next healthy one takes over on failover. Copies are spread round-robin over each datacenter's
    servers, never two copies of one database on one server.
    """

    id: Id
    count: int = Field(ge=1)
    regions: list[Id] = Field(default_factory=list, description="whose users live here; empty: all")
    placement: list[CopyPlacement] = Field(min_length=1)


class Dependency(Model):
    """A shared service requests call on the way (directory/authentication, a third party)."""

    id: Id
    kind: Literal["directory", "third_party", "other"] = "directory"
    workers: int = Field(64, ge=1)
    service_time: ServiceTimeField
    queue_limit: int | None = Field(1000, ge=0)


class Topology(Model):
    """Regions of users, datacenters, links, databases and shared dependencies."""

    regions: list[Region] = Field(min_length=1)
    datacenters: list[Datacenter] = Field(min_length=1)
    links: list[Link] = Field(default_factory=list)
    databases: list[DatabaseGroup] = Field(default_factory=list)
    dependencies: list[Dependency] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------- workload


class RequestType(Model):
    """One kind of user request: its share of traffic, its cost, and what it calls on the way."""

    share: Percent
    work: float = Field(1.0, gt=0, description="multiplier on the server's service time")
    dependencies: list[Id] = Field(default_factory=list)


class RegionLoad(Model):
    """Offered load of one region: a peak rate shaped by a daily profile."""

    peak: Rate
    profile: Literal["flat", "diurnal", "monday_morning"] | list[tuple[Duration, float]] = Field(
        "flat", description="built-in shape, or [time-of-day, factor] points linearly interpolated"
    )
    start: Duration = Field(0.0, description="local time of day at which the run starts, e.g. 6h")


def _default_requests() -> dict[str, RequestType]:
    return {"read": RequestType(share=1.0)}


class Workload(Model):
    """Traffic: a load per region and a mix of request types."""

    regions: dict[Id, RegionLoad] = Field(min_length=1)
    requests: dict[Id, RequestType] = Field(default_factory=_default_requests)

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> Workload:
        total = sum(r.share for r in self.requests.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"request shares must add up to 100% (got {total:.6g} = {total * 100:.4g}%)")
        return self


# --------------------------------------------------------------------------------------------- policies


class Backoff(Model):
    """Exponential backoff between attempts: ``min(max, base * multiplier**k)``, then jitter."""

    base: Duration = 0.1
    multiplier: float = Field(2.0, ge=1.0)
    max: Duration = 10.0
    jitter: Literal["none", "full", "equal", "decorrelated"] = "full"


class ClientPolicy(Model):
    """What a user's client does: wait ``timeout`` per attempt, retry up to ``retries`` times."""

    timeout: Duration = Field(5.0, gt=0)
    retries: int = Field(2, ge=0, le=20)
    backoff: Backoff = Field(default_factory=Backoff)


class HealthCheck(Model):
    """Active health checks from the load balancer to each server."""

    enabled: bool = True
    interval: Duration = Field(5.0, gt=0)
    timeout: Duration = Field(1.0, gt=0)
    unhealthy_threshold: int = Field(3, ge=1)
    healthy_threshold: int = Field(2, ge=1)


class LoadBalancerPolicy(Model):
    """Load-balancer algorithm (see ``sim.policies.balancers``) and health checks."""

    algorithm: str = "round_robin"
    health_check: HealthCheck = Field(default_factory=HealthCheck)


class FailoverPolicy(Model):
    """Database and datacenter failover."""

    database_delay: Duration = Field(30.0, description="from losing an active copy to activating the next")
    datacenter_delay: Duration = Field(
        60.0, description="from a datacenter going dark to the traffic manager sending its users elsewhere"
    )


class Policies(Model):
    """Client, load-balancer and failover policies."""

    client: ClientPolicy = Field(default_factory=ClientPolicy)
    load_balancer: LoadBalancerPolicy = Field(default_factory=LoadBalancerPolicy)
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy)


# --------------------------------------------------------------------------------------------- faults


class Mode(Model):
    """How many of the matching targets a fault hits: all, one, a count, or a percentage."""

    kind: Literal["all", "one", "count", "percent"] = "all"
    value: float = 0.0


_MODE_EXPECTED = "all, one, {count: N} or {percent: P%}"


def _parse_mode(value: Any) -> Any:
    from sim.units import parse_percent

    if isinstance(value, Mode):
        return value
    if value in ("all", "one"):
        return {"kind": value}
    if isinstance(value, dict) and len(value) == 1:
        ((key, number),) = value.items()
        if key == "count" and isinstance(number, int) and not isinstance(number, bool) and number >= 1:
            return {"kind": "count", "value": number}
        if key == "percent":
            return {"kind": "percent", "value": parse_percent(number)}
    raise ValueError(f"expected {_MODE_EXPECTED}, got {value!r}")


ModeField = Annotated[
    Mode,
    BeforeValidator(_parse_mode),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": ["all", "one"]},
                {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1}}},
                {"type": "object", "properties": {"percent": {"type": ["string", "number"]}}},
            ],
            "description": _MODE_EXPECTED,
        }
    ),
]


class Target(Model):
    """Chaos-tool style selector: filter by ids, datacenter, labels; then pick by ``mode``."""

    ids: list[Id] = Field(default_factory=list)
    datacenters: list[Id] = Field(default_factory=list)
    groups: list[Id] = Field(default_factory=list, description="server group ids")
    labels: dict[str, str] = Field(default_factory=dict)
    mode: ModeField = Field(default_factory=Mode)


class Fault(Model):
    """An injected fault: a ``kind``, a ``target`` and timing.

    Timing is either ``at`` (+ optional ``duration``; none means until the end) or a random
    renewal process per target with ``mtbf``/``mttr`` (exponential up and down times).
    """

    kind: str
    id: Id | None = None
    target: Target = Field(default_factory=Target)
    at: Duration | None = None
    duration: Duration | None = None
    mtbf: Duration | None = None
    mttr: Duration | None = None

    @model_validator(mode="after")
    def _timing(self) -> Fault:
        scheduled = self.at is not None
        random = self.mtbf is not None or self.mttr is not None
        if scheduled and random:
            raise ValueError("give either at (+ duration) or mtbf + mttr, not both")
        if not scheduled and not random:
            raise ValueError("missing timing: give at (+ duration) or mtbf + mttr")
        if random and (self.mtbf is None or self.mttr is None or self.mtbf <= 0 or self.mttr <= 0):
            raise ValueError("a random fault needs both mtbf and mttr, each greater than 0")
        if random and self.duration is not None:
            raise ValueError("duration goes with at; a random fault's downtimes come from mttr")
        return self


# --------------------------------------------------------------------------------------------- SLO


class Slo(Model):
    """Service level objectives the run is judged against (exit code 3 when breached)."""

    availability: Percent = 0.999
    latency_p99: Duration | None = None
    window: Duration = Field(60.0, gt=0, description="availability is measured per window")


class Limits(Model):
    """What one run may ask for; larger scenarios fail fast, before anything is allocated."""

    max_servers: int = Field(200_000, ge=1)
    max_databases: int = Field(2_000_000, ge=1)
    max_requests: float = Field(5e7, gt=0, description="expected user requests the request engine simulates")


class Scenario(Model):
    """One what-if: topology, workload, policies, faults and objectives."""

    name: Id
    description: str = ""
    seed: int = Field(0, ge=0)
    duration: Duration = Field(gt=0)
    engine: Literal["requests"] = "requests"
    topology: Topology
    workload: Workload
    policies: Policies = Field(default_factory=Policies)
    faults: list[Fault] = Field(default_factory=list)
    slo: Slo = Field(default_factory=Slo)
    limits: Limits = Field(default_factory=Limits)

    def fault_id(self, index: int) -> str:
        """The id of fault ``index``: its own, or ``<kind>-<index>``."""
        fault = self.faults[index]
        return fault.id or f"{fault.kind}-{index}"


# --------------------------------------------------------------------------------------------- references

Problem = tuple[tuple[str | int, ...], str]


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
    return f"no {kind} '{name}'{hint}; known: {listed or 'none'}"


def _duplicates(items: list[str], path: tuple[str | int, ...], kind: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            yield (*path, i, "id"), f"duplicate {kind} id '{item}'"
        seen.add(item)


def check_references(s: Scenario) -> list[Problem]:
    """Return every dangling reference, duplicate id and over-limit size in ``s``, with field paths."""
    from sim.faults import FAULT_KINDS
    from sim.policies import BALANCERS

    topo = s.topology
    problems: list[Problem] = []
    dcs = [d.id for d in topo.datacenters]
    regions = [r.id for r in topo.regions]
    deps = [d.id for d in topo.dependencies]
    groups = [g.id for d in topo.datacenters for g in d.servers]
    servers_by_dc = {d.id: sum(g.count for g in d.servers) for d in topo.datacenters}
    problems += _duplicates(dcs, ("topology", "datacenters"), "datacenter")
    problems += _duplicates(regions, ("topology", "regions"), "region")
    problems += _duplicates(deps, ("topology", "dependencies"), "dependency")
    problems += _duplicates([d.id for d in topo.databases], ("topology", "databases"), "database group")
    for i, dc in enumerate(topo.datacenters):
        problems += _duplicates([g.id for g in dc.servers], ("topology", "datacenters", i, "servers"), "group")
    for i, region in enumerate(topo.regions):
        for name in region.datacenters:
            if name not in dcs:
                problems.append((("topology", "regions", i, "datacenters", name), _unknown("datacenter", name, dcs)))
    for i, link in enumerate(topo.links):
        for j, name in enumerate(link.between):
            if name not in dcs:
                problems.append((("topology", "links", i, "between", j), _unknown("datacenter", name, dcs)))
        if link.between[0] == link.between[1]:
            problems.append((("topology", "links", i, "between"), "a link joins two different datacenters"))
    for i, db in enumerate(topo.databases):
        for j, name in enumerate(db.regions):
            if name not in regions:
                problems.append((("topology", "databases", i, "regions", j), _unknown("region", name, regions)))
        for j, place in enumerate(db.placement):
            path = ("topology", "databases", i, "placement", j)
            if place.datacenter not in dcs:
                problems.append(((*path, "datacenter"), _unknown("datacenter", place.datacenter, dcs)))
            elif place.copies > servers_by_dc[place.datacenter]:
                problems.append(
                    (
                        (*path, "copies"),
                        f"{place.copies} copies do not fit on the {servers_by_dc[place.datacenter]} servers "
                        f"of '{place.datacenter}' (at most one copy of a database per server)",
                    )
                )
        placed = [p.datacenter for p in db.placement]
        problems += (
            (("topology", "databases", i, "placement", j, "datacenter"), f"datacenter '{name}' listed twice")
            for j, name in enumerate(placed)
            if name in placed[:j]
        )
    for name in s.workload.regions:
        if name not in regions:
            problems.append((("workload", "regions", name), _unknown("region", name, regions)))
    for name, req in s.workload.requests.items():
        for j, dep in enumerate(req.dependencies):
            if dep not in deps:
                problems.append((("workload", "requests", name, "dependencies", j), _unknown("dependency", dep, deps)))
    if s.policies.load_balancer.algorithm not in BALANCERS:
        problems.append(
            (
                ("policies", "load_balancer", "algorithm"),
                _unknown("load-balancer algorithm", s.policies.load_balancer.algorithm, list(BALANCERS)),
            )
        )
    server_ids = {f"{g.id}-{n:02d}" for d in topo.datacenters for g in d.servers for n in range(1, g.count + 1)}
    for i, fault in enumerate(s.faults):
        if fault.kind not in FAULT_KINDS:
            problems.append((("faults", i, "kind"), _unknown("fault kind", fault.kind, list(FAULT_KINDS))))
            continue
        target = fault.target
        for j, name in enumerate(target.datacenters):
            if name not in dcs:
                problems.append((("faults", i, "target", "datacenters", j), _unknown("datacenter", name, dcs)))
        for j, name in enumerate(target.groups):
            if name not in groups:
                problems.append((("faults", i, "target", "groups", j), _unknown("server group", name, groups)))
        known_ids = {"server": server_ids, "datacenter": set(dcs), "dependency": set(deps)}[
            FAULT_KINDS[fault.kind].targets
        ]
        for j, name in enumerate(target.ids):
            if name not in known_ids:
                what = FAULT_KINDS[fault.kind].targets
                problems.append((("faults", i, "target", "ids", j), _unknown(what, name, sorted(known_ids))))
        if fault.at is not None and fault.at >= s.duration:
            problems.append((("faults", i, "at"), f"starts at {fault.at:g}s, after the run ends ({s.duration:g}s)"))
    fault_ids = [s.fault_id(i) for i in range(len(s.faults))]
    problems += _duplicates(fault_ids, ("faults",), "fault")
    problems += _size_problems(s)
    return problems


def _size_problems(s: Scenario) -> list[Problem]:
    from sim.workload import expected_requests

    topo, limits = s.topology, s.limits
    problems: list[Problem] = []
    servers = sum(g.count for d in topo.datacenters for g in d.servers)
    if servers > limits.max_servers:
        problems.append(
            (
                ("topology", "datacenters"),
                f"{servers:,} servers is more than this run may hold (limits.max_servers = {limits.max_servers:,})",
            )
        )
    databases = sum(db.count for db in topo.databases)
    if databases > limits.max_databases:
        problems.append(
            (
                ("topology", "databases"),
                f"{databases:,} databases is more than this run may hold "
                f"(limits.max_databases = {limits.max_databases:,})",
            )
        )
    requests = expected_requests(s)
    if requests > limits.max_requests:
        problems.append(
            (
                ("workload",),
                f"about {requests:.3g} user requests over {s.duration:g}s: more than the request engine "
                f"simulates in memory (limits.max_requests = {limits.max_requests:.3g}); "
                "shorten duration or lower the peak",
            )
        )
    return problems
