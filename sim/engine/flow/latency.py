"""The latency of a step's successes, into the run's histogram (flow engine).

A try's time is a deterministic part (round trip, link delay, front end, dependencies, fluid wait, and the
earlier tries of its request) plus a stochastic part, the stationary wait and the service; a success is a try
whose stochastic part beat its deadline. Its latency is the deterministic part plus the law of the stochastic
part given that it beat the deadline (:func:`sim.queueing.response_cells`), deposited in the latency
histogram's log-spaced bins (:mod:`sim.engine.flow.records`) so that the histogram's mean is the successes'.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.engine.flow.arrays import TINY, some
from sim.engine.flow.records import BINS, CENTRES, LOG_HI, LOG_LO
from sim.queueing import response_cells

__all__ = ["PROFILES", "Parts", "Successes", "of_types", "record"]

PROFILES = 4096
"""Above this many rows of pairs, one latency profile per (region, datacenter), mass-weighted."""


class Parts(NamedTuple):
    """What the time of a step's tries is made of: per [request type, row of pairs] and per row of pairs."""

    base: np.ndarray  # [type, row]: the deterministic part
    tau: np.ndarray  # [type, row]: the time left for the stochastic part
    service: np.ndarray  # [type, row]: the mailbox work's mean
    wait_p: np.ndarray  # per row: the stationary wait's chance
    rate: np.ndarray  # per row: its rate
    bound: np.ndarray | None  # per row: where it is cut (None: nowhere)
    det: np.ndarray  # per row: deterministic service
    region: np.ndarray  # per row: the region
    dc: np.ndarray  # per row: the mailbox server's datacenter


class Successes(NamedTuple):
    """The successes of a step, per row, for the latency histogram (:func:`of_types`)."""

    region: np.ndarray
    mass: np.ndarray
    start: np.ndarray  # the deterministic part of their time, and the earlier tries'
    tau: np.ndarray  # the time left for the stochastic part (stationary wait + service)
    service: np.ndarray
    wait_p: np.ndarray
    rate: np.ndarray
    bound: np.ndarray | None
    det: np.ndarray  # deterministic service


def of_types(ok: np.ndarray, elapsed: np.ndarray, parts: Parts, regions: int, dcs: int) -> list[Successes]:
    """The successes of the request types ([type, row of pairs]: ``ok`` of them, ``elapsed`` their mass x the
    time of the earlier tries of their request) that have any, for the latency histogram, in the types' order:
    per row, the types side by side; above :data:`PROFILES` rows of pairs, type by type (:func:`_of_type`).
    """
    P = ok.shape[1]
    has = np.logical_or.reduce(ok, axis=1)  # (``any``, without its Python wrapper)
    if not some(has):
        return []
    if P > PROFILES:
        return [x for i in np.flatnonzero(has).tolist()
                if (x := _of_type(ok[i], elapsed[i], parts, i, regions, dcs)) is not None]
    every = np.count_nonzero(has) == has.size  # (as a rule every type)
    kinds: slice | np.ndarray = slice(None) if every else np.flatnonzero(has)
    ok_mass = ok[kinds]
    extra = np.where(ok_mass > 0, elapsed[kinds] / np.maximum(ok_mass, TINY), 0.0)
    shape = ok_mass.shape

    def flat(x: np.ndarray) -> np.ndarray:
        """Per row of every type with successes, one after the other."""
        return x.ravel() if x.ndim > 1 else np.concatenate((x,) * shape[0])

    return [Successes(flat(parts.region), ok_mass.ravel(), (parts.base[kinds] + extra).ravel(),
                      flat(parts.tau[kinds]), flat(parts.service[kinds]), flat(parts.wait_p), flat(parts.rate),
                      None if parts.bound is None else flat(parts.bound), flat(parts.det))]


def _of_type(ok: np.ndarray, elapsed: np.ndarray, parts: Parts, k: int, regions: int, dcs: int) -> Successes | None:
    """The successes of the ``k``-th request type (``ok`` and ``elapsed`` per row of pairs): per row (or per
    region and datacenter above :data:`PROFILES` rows of pairs, mass-weighted), their mass, the deterministic
    part of their time plus the earlier tries' time, and what the stochastic part is made of.
    """
    R, D = regions, dcs
    if not some(ok):
        return None
    det = parts.det
    extra = np.where(ok > 0, elapsed / np.maximum(ok, TINY), 0.0)
    each = [parts.base[k] + extra, parts.tau[k], parts.service[k], parts.wait_p, parts.rate]
    if parts.bound is not None:
        each.append(parts.bound)
    if ok.size > PROFILES:  # many servers: one latency profile per (region, datacenter), mass-weighted
        group = parts.region * D + parts.dc
        gm = np.bincount(group, weights=ok, minlength=R * D)
        at = np.flatnonzero(gm > 0)
        gsafe = np.maximum(gm[at], TINY)
        if det.any():
            det = np.bincount(group, weights=ok * det, minlength=R * D)[at] > 0.5 * gsafe
        else:
            det = np.zeros(at.size, dtype=bool)
        with np.errstate(invalid="ignore"):  # (a row without successes weighs nothing: 0 x inf, an uncut bound)
            each = [np.bincount(group, weights=np.where(ok > 0, ok * x, 0.0), minlength=R * D)[at] / gsafe
                    for x in each]
        region, ok = at // D, gm[at]
    else:
        region = parts.region
    start, tau, service, wait_p, rate = each[:5]
    return Successes(region, ok, start, tau, service, wait_p, rate, each[5] if parts.bound is not None else None,
                     det)


def record(hist: np.ndarray, successes: list[Successes]) -> None:
    """The step's successes (of every request type) into the latency histogram ``hist`` [region, bin]: at the
    deterministic part of their time plus the stochastic part given that it beat the try's deadline
    (:func:`sim.queueing.response_cells`).
    """
    if not successes:
        return
    if len(successes) == 1:
        one = successes[0]
    else:
        one = Successes._make([None if x[0] is None else np.concatenate(x) for x in zip(*successes, strict=True)])
    values, shares = response_cells(one.tau, one.service, one.wait_p, one.rate, one.det, one.bound)
    _deposit(hist, one.region, one.mass[:, None] * shares, one.start[:, None] + values)


_PER_BIN = BINS / (LOG_HI - LOG_LO)
_STEP = float(CENTRES[1] / CENTRES[0]) - 1.0  # from one bin's centre to the next, relative


def _deposit(hist: np.ndarray, region: np.ndarray, mass: np.ndarray, latency: np.ndarray) -> None:
    """Add ``mass`` successes at ``latency`` (both [row, value]) to ``hist`` [region, bin], each value shared
    between the two bins whose centres surround it in proportion to its distance from them, so that the
    histogram's mean (of the bin centres) is the values' mean.
    """
    v = np.maximum(latency, CENTRES[0])
    i = np.minimum((np.log(v) * _PER_BIN - (LOG_LO * _PER_BIN + 0.5)).astype(np.int64), BINS - 2)
    up = np.minimum((v / CENTRES[i] - 1.0) / _STEP, 1.0) * mass
    flat = (region[:, None] * BINS + i).ravel()
    hist += (np.bincount(flat, weights=(mass - up).ravel(), minlength=hist.size)
             + np.bincount(flat + 1, weights=up.ravel(), minlength=hist.size)).reshape(hist.shape)

