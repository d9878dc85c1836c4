"""The reports' visual language: fonts, colours, CSS and number formats, shared by every HTML page.

The run report (:mod:`sim.report.html`) and the comparison and sweep reports use these, so a state,
a fault or a region looks the same on every page. Nothing here imports plotly.

>>> pct(0.998571)
'99.857%'
>>> span(90), span(150), span(7200)
('90 s', '2.5 min', '2 h')
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
    "layout",
    "pct",
    "objective",
    "latency",
    "span",
    "minutes",
    "clock",
    "bandwidth",
    "round_sig",
]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
SERIES_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
                 "#e15759", "#bab0ac")
FAULT_COLORS = ("#e15759", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#59a14f")
DOWN, EJECTED, OVERLOADED, OK = "#d62728", "#f28e2b", "#edc948", "#9fb3c8"
MUTED = "#57606a"

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


# ------------------------------------------------------------------------------------------ numbers


def pct(a: float | None) -> str:
    """Availability as a percentage with enough decimals to show its nines: ``99.857%``."""
    if a is None:
        return "—"
    if a >= 1.0:
        return "100%"
    decimals = max(1, min(6, math.ceil(-math.log10(max(1.0 - a, 1e-12)))))
    text = f"{a * 100:.{decimals}f}"
    while text.startswith("100") and decimals < 9:  # never round a failure up to 100%
        decimals += 1
        text = f"{a * 100:.{decimals}f}"
    return text + "%"


def objective(a: float) -> str:
    """An availability objective: ``99.9%``."""
    return f"{a * 100:.6g}%"


def latency(seconds: float | None) -> str:
    """A latency: ``44 ms``, ``2.5 s``."""
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def span(seconds: float | None) -> str:
    """Format a duration in the unit that reads best: ``45 s``, ``2.5 min``, ``3 h``."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def minutes(seconds: float | None) -> str:
    """Minutes since the start with two decimals: ``30.00``."""
    return "—" if seconds is None else f"{seconds / 60:,.2f}"


def clock(seconds: float) -> str:
    """Time since the start as ``h:mm:ss`` (tenths when not whole): ``0:30:00``."""
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    frac = seconds - whole
    return f"{h}:{m:02d}:{sec:02d}" + (f".{int(frac * 10)}" if frac >= 0.05 else "")


def bandwidth(bits: float | None) -> str:
    """Bits per second in the unit that reads best: ``40 Gbit/s``."""
    if not bits:
        return "—"
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.3g} {unit}"
    return f"{bits:.3g} bit/s"


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
