"""Mail delivery: store-and-forward messages, the senders' retry queues, the backlog on recovery.

Besides interactive requests, users receive mail, and mail is store-and-forward. The sending server
(another provider's, outside the simulation) tries to deliver a message; when that fails it keeps the
message in its queue and retries on a schedule for days. An outage therefore delays mail rather than
losing it, unless the senders' queue is full (lost: ``queue_full``) or the retry window runs out
(lost: ``expired``).

A message, step by step (``workload.mail`` in the scenario):

1. It arrives for a region (Poisson at ``rate``, stream ``mail/<region>``), addressed to a uniformly
   chosen mailbox database of that region.
2. An attempt goes to the server holding the database's active copy (``Cluster.active``), booked by
   :meth:`Deliverer.deliver` exactly like a request's mailbox stage, with ``work`` times the server's
   service time (stream ``mail/service``). An unavailable database fails at once (the receiving front
   end answers "try again later"); a down server, a crash during the delivery or a completion after
   ``timeout`` fail when the sender stops waiting; a full server queue fails at once.
3. After its k-th failure the message waits ``min(max, first * multiplier**(k-1))`` in its region's
   sender queue and tries again. It is lost as ``expired`` when that next attempt would come later than
   ``give_up`` after its arrival, and as ``queue_full`` when its first failure finds the queue holding
   ``queue_limit`` messages. Retries keep their slot.

No thundering herd is programmed; it emerges. Messages queued during an outage keep their own
schedules, so when the servers come back every queued message's next retry lands on them on top of the
steady flow.

The event log (each record names its cause):

- ``mail_backlog`` (node: the region) when its sender queue goes from empty to not empty. Cause: the
  latest harmful event of the datacenter of the failing server (:meth:`Cluster.load_cause`), for an
  unavailable database the latest of those of the servers holding its copies.
- ``mail_backlog_draining`` (node: a server) the first time in an episode that a queued message is
  delivered to that server: the backlog is landing on it. Cause: the ``mail_backlog`` event. It is
  harm to the server's datacenter, so an ``overloaded`` event that follows points at it.
- ``mail_backlog_cleared`` (node: the region) when the queue is empty again, with its peak.
- ``mail_lost`` (node: the region): at most one per region and window, summing what was lost in it
  by reason. Cause: the region's backlog episode (or what failed the message, if it was never queued).

Mail is real load on the servers but it is not counted in the availability of user requests.

Cost: one ``_Message`` (six slots) per message while it is undelivered, and one scheduled event per
attempt (two when it fails late) plus one per retry wait. With no failures a message costs about what a
user request does; during an outage the queue holds every message that arrived in it, so a million
queued messages take a few hundred megabytes. ``limits.max_requests`` bounds the expected count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import simpy

from sim.cluster import Cluster
from sim.events import MAIL_BACKLOG, MAIL_BACKLOG_CLEARED, MAIL_BACKLOG_DRAINING, MAIL_LOST
from sim.recorder import MailRecorder
from sim.rng import Streams
from sim.scenario import Mail, MailRetry, Scenario
from sim.schedule import later, make_sampler
from sim.units import format_duration

__all__ = ["Deliverer", "MailSenders", "retry_delay", "QUEUE_FULL", "EXPIRED"]

QUEUE_FULL, EXPIRED = "queue_full", "expired"


class Deliverer(Protocol):
    """The one thing mail asks of an engine."""

    def deliver(self, server: int, service: float, timeout: float, done: Callable[[bool], None]) -> None:
        """Book a delivery of ``service`` seconds on ``server``; call ``done(ok)`` once, when it is known."""
        ...


def retry_delay(retry: MailRetry, failures: int) -> float:
    """How long a message waits after its ``failures``-th failed attempt.

    >>> [retry_delay(MailRetry(first=60, multiplier=2, max=300), k) for k in (1, 2, 3, 4)]
    [60.0, 120.0, 240.0, 300.0]
    >>> retry_delay(MailRetry(first=60, multiplier=2, max=300), 5000)  # past the cap, never past a float
    300.0
    """
    k = failures - 1
    if retry.multiplier > 1.0 and k * math.log(retry.multiplier) > math.log(retry.max / retry.first) + 1.0:
        return float(retry.max)  # the power would only be capped (and could overflow a float)
    return min(retry.max, retry.first * retry.multiplier**k)


class _Message:
    """One message, from arrival until it is delivered or lost."""

    __slots__ = ("region", "db", "t0", "failures", "server", "queued")

    def __init__(self, region: int, db: int, t0: float):
        self.region = region
        self.db = db
        self.t0 = t0
        self.failures = 0
        self.server = -1  # where the latest attempt went; -1: its database was unavailable
        self.queued = False  # holds a slot in the sender queue


class MailSenders:
    """The senders of every region's incoming mail: arrivals, attempts, retry queues, the event log."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        cluster: Cluster,
        streams: Streams,
        engine: Deliverer,
        recorder: MailRecorder,
    ):
        if scenario.workload.mail is None:
            raise ValueError(f"scenario '{scenario.name}' has no workload.mail to simulate")
        self.env, self.scenario, self.cluster, self.streams = env, scenario, cluster, streams
        self.engine, self.rec = engine, recorder
        self.mail: Mail = scenario.workload.mail
        rng = streams.stream("mail/service")
        groups = {s.group: s.service for s in cluster.servers}
        self.samplers = {group: make_sampler(service, rng) for group, service in groups.items()}
        n = len(cluster.region_ids)
        self.episode: list[int | None] = [None] * n  # the region's mail_backlog event while it lasts
        self.episode_start = [0.0] * n
        self.episode_peak = [0] * n
        self.draining: list[set[int]] = [set() for _ in range(n)]  # servers reported this episode
        self.lost_pending = [{QUEUE_FULL: 0, EXPIRED: 0} for _ in range(n)]
        self.lost_cause: list[int | None] = [None] * n
        self.flush_due = [False] * n

    # ---------------------------------------------------------------------------------- arrivals

    def start(self) -> None:
        """Start the Poisson arrivals of every region that receives mail, in topology order."""
        for region, name in enumerate(self.cluster.region_ids):
            load = self.mail.regions.get(name)
            if load is not None:
                self._arrivals(region, name, load.rate)

    def _arrivals(self, region: int, name: str, rate: float) -> None:
        env, rec = self.env, self.rec
        rng = self.streams.stream(f"mail/{name}")
        dbs = self.cluster.region_databases[region]
        duration = self.scenario.duration
        mean_gap = 1.0 / rate

        def arrive(_: Any) -> None:
            now = env.now
            if now >= duration:
                return
            rec.arrived[region][rec.window_of(now)] += 1
            self._attempt(_Message(region, dbs[rng.below(len(dbs))], now))
            later(env, rng.exponential(mean_gap), arrive)

        later(env, rng.exponential(mean_gap), arrive)

    # ---------------------------------------------------------------------------------- attempts

    def _attempt(self, msg: _Message) -> None:
        rec = self.rec
        rec.attempts[msg.region][rec.window_of(self.env.now)] += 1
        server = self.cluster.active[msg.db]
        msg.server = server
        if server < 0:  # the receiving front end answers "mailbox unavailable, try again later"
            return self._done(msg, False)
        service = self.samplers[self.cluster.servers[server].group]() * self.mail.work
        self.engine.deliver(server, service, self.mail.timeout, lambda ok: self._done(msg, ok))

    def _done(self, msg: _Message, ok: bool) -> None:
        now = self.env.now
        rec = self.rec
        region = msg.region
        w = rec.window_of(now)
        if ok:
            rec.delivered[region][w] += 1
            rec.delays.append(now - msg.t0)
            rec.delay_window.append(w)
            rec.delay_region.append(region)
            if msg.failures:
                rec.delayed[region][w] += 1
            if msg.queued:
                self._landed(msg)
                self._change_backlog(msg, -1)
            return
        msg.failures += 1
        wait = retry_delay(self.mail.retry, msg.failures)
        if now + wait - msg.t0 > self.mail.give_up:
            return self._lose(msg, EXPIRED)
        if not msg.queued:
            limit = self.mail.queue_limit
            if limit is not None and rec.backlog[region] >= limit:
                return self._lose(msg, QUEUE_FULL)
            msg.queued = True
            self._change_backlog(msg, +1)
        later(self.env, wait, lambda _: self._attempt(msg))

    # ---------------------------------------------------------------------------------- the event log

    def _why(self, msg: _Message) -> int | None:
        """Return the latest harm in the datacenter of the server that failed ``msg``.

        If its database had no active copy: the latest of those of the servers holding its copies.
        """
        cluster = self.cluster
        servers = [msg.server] if msg.server >= 0 else cluster.copies[msg.db]
        causes = [c for c in (cluster.load_cause(s) for s in servers) if c is not None]
        return max(causes) if causes else None

    def _change_backlog(self, msg: _Message, change: int) -> None:
        region = msg.region
        now = self.env.now
        value = self.rec.change_backlog(region, now, change)
        cluster = self.cluster
        name = cluster.region_ids[region]
        if change > 0 and value == 1:
            if msg.server >= 0:
                what = f"deliveries to {cluster.servers[msg.server].id} failing"
            else:
                what = f"database {cluster.database_ids[msg.db]} unavailable"
            first = format_duration(retry_delay(self.mail.retry, 1))
            self.episode[region] = cluster.trace.record(
                now, MAIL_BACKLOG, name, self._why(msg),
                f"{what}; mail for {name} waits in the senders' queue (first retry after {first})",
            )
            self.episode_start[region] = now
            self.episode_peak[region] = 0
            self.draining[region].clear()
        self.episode_peak[region] = max(self.episode_peak[region], value)
        if value == 0 and self.episode[region] is not None:
            lasted = format_duration(round(now - self.episode_start[region], 3))
            peak = self.episode_peak[region]
            cluster.trace.record(now, MAIL_BACKLOG_CLEARED, name, self.episode[region],
                                 f"senders' queue empty after {lasted} (peak {peak:,} messages)")
            self.episode[region] = None

    def _landed(self, msg: _Message) -> None:
        """Note a queued message delivered: the first of an episode on a server is its backlog landing."""
        region, server = msg.region, msg.server
        episode = self.episode[region]
        if episode is None or server in self.draining[region]:
            return
        self.draining[region].add(server)
        cluster = self.cluster
        s = cluster.servers[server]
        rid = cluster.trace.record(
            self.env.now, MAIL_BACKLOG_DRAINING, s.id, episode,
            f"{self.rec.backlog[region]:,} queued messages for {cluster.region_ids[region]} retrying; "
            f"the backlog lands on {s.id}",
        )
        cluster.note_harm(s.datacenter, rid)

    def _lose(self, msg: _Message, reason: str) -> None:
        region = msg.region
        now = self.env.now
        rec = self.rec
        table = rec.lost_expired if reason == EXPIRED else rec.lost_queue_full
        table[region][rec.window_of(now)] += 1
        if not self.flush_due[region]:
            self.flush_due[region] = True
            episode = self.episode[region]
            self.lost_cause[region] = episode if episode is not None else self._why(msg)
            window_end = (int(now / rec.window) + 1) * rec.window
            later(self.env, window_end - now, lambda _: self._flush_lost(region))
        self.lost_pending[region][reason] += 1
        if msg.queued:
            msg.queued = False
            self._change_backlog(msg, -1)

    def _flush_lost(self, region: int) -> None:
        """Record one ``mail_lost`` event for what ``region`` lost since the last one."""
        if not self.flush_due[region]:
            return
        self.flush_due[region] = False
        pending = self.lost_pending[region]
        mail = self.mail
        parts = []
        if pending[QUEUE_FULL]:
            limit = mail.queue_limit
            parts.append(f"{pending[QUEUE_FULL]:,} with the senders' queue full ({limit:,} messages)")
        if pending[EXPIRED]:
            parts.append(f"{pending[EXPIRED]:,} expired (retried for up to {format_duration(mail.give_up)})")
        total = pending[QUEUE_FULL] + pending[EXPIRED]
        name = self.cluster.region_ids[region]
        self.cluster.trace.record(self.env.now, MAIL_LOST, name, self.lost_cause[region],
                                  f"{total:,} messages for {name} lost: {'; '.join(parts)}")
        self.lost_pending[region] = {QUEUE_FULL: 0, EXPIRED: 0}

    def finish(self) -> None:
        """At the end of the run: record the losses not yet summed up in a ``mail_lost`` event."""
        for region in range(len(self.cluster.region_ids)):
            self._flush_lost(region)
