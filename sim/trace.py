"""The event log: flat records of what happened, each naming what caused it.

Every record is ``(id, time, kind, node, cause, fault, detail)``: ``cause`` is the id of the earlier
record that led to this one (``None`` for a root such as an injected fault), and ``fault`` is the id of
the injected fault at the root of that chain, so a cascade can be read back from any record.

>>> log = Trace()
>>> f = log.record(10.0, "fault_start", "dc-a", fault="outage-1")
>>> s = log.record(10.0, "server_down", "mbx-01", cause=f)
>>> log.chain(s)
['server_down mbx-01', 'fault_start dc-a']
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Trace", "Record"]


class Record(NamedTuple):
    """One event: flat, ready for a DataFrame."""

    id: int
    time: float
    kind: str
    node: str
    cause: int | None
    fault: str | None
    detail: str


class Trace:
    """Append-only log of :class:`Record`."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def record(
        self,
        time: float,
        kind: str,
        node: str,
        cause: int | None = None,
        detail: str = "",
        fault: str | None = None,
    ) -> int:
        """Append an event and return its id; ``fault`` defaults to the root fault of ``cause``."""
        if fault is None and cause is not None:
            fault = self.records[cause].fault
        rid = len(self.records)
        self.records.append(Record(rid, float(time), kind, node, cause, fault, detail))
        return rid

    def chain(self, rid: int) -> list[str]:
        """``kind node`` of ``rid`` and each of its causes back to the root."""
        out = []
        cur: int | None = rid
        while cur is not None:
            rec = self.records[cur]
            out.append(f"{rec.kind} {rec.node}")
            cur = rec.cause
        return out

    def as_dicts(self) -> list[dict]:
        """The log as a list of dicts (``pandas.DataFrame(trace.as_dicts())``)."""
        return [r._asdict() for r in self.records]
