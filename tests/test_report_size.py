"""The report of a day of a 10,000-server service stays small, and draws what matters."""

from __future__ import annotations

import json
import re

import pytest

from sim.report.html import MAX_POINTS, render_html
from tests import report_synthetic

MB = 1_000_000


@pytest.fixture(scope="module")
def big():
    result = report_synthetic.result()
    return result, render_html(result)


def test_a_day_of_ten_thousand_servers_is_under_five_megabytes(big):
    result, page = big
    assert sum(1 for _, k in result.graph.nodes(data="kind") if k == "server") == 10_000
    assert len(result.timeseries) == 8 * 1440
    size = len(page.encode("utf-8"))
    assert size < 5 * MB, f"report.html is {size / MB:.2f} MB"


def test_every_trace_is_downsampled(big):
    _, page = big
    for fid, block in re.findall(r'data-figure="([^"]+)"[^>]*>(.*?)</script>', page, re.S):
        spec = json.loads(block)
        for trace in spec["data"]:
            if fid in ("fig-cascade", "fig-topology") or not isinstance(trace.get("x"), list):
                continue
            assert len(trace["x"]) <= MAX_POINTS + 1, (fid, trace.get("name"))


def test_the_cascade_and_the_topology_are_capped(big):
    _, page = big
    blocks = dict(re.findall(r'data-figure="([^"]+)"[^>]*>(.*?)</script>', page, re.S))
    cascade = json.loads(blocks["fig-cascade"])
    drawn = sum(len(t["x"]) for t in cascade["data"] if t.get("mode") == "markers+text")
    assert drawn <= 90
    assert len(blocks["fig-topology"]) < 600_000
    topology = json.loads(blocks["fig-topology"])
    assert not any(t.get("name") == "servers" for t in topology["data"])  # counted per datacenter
