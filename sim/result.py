"""The result of one run: the summary, the event log and the time series, as flat records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sim.cluster import Cluster
from sim.metrics import latency_samples, weighted_percentile
from sim.recorder import COUNTERS, MAIL_COUNTERS, Recorder
from sim.scenario import Scenario
from sim.summary import Manifest, Summary
from sim.trace import Trace
from sim.version import VERSION

__all__ = ["Result", "Headline", "Writer"]

Writer = Callable[["Result", "str | Path | None"], Path]
"""Writes a result's folder and returns it: ``writer(result, directory)`` (see :attr:`Result.writer`)."""


class Headline:
    """What every result says first, read from its typed summary (live runs and stored ones alike).

    ``stats`` is the run's :class:`~sim.summary.Summary`; ``summary`` its JSON form (``summary.json``).
    """

    stats: Summary
    summary: dict[str, Any]

    @property
    def availability(self) -> float | None:
        """Share of user requests that succeeded; ``None`` when there were none (nothing to judge)."""
        return self.stats.availability

    @property
    def slo_met(self) -> bool:
        """Whether the run met every objective of the scenario's SLO."""
        return self.stats.slo.met


@dataclass
class Result(Headline):
    """What one run produced. Every table is a list of flat dicts: ``pandas.DataFrame(result.events)``.

    ``stats`` is the typed summary (:class:`~sim.summary.Summary`, its manifest filled in here): what
    every reader inside cascadesim reads. ``summary`` is the same as plain JSON-ready data
    (``stats.as_dict()``), the body of ``summary.json``.
    """

    scenario: Scenario
    seed: int
    stats: Summary
    trace: Trace
    recorder: Recorder = field(repr=False)
    cluster: Cluster = field(repr=False)
    summary: dict[str, Any] = field(init=False, repr=False)

    writer: ClassVar[Writer | None] = None
    """What :meth:`write_report` calls. The model never imports the report layer: ``sim/__init__.py``
    plugs in :func:`sim.write_report` (which loads :mod:`sim.report` on first use)."""

    def __post_init__(self) -> None:
        from sim.loader import scenario_hash

        manifest = Manifest(
            scenario=self.scenario.name,
            scenario_hash=scenario_hash(self.scenario),
            seed=self.seed,
            engine=self.scenario.engine,
            duration=self.scenario.duration,
            version=VERSION,
        )
        self.stats = self.stats.model_copy(update={"manifest": manifest})
        self.summary = self.stats.as_dict()


    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """The event log: ``id, time, kind, node, cause, fault, detail`` per event."""
        return self.trace.as_dicts()

    @cached_property
    def timeseries(self) -> list[dict[str, Any]]:
        """One row per (window, region): counts, availability, latency percentiles."""
        rec = self.recorder
        lat, win, reg, weight = latency_samples(rec)
        order = np.lexsort((lat, win, reg)) if lat.size else np.zeros(0, np.int64)
        lat, win, reg = lat[order], win[order], reg[order]
        weight = weight[order] if weight is not None else None
        keys = reg.astype(np.int64) * (rec.n + 1) + win
        rows = []
        for r, region in enumerate(self.cluster.region_ids):
            for w in range(rec.n):
                key = r * (rec.n + 1) + w
                lo, hi = np.searchsorted(keys, key), np.searchsorted(keys, key, side="right")
                chunk = lat[lo:hi]
                row: dict[str, Any] = {"time": w * rec.window, "region": region}
                for name in COUNTERS:
                    row[name] = getattr(rec, name)[r][w]
                row["availability"] = row["ok"] / row["requests"] if row["requests"] else None
                row["amplification"] = row["attempts"] / row["requests"] if row["requests"] else None
                if weight is not None:
                    row["latency_p50"] = weighted_percentile(chunk, weight[lo:hi], 50)
                    row["latency_p99"] = weighted_percentile(chunk, weight[lo:hi], 99)
                else:
                    row["latency_p50"] = float(chunk[int(0.50 * (chunk.size - 1))]) if chunk.size else None
                    row["latency_p99"] = float(chunk[int(0.99 * (chunk.size - 1))]) if chunk.size else None
                rows.append(row)
        return rows

    @cached_property
    def datacenter_series(self) -> list[dict[str, Any]]:
        """One row per (window, datacenter): offered attempts/s, capacity/s, servers healthy and up."""
        rec = self.recorder
        rows = []
        for d, dc in enumerate(self.cluster.datacenter_ids):
            for w in range(rec.n):
                rows.append(
                    {
                        "time": w * rec.window,
                        "datacenter": dc,
                        "offered": rec.dc_offered[d][w] / rec.window,
                        "capacity": rec.dc_capacity[d][w],
                        "healthy": rec.dc_healthy[d][w],
                        "up": rec.dc_up[d][w],
                        "servers": len(self.cluster.servers_of_dc[d]),
                    }
                )
        return rows

    @cached_property
    def mail_series(self) -> list[dict[str, Any]]:
        """One row per (window, region receiving mail): arrivals, attempts, deliveries, losses, the senders'
        backlog (at the window's end and its peak) and the delay of the messages delivered in it.
        Empty when the scenario has no mail.
        """
        mail = self.recorder.mail
        if mail is None:
            return []
        delays = np.frombuffer(mail.delays, dtype=np.float64) if len(mail.delays) else np.zeros(0)
        win = np.frombuffer(mail.delay_window, dtype=np.int32) if len(mail.delays) else np.zeros(0, np.int32)
        reg = np.frombuffer(mail.delay_region, dtype=np.int32) if len(mail.delays) else np.zeros(0, np.int32)
        configured = self.scenario.workload.mail.regions if self.scenario.workload.mail else {}
        rows = []
        for r, region in enumerate(self.cluster.region_ids):
            if region not in configured:
                continue
            ends, peaks = mail.backlog_series(r)
            mine, mine_win = delays[reg == r], win[reg == r]
            for w in range(mail.n):
                chunk = mine[mine_win == w]
                row: dict[str, Any] = {"time": w * mail.window, "region": region}
                for name in MAIL_COUNTERS:
                    row[name] = getattr(mail, name)[r][w]
                row["backlog"] = ends[w]
                row["backlog_peak"] = peaks[w]
                row["delay_p50"] = float(np.percentile(chunk, 50)) if chunk.size else None
                row["delay_max"] = float(chunk.max()) if chunk.size else None
                rows.append(row)
        return rows

    @cached_property
    def link_series(self) -> list[dict[str, Any]]:
        """One row per (window, inter-datacenter link): bits/s offered by requests crossing it (lost ones
        too), background bits/s, effective capacity (sampled mid-window; 0 while partitioned),
        utilisation, crossings and crossings lost. Empty when the topology has no links.
        """
        rec = self.recorder
        rows = []
        for link in self.cluster.network.links:
            i = link.index
            for w in range(rec.n):
                offered = rec.link_bits[i][w] / rec.window
                capacity = rec.link_capacity[i][w]
                background = rec.link_background[i][w]
                rows.append(
                    {
                        "time": w * rec.window,
                        "link": link.name,
                        "offered_bps": offered,
                        "background_bps": background,
                        "capacity_bps": capacity,
                        "utilisation": (offered + background) / capacity if capacity > 0 else None,
                        "crossings": rec.link_crossings[i][w],
                        "lost": rec.link_lost[i][w],
                    }
                )
        return rows

    def records(self, table: str = "events") -> list[dict[str, Any]]:
        """A table by name: ``events``, ``timeseries``, ``datacenters``, ``mail`` or ``links``."""
        tables = {"events": "events", "timeseries": "timeseries", "datacenters": "datacenter_series",
                  "mail": "mail_series", "links": "link_series"}
        if table not in tables:
            raise ValueError(f"no table {table!r}; expected one of {', '.join(tables)}")
        return getattr(self, tables[table])

    def write_report(self, directory: str | Path | None = None) -> Path:
        """Write ``summary.json``, ``events.jsonl``, the CSV series and ``report.html``; return the folder.

        The default folder is ``reports/<scenario name>``. The folder is replaced as a whole: a reader
        sees the old report or the new one, never half of each. Only a new or empty folder, or an earlier
        run's output, is written: anything else raises :class:`sim.report.folders.OutputError`.
        Same as ``sim.write_report(result, directory)``.
        """
        writer = Result.writer
        if writer is None:  # pragma: no cover - importing anything of sim plugs it in
            raise RuntimeError("no report writer plugged in (sim/__init__.py sets Result.writer)")
        return writer(self, directory)
