"""Failures per request type ("sign-ins failed"): counted once by each engine where a request is finally
given up, under its own type, and shown in the terminal, report.md, report.html and the experiments.

On main neither engine counted them, and the flow engine forgot a request's type when it retried it: a
sign-in that failed came back as the mix (three reads for one sign-in), so with the directory down it
counted one sixteenth of the sign-ins as failed that the request engine did (931 against 14,943).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim.engine.flow.records import share_out
from sim.experiments.metrics import DEFAULT_METRICS, default_metrics, extract, metric_names
from tests.conftest import scenario_from

# One region, one datacenter; a quarter of the requests are sign-ins, which call the directory; the
# directory is down from 2 to 5 minutes. Reads call nothing, so nothing else fails.
DIRECTORY_DOWN = {
    "duration": "6m",
    "slo": {"window": "1m"},
    "topology": {
        "regions": [{"id": "users", "users": 100_000, "datacenters": {"dc-a": "10ms"}}],
        "datacenters": [{"id": "dc-a", "servers": [{"id": "a", "count": 6, "workers": 8, "service_time": "20ms"}]}],
        "links": [],
        "dependencies": [{"id": "directory", "workers": 16, "service_time": "5ms"}],
    },
    "workload": {
        "regions": {"users": {"peak": "100/s"}},
        "requests": {"sign_in": {"share": 0.25, "work": 0.5, "dependencies": ["directory"]},
                     "read": {"share": 0.75}},
    },
    "policies": {"client": {"timeout": "2s", "retries": 2, "backoff": {"base": "200ms", "jitter": "none"}}},
    "faults": [{"id": "directory-down", "kind": "dependency_outage", "at": "2m", "duration": "3m",
                "target": {"ids": ["directory"]}}],
}

# Everything fails alike: a datacenter goes dark; reads and the heavier sends.
OUTAGE = {
    "slo": {"window": "1m"},
    "topology": {"regions": [{"id": "users", "users": 100_000, "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}]},
    "workload": {"requests": {"read": {"share": 0.8}, "send": {"share": 0.2, "work": 1.5}}},
    "faults": [{"id": "dark", "kind": "datacenter_outage", "at": "2m", "duration": "3m",
                "target": {"datacenters": ["dc-a"]}}],
}

ENGINES = ("requests", "flow")


def run(changes: dict, engine: str) -> sim.Result:
    return sim.run(scenario_from({**changes, "engine": engine}))


@pytest.fixture(scope="module", params=ENGINES)
def directory_down(request) -> sim.Result:
    return run(DIRECTORY_DOWN, request.param)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("changes", [DIRECTORY_DOWN, OUTAGE], ids=["directory-down", "outage"])
def test_failures_by_type_add_up_to_the_failed_requests(changes, engine):
    stats = run(changes, engine).stats
    by_type = stats.impact.failed_by_type
    assert list(by_type) == list(scenario_from(changes).workload.requests)  # every type, in the mix's order
    assert sum(by_type.values()) == stats.counts["failed"] > 0
    # the user requests failed, counted from the windows (the flow engine rounds each table on its own)
    assert abs(stats.impact.requests_failed - stats.counts["failed"]) <= (0 if engine == "requests" else 6)


def test_only_sign_ins_fail_when_the_directory_is_down(directory_down):
    """Every sign-in that arrives while the directory is down fails (its retries 0.2-0.4 s later find it down
    too), and nothing else: about a quarter of the 18,000 requests of those 3 minutes."""
    stats = directory_down.stats
    impact = stats.impact
    sign_ins = 0.25 * 100 * 180  # the flow engine's arrivals are the rate itself
    assert impact.failed_by_type["read"] == 0
    assert impact.sign_ins_failed == impact.failed_by_type["sign_in"] == stats.counts["failed"]
    # 4 Poisson standard errors of the request engine's count (it draws arrivals and types), plus the
    # sign-ins that arrived in the last 0.6 s before the outage and whose retries fell inside it.
    assert impact.sign_ins_failed == pytest.approx(sign_ins, abs=4 * math.sqrt(sign_ins) + 0.25 * 100 * 0.6)


def test_the_engines_agree_on_the_failures_by_type():
    """Sign-ins on the directory's outage, and reads and sends on a datacenter's: the flow engine's count
    within 4 standard errors of the request engine's (Poisson: its square root) plus 1% of it."""
    for changes in (DIRECTORY_DOWN, OUTAGE):
        requests, flow = (run(changes, e).stats.impact.failed_by_type for e in ENGINES)
        for name, count in requests.items():
            assert flow[name] == pytest.approx(count, abs=4 * math.sqrt(count) + 0.01 * count + 1), (changes, name)


def test_a_client_retry_keeps_its_requests_type():
    """Without retries the flow engine always agreed; with two, on main, a failed sign-in came back as the
    mix, so a sign-in failed for good only if all three attempts drew a sign-in: 1/16 of them."""
    for retries in (0, 2):
        changes = {**DIRECTORY_DOWN, "policies": {"client": {"retries": retries}}}
        failed = run(changes, "flow").stats.impact.sign_ins_failed
        assert failed == pytest.approx(0.25 * 100 * 180, rel=0.05)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=6), st.integers(0, 10**6))
def test_share_out_keeps_the_total_and_stays_within_one_of_the_exact_share(parts, total):
    shares = share_out(np.array(parts), total)
    assert sum(shares) == total and all(n >= 0 for n in shares)
    weight = sum(parts)
    if weight > 0:
        assert all(abs(n - p / weight * total) < 1 for n, p in zip(shares, parts, strict=True))


def test_every_output_says_sign_ins_failed(directory_down, tmp_path):
    from sim.cli.text import format_summary
    from sim.report.markdown import render_markdown

    n = f"{directory_down.stats.impact.sign_ins_failed:,}"
    text = format_summary(directory_down.stats, None)
    assert f"  by type       sign-ins {n} · read 0 failed" in text
    assert f"| Sign-ins failed | {n} (other types: read 0) |" in render_markdown(directory_down)
    page = directory_down.write_report(tmp_path / "r").joinpath("report.html").read_text(encoding="utf-8")
    assert 'id="kpi-sign-ins" data-value="' + str(directory_down.stats.impact.sign_ins_failed) + '"' in page
    assert "Sign-ins failed" in page and "other types: read 0" in page


def test_a_mix_without_sign_ins_shows_its_types():
    from sim.cli.text import format_summary

    stats = run(OUTAGE, "requests").stats
    impact = stats.impact
    assert impact.sign_ins_failed is None and set(impact.failed_by_type) == {"read", "send"}
    read, send = impact.failed_by_type["read"], impact.failed_by_type["send"]
    assert f"  by type       read {read:,} · send {send:,} failed" in format_summary(stats, None)
    single = sim.run(scenario_from({"faults": OUTAGE["faults"]})).stats  # one type: nothing to tell apart
    assert single.impact.by_type() == [] and "by type" not in format_summary(single, None)


def test_experiments_keep_the_failures_by_type(directory_down):
    scenario = scenario_from(DIRECTORY_DOWN)
    names = metric_names(scenario)
    assert {"impact.sign_ins_failed", "impact.failed_by_type.sign_in", "impact.failed_by_type.read"} <= set(names)
    assert names["impact.sign_ins_failed"].label == "sign-ins failed"
    assert "impact.sign_ins_failed" not in metric_names(scenario_from(OUTAGE))
    # compare and replications keep it by default beside the user-minutes, when every scenario has sign-ins
    chosen = default_metrics(scenario)
    assert chosen[chosen.index("impact.user_minutes") + 1] == "impact.sign_ins_failed"
    assert default_metrics(scenario, scenario_from(OUTAGE)) == DEFAULT_METRICS
    row = extract(directory_down.stats, ["impact.sign_ins_failed", "impact.failed_by_type.read"])
    assert row == {"impact.sign_ins_failed": directory_down.stats.impact.sign_ins_failed,
                   "impact.failed_by_type.read": 0}


def test_compare_shows_sign_ins_failed_per_layout_with_intervals():
    from sim.experiments import InProcess, compare
    from sim.experiments.text import format_comparison

    one = scenario_from(DIRECTORY_DOWN)
    two = scenario_from({**DIRECTORY_DOWN, "faults": []})
    cmp = compare({"down": one, "up": two}, replications=2, executor=InProcess())
    assert "impact.sign_ins_failed" in [m.name for m in cmp.metrics]
    assert cmp.intervals["up"]["impact.sign_ins_failed"].mean == 0
    assert cmp.intervals["down"]["impact.sign_ins_failed"].mean > 1000
    assert "sign-ins failed" in format_comparison(cmp)
