"""The scenario: typed, validated, immutable description of one what-if.

A scenario is data. ``sim.loader`` turns a YAML file into a :class:`Scenario` once, at the edge; nothing
past that point sees a dict. Every model forbids unknown keys and fills defaults, and its JSON Schema is
what ``cascadesim schema`` prints (shipped as ``scenarios/scenario.schema.json``).

Cross-references (a fault naming a datacenter, a region's latency table, a database placement) are
checked by :func:`check_references`, which returns every problem at once with the path of the field
that holds it, so the loader can point at the line.
"""

from __future__ import annotations

import bisect
import difflib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sim.faults import FAULT_KINDS, Fault, TrafficSurge
from sim.spec import Id, Mode, Model, Target
from sim.units import Bandwidth, Duration, Percent, Rate, Size, duration_range, format_duration

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
    "expected_load",
    "ExpectedLoad",
]

HOUR = 3600.0
DAY = 86400.0
YEAR = 365 * DAY
MAX_COUNT = 1_000_000_000
"""The most servers in one group, and the highest ``limits.max_servers``; the limit binds first."""
MAX_WORKERS = 10_000
"""The most workers of one server or dependency: the flow engine's queue formulas loop over them."""
MAX_QUEUE = 1_000_000_000
"""The longest queue limit (waiting requests, held messages) a scenario may write."""
MAX_FACTOR = 1000.0
"""The largest multiplier on work, traffic or a profile a scenario may write."""

ShortDuration = Annotated[float, *duration_range(0.0, HOUR)]
"""A time a request or a check takes or waits: at most an hour."""
PositiveShortDuration = Annotated[float, *duration_range(0.0, HOUR, above=True)]
WorkDuration = Annotated[float, *duration_range(1e-6, HOUR)]
"""Work a request puts on a worker: from 1us (shorter vanishes against the clock late in a run) to 1h."""
DayDuration = Annotated[float, *duration_range(0.0, DAY)]
PositiveDayDuration = Annotated[float, *duration_range(0.0, DAY, above=True)]
PositiveMonthDuration = Annotated[float, *duration_range(0.0, 30 * DAY, above=True)]
MailDelay = Annotated[float, *duration_range(1.0, 30 * DAY)]
"""A sender's retry delay: at least a second (each retry is a delivery attempt)."""
CheckInterval = Annotated[float, *duration_range(0.1, HOUR)]
"""Between health checks: at least 100ms (each round sweeps every server)."""
Window = Annotated[float, *duration_range(1.0, 7 * DAY)]
"""An SLO window: at least a second (each window is a row of counters; flow steps never cross one)."""
Step = Annotated[float, *duration_range(0.001, HOUR)]
MaxStep = Annotated[float, *duration_range(0.001, DAY)]
RunDuration = Annotated[float, *duration_range(0.0, YEAR, above=True)]
"""How long a run simulates: more than 0, at most a year."""

# --------------------------------------------------------------------------------------------- topology


def _service_time_shorthand(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"distribution": "exponential", "mean": value}
    return value


class ServiceTime(Model):
    """How long one request occupies a worker: ``20ms`` is shorthand for exponential with mean 20 ms."""

    distribution: Literal["exponential", "deterministic", "lognormal"] = "exponential"
    mean: WorkDuration
    cv: float = Field(1.0, gt=0, le=100.0, description="coefficient of variation (std/mean), lognormal only")


ServiceTimeField = Annotated[
    ServiceTime,
    BeforeValidator(_service_time_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "mean of an exponential service time, e.g. 20ms"},
                {"type": "number", "minimum": 1e-6, "maximum": HOUR},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mean"],
                    "properties": {
                        "distribution": {"enum": ["exponential", "deterministic", "lognormal"]},
                        "mean": {
                            "anyOf": [{"type": "string"}, {"type": "number", "minimum": 1e-6, "maximum": HOUR}],
                            "description": "duration, e.g. 20ms (1us to 1h)",
                        },
                        "cv": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
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
    per_request: Size = Field(ge=1.0, description="bytes each request held takes (at least 1B)")

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
    count: int = Field(ge=1, le=MAX_COUNT)
    workers: int = Field(4, ge=1, le=MAX_WORKERS, description="requests served at once")
    service_time: ServiceTimeField
    frontend_time: ShortDuration = Field(
        0.0, description="proxy work when this server fronts a request whose mailbox lives elsewhere (0, or 1us to 1h)"
    )
    queue_limit: int | None = Field(
        100, ge=0, le=MAX_QUEUE, description="waiting requests beyond the workers; null: none"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    memory: Memory | None = Field(
        None, description="memory model: past its limit the server crashes (null: it never runs out)"
    )
    restart_time: Duration = Field(120.0, description="from a crash under overload to the server running again")
    warmup: Warmup = Field(default_factory=lambda: Warmup(), description="reduced capacity after a restart")

    @field_validator("frontend_time")
    @classmethod
    def _some_work_or_none(cls, value: float) -> float:
        if 0.0 < value < 1e-6:
            raise ValueError(
                f"duration too short (got {format_duration(value)}, expected 0 or at least {format_duration(1e-6)})"
            )
        return value


class Datacenter(Model):
    """A datacenter: a load-balancer tier in front of mailbox servers."""

    id: Id
    location: str = ""
    load_balancers: int = Field(2, ge=1, le=100)
    servers: list[ServerGroup] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)


class Region(Model):
    """Where users are, and the round-trip time from there to each datacenter that may serve them."""

    id: Id
    users: int = Field(0, ge=0, le=100_000_000_000)
    datacenters: dict[str, ShortDuration] = Field(
        min_length=1, description="datacenter id -> round-trip time; the nearest healthy one serves"
    )


class Link(Model):
    """An inter-datacenter link: one pipe shared by both directions (the congestion model: ``sim.network``).

    Faults target it by its two ends: ``target: {datacenters: [a, b]}``; events name it ``a~b``.
    """

    between: tuple[Id, Id]
    capacity: Bandwidth
    latency: ShortDuration = 0.0
    buffer: ShortDuration = Field(
        0.1, description="queueing delay of a full link: its buffers hold this much traffic at full capacity"
    )
    averaging: PositiveDayDuration = Field(
        1.0, description="time constant of the link's load estimate (bits/s)"
    )


class CopyPlacement(Model):
    """How many copies of each database a datacenter holds."""

    datacenter: Id
    copies: int = Field(1, ge=1, le=1000)


class DatabaseGroup(Model):
    """Mailbox databases and the layout of their copies.

    ``placement`` lists datacenters in activation preference: the first copy placed is active, the
    next healthy one takes over on failover. Copies are spread round-robin over each datacenter's
    servers, never two copies of one database on one server.
    """

    id: Id
    count: int = Field(ge=1, le=10 * MAX_COUNT)
    regions: list[Id] = Field(default_factory=list, description="whose users live here; empty: all")
    placement: list[CopyPlacement] = Field(min_length=1)


class Dependency(Model):
    """A shared service requests call on the way (directory/authentication, a third party)."""

    id: Id
    kind: Literal["directory", "third_party", "other"] = "directory"
    workers: int = Field(64, ge=1, le=MAX_WORKERS)
    service_time: ServiceTimeField
    queue_limit: int | None = Field(1000, ge=0, le=MAX_QUEUE)


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
    work: float = Field(1.0, ge=0.001, le=MAX_FACTOR, description="multiplier on the server's service time")
    dependencies: list[Id] = Field(default_factory=list)
    size: Size = Field(
        100e3, description="bytes the request and its answer put on an inter-datacenter link it crosses"
    )


class RegionLoad(Model):
    """Offered load of one region: a peak rate shaped by a daily profile."""

    peak: Rate
    profile: (
        Literal["flat", "diurnal", "monday_morning"]
        | Annotated[list[tuple[Duration, Annotated[float, Field(ge=0, le=MAX_FACTOR)]]], Field(min_length=1)]
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

    first: MailDelay = 60.0
    multiplier: float = Field(2.0, ge=1.0, le=10.0)
    max: MailDelay = 1800.0

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
    work: float = Field(
        0.5, ge=0.001, le=MAX_FACTOR, description="multiplier on the mailbox server's service time per delivery"
    )
    retry: MailRetry = Field(default_factory=MailRetry)
    give_up: PositiveMonthDuration = Field(
        172800.0, description="the sender's retry window (then lost: expired)"
    )
    queue_limit: int | None = Field(
        1_000_000, ge=0, le=MAX_QUEUE, description="messages each region's senders hold for retry; null: no limit"
    )
    timeout: PositiveShortDuration = Field(30.0, description="the sender waits this long for one delivery attempt")



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
    base: DayDuration = 0.1
    multiplier: float = Field(2.0, ge=1.0, le=100.0)
    max: DayDuration = Field(
        10.0, description="longest wait; with the client's timeout and retries it sets how long a run drains"
    )
    jitter: Literal["none", "full", "equal", "decorrelated"] = "full"


class RetryBudget(Model):
    """A token bucket for retries (as in Finagle and gRPC): retries may add at most ``ratio`` of the
    first tries, plus ``min_per_second``; a retry with no token left is not sent.
    """

    ratio: Percent = 0.1
    min_per_second: float = Field(10.0, ge=0, le=1e9)


class CircuitBreaker(Model):
    """Client-side breaker: open after ``error_threshold`` of at least ``min_requests`` attempts in
    ``window`` failed; fail fast for ``open_time``; then let ``probes`` attempts through (half-open).
    """

    error_threshold: Percent = 0.5
    min_requests: int = Field(20, ge=1, le=1_000_000_000)
    window: PositiveShortDuration = 10.0
    open_time: PositiveDayDuration = 30.0
    probes: int = Field(5, ge=1, le=1_000_000)


class ClientPolicy(Model):
    """What a user's client does: wait ``timeout`` per attempt, retry up to ``retries`` times."""

    timeout: PositiveShortDuration = 5.0
    retries: int = Field(2, ge=0, le=20)
    backoff: Backoff = Field(default_factory=Backoff)
    budget: RetryBudget | None = Field(None, description="retry budget per region (null: unlimited retries)")
    breaker: CircuitBreaker | None = Field(None, description="circuit breaker per region (null: none)")

    def drain_time(self) -> float:
        """How long after the last arrival every request has certainly finished or failed (both engines
        run this long past the scenario's duration): ``(retries + 1) × (timeout + backoff.max) + 1 s``.
        ``limits.max_drain`` bounds it.

        >>> ClientPolicy(timeout=2.0, retries=2).drain_time()
        37.0
        """
        return (self.retries + 1) * (self.timeout + self.backoff.max) + 1.0


def _no_backoff() -> Backoff:
    return Backoff(kind="none")


class ServerPolicy(Model):
    """What a mailbox server does: call dependencies with a timeout and retries; shed; cancel."""

    dependency_timeout: PositiveShortDuration = 1.0
    dependency_retries: int = Field(0, ge=0, le=20)
    dependency_backoff: Backoff = Field(default_factory=_no_backoff)
    dependency_budget: RetryBudget | None = None
    cancellation: bool = Field(
        False, description="deadline propagation: drop work whose caller has already given up"
    )
    max_queue_wait: ShortDuration | None = Field(
        None, description="latency-based shedding: refuse a request that would wait longer (null: off)"
    )
    lifo_when_waiting: ShortDuration | None = Field(
        None, description="adaptive LIFO: while the expected wait exceeds this, serve the newest first (null: FIFO)"
    )
    overload_threshold: PositiveShortDuration = Field(
        0.5, description="a server whose queue wait exceeds this is overloaded (an event)"
    )


class HealthCheck(Model):
    """Active health checks from the load balancer to each server."""

    enabled: bool = True
    interval: CheckInterval = Field(
        5.0, description="time between checks of each server (at least 100ms: each check sweeps every server)"
    )
    timeout: PositiveShortDuration = 1.0
    unhealthy_threshold: int = Field(3, ge=1, le=1000)
    healthy_threshold: int = Field(2, ge=1, le=1000)


class LoadBalancerPolicy(Model):
    """Load-balancer algorithm (see ``sim.policies.balancers``) and health checks."""

    algorithm: str = "round_robin"
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    retries: int = Field(0, ge=0, le=20, description="tries on other servers after an error or a try timeout")
    try_timeout: PositiveShortDuration | None = Field(None, description="per-try timeout (null: the client's)")
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
        None, ge=1, le=1_000_000, description="rate-limited failover: database activations per minute (null: no limit)"
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
    latency_p99: ShortDuration | None = None
    window: Window = Field(
        60.0, description="availability is measured per window (at least 1s: each window is a row of counters)"
    )


class Limits(Model):
    """What one run may ask for; larger scenarios fail fast, before anything is allocated."""

    max_servers: int = Field(200_000, ge=1, le=MAX_COUNT)
    max_databases: int = Field(2_000_000, ge=1, le=10 * MAX_COUNT)
    max_requests: float = Field(
        5e7, gt=0, le=1e12,
        description="requests the request engine simulates: the expected user requests, traffic surges "
        "included, times the most tries the retry layers allow (see expected_load)",
    )
    max_workers: int = Field(
        10_000_000, ge=1, le=1_000_000_000,
        description="workers of all servers and dependencies together (the request engine holds each)",
    )
    max_fault_events: float = Field(
        2e5, gt=0, le=1e9,
        description="expected starts and ends of random faults (mtbf/mttr) over the run, all targets together "
        "(each costs a change of the cluster; the planner's year has about 90,000)",
    )
    max_drain: PositiveMonthDuration = Field(
        3600.0,
        description="how long a run may go on after its duration for the requests under way to finish: "
        "(client retries + 1) × (client timeout + backoff max)",
    )


class FlowSettings(Model):
    """How the flow engine (``engine: flow``) steps through time."""

    step: Step = Field(
        1.0, description="time step while anything changes (at least 1ms)"
    )
    max_step: MaxStep = Field(
        30.0, description="longest step while nothing changes (adaptive steps); equal to step: fixed steps"
    )
    noise: bool = Field(False, description="Poisson noise on arrivals (Monte Carlo); off: deterministic")


ENGINE_AUTO_THRESHOLD = 2e6
"""``engine: auto`` uses the flow engine above this many expected user requests, traffic surges included
(about 20 s of the request engine), or when the request engine's limits would refuse the run; the
request engine otherwise."""


class Scenario(Model):
    """One what-if: topology, workload, policies, faults and objectives."""

    name: Id
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    duration: RunDuration
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

    @model_validator(mode="after")
    def _resolve_auto(self) -> Scenario:
        # At the edge: the limits are checked, and the run, its manifest and result rows recorded, with
        # the engine that runs, never "auto".
        if self.engine == "auto":
            object.__setattr__(self, "engine", choose_engine(self))
        return self

    def fault_id(self, index: int) -> str:
        """The id of fault ``index``: its own, or ``<kind>-<index>``."""
        fault = self.faults[index]
        return fault.id or f"{fault.kind}-{index}"


def choose_engine(s: Scenario) -> str:
    """The engine ``engine: auto`` stands for: the flow engine above :data:`ENGINE_AUTO_THRESHOLD` expected
    user requests (traffic surges included), or when the request engine's limits (``max_requests``,
    ``max_workers``) would refuse the run; the request engine otherwise. Other values are returned as they are.
    """
    if s.engine != "auto":
        return s.engine
    load = expected_load(s)
    if load.users > ENGINE_AUTO_THRESHOLD or load.tries > s.limits.max_requests:
        return "flow"
    return "flow" if _total_workers(s.topology) > s.limits.max_workers else "requests"


def _total_workers(topo: Topology) -> int:
    return sum(g.count * g.workers for d in topo.datacenters for g in d.servers) + sum(
        d.workers for d in topo.dependencies
    )


# ----------------------------------------------------------------------------------------- expected load


@dataclass(frozen=True)
class ExpectedLoad:
    """What a run asks of an engine, from the numbers in the scenario (nothing is simulated).

    ``base``: expected user requests without traffic surges; ``users``: with them (a scheduled surge
    multiplies its regions' load over its interval; a random one by its expected factor, ``1 + (m - 1) ×
    mttr / (mtbf + mttr)``, over the whole run; surges that overlap multiply). ``surges[i]``: the requests
    fault ``i`` adds by itself. ``tries``: the most tries the retry layers allow for those requests, the
    bound the request engine's work is judged by: client attempts ``users × (retries + 1)`` (or what its
    retry budget pays for, if less), each sent by the load balancer up to ``retries + 1`` times (or its
    budget), each try making its request type's dependency calls, each up to ``dependency_retries + 1``
    times. A surge's mode (one, a count, a percentage of the regions) is taken as all the regions it may pick.
    """

    base: float
    users: float
    tries: float
    surges: dict[int, float]

    @property
    def amplification(self) -> float:
        """Tries per user request, at most."""
        return self.tries / self.users if self.users > 0 else 1.0


def expected_load(s: Scenario) -> ExpectedLoad:
    """Expected user requests of ``s`` (traffic surges included) and the most tries they can make.

    Exact for the piecewise-linear profiles; quick however long the run (nothing is stepped through).

    >>> from sim.loader import parse_scenario
    >>> from sim.topology import EXAMPLE
    >>> load = expected_load(parse_scenario(EXAMPLE))
    >>> load.users == load.base, load.amplification
    (True, 3.0)
    """
    duration, regions = s.duration, s.workload.regions
    region_ids = [r.id for r in s.topology.regions]
    scheduled: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in regions}
    random: dict[str, list[tuple[float, int]]] = {name: [] for name in regions}  # (expected factor, fault)
    for i, fault in enumerate(s.faults):
        if not isinstance(fault, TrafficSurge):
            continue
        for name in fault.target.ids or region_ids:
            if name not in regions:
                continue
            if fault.at is not None:
                end = duration if fault.duration is None else min(duration, fault.at + fault.duration)
                if end > fault.at:
                    scheduled[name].append((fault.at, end, fault.multiplier, i))
            elif fault.mtbf is not None and fault.mttr is not None:
                up = fault.mttr / (fault.mtbf + fault.mttr)
                random[name].append((1.0 + (fault.multiplier - 1.0) * up, i))
    base = users = 0.0
    surges: dict[int, float] = {}
    for name, load in regions.items():
        area = _Area(load)
        steady = math.prod(f for f, _ in random[name])
        cuts = sorted({0.0, duration, *(t for a, b, _, _ in scheduled[name] for t in (a, b))})
        for a, b in zip(cuts, cuts[1:], strict=False):
            piece = area(a, b)
            active = [(m, i) for lo, hi, m, i in scheduled[name] if lo <= a and b <= hi]
            base += piece
            users += piece * steady * math.prod(m for m, _ in active)
            for m, i in active:
                surges[i] = surges.get(i, 0.0) + piece * (m - 1.0)
            for f, i in random[name]:
                surges[i] = surges.get(i, 0.0) + piece * (f - 1.0)
    return ExpectedLoad(base, users, users * _amplification(s, users), surges)


def _amplification(s: Scenario, users: float) -> float:
    """The most tries per user request the client, load-balancer and dependency layers allow."""
    if users <= 0:
        return 1.0
    p, duration = s.policies, s.duration

    def layer(first: float, retries: int, budget: RetryBudget | None, holders: int) -> float:
        most = first * (retries + 1)
        if budget is None:
            return most
        burst = 10.0 * budget.min_per_second + max(1.0, 10.0 * budget.ratio)
        paid = first * (1.0 + budget.ratio) + holders * (budget.min_per_second * duration + burst)
        return min(most, max(first, paid))

    attempts = layer(users, p.client.retries, p.client.budget, len(s.workload.regions))
    tries = layer(attempts, p.load_balancer.retries, p.load_balancer.budget, len(s.topology.datacenters))
    calls = sum(r.share * len(r.dependencies) for r in s.workload.requests.values())
    return tries * (1.0 + calls * (p.server.dependency_retries + 1)) / users


class _Area:
    """``area(a, b)``: the requests a region offers between ``a`` and ``b`` seconds into the run, exactly
    (its profile is piecewise linear over a day).
    """

    def __init__(self, load: RegionLoad):
        from sim.workload import DAY as day
        from sim.workload import profile_points

        self.points = profile_points(load)
        self.cum = [0.0]
        for (t0, f0), (t1, f1) in zip(self.points, self.points[1:], strict=False):
            self.cum.append(self.cum[-1] + (t1 - t0) * (f0 + f1) / 2.0)
        self.day, self.peak, self.start = day, load.peak, load.start

    def _upto(self, x: float) -> float:
        """The integral of the profile's factor from the start of a day to ``x`` seconds into it."""
        times = [t for t, _ in self.points]
        i = min(max(bisect.bisect_right(times, x) - 1, 0), len(times) - 2)
        (t0, f0), (t1, f1) = self.points[i], self.points[i + 1]
        fx = f0 + (f1 - f0) * (x - t0) / (t1 - t0) if t1 > t0 else f0
        return self.cum[i] + (x - t0) * (f0 + fx) / 2.0

    def _total(self, y: float) -> float:
        days, x = divmod(y, self.day)
        return days * self.cum[-1] + self._upto(x)

    def __call__(self, a: float, b: float) -> float:
        return self.peak * (self._total(self.start + b) - self._total(self.start + a))


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


def _fault_events(s: Scenario) -> dict[int, float]:
    """Expected starts and ends of each random fault (``mtbf``/``mttr``) over the run, per fault index.

    Each target fails about ``duration / (mtbf + mttr)`` times; the targets are counted from the filters
    without listing them (at most the entities of the kind the fault targets; ``ids`` count as given).
    """
    topo = s.topology
    servers = {g.id: (d.id, g.count) for d in topo.datacenters for g in d.servers}
    totals = {
        "datacenter": len(topo.datacenters),
        "dependency": len(topo.dependencies),
        "region": len(topo.regions),
        "link": 1,
    }
    out: dict[int, float] = {}
    for i, fault in enumerate(s.faults):
        if fault.mtbf is None or fault.mttr is None or fault.mtbf + fault.mttr <= 0:
            continue
        target, kind = fault.target, FAULT_KINDS[fault.kind].targets
        if kind == "server":
            if target.ids:
                count = len(target.ids)
            else:
                count = sum(
                    n
                    for g, (dc, n) in servers.items()
                    if (not target.groups or g in target.groups)
                    and (not target.datacenters or dc in target.datacenters)
                )
        else:
            count = len(set(target.ids) | set(target.datacenters)) or totals[kind]
        mode = target.mode
        if mode.kind == "one":
            count = min(count, 1)
        elif mode.kind == "count":
            count = min(count, int(mode.value))
        elif mode.kind == "percent":
            count = min(count, max(1, round(mode.value * count)))
        out[i] = 2.0 * count * s.duration / (fault.mtbf + fault.mttr)
    return out


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
    workers = _total_workers(topo)
    if s.engine == "requests" and workers > limits.max_workers and servers <= limits.max_servers:
        problems.append(
            (
                ("topology", "datacenters"),
                f"too many workers for the request engine (got {workers:,} over all servers and dependencies, "
                f"expected at most limits.max_workers = {limits.max_workers:,}); use engine: flow or fewer "
                "workers",
            )
        )
    if s.engine == "requests":
        problems += _request_problems(s)
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
    events = _fault_events(s)
    if sum(events.values()) > limits.max_fault_events:
        i = max(events, key=lambda k: events[k])
        problems.append(
            (
                ("faults", i, "mtbf"),
                f"random faults start and end too often for one run (got about {sum(events.values()):.3g} "
                f"times over {format_duration(s.duration)}, {events[i]:.3g} of them this fault's; expected at "
                f"most limits.max_fault_events = {limits.max_fault_events:.3g}); use a longer mtbf or mttr, "
                "or fewer targets",
            )
        )
    drain = _drain_problems(s)
    problems += drain
    if s.engine == "flow" and not drain:
        problems += _ring_problems(s)
    return problems


def _ring_problems(s: Scenario) -> list[Problem]:
    """The flow engine holds pending client retries per step ahead and per window of origin."""
    from sim.engine.flow import RING_CELLS, retry_ring

    client = s.policies.client
    step = s.flow.step
    slots, origins = retry_ring(client, step, max(step, s.flow.max_step), s.slo.window)
    regions, retries = len(s.topology.regions), max(client.retries, 1)
    cells = slots * regions * retries * origins
    if cells <= RING_CELLS:
        return []
    return [
        (
            ("policies", "client", "backoff"),
            f"the flow engine cannot hold the client retries this backoff leaves pending (got {cells:,} cells: "
            f"{slots:,} steps of {format_duration(step)} ahead × {origins:,} windows of "
            f"{format_duration(s.slo.window)} × {regions} region{'s' if regions != 1 else ''} × {retries} "
            f"retr{'ies' if retries != 1 else 'y'}; expected at most "
            f"{RING_CELLS:,}); use a shorter backoff, or a longer flow.step or slo.window",
        )
    ]


def _request_problems(s: Scenario) -> list[Problem]:
    """The request engine simulates every try: their worst-case count must fit ``limits.max_requests``."""
    load, limit = expected_load(s), s.limits.max_requests
    if load.tries <= limit:
        return []
    tries = load.amplification

    def got(users: float, part: str = "") -> str:
        text = f"{users:.3g} user requests over {format_duration(s.duration)}{part}"
        return f"got about {users * tries:.3g} tries: {text}, each tried up to {tries:.3g} times" if tries > 1 else (
            f"got about {text}"
        )

    expected = f"expected at most limits.max_requests = {limit:.3g}"
    if load.base * tries > limit or not load.surges:
        what = "requests" if tries > 1 else "user requests"
        return [
            (
                ("workload",),
                f"too many {what} to simulate in memory ({got(load.base)}; {expected}); use engine: flow, "
                "shorten duration or lower the peak",
            )
        ]
    i = max(load.surges, key=lambda k: load.surges[k])
    return [
        (
            ("faults", i, "multiplier"),
            f"the traffic surge '{s.fault_id(i)}' makes too many requests to simulate in memory "
            f"({got(load.users, f', {load.surges[i]:.3g} of them from this surge')}; {expected}); "
            "use engine: flow, a smaller multiplier or a shorter surge",
        )
    ]


def _drain_problems(s: Scenario) -> list[Problem]:
    """After its duration a run goes on until the requests under way are finished: that must be bounded."""
    client, limit = s.policies.client, s.limits.max_drain
    drain = client.drain_time()
    if drain <= limit:
        return []
    longest = ("backoff", "max") if client.backoff.max >= client.timeout else ("timeout",)
    return [
        (
            ("policies", "client", *longest),
            f"requests could be under way for too long after the run (got {format_duration(drain)}: "
            f"(retries + 1) × (timeout + backoff.max) + 1s = {client.retries + 1} × "
            f"({format_duration(client.timeout)} + {format_duration(client.backoff.max)}) + 1s; expected at "
            f"most limits.max_drain = {format_duration(limit)}); lower the client's backoff.max, timeout or retries",
        )
    ]
