"""The scenario: typed, validated, immutable description of one what-if.

A scenario is data. ``sim.loader`` turns a YAML file into a :class:`Scenario` once, at the edge; nothing
past that point sees a dict. Every model forbids unknown keys and fills defaults, and its JSON Schema is
what ``cascadesim schema`` prints (shipped as ``scenarios/scenario.schema.json``).

Each model checks its own values. What needs the whole scenario — cross-references (a fault naming a
datacenter, a region's latency table, a database placement) and sizes over ``limits`` — is checked by
:func:`sim.validate.check_references`, which the loader calls once the models pass.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sim.faults import Fault
from sim.sizing import choose_engine  # resolves engine: auto as the scenario is validated (sim.engine re-exports it)
from sim.spec import Id, Mode, Model, Target
from sim.units import Bandwidth, Duration, Percent, Rate, Size, duration_range, format_duration

__all__ = [
    "Scenario",
    "Topology",
    "Region",
    "Datacenter",
    "ServerGroup",
    "Autoscale",
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
    "ImpactCost",
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

    distribution: Literal["exponential", "deterministic", "lognormal"] = Field(
        "exponential",
        description="shape of the time: exponential (memoryless), deterministic (always the mean) or lognormal "
        "(spread by cv)",
    )
    mean: WorkDuration = Field(description="mean time one request occupies a worker", examples=["20ms"])
    cv: float = Field(1.0, gt=0, le=100.0, description="coefficient of variation (std/mean), lognormal only")


ServiceTimeField = Annotated[
    ServiceTime,
    BeforeValidator(_service_time_shorthand),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "anyOf": [
                        {"type": "string", "description": "duration: 250ms, 30s, 5m, 2h, 1d"},
                        {"type": "number", "minimum": 1e-6, "maximum": HOUR},
                    ],
                    "description": "mean of an exponential service time, e.g. 20ms",
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mean"],
                    "properties": {
                        "distribution": {
                            "enum": ["exponential", "deterministic", "lognormal"],
                            "description": "shape of the time: exponential (memoryless), deterministic (always "
                            "the mean) or lognormal (spread by cv). Default: exponential.",
                        },
                        "mean": {
                            "anyOf": [{"type": "string"}, {"type": "number", "minimum": 1e-6, "maximum": HOUR}],
                            "description": "duration, e.g. 20ms (1us to 1h)",
                        },
                        "cv": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": 100,
                            "description": "coefficient of variation (std/mean), lognormal only. Default: 1.",
                        },
                    },
                },
            ],
            "description": "service time: a mean (exponential) or {distribution, mean, cv}",
        }
    ),
]


class Memory(Model):
    """Memory of a server: ``base`` plus ``per_request`` for each request it holds; crash past ``limit``."""

    limit: Size = Field(
        gt=0, description="memory of one server: past it (base, leak and requests held) it crashes", examples=["16GB"]
    )
    base: Size = Field(0.0, description="memory in use with no request held (the process, its caches)")
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

    duration: Duration = Field(0.0, description="how long a restarted server runs slower (0: full speed at once)")
    capacity: Percent = Field(1.0, description="its speed meanwhile, as a share of full speed")


class Autoscale(Model):
    """Autoscaling of a group: when the busy share of its running servers' workers stays above ``target``,
    servers are launched (after ``detection``, ``provisioning`` and the group's ``warmup``), up to ``max``;
    when it has called for fewer servers for ``scale_in_after``, the extra are drained and stopped, down to
    ``min``. Launched servers hold no database copies: they add front-end capacity (and, without databases,
    whole requests). See :mod:`sim.autoscale`.
    """

    max: int = Field(ge=1, le=MAX_COUNT, description="most servers the group runs (at least its count)")
    min: int | None = Field(None, ge=1, le=MAX_COUNT, description="fewest it keeps running (null: its count)")
    target: Percent = Field(
        0.6, gt=0, description="the utilisation it steers to: desired servers = running x utilisation / target"
    )
    tolerance: Percent = Field(
        0.1, lt=1, description="it launches only when utilisation is above target by more than this share of it"
    )
    interval: PositiveShortDuration = Field(10.0, description="how often it samples the group's utilisation")
    detection: PositiveShortDuration = Field(
        60.0, description="utilisation is averaged over this long before a decision (the lag of detecting)"
    )
    provisioning: Duration = Field(
        180.0, description="from the decision to a new server running (then it warms up as the group's warmup says)"
    )
    scale_in_after: Duration = Field(
        600.0, description="hysteresis: servers are retired only after the utilisation has called for fewer this long"
    )
    drain: ShortDuration = Field(
        30.0, description="a retired server leaves the pool this long before it stops (requests in flight finish)"
    )

    @model_validator(mode="after")
    def _order(self) -> Autoscale:
        if self.min is not None and self.min > self.max:
            raise ValueError(f"min is above max (got min {self.min}, max {self.max})")
        if self.interval > self.detection:
            raise ValueError(f"interval is longer than detection (got interval {format_duration(self.interval)}, "
                             f"detection {format_duration(self.detection)}); expected at most detection")
        return self


class ServerGroup(Model):
    """A pool of identical mailbox servers; server ids are ``<id>-<n>`` (``mbx-eu-01``)."""

    id: Id = Field(description="the group's id; its servers are <id>-01, <id>-02, ... (faults and events name them)")
    count: int = Field(ge=1, le=MAX_COUNT, description="servers in the group")
    workers: int = Field(4, ge=1, le=MAX_WORKERS, description="requests one server serves at once")
    service_time: ServiceTimeField = Field(
        description="how long one request occupies a worker: a mean (exponential), or {distribution, mean, cv}",
        examples=["40ms"],
    )
    frontend_time: ShortDuration = Field(
        0.0,
        description="proxy work when this server fronts a request whose mailbox lives elsewhere (0, or 1us to 1h)",
        examples=["2ms"],
    )
    queue_limit: int | None = Field(
        100, ge=0, le=MAX_QUEUE, description="waiting requests beyond the workers; null: none"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="free-form tags (rack: r1, power: p2) that fault targets select servers by"
    )
    memory: Memory | None = Field(
        None, description="memory model: past its limit the server crashes (null: it never runs out)"
    )
    restart_time: Duration = Field(120.0, description="from a crash under overload to the server running again")
    warmup: Warmup = Field(
        default_factory=lambda: Warmup(), description="reduced capacity after a restart (or an autoscaler's launch)"
    )
    autoscale: Autoscale | None = Field(
        None, description="launch and retire servers on utilisation, with lag (null: a fixed count)"
    )

    @property
    def slots(self) -> int:
        """Servers the run holds for the group: its count, and the autoscaler's spares up to its max."""
        return max(self.count, self.autoscale.max) if self.autoscale is not None else self.count

    @model_validator(mode="after")
    def _autoscale_bounds(self) -> ServerGroup:
        scale = self.autoscale
        if scale is not None:
            if scale.max < self.count:
                raise ValueError(f"autoscale.max is below count (got max {scale.max}, count {self.count}); "
                                 "expected at least the servers the group starts with")
            if scale.min is not None and scale.min > self.count:
                raise ValueError(f"autoscale.min is above count (got min {scale.min}, count {self.count}); "
                                 "the group starts with count servers")
        return self

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

    id: Id = Field(description="the datacenter's id (regions, links, database placements and faults name it)")
    location: str = Field("", description="where it is, shown in the reports (e.g. Dublin)")
    load_balancers: int = Field(
        2, ge=1, le=100,
        description="load balancers of its front tier (drawn in the topology; they fail together: "
        "load_balancer_failure)",
    )
    servers: list[ServerGroup] = Field(min_length=1, description="its groups of mailbox servers (at least one)")
    labels: dict[str, str] = Field(
        default_factory=dict, description="free-form tags that fault targets select datacenters by"
    )


class Region(Model):
    """Where users are, and the round-trip time from there to each datacenter that may serve them."""

    id: Id = Field(description="the region's id (workload.regions and traffic_surge faults name it)")
    users: int = Field(
        0, ge=0, le=100_000_000_000,
        description="people in the region; only counts users affected (the load is workload.regions.<id>.peak)",
    )
    datacenters: dict[str, ShortDuration] = Field(
        min_length=1, description="datacenter id -> round-trip time; the nearest healthy one serves"
    )


class Link(Model):
    """An inter-datacenter link: one pipe shared by both directions (the congestion model: ``sim.network``).

    Faults target it by its two ends: ``target: {datacenters: [a, b]}``; events name it ``a~b``.
    """

    between: tuple[Id, Id] = Field(description="the two datacenters it joins")
    capacity: Bandwidth = Field(description="bandwidth, shared by both directions", examples=["10Gbps"])
    latency: ShortDuration = Field(
        0.0, description="delay a request crossing it adds, before any congestion delay", examples=["25ms"]
    )
    buffer: ShortDuration = Field(
        0.1, description="queueing delay of a full link: its buffers hold this much traffic at full capacity"
    )
    averaging: PositiveDayDuration = Field(
        1.0, description="time constant of the link's load estimate (bits/s)"
    )


class CopyPlacement(Model):
    """How many copies of each database a datacenter holds."""

    datacenter: Id = Field(description="the datacenter that holds copies")
    copies: int = Field(1, ge=1, le=1000, description="copies of each database there, each on its own server")


class DatabaseGroup(Model):
    """Mailbox databases and the layout of their copies.

    ``placement`` lists datacenters in activation preference: the first copy placed is active, the
    next healthy one takes over on failover. Copies are spread round-robin over each datacenter's
    servers, never two copies of one database on one server.
    """

    id: Id = Field(description="the group's id; its databases are named after it")
    count: int = Field(
        ge=1, le=10 * MAX_COUNT,
        description="mailbox databases in the group; a region's requests are spread evenly over its databases",
    )
    regions: list[Id] = Field(default_factory=list, description="whose users live here; empty: all")
    placement: list[CopyPlacement] = Field(
        min_length=1, description="datacenters holding copies, in activation preference: the first copy is active"
    )


class Dependency(Model):
    """A shared service requests call on the way (directory/authentication, a third party)."""

    id: Id = Field(description="the dependency's id (request types and dependency faults name it)")
    kind: Literal["directory", "third_party", "other"] = Field(
        "directory", description="what it is, shown in the reports (it does not change how it behaves)"
    )
    workers: int = Field(64, ge=1, le=MAX_WORKERS, description="calls it serves at once")
    service_time: ServiceTimeField = Field(
        description="how long one call occupies a worker: a mean (exponential), or {distribution, mean, cv}",
        examples=["5ms"],
    )
    queue_limit: int | None = Field(
        1000, ge=0, le=MAX_QUEUE, description="waiting calls beyond the workers (more are refused); null: none"
    )


class Topology(Model):
    """Regions of users, datacenters, links, databases and shared dependencies."""

    regions: list[Region] = Field(min_length=1, description="where the users are (at least one)")
    datacenters: list[Datacenter] = Field(min_length=1, description="the datacenters (at least one)")
    links: list[Link] = Field(
        default_factory=list, description="inter-datacenter links; datacenters with none between them exchange "
        "traffic freely",
    )
    databases: list[DatabaseGroup] = Field(
        default_factory=list, description="mailbox databases and where their copies are (none: no database layer)"
    )
    dependencies: list[Dependency] = Field(
        default_factory=list, description="shared services that request types call (directory, third parties)"
    )


# --------------------------------------------------------------------------------------------- workload


class RequestType(Model):
    """One kind of user request: its share of traffic, its cost, and what it calls on the way."""

    share: Percent = Field(description="share of the requests of this type (the shares add up to 100%)")
    work: float = Field(1.0, ge=0.001, le=MAX_FACTOR, description="multiplier on the server's service time")
    dependencies: list[Id] = Field(
        default_factory=list, description="dependencies each request calls, in order, before the mailbox server"
    )
    size: Size = Field(
        100e3, description="bytes the request and its answer put on an inter-datacenter link it crosses"
    )


class RegionLoad(Model):
    """Offered load of one region: a peak rate shaped by a daily profile."""

    peak: Rate = Field(description="requests per second at the profile's peak (factor 1)", examples=["120/s"])
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

    rate: Rate = Field(gt=0, description="messages per second arriving for the region's users", examples=["50/s"])


class MailRetry(Model):
    """The sender's retry schedule: wait ``first`` after the first failure, then ``multiplier`` times
    longer after each further failure, never more than ``max`` (no jitter: senders retry on schedule).
    """

    first: MailDelay = Field(60.0, description="wait after the first failed delivery")
    multiplier: float = Field(2.0, ge=1.0, le=10.0, description="factor on the wait after each further failure")
    max: MailDelay = Field(1800.0, description="longest wait between two attempts")

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

    regions: dict[Id, MailLoad] = Field(min_length=1, description="region id -> its incoming mail")
    work: float = Field(
        0.5, ge=0.001, le=MAX_FACTOR, description="multiplier on the mailbox server's service time per delivery"
    )
    retry: MailRetry = Field(default_factory=MailRetry, description="the senders' retry schedule")
    give_up: PositiveMonthDuration = Field(
        172800.0, description="the sender's retry window (then lost: expired)"
    )
    queue_limit: int | None = Field(
        1_000_000, ge=0, le=MAX_QUEUE, description="messages each region's senders hold for retry; null: no limit"
    )
    timeout: PositiveShortDuration = Field(30.0, description="the sender waits this long for one delivery attempt")



class Workload(Model):
    """Traffic: a load per region, a mix of request types and, optionally, incoming mail."""

    regions: dict[Id, RegionLoad] = Field(min_length=1, description="region id -> its offered load")
    requests: dict[Id, RequestType] = Field(
        default_factory=_default_requests,
        description="request type name -> its share, cost and dependency calls (default: one type, read); "
        "the reports count failures per type and call the type named sign_in sign-ins",
    )
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

    kind: Literal["exponential", "none"] = Field(
        "exponential", description="exponential: growing waits between attempts; none: retry at once"
    )
    base: DayDuration = Field(0.1, description="wait before the first retry, before jitter")
    multiplier: float = Field(2.0, ge=1.0, le=100.0, description="factor on the wait after each further retry")
    max: DayDuration = Field(
        10.0, description="longest wait; with the client's timeout and retries it sets how long a run drains"
    )
    jitter: str = Field(
        "full",
        description="how the wait is spread: a registered jitter (sim.policies.JITTERS): none, full, equal, "
        "decorrelated, exponential (memoryless, the wait as its mean; requests engine only), or one a plug-in "
        "registers",
    )


class RetryBudget(Model):
    """A token bucket for retries (as in Finagle and gRPC): retries may add at most ``ratio`` of the
    first tries, plus ``min_per_second``; a retry with no token left is not sent.
    """

    ratio: Percent = Field(0.1, description="retries allowed as a share of first tries")
    min_per_second: float = Field(
        10.0, ge=0, le=1e9, description="retries per second allowed on top, however few the first tries"
    )


class CircuitBreaker(Model):
    """Client-side breaker: open after ``error_threshold`` of at least ``min_requests`` attempts in
    ``window`` failed; fail fast for ``open_time``; then let ``probes`` attempts through (half-open).
    """

    error_threshold: Percent = Field(0.5, description="share of failed attempts in the window that opens it")
    min_requests: int = Field(
        20, ge=1, le=1_000_000_000, description="attempts the window must hold before the breaker may open"
    )
    window: PositiveShortDuration = Field(10.0, description="how far back the attempts are counted")
    open_time: PositiveDayDuration = Field(30.0, description="how long it fails fast once open")
    probes: int = Field(
        5, ge=1, le=1_000_000, description="attempts let through half-open; all must succeed for it to close"
    )


class ClientPolicy(Model):
    """What a user's client does: wait ``timeout`` per attempt, retry up to ``retries`` times."""

    timeout: PositiveShortDuration = Field(5.0, description="how long the client waits for one attempt")
    retries: int = Field(
        2, ge=0, le=20, description="attempts after the first, after an error or a timeout (0: never retry)"
    )
    backoff: Backoff = Field(default_factory=Backoff, description="wait between the client's attempts")
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


class CoDelPolicy(Model):
    """CoDel (Nichols & Jacobson; RFC 8289) on each server's queue: once the requests taken from the queue
    have waited longer than ``target`` for a whole ``interval``, drop the one at the head, then the next
    ones ``interval / sqrt(drops)`` apart, until the wait is back below ``target``. A dropped request is
    an error answered at once (its client may retry). Requests engine only.
    """

    target: PositiveShortDuration = Field(
        0.005, description="acceptable standing queue delay: CoDel drops while the wait stays above it"
    )
    interval: PositiveShortDuration = Field(
        0.1, description="how long the wait may stay above target before the first drop; the next drops come "
        "interval / sqrt(drops) apart (about the time a request takes, a round trip in the RFC)"
    )

    @model_validator(mode="after")
    def _target_below_interval(self) -> CoDelPolicy:
        if self.target >= self.interval:
            raise ValueError(
                f"target is not shorter than interval (got target {format_duration(self.target)}, "
                f"interval {format_duration(self.interval)}; expected target < interval, typically 5-10% of it)"
            )
        return self


class RateLimitPolicy(Model):
    """A token-bucket rate limit on each region's attempts at the load balancers: ``rate`` tokens a second
    fill a bucket of ``burst``; an attempt takes a token or is refused at once with an error (a 429),
    which its client may retry. Long-run, a region gets ``min(offered, rate)`` through. Requests engine only.
    """

    rate: Rate = Field(description="tokens a second: the attempts a region may send, long-run", examples=["50/s"])
    burst: int = Field(
        10, ge=1, le=1_000_000_000, description="the bucket's size: attempts that may come at once after a quiet spell"
    )


class ConcurrencyLimitPolicy(Model):
    """An adaptive concurrency limit on each server (AIMD, as Netflix's concurrency-limits ``AIMDLimit``): a
    server holding ``limit`` requests refuses more at once with an error (its client may retry). Each answer
    faster than ``timeout`` adds one to the limit (while the server holds at least half of it); a slower one
    multiplies it by ``backoff_ratio``. Requests engine only.
    """

    initial: int = Field(20, ge=1, le=1_000_000, description="the limit a server starts (and restarts) with")
    min: int = Field(1, ge=1, le=1_000_000, description="the limit never falls below this")
    max: int = Field(200, ge=1, le=1_000_000, description="the limit never grows above this")
    timeout: PositiveShortDuration = Field(
        description="an answer slower than this (queue wait and work) cuts the limit", examples=["500ms"]
    )
    backoff_ratio: float = Field(
        0.9, gt=0.0, lt=1.0, description="factor on the limit after a slow answer (Netflix's default 0.9)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> ConcurrencyLimitPolicy:
        if not self.min <= self.initial <= self.max:
            raise ValueError(
                f"initial is not between min and max (got min {self.min}, initial {self.initial}, max {self.max}; "
                "expected min <= initial <= max)"
            )
        return self


class Bulkhead(Model):
    """A bulkhead (as Hystrix's thread pools): a share of each server's workers kept for the requests that call
    one dependency, with a queue of its own. Requests engine only.
    """

    workers: Percent = Field(
        description="share of each server's workers kept for it (rounded, at least one)", examples=["25%"]
    )
    queue_limit: int | None = Field(
        None, ge=0, le=1_000_000, description="requests that may wait for its workers; more are refused at once "
        "(null: the server group's queue_limit)"
    )


def _no_backoff() -> Backoff:
    return Backoff(kind="none")


class ServerPolicy(Model):
    """What a mailbox server does: call dependencies with a timeout and retries; shed; cancel."""

    dependency_timeout: PositiveShortDuration = Field(
        1.0, description="how long a server waits for one dependency call"
    )
    dependency_retries: int = Field(0, ge=0, le=20, description="calls after the first, after an error or a timeout")
    dependency_backoff: Backoff = Field(
        default_factory=_no_backoff, description="wait between dependency calls (default: none, retry at once)"
    )
    dependency_budget: RetryBudget | None = Field(
        None, description="retry budget per dependency (null: unlimited retries)"
    )
    cancellation: bool = Field(
        False, description="deadline propagation: drop work whose caller has already given up"
    )
    max_queue_wait: ShortDuration | None = Field(
        None, description="latency-based shedding: refuse a request that would wait longer (null: off)"
    )
    lifo_when_waiting: ShortDuration | None = Field(
        None, description="adaptive LIFO: while the expected wait exceeds this, serve the newest first (null: FIFO)"
    )
    codel: CoDelPolicy | None = Field(
        None, description="CoDel on the queue: drop at the head while the wait stays above a target (null: off; "
        "requests engine only)"
    )
    bulkheads: dict[str, Bulkhead] = Field(
        default_factory=dict, description="bulkheads, per dependency: workers of each server kept for the requests "
        "that call it, with a queue of their own; the other requests share the rest, so a slow dependency holds "
        "only its share ({}: none; requests engine only)",
        examples=[{"directory": {"workers": "25%", "queue_limit": 10}}],
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="dependencies whose failure (an error or a timeout, after the dependency "
        "retries) the server answers with a degraded answer instead of an error, as a sign-in from a cached token: "
        "a success counted apart (counts.degraded; availability_strict leaves it out) ([]: none; requests engine "
        "only)", examples=[["directory"]],
    )
    concurrency_limit: ConcurrencyLimitPolicy | None = Field(
        None, description="adaptive concurrency limit per server (AIMD): refuse requests beyond it at once (null: "
        "off; requests engine only)"
    )
    overload_threshold: PositiveShortDuration = Field(
        0.5, description="a server whose queue wait exceeds this is overloaded (an event)"
    )

    @model_validator(mode="after")
    def _bulkheads_fit(self) -> ServerPolicy:
        total = sum(b.workers for b in self.bulkheads.values())
        if self.bulkheads and total >= 1.0:
            raise ValueError(f"bulkheads take every worker (got {total:.0%} in all; expected less than 100%, so "
                             "requests that call none of them have workers left)")
        if self.bulkheads and (self.lifo_when_waiting is not None or self.codel is not None):
            raise ValueError("bulkheads cannot be combined with lifo_when_waiting or codel (their servers decide "
                             "the order when a worker frees up; bulkheads partition the booking servers)")
        return self


class PhiAccrualPolicy(Model):
    """Phi-accrual failure detection (Hayashibara et al., 2004; as in Cassandra and Akka): each check is a
    heartbeat answered after the server's wait, however long; a server is ejected when phi, ``-log10`` of
    the chance that a heartbeat comes as late as the one awaited (the gaps between heartbeats taken as
    normal, with the mean and standard deviation of the last ``window``), reaches ``threshold``. A slow
    server whose answers keep coming is not ejected; one that stops answering is, sooner when its
    heartbeats have been regular.
    """

    threshold: float = Field(
        8.0, ge=0.5, le=1000.0, description="phi that ejects a server: 1 is a 10% chance that a live server's "
        "heartbeat comes this late, 8 one in 10^8 (lower: faster detection, more false ejections)"
    )
    window: int = Field(100, ge=2, le=10_000, description="gaps between heartbeats remembered per server")
    min_std: PositiveShortDuration = Field(
        0.1, description="floor on the gaps' standard deviation (regular heartbeats would otherwise make any "
        "delay infinitely suspect)"
    )


class HealthCheck(Model):
    """Active health checks from the load balancer to each server."""

    enabled: bool = Field(True, description="false: no health checks; a failed server stays in rotation")
    interval: CheckInterval = Field(
        5.0, description="time between checks of each server (at least 100ms: each check sweeps every server)"
    )
    timeout: PositiveShortDuration = Field(1.0, description="a check not answered this fast fails")
    unhealthy_threshold: int = Field(
        3, ge=1, le=1000, description="failed checks in a row that take a server out of rotation (ejection)"
    )
    phi_accrual: PhiAccrualPolicy | None = Field(
        None, description="eject on phi-accrual suspicion instead of timeout and unhealthy_threshold (null: the "
        "fixed thresholds); healthy_threshold checks in a row below the threshold readmit"
    )
    healthy_threshold: int = Field(
        2, ge=1, le=1000, description="passed checks in a row that put an ejected server back"
    )


class HedgePolicy(Model):
    """Hedged requests (Dean and Barroso, "The Tail at Scale", 2013): when the first try of an attempt has
    not been answered ``delay`` after the load balancer sent it, a second try goes to another server; the
    first answer wins and the other's work is wasted. ``budget`` caps hedges as a share of first tries.
    """

    delay: PositiveShortDuration = Field(
        ..., description="how long the first try may go unanswered before a hedge is sent (e.g. the p95 of the "
        "response time)"
    )
    budget: Percent | None = Field(
        None, description="hedges allowed as a share of first tries, per datacenter, as a token bucket with a burst "
        "of ten times the share (null: a hedge for every slow first try)"
    )


class LoadBalancerPolicy(Model):
    """Load-balancer algorithm (see ``sim.policies.balancers``) and health checks."""

    algorithm: str = Field(
        "round_robin",
        description="how it picks a server: a registered balancer (sim.policies.BALANCERS): round_robin, random, "
        "least_outstanding, power_of_two, weighted_least_outstanding (per worker), least_response_time (EWMA of "
        "response times × (outstanding + 1); requests engine only), consistent_hash (mailbox affinity: a ring of the "
        "pool's servers keyed by the request's mailbox database; requests engine only)",
    )
    health_check: HealthCheck = Field(default_factory=HealthCheck, description="active checks of each server")
    retries: int = Field(0, ge=0, le=20, description="tries on other servers after an error or a try timeout")
    try_timeout: PositiveShortDuration | None = Field(None, description="per-try timeout (null: the client's)")
    backoff: Backoff = Field(
        default_factory=_no_backoff, description="wait between the load balancer's tries (default: none)"
    )
    budget: RetryBudget | None = Field(None, description="retry budget per datacenter (null: unlimited retries)")
    rate_limit: RateLimitPolicy | None = Field(
        None, description="token-bucket rate limit on each region's attempts: refused at once beyond it (null: off; "
        "requests engine only)"
    )
    hedge: HedgePolicy | None = Field(
        None, description="hedged requests: a second try on another server if the first is slow; the first answer "
        "wins (null: off; requests engine only)"
    )
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

    client: ClientPolicy = Field(
        default_factory=ClientPolicy, description="timeouts, retries and backoff of users' clients"
    )
    load_balancer: LoadBalancerPolicy = Field(
        default_factory=LoadBalancerPolicy, description="algorithm, health checks and retries of the load balancers"
    )
    server: ServerPolicy = Field(
        default_factory=ServerPolicy, description="dependency calls, cancellation and shedding of the mailbox servers"
    )
    failover: FailoverPolicy = Field(
        default_factory=FailoverPolicy, description="database and datacenter failover, failback"
    )


# --------------------------------------------------------------------------------------------- faults


# --------------------------------------------------------------------------------------------- SLO


class Slo(Model):
    """Service level objectives the run is judged against (exit code 3 when breached)."""

    availability: Percent = Field(0.999, description="share of user requests that must succeed, per window")
    latency_p99: ShortDuration | None = Field(
        None, description="99th-percentile latency the run must stay under (null: no latency objective)"
    )
    window: Window = Field(
        60.0, description="availability is measured per window (at least 1s: each window is a row of counters)"
    )


class ImpactCost(Model):
    """What an hour without service costs, for the report's impact estimate (an assumption, printed with it)."""

    cost_per_user_hour: float = Field(
        ge=0, le=1e9, description="cost of one user-hour without service, in your currency (e.g. 12)"
    )
    currency: str = Field("", max_length=12, description="shown after the figure, e.g. USD or EUR")


class Limits(Model):
    """What one run may ask for; larger scenarios fail fast, before anything is allocated."""

    max_servers: int = Field(200_000, ge=1, le=MAX_COUNT, description="mailbox servers of all groups together")
    max_databases: int = Field(
        2_000_000, ge=1, le=10 * MAX_COUNT, description="mailbox databases of all groups together"
    )
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


class Scenario(Model):
    """One what-if: topology, workload, policies, faults and objectives."""

    name: Id = Field(description="the scenario's name: its report folder is reports/<name>")
    description: str = Field(
        "", description="what it shows, in a sentence or two (cascadesim examples shows the first)"
    )
    seed: int = Field(
        0, ge=0, le=2**63 - 1, description="root of every random stream: the same seed gives the same run (--seed)"
    )
    duration: RunDuration = Field(
        description="simulated time; requests under way then finish (see limits.max_drain)", examples=["1h"]
    )
    engine: Literal["requests", "flow", "auto"] = Field(
        "requests",
        description="how traffic moves: every request, rates per time step (flow), or by size (auto)",
    )
    flow: FlowSettings = Field(
        default_factory=lambda: FlowSettings(), description="time steps of the flow engine (engine: flow)"
    )
    topology: Topology = Field(description="regions of users, datacenters, links, databases, dependencies")
    workload: Workload = Field(description="offered load per region, the mix of request types, incoming mail")
    policies: Policies = Field(
        default_factory=Policies, description="what clients, load balancers, servers and failover do"
    )
    faults: list[Fault] = Field(
        default_factory=list, description="what goes wrong and when: a list of faults, each chosen by its kind"
    )
    slo: Slo = Field(
        default_factory=Slo, description="objectives the run is judged against (exit code 3 when breached)"
    )
    impact: ImpactCost | None = Field(
        None, description="an optional cost estimate: user-hours without service × cost_per_user_hour (null: none)"
    )
    limits: Limits = Field(
        default_factory=Limits, description="the most one run may ask for; raise them for a larger scenario"
    )

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
