"""The summary of one run, typed: one definition for the live run, ``summary.json`` and every reader.

:func:`sim.metrics.summarize` builds a :class:`Summary`; ``Result.stats`` holds it and ``Result.summary``
its JSON form (:meth:`Summary.as_dict`), which is what ``summary.json`` stores. A folder read back
(:func:`sim.report.stored.load_results`) is validated by these same models, so a stored run's
``stats`` is the same object as the live run's. The CLI, the story, the HTML and Markdown reports and the
experiments' metrics read the typed fields; none re-derives a figure from the tables.

The sections: the headline (the top-level numbers: availability, nines, downtime, requests, users
affected, amplification, worst region and fault), ``regions``, ``faults``, ``recovery``, ``slo``,
``mail`` (only when the scenario has mail), ``counts``, ``latency`` and ``manifest`` (which run this
was: scenario, its hash, seed, engine, duration, version).

The models are strict about types (``"0.99"`` is not a number, ``1.0`` not a count, ``0`` not a
boolean) and let unknown keys through, so the folders of older and newer versions still load; a field
an older version did not write has a default (``None`` where the older summary has no value for it).

Users affected (:func:`distinct_users`) is the expected number of distinct users whose requests failed:
requests carry no user id, so each failed user request (after the client's retries) is taken to belong
to a user of its region drawn uniformly at random. Of ``N`` users, ``F`` such failures leave
``N·(1 − exp(−F/N))`` users with at least one: about ``F`` while failures are rare, never more than
``N``. It is applied per region (``regions.<id>.users_affected``); the run's ``users_affected`` is the
sum over regions (the union over time and faults: a user counts once however many failures they saw);
a fault's ``blast_radius.users`` is the same over the failures attributed to that fault (see
:func:`sim.metrics.attribute_failures`). Limits of the model: the simulated requests are taken as all the
requests those users make, so a scenario whose rate stands for a sample of its users' traffic
understates the users affected; and failures are spread evenly over a region's users, so when a down
database fails the same users again and again the figure is too high.

>>> distinct_users(1_000_000, 10), distinct_users(100, 10_000), distinct_users(5_000, 0)
(10, 100, 0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Summary",
    "Impact",
    "Manifest",
    "Latency",
    "RegionSummary",
    "BlastRadius",
    "FaultSummary",
    "Recovery",
    "Slo",
    "MailSummary",
    "MailLost",
    "MailDelay",
    "MailBacklog",
    "MailRate",
    "MailRegion",
    "distinct_users",
    "expected_distinct_users",
    "SIGN_IN",
    "type_label",
]

SIGN_IN = "sign_in"
"""The request type that is a sign-in (``workload.requests.sign_in``): its failures are the impact's
``sign_ins_failed``, and every report calls them sign-ins."""


def type_label(name: str) -> str:
    """A request type as the reports name its requests: ``sign-ins`` for :data:`SIGN_IN`, else its name.

    >>> type_label("sign_in"), type_label("read")
    ('sign-ins', 'read')
    """
    return "sign-ins" if name == SIGN_IN else name


def expected_distinct_users(users: int, failed: float) -> float:
    """Expected distinct users among ``users`` who saw at least one of ``failed`` failed requests.

    Each failure belongs to a user drawn uniformly at random: ``users · (1 − exp(−failed / users))``,
    below both ``users`` and ``failed``; 0 when either is 0.

    >>> round(expected_distinct_users(1000, 1000), 1)  # as many failures as users: 63% of them
    632.1
    """
    if users <= 0 or failed <= 0:
        return 0.0
    return users * -math.expm1(-failed / users)


def distinct_users(users: int, failed: float) -> int:
    """:func:`expected_distinct_users`, rounded to a whole user (so never more than ``users`` or ``failed``).

    >>> distinct_users(40_000_000, 85_296), distinct_users(1, 3)
    (85205, 1)
    """
    return round(expected_distinct_users(users, failed))


class _Section(BaseModel):
    """A part of the summary: strict types, immutable, unknown keys let through (newer versions' fields)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)


class Manifest(_Section):
    """Which run this was."""

    scenario: str = ""
    scenario_hash: str = ""
    seed: int = 0
    engine: str = ""
    duration: float = 0.0
    version: str = ""


class Latency(_Section):
    """Latency of the user requests that succeeded, seconds (``None``: no requests)."""

    p50: float | None
    p99: float | None
    mean: float | None = None


class RegionSummary(_Section):
    """One region of users: its availability, downtime, latency and the users affected."""

    availability: float | None  # None: the region had no requests
    nines: float | None = None
    requests: int = 0
    succeeded: int = 0
    downtime_minutes: float = 0.0
    latency_p50: float | None = None
    latency_p99: float | None = None
    users: int | None = None  # the region's users (the scenario's ``users``); None: an older summary
    users_affected: int | None = None  # distinct users with a failed request; None: an older summary


class BlastRadius(_Section):
    """What one fault hit: users (distinct users with a failure attributed to it), servers, databases..."""

    users: int = 0
    servers: int = 0
    databases: int = 0
    datacenters: int = 0
    regions_breached: int = 0


class FaultSummary(_Section):
    """One injected fault: when it acted, its downtime, detection, recovery, blast radius, cascade depth."""

    id: str
    kind: str
    occurrences: int = 0
    start: float | None = None
    end: float | None = None
    downtime_minutes: float = 0.0
    time_to_detect: float | None = None
    time_to_recover: float | None = None
    recovered: bool = True
    affected: list[str] = []
    affected_count: int = 0
    blast_radius: BlastRadius = BlastRadius()
    cascade_depth: int = 0
    events: int = 0


class Recovery(_Section):
    """Whether the service came back after the last fault ended, and how long it took."""

    last_fault_end: float | None = None
    recovered: bool = True
    metastable: bool = False
    time_to_recover: float | None = None


class Slo(_Section):
    """The objectives and whether the run met them."""

    availability: float
    window: float
    met: bool
    latency_p99: float | None = None
    availability_met: bool = True
    latency_met: bool = True


class MailLost(_Section):
    """Messages the senders gave up on, by reason."""

    queue_full: int
    expired: int


class MailDelay(_Section):
    """Delay of the delivered messages, seconds (``None``: none delivered)."""

    p50: float | None
    p99: float | None
    max: float | None
    mean: float | None


class MailBacklog(_Section):
    """Messages in the senders' queues: the peak, when (``None``: never any), and at the end."""

    peak: int
    at: float | None
    at_end: int


class MailRate(_Section):
    """Deliveries per second: the busiest window's, when it started, and the run's mean."""

    peak: float
    at: float
    mean: float


class MailRegion(_Section):
    """Mail of one recipient region."""

    messages: int
    delivered: int
    delayed: int
    lost: int
    backlog_peak: int


class MailSummary(_Section):
    """What became of the incoming mail (not counted in availability; see :func:`sim.metrics.mail_summary`)."""

    counted_in_availability: bool = False
    messages: int
    delivered: int
    delayed: int
    lost: MailLost
    undelivered_at_end: int
    attempts: int
    delay: MailDelay
    backlog: MailBacklog
    delivery_rate: MailRate
    regions: dict[str, MailRegion] = {}


class Impact(_Section):
    """What the run cost its users, in the units a postmortem uses.

    ``user_minutes``: user-minutes without service — per region and window, the region's users times the
    share of its requests that failed (after the client's retries) times the window, summed; per region
    in ``regions``. ``requests_failed``: the user requests that failed. ``failed_by_type``: the failed
    user requests per request type of the workload's mix, in its order (they add up to ``counts.failed``;
    the engines count a request's failure under its type, a client retry keeping its request's type);
    ``sign_ins_failed``: those of the type :data:`SIGN_IN` (``None``: the mix has no sign-ins, or a
    summary written before cascadesim counted them). Mail that was delayed but not lost
    is counted apart from mail lost, with the delays of the delivered messages (seconds). ``cost``: the
    user-hours without service times ``impact.cost_per_user_hour`` of the scenario (``None``: not given),
    with the assumption it rests on in ``cost_basis``.
    """

    user_minutes: float = 0.0
    regions: dict[str, float] = {}
    requests_failed: int = 0
    failed_by_type: dict[str, int] = {}  # empty in a summary written before cascadesim counted it
    sign_ins_failed: int | None = None
    mail_delayed: int | None = None  # None: the scenario has no mail
    mail_lost: int | None = None
    mail_delay_p99: float | None = None
    mail_delay_max: float | None = None
    cost: float | None = None
    cost_basis: str | None = None

    def by_type(self) -> list[tuple[str, int]]:
        """The failed user requests per request type as the reports show them, ``(label, count)``: sign-ins
        first, then the other types in the mix's order. Empty when there is nothing to tell apart (one type,
        not sign-ins: its count is ``requests_failed``).

        >>> Impact(failed_by_type={"read": 3, "sign_in": 5}).by_type()
        [('sign-ins', 5), ('read', 3)]
        >>> Impact(failed_by_type={"read": 3}).by_type()
        []
        """
        items = self.failed_by_type
        if len(items) < 2 and SIGN_IN not in items:
            return []
        return [(type_label(k), v) for k, v in sorted(items.items(), key=lambda kv: kv[0] != SIGN_IN)]


class Summary(_Section):
    """The summary of one run (``Result.stats``); :meth:`as_dict` is the body of ``summary.json``.

    The headline is the top level: ``availability`` (``None``: no requests; degraded answers count as
    successes), ``availability_strict`` (answers in full only), ``nines``,
    ``downtime_minutes`` (windows below the objective), ``requests``, ``succeeded``, ``users`` (in the
    scenario), ``users_affected`` (distinct users with a failed request, see the module docstring),
    ``amplification`` (client attempts per request), ``worst_region`` and ``worst_fault``.
    """

    manifest: Manifest = Manifest()
    availability: float | None  # None: no requests (see sim.metrics)
    # Without the degraded answers of fallbacks (counts.degraded), which ``availability`` counts as successes.
    # None: no requests, or a summary written before cascadesim told them apart.
    availability_strict: float | None = None
    nines: float | None
    downtime_minutes: float
    requests: int
    succeeded: int
    users: int | None = None  # None: a summary written before cascadesim counted distinct users
    users_affected: int | None = None
    amplification: float
    latency: Latency
    counts: dict[str, int] = {}
    regions: dict[str, RegionSummary] = {}
    worst_region: str | None = None
    faults: list[FaultSummary] = []
    worst_fault: str | None = None
    recovery: Recovery = Recovery()
    slo: Slo
    mail: MailSummary | None = None  # None: the scenario has no mail
    impact: Impact = Impact()  # zeros in a summary written before cascadesim counted it

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """The typed summary of a JSON-ready one (``Result.summary``, a loaded ``summary.json``).

        Raises :class:`pydantic.ValidationError` when a field has the wrong type or a required one is
        missing (:func:`sim.report.stored.load_results` turns that into a one-line message).
        """
        return cls.model_validate(data)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form (plain dicts, lists and numbers): the body of ``summary.json``.

        ``mail`` is left out when the scenario has none.
        """
        out = self.model_dump(mode="python")
        if out.get("mail") is None:
            out.pop("mail", None)
        return out

    def fault(self, fault_id: str) -> FaultSummary | None:
        """The summary of the fault called ``fault_id`` (``None``: no such fault)."""
        return next((f for f in self.faults if f.id == fault_id), None)
