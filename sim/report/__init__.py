"""Reports read results; nothing in the model imports this package.

- :mod:`sim.report.files` — ``summary.json``, ``events.jsonl``, CSV series, written atomically;
- :mod:`sim.report.html` — the self-contained interactive ``report.html`` (plotly).
"""

from sim.report.files import write_report

__all__ = ["write_report"]
