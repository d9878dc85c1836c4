"""A run with no user requests: availability is undefined, so nothing is breached and nothing says −0.

``peak: 0/s`` (or a run shorter than the first arrival) used to report availability 100%, "−0.00 nines"
and "SLO breached" (exit 3) — the missing p99 counted as a latency breach. The rule now
(docs/design.md, "Availability, downtime, recovery"): availability and nines are ``null``, meaning "no
requests"; the SLO is judged on what exists, so with no requests neither objective is breached.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

import sim
from sim.cli import format_summary
from sim.experiments import replicate
from sim.experiments.text import format_replications
from sim.metrics import nines
from tests.conftest import BASE, merge, scenario_from
from tests.test_cli import cli

ENGINES = ("requests", "flow")
# The SLO has a latency objective: with no requests there is no p99, which must not count as a breach.
SLO = {"slo": {"availability": "99.9%", "latency_p99": "500ms"}}
QUIET = {"duration": "2m", "workload": {"regions": {"users": {"peak": "0/s"}}}, **SLO}
# 50/s gives its first request ~20 ms in: a 1-ms run has none (the flow engine's fraction rounds to 0).
BRIEF = {"duration": "1ms", **SLO}
CASES = {"peak-0": QUIET, "1ms-run": BRIEF}
# A minus zero as Python, JSON or the reports' typography (U+2212) print it (not "ev-0", "-0.05", "1e-0").
MINUS_ZERO = re.compile(r"(?<![\w.-])[-−]0(\.0+)?(?![\w.])")


def no_minus_zero(text: str) -> None:
    found = MINUS_ZERO.search(text)
    assert found is None, f"−0 printed: ...{text[max(0, found.start() - 60):found.end() + 20]}..."


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_summary_says_no_requests_and_breaches_nothing(engine, case):
    result = sim.run(scenario_from({**CASES[case], "engine": engine}))
    s = result.summary
    assert s["requests"] == 0 and s["manifest"]["engine"] == engine
    assert s["availability"] is None and s["nines"] is None
    assert s["regions"]["users"]["availability"] is None and s["regions"]["users"]["nines"] is None
    assert s["worst_region"] is None
    assert s["latency"] == {"p50": None, "p99": None, "mean": None}  # no requests, no latency
    assert s["slo"]["availability_met"] and s["slo"]["latency_met"] and s["slo"]["met"]
    assert result.slo_met
    assert s["downtime_minutes"] == 0.0
    no_minus_zero(json.dumps(s))
    text = format_summary(s, None)
    assert "no requests" in text and "SLO           met" in text
    no_minus_zero(text)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_cli_exits_0_and_every_file_handles_it(engine, case, tmp_path, capsys):
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(merge(BASE, CASES[case]), sort_keys=False))
    out = tmp_path / "out"
    assert cli("run", str(path), "--engine", engine, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "availability  —  (no requests)" in printed and "SLO           met" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["availability"] is None and summary["nines"] is None and summary["slo"]["met"] is True
    assert '"availability": null' in (out / "summary.json").read_text()
    md = (out / "report.md").read_text()
    assert md.startswith("# unit: SLO met")
    assert "| Availability | — (no requests) |" in md
    page = (out / "report.html").read_text()
    assert 'id="kpi-slo" data-value="met"' in page and "no requests" in page
    for text in (printed, md, page, (out / "summary.json").read_text(), (out / "timeseries.csv").read_text()):
        no_minus_zero(text)
    # The stored folder reads back and renders the same report.
    before = {name: (out / name).read_bytes() for name in ("report.html", "report.md")}
    assert cli("report", str(out)) == 0
    assert {name: (out / name).read_bytes() for name in before} == before


def test_the_result_object_says_no_requests_too():
    assert sim.run(scenario_from(QUIET)).availability is None


MAIL_ONLY = {
    **QUIET,
    "topology": {"databases": [{"id": "db", "count": 2, "placement": [{"datacenter": "dc-a"}]}]},
    "workload": {"regions": {"users": {"peak": "0/s"}},
                 "mail": {"regions": {"users": {"rate": "5/s"}}, "retry": {"first": "10s", "multiplier": 2,
                                                                           "max": "30m"}}},
}


@pytest.mark.parametrize("engine", [
    "requests",
    "flow",
])
def test_mail_without_user_requests(engine):
    """Mail still flows when no user sends a request; availability is undefined, mail is counted."""
    s = sim.run(scenario_from({**MAIL_ONLY, "engine": engine})).summary
    assert s["availability"] is None and s["slo"]["met"]
    assert s["mail"]["delivered"] > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_region_without_requests_is_left_out_of_worst_region(engine):
    two = merge(BASE, {
        "duration": "2m",
        "engine": engine,
        "topology": {"regions": [{"id": "users", "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}},
                                 {"id": "quiet", "datacenters": {"dc-b": "10ms", "dc-a": "40ms"}}]},
        "workload": {"regions": {"users": {"peak": "50/s"}, "quiet": {"peak": "0/s"}}},
        **SLO,
    })
    result = sim.run(sim.parse_scenario(yaml.safe_dump(two, sort_keys=False), "two.yaml"))
    s = result.summary
    assert s["regions"]["quiet"]["availability"] is None and s["regions"]["quiet"]["requests"] == 0
    assert s["regions"]["users"]["availability"] == s["availability"] > 0.99
    assert s["worst_region"] == "users"
    assert s["slo"]["met"]
    from sim.report.html import render_html
    from sim.report.markdown import render_markdown

    page, md = render_html(result), render_markdown(result)
    no_minus_zero(md)
    no_minus_zero(page)


@pytest.mark.parametrize("engine", ENGINES)
def test_everything_failing_has_zero_nines_not_minus_zero(engine):
    """The other −0.0: ``-log10(1 - 0)``. Every datacenter is down from the start."""
    outage = {"kind": "datacenter_outage", "target": {"datacenters": ["dc-a", "dc-b"]}, "at": "0s"}
    s = sim.run(scenario_from({"duration": "1m", "engine": engine, "faults": [outage]})).summary
    assert s["requests"] > 0 and s["availability"] == 0.0
    assert s["nines"] == 0.0 and math.copysign(1.0, s["nines"]) == 1.0
    assert not s["slo"]["met"]  # requests that all failed do breach
    no_minus_zero(json.dumps(s))
    no_minus_zero(format_summary(s, None))


def test_nines_is_none_without_requests_and_never_negative_zero():
    assert nines(None, 0) is None and nines(1.0, 0) is None
    assert math.copysign(1.0, nines(0.0, 10)) == 1.0
    assert nines(1.0, 999) == 3.0 and nines(0.999, 10**6) == 3.0


@pytest.mark.parametrize("engine", ENGINES)
def test_experiment_rows_keep_none_and_intervals_leave_it_out(engine):
    scenario = scenario_from({**QUIET, "engine": engine})
    metrics = ["availability", "nines", "regions.users.availability", "slo.met", "latency.p99"]
    reps = replicate(scenario, 2, executor="here", metrics=metrics)
    assert [r["availability"] for r in reps.rows] == [None, None]
    assert [r["regions.users.availability"] for r in reps.rows] == [None, None]
    assert reps.interval("availability").mean is None and reps.interval("availability").n == 0
    assert reps.interval("slo.met").mean == 1.0
    text = format_replications(reps)
    no_minus_zero(text)
    assert re.search(r"availability\s+—", text)


def test_stored_folders_of_quiet_runs_render_without_the_live_run(tmp_path):
    """``cascadesim report`` on a quiet run's folder, with nothing else of the run at hand."""
    result = sim.run(scenario_from(QUIET))
    folder = result.write_report(tmp_path / "quiet")
    from sim.report import load_results
    from sim.report.markdown import render_markdown

    stored = load_results(folder)
    assert stored.summary["availability"] is None
    assert render_markdown(stored) == (Path(folder) / "report.md").read_text(encoding="utf-8")
