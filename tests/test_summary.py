"""The typed summary: users affected counted once, never more than the users there are, in every output;
``summarize`` reads the run and writes nothing.

Every shipped scenario runs once (module fixture; on the flow engine, fast and as good for these checks,
except mail-backlog on the request engine, faster there, so both engines are covered). Since
``summarize`` is pure, the same runs are summed up again with other user counts (hypothesis), which makes
the scenarios without user counts meaningful too and drives failures far past the users (F ≫ N).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.cli import format_summary
from sim.experiments.metrics import extract
from sim.metrics import summarize
from sim.recorder import MailRecorder
from sim.report import load_results
from sim.report.html.parts import faults_table, headline, regions_table
from sim.report.markdown import render_markdown
from sim.report.story import tell
from sim.result import Result
from sim.summary import Manifest, Summary, distinct_users, expected_distinct_users
from tests.shipped import KEYS, REQUESTS_ONLY, ROOT, group, key, run_shipped

REQUEST_ENGINE = {"mechanisms/mail-backlog.yaml"} | {key(p) for p in REQUESTS_ONLY}


class Runs:
    """Every shipped scenario's run, keyed by its path under scenarios/: computed on first use, and shared
    with the other modules that read the same run (``tests/shipped.py``)."""

    def __getitem__(self, key: str) -> sim.Result:
        return run_shipped(key, engine="requests" if key in REQUEST_ENGINE else "flow")


@pytest.fixture(scope="module")
def runs() -> Runs:
    return Runs()


BY_SCENARIO = [pytest.param(k, id=k, marks=group(k)) for k in KEYS]


# ------------------------------------------------------------------------------------------ the model


@pytest.mark.parametrize(
    ("users", "failed", "expected"),
    [
        (1_000_000_000, 1_000, 1_000),  # rare failures: each one a different user
        (1_000, 1_000_000, 1_000),  # far more failures than users: every user, no more
        (1_000, 1_000, 632),  # as many as users: 1 − 1/e of them
        (40_000_000, 85_296, 85_205),  # Monday morning's europe on the request engine
        (1_000, 0, 0),
        (0, 50, 0),  # no user count: nobody to count
    ],
)
def test_distinct_users(users, failed, expected):
    assert distinct_users(users, failed) == expected


@given(users=st.integers(0, 10**11), failed=st.integers(0, 10**13), more=st.integers(0, 10**6))
def test_distinct_users_is_bounded_and_grows_with_failures(users, failed, more):
    d = distinct_users(users, failed)
    assert 0 <= d <= min(users, failed)
    assert d <= distinct_users(users, failed + more)
    assert abs(expected_distinct_users(users, failed) - d) <= 0.5


# ------------------------------------------------------------------------------------------ every output


def _markdown_faults(text: str) -> list[int]:
    """The users column of report.md's faults table."""
    lines = text.splitlines()
    if "## Faults" not in lines:
        return []
    rows = lines[lines.index("## Faults") + 4:]
    rows = rows[: rows.index("")]
    return [int(row.split(" | ")[5].replace(",", "")) for row in rows]


def _html_column(page: str, table: str, header: str) -> list[str]:
    """The cells of column ``header`` of the HTML table ``table``."""
    body = page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th>(.*?)</th>", body)
    column = headers.index(header)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row)[column] for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)[1:]]


def assert_users_counted_once(result: Result) -> None:
    """``users_affected`` (run, regions, faults) is bounded by the users and the failures, and every output
    shows the summary's field."""
    s = result.stats
    users = {r.id: int(r.users) for r in result.scenario.topology.regions}
    total = sum(users.values())
    assert s.users == total
    assert 0 <= s.users_affected <= min(total, s.requests - s.succeeded)
    for name, region in s.regions.items():
        assert region.users == users[name]
        assert 0 <= region.users_affected <= min(users[name], region.requests - region.succeeded)
    assert s.users_affected == sum(r.users_affected for r in s.regions.values())  # the union over regions
    per_fault = [f.blast_radius.users for f in s.faults]
    assert all(0 <= u <= s.users_affected for u in per_fault)
    # summary.json: the same fields.
    d = result.summary
    assert (d["users"], d["users_affected"]) == (total, s.users_affected)
    assert {k: r["users_affected"] for k, r in d["regions"].items()} == {
        k: r.users_affected for k, r in s.regions.items()}
    assert [f["blast_radius"]["users"] for f in d["faults"]] == per_fault
    # The CLI, report.md and the HTML report.
    text = format_summary(d, None)
    md = render_markdown(result)
    page = headline(s, tell(result)) + regions_table(s, list(users)) + faults_table(s)
    assert f'id="kpi-users" data-value="{s.users_affected}"' in page
    assert _markdown_faults(md) == per_fault
    if s.faults:
        assert _html_column(page, "faults", "Users affected (est.)") == [f"{u:,}" for u in per_fault]
    shown = [f"{s.regions[r].users_affected:,}" if users[r] else "—" for r in users]
    assert _html_column(page, "regions", "Users affected (est.)") == shown
    if total:
        assert f"users         {s.users_affected:,} of {total:,} affected" in text
        assert f"| Users affected | ~{s.users_affected:,} of {total:,} " in md
    else:
        assert "users         " not in text and "| Users affected | — |" in md
    # The experiments' metrics read the same fields.
    names = ["users_affected", *(f"regions.{r}.users_affected" for r in users),
             *(f"faults.{f.id}.blast_radius.users" for f in s.faults)]
    row = extract(d, names)
    assert row == extract(s, names)
    assert list(row.values()) == [s.users_affected, *(s.regions[r].users_affected for r in users), *per_fault]


@pytest.mark.parametrize("key", BY_SCENARIO)
def test_every_shipped_scenario_counts_users_once(runs, key):
    assert_users_counted_once(runs[key])


def with_users(scenario: sim.Scenario, counts: list[int]) -> sim.Scenario:
    regions = [r.model_copy(update={"users": n}) for r, n in zip(scenario.topology.regions, counts, strict=True)]
    return scenario.model_copy(update={"topology": scenario.topology.model_copy(update={"regions": regions})})


@pytest.mark.parametrize("key", BY_SCENARIO)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_users_affected_never_exceeds_the_users_for_any_user_counts(runs, key, data):
    """The same run summed up with other user counts, few (far fewer than failures) or many."""
    result = runs[key]
    n = len(result.scenario.topology.regions)
    counts = data.draw(st.lists(st.integers(0, 30) | st.integers(0, 10**9), min_size=n, max_size=n))
    scenario = with_users(result.scenario, counts)
    stats = summarize(scenario, result.cluster, result.recorder, result.trace, result.seed)
    again = Result(scenario=scenario, seed=result.seed, stats=stats, trace=result.trace, recorder=result.recorder,
                   cluster=result.cluster)
    assert_users_counted_once(again)
    failed = {r: region.requests - region.succeeded for r, region in stats.regions.items()}
    for (name, region), users in zip(stats.regions.items(), counts, strict=True):
        if users and failed[name] >= 50 * users:  # failures swamp the users: every one of them was hit
            assert region.users_affected == users


@group("monday-morning.yaml")
def test_users_affected_stay_within_the_failures_where_a_window_holds_a_success_over(runs):
    """Found by the property above: Monday morning's flow run had windows one success over their requests
    (its successes and failures were rounded apart), so the clamped windows summed to one failure more than
    requests less successes, and with 424,701,719 users in europe its users affected (84,965) were one more
    than its failed requests. No engine writes such a window now (tests/test_flow_engine.py checks every
    shipped run's windows); the summary still holds if a recorder does: here one window is made so."""
    result = runs["monday-morning.yaml"]
    recorder = copy.deepcopy(result.recorder)
    w = max(range(recorder.n), key=lambda i: recorder.requests[0][i] - recorder.ok[0][i])  # europe's worst window
    assert recorder.ok[0][w] < recorder.requests[0][w]
    over = w + 1 if w + 1 < recorder.n else w - 1  # a window next to it, one success over
    recorder.ok[0][over] = recorder.requests[0][over] + 1
    scenario = with_users(result.scenario, [424_701_719, 0])
    stats = summarize(scenario, result.cluster, recorder, result.trace, result.seed)
    assert_users_counted_once(Result(scenario=scenario, seed=result.seed, stats=stats, trace=result.trace,
                                     recorder=recorder, cluster=result.cluster))


@group("monday-morning.yaml")
def test_overlapping_faults_share_the_failures_out(runs):
    """Monday morning's three faults overlap; each used to claim every user of europe (120 M of 65 M)."""
    s = runs["monday-morning.yaml"].stats
    active = [f for f in s.faults if f.occurrences]
    assert len(active) == 3 and all(f.downtime_minutes > 0 for f in active)  # the windows are shared...
    assert 0 < s.users_affected < s.regions["europe"].users
    assert sum(f.blast_radius.users for f in active) <= s.users_affected * 1.001  # ...the failures are not
    assert max(active, key=lambda f: f.blast_radius.users).id == "mbx-v2-rollout"
    # The worst fault is one with the most minutes below the objective (the windows are shared, so the
    # three may tie; then the breaches blamed on each decide, see sim.metrics).
    worst = next(f for f in active if f.id == s.worst_fault)
    assert worst.downtime_minutes == max(f.downtime_minutes for f in active)


@group("quickstart.yaml")
def test_a_stored_run_reads_the_same_typed_summary(runs, tmp_path):
    result = runs["quickstart.yaml"]
    stored = load_results(result.write_report(tmp_path / "out"))
    assert isinstance(stored.stats, Summary) and stored.stats == result.stats
    assert stored.summary == result.summary == result.stats.as_dict()
    assert tell(stored).headline == tell(result).headline


def test_experiment_rows_never_count_more_users_than_there_are():
    """A tiny replication and comparison: the rows hold the summary's own figures."""
    base = sim.load_scenario(ROOT / "scenarios" / "quickstart.yaml", {"engine": "flow", "duration": "15m"})
    brittle = base.model_copy(update={"name": "brittle", "policies": base.policies.model_copy(
        update={"client": base.policies.client.model_copy(update={"retries": 0})})})
    metrics = ["availability", "users_affected", "regions.europe.users_affected",
               "faults.crash-mbx-we-03.blast_radius.users", "counts.failed"]
    reps = sim.replicate(base, replications=2, metrics=metrics, executor="here")
    cmp = sim.compare({"retries": base, "no-retries": brittle}, replications=2, metrics=metrics, executor="here")
    rows = [*reps.rows, *cmp.rows]
    for row in rows:
        assert 0 <= row["faults.crash-mbx-we-03.blast_radius.users"] <= row["users_affected"]
        assert row["users_affected"] == row["regions.europe.users_affected"] <= min(2_000_000, row["counts.failed"])
    first = reps.rows[0]
    assert first["users_affected"] == sim.run(base, seed=first["seed"]).stats.users_affected
    # Two layouts whose availability differs no longer report the same users affected.
    (a, b) = (cmp.intervals[name]["availability"].mean for name in cmp.layouts)
    (ua, ub) = (cmp.intervals[name]["users_affected"].mean for name in cmp.layouts)
    assert a > b and ua < ub


# ------------------------------------------------------------------------------------------ purity


def _state(obj: Any) -> dict[str, Any]:
    """Everything an object holds, copied (a recorder's mail recorder too)."""
    return {k: _state(v) if isinstance(v, MailRecorder) else copy.deepcopy(v) for k, v in vars(obj).items()}


@group("mechanisms/mail-backlog.yaml")
def test_summarize_changes_neither_the_log_nor_the_recorder(runs):
    result = runs["mechanisms/mail-backlog.yaml"]
    assert result.recorder.mail is not None and any(e.kind == "slo_breach" for e in result.trace.records)
    records, recorder = list(result.trace.records), _state(result.recorder)
    again = summarize(result.scenario, result.cluster, result.recorder, result.trace, result.seed)
    assert result.trace.records == records  # no slo_breach appended a second time
    assert _state(result.recorder) == recorder
    assert again == result.stats.model_copy(update={"manifest": Manifest()})  # and the same answer


def test_slo_events_are_written_once_by_their_own_step(make_scenario):
    outage = {"id": "out", "kind": "server_crash", "target": {"datacenters": ["dc-a"]}, "at": "2m", "duration": "2m"}
    result = sim.run(make_scenario({"duration": "6m", "faults": [outage]}), seed=1)
    slo = [(e.kind, e.node, e.time) for e in result.trace.records if e.kind.startswith("slo_")]
    assert slo and len(slo) == len(set(slo))
    breaches = {e.fault for e in result.trace.records if e.kind == "slo_breach"}
    assert result.stats.fault("out").blast_radius.regions_breached == (1 if "out" in breaches else 0)


@group("mechanisms/mail-backlog.yaml")
def test_summary_sections_are_typed_and_frozen(runs):
    s = runs["mechanisms/mail-backlog.yaml"].stats
    assert s.mail is not None and s.mail.delivered > 0 and s.latency.p99 is not None
    assert runs["quickstart.yaml"].stats.mail is None and "mail" not in runs["quickstart.yaml"].summary
    with pytest.raises(Exception, match="frozen"):
        s.users_affected = 0  # type: ignore[misc]
    assert Summary.from_dict(s.as_dict()) == s


@group("mechanisms/retry-storm.yaml")
def test_a_scenario_without_user_counts_says_so(runs):
    result = runs["mechanisms/retry-storm.yaml"]
    assert result.stats.users == 0 and result.stats.users_affected == 0
    assert result.stats.requests > result.stats.succeeded  # failures, but no users to count them against
    page = headline(result.stats, tell(result))
    assert "the scenario gives no user counts" in page


def test_tiny_user_counts_are_never_exceeded(make_scenario):
    """Three users and a datacenter outage: thousands of failures hit all three, and no more."""
    outage = {"id": "dark", "kind": "datacenter_outage", "target": {"ids": ["dc-a"]}, "at": "1m", "duration": "3m"}
    scenario = make_scenario({"duration": "5m", "faults": [outage], "topology": {"regions": [
        {"id": "users", "users": 3, "datacenters": {"dc-a": "10ms", "dc-b": "40ms"}}]}})
    result = sim.run(scenario, seed=2)
    assert result.stats.requests - result.stats.succeeded > 100
    assert result.stats.users_affected == result.stats.fault("dark").blast_radius.users == 3
    assert_users_counted_once(result)
