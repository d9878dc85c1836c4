"""The replications, comparison, sweep and capacity reports: self-contained HTML pages with every number's
interval (the capacity report's numbers come from the scenario alone: they have none).

Built from the experiment's rows and intervals only, in the frame every report shares
(:mod:`sim.report.page`: plotly.js once, each figure a JSON block, names escaped) and its visual language
(:mod:`sim.report.style`: green is good on every colour scale; :func:`colorscale` decides which way a
metric's scale runs, from the metric). Each page opens with its finding, one paragraph of what the numbers
support (:mod:`sim.experiments.findings`). Numbers go through the formatters of :mod:`sim.units` (via
:mod:`sim.experiments.text` for metrics); metrics and parameters are named in words with their units
(:func:`~sim.experiments.report.common.metric_axis`, :class:`~sim.experiments.findings.Axis`). Figures are
written as plotly JSON (plain dicts), so this package does not import plotly. Every name and value from the
files goes into a figure through :func:`~sim.experiments.report.common.plain`.

One module per report, each with its ``render_*`` (the page) and ``write_*`` (the folder, all or nothing):

- :mod:`~sim.experiments.report.replications` — ``run --replications``;
- :mod:`~sim.experiments.report.comparison` — ``compare``;
- :mod:`~sim.experiments.report.sweep` — ``sweep``;
- :mod:`~sim.experiments.report.capacity` — ``capacity --out`` (and the comparison's capacity section);
- :mod:`~sim.experiments.report.common` — what they share: header, finding, figure layout and axes, the
  intervals' methods, the folder written.
"""

from sim.experiments.findings import Axis, parameter_unit, parameter_words
from sim.experiments.report.capacity import capacity_data, capacity_files, render_capacity, write_capacity_report
from sim.experiments.report.common import colorscale
from sim.experiments.report.comparison import render_comparison, write_comparison_report
from sim.experiments.report.replications import (
    render_replications,
    replications_data,
    replications_files,
    write_replications_report,
)
from sim.experiments.report.sweep import render_sweep, write_sweep_report

__all__ = [
    "render_replications",
    "render_comparison",
    "render_sweep",
    "replications_files",
    "replications_data",
    "write_replications_report",
    "write_comparison_report",
    "write_sweep_report",
    "render_capacity",
    "capacity_data",
    "capacity_files",
    "write_capacity_report",
    "colorscale",
    "parameter_unit",
    "parameter_words",
    "Axis",
]
