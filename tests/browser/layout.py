"""What a report looks like once drawn, measured in the browser: does the page fit its width, does every
table fit its box, is every plot tall enough to read, and do the names of the fault windows stay clear of
each other and of every other label?

:func:`measure` runs :data:`MEASURE` in a page whose figures are drawn and returns the numbers;
:func:`problems` says in words what is wrong with them (nothing: an empty list). The browser tests and
``docs/screenshots/make.py`` use both.
"""

from __future__ import annotations

from typing import Any

MIN_PLOT_PX = 200  # the least height of a time-series plot area (the run report asks for 240)

MEASURE = r"""() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {x0: r.left, x1: r.right, y0: r.top, y1: r.bottom};
  };
  const meets = (a, b) => a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5;
  const out = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
               tables: [], figures: []};
  document.querySelectorAll('table').forEach((t) => {
    out.tables.push({id: t.id, width: t.scrollWidth, box: t.parentElement.clientWidth});
  });
  document.querySelectorAll('div.js-plotly-plot').forEach((gd) => {
    const layout = gd._fullLayout || {};
    const named = (list, i) => String(((list || [])[i] || {}).name || '');
    const labels = [];
    // Fault names: annotations named "fault label ..." (the lanes), or labels of shapes named "fault ..."
    gd.querySelectorAll('g.annotation').forEach((g) => {
      const i = Number(g.getAttribute('data-index'));
      const text = g.querySelector('text');
      if (!text || !text.textContent) return;
      labels.push({text: text.textContent, fault: named(layout.annotations, i).startsWith('fault'), ...box(text)});
    });
    gd.querySelectorAll('g.shape-label').forEach((g) => {
      const i = Number(g.getAttribute('data-index'));
      const text = g.querySelector('text');
      if (!text || !text.textContent) return;
      labels.push({text: text.textContent, fault: named(layout.shapes, i).startsWith('fault'), ...box(text)});
    });
    gd.querySelectorAll('g.legend text.legendtext').forEach((t) => {
      if (t.textContent) labels.push({text: t.textContent, fault: false, ...box(t)});
    });
    const overlaps = [];
    labels.forEach((a, i) => labels.forEach((b, j) => {
      if (j > i && (a.fault || b.fault) && meets(a, b)) overlaps.push([a.text, b.text]);
    }));
    const size = layout._size || {};
    const y = (layout.yaxis || {}).domain || [0, 1];
    out.figures.push({
      id: gd.id,
      // a single time-series plot (not the panels of the load figure, not the region × time heatmap)
      time: gd.getAttribute('data-time-axis') === '1' && !layout.xaxis2
        && !(gd.data || []).some((t) => t.type === 'heatmap'),
      plot: size.h ? size.h * (y[1] - y[0]) : 0,
      faultLabels: labels.filter((l) => l.fault).length,
      overlaps: overlaps,
    });
  });
  return out;
}"""


def measure(page: Any) -> dict[str, Any]:
    """The numbers of a drawn page (a Playwright page whose ``data-figures`` is ``ready``)."""
    return page.evaluate(MEASURE)


def problems(m: dict[str, Any]) -> list[str]:
    """What :func:`measure` found wrong, one sentence each."""
    found = []
    if m["scrollWidth"] > m["innerWidth"]:
        found.append(f"the page is {m['scrollWidth']} px wide in a {m['innerWidth']} px window")
    for t in m["tables"]:
        if t["width"] > t["box"] + 1:
            found.append(f"table {t['id']} is {t['width']} px wide in a {t['box']} px box")
    for f in m["figures"]:
        if f["overlaps"]:
            found.append(f"{f['id']}: fault labels overlap: {f['overlaps']}")
        if f["time"] and f["plot"] < MIN_PLOT_PX:
            found.append(f"{f['id']}: a plot area {f['plot']:.0f} px tall (at least {MIN_PLOT_PX})")
    return found


def summary(m: dict[str, Any]) -> str:
    """One line: ``scrollWidth 1280 ≤ innerWidth 1280; 4 fault labels, 0 overlaps; lowest plot 270 px``."""
    labels = sum(f["faultLabels"] for f in m["figures"])
    overlaps = sum(len(f["overlaps"]) for f in m["figures"])
    plots = [f["plot"] for f in m["figures"] if f["time"]]
    widest = max((t["width"] - t["box"] for t in m["tables"]), default=0)
    lowest = f"; lowest time plot {min(plots):.0f} px" if plots else ""
    return (f"scrollWidth {m['scrollWidth']} vs innerWidth {m['innerWidth']}; tables over their box by at most "
            f"{max(0, widest)} px; {labels} fault labels, {overlaps} overlaps{lowest}")
