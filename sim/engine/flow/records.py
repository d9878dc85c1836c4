"""The flow engine's records: counters as floats, the latency histogram, and how both reach the Recorder.

Counters are floats per [region, window] during the run and are rounded to whole requests per window at
the end (cumulative rounding keeps the totals: :func:`round_rows`); the failures per request type are
shared out so that they add up to the rounded failures (:func:`share_out`). Latency goes into a per-region
histogram (:data:`BINS` log bins, about 7% wide, 0.1 ms–1000 s) written out per window as weighted
samples (``Recorder.latency_weight``), so percentiles are weighted.
"""

from __future__ import annotations

import math

import numpy as np

from sim.recorder import COUNTERS, Recorder

__all__ = ["BINS", "CENTRES", "Records", "bin_of", "round_rows", "share_out"]

BINS = 240  # latency histogram: log-spaced bins from 0.1 ms to 1000 s (about 7% wide)
LOG_LO, LOG_HI = math.log(1e-4), math.log(1e3)
CENTRES = np.exp(LOG_LO + (np.arange(BINS) + 0.5) * (LOG_HI - LOG_LO) / BINS)
"""The latency at the middle of each bin."""

def bin_of(latency: np.ndarray) -> np.ndarray:
    """The histogram bin of each latency (clipped to the first and last bins)."""
    return np.minimum(np.maximum(((np.log(latency) - LOG_LO) / (LOG_HI - LOG_LO) * BINS).astype(np.int64), 0), BINS - 1)


class Records:
    """The engine's tables while it runs, as floats, shared with the :class:`~sim.recorder.Recorder`.

    Per [region, window]: every counter of :data:`~sim.recorder.COUNTERS`; per [datacenter, window]: the
    tries offered; per [link, window]: crossings, losses and bits. The latency histogram [region, bin]
    holds the successes of the window under way (``window``) until :meth:`flush`. ``wasted``, ``queued``,
    ``queue_time`` and ``failed_by_type`` (the requests given up, per request type) are run totals.
    """

    def __init__(self, recorder: Recorder, n_regions: int, n_dcs: int, links: int):
        self.rec = recorder
        self.n_regions = n_regions
        width = recorder.n + 1
        self.counts = {name: np.zeros((n_regions, width)) for name in COUNTERS}
        for name in COUNTERS:
            setattr(recorder, name, self.counts[name])
        self.dc_offered = np.zeros((n_dcs, width))
        recorder.dc_offered = self.dc_offered
        self.link_crossings = np.zeros((links, width))
        self.link_lost = np.zeros((links, width))
        self.link_bits = np.zeros((links, width))
        recorder.link_crossings, recorder.link_lost, recorder.link_bits = (
            self.link_crossings, self.link_lost, self.link_bits)
        self.failed_by_type = np.zeros(len(recorder.failed_by_type))  # written to the recorder at the end
        self.hist = np.zeros((n_regions, BINS))
        self.window = 0  # the window the histogram's samples belong to
        self.wasted = self.queued = self.queue_time = 0.0
        recorder.flush = self.flush

    def at_window(self, w: int) -> None:
        """A step in window ``w`` begins: the histogram of an earlier window is written out first."""
        if w != self.window:
            self.flush()  # latency samples belong to the window they were taken in
            self.window = w

    def flush(self) -> None:
        """Write the latency histogram out as weighted samples (one per non-empty bin and region)."""
        rec = self.rec
        w = self.window
        hist = self.hist
        if hist.any():
            region, nz = np.nonzero(hist > 1e-9)  # (region by region, each in the order of its bins)
            if nz.size:  # (the recorder's arrays of doubles and C ints take numpy's bytes as they are)
                rec.latency.frombytes(CENTRES[nz].tobytes())
                rec.latency_window.frombytes(np.full(nz.size, w, dtype=np.intc).tobytes())
                rec.latency_region.frombytes(region.astype(np.intc).tobytes())
                rec.latency_weight.frombytes(hist[region, nz].tobytes())
            hist[:] = 0.0

    def finish(self) -> None:
        """At the end of the run: write out latency samples, round the counters to whole requests."""
        self.flush()
        rec = self.rec
        for name in COUNTERS:
            setattr(rec, name, round_rows(self.counts[name]))
        # A request ends ok or failed (the fluid tables add up to 1e-11): round the two together, so that no
        # window has more successes than requests, and both add up to its requests.
        requests, failed = np.array(rec.requests, dtype=np.int64), np.array(rec.failed, dtype=np.int64)
        failed = np.clip(failed, 0, requests)
        rec.failed, rec.ok = failed.tolist(), (requests - failed).tolist()
        rec.dc_offered = round_rows(self.dc_offered)
        rec.link_crossings = round_rows(self.link_crossings)
        rec.link_lost = round_rows(self.link_lost)
        rec.link_bits = self.link_bits.tolist()
        rec.failed_by_type = share_out(self.failed_by_type, int(np.sum(rec.failed)))
        rec.wasted = int(round(self.wasted))
        rec.queued = int(round(self.queued))
        rec.queue_time = float(self.queue_time)


def round_rows(table: np.ndarray) -> list[list[int]]:
    """Round each row to whole counts keeping its running total (largest-remainder by cumulative sums)."""
    cum = np.rint(np.cumsum(table, axis=1)).astype(np.int64)
    out = np.diff(cum, axis=1, prepend=0)
    return np.maximum(out, 0).tolist()


def share_out(parts: np.ndarray, total: int) -> list[int]:
    """Whole counts in the proportions of ``parts`` that add up to ``total`` (largest remainders; ties to
    the first). With nothing in ``parts`` the total goes to the first: rounding alone made it.

    >>> share_out(np.array([2.4, 7.6]), 10), share_out(np.array([0.5, 0.5, 1.0]), 3), share_out(np.zeros(2), 1)
    ([2, 8], [1, 1, 1], [1, 0])
    """
    weight = float(parts.sum())
    if total <= 0 or parts.size == 0:
        return [0] * parts.size
    exact = parts / weight * total if weight > 0 else np.eye(1, parts.size).ravel() * total
    out = np.floor(exact).astype(np.int64)
    left = total - int(out.sum())
    if left > 0:
        out[np.argsort(-(exact - out), kind="stable")[:left]] += 1
    return out.tolist()
