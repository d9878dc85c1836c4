"""The interactive report: self-contained, offline, escaped, and showing what the run's records say."""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plotly.offline import get_plotlyjs

import sim
from sim.report.html import (
    FIGURES,
    MAX_EVENT_ROWS,
    MAX_POINTS,
    MAX_SERVER_NODES,
    bucket,
    collapse_events,
    fault_windows,
    render_html,
)
from sim.report.html.topology import STATE_NAMES
from sim.report.page import plotly_js_gzip
from sim.units import format_latency, format_ratio, format_span

ROOT = Path(__file__).resolve().parents[1]
XSS = "</script><script>alert(1)</script>"

CRASH = f"""
name: crash
description: "{XSS} & friends"
duration: 20m
topology:
  regions: [{{id: europe, datacenters: {{dc-a: 10ms, dc-b: 30ms}}}}]
  datacenters:
    - id: dc-a
      location: "</script><script>alert(2)</script>"
      servers: [{{id: mbx-a, count: 4, workers: 4, service_time: 20ms}}]
    - {{id: dc-b, location: Stockholm, servers: [{{id: mbx-b, count: 4, workers: 4, service_time: 20ms}}]}}
  links: [{{between: [dc-a, dc-b], capacity: 10Gbps, latency: 20ms}}]
  databases: [{{id: db, count: 16, placement: [{{datacenter: dc-a, copies: 2}}, {{datacenter: dc-b}}]}}]
workload: {{regions: {{europe: {{peak: 20/s}}}}}}
policies: {{failover: {{database_delay: 30s}}}}
faults:
  - {{id: crash-1, kind: server_crash, target: {{ids: [mbx-a-02]}}, at: 5m, duration: 5m}}
slo: {{availability: 99.9%, latency_p99: 1s}}
"""

OUTAGE = """
name: outage
duration: 20m
topology:
  regions:
    - {id: west, datacenters: {dc-a: 10ms, dc-b: 40ms}}
    - {id: east, datacenters: {dc-b: 10ms}}
  datacenters:
    - {id: dc-a, servers: [{id: mbx-a, count: 3, service_time: 10ms}]}
    - {id: dc-b, servers: [{id: mbx-b, count: 3, service_time: 10ms}]}
  dependencies: [{id: dir, service_time: 1ms}]
workload:
  regions: {west: {peak: 20/s}, east: {peak: 10/s}}
  requests: {read: {share: 100%, dependencies: [dir]}}
faults:
  - {id: dc-a-dark, kind: datacenter_outage, target: {ids: [dc-a]}, at: 12m}
  - {id: flaky, kind: server_crash, target: {datacenters: [dc-b], mode: {count: 2}}, mtbf: 4m, mttr: 1m}
"""

BIG = """
name: big
duration: 10m
topology:
  regions: [{id: users, datacenters: {dc-a: 10ms, dc-b: 40ms}}]
  datacenters:
    - {id: dc-a, servers: [{id: mbx-a, count: 200, service_time: 10ms}]}
    - {id: dc-b, servers: [{id: mbx-b, count: 150, service_time: 10ms}]}
workload: {regions: {users: {peak: 20/s}}}
faults:
  - {id: half-a, kind: server_crash, target: {datacenters: [dc-a], mode: {count: 50}}, at: 2m, duration: 3m}
"""

QUIET = """
name: quiet
duration: 5m
topology:
  regions: [{id: users, datacenters: {dc-a: 10ms}}]
  datacenters: [{id: dc-a, servers: [{id: mbx-a, count: 2, service_time: 10ms}]}]
workload: {regions: {users: {peak: 20/s}}}
"""

# 1-second SLO windows over 30 minutes: 1800 windows, more than MAX_POINTS.
LONG = """
name: long
duration: 30m
topology:
  regions: [{id: users, datacenters: {dc-a: 10ms}}]
  datacenters: [{id: dc-a, servers: [{id: mbx-a, count: 2, service_time: 10ms}]}]
workload: {regions: {users: {peak: 5/s}}}
faults: [{id: blip, kind: server_crash, target: {ids: [mbx-a-01]}, at: 10m, duration: 1m}]
slo: {window: 1s}
"""


def _run(text: str) -> tuple[sim.Result, str]:
    result = sim.run(sim.parse_scenario(text), seed=1)
    return result, render_html(result)


@pytest.fixture(scope="module")
def crash() -> tuple[sim.Result, str]:
    return _run(CRASH)


@pytest.fixture(scope="module")
def outage() -> tuple[sim.Result, str]:
    return _run(OUTAGE)


@pytest.fixture(scope="module")
def big() -> tuple[sim.Result, str]:
    return _run(BIG)


def figure(page: str, fid: str) -> dict:
    """The plotly spec (data, layout) embedded for figure ``fid``."""
    tag = f'<script type="application/json" id="data-{fid}" data-figure="{fid}"'
    m = re.search(re.escape(tag) + "[^>]*>(.*?)</script>", page, re.S)
    assert m, f"no data block for {fid}"
    return json.loads(m.group(1))


def kpi(page: str, key: str) -> tuple[str, str]:
    """(data-value, inner HTML) of headline card ``kpi-<key>``."""
    m = re.search(rf'id="kpi-{key}"(?: data-value="([^"]*)")?>(.*?)</div></div>', page, re.S)
    assert m, f"no headline card {key}"
    return html.unescape(m.group(1) or ""), m.group(2)


def fault_shapes(spec: dict, fault: str) -> list[dict]:
    return [s for s in spec["layout"].get("shapes", []) if s.get("name") == f"fault {fault}"]


# ------------------------------------------------------------------------------ self-contained, offline


def test_plotly_js_is_inlined_exactly_once_compressed(crash):
    _, page = crash
    js = get_plotlyjs()
    blocks = re.findall(r'<script type="application/gzip\+base64" id="plotly-js-gz">([^<]*)</script>', page)
    assert len(blocks) == 1
    assert gzip.decompress(base64.b64decode(blocks[0])).decode("utf-8") == js
    assert blocks[0] == plotly_js_gzip()
    assert js[:300] not in page  # not a second, uncompressed copy
    assert len(page) < len(blocks[0]) + 500_000  # the figures and tables are small next to plotly.js


def test_page_loads_nothing_from_the_network(crash):
    _, page = crash
    tags = re.findall(r"<(?:script|link|img|iframe|source|embed)\b[^>]*>", page, re.I)
    assert not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t, re.I)]
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert "@import" not in style and "url(" not in style and "@font-face" not in style
    assert "cdn.plot.ly" not in page.replace(get_plotlyjs(), "")


@pytest.mark.parametrize("fid", FIGURES)
def test_every_figure_has_a_div_and_data(crash, fid):
    _, page = crash
    assert page.count(f'<div id="{fid}" class="fig">') == 1
    spec = figure(page, fid)
    assert spec["data"], f"{fid} has no traces"


def test_time_series_share_one_axis_in_minutes(crash):
    result, page = crash
    end = result.scenario.duration / 60
    for fid in ("fig-availability", "fig-latency", "fig-traffic", "fig-healthy"):
        xaxis = figure(page, fid)["layout"]["xaxis"]
        assert xaxis["range"] == [0, end]
        assert xaxis["title"]["text"] == "minutes since start"
    load = figure(page, "fig-load")["layout"]
    assert load["xaxis"]["range"] == [0, end]
    assert load["xaxis2"]["matches"] == "x"


# ------------------------------------------------------------------------------ what the figures show


def test_fault_window_is_shaded_on_every_time_series(crash):
    _, page = crash
    for fid in ("fig-availability", "fig-latency", "fig-traffic", "fig-healthy"):
        (shape,) = fault_shapes(figure(page, fid), "crash-1")
        assert (shape["x0"], shape["x1"]) == (5.0, 10.0)
        assert shape["yref"] == "paper"
    # One shaded band per datacenter panel of the load figure.
    assert len(fault_shapes(figure(page, "fig-load"), "crash-1")) == 2
    # Each fault is named once, in its own lane above the plot (not over the plot, not in the legend).
    layout = figure(page, "fig-availability")["layout"]
    (label,) = [a for a in layout["annotations"] if a.get("name") == "fault label crash-1"]
    assert label["text"] == "crash-1" and label["x"] == 5.0 and label["yref"] == "paper"
    assert label["y"] > layout["yaxis"]["domain"][1]  # above the plot area
    (lane,) = [s for s in layout["shapes"] if s.get("name") == "fault lane crash-1"]
    assert (lane["x0"], lane["x1"]) == (5.0, 10.0) and lane["y0"] > layout["yaxis"]["domain"][1]


def test_fault_without_end_lasts_to_the_end_of_the_run(outage):
    result, page = outage
    shapes = fault_shapes(figure(page, "fig-availability"), "dc-a-dark")
    assert [(s["x0"], s["x1"]) for s in shapes] == [(12.0, 20.0)]
    assert fault_shapes(figure(page, "fig-availability"), "flaky")  # random faults are shaded too


def test_availability_trace_matches_the_time_series(crash):
    result, page = crash
    spec = figure(page, "fig-availability")
    (overall,) = [t for t in spec["data"] if t["name"] == "europe"]
    expected = [r["availability"] * 100 for r in result.timeseries]
    assert overall["y"][:-1] == pytest.approx(expected)
    assert overall["x"][-1] == result.scenario.duration / 60  # the last step reaches the end of the run
    assert min(expected) < 99.9  # the crash shows as a dip
    objective = [s for s in spec["layout"]["shapes"] if s.get("name") == "objective"]
    assert objective[0]["y0"] == pytest.approx(99.9)


def test_load_and_healthy_figures_show_each_datacenter(crash):
    result, page = crash
    load = figure(page, "fig-load")
    titles = [a["text"] for a in load["layout"]["annotations"]]
    assert titles == ["dc-a", "dc-b"]
    names = {t["name"] for t in load["data"]}
    assert names == {"offered (attempts/s)", "capacity (req/s)"}
    healthy = figure(page, "fig-healthy")
    (dc_a,) = [t for t in healthy["data"] if t["name"] == "dc-a"]
    expected = [r["healthy"] for r in result.datacenter_series if r["datacenter"] == "dc-a"]
    assert dc_a["y"][:-1] == expected
    assert min(expected) == 3  # one of four servers crashed


def test_topology_colours_what_failed(crash):
    _, page = crash
    spec = figure(page, "fig-topology")
    by_name = {t["name"]: t for t in spec["data"] if t.get("name")}
    servers = by_name["servers"]
    codes = dict(zip((h.split("</b>")[0][3:] for h in servers["hovertext"]), servers["marker"]["color"],
                     strict=True))
    assert codes.pop("mbx-a-02") == 3  # down: red, over the whole run (the slider's first step)
    assert set(codes.values()) == {0} and len(codes) == 7
    dcs = dict(zip(("dc-a", "dc-b"), by_name["datacenters"]["marker"]["color"], strict=True))
    assert dcs == {"dc-a": 2, "dc-b": 0}  # a server of dc-a went down
    assert {t["name"] for t in spec["data"] if t.get("x") == [None]} == set(STATE_NAMES)  # the legend
    # Databases are never drawn.
    assert not any("db-0001" in str(t.get("hovertext", "")) for t in spec["data"])


def test_topology_slider_steps_through_the_run(crash):
    result, page = crash
    spec = figure(page, "fig-topology")
    (slider,) = spec["layout"]["sliders"]
    steps = slider["steps"]
    assert steps[0]["label"] == "whole run" and slider["active"] == 0
    assert [s["label"] for s in steps[1:]] == [f"0:{m:02d}:00" for m in range(20)]  # 1-minute windows
    servers = next(i for i, t in enumerate(spec["data"]) if t.get("name") == "servers")
    hover = spec["data"][servers]["hovertext"]
    down = next(i for i, h in enumerate(hover) if "mbx-a-02" in h)

    def colour(step: dict) -> int:
        update, indices = step["args"]
        return update["marker.color"][indices.index(servers)][down]

    step_colours = [colour(s) for s in steps[1:]]
    assert step_colours[4] == 0 and step_colours[5] == 3 and step_colours[9] == 3  # the crash: minutes 5-10
    assert step_colours[-1] == 0


def test_topology_layout_is_deterministic(crash):
    result, page = crash
    assert render_html(result) == page


def test_large_topology_shows_counts_per_datacenter(big):
    result, page = big
    assert sum(1 for _, k in result.cluster.graph.nodes(data="kind") if k == "server") > MAX_SERVER_NODES
    spec = figure(page, "fig-topology")
    counts = [t for t in spec["data"] if t.get("name") in STATE_NAMES and t.get("x") != [None]]
    assert len(counts) == 4
    assert all(len(t["x"]) == 2 for t in counts)  # one marker per datacenter and state
    down = next(t for t in counts if t["name"] == STATE_NAMES[3])
    assert down["text"] == ["50", "0"]  # the whole run: 50 servers of dc-a went down
    assert "counted per datacenter" in page
    assert not any(t.get("name") == "servers" for t in spec["data"])


def test_long_series_are_bucketed():
    result, page = _run(LONG)
    assert len(result.timeseries) > MAX_POINTS
    for fid in ("fig-availability", "fig-traffic", "fig-healthy", "fig-load"):
        for trace in figure(page, fid)["data"]:
            assert len(trace["x"]) <= MAX_POINTS + 1
    # The one-minute crash still shows: buckets keep the worst window.
    spec = figure(page, "fig-availability")
    overall = next(t for t in spec["data"] if t["name"] == "users")
    worst = min(r["availability"] for r in result.timeseries if r["availability"] is not None) * 100
    assert min(v for v in overall["y"] if v is not None) == pytest.approx(worst)
    assert f"Each point is the worst of {math.ceil(1800 / MAX_POINTS)} consecutive" in page


# ------------------------------------------------------------------------------ headline and tables


def test_headline_numbers_match_the_summary(crash):
    result, page = crash
    s = result.summary
    value, text = kpi(page, "availability")
    assert float(value) == s["availability"]
    shown = re.search(r'class="value">([\d.]+)%<', text).group(1)
    assert float(shown) == pytest.approx(s["availability"] * 100, abs=0.6 * 10 ** -len(shown.split(".")[1]))
    assert len(shown.split(".")[1]) >= math.ceil(s["nines"])  # enough decimals to show the nines
    assert float(kpi(page, "nines")[0]) == s["nines"]
    value, text = kpi(page, "downtime")
    assert float(value) == s["downtime_minutes"] and format_span(s["downtime_minutes"] * 60) in text
    value, text = kpi(page, "requests")
    assert int(value) == s["requests"] and f"{s['requests']:,}" in text
    value, text = kpi(page, "retries")
    assert int(value) == s["counts"]["retries"]
    amp = re.search(r'id="kpi-amplification" data-value="([^"]+)">([^<]+)<', page)
    assert float(amp.group(1)) == s["amplification"] and amp.group(2) == format_ratio(s["amplification"])
    _, text = kpi(page, "latency")
    assert f"p50 {format_latency(s['latency']['p50'])}" in text
    assert f"p99 {format_latency(s['latency']['p99'])}" in text
    assert kpi(page, "worst-region")[0] == s["worst_region"] == "europe"
    faults = re.search(r'<table id="faults">.*?</table>', page, re.S).group(0)
    assert re.search(r'<tr class="worst"><td>crash-1<', faults) and s["worst_fault"] == "crash-1"
    # Users affected: europe's users (none given: 0) times the worst failed share; peak amplification.
    assert int(kpi(page, "users")[0]) == 0
    peak = max(r["attempts"] / r["requests"] for r in result.timeseries if r["requests"])
    value, text = kpi(page, "peak-amplification")
    assert float(value) == pytest.approx(peak) and format_ratio(peak) in text
    value, text = kpi(page, "recovered")
    assert value == ("yes" if s["recovery"]["recovered"] else "no")
    verdict = re.search(r'id="kpi-slo" data-value="(met|breached)"', page).group(1)
    assert verdict == ("met" if s["slo"]["met"] else "breached")
    assert "objective: availability ≥ 99.9% and p99 latency ≤ 1,000 ms" in page


def test_incident_timeline_collapses_and_links_causes(crash):
    result, page = crash
    table = re.search(r'<table id="events">.*?</table>', page, re.S).group(0)
    row_ids = re.findall(r'<tr id="(ev-\d+)"', table)
    rows, total = collapse_events(result.events)
    assert len(row_ids) == len(rows) == total < len(result.events)
    # The crash takes several databases down at one instant: one row with a count.
    lost = [r for r in rows if r.kind == "database_unavailable"]
    assert lost and lost[0].count > 1 and f"×{lost[0].count}" in table
    # Every cause link points at a row of the table.
    links = re.findall(r'href="#(ev-\d+)"', table)
    assert links and set(links) <= set(row_ids)
    server_down = next(r for r in rows if r.kind == "server_down")
    fault_start = next(r for r in rows if r.kind == "fault_start")
    row_html = re.search(rf'<tr id="{server_down.anchor}".*?</tr>', table, re.S).group(0)
    assert f'href="#{fault_start.anchor}"' in row_html


def test_collapse_events_keeps_a_few_hundred_rows_and_the_major_ones():
    events: list[dict] = []

    def add(time, kind, node, cause=None, fault=None, detail=""):
        events.append({"id": len(events), "time": time, "kind": kind, "node": node, "cause": cause,
                       "fault": fault, "detail": detail})
        return len(events) - 1

    for i in range(1000):
        add(float(i), "ejected", f"s{i}")
    for t in (10.5, 900.5):
        start = add(t, "fault_start", "f", fault="f")
        for j in range(50):  # fifty servers at one instant: one row
            add(t, "server_down", f"m{j}", cause=start, fault="f", detail="crashed")
    rows, total = collapse_events(events, MAX_EVENT_ROWS)
    assert total == 1000 + 4
    assert len(rows) == MAX_EVENT_ROWS
    assert [r.time for r in rows if r.kind == "fault_start"] == [10.5, 900.5]
    assert [r.time for r in rows] == sorted(r.time for r in rows)
    downs = [r for r in rows if r.kind == "server_down"]
    assert [r.count for r in downs] == [50]  # the later one was cut, the fault start kept
    assert downs[0].causes == [1000]


def test_faults_and_regions_tables(outage):
    result, page = outage
    faults = re.search(r'<table id="faults">.*?</table>', page, re.S).group(0)
    for f in result.summary["faults"]:
        assert f"<td>{f['id']}<span class=\"sub\">{f['kind']}</span></td>" in faults
    regions = re.search(r'<table id="regions">.*?</table>', page, re.S).group(0)
    assert "<td>west</td>" in regions and "<td>east</td>" in regions


def test_run_without_faults():
    result, page = _run(QUIET)
    assert "The scenario injects no faults." in page
    assert kpi(page, "recovered")[1].count("no impact") == 1
    assert "No fault was injected and nothing failed." in page
    assert not fault_shapes(figure(page, "fig-availability"), "anything")


# ------------------------------------------------------------------------------ escaping


def test_description_and_location_appear_only_escaped(crash):
    _, page = crash
    js = get_plotlyjs()
    rest = page.replace(js, "")
    assert "alert(1)" in rest and "alert(2)" in rest
    assert "<script>alert" not in rest
    assert html.escape(XSS + " & friends") in rest
    # Blocks: plotly.js, one JSON block per figure, the start-up script; nothing else opens a script.
    assert rest.count("<script") == 2 + len(FIGURES)
    assert rest.count("</script>") == 2 + len(FIGURES)
    # Inside JSON, even escaped text carries no '<': no string can close its <script> block.
    for fid in FIGURES:
        block = re.search(rf'id="data-{fid}" data-figure="{fid}"[^>]*>(.*?)</script>', page, re.S).group(1)
        assert "<" not in block and ">" not in block
    hover = json.dumps(figure(page, "fig-topology"))
    assert "&lt;/script&gt;&lt;script&gt;alert(2)" in hover


def test_fault_windows_pair_starts_and_ends():
    def ev(i, t, kind, node, cause=None, fault="f"):
        return {"id": i, "time": t, "kind": kind, "node": node, "cause": cause, "fault": fault, "detail": ""}

    events = [
        ev(0, 10.0, "fault_start", "s1"),
        ev(1, 12.0, "fault_start", "s2"),
        ev(2, 15.0, "fault_end", "s2", cause=1),
        ev(3, 20.0, "fault_end", "s1"),  # no cause: closes the open start of the same fault and node
        ev(4, 30.0, "fault_start", "s1"),  # never ends
        ev(5, 40.0, "fault_start", "g", fault="g"),
        ev(6, 45.0, "server_down", "x", cause=5, fault="g"),
    ]
    windows = fault_windows(events, 100.0)
    assert [(w.fault, w.node, w.start, w.end, w.open) for w in windows] == [
        ("f", "s1", 10.0, 20.0, False),
        ("f", "s2", 12.0, 15.0, False),
        ("f", "s1", 30.0, 100.0, True),
        ("g", "g", 40.0, 100.0, True),
    ]


@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), max_size=60), st.integers(1, 7))
def test_bucket_keeps_the_extremes(values, k):
    for how, pick in (("min", min), ("max", max)):
        out = bucket(values, k, how)
        assert len(out) == math.ceil(len(values) / k)
        for i, v in enumerate(out):
            chunk = [x for x in values[i * k:(i + 1) * k] if x is not None]
            assert v == (pick(chunk) if chunk else None)


# ------------------------------------------------------------------------------ files and boundaries


def test_write_report_writes_report_html(crash, tmp_path):
    result, page = crash
    folder = result.write_report(tmp_path / "out")
    written = (folder / "report.html").read_text(encoding="utf-8")
    assert written == page
    assert written.startswith("<!doctype html>")


def test_quickstart_renders():
    scenario = sim.load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    result = sim.run(scenario.model_copy(update={"duration": 900.0}))  # the first 15 minutes: quick
    page = render_html(result)
    for fid in FIGURES:
        assert f'<div id="{fid}"' in page
    assert result.summary["faults"][0]["id"] in json.dumps(figure(page, "fig-availability"))


def test_only_the_report_package_imports_plotly():
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "sim").rglob("*.py")
                 if re.search(r"^\s*(?:import plotly(?:\.\w+)*(?: as \w+)?$|from plotly\S* import )",
                              p.read_text(encoding="utf-8"), re.M)]
    assert importers and all(p.startswith("sim/report/") for p in importers), importers
    code = ("import sys, sim; from sim.topology import EXAMPLE; "
            "sim.run(sim.parse_scenario(EXAMPLE), seed=1); "
            "assert 'plotly' not in sys.modules, 'the model imported plotly'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
