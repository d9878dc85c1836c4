"""The event vocabulary: every kind of event the log may hold, and what each reader makes of it.

One table, :data:`KINDS`, one :class:`EventKind` per kind. The code that records events uses the name
constants (``trace.record(now, EJECTED, ...)``); the readers — cascade analysis, the summary's metrics,
the story, the timeline, the topology's colours and the stylesheet — ask the table (:func:`names`,
:func:`conditions`, :func:`categories`, :func:`badge_css`) instead of keeping lists of their own. A fault
kind that records new events registers them with :func:`register`, in its own module, before it runs.

>>> KINDS[EJECTED].harm, KINDS[EJECTED].reaction, KINDS[EJECTED].ends
(True, True, 'readmitted')
>>> sorted(names("mitigation"))
['rollback', 'rollout_halted', 'weights_restored']
>>> register(EventKind("server_down", "again"))
Traceback (most recent call last):
...
ValueError: event kind 'server_down' is already registered ("a server stops: crashed, failed or drained by a fault")
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType

__all__ = [
    "EventKind",
    "KINDS",
    "CATEGORY_COLORS",
    "TONES",
    "register",
    "names",
    "conditions",
    "categories",
    "badge_css",
    # the names, for the code that records events
    "FAULT_START", "FAULT_END", "SERVER_DOWN", "SERVER_UP", "CRASHED", "EJECTED", "READMITTED",
    "OVERLOADED", "OVERLOAD_CLEARED", "DATACENTER_DOWN", "DATACENTER_UP", "PANIC", "PANIC_OVER",
    "DEPENDENCY_DOWN", "DEPENDENCY_UP", "DEPENDENCY_SLOW", "DEPENDENCY_SPEED_RESTORED",
    "DATABASE_UNAVAILABLE", "FAILOVER", "FAILOVER_FAILED", "FAILBACK", "TRAFFIC_SHIFT", "SURGE",
    "SURGE_END", "BREAKER_OPEN", "BREAKER_CLOSED", "MISWEIGHT", "WEIGHTS_RESTORED", "LINK_DOWN",
    "LINK_UP", "LINK_SATURATED", "LINK_RECOVERED", "LINK_DEGRADED", "LINK_RESTORED", "ROLLOUT_WAVE",
    "ROLLOUT_COMPLETE", "UPDATED", "ALERT", "ROLLOUT_HALTED", "ROLLBACK", "MAIL_BACKLOG",
    "MAIL_BACKLOG_DRAINING", "MAIL_BACKLOG_CLEARED", "MAIL_LOST", "SLO_BREACH", "SLO_RECOVERED",
    "CODEL_DROPPING", "CODEL_STOPPED", "RATE_LIMITED", "RATE_LIMIT_LIFTED", "CONCURRENCY_LIMITED",
    "CONCURRENCY_LIMIT_LIFTED", "BULKHEAD_SATURATED", "BULKHEAD_CLEARED", "FALLBACK_SERVING", "FALLBACK_ENDED",
    "SCALED_OUT", "SCALED_IN", "SERVER_LAUNCHED", "SERVER_RETIRED",
]

# Cascade-graph categories, in legend order, with their colours.
CATEGORY_COLORS: MappingProxyType[str, str] = MappingProxyType({
    "fault": "#6f42c1",
    "failure": "#d62728",
    "strain": "#e3a008",
    "users affected": "#a40e26",
    "control plane": "#0969da",
    "recovery": "#2da44e",
})
# Timeline badge tones, in stylesheet order, with their colours (background, text).
TONES: MappingProxyType[str, tuple[str, str]] = MappingProxyType({
    "bad": ("#ffebe9", "#a40e26"),
    "warn": ("#fff1e5", "#953800"),
    "good": ("#dafbe1", "#116329"),
})


@dataclass(frozen=True)
class EventKind:
    """One kind of event and how every reader treats it (the defaults: a neutral event nobody counts).

    - ``harm``: it can make users' requests fail; an emergent event (overload, SLO breach) names the
      latest harm as its cause, and a window's failures go to the fault of the latest harm.
    - ``symptom``: something going wrong, not a fault's own effect — the story's "first symptom".
    - ``spread``: harm inside a datacenter; the story's "cascade reaches" another datacenter.
    - ``reaction``: the control plane reacting on its own (the story's detection when no alert fired).
    - ``detects``: counts as detection in a fault's ``time_to_detect`` (the reactions and alerts).
    - ``mitigation``: someone acting to end it (the story's mitigation milestones).
    - ``major``: kept first when the incident timeline is cut.
    - ``affects``: the node it names counts as hit by the fault (``faults[].affected``).
    - ``counted``: how many there were goes into ``summary.counts`` under its name.
    - ``category``: its legend entry in the cascade graph (a key of :data:`CATEGORY_COLORS`; "" other).
    - ``tone``: its badge colour in the timeline (a key of :data:`TONES`; "" plain).
    - ``ends``, ``severity``, ``label``: a condition of the node it names, shown in the topology until
      the event ``ends`` (severity 3 down, 2 ejected/degraded, 1 overloaded/slow), described as ``label``.
    """

    name: str
    meaning: str
    harm: bool = False
    symptom: bool = False
    spread: bool = False
    reaction: bool = False
    detects: bool = False
    mitigation: bool = False
    major: bool = False
    affects: bool = False
    counted: bool = False
    category: str = ""
    tone: str = ""
    ends: str | None = None
    severity: int = 0
    label: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"event kind {self.name!r}: a name is lower_case_with_underscores")
        if self.category and self.category not in CATEGORY_COLORS:
            raise ValueError(f"event kind {self.name!r}: category {self.category!r} is not one of "
                             f"{', '.join(CATEGORY_COLORS)}")
        if self.tone and self.tone not in TONES:
            raise ValueError(f"event kind {self.name!r}: tone {self.tone!r} is not one of {', '.join(TONES)}")
        if (self.ends is None) != (self.severity == 0) or self.severity not in (0, 1, 2, 3):
            raise ValueError(f"event kind {self.name!r}: a condition has both an end kind and a severity "
                             f"1-3 (ends={self.ends!r}, severity={self.severity})")


_KINDS: dict[str, EventKind] = {}
KINDS: MappingProxyType[str, EventKind] = MappingProxyType(_KINDS)
"""Every registered kind by name, in registration order (read-only: add with :func:`register`)."""
_FLAGS = tuple(f.name for f in fields(EventKind) if f.type in ("bool", bool))
_cache: dict[str, frozenset[str]] = {}


def register(kind: EventKind) -> EventKind:
    """Add ``kind`` to the table and return it; a name already registered is refused."""
    old = _KINDS.get(kind.name)
    if old is not None:
        raise ValueError(f'event kind {kind.name!r} is already registered ("{old.meaning}")')
    _KINDS[kind.name] = kind
    _cache.clear()
    return kind


def names(flag: str) -> frozenset[str]:
    """The names of the kinds whose boolean field ``flag`` is true: ``names("harm")``."""
    if flag not in _FLAGS:
        raise ValueError(f"{flag!r} is not a flag of EventKind (one of {', '.join(_FLAGS)})")
    out = _cache.get(flag)
    if out is None:
        out = _cache[flag] = frozenset(k.name for k in _KINDS.values() if getattr(k, flag))
    return out


def conditions() -> dict[str, tuple[str, int]]:
    """Start kind → (end kind, severity) of every condition the topology shows."""
    return {k.name: (k.ends, k.severity) for k in _KINDS.values() if k.ends is not None}


def categories() -> dict[str, tuple[str, str]]:
    """Kind → (cascade-graph category, its colour), for the kinds that have one."""
    return {k.name: (k.category, CATEGORY_COLORS[k.category]) for k in _KINDS.values() if k.category}


def badge_css(width: int = 107) -> str:
    """The timeline's badge rules: one rule per tone naming its kinds, lines wrapped at ``width``."""
    out = []
    for tone, (background, color) in TONES.items():
        kinds = [k.name for k in _KINDS.values() if k.tone == tone]
        if not kinds:
            continue
        words = [f"tr.k-{name} .kind," for name in kinds]
        words[-1] = f"tr.k-{kinds[-1]} .kind {{ background: {background}; color: {color}; }}"
        line = ""
        for word in words:
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "".join(line + "\n" for line in out)


def _kind(name: str, meaning: str, **how: object) -> str:
    register(EventKind(name, meaning, **how))  # type: ignore[arg-type]
    return name


# The shipped kinds. Those with a badge come first, in the order the stylesheet names them.
FAULT_START = _kind("fault_start", "an injected fault starts (the root of its cascade)",
                    harm=True, major=True, category="fault", tone="bad")
SERVER_DOWN = _kind("server_down", "a server stops: crashed, failed or drained by a fault",
                    harm=True, symptom=True, spread=True, affects=True, counted=True, category="failure",
                    tone="bad", ends="server_up", severity=3, label="went down")
DATACENTER_DOWN = _kind("datacenter_down", "every server of a datacenter is down",
                        harm=True, symptom=True, spread=True, major=True, affects=True, category="failure",
                        tone="bad", ends="datacenter_up", severity=3, label="went dark")
DEPENDENCY_DOWN = _kind("dependency_down", "a shared dependency (directory, auth) stops answering",
                        harm=True, symptom=True, major=True, affects=True, category="failure", tone="bad",
                        ends="dependency_up", severity=3, label="down")
DATABASE_UNAVAILABLE = _kind("database_unavailable", "a database has no active copy",
                             harm=True, symptom=True, affects=True, counted=True, category="failure",
                             tone="bad")
CRASHED = _kind("crashed", "a server crashes on its own (memory, a bad version's crash loop)",
                harm=True, symptom=True, spread=True, category="failure", tone="bad")
SLO_BREACH = _kind("slo_breach", "a region's availability falls below the objective",
                   symptom=True, major=True, category="users affected", tone="bad",
                   ends="slo_recovered", severity=3, label="breached the SLO")
LINK_DOWN = _kind("link_down", "an inter-datacenter link is partitioned",
                  harm=True, symptom=True, affects=True, counted=True, category="failure", tone="bad",
                  ends="link_up", severity=3, label="partitioned")
FAILOVER_FAILED = _kind("failover_failed", "a database has no copy left to fail over to",
                        symptom=True, category="failure", tone="bad")
MAIL_LOST = _kind("mail_lost", "incoming messages lost (expired or the senders' queue full)",
                  symptom=True, category="failure", tone="bad")
EJECTED = _kind("ejected", "health checks take a server out of rotation",
                harm=True, spread=True, reaction=True, detects=True, affects=True, counted=True,
                category="control plane", tone="warn", ends="readmitted", severity=2, label="ejected")
TRAFFIC_SHIFT = _kind("traffic_shift", "the traffic manager moves a region's users to another datacenter",
                      harm=True, reaction=True, detects=True, major=True, counted=True,
                      category="control plane", tone="warn")
FAILOVER = _kind("failover", "a database's active copy moves to another server",
                 reaction=True, detects=True, counted=True, category="control plane", tone="warn")
OVERLOADED = _kind("overloaded", "a server's queue wait passes the overload threshold",
                   harm=True, symptom=True, spread=True, category="strain", tone="warn",
                   ends="overload_cleared", severity=1, label="overloaded")
BREAKER_OPEN = _kind("breaker_open", "a region's client circuit breaker opens",
                     harm=True, symptom=True, category="strain", tone="warn",
                     ends="breaker_closed", severity=2, label="breaker open")
PANIC = _kind("panic", "a datacenter's load balancers enter panic mode (too few healthy servers)",
              harm=True, symptom=True, spread=True, category="strain", tone="warn",
              ends="panic_over", severity=1, label="panic mode")
LINK_SATURATED = _kind("link_saturated", "a link's load reaches its capacity",
                       harm=True, symptom=True, counted=True, category="strain", tone="warn",
                       ends="link_recovered", severity=2, label="saturated")
ALERT = _kind("alert", "a metric alert fires", detects=True, major=True, category="control plane", tone="warn")
DEPENDENCY_SLOW = _kind("dependency_slow", "a dependency answers slower",
                        harm=True, symptom=True, category="strain", tone="warn",
                        ends="dependency_speed_restored", severity=1, label="slow")
MAIL_BACKLOG = _kind("mail_backlog", "a region's senders start queueing mail", symptom=True,
                     category="strain", tone="warn")
CODEL_DROPPING = _kind("codel_dropping", "CoDel starts dropping requests at a server's queue (its wait stayed "
                       "above target for an interval)", symptom=True, category="strain", tone="warn",
                       ends="codel_stopped", severity=1, label="dropping (CoDel)")
FALLBACK_SERVING = _kind("fallback_serving", "the servers answer requests degraded (a fallback) because a "
                        "dependency fails", symptom=True, category="strain", tone="warn", ends="fallback_ended",
                        severity=1, label="degraded (fallback)")
RATE_LIMITED = _kind("rate_limited", "a region's attempts reach its rate limit: the load balancers refuse some",
                    symptom=True, category="strain", tone="warn", ends="rate_limit_lifted", severity=1,
                    label="rate limited")
CONCURRENCY_LIMITED = _kind("concurrency_limited", "a server holds as many requests as its adaptive concurrency "
                            "limit: it refuses more", symptom=True, category="strain", tone="warn",
                            ends="concurrency_limit_lifted", severity=1, label="concurrency limited")
BULKHEAD_SATURATED = _kind("bulkhead_saturated", "a server's bulkhead for a dependency queues requests longer than "
                          "the overload threshold (its share of the workers is taken)", symptom=True,
                          category="strain", tone="warn", ends="bulkhead_cleared", severity=1,
                          label="bulkhead saturated")
FAULT_END = _kind("fault_end", "an injected fault ends", major=True, category="recovery", tone="good")
SERVER_UP = _kind("server_up", "a server starts again", category="recovery", tone="good")
DATACENTER_UP = _kind("datacenter_up", "a datacenter has servers up again", major=True,
                      category="recovery", tone="good")
DEPENDENCY_UP = _kind("dependency_up", "a dependency answers again", major=True, category="recovery",
                      tone="good")
SERVER_LAUNCHED = _kind("server_launched", "an autoscaler starts a server (it warms up, then serves)", counted=True,
                        category="recovery", tone="good")
SCALED_OUT = _kind("scaled_out", "an autoscaler decides to launch servers: its group's utilisation stayed above "
                   "target", counted=True, category="control plane", tone="good")
READMITTED = _kind("readmitted", "health checks put a server back in rotation", counted=True,
                   category="recovery", tone="good")
SLO_RECOVERED = _kind("slo_recovered", "a region's availability is back above the objective", major=True,
                      category="recovery", tone="good")
ROLLBACK = _kind("rollback", "a server runs the good version again", mitigation=True, major=True,
                 category="control plane", tone="good")
OVERLOAD_CLEARED = _kind("overload_cleared", "a server's queue wait is back below the threshold",
                         category="recovery", tone="good")
LINK_RECOVERED = _kind("link_recovered", "a saturated link's load falls below 0.9 of capacity",
                       category="recovery", tone="good")
LINK_UP = _kind("link_up", "a partitioned link carries traffic again", category="recovery", tone="good")
FAILBACK = _kind("failback", "a database's active copy goes back to its preferred server",
                 category="control plane", tone="good")
CODEL_STOPPED = _kind("codel_stopped", "CoDel has dropped nothing at a server for 16 intervals",
                      category="recovery", tone="good")
RATE_LIMIT_LIFTED = _kind("rate_limit_lifted", "a region's rate limit has refused nothing for a quiet spell",
                         category="recovery", tone="good")
CONCURRENCY_LIMIT_LIFTED = _kind("concurrency_limit_lifted", "a server's concurrency limit has refused nothing "
                                 "for a quiet spell", category="recovery", tone="good")
FALLBACK_ENDED = _kind("fallback_ended", "the servers have answered no request degraded for a dependency for a "
                      "quiet spell", category="recovery", tone="good")
BULKHEAD_CLEARED = _kind("bulkhead_cleared", "a server's bulkhead has queued nothing too long for a quiet spell",
                        category="recovery", tone="good")
# No badge.
SCALED_IN = _kind("scaled_in", "an autoscaler drains servers to stop them: its group's utilisation has called for "
                  "fewer for its hysteresis", harm=True, counted=True, category="control plane")
SERVER_RETIRED = _kind("server_retired", "an autoscaler stops a server it drained", counted=True)
ROLLOUT_WAVE = _kind("rollout_wave", "a wave of a rollout updates its servers", category="fault")
UPDATED = _kind("updated", "a server runs a new (bad) version", harm=True, category="fault")
ROLLOUT_HALTED = _kind("rollout_halted", "a rollout stops after an alert", mitigation=True, major=True,
                       category="control plane")
ROLLOUT_COMPLETE = _kind("rollout_complete", "a rollout has updated every targeted server")
SURGE = _kind("surge", "a region's traffic rises (a traffic surge)", harm=True, category="strain",
              ends="surge_end", severity=1, label="surge")
SURGE_END = _kind("surge_end", "a surge ends", category="recovery")
MISWEIGHT = _kind("misweight", "a datacenter's load balancers weigh their servers wrongly",
                  harm=True, category="strain", ends="weights_restored", severity=1, label="misweighted")
WEIGHTS_RESTORED = _kind("weights_restored", "the load balancers' weights are right again", mitigation=True,
                         category="recovery")
LINK_DEGRADED = _kind("link_degraded", "a link loses capacity or carries other traffic (congestion)",
                      affects=True, category="strain", ends="link_restored", severity=1, label="degraded")
LINK_RESTORED = _kind("link_restored", "a congested link is back to its capacity", category="recovery")
DEPENDENCY_SPEED_RESTORED = _kind("dependency_speed_restored", "a dependency answers at its speed again",
                                  category="recovery")
BREAKER_CLOSED = _kind("breaker_closed", "a region's client circuit breaker closes", category="recovery")
PANIC_OVER = _kind("panic_over", "a datacenter's load balancers leave panic mode", category="recovery")
MAIL_BACKLOG_DRAINING = _kind("mail_backlog_draining", "queued mail reaches a server again",
                              category="strain")
MAIL_BACKLOG_CLEARED = _kind("mail_backlog_cleared", "a region's senders' queue is empty again",
                             category="recovery")
