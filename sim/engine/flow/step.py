"""One step of the flow engine, as a pipeline of named stages, each handing the next a named result.

Per step from ``t`` of length ``h`` (in metrics window ``w``), with the state at its start (explicit
Euler):

1. :meth:`Step.attempts` → :class:`Attempts`: new requests (× surges, with Poisson noise when
   ``flow.noise`` is on) and the client retries that come due, per region, request type, attempt and
   origin window (new requests come in the mix's shares; a retry keeps its request's type);
2. :meth:`Step.admit` → :class:`Admitted`: the share each region's breaker lets through, and the
   first attempts and retries sent;
3. :meth:`Tries.send <sim.engine.flow.tries.Tries.send>` → :class:`~sim.engine.flow.tries.TryOutcome`:
   the tries, their outcomes per region, the failures per entry, the latency and the loads;
4. :func:`outcome_shares` → the share of each region's attempts of each type that succeeded, erred, timed out
   (and, of the errors, were refused by a full server: their retries meet it still full);
5. :meth:`ClientRetries.settle <sim.engine.flow.retries.ClientRetries.settle>` → the mass each region's
   clients retry: successes counted, failures retried after a backoff or given up (those whose backoff
   ends within the step are sent within it, and their load joins the step's: :meth:`Tries.within
   <sim.engine.flow.tries.Tries.within>`);
   :meth:`Pairs.retries_wait <sim.engine.flow.databases.Pairs.retries_wait>` keeps them where they failed;
6. :meth:`Step.advance` — the queues (servers, dependencies) move on and the links carry what crossed them;
7. :meth:`Step.learn` — the breakers learn the step's outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from sim.cluster import Cluster
from sim.engine.flow.arrays import TINY, some, sums
from sim.engine.flow.classes import Classes
from sim.engine.flow.databases import Pairs
from sim.engine.flow.dependencies import Dependencies, Links
from sim.engine.flow.records import Records
from sim.engine.flow.retries import ClientRetries
from sim.engine.flow.servers import Servers
from sim.engine.flow.tries import Loads, Tries, TryOutcome
from sim.policies import Breaker

__all__ = ["Admitted", "Attempts", "Step", "outcome_shares"]


class Attempts(NamedTuple):
    """The client attempts of a step, per region (and per [region, request type]): new requests and the
    retries that came due.
    """

    new: np.ndarray  # first attempts (new requests)
    retries: np.ndarray  # client retries due
    total: np.ndarray  # both
    by_attempt: np.ndarray  # [region, request type, attempt number - 1, origin window mod M]
    age: np.ndarray  # the same, sum of (age x mass): how long ago their requests arrived
    new_types: np.ndarray  # [region, type]: first attempts (the mix's shares of ``new``)
    retry_types: np.ndarray  # [region, type]: client retries due
    full: np.ndarray  # [region, retry number - 1]: of the retries due, those of tries a full server refused


class Admitted(NamedTuple):
    """What the breakers let through, per region."""

    sent: np.ndarray  # the share of the region's attempts its breaker lets through
    routed: np.ndarray  # whether the region has a datacenter to go to
    first: np.ndarray  # first attempts sent (and routed)
    retries: np.ndarray  # client retries sent (and routed)
    full: np.ndarray  # [region, retry number - 1]: of those, retries of tries a full server refused


class Step:
    """The step of the flow engine over its parts; :meth:`run` is one step, :meth:`read` what it reads
    of the cluster between steps (routes and load scales).
    """

    def __init__(self, cluster: Cluster, end: float, rates: list[Callable[[float], float] | None],
                 noise: np.random.Generator | None, servers: Servers, classes: Classes, pairs: Pairs,
                 deps: Dependencies, links: Links, retries: ClientRetries, records: Records, tries: Tries,
                 breakers: list[Breaker | None]):
        self.cluster, self.end, self.rates, self.noise = cluster, end, rates, noise
        self.servers, self.classes, self.pairs, self.deps, self.links = servers, classes, pairs, deps, links
        self.retries, self.records, self.tries, self.breakers = retries, records, tries, breakers
        self.n_regions = len(rates)
        self.bits = tries.types[0].bits  # a crossing's size, for the links' load estimate
        self.mix = np.array([rt.share for rt in tries.types])  # the request types' shares of new requests
        self.route = np.zeros(self.n_regions, dtype=np.int64)  # per region: its datacenter (-1: none)
        self.scale = np.ones(self.n_regions)  # per region: its load's factor (surges)

    def read(self, cluster: Cluster) -> None:
        """Read the regions' routes and load scales (``Cluster.route``, ``Cluster.load_scale``)."""
        self.route = np.array(cluster.route, dtype=np.int64)
        self.scale = np.array(cluster.load_scale, dtype=float)

    def run(self, t: float, h: float) -> None:
        """One step from ``t`` of length ``h``: the stages in order (see the module)."""
        rec = self.records.rec
        w = min(int(t / rec.window + 1e-9), rec.n)
        self.records.at_window(w)
        self.servers.end_warmups(t)
        attempts = self.attempts(t, h, w)
        admitted = self.admit(t, w, attempts)
        counts = self.records.counts
        shed = counts["shed"][:, w].copy()
        tries = self.tries.send(t, h, w, self.route, admitted.first, admitted.retries, attempts.retry_types,
                                admitted.full)
        shares = outcome_shares(attempts, tries)
        retried = self.retries.settle(t, t + h, w, attempts.by_attempt, attempts.age, shares, tries.latency,
                                      self.records, tries.refail)
        loads = tries.loads
        in_step = self.retries.in_step
        if some(in_step):  # client retries sent within the step they failed in: counted, refused and loading
            sent = admitted.first + admitted.retries  # the servers as the step's tries did
            shed = counts["shed"][:, w] - shed
            counts["attempts"][:, w] += in_step
            counts["retries"][:, w] += in_step
            counts["shed"][:, w] += np.where(sent > 0, in_step * shed / np.maximum(sent, TINY), 0.0)
            self.retries.traffic += float(sums(in_step)) / h  # (the quiet test's retries are those that came due)
            loads = self.tries.within(loads, in_step, sent, w)
        self.advance(loads, h, w)
        self.pairs.retries_wait(tries.fails, retried)
        self.learn(t, h, attempts, admitted, tries)

    def attempts(self, t: float, h: float, w: int) -> Attempts:
        """New requests, and the client retries that come due in [t, t + h)."""
        counts = self.records.counts
        R = self.n_regions
        new = np.zeros(R)
        if t < self.end:
            new = np.array([fn(t + h / 2) * scale * h if fn is not None else 0.0
                            for fn, scale in zip(self.rates, self.scale.tolist(), strict=True)], dtype=float)
            if self.noise is not None:
                new = self.noise.poisson(new).astype(float)
            counts["requests"][:, w] += new
        ring = self.retries
        # [region, request type, attempt - 1, origin window]
        by_attempt = np.zeros((R, self.mix.size, ring.attempts_max, ring.origins))
        age = np.zeros(by_attempt.shape)
        new_types = new[:, None] * self.mix[None, :]
        by_attempt[:, :, 0, w % ring.origins] = new_types
        full = np.zeros((R, ring.full.shape[1]))  # [region, retry number - 1]
        if ring.pending > 0:
            due = ring.take_due(t, h)
            by_attempt[:, :, 1:, :] += due.mass[:, :, : ring.attempts_max - 1, :]
            age[:, :, 1:, :] += due.age[:, :, : ring.attempts_max - 1, :]
            full = due.full
            self.pairs.retries_leave(sums(due.mass, axis=(1, 2, 3)))  # from where they are pending
        else:
            self.pairs.no_retries_due()
        attempts = sums(by_attempt, axis=(1, 2, 3))
        every = sums(attempts)
        ring.traffic = float(every) / h
        ring.retrying = float(every - sums(new)) / h
        if ring.budgeted:
            for r, budget in enumerate(ring.budgets):
                if budget is not None:
                    budget.fill(float(new[r]), h)
        later = attempts - new
        counts["attempts"][:, w] += attempts
        counts["retries"][:, w] += later
        # (one type: the retries themselves, as the region's figures count them)
        retry_types = later[:, None] if self.mix.size == 1 else sums(by_attempt[:, :, 1:, :], axis=(2, 3))
        return Attempts(new, later, attempts, by_attempt, age, new_types, retry_types, full)

    def admit(self, t: float, w: int, attempts: Attempts) -> Admitted:
        """The breakers: the share of each region's attempts that is sent (a half-open breaker sends its
        probes); regions with no route send nothing.
        """
        total = attempts.total
        sent = np.ones(self.n_regions)
        for r, breaker in enumerate(self.breakers):
            if breaker is not None:
                sent[r] = breaker.admits(t)
                if breaker.state == "half_open" and total[r] > 0:
                    sent[r] = min(1.0, breaker.policy.probes / total[r])
        self.records.counts["breaker_rejected"][:, w] += total * (1.0 - sent)
        mass0, mass_r = attempts.new * sent, attempts.retries * sent
        routed = self.route >= 0
        return Admitted(sent, routed, mass0 * routed, mass_r * routed, attempts.full * (sent * routed)[:, None])

    def advance(self, loads: Loads, h: float, w: int) -> None:
        """The queues move on by ``h`` under the step's loads (and the mail delivered meanwhile); the links
        carry what crossed them.
        """
        self.servers.add_mail(loads.per_server, h)
        view = self.classes.after_loads(loads.per_server)
        self.servers.advance(view.rep, view.of, loads.per_server, h, loads.full)
        self.deps.advance(loads.dep_calls, loads.dep_work, h)
        self.records.link_bits[:, w] += loads.link_bps * h
        self.links.carry(loads.link_bps, h, self.bits)

    def learn(self, t: float, h: float, attempts: Attempts, admitted: Admitted, tries: TryOutcome) -> None:
        """The breakers learn the step's outcome (of the attempts they let through)."""
        first, retries = tries.first, tries.retries
        for r, breaker in enumerate(self.breakers):
            through = attempts.total[r] * admitted.sent[r]
            if breaker is not None and through > 0:
                lost = float(first.error[r].sum() + first.timeout[r].sum() + retries.error[r].sum()
                             + retries.timeout[r].sum()) if admitted.routed[r] else through
                u = self.noise.uniform() if self.noise is not None else None
                state = breaker.observe(t + h, through, max(0.0, lost), u)
                if state is not None:
                    self.cluster.breaker_changed(r, state)


def outcome_shares(attempts: Attempts, tries: TryOutcome) -> np.ndarray:
    """Per attempt: [region, request type, first attempt (0) or retry (1), ok / error / timeout / refused by
    a full server] shares of the step's attempts (the breakers' rejections and the tries' failures are
    errors and timeouts; the last is a part of the errors).
    """
    shape = (*attempts.new_types.shape, 2)  # [region, type, first attempt or retry]

    def both(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """First attempts' ``x`` and retries' ``y`` side by side (as np.stack on the last axis, for less)."""
        out = np.empty(shape)
        out[..., 0], out[..., 1] = x, y
        return out

    shares = np.empty((*shape, 4))
    first, retries = tries.first, tries.retries
    raw = both(attempts.new_types, attempts.retry_types)
    some = raw > 0
    every = np.count_nonzero(some) == some.size

    def where_some(x: np.ndarray) -> np.ndarray:
        """``x`` where there are attempts, else 0 (``x`` itself where there are everywhere)."""
        return x if every else np.where(some, x, 0.0)

    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.maximum(raw, TINY)
        ok = shares[..., 0] = where_some(both(first.ok, retries.ok) / safe)
        timeout = shares[..., 2] = where_some(both(first.timeout, retries.timeout) / safe)
        error = shares[..., 1] = where_some(np.maximum(0.0, 1.0 - ok - timeout))
        shares[..., 3] = where_some(np.minimum(both(first.full, retries.full) / safe, error))
    return shares
