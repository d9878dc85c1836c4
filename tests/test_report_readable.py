"""Readable reports: one formatter per quantity (sim.units), used by the terminal, Markdown and HTML alike;
metrics and parameters named in words with their units; colour scales on which good looks good; long lists
collapsed; fault windows named in lanes of their own. (Issue 14; the browser measures the pages in
tests/browser/.)
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

import sim
from sim.cli.text import format_summary
from sim.experiments import InProcess, load_sweep, run_sweep
from sim.experiments.metrics import METRICS
from sim.experiments.report import colorscale, parameter_unit, parameter_words, render_sweep
from sim.experiments.text import fmt, fmt_diff, format_sweep, metric_title
from sim.report.html import render_html
from sim.report.html.parts import affected_list, faults_table
from sim.report.markdown import render_markdown
from sim.report.style import GOOD, WORST, good_bad_scale, scale_colour
from sim.units import (
    format_bandwidth,
    format_clock,
    format_count,
    format_latency,
    format_nines,
    format_number,
    format_percent,
    format_rate,
    format_ratio,
    format_span,
    plural,
    span_unit,
)
from tests.conftest import BASE, merge, scenario_from

# ------------------------------------------------------------------------------------------ one formatter each


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.85, "850 ms"),
        (0.0005, "0.5 ms"),
        (10.614, "10.6 s"),  # was "10.614s"
        (45, "45 s"),
        (59.96, "1 min"),  # never "60 s"
        (610, "10 min 10 s"),  # was 10.17 (decimal minutes)
        (1015.614, "16 min 56 s"),  # was "16m55.614s"
        (3599.6, "1 h"),
        (7530, "2 h 6 min"),
        (93784, "1 d 2 h"),
        (-90, "−1 min 30 s"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_a_length_of_time_is_a_span(seconds, text):
    assert format_span(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (610, "0:10:10"), (610.17, "0:10:10.1"), (3723.5, "1:02:03.5"), (90061, "25:01:01"),
     (None, "—")],
)
def test_a_point_in_time_is_a_clock(seconds, text):
    assert format_clock(seconds) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.998571, "99.857%"),
        (0.93186, "93.19%"),
        (0.999, "99.9%"),  # an objective reads as it was written
        (1.0, "100%"),
        (0.9999999, "99.99999%"),  # a failure is never rounded up to 100%
        (0.24, "24%"),
        (1.5, "150%"),
        (None, "—"),
    ],
)
def test_a_share_is_a_percentage_with_its_nines(fraction, text):
    assert format_percent(fraction) == text


def test_a_percentage_can_fix_its_decimals():
    assert (format_percent(0.625, decimals=0), format_percent(0.05, decimals=1)) == ("62%", "5.0%")


@pytest.mark.parametrize(
    ("n", "text"),
    [(2101.0, "2,101"), (2100.96, "2,101"), (2.5, "2.5"), (0, "0"), (1380881, "1,380,881"), (-13570.4, "−13,570")],
)
def test_a_count_is_whole_with_separators(n, text):
    assert format_count(n) == text  # was "2,101.0"


def test_a_count_with_a_noun_agrees_with_it():
    assert format_count(1, "replication") == "1 replication"  # was "1 replications"
    assert format_count(3, "replication") == "3 replications"
    assert format_count(2, "retry", "retries") == "2 retries" and plural(1, "run") == "run"


@pytest.mark.parametrize(("seconds", "text"), [(0.126, "126 ms"), (3.156, "3,156 ms"), (0.00082, "0.82 ms"),
                                               (2.0, "2,000 ms"), (0.0442, "44.2 ms"), (None, "—")])
def test_a_latency_is_always_in_milliseconds(seconds, text):
    assert format_latency(seconds) == text


def test_rates_ratios_nines_bandwidths_and_numbers():
    assert (format_rate(1234.4), format_rate(0.5)) == ("1,234/s", "0.5/s")
    assert (format_ratio(1.2345), format_ratio(1)) == ("1.23×", "1.00×")
    assert (format_nines(3.3), format_nines(None)) == ("3.30", "—")
    assert (format_bandwidth(4e10), format_bandwidth(2.5e6)) == ("40 Gbit/s", "2.5 Mbit/s")
    assert format_number(-13570.4) == "−13,570" and "e" not in format_number(1.357e-9)
    assert span_unit(600) == ("min", 60.0)


# ------------------------------------------------------------------------------------------ experiments


def test_experiment_values_go_through_the_formatters():
    assert fmt(METRICS["downtime_minutes"], 10.17) == "10 min 10 s"  # was "10.17 min"
    assert fmt(METRICS["counts.retries"], 2100.96) == "2,101"  # was "2,101.0"
    assert fmt(METRICS["latency.p99"], 1.5) == "1,500 ms"  # latency in ms everywhere (was "1.5 s")
    assert fmt(METRICS["recovery.time_to_recover"], 0.0004) == "0.4 ms"
    assert fmt_diff(METRICS["counts.retries"], -13570.4) == "−13,570"  # was "−1.357e+04"
    assert fmt_diff(METRICS["availability"], 0.0005) == "+0.05 pp"
    assert fmt(METRICS["impact.user_minutes"], 673545.2) == "673,545"  # user-minutes are a count, not a span


def test_metric_names_are_words_without_a_doubled_unit():
    assert metric_title(METRICS["downtime_minutes"]) == "downtime below the SLO"
    assert metric_title(METRICS["recovery.time_to_recover"]) == "time to recover"


def test_a_parameter_is_named_in_words_with_the_unit_of_its_field():
    sweep = load_sweep(Path(__file__).resolve().parents[1] / "scenarios" / "sweeps" / "retry-storm-retries-load.yaml")
    by_path = {p.path: p for p in sweep.parameters}
    peak = by_path["workload.regions.users.peak"]
    assert parameter_words(peak.path, peak.parts) == "users peak"
    assert parameter_unit(sweep.base, peak.parts) == "rate"
    retries = by_path["policies.client.retries"]
    assert parameter_words(retries.path, retries.parts) == "client retries"
    assert parameter_unit(sweep.base, retries.parts) is None
    assert parameter_unit(sweep.base, ("faults", "burst", "duration")) == "duration"


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """Two datacenters dark for 20 s (recovers) or past the end (never recovers), with 0 or 1 retries."""
    folder = tmp_path_factory.mktemp("sweep")
    dark = {"id": "dark", "kind": "datacenter_outage", "target": {"ids": ["dc-a", "dc-b"]}, "at": "30s",
            "duration": "20s"}
    (folder / "base.yaml").write_text(yaml.safe_dump(merge(BASE, {"duration": "2m", "faults": [dark]})))
    (folder / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "small", "base": "base.yaml", "replications": 1,
        "parameters": {"faults.dark.duration": [20, 600], "policies.client.retries": [0, 1]},
        "metrics": ["availability", "downtime_minutes", "latency.p99", "recovery.time_to_recover", "cascade_depth"],
    }))
    result = run_sweep(load_sweep(folder / "sweep.yaml"), executor=InProcess())
    return result, render_sweep(result)


def figures(page: str) -> dict[str, dict]:
    blocks = re.findall(r'<script type="application/json" id="data-[^"]*" data-figure="([^"]*)"[^>]*>(.*?)</script>',
                        page, flags=re.S)
    return {fid: json.loads(text) for fid, text in blocks}


def test_sweep_heatmaps_are_green_where_the_metric_is_good(small_sweep):
    _, page = small_sweep
    figs = figures(page)
    for name, good_end in (("availability", 1.0), ("downtime-minutes", 0.0), ("latency-p99", 0.0),
                           ("recovery-time-to-recover", 0.0)):
        (fid,) = [f for f in figs if f.startswith(f"fig-heat-{name}-")]
        trace = figs[fid]["data"][0]
        scale = trace["colorscale"]
        assert isinstance(scale, list), f"{fid}: a named scale plotly.js may not know ({scale!r})"
        assert trace.get("reversescale") is not True
        assert scale_colour(scale, good_end) == GOOD, fid  # green at the good end of the values
        assert scale_colour(scale, 1.0 - good_end) == WORST, fid  # dark red at the bad end
    assert colorscale(METRICS["requests"]) == good_bad_scale(None)  # neither way is better: neutral


def test_the_metastability_colours_agree(tmp_path):
    assert scale_colour(good_bad_scale("higher"), 1.0) == GOOD  # everyone recovered: green
    assert scale_colour(good_bad_scale("higher"), 0.0) == WORST


def test_cells_that_never_recovered_are_grey_and_named_in_the_legend(small_sweep):
    _, page = small_sweep
    figs = figures(page)
    (fid,) = [f for f in figs if f.startswith("fig-heat-recovery-time-to-recover-")]
    main, gaps, legend = figs[fid]["data"]
    assert any(v is None for row in main["z"] for v in row)  # no time to recover: not coloured as one
    assert sum(v == 1.0 for row in gaps["z"] for v in row) == 2  # the two cells dark past the end
    assert legend["name"] == "never recovered" and legend["showlegend"] is True


def test_sweep_axes_and_words(small_sweep):
    result, page = small_sweep
    assert "(min) (min)" not in page
    figs = figures(page)
    line = figs["fig-downtime-minutes-faults-dark-duration"]["layout"]
    assert line["yaxis"]["title"]["text"] == "downtime below the SLO (min)"  # was "... (min) (min)"
    assert line["xaxis"]["title"]["text"] == "dark duration"  # was "faults.dark.duration"
    assert line["xaxis"]["ticktext"] == ["20 s", "10 min"]  # the values in their unit
    retries = figs["fig-availability-policies-client-retries"]["layout"]["xaxis"]
    assert retries["tickvals"] == [0, 1]  # whole retries only: no tick at 0.5
    latency = figs["fig-latency-p99-policies-client-retries"]["layout"]["yaxis"]["title"]["text"]
    assert latency == "latency p99 (ms)"  # was "(s)" in sweeps, ms elsewhere
    footer = page.split("<footer>", 1)[1].split("</footer>", 1)[0]
    assert "layout" not in footer  # the sweep's footer is about sweeps
    assert "<h2>availability against dark duration</h2>" in page
    text = format_sweep(result, result.sweep)
    assert "4 points × 1 replication = 4 runs" in text  # was "1 replications"


# ------------------------------------------------------------------------------------------ run report


CRASHES = merge(BASE, {
    "duration": "6m",
    "faults": [
        {"id": "first-crash-with-a-long-name", "kind": "server_crash", "target": {"ids": ["a-01"]}, "at": "1m",
         "duration": "3m"},
        {"id": "second-crash-with-a-long-name", "kind": "server_crash", "target": {"ids": ["a-02"]}, "at": "65s",
         "duration": "2m"},
        {"id": "third-crash", "kind": "server_crash", "target": {"ids": ["b-01"]}, "at": "70s", "duration": "1m"},
        {"id": "late", "kind": "server_crash", "target": {"ids": ["b-02"]}, "at": "5m50s", "duration": "5s"},
    ],
})


@pytest.fixture(scope="module")
def crashes():
    result = sim.run(scenario_from(CRASHES), seed=1)
    return result, render_html(result)


def test_fault_labels_have_lanes_of_their_own(crashes):
    _, page = crashes
    for fid in ("fig-availability", "fig-latency", "fig-amplification", "fig-traffic", "fig-healthy"):
        layout = figures(page)[fid]["layout"]
        labels = [a for a in layout["annotations"] if str(a.get("name", "")).startswith("fault label")]
        assert [a["text"] for a in labels] == [f["id"] for f in CRASHES["faults"]]
        assert len({round(a["y"], 6) for a in labels}) == 4  # one row each: overlapping windows never collide
        top = layout["yaxis"]["domain"][1]
        assert all(a["y"] > top for a in labels)  # above the plot, clear of the data and the objective
        late = labels[-1]
        assert late["xanchor"] == "right" and late["x"] == 6.0  # drawn leftwards: never off the figure
        colours = {s["fillcolor"] for s in layout["shapes"] if str(s.get("name", "")).startswith("fault lane")}
        assert len(colours) == 4  # and each fault in its own colour
        plot = layout["height"] - layout["margin"]["t"] - layout["margin"]["b"]
        assert plot * layout["yaxis"]["domain"][1] >= 240  # a readable plot area, whatever the lanes take


def test_long_affected_lists_collapse_to_a_count(crashes):
    result, _ = crashes
    s = result.stats
    ids = [f"db-eu-{i:04d}" for i in range(1, 75)]
    fault = s.faults[0].model_copy(update={"affected": ids, "affected_count": 74})
    many = s.model_copy(update={"faults": [fault, *s.faults[1:]]})
    page = faults_table(many)  # without the topology, the kinds of node are not known
    assert "<details class=\"list\"><summary>74 nodes</summary>" in page
    assert page.count("db-eu-0074") == 1  # every name is there, behind the summary
    graph = result.cluster.graph.copy()
    graph.add_nodes_from((i, {"kind": "database"}) for i in ids)
    assert "<summary>74 databases</summary>" in affected_list(fault, graph)
    assert affected_list(s.faults[1]) == "a-02"  # a short list stays as it is


def test_the_run_report_and_the_terminal_use_the_formatters(crashes):
    result, page = crashes
    s = result.stats
    text = format_summary(result.summary, None)
    assert f"downtime      {format_span(s.downtime_minutes * 60)} below the SLO" in text
    assert "min below the SLO (per" not in text and re.search(r"\d+\.\d+s\b", text) is None  # no "10.614s"
    worst = s.fault(s.worst_fault)
    if worst.time_to_detect is not None:
        assert f"detected {format_span(worst.time_to_detect)} after it started" in text
    assert f"amplification {format_ratio(s.amplification)}" in text
    # The incident timeline shows clocks, not decimal minutes beside them.
    timeline = page.split('<table id="events">', 1)[1].split("</table>", 1)[0]
    assert "<th>Time</th>" in timeline and '<span class="clock">' not in timeline
    first = re.search(r'<tr id="ev-\d+"[^>]*><td class="num">([^<]*)</td>', timeline).group(1)
    assert re.fullmatch(r"\d+:\d\d:\d\d(\.\d)?", first)
    md = render_markdown(result)
    assert f"{format_span(s.downtime_minutes * 60)} in 1 min windows" in md
