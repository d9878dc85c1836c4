"""Client retries: the ring they wait in, the client's outcomes of a step, and the retries it schedules.

Client retries wait in a delay buffer (the ring) per region, request type, attempt number and origin
window, spread uniformly over their backoff's jitter interval after the failure (errors at once, timeouts
at the client's timeout), within the retry budget, and come back as attempts when due: a retry is of its
request's type, so a sign-in that failed is retried as a sign-in. Load-balancer and dependency retries
are resolved within the step (:mod:`sim.engine.flow.tries`), their load offered when their backoff ends
(:mod:`sim.engine.flow.delays`); only the client's wait here, but for those whose backoff ends within the
step they failed in: they are sent within it, meet its outcomes where they failed and load its servers
(:meth:`ClientRetries.settle`). A success counts in the window its request arrived in, and its latency
carries its request's age.

Retries bunch: a try refused because its server was full comes back a backoff later to a server that is
likely full still. The ring keeps, beside the pending retries, how many of them are such retries (per
slot, retry number and region: ``full``), so that the tries stage can give them the chance that a full
server is full again after their delay (:func:`sim.queueing.retrial_blocking`) rather than a first
attempt's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from sim.engine.flow.arrays import TINY, some, sums
from sim.engine.flow.records import BINS, CENTRES, Records, bin_of
from sim.policies import Budget, backoff_span
from sim.scenario import ClientPolicy

__all__ = ["RING_CELLS", "QUIET_RETRIES", "ClientRetries", "DueRetries", "retry_ring"]

RING_CELLS = 10_000_000
"""The most cells the client-retry ring may hold (slots × regions × retries × origin windows; two float
arrays of that size): the loader refuses a flow run that would need more."""

QUIET_RETRIES = 0.01
"""A long step may begin while client retries are pending if they come due at under this share of the
rate of attempts (pending / (timeout + longest backoff + longest step)): they come due within the step
(averaged over it, as new requests are), and those its failures schedule come due from its end."""


def retry_ring(client: ClientPolicy, dt: float, max_dt: float, window: float) -> tuple[int, int]:
    """Size of the client-retry ring: (slots of ``dt`` ahead, origin windows), enough for what can be pending.

    A retry is scheduled at most ``reach`` ahead: its timeout, the longest backoff its jitter can draw and,
    from a long step, two steps. The slots cover that (or the earlier sizing by ``backoff.max``, which
    a short exponential series may never reach, if smaller: either way nothing is clamped, so the answer
    is the same); a request lives for at most its retries' spans, which the origin windows cover.
    ``limits.max_drain`` bounds both, and the loader checks their product (:data:`RING_CELLS`).
    """
    b = client.backoff
    longest = max((backoff_span(b, k)[1] for k in range(1, client.retries + 1)), default=0.0)
    reach = max(client.timeout + longest, max_dt) + max_dt + longest + 2 * dt
    span = client.timeout + max(b.max, b.base) * 1.5 + dt
    slots = int(math.ceil(min(span + max_dt, reach) / dt)) + 2  # a long step may jump a whole span
    origins = int(math.ceil((client.retries + 1) * span / window)) + 2
    return slots, origins


class DueRetries(NamedTuple):
    """The client retries that come due in a step, [region, request type, retry number - 1, origin window mod M]."""

    mass: np.ndarray
    age: np.ndarray  # sum of (age x mass): a retry's request arrived that long ago
    full: np.ndarray  # [region, retry number - 1]: of ``mass``, the retries of tries refused by a full server


class ClientRetries:
    """The clients' retries: the ring of pending ones, the retry budgets, what is due and what is retried.

    The ring is [slot of ``dt``, retry number - 1, region, request type, origin window mod ``origins``]
    (a step schedules the retries of one number at once: a block of each slot); ``pending`` is the mass
    in it; ``full`` [slot, retry number - 1, region] the part of it that retries tries a full server
    refused. ``traffic`` and ``retrying`` are the attempts and the retries that came due per second of the
    last step (the retries sent within it count among its attempts only: :meth:`few` asks whether the
    retries coming due are few).
    """

    def __init__(self, client: ClientPolicy, dt: float, max_dt: float, window: float, n_regions: int,
                 n_types: int = 1):
        self.client = client
        self.dt = dt
        self.attempts_max = client.retries + 1
        self.slots, self.origins = retry_ring(client, dt, max_dt, window)
        # Pending retries come due within a timeout and a backoff, or a long step and its backoff.
        self.span = client.timeout + max(client.backoff.max, client.backoff.base) + max_dt
        shape = (self.slots, max(client.retries, 1), n_regions, n_types, self.origins)
        self.ring = np.zeros(shape)
        self.ring_age = np.zeros(shape)  # sum of (age x mass): a retry's request arrived that long ago
        self.full = np.zeros((self.slots, max(client.retries, 1), n_regions))
        self.any_full = False  # whether any such retry was ever put in the ring (else ``full`` holds zeros)
        self.pending = 0.0  # mass in the ring
        self.traffic = self.retrying = 0.0  # attempts and retries that came due per second in the last step
        self.budgets = [Budget(client.budget) if client.budget else None for _ in range(n_regions)]
        self.budgeted = client.budget is not None
        self.spans = [backoff_span(client.backoff, a + 1) for a in range(self.attempts_max)]  # per retry number
        self.classes = np.minimum(np.arange(self.attempts_max), 1)  # attempt number - 1 -> first attempt or retry
        self._windows: tuple[int, np.ndarray, slice | np.ndarray] | None = None  # (window, its ``_origins``)
        self._within_base: tuple[list[tuple[float, float]] | None] | None = None  # (:meth:`_within` of the base step)
        self.in_step = np.zeros(n_regions)  # per region: the retries sent within the last step they failed in

    def _origins(self, w: int) -> tuple[np.ndarray, slice | np.ndarray]:
        """In window ``w``, the origin slots (mod ``origins``) that stand for a window (not before the first),
        as a selection of them (a slice when they all do), and the windows they stand for.
        """
        if self._windows is None or self._windows[0] != w:
            windows = np.array([w - ((w - m) % self.origins) for m in range(self.origins)])
            valid = windows >= 0
            self._windows = (w, windows[valid], slice(None) if valid.all() else valid)
        return self._windows[1], self._windows[2]

    def few(self) -> bool:
        """Next to no retries pending: less than one, or under :data:`QUIET_RETRIES` of the attempts in the
        last step and as few pending over the time they take to come due.
        """
        return self.pending < 1.0 or (self.retrying < QUIET_RETRIES * self.traffic
                                      and self.pending < QUIET_RETRIES * self.traffic * self.span)

    def take_due(self, t: float, h: float) -> DueRetries:
        """Take out of the ring the retries that come due in [t, t + h): in a long step every slot that
        starts before its end, in a short one the step's share of the slot under way.
        """
        k = int(math.floor(t / self.dt + 1e-9))
        slot = k % self.slots
        left = (k + 1) * self.dt - t
        if h > left + 1e-9:  # a long step: every slot that starts before its end comes due
            last = int(math.ceil((t + h) / self.dt - 1e-9)) - 1
            # (slots in one stretch of the ring, as a rule, are a slice: no copies, the same sums)
            idx: slice | np.ndarray = slice(slot, slot + last - k + 1) if slot + last - k < self.slots \
                else np.arange(k, last + 1) % self.slots
            due, due_age = sums(self.ring[idx], axis=0), sums(self.ring_age[idx], axis=0)
            self.ring[idx] = 0.0
            self.ring_age[idx] = 0.0
            if self.any_full:
                due_full = sums(self.full[idx], axis=0)
                self.full[idx] = 0.0
        else:
            take = min(1.0, h / left) if left > 0 else 1.0
            due = self.ring[slot] * take
            due_age = self.ring_age[slot] * take
            self.ring[slot] -= due
            self.ring_age[slot] -= due_age
            if self.any_full:
                due_full = self.full[slot] * take
                self.full[slot] -= due_full
        # (as [region, type, retry number - 1, origin]: laid out so, their sums add in the same order)
        due, due_age = due.transpose(1, 2, 0, 3).copy(), due_age.transpose(1, 2, 0, 3).copy()
        due_full = due_full.T.copy() if self.any_full else np.zeros((self.full.shape[2], self.full.shape[1]))
        self.pending = max(0.0, self.pending - float(sums(due, axis=None)))
        return DueRetries(due, due_age, due_full)

    def settle(self, t: float, step_end: float, w: int, by_attempt: np.ndarray, age: np.ndarray,
               shares: np.ndarray, hist: np.ndarray, records: Records, refail: np.ndarray | None = None) -> np.ndarray:
        """Count successes in their requests' windows; retry failures after a backoff, or give up.

        ``by_attempt`` and ``age`` are the step's attempts [region, request type, attempt - 1, origin
        window] (and their age x mass), ``shares[region, type, cls]`` is (ok, error, timeout, refused by
        a full server: a part of the errors) per attempt, for first attempts (cls 0) and retries (cls 1),
        ``hist`` the latency histogram of the step's successes (their try time). Returns the retried mass
        per region (after a backoff that ends past the step).

        A failure whose backoff ends within the step (a step no longer than the base step: :meth:`_within`)
        is retried within it: the retry meets the step's outcomes where its attempt failed, its chance of
        failing the step's (first attempts and retries in their masses) times ``refail`` per region (how much
        likelier a failed attempt fails again where it failed, :meth:`Tries.send
        <sim.engine.flow.tries.Tries.send>`; capped at certain). ``in_step`` keeps how many per region.
        """
        counts = records.counts
        c = self.client
        R = len(self.budgets)
        per = shares[:, :, self.classes, :]  # [region, type, attempt, outcome]
        within = self._within(step_end - t)  # per retry number - 1: the shares due within the step (errors, timeouts)
        # The retries sent within the step: [region, type, attempt - 1, origin] (and age x mass), their shares
        # [region, type, outcome] (when the first comes)
        inner: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        origin_windows, valid = self._origins(w)
        in_step = np.zeros(R)
        # Failures: retried within the attempts and the budget, or given up.
        fail_share = per[..., 1] + per[..., 2]  # [region, type, attempt]
        retried = np.zeros(R)
        # Of the failures of each attempt, the timeouts (they come back after the client's timeout) and the
        # refusals by a full server (a part of the errors, which come back at once). [region, type, attempt]
        bunching = some(per[..., 3])
        with np.errstate(invalid="ignore", divide="ignore"):
            failing, safe = fail_share > 0, np.maximum(fail_share, TINY)
            to_shares = np.where(failing, per[..., 2] / safe, 0.0)
            fulls = np.where(failing, per[..., 3] / safe, 0.0) if bunching else None
        for a in range(self.attempts_max):
            mass = by_attempt[:, :, a, :] * fail_share[:, :, a, None]  # [region, type, origin]
            to_share = to_shares[:, :, a]  # [region, type]
            full_share = None if fulls is None else fulls[:, :, a]
            again = inner is not None and some(inner[0][:, :, a, :])  # and the retries sent within the step
            if not again and not some(mass):
                continue
            mass_age = age[:, :, a, :] * fail_share[:, :, a, None]
            if again:
                assert inner is not None
                sent, sent_age, each = inner
                fail_in = each[..., 1] + each[..., 2]
                base, more = sums(by_attempt[:, :, a, :], axis=2), sums(sent[:, :, a, :], axis=2)
                failed = base * fail_share[:, :, a] + more * fail_in
                mass = mass + sent[:, :, a, :] * fail_in[:, :, None]
                mass_age = mass_age + sent_age[:, :, a, :] * fail_in[:, :, None]
                with np.errstate(invalid="ignore", divide="ignore"):  # (the two kinds' failures by their masses)
                    safe_f = np.maximum(failed, TINY)
                    to_share = np.where(failed > 0, (base * per[:, :, a, 2] + more * each[..., 2]) / safe_f, 0.0)
                    if full_share is not None or some(each[..., 3]):
                        full_share = np.where(failed > 0, (base * per[:, :, a, 3] + more * each[..., 3]) / safe_f, 0.0)
            if not some(mass):
                continue
            if a + 1 >= self.attempts_max:
                _give_up(records, mass, origin_windows, valid)
                continue
            if self.budgeted:
                total = sums(mass, axis=(1, 2))
                allowed = np.ones(R)
                for region, budget in enumerate(self.budgets):
                    if budget is not None:
                        allowed[region] = budget.allow(float(total[region]))
                counts["budget_exhausted"][:, w] += total * (1.0 - allowed)
                _give_up(records, mass * (1.0 - allowed)[:, None, None], origin_windows, valid)
                keep = mass * allowed[:, None, None]
                keep_age = mass_age * allowed[:, None, None]
            else:  # (the same: every failure allowed, x * 1.0 is x and nothing is given up)
                keep = mass
                keep_age = mass_age
            lo, hi = self.spans[a]
            # Errors come back at once, timeouts at the client's timeout.
            for j, (after, part) in enumerate(((0.0, 1.0 - to_share), (c.timeout, to_share))):
                mp = keep * part[:, :, None]
                if not some(mp):
                    continue
                ma = keep_age * part[:, :, None] + mp * (after + (lo + hi) / 2)
                bunched = sums(keep * full_share[:, :, None], axis=(1, 2)) if after == 0.0 and full_share is not None \
                    else None
                if bunched is not None and not some(bunched):  # (none: adding zeros changes nothing)
                    bunched = None
                g = within[a][j] if within is not None else 0.0
                if g > 0.0:  # due within the step: sent in it (settled at the next attempt number), but for the
                    # retries of tries a full server refused, which meet it after their backoff as
                    # :func:`sim.queueing.retrial_blocking` follows it (from the next step)
                    now: float | np.ndarray = g
                    if bunched is not None and full_share is not None:  # (their share of the errors)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            now = g * (1.0 - np.where(part > 0, np.minimum(full_share / np.maximum(part, TINY), 1.0),
                                                      0.0))[:, :, None]
                    if inner is None:
                        inner = (np.zeros(by_attempt.shape), np.zeros(age.shape),
                                 _in_step_shares(by_attempt, shares, refail))
                    inner[0][:, :, a + 1, :] += mp * now
                    inner[1][:, :, a + 1, :] += ma * now
                    in_step += sums(mp * now, axis=(1, 2))
                    mp, ma = mp * (1.0 - now), ma * (1.0 - now)
                    if bunched is None and g >= 1.0:
                        continue
                retried += sums(mp, axis=(1, 2))
                self.schedule(t, step_end, a + 1, mp, ma, after + lo, after + hi, bunched)
        self.in_step = in_step
        by_r = sums(by_attempt, axis=3)  # [region, type, attempt]
        errors, timeouts = sums(by_r * per[..., 1], axis=(1, 2)), sums(by_r * per[..., 2], axis=(1, 2))
        ok_by_origin = sums(by_attempt * per[..., 0, None], axis=(1, 2))  # [region, origin]
        # Latency: each success's try time plus how long ago its request arrived (the mean age of the
        # step's successful retries; first attempts have none).
        ok_retry = by_r[:, :, 1:] * per[:, :, 1:, 0]  # [region, type, attempt - 2]
        ok_all = sums(by_r * per[..., 0], axis=(1, 2))
        ok_tries, aged_mass = ok_all, sums(age[:, :, 1:], axis=3) * per[:, :, 1:, 0]
        if inner is not None and some(in_step):  # with the retries sent within the step
            sent, sent_age, each = inner
            in_r = sums(sent, axis=3)
            errors = errors + sums(in_r * each[:, :, None, 1], axis=(1, 2))
            timeouts = timeouts + sums(in_r * each[:, :, None, 2], axis=(1, 2))
            ok_by_origin = ok_by_origin + sums(sent * each[:, :, None, None, 0], axis=(1, 2))
            ok_retry = ok_retry + in_r[:, :, 1:] * each[:, :, None, 0]
            ok_all = ok_all + sums(in_r * each[:, :, None, 0], axis=(1, 2))
            aged_mass = aged_mass + sums(sent_age[:, :, 1:], axis=3) * each[:, :, None, 0]
        counts["errors"][:, w] += errors
        counts["timeouts"][:, w] += timeouts
        counts["ok"][:, origin_windows] += ok_by_origin[:, valid]  # (distinct windows)
        add = hist  # what goes into the records' histogram, aged where successful retries are
        held = np.logical_or.reduce  # (``any``, without its Python wrapper)
        for r in (held(hist, axis=1) & held(ok_retry.reshape(R, -1), axis=1)).nonzero()[0]:
            aged = float(sums(ok_retry[r], axis=None))
            if aged > 0:
                mean_age = float(sums(aged_mass[r], axis=None) / aged)
                share_aged = min(1.0, aged / max(float(ok_all[r]), TINY))
                if mean_age > 0:
                    row = hist[r]
                    bins = bin_of(CENTRES + mean_age)
                    if add is hist:
                        add = hist.copy()
                    add[r] = row * (1.0 - share_aged) + np.bincount(bins, weights=row * share_aged, minlength=BINS)
        if ok_all is not ok_tries:  # the successes of the retries sent within the step: the tries' latencies
            with np.errstate(invalid="ignore", divide="ignore"):
                grow = np.where(ok_tries > 0, ok_all / np.maximum(ok_tries, TINY), 1.0)
            add = add * grow[:, None]
        records.hist += add
        return retried

    def _within(self, h: float) -> list[tuple[float, float]] | None:
        """Per retry number - 1, of the failures of a step of ``h`` (no longer than the base step) the share
        whose retry comes due within it: (errors, at once; timeouts, at the client's timeout), each after its
        backoff, the failures spread uniformly over the step. None when there are none (or the step is long).
        Kept for the base step; a step cut short computes its own (a few floats per retry number).
        """
        if h > self.dt + 1e-9 or h <= 0.0:
            return None
        base = abs(h - self.dt) <= 1e-9
        if base and self._within_base is not None:
            return self._within_base[0]
        out: list[tuple[float, float]] | None = [
            (_due_within(h, 0.0, *span), _due_within(h, self.client.timeout, *span)) for span in self.spans]
        if not any(g > 0.0 for pair in out for g in pair):  # type: ignore[union-attr]
            out = None
        if base:
            self._within_base = (out,)
        return out

    def schedule(self, t: float, step_end: float, retry: int, mass: np.ndarray, mass_age: np.ndarray, lo: float,
                 hi: float, full: np.ndarray | None = None) -> None:
        """Put ``mass`` [region, type, origin] of retries number ``retry`` into the ring, spread over
        [t+lo, t+hi] (the failures of the step from ``t`` to ``step_end``); ``full`` [region] of them retry
        tries that a full server refused.
        """
        dt = self.dt
        start, stop = t + max(lo, 0.0), t + max(hi, 0.0)
        h = step_end - t
        if h > dt + 1e-9:  # a long step's failures happened all through it: their retries come due from
            start = max(start, step_end)  # its end on, as spread out as they would have been
            stop = start + h + (hi - lo)
        first = int(math.floor(start / dt + 1e-9))
        now_slot = int(math.floor(t / dt + 1e-9))
        taken = max(now_slot, int(math.ceil(step_end / dt - 1e-9)) - 1)  # slots this step has taken
        first = max(first, taken + 1)  # never into a slot taken already (a long step's come due at its end)
        last = max(first, int(math.floor(stop / dt + 1e-9)))
        last = min(last, now_slot + self.slots - 1)
        count = last - first + 1
        each, each_age = mass / count, mass_age / count
        each_full = None if full is None else full / count
        for idx in _slots(first, last, self.slots):
            self.ring[idx, retry - 1] += each
            self.ring_age[idx, retry - 1] += each_age
            if each_full is not None:
                self.full[idx, retry - 1] += each_full
                self.any_full = True
        self.pending += float(sums(mass, axis=None))


def _in_step_shares(by_attempt: np.ndarray, shares: np.ndarray, refail: np.ndarray | None) -> np.ndarray:
    """[region, type, outcome]: the outcome shares of a retry sent within the step it failed in: the step's
    (its first attempts' and retries' ``shares`` in their masses of ``by_attempt``), with the chance of
    failing times ``refail`` per region (capped at certain; None: as the step's), errors and timeouts in
    their shares.

    >>> by = np.zeros((1, 1, 2, 1)); by[0, 0, 0, 0], by[0, 0, 1, 0] = 3.0, 1.0
    >>> shares = np.array([[[[0.5, 0.5, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]]]])
    >>> _in_step_shares(by, shares, np.array([1.5]))[0, 0].round(3).tolist()  # failing 0.4, again 0.6
    [0.4, 0.6, 0.0, 0.0]
    """
    first = sums(by_attempt[:, :, 0, :], axis=2)[..., None]  # [region, type, 1]
    later = sums(by_attempt[:, :, 1:, :], axis=(2, 3))[..., None]
    both = first + later
    with np.errstate(invalid="ignore", divide="ignore"):
        mixed = np.where(both > 0, (first * shares[:, :, 0] + later * shares[:, :, 1]) / np.maximum(both, TINY),
                         shares[:, :, 0])
    if refail is None:
        return mixed
    fail = mixed[..., 1] + mixed[..., 2]
    again = np.minimum(fail * refail[:, None], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = mixed * np.where(fail > 0, again / np.maximum(fail, TINY), 0.0)[..., None]
    out[..., 0] = 1.0 - again
    return out


def _due_within(h: float, after: float, lo: float, hi: float) -> float:
    """P(u + after + b < h) for u uniform on [0, h) and b uniform on [lo, hi] (b = lo when hi <= lo).

    >>> _due_within(1.0, 0.0, 0.0, 0.5), _due_within(1.0, 2.0, 0.0, 0.5), _due_within(1.0, 0.0, 0.0, 0.0)
    (0.75, 0.0, 1.0)
    """
    c = h - after - max(lo, 0.0)
    if c <= 0.0:
        return 0.0
    width = max(hi, lo) - max(lo, 0.0)
    if width <= 1e-12:
        return c / h
    u = min(width, c)
    return (c * c - (c - u) ** 2) / 2.0 / width / h


def _slots(first: int, last: int, slots: int) -> tuple[slice, ...]:
    """The ring's slots ``first`` to ``last`` (fewer than ``slots`` of them; none if ``last < first``) as at most
    two slices (cheaper than an index array, and the same slots).

    >>> _slots(3, 5, 8), _slots(6, 9, 8), _slots(4, 3, 8)
    ((slice(3, 6, None),), (slice(6, None, None), slice(0, 2, None)), ())
    """
    if last < first:
        return ()
    if last - first + 1 >= slots:
        raise ValueError(f"slots {first} to {last} wrap the ring of {slots} more than once")
    a, b = first % slots, last % slots
    return (slice(a, b + 1),) if a <= b else (slice(a, None), slice(0, b + 1))


def _give_up(records: Records, mass: np.ndarray, origin_windows: np.ndarray, valid: slice | np.ndarray) -> None:
    """Count ``mass`` [region, type, origin] of requests as failed, in the windows they arrived in (the origins
    ``valid`` stand for ``origin_windows``), and by type.
    """
    lost = mass[:, :, valid]
    records.counts["failed"][:, origin_windows] += sums(lost, axis=1)  # (distinct windows)
    records.failed_by_type += sums(lost, axis=(0, 2))
