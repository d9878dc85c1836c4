"""Names and values from the files reach the comparison and sweep reports' figures as text: plotly draws
``<a href>``, ``<b>`` and ``<br>`` in trace names, ticks, legends, titles and hover text, so every such
string must arrive escaped (``&lt;b&gt;``, which plotly shows as the characters ``<b>``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.experiments import Comparison, InProcess, SweepResult, compare, load_sweep, run_sweep
from sim.experiments.report import render_comparison, render_sweep
from tests.conftest import BASE, merge, scenario_from
from tests.test_experiments_compare import CRASHES, TWO

LINK = '<a href="javascript:alert(1)">x</a>'
BOLD = "<b>bold</b>"
BREAK = "one<br>two"
HOSTILE = (LINK, BOLD, BREAK)
# The markup the reports write themselves: line breaks and the hover box's <extra> in hover templates.
OURS = re.compile(r"<br>|<extra></extra>")


def figures(page: str) -> dict[str, Any]:
    """The figures of a report page, as plotly receives them."""
    block = r'<script type="application/json" id="data-[^"]*" data-figure="([^"]*)"[^>]*>(.*?)</script>'
    blocks = re.findall(block, page, flags=re.S)
    assert blocks, "no figures on the page"
    return {fid: json.loads(text) for fid, text in blocks}


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a figure (trace names, ticks, text, titles, templates), with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]")


def assert_plain(page: str) -> list[str]:
    """No string in any figure carries markup other than our own; return every figure string."""
    found = []
    for fid, fig in figures(page).items():
        for where, text in strings(fig, fid):
            found.append(text)
            assert "<" not in OURS.sub("", text), f"{where}: {text!r}"
    return found


def comparison_of_hostile_layouts() -> Comparison:
    """Three layouts named with markup (the API takes any name; the command line takes file names)."""
    one = scenario_from(CRASHES)
    two = scenario_from({**CRASHES, "topology": TWO["topology"]})
    three = scenario_from({**CRASHES, "duration": "2m"})
    return compare({LINK: one, BOLD: two, BREAK: three}, replications=2, executor=InProcess())


def sweep_of_hostile_values(folder: Path) -> SweepResult:
    """A sweep over a free-text field whose values are markup, crossed with a number (lines and a heatmap)."""
    (folder / "base.yaml").write_text(yaml.safe_dump(merge(BASE, {"duration": "1m"}), sort_keys=False))
    (folder / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "hostile",
                "base": "base.yaml",
                "parameters": {"description": list(HOSTILE), "policies.client.retries": [0, 1]},
                "replications": 2,
                "metrics": ["availability", "latency.p99"],
            },
            sort_keys=False,
        )
    )
    return run_sweep(load_sweep(folder / "sweep.yaml"), executor=InProcess())


@pytest.fixture(scope="module")
def hostile_comparison() -> Comparison:
    return comparison_of_hostile_layouts()


@pytest.fixture(scope="module")
def hostile_sweep(tmp_path_factory) -> SweepResult:
    return sweep_of_hostile_values(tmp_path_factory.mktemp("hostile-sweep"))


def test_comparison_figures_show_layout_names_as_text(hostile_comparison):
    page = render_comparison(hostile_comparison)
    shown = assert_plain(page)
    for name in HOSTILE:
        assert any(html.escape(name, quote=False) in s for s in shown), name  # it is there, as text


def test_sweep_figures_show_parameter_values_as_text(hostile_sweep):
    page = render_sweep(hostile_sweep)
    shown = assert_plain(page)
    for value in HOSTILE:
        assert any(html.escape(value, quote=False) in s for s in shown), value


def test_the_page_text_is_escaped_too(hostile_comparison, hostile_sweep, tmp_path):
    for page in (
        (hostile_comparison.write_report(tmp_path / "c") / "report.html").read_text(),
        (hostile_sweep.write_report(tmp_path / "s") / "report.html").read_text(),
    ):
        body = page.split('<script type="application/gzip+base64"', 1)[0]
        for value in HOSTILE:
            assert value not in body and html.escape(value) in body


def test_the_checks_could_fail():
    with pytest.raises(AssertionError):
        assert_plain(
            '<script type="application/json" id="data-f" data-figure="f">'
            + json.dumps({"data": [{"name": BOLD}], "layout": {}}).replace("<", "\\u003c")
            + "</script>"
        )
