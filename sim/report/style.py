"""The reports' visual language: fonts, colours, colour scales and CSS, shared by every HTML page.

The run report (:mod:`sim.report.html`) and the comparison and sweep reports use these, so a state,
a fault or a region looks the same on every page, and good is green on every colour scale. Numbers are
written by the formatters of :mod:`sim.units` (one per quantity, shared with the terminal and
Markdown). Nothing here imports plotly.
"""

from __future__ import annotations

import math

from sim.events import badge_css

__all__ = [
    "FONT",
    "SERIES_COLORS",
    "FAULT_COLORS",
    "STATE_COLORS",
    "STATES",
    "DOWN",
    "EJECTED",
    "OVERLOADED",
    "OK",
    "MUTED",
    "CSS",
    "GOOD",
    "BAD",
    "MISSING",
    "layout",
    "good_bad_scale",
    "scale_colour",
    "round_sig",
]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
SERIES_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
                 "#e15759", "#bab0ac")
# Faults in an order where neighbours differ in hue (red, teal, yellow, purple...), so overlapping fault
# windows stay apart; each also has its own row in a figure's fault lanes.
FAULT_COLORS = ("#e15759", "#4fa3a5", "#e0b21b", "#9467bd", "#f28e2b", "#8c564b", "#e377c2", "#59a14f")
DOWN, EJECTED, OVERLOADED, OK = "#d62728", "#f28e2b", "#edc948", "#9fb3c8"
MUTED = "#57606a"
# Good and bad, on every colour scale (good_bad_scale): green good, red bad, darker is more so.
GOOD, FAIR, MIDDLE, BAD, WORST = "#1a7f37", "#8fd19e", "#fff2b2", "#e8685a", "#67001f"
GOOD_EDGE, BAD_EDGE = "#d9f0d3", "#fddbc7"  # either side of an objective
NEUTRAL_LOW, NEUTRAL_HIGH = "#f1f5fb", "#2f5d8c"
MISSING = "#8c959f"  # a cell with runs but no value (never recovered): grey, named in a legend

# A node's state in the topology and the cascade graph, worst first.
STATES = ("down", "ejected", "overloaded", "healthy")
STATE_COLORS = {"down": DOWN, "ejected": EJECTED, "overloaded": OVERLOADED, "healthy": OK}


def layout(height: int = 360, **extra: object) -> dict:
    """A plotly layout (plain dict) in the reports' style; ``extra`` keys are merged one level deep.

    >>> layout(200, yaxis={"title": {"text": "ms"}})["yaxis"]["title"]
    {'text': 'ms'}
    """
    out: dict = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 36, "b": 44},
        "font": {"family": FONT, "size": 12, "color": "#24292f"},
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
                   "font": {"size": 11}},
        "xaxis": {"zeroline": False, "automargin": True},
        "yaxis": {"zeroline": False, "automargin": True},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------------ colour scales


def good_bad_scale(better: str | None, cut: float | None = None) -> list[list[float | str]]:
    """A plotly colorscale (stops from 0 to 1) on which good looks good: green at the good end, red at
    the bad end, pale yellow between. ``better`` says which end of the values is good (``"higher"`` or
    ``"lower"``); ``None`` (neither) gives a neutral blue scale. ``cut`` (a position in [0, 1]) makes the
    scale two-sided: every value on the good side of the cut green (an objective met, a limit kept), every
    value on the other side red, darker the further away.

    Every HTML report takes its scales from here, so a good cell is green on every page.

    >>> good_bad_scale("higher")[-1], good_bad_scale("lower")[0]
    ([1.0, '#1a7f37'], [0.0, '#1a7f37'])
    >>> good_bad_scale("lower", cut=0.75)[:3]  # up to 75% green, red beyond
    [[0.0, '#1a7f37'], [0.75, '#d9f0d3'], [0.75, '#fddbc7']]
    """
    if better is None:
        return [[0.0, NEUTRAL_LOW], [1.0, NEUTRAL_HIGH]]
    if cut is not None and better == "lower":
        return [[1.0 - float(x), c] for x, c in reversed(good_bad_scale("higher", 1.0 - cut))]
    if cut is not None:
        return [[0.0, WORST], [cut * 0.5, BAD], [cut, BAD_EDGE], [cut, GOOD_EDGE], [1.0, GOOD]]
    stops = [(0.0, WORST), (0.25, BAD), (0.5, MIDDLE), (0.75, FAIR), (1.0, GOOD)]
    if better == "lower":
        stops = [(1.0 - x, c) for x, c in reversed(stops)]
    return [[x, c] for x, c in stops]


def scale_colour(scale: list[list[float | str]], at: float) -> str:
    """The colour of ``scale`` at ``at`` in [0, 1] (the nearest stop at or below it; for tests and legends)."""
    colour = str(scale[0][1])
    for x, c in scale:
        if float(x) <= at:
            colour = str(c)
    return colour


def round_sig(values: list[float | None], digits: int = 5) -> list[float | None]:
    """Round to ``digits`` significant digits (keeps the page small; the CSV files keep every digit).

    >>> round_sig([123.456789, None, 0.000123456], 3)
    [123.0, None, 0.000123]
    """
    out: list[float | None] = []
    for v in values:
        if v is None or not math.isfinite(v) or v == 0:
            out.append(None if v is None or not math.isfinite(v) else 0.0)
        else:
            out.append(round(float(v), digits - 1 - int(math.floor(math.log10(abs(v))))))
    return out


CSS = (
    """
:root { --fg: #24292f; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; --good: #1a7f37; --bad: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header .description { margin: 6px 0; max-width: 80ch; white-space: pre-line; }
header .meta, .muted { color: var(--muted); }
header .meta { font-size: 12px; margin: 4px 0 0; }
h2 { font-size: 18px; margin: 32px 0 4px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.caption { color: var(--muted); margin: 4px 0 8px; font-size: 13px; max-width: 110ch; }
.headline { margin-top: 20px; }
.verdict { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: baseline; padding: 12px 16px;
  border-radius: 8px; border: 1px solid; }
.verdict strong { font-size: 18px; }
.verdict.met { background: #dafbe1; border-color: #8fd19e; } .verdict.met strong { color: var(--good); }
.verdict.breached { background: #ffebe9; border-color: #ff9b93; }
.verdict.breached strong { color: var(--bad); }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px;
  margin-top: 10px; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 7px 12px; background: var(--bg); }
.kpi .label { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.kpi .value { font-size: 20px; font-weight: 650; line-height: 1.2; font-variant-numeric: tabular-nums;
  overflow-wrap: anywhere; }
.kpi .sub { font-size: 11.5px; line-height: 1.35; color: var(--muted); }
#story td { padding: 3px 10px; }
#story .scroll { max-height: none; }
.kpi.good .value { color: var(--good); } .kpi.bad .value { color: var(--bad); }
.fig { width: 100%; min-height: 200px; }
.scroll { overflow: auto; max-height: 640px; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { position: sticky; top: 0; background: var(--bg); font-weight: 600; white-space: nowrap; }
td.num, .num { font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.worst td { background: #fff8c5; }
tr:target td { background: #ddf4ff; }
.clock { display: block; color: var(--muted); font-size: 11px; }
.kind { display: inline-block; padding: 0 7px; border-radius: 10px; background: #eaeef2;
  white-space: nowrap; }
.count { font-weight: 600; color: var(--muted); }
td .sub { display: block; color: var(--muted); font-size: 11.5px; }
details.list summary { cursor: pointer; color: #0969da; white-space: nowrap; }
details.list p { margin: 4px 0 0; max-width: 60ch; overflow-wrap: anywhere; font-size: 12px; }
"""
    + badge_css()
    + """#event-filter { margin: 0 0 8px; padding: 6px 10px; width: min(420px, 100%); border: 1px solid var(--line);
  border-radius: 6px; font: inherit; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
.noscript, .load-error { padding: 10px 14px; border: 1px solid #ff9b93; background: #ffebe9; border-radius: 6px; }
"""
)
"""The pages' stylesheet (no fonts or images fetched: the system's fonts only)."""
