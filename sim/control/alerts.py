"""Metric alerts: the :class:`Monitor` judges a metric of the run's counters per region and interval."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import numpy as np
import simpy

from sim.cluster import Cluster
from sim.detect import Detector, EwmaBand, ThresholdRule
from sim.metrics import weighted_percentile
from sim.recorder import Recorder

if TYPE_CHECKING:
    from sim.faults import Detection

__all__ = ["Monitor"]


class Monitor:
    """Metric alerts: one value per region and check interval, judged by a detector (:mod:`sim.detect`).

    It reads only the :class:`~sim.recorder.Recorder`'s per-(region, window) counters and latency
    records, which every engine fills, so detection works however traffic moves. Metrics:

    - ``error_rate``: the share of client attempts that failed (an error or a timeout) in the interval;
    - ``latency``: the 99th percentile of the user requests that completed in the interval.

    A region with fewer than :attr:`MIN_SAMPLES` attempts (or completions) in an interval gives no value.
    """

    MIN_SAMPLES = 20

    def __init__(self, env: simpy.Environment, cluster: Cluster, recorder: Recorder):
        self.env, self.cluster, self.recorder = env, cluster, recorder

    def watch(self, detection: Detection, start: float, on_alert: Callable[[int, str], None]) -> None:
        """Evaluate ``detection.metric`` every ``detection.check_interval`` from now on.

        Values up to ``start`` (when the change under watch begins) are the baseline. The first later
        value the detector fires on calls ``on_alert(region, detail)``, once; then the watch ends.
        """
        self.env.process(self._watch(detection, start, on_alert))

    def _watch(
        self, detection: Detection, start: float, on_alert: Callable[[int, str], None]
    ) -> Generator[simpy.Event, None, None]:
        regions = self.cluster.region_ids
        read = self._error_rates() if detection.metric == "error_rate" else self._latencies()
        history: list[list[float]] = [[] for _ in regions]
        detectors: list[Detector] | None = None
        while True:
            yield self.env.timeout(detection.check_interval)
            values = next(read)
            if self.env.now <= start + 1e-9:
                for r, value in enumerate(values):
                    if value is not None:
                        history[r].append(value)
                continue
            if detectors is None:
                detectors = [_detector(detection, h) for h in history]
            for r, value in enumerate(values):
                if value is not None and detectors[r].observe(value):
                    d, show = detectors[r], _SHOW[detection.metric]
                    metric = detection.metric.replace("_", " ")
                    on_alert(r, f"{detection.rule} rule on {metric} in {regions[r]}: {show(value)} against a "
                                f"baseline of {show(d.baseline)} (limit {show(d.limit)})")
                    return

    def _error_rates(self) -> Generator[list[float | None], None, None]:
        """Per call: each region's failed share of the attempts since the previous call."""
        rec, n = self.recorder, len(self.cluster.region_ids)
        first = 0  # window of the previous call; counters of earlier windows no longer change
        attempts0, failed0 = [0] * n, [0] * n  # what that window held then
        while True:
            w = rec.window_of(self.env.now)
            out: list[float | None] = []
            for r in range(n):
                attempts = sum(rec.attempts[r][first:w + 1]) - attempts0[r]
                failed = sum(rec.errors[r][first:w + 1]) + sum(rec.timeouts[r][first:w + 1]) - failed0[r]
                attempts0[r], failed0[r] = rec.attempts[r][w], rec.errors[r][w] + rec.timeouts[r][w]
                out.append(failed / attempts if attempts >= self.MIN_SAMPLES else None)
            first = w
            yield out

    def _latencies(self) -> Generator[list[float | None], None, None]:
        """Per call: each region's p99 latency of the requests completed since the previous call."""
        rec, n = self.recorder, len(self.cluster.region_ids)
        seen = 0
        while True:
            rec.flush()  # an engine that batches its latency samples writes them out now
            end = len(rec.latency)
            latency = np.array(rec.latency[seen:end], dtype=float)  # a copy: the records keep growing
            region = np.array(rec.latency_region[seen:end], dtype=int)
            weight = np.array(rec.latency_weight[seen:end], dtype=float) if len(rec.latency_weight) else None
            seen = end
            out: list[float | None] = []
            for r in range(n):
                mine = region == r
                if weight is None:
                    values = latency[mine]
                    out.append(float(np.percentile(values, 99)) if values.size >= self.MIN_SAMPLES else None)
                else:
                    count = float(weight[mine].sum())
                    out.append(weighted_percentile(latency[mine], weight[mine], 99)
                               if count >= self.MIN_SAMPLES else None)
            yield out


_SHOW: dict[str, Callable[[float], str]] = {
    "error_rate": lambda v: f"{v * 100:.2f}%",
    "latency": lambda v: f"{v * 1000:.0f}ms",
}


def _detector(detection: Detection, history: list[float]) -> Detector:
    if detection.rule == "threshold":
        return ThresholdRule(detection.rise, history)
    return EwmaBand(detection.alpha, detection.k, detection.rise, history)
