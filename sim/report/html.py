"""The interactive report (placeholder until the full report lands)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.result import Result


def render_html(result: Result) -> str:
    """Return the self-contained HTML report."""
    s = result.summary
    return f"<!doctype html><html><body><h1>{html.escape(result.scenario.name)}</h1><p>{s['availability']}</p></body></html>"
