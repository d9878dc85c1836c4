"""Fault kinds: what a scenario can break, and how.

Each kind is one class: a pydantic model of its YAML (``kind: server_crash`` plus its own fields) that
also says what it targets and what starting and ending it does to the :class:`~sim.cluster.Cluster`.
Subclasses of :class:`FaultSpec` set ``kind`` (a ``Literal``) and ``targets``, and override
:meth:`~FaultSpec.start` and :meth:`~FaultSpec.end` — or :meth:`~FaultSpec.inject` when the fault is a
process of its own (a rollout, :mod:`sim.rollout`). The base and the shared timing live in
:mod:`sim.fault_base`, so a kind can have a module of its own (:mod:`sim.fault_lb`); adding a kind means
writing its class and listing it in :data:`Fault` and :data:`FAULT_KINDS` here; the scenario schema follows.

A fault acts through a :class:`FaultContext` — the clock, the cluster, the random streams and the
detection service (:class:`Watcher`) — handed to it by the run. Neither this module nor
:mod:`sim.rollout` imports any of them, so the scenario models hold faults without importing what faults
act on.

Timing (``at``/``duration`` or ``mtbf``/``mttr``, with ``repair`` crews) and target selection are shared.
Each fault draws from its own random streams (``fault/<fault id>``, and ``fault/<fault id>/<target>`` for
the renewal process of each target), so the same fault hits at the same times in every layout that has
its targets (common random numbers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_validator

from sim.fault_base import FaultContext, FaultSpec, Watcher, scheduled
from sim.fault_lb import LoadBalancerFailure
from sim.fault_network import NetworkFault
from sim.rollout import Rollout
from sim.spec import Id, Model, Target
from sim.units import Duration, Percent, Size, Traffic, duration_range, parse_duration, parse_percent

if TYPE_CHECKING:
    from sim.cluster import Cluster

__all__ = [
    "FaultContext",
    "Watcher",
    "FaultSpec",
    "Fault",
    "FAULT_KINDS",
    "ServerCrash",
    "DatacenterOutage",
    "DependencyOutage",
    "DependencySlowdown",
    "TrafficSurge",
    "Drain",
    "LoadBalancerMisweight",
    "LoadBalancerFailure",
    "BadUpdate",
    "Congestion",
    "Partition",
    "NetworkFault",
    "RolloutPlan",
    "VersionEffect",
    "Detection",
    "select_targets",
    "inject",
]


class ServerCrash(FaultSpec):
    """Servers stop: queued and running work is lost until they restart."""

    kind: Literal["server_crash"]

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.server_down(target, cause, "crashed")

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.server_up(target, cause, "restarted")


class DatacenterOutage(FaultSpec):
    """A whole datacenter goes dark (power, cooling, network)."""

    kind: Literal["datacenter_outage"]
    targets: ClassVar[str] = "datacenter"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.datacenter_down(target, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.datacenter_up(target, cause)


class DependencyOutage(FaultSpec):
    """A shared dependency (directory, third party) stops answering: calls to it fail at once."""

    kind: Literal["dependency_outage"]
    targets: ClassVar[str] = "dependency"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.dependency_set(target, True, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.dependency_set(target, False, cause)


class DependencySlowdown(FaultSpec):
    """A shared dependency gets slow: its service time is multiplied by ``factor``."""

    kind: Literal["dependency_slowdown"]
    targets: ClassVar[str] = "dependency"
    factor: float = Field(gt=1.0, le=1000.0, description="service-time multiplier while the fault lasts")

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.dependency_slow(target, self.factor, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.dependency_slow(target, 1.0 / self.factor, cause)


class TrafficSurge(FaultSpec):
    """A region's traffic is multiplied (a sign-in storm, a DDoS) while the fault lasts.

    Target regions by ``ids``; with no ids, every region surges.
    """

    kind: Literal["traffic_surge"]
    targets: ClassVar[str] = "region"
    multiplier: float = Field(gt=0.0, le=1000.0, description="factor on the region's offered load")

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.scale_load(target, self.multiplier, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.scale_load(target, 1.0 / self.multiplier, cause)


class Drain(FaultSpec):
    """Human error: servers drained from the load balancers by mistake (they stay up, unused).

    Health checks do not bring a drained server back; the fault's end (someone noticing) does.
    """

    kind: Literal["drain"]

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.drain(target, True, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.drain(target, False, cause)


class LoadBalancerMisweight(FaultSpec):
    """Human error: wrong load-balancer weights send ``share`` of a datacenter's traffic to the targets."""

    kind: Literal["lb_misweight"]
    share: Percent = Field(description="of each affected datacenter's requests, sent to the targets")

    def inject(self, ctx: FaultContext, fault_id: str, targets: list[tuple[int, str]]) -> None:
        """Applies to all targets together (weights are set per datacenter, not per server)."""
        group = [index for index, _ in targets]
        fault = _Misweight(self.share, group, self.at, self.duration)  # `at` is required (validated below)
        ctx.env.process(scheduled(ctx, fault, fault_id, [(-1, ", ".join(n for _, n in targets))]))

    @model_validator(mode="after")
    def _scheduled_only(self) -> LoadBalancerMisweight:
        if self.at is None:
            raise ValueError("a misweight is a change someone makes: give at (+ duration), not mtbf/mttr")
        return self


class _Misweight:
    """Start/end of a misweight over a group of servers (one target for the shared timing)."""

    kind = "lb_misweight"

    def __init__(self, share: float, servers: list[int], at: float | None, duration: float | None):
        self.share, self.servers, self.at, self.duration = share, servers, at, duration

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.misweight(self.servers, self.share, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.misweight(self.servers, 0.0, cause)


# ----------------------------------------------------------------------------------------- network links


class Congestion(FaultSpec):
    """An inter-datacenter link is congested: its capacity cut to ``capacity_factor`` of nominal, or
    ``background`` traffic (a backup, replication, another tenant) sharing it, or both.

    Target the link by its two ends, ``target: {datacenters: [a, b]}``. Traffic over the link then sees
    the delay and loss of :mod:`sim.network`; faults acting together multiply factors and add backgrounds.
    """

    kind: Literal["congestion"]
    targets: ClassVar[str] = "link"
    capacity_factor: Percent = Field(1.0, gt=0, description="share of the link's nominal capacity left")
    background: Traffic = Field(0.0, description="other traffic on the link, e.g. 800Mbps")

    @model_validator(mode="after")
    def _does_something(self) -> Congestion:
        if self.capacity_factor >= 1.0 and self.background <= 0:
            raise ValueError(
                "a congestion needs capacity_factor below 100% or a background bandwidth (got neither); "
                "a link cut completely is a partition"
            )
        return self

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.network.congest(target, self.capacity_factor, self.background, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.network.decongest(target, self.capacity_factor, self.background, cause)


class Partition(FaultSpec):
    """An inter-datacenter link goes down: requests that must cross it get no answer, so the load
    balancer or the client times out. Target the link by its two ends, ``target: {datacenters: [a, b]}``.

    Health checks, database failover and the traffic manager do not use the link (they are out of band),
    so a partition by itself moves neither users nor databases.
    """

    kind: Literal["partition"]
    targets: ClassVar[str] = "link"

    def start(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.network.set_down(target, True, cause)

    def end(self, cluster: Cluster, target: int, cause: int) -> None:
        cluster.network.set_down(target, False, cause)


# ----------------------------------------------------------------------------------------- bad update


class RolloutPlan(Model):
    """How a new version reaches the targeted servers: a canary, then waves, each after a bake time.

    Servers are taken datacenter by datacenter (``order`` first, the rest in topology order), in server
    order within a datacenter. Shares are of the targeted servers; whatever the canary and the listed
    ``waves`` leave goes out in waves of ``wave_size`` or, without it, in one last wave.
    """

    canary: Percent = Field(0.1, description="share of the targets updated first (at least one server)")
    waves: list[Percent] = Field(default_factory=list, description="share of the targets in each later wave")
    wave_size: Percent | None = Field(None, gt=0, description="instead of waves: equal waves of this share")
    bake_time: Duration = Field(600.0, description="wait between one wave and the next")
    order: list[Id] = Field(default_factory=list, description="datacenters in rollout order (others after)")

    @model_validator(mode="after")
    def _shares(self) -> RolloutPlan:
        if self.waves and self.wave_size is not None:
            raise ValueError("give either waves (a share per wave) or wave_size (equal waves), not both")
        total = self.canary + sum(self.waves)
        if total > 1.0 + 1e-9:
            listed = ", ".join(f"{w * 100:g}%" for w in self.waves)
            raise ValueError(
                f"canary and waves add up to {total * 100:g}% of the targets "
                f"(canary {self.canary * 100:g}% + waves {listed}; expected at most 100%)"
            )
        repeated = [d for i, d in enumerate(self.order) if d in self.order[:i]]
        if repeated:
            raise ValueError(f"order lists datacenter '{repeated[0]}' twice")
        return self


def _strip_per_hour(value: Any) -> Any:
    if isinstance(value, str) and value.strip().endswith("/h"):
        return value.strip()[:-2]
    return value


class VersionEffect(Model):
    """What the bad version does on a server that runs it."""

    crash_per_hour: float = Field(0.0, ge=0.0, le=3600.0, description="random crashes per hour of running")
    crash_loop: bool = Field(False, description="crashes as it starts, again after every restart")
    latency_multiplier: float = Field(1.0, ge=1.0, le=1000.0, description="factor on its service time")
    error_rate: Percent = Field(0.0, description="share of the requests it serves answered with an error")
    memory_leak: Annotated[Size, BeforeValidator(_strip_per_hour)] = Field(
        0.0, description="memory leaked per hour of running (512MB or 512MB/h); needs the group's memory"
    )

    def describe(self) -> str:
        """Describe the effect in a few words, for the event log."""
        parts = []
        if self.crash_loop:
            parts.append("crash loop")
        if self.crash_per_hour:
            parts.append(f"{self.crash_per_hour:g} crashes/h")
        if self.latency_multiplier != 1.0:
            parts.append(f"latency x{self.latency_multiplier:g}")
        if self.error_rate:
            parts.append(f"{self.error_rate * 100:g}% errors")
        if self.memory_leak:
            parts.append(f"leaks {self.memory_leak / 1e6:g}MB/h")
        return ", ".join(parts) or "no effect"


_THRESHOLD_DEFAULT = {"error_rate": 0.01, "latency": 0.1}


def _threshold_schema() -> dict[str, Any]:
    return {
        "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}],
        "description": "a percentage (2%) for metric error_rate, a duration (100ms) for latency",
        "examples": ["2%", "100ms"],
    }


class Detection(Model):
    """Monitoring of a rollout: an alert on a metric against its baseline halts it, maybe rolls it back.

    Every ``check_interval`` the monitor computes, per region, the ``metric`` over that interval
    (``error_rate``: failed client attempts over attempts; ``latency``: p99 of the requests completed)
    and gives it to the ``rule``: ``threshold`` fires above the pre-rollout mean plus ``threshold``;
    ``ewma`` fires above an EWMA band (``alpha``, ``k`` standard deviations, at least ``threshold`` wide).
    ``reaction_time`` after the alert the rollout halts; with ``rollback``, every updated server runs the
    good version again ``rollback_time`` later.
    """

    enabled: bool = Field(True, description="false: nobody watches; the rollout goes on to the end")
    metric: Literal["error_rate", "latency"] = Field(
        "error_rate", description="what is watched: failed attempts over attempts, or the p99 latency"
    )
    rule: Literal["threshold", "ewma"] = Field(
        "threshold", description="threshold: a fixed rise over the baseline; ewma: outside an EWMA band"
    )
    threshold: Annotated[float | None, WithJsonSchema(_threshold_schema())] = Field(
        None, description="rise over the baseline that fires (default 1% or 100ms); ewma: least band width"
    )
    alpha: float = Field(0.3, gt=0.0, le=1.0, description="ewma: weight of the newest value")
    k: float = Field(4.0, gt=0.0, le=100.0, description="ewma: band half-width in standard deviations")
    check_interval: Annotated[float, *duration_range(1.0)] = Field(
        30.0, description="how often the metric is evaluated (each check computes every region's metric)"
    )
    reaction_time: Duration = Field(300.0, description="from the alert to the rollout halted")
    rollback: bool = Field(True, description="after the halt, restore the good version on every updated server")
    rollback_time: Duration = Field(300.0, description="from the halt to the good version running everywhere")

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold_unit(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        metric = info.data.get("metric", "error_rate")
        try:
            return parse_duration(value) if metric == "latency" else parse_percent(value)
        except ValueError as e:
            unit = "duration" if metric == "latency" else "percentage"
            raise ValueError(f"{e}; metric {metric} takes a {unit}") from None

    @property
    def rise(self) -> float:
        """The threshold in the metric's base unit (a fraction or seconds), with its default."""
        return self.threshold if self.threshold is not None else _THRESHOLD_DEFAULT[self.metric]


class BadUpdate(FaultSpec):
    """A bad software version rolled out in waves; monitoring may catch it, halt it and roll it back.

    ``target`` selects the servers the rollout covers (default: all); ``at`` is when it starts. The
    rollout itself (:mod:`sim.rollout`) and the monitor (:class:`sim.control.Monitor`) do the work.
    """

    kind: Literal["bad_update"]
    rollout: RolloutPlan = Field(
        default_factory=lambda: RolloutPlan(), description="how the version reaches the servers: canary, waves"
    )
    effect: VersionEffect = Field(
        default_factory=lambda: VersionEffect(), description="what the bad version does where it runs"
    )
    detection: Detection = Field(
        default_factory=lambda: Detection(), description="the alert that halts the rollout and rolls it back"
    )

    @model_validator(mode="after")
    def _a_planned_change(self) -> BadUpdate:
        if self.at is None:
            raise ValueError("a bad update is a rollout someone starts: give at (its start), not mtbf/mttr")
        if self.duration is not None:
            raise ValueError(
                "a bad update has no duration: the bad version runs until detection rolls it back "
                "(see detection.rollback)"
            )
        d = self.detection
        if d.enabled and self.at < 2 * d.check_interval:
            raise ValueError(
                f"detection needs a baseline: start the rollout at least two check intervals into the run "
                f"(got at {self.at:g}s, detection.check_interval {d.check_interval:g}s)"
            )
        return self

    def references(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """Return the datacenters the rollout order names."""
        return [(("rollout", "order", j), "datacenter", name) for j, name in enumerate(self.rollout.order)]

    def inject(self, ctx: FaultContext, fault_id: str, targets: list[tuple[int, str]]) -> None:
        """Start the rollout (and its watch by the monitor, if detection is on)."""
        Rollout(ctx, self, fault_id, [index for index, _ in targets])


Fault = Annotated[
    ServerCrash
    | DatacenterOutage
    | DependencyOutage
    | DependencySlowdown
    | TrafficSurge
    | Drain
    | LoadBalancerMisweight
    | LoadBalancerFailure
    | BadUpdate
    | Congestion
    | Partition
    | NetworkFault,
    Field(discriminator="kind"),
]
"""A scenario fault: one of the kinds above, chosen by its ``kind``."""

FAULT_KINDS: dict[str, type[FaultSpec]] = {
    cls.model_fields["kind"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (ServerCrash, DatacenterOutage, DependencyOutage, DependencySlowdown, TrafficSurge, Drain,
                LoadBalancerMisweight, LoadBalancerFailure, BadUpdate, Congestion, Partition, NetworkFault)
}


# ----------------------------------------------------------------------------------------- selection


def _candidates(cluster: Cluster, kind: str, target: Target) -> list[tuple[int, str]]:
    """(index, id) of every entity of type ``kind`` that the target's filters match."""
    if kind == "server":
        ids, groups, labels = set(target.ids), set(target.groups), target.labels.items()
        dcs = {i for i, name in enumerate(cluster.datacenter_ids) if name in target.datacenters}
        return [
            (s.index, s.id)
            for s in cluster.servers
            if not s.spare  # an autoscaler's spares are not targets (a datacenter outage stops them too)
            and (not ids or s.id in ids)
            and (not target.datacenters or s.datacenter in dcs)
            and (not groups or s.group in groups)
            and (not labels or all(s.labels.get(k) == v for k, v in labels))
        ]
    if kind == "datacenter":
        names = set(target.ids) | set(target.datacenters)
        dc_labels = {d.id: d.labels for d in cluster.scenario.topology.datacenters}
        return [
            (i, name)
            for i, name in enumerate(cluster.datacenter_ids)
            if (not names or name in names) and all(dc_labels[name].get(k) == v for k, v in target.labels.items())
        ]
    if kind == "region":
        return [(i, name) for i, name in enumerate(cluster.region_ids) if not target.ids or name in target.ids]
    if kind == "link":  # by its two ends, in either order
        ends = set(target.datacenters)
        return [
            (link.index, link.name)
            for link in cluster.network.links
            if len(ends) == 2 and {cluster.datacenter_ids[dc] for dc in link.ends} == ends
        ]
    return [(i, name) for i, name in enumerate(cluster.dependency_ids) if not target.ids or name in target.ids]


def select_targets(cluster: Cluster, kind: str, target: Target, rng: Any) -> list[tuple[int, str]]:
    """Apply the filters, then the mode (all / one / count / percent) with ``rng`` (a numpy Generator)."""
    matches = _candidates(cluster, kind, target)
    mode = target.mode
    if mode.kind == "all" or not matches:
        return matches
    if mode.kind == "one":
        n = 1
    elif mode.kind == "count":
        n = int(mode.value)
    else:
        n = max(1, round(mode.value * len(matches))) if mode.value > 0 else 0
    n = min(n, len(matches))
    picked = sorted(rng.choice(len(matches), size=n, replace=False).tolist())
    return [matches[i] for i in picked]


def inject(ctx: FaultContext, fault: FaultSpec, fault_id: str) -> None:
    """Select the targets of one scenario fault and start its processes."""
    rng = ctx.streams.generator(f"fault/{fault_id}")
    targets = select_targets(ctx.cluster, fault.targets, fault.target, rng)
    fault.inject(ctx, fault_id, targets)
