"""Reports read results; nothing in the model imports this package.

- :mod:`sim.report.files` — ``summary.json``, ``events.jsonl``, CSV series and the reports, written
  atomically; ``rebuild_report`` renders the reports again from a stored folder;
- :mod:`sim.report.stored` — a run's folder read back (:func:`load_results`);
- :mod:`sim.report.story` — the outage as a story: headline numbers and postmortem milestones;
- :mod:`sim.report.html` — the self-contained interactive ``report.html`` (plotly);
- :mod:`sim.report.markdown` — ``report.md`` for tickets and postmortems;
- :mod:`sim.report.png` — static images through kaleido (optional);
- :mod:`sim.report.page`, :mod:`sim.report.style` — the page frame and visual language every HTML
  report shares (the comparison and sweep reports too).
"""

from sim.report.files import rebuild_report, write_report
from sim.report.stored import ResultsError, StoredResult, load_results

__all__ = ["write_report", "rebuild_report", "load_results", "StoredResult", "ResultsError"]
