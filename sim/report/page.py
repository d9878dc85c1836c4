r"""A self-contained, offline HTML page of plotly figures: the frame every report is drawn in.

One page = the stylesheet, the body (already escaped HTML), plotly.js once, and each figure as a JSON
block ``<script type="application/json" data-figure="ID">`` drawn into ``<div id="ID">`` by a small
start-up script. plotly.js is embedded gzip-compressed (base64), and unpacked by the browser's own
``DecompressionStream``: 1.9 MB instead of 4.8 MB, so a page with a day of data stays small. A page
whose plotly.js is inlined as plain text (the comparison and sweep reports) is drawn by the same script.

Every name on a page comes from someone's scenario: text is escaped with :func:`html.escape` by the
caller, and JSON inside ``<script>`` has ``<``, ``>`` and ``&`` written as ``\u003c``-style escapes
(:func:`script_json`), so no string can close its block.

Usage, for a new kind of report::

    from sim.report.page import plotly_page, figure_section
    body = header_html + figure_section("Availability", "fig-a", "caption")
    text = plotly_page("my report", body, {"fig-a": {"data": [...], "layout": style.layout(300)}})
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sim.report.style import CSS

__all__ = [
    "plotly_page",
    "figure_blocks",
    "figure_json",
    "script_json",
    "plotly_js_block",
    "plotly_js_gzip",
    "init_js",
    "figure_section",
    "table_section",
    "table",
]


def script_json(text: str) -> str:
    r"""Make JSON safe inside ``<script>``: no ``</script>``, ``<!--`` or line separators can break out.

    ``<``, ``>`` and ``&`` only occur inside JSON strings, where ``\\u003c`` means the same.

    >>> script_json('{"a": "</script>"}')
    '{"a": "\\u003c/script\\u003e"}'
    """
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def figure_json(fig: Any) -> str:
    """A figure (a ``plotly.graph_objects.Figure`` or a plain ``{"data", "layout"}`` dict) as compact JSON."""
    if hasattr(fig, "to_plotly_json"):
        import plotly.io as pio

        return pio.to_json(fig, validate=False, pretty=False, remove_uids=True)
    return json.dumps(_finite(fig), allow_nan=False, separators=(",", ":"), default=_default)


def figure_blocks(figures: Mapping[str, Any], time_axis: Iterable[str] = ()) -> str:
    """The JSON blocks of ``figures`` (id → figure); ids in ``time_axis`` zoom and pan together."""
    shared = set(time_axis)
    return "\n".join(
        f'<script type="application/json" id="data-{html.escape(fid)}" data-figure="{html.escape(fid)}"'
        + (' data-time-axis="1"' if fid in shared else "")
        + f">{script_json(figure_json(fig))}</script>"
        for fid, fig in figures.items()
    )


@functools.cache
def plotly_js_gzip() -> str:
    """plotly.js, gzip-compressed (reproducibly: no timestamp), as base64 text."""
    from plotly.offline import get_plotlyjs

    packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def plotly_js_block() -> str:
    """The ``<script>`` block holding compressed plotly.js; :func:`init_js` unpacks and runs it."""
    return f'<script type="application/gzip+base64" id="plotly-js-gz">{plotly_js_gzip()}</script>'


def init_js() -> str:
    """The start-up script: unpack plotly.js if needed, draw every figure block, link the time axes.

    When every figure is drawn, ``<html data-figures="ready">`` is set (the browser tests wait for it);
    if plotly.js cannot be unpacked, a message says why instead of an empty page.
    """
    return _INIT_JS


def figure_section(title: str, fid: str, caption: str, *, caption_html: bool = False) -> str:
    """A titled section with a caption and the ``<div>`` a figure is drawn into."""
    cap = caption if caption_html else html.escape(caption)
    return (f'<section><h2>{html.escape(title)}</h2><p class="caption">{cap}</p>'
            f'<div id="{html.escape(fid)}" class="fig"></div></section>')


def table_section(title: str, caption: str, body: str, sid: str | None = None) -> str:
    """A titled section with a caption and ``body`` (HTML, usually a :func:`table`)."""
    ident = f' id="{html.escape(sid)}"' if sid else ""
    return (f'<section{ident}><h2>{html.escape(title)}</h2><p class="caption">{html.escape(caption)}</p>'
            f"{body}</section>")


def table(tid: str, headers: Sequence[str], rows: list[str]) -> str:
    """A scrolling table; ``headers`` are escaped, ``rows`` are ``<tr>`` HTML already escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return (f'<div class="scroll"><table id="{html.escape(tid)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def plotly_page(
    title: str,
    body: str,
    figures: Mapping[str, Any],
    *,
    css: str = "",
    time_axis: Iterable[str] = (),
    footer: str = "",
) -> str:
    """The whole page: ``body`` (escaped HTML) and ``figures`` drawn into the ``<div>`` of the same id."""
    foot = f"<footer>{footer}</footer>\n" if footer else ""
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}{css}</style>\n</head>\n<body>\n<main>\n"
        '<noscript><p class="noscript">The figures need JavaScript; the tables below do not.</p></noscript>\n'
        f"{body}\n{foot}</main>\n"
        f"{plotly_js_block()}\n"
        f"{figure_blocks(figures, time_axis)}\n"
        f'<script type="text/javascript">{init_js()}</script>\n'
        "</body>\n</html>\n"
    )


_INIT_JS = r"""
(function () {
  "use strict";
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"]};
  function fail(message) {
    document.documentElement.setAttribute("data-figures", "failed");
    var box = document.createElement("p");
    box.className = "load-error";
    box.textContent = "The figures could not be drawn: " + message + ". The tables still show every number.";
    var main = document.querySelector("main") || document.body;
    main.insertBefore(box, main.firstChild);
  }
  function draw() {
    var blocks = document.querySelectorAll('script[type="application/json"][data-figure]');
    var drawn = [];
    for (var i = 0; i < blocks.length; i++) {
      var id = blocks[i].getAttribute("data-figure");
      var el = document.getElementById(id);
      if (!el) continue;
      var spec = JSON.parse(blocks[i].textContent);
      if (blocks[i].hasAttribute("data-time-axis")) el.setAttribute("data-time-axis", "1");
      drawn.push(Plotly.newPlot(el, spec.data, spec.layout, config));
    }
    return Promise.all(drawn).then(link);
  }
  function link() {
    // One time axis: zooming or panning one time-series figure moves the others.
    var timeFigs = Array.prototype.slice.call(document.querySelectorAll('div[data-time-axis="1"]'))
      .filter(function (el) { return typeof el.on === "function"; });
    var syncing = false;
    timeFigs.forEach(function (el) {
      el.on("plotly_relayout", function (ev) {
        if (syncing) return;
        var r0, r1, reset = false;
        Object.keys(ev).forEach(function (k) {
          var m = k.match(/^xaxis\d*\.range\[([01])\]$/);
          if (m) { if (m[1] === "0") r0 = ev[k]; else r1 = ev[k]; }
          else if (/^xaxis\d*\.range$/.test(k)) { r0 = ev[k][0]; r1 = ev[k][1]; }
          else if (/^xaxis\d*\.autorange$/.test(k)) reset = true;
        });
        if (r0 === undefined && !reset) return;
        var update = reset ? {"xaxis.autorange": true} : {"xaxis.range": [r0, r1]};
        syncing = true;
        Promise.all(timeFigs.filter(function (o) { return o !== el; })
          .map(function (o) { return Plotly.relayout(o, update); }))
          .then(function () { syncing = false; }, function () { syncing = false; });
      });
    });
    // A point whose customdata is "#anchor" (a cascade event) jumps to that row of the timeline.
    document.querySelectorAll("div.js-plotly-plot").forEach(function (el) {
      if (typeof el.on !== "function") return;
      el.on("plotly_click", function (ev) {
        var pt = ev && ev.points && ev.points[0];
        var target = pt && pt.customdata;
        if (Array.isArray(target)) target = target[0];
        if (typeof target === "string" && target.charAt(0) === "#" && document.getElementById(target.slice(1))) {
          location.hash = target;
        }
      });
    });
    document.documentElement.setAttribute("data-figures", "ready");
  }
  // Filter the incident timeline.
  var filter = document.getElementById("event-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      var rows = document.querySelectorAll("#events tbody tr");
      for (var i = 0; i < rows.length; i++) {
        rows[i].style.display = rows[i].textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      }
    });
  }
  function start() {
    try { draw().catch(function (e) { fail(String(e)); }); } catch (e) { fail(String(e)); }
  }
  if (window.Plotly) { start(); return; }
  var packed = document.getElementById("plotly-js-gz");
  if (!packed) { fail("plotly.js is missing from the page"); return; }
  if (typeof DecompressionStream === "undefined") {
    fail("this browser cannot unpack the embedded plotly.js (DecompressionStream); use a current browser");
    return;
  }
  var bin = atob(packed.textContent.trim());
  var bytes = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text()
    .then(function (code) {
      var s = document.createElement("script");
      s.textContent = code;
      document.head.appendChild(s);
      if (!window.Plotly) throw new Error("plotly.js did not load");
      start();
    })
    .catch(function (e) { fail(String(e)); });
})();
"""
