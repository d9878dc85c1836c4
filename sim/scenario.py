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

from pydantic import (
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sim.faults import Fault
from sim.spec import Id, Mode, Model, Target
from sim.units import Bandwidth, Duration, Percent, Rate, Size, format_duration

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
    "Mail",
    "MailLoad",
    "MailRetry",
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


class Memory(Model):
    """Memory of a server: ``base`` plus ``per_request`` for each request it holds; crash past ``limit``."""

    limit: Size = Field(gt=0)
    base: Size = 0.0
    per_request: Size = Field(gt=0)

    @model_validator(mode="after")
    def _room(self) -> Memory:
        if self.base >= self.limit:
            raise ValueError(f"base memory fills the whole limit (got base {self.base:g} B, limit {self.limit:g} B)")
        return self

    def requests_held(self, leaked: float = 0.0) -> float:
        """How many requests fit before the limit, with ``leaked`` bytes already lost."""
        return (self.limit - self.base - leaked) / self.per_request


class Warmup(Model):
    """After a restart a server runs at ``capacity`` of its speed for ``duration`` (cold caches)."""

    duration: Duration = 0.0
    capacity: Percent = 1.0


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
    memory: Memory | None = Field(
        None, description="memory model: past its limit the server crashes (null: it never runs out)"
    )
    restart_time: Duration = Field(120.0, description="from a crash under overload to the server running again")
    warmup: Warmup = Field(default_factory=lambda: Warmup(), description="reduced capacity after a restart")


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
    """An inter-datacenter link: one pipe shared by both directions (the congestion model: ``sim.network``).

    Faults target it by its two ends: ``target: {datacenters: [a, b]}``; events name it ``a~b``.
    """

    between: tuple[Id, Id]
    capacity: Bandwidth
    latency: Duration = 0.0
    buffer: Duration = Field(
        0.1, description="queueing delay of a full link: its buffers hold this much traffic at full capacity"
    )
    averaging: Duration = Field(1.0, gt=0, description="time constant of the link's load estimate (bits/s)")


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
    size: Size = Field(
        100e3, description="bytes the request and its answer put on an inter-datacenter link it crosses"
    )


class RegionLoad(Model):
    """Offered load of one region: a peak rate shaped by a daily profile."""

    peak: Rate
    profile: (
        Literal["flat", "diurnal", "monday_morning"]
        | Annotated[list[tuple[Duration, Annotated[float, Field(ge=0)]]], Field(min_length=1)]
    ) = Field(
        "flat", description="built-in shape, or [time-of-day, factor] points linearly interpolated"
    )
    start: Duration = Field(0.0, description="local time of day at which the run starts, e.g. 6h")


def _default_requests() -> dict[str, RequestType]:
    return {"read": RequestType(share=1.0)}


class MailLoad(Model):
    """Incoming mail for the users of one region: a steady Poisson rate of messages."""

    rate: Rate = Field(gt=0)


class MailRetry(Model):
    """The sender's retry schedule: wait ``first`` after the first failure, then ``multiplier`` times
    longer after each further failure, never more than ``max`` (no jitter: senders retry on schedule).
    """

    first: Duration = Field(60.0, gt=0)
    multiplier: float = Field(2.0, ge=1.0)
    max: Duration = Field(1800.0, gt=0)

    @model_validator(mode="after")
    def _max_not_below_first(self) -> MailRetry:
        if self.max < self.first:
            raise ValueError(
                f"max is shorter than first (got max {format_duration(self.max)}, "
                f"first {format_duration(self.first)}; expected max >= first)"
            )
        return self


class Mail(Model):
    """Store-and-forward mail delivery (see ``sim.mail``): messages are delivered to the mailbox server
    holding the active copy of a database of the recipient's region; a failed delivery waits in the
    sender's queue and is retried on ``retry`` until ``give_up`` after it arrived. Mail is real load on
    the servers but is not counted in the availability of user requests.
    """

    regions: dict[Id, MailLoad] = Field(min_length=1)
    work: float = Field(0.5, gt=0, description="multiplier on the mailbox server's service time per delivery")
    retry: MailRetry = Field(default_factory=MailRetry)
    give_up: Duration = Field(172800.0, gt=0, description="the sender's retry window (then lost: expired)")
    queue_limit: int | None = Field(
        1_000_000, ge=0, description="messages each region's senders hold for retry; null: no limit"
    )
    timeout: Duration = Field(30.0, gt=0, description="the sender waits this long for one delivery attempt")


class Workload(Model):
    """Traffic: a load per region, a mix of request types and, optionally, incoming mail."""

    regions: dict[Id, RegionLoad] = Field(min_length=1)
    requests: dict[Id, RequestType] = Field(default_factory=_default_requests)
    mail: Mail | None = Field(None, description="incoming mail delivery (null: no mail)")

    @field_validator("requests")
    @classmethod
    def _shares_sum_to_one(cls, requests: dict[str, RequestType]) -> dict[str, RequestType]:
        total = sum(r.share for r in requests.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"request shares add up to {total * 100:.6g}% (expected 100%)")
        return requests


# --------------------------------------------------------------------------------------------- policies


class Backoff(Model):
    """Backoff between attempts: ``none`` retries at once; ``exponential`` waits
    ``min(max, base * multiplier**k)``, then applies the jitter.
    """

    kind: Literal["exponential", "none"] = "exponential"
    base: Duration = 0.1
    multiplier: float = Field(2.0, ge=1.0)
    max: Duration = 10.0
    jitter: Literal["none", "full", "equal", "decorrelated"] = "full"


class RetryBudget(Model):
    """A token bucket for retries (as in Finagle and gRPC): retries may add at most ``ratio`` of the
    first tries, plus ``min_per_second``; a retry with no token left is not sent.
    """

    ratio: Percent = 0.1
    min_per_second: float = Field(10.0, ge=0)


class CircuitBreaker(Model):
    """Client-side breaker: open after ``error_threshold`` of at least ``min_requests`` attempts in
    ``window`` failed; fail fast for ``open_time``; then let ``probes`` attempts through (half-open).
    """

    error_threshold: Percent = 0.5
    min_requests: int = Field(20, ge=1)
    window: Duration = Field(10.0, gt=0)
    open_time: Duration = Field(30.0, gt=0)
    probes: int = Field(5, ge=1)


class ClientPolicy(Model):
    """What a user's client does: wait ``timeout`` per attempt, retry up to ``retries`` times."""

    timeout: Duration = Field(5.0, gt=0)
    retries: int = Field(2, ge=0, le=20)
    backoff: Backoff = Field(default_factory=Backoff)
    budget: RetryBudget | None = Field(None, description="retry budget per region (null: unlimited retries)")
    breaker: CircuitBreaker | None = Field(None, description="circuit breaker per region (null: none)")


def _no_backoff() -> Backoff:
    return Backoff(kind="none")


class ServerPolicy(Model):
    """What a mailbox server does: call dependencies with a timeout and retries; shed; cancel."""

    dependency_timeout: Duration = Field(1.0, gt=0)
    dependency_retries: int = Field(0, ge=0, le=20)
    dependency_backoff: Backoff = Field(default_factory=_no_backoff)
    dependency_budget: RetryBudget | None = None
    cancellation: bool = Field(
        False, description="deadline propagation: drop work whose caller has already given up"
    )
    max_queue_wait: Duration | None = Field(
        None, description="latency-based shedding: refuse a request that would wait longer (null: off)"
    )
    lifo_when_waiting: Duration | None = Field(
        None, description="adaptive LIFO: while the expected wait exceeds this, serve the newest first (null: FIFO)"
    )
    overload_threshold: Duration = Field(
        0.5, gt=0, description="a server whose queue wait exceeds this is overloaded (an event)"
    )


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
    retries: int = Field(0, ge=0, le=20, description="tries on other servers after an error or a try timeout")
    try_timeout: Duration | None = Field(None, gt=0, description="per-try timeout (null: the client's)")
    backoff: Backoff = Field(default_factory=_no_backoff)
    budget: RetryBudget | None = None
    panic_threshold: Percent = Field(
        0.0, description="below this share of healthy servers, send to all of them (Envoy's panic mode)"
    )


class FailoverPolicy(Model):
    """Database and datacenter failover."""

    database_delay: Duration = Field(30.0, description="from losing an active copy to activating the next")
    datacenter_delay: Duration = Field(
        60.0, description="from a datacenter going dark to the traffic manager sending its users elsewhere"
    )
    failback: bool = Field(
        False, description="move a database back to its preferred copy when that server returns"
    )
    max_activations_per_minute: int | None = Field(
        None, ge=1, description="rate-limited failover: database activations per minute (null: no limit)"
    )


class Policies(Model):
    """Client, load-balancer, server and failover policies."""

    client: ClientPolicy = Field(default_factory=ClientPolicy)
    load_balancer: LoadBalancerPolicy = Field(default_factory=LoadBalancerPolicy)
    server: ServerPolicy = Field(default_factory=ServerPolicy)
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy)


# --------------------------------------------------------------------------------------------- faults


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


class FlowSettings(Model):
    """How the flow engine (``engine: flow``) steps through time."""

    step: Duration = Field(1.0, gt=0, description="time step while anything changes")
    max_step: Duration = Field(
        30.0, gt=0, description="longest step while nothing changes (adaptive steps); equal to step: fixed steps"
    )
    noise: bool = Field(False, description="Poisson noise on arrivals (Monte Carlo); off: deterministic")


ENGINE_AUTO_THRESHOLD = 2e6
"""``engine: auto`` uses the flow engine above this many expected user requests (about 20 s of the
request engine), the request engine below it."""


class Scenario(Model):
    """One what-if: topology, workload, policies, faults and objectives."""

    name: Id
    description: str = ""
    seed: int = Field(0, ge=0)
    duration: Duration = Field(gt=0)
    engine: Literal["requests", "flow", "auto"] = Field(
        "requests",
        description="how traffic moves: every request, rates per time step (flow), or by size (auto)",
    )
    flow: FlowSettings = Field(default_factory=lambda: FlowSettings())
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

_NAMESPACE = "regions, datacenters, server groups, database groups and dependencies need distinct ids"


def _path_text(path: tuple[str | int, ...]) -> str:
    from sim.errors import format_path

    return format_path(path)


def _unknown(kind: str, name: str, known: list[str]) -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f"no {kind} '{name}'{hint}; known: {listed or 'none'}"


def _duplicates(items: list[str], path: tuple[str | int, ...], kind: str) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item in first:
            where = _path_text((*path, first[item]))
            yield (*path, i, "id"), f"duplicate {kind} id '{item}' (already used by {where})"
        else:
            first[item] = i


def _numbered(name: str, counts: dict[str, int], width: int) -> str | None:
    """Return the group whose ``<group>-<n:0width>`` ids include ``name``, if any (without listing them)."""
    group, _, digits = name.rpartition("-")
    if not (group in counts and digits.isdigit() and digits.isascii()):
        return None
    n = int(digits)
    return group if 1 <= n <= counts[group] and f"{n:0{width}d}" == digits else None


def _unknown_server(name: str, counts: dict[str, int]) -> str:
    group, _, digits = name.rpartition("-")
    if group in counts and digits.isdigit() and digits.isascii():
        n, last = int(digits), counts[group]
        if 1 <= n <= last:
            return f"no server '{name}' (did you mean '{group}-{n:02d}'?)"
        return f"no server '{name}' (group '{group}' has {group}-01 to {group}-{last:02d})"
    if sum(counts.values()) <= 10_000:
        return _unknown("server", name, [f"{g}-{n:02d}" for g, c in counts.items() for n in range(1, c + 1)])
    group = name.rpartition("-")[0]
    close = difflib.get_close_matches(group, list(counts), n=1, cutoff=0.6)
    hint = f" (did you mean a server of group '{close[0]}'?)" if close else ""
    groups = ", ".join(counts)
    return f"no server '{name}'{hint}; server ids are <group>-01, <group>-02, ... for groups: {groups}"


def _topology_ids(s: Scenario) -> list[Problem]:
    """Ids that name nodes of the topology graph must be distinct, across kinds too."""
    topo = s.topology
    named: list[tuple[str, tuple[str | int, ...], str]] = []
    for kind, field, items in (
        ("region", "regions", topo.regions),
        ("datacenter", "datacenters", topo.datacenters),
    ):
        named += [(kind, ("topology", field, i, "id"), item.id) for i, item in enumerate(items)]
    named += [
        ("server group", ("topology", "datacenters", i, "servers", j, "id"), g.id)
        for i, d in enumerate(topo.datacenters)
        for j, g in enumerate(d.servers)
    ]
    for kind, field, items in (
        ("database group", "databases", topo.databases),
        ("dependency", "dependencies", topo.dependencies),
    ):
        named += [(kind, ("topology", field, i, "id"), item.id) for i, item in enumerate(items)]
    problems: list[Problem] = []
    first: dict[str, tuple[str, tuple[str | int, ...]]] = {}
    for kind, path, name in named:
        if name not in first:
            first[name] = (kind, path)
            continue
        other_kind, other_path = first[name]
        where = _path_text(other_path[:-1])
        if other_kind == kind:
            problems.append((path, f"duplicate {kind} id '{name}' (already used by {where})"))
        else:
            problems.append((path, f"id '{name}' is already the {other_kind} {where} ({_NAMESPACE})"))
    servers = {g.id: g.count for d in topo.datacenters for g in d.servers}
    databases = {g.id: g.count for g in topo.databases}
    for kind, path, name in named:
        if kind in ("region", "datacenter", "dependency"):
            for what, counts, width in (("server", servers, 2), ("database", databases, 4)):
                group = _numbered(name, counts, width)
                if group is not None:
                    problems.append((path, f"id '{name}' is already the name of a {what} of group '{group}'"))
    return problems


def check_references(s: Scenario) -> list[Problem]:
    """Return every dangling reference, duplicate id and over-limit size in ``s``, with field paths.

    Nothing here allocates in proportion to the number of servers or databases, so a scenario asking
    for far more than its limits fails fast.
    """
    from sim.faults import FAULT_KINDS
    from sim.policies import BALANCERS

    topo = s.topology
    problems: list[Problem] = _topology_ids(s)
    dcs = [d.id for d in topo.datacenters]
    regions = [r.id for r in topo.regions]
    deps = [d.id for d in topo.dependencies]
    groups = [g.id for d in topo.datacenters for g in d.servers]
    server_counts = {g.id: g.count for d in topo.datacenters for g in d.servers}
    servers_by_dc = {d.id: sum(g.count for g in d.servers) for d in topo.datacenters}
    for i, region in enumerate(topo.regions):
        for name in region.datacenters:
            if name not in dcs:
                path = ("topology", "regions", i, "datacenters", name)
                problems.append((path, _unknown("datacenter", name, dcs)))
    linked: dict[frozenset[str], int] = {}
    for i, link in enumerate(topo.links):
        for j, name in enumerate(link.between):
            if name not in dcs:
                problems.append((("topology", "links", i, "between", j), _unknown("datacenter", name, dcs)))
        pair = frozenset(link.between)
        if len(pair) == 1:
            problems.append(
                (
                    ("topology", "links", i, "between"),
                    f"a link joins two different datacenters (got '{link.between[0]}' twice)",
                )
            )
        elif pair in linked:
            problems.append(
                (
                    ("topology", "links", i, "between"),
                    f"'{link.between[0]}' and '{link.between[1]}' are already linked by "
                    f"topology.links[{linked[pair]}]",
                )
            )
        else:
            linked[pair] = i
    for i, db in enumerate(topo.databases):
        for j, name in enumerate(db.regions):
            if name not in regions:
                path = ("topology", "databases", i, "regions", j)
                problems.append((path, _unknown("region", name, regions)))
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
                path = ("workload", "requests", name, "dependencies", j)
                problems.append((path, _unknown("dependency", dep, deps)))
    for name in s.workload.mail.regions if s.workload.mail is not None else ():
        path = ("workload", "mail", "regions", name)
        if name not in regions:
            problems.append((path, _unknown("region", name, regions)))
        elif not any(not db.regions or name in db.regions for db in topo.databases):
            problems.append((path, f"no mailbox database holds the users of region '{name}', so its mail "
                                   "has nowhere to go (expected a topology.databases group listing it)"))
    if s.policies.load_balancer.algorithm not in BALANCERS:
        problems.append(
            (
                ("policies", "load_balancer", "algorithm"),
                _unknown("load-balancer algorithm", s.policies.load_balancer.algorithm, list(BALANCERS)),
            )
        )
    known = {"datacenter": dcs, "dependency": deps, "region": regions}
    for i, fault in enumerate(s.faults):
        target = fault.target
        for j, name in enumerate(target.datacenters):
            if name not in dcs:
                path = ("faults", i, "target", "datacenters", j)
                problems.append((path, _unknown("datacenter", name, dcs)))
        for j, name in enumerate(target.groups):
            if name not in groups:
                path = ("faults", i, "target", "groups", j)
                problems.append((path, _unknown("server group", name, groups)))
        what = FAULT_KINDS[fault.kind].targets
        if what == "link":
            problems += _link_target(i, target, topo.links, dcs)
        for j, name in enumerate(target.ids if what != "link" else ()):
            path = ("faults", i, "target", "ids", j)
            if what == "server":
                if _numbered(name, server_counts, 2) is None:
                    problems.append((path, _unknown_server(name, server_counts)))
            elif name not in known[what]:
                problems.append((path, _unknown(what, name, known[what])))
        for where, what, name in fault.references():
            if name not in known[what]:
                problems.append((("faults", i, *where), _unknown(what, name, known[what])))
        if fault.at is not None and fault.at >= s.duration:
            problems.append(
                (
                    ("faults", i, "at"),
                    f"starts after the run ends (got {format_duration(fault.at)}, expected less than the "
                    f"scenario's duration, {format_duration(s.duration)})",
                )
            )
    fault_ids = [s.fault_id(i) for i in range(len(s.faults))]
    problems += _duplicates(fault_ids, ("faults",), "fault")
    problems += _size_problems(s)
    return problems


def _link_target(i: int, target: Target, links: list[Link], dcs: list[str]) -> list[Problem]:
    """Check a link fault's target: its two ends, ``target: {datacenters: [a, b]}``, and nothing else."""
    from sim.network import link_name

    path: tuple[str | int, ...] = ("faults", i, "target")
    problems: list[Problem] = [
        ((*path, field), f"a link is selected by its two ends only, target.datacenters: [a, b] (got {field})")
        for field in ("ids", "groups", "labels")
        if getattr(target, field)
    ]
    ends = target.datacenters
    if len(ends) != 2 or ends[0] == ends[1]:
        got = f"{len(ends)}: {', '.join(ends)}" if ends else "none"
        problems.append(
            ((*path, "datacenters"), f"expected the two different datacenters the link joins (got {got})")
        )
        return problems
    if any(name not in dcs for name in ends):
        return problems  # already reported, with a did-you-mean
    names = {frozenset(link.between): link_name(*link.between) for link in links}
    if frozenset(ends) not in names:
        known = sorted(names.values())
        close = difflib.get_close_matches(link_name(*ends), known, n=1, cutoff=0.6)
        hint = f" (did you mean [{', '.join(close[0].split('~'))}]?)" if close else ""
        problems.append(
            (
                (*path, "datacenters"),
                f"no link between '{ends[0]}' and '{ends[1]}' in topology.links{hint}; "
                f"links: {', '.join(known) or 'none'}",
            )
        )
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
                f"too many servers for one run (got {servers:,}, expected at most limits.max_servers = "
                f"{limits.max_servers:,})",
            )
        )
    databases = sum(db.count for db in topo.databases)
    if databases > limits.max_databases:
        problems.append(
            (
                ("topology", "databases"),
                f"too many databases for one run (got {databases:,}, expected at most limits.max_databases = "
                f"{limits.max_databases:,})",
            )
        )
    # At most 10,000 steps however long the run, so that the estimate itself is quick.
    requests = expected_requests(s, step=max(60.0, s.duration / 10_000))
    if s.engine == "requests" and requests > limits.max_requests:
        problems.append(
            (
                ("workload",),
                f"too many user requests to simulate in memory (got about {requests:.3g} over "
                f"{format_duration(s.duration)}, expected at most limits.max_requests = "
                f"{limits.max_requests:.3g}); "
                "use engine: flow, shorten duration or lower the peak",
            )
        )
    mail = s.workload.mail
    messages = sum(m.rate for m in mail.regions.values()) * s.duration if mail is not None else 0.0
    if messages > limits.max_requests:
        problems.append(
            (
                ("workload", "mail", "regions"),
                f"too many mail messages to simulate in memory (got about {messages:.3g} over "
                f"{format_duration(s.duration)}, expected at most limits.max_requests = "
                f"{limits.max_requests:.3g}); shorten duration or lower the rates",
            )
        )
    return problems
