"""The outage as a story (headline, milestones), report.md, the cascade graph's groups, node states."""

from __future__ import annotations

import networkx as nx
import pytest

import sim
from sim.report.html.cascade import MAX_GROUPS_PER_ROOT, cascade_figure, cascade_groups
from sim.report.html.topology import node_states
from sim.report.markdown import md_escape, render_markdown
from sim.report.story import tell
from sim.summary import Summary
from tests.conftest import scenario_from
from tests.test_report_stored import CASCADE


@pytest.fixture(scope="module")
def run():
    return sim.run(scenario_from(CASCADE), seed=3)


def test_milestones_tell_the_outage_in_order(run):
    story = tell(run)
    keys = [k for m in story.milestones for k in m.keys]
    assert keys[0] == "trigger" and story.trigger_time == 180.0
    assert {"trigger", "crash", "ejection", "detection", "mitigation", "recovery"} <= set(keys)
    times = [m.time for m in story.milestones]
    assert times == sorted(times)
    by_key = {k: m for m in story.milestones for k in m.keys}
    crash = by_key["crash"]
    assert crash.event["kind"] == "server_down" and crash.root["kind"] == "fault_start"
    assert crash.cause["id"] == crash.event["cause"]
    assert by_key["mitigation"].event["kind"] == "fault_end" and by_key["mitigation"].time == 420.0
    # Each milestone's chain runs back to the root fault.
    for m in story.milestones:
        if m.chain:
            assert m.root["kind"] == "fault_start" and m.root["cause"] is None
    assert story.offset(180.0 + 75) == "t+1:15"


def test_headline_users_affected_and_recovery(run):
    h = tell(run).headline
    s = run.summary
    assert h.availability == s["availability"] and h.slo_met == s["slo"]["met"]
    # Users affected is the summary's own field, not recomputed by the story.
    assert (h.users_total, h.users_affected) == (1000, run.stats.users_affected) == (1000, s["users_affected"])
    failed = s["requests"] - s["succeeded"]
    assert failed > 0 and 0 < h.users_affected < min(failed, 1000)
    window = s["slo"]["window"]
    bad = [r for r in run.timeseries if r["requests"] and r["ok"] / r["requests"] < s["slo"]["availability"]]
    if bad:
        assert h.recovered_at == max(r["time"] for r in bad) + window
    amp = [(r["attempts"] / r["requests"], r["time"]) for r in run.timeseries if r["requests"]]
    assert (h.peak_amplification, h.peak_amplification_at) == max(amp, key=lambda a: (a[0], -a[1]))


def test_markdown_has_the_headline_and_the_timeline(run):
    text = render_markdown(run)
    assert text.startswith("# unit: SLO ")
    assert (
        "| Availability |" in text and "| Users affected |" in text and "| Peak retry amplification |" in text
    )
    assert "## Incident timeline" in text and "| t+0:00 | 0:03:00 | Trigger |" in text
    assert "fault\\_start crash" in text  # causes are named, escaped for Markdown


def test_markdown_escapes_names():
    assert (
        md_escape("</script><script>alert(1)</script>")
        == "\\</script\\>\\<script\\>alert\\(1\\)\\</script\\>"
    )
    assert md_escape("# [x](javascript:1) | y") == "\\# \\[x\\]\\(javascript:1\\) \\| y"


def _events(*rows):
    return [
        {"id": i, "time": float(t), "kind": k, "node": n, "cause": c, "fault": f, "detail": ""}
        for i, (t, k, n, c, f) in enumerate(rows)
    ]


@pytest.fixture
def graph():
    G = nx.Graph()
    for dc in ("dc-a", "dc-b"):
        G.add_node(dc, kind="datacenter")
        for k in range(3):
            G.add_node(f"{dc}-{k}", kind="server", datacenter=dc)
    G.add_node("db-1", kind="database")
    return G


def test_cascade_collapses_repeats_and_skips_recoveries(graph):
    events = _events(
        (0, "fault_start", "f", None, "f"),  # 0
        (0, "server_down", "dc-a-0", 0, "f"),  # 1
        (0, "server_down", "dc-a-1", 0, "f"),  # 2  same kind and place: one group of 2
        (0, "database_unavailable", "db-1", 1, "f"),  # 3
        (30, "failover", "db-1", 3, "f"),  # 4
        (40, "overloaded", "dc-b-0", 4, "f"),  # 5
        (50, "overload_cleared", "dc-b-0", 5, "f"),  # 6  a recovery: not drawn
        (55, "overloaded", "dc-b-1", 6, "f"),  # 7  ... but what it led to is, merged with 5
        (60, "overloaded", "dc-b-2", 7, "f"),  # 8  a repeat of its cause: same group
        (90, "fault_end", "f", 0, "f"),  # 9  recovery
        (90, "server_up", "dc-a-0", 9, "f"),  # 10 recovery
        (200, "fault_start", "f", None, "f"),  # 11 the same fault again: the same root
    )
    groups, roots = cascade_groups(events, graph)
    assert len(roots) == 1
    root = groups[roots[0]]
    assert root.count == 2 and root.fault == "f"
    kinds = {(g.kind, g.place): g.count for g in groups.values() if g.parent is not None}
    assert kinds == {
        ("server_down", "dc-a"): 2,
        ("database_unavailable", "database"): 1,
        ("failover", "database"): 1,
        ("overloaded", "dc-b"): 3,
    }
    assert root.below == 7
    overloaded = next(g for g in groups.values() if g.kind == "overloaded")
    assert (overloaded.first, overloaded.last) == (40.0, 60.0)


def test_cascade_graph_is_capped_and_links_to_the_timeline(graph):
    rows = [(0, "fault_start", "f", None, "f")]
    for k in range(200):  # 200 distinct kinds in a chain: deeper than the cap
        rows.append((k + 1, f"kind_{k}", "dc-a-0", k, "f"))
    events = _events(*rows)

    class R:
        scenario = type("S", (), {"duration": 600.0})()
        stats = Summary.from_dict({
            "availability": 0.9, "nines": 1.0, "downtime_minutes": 1.0, "requests": 10, "succeeded": 9,
            "amplification": 1.0, "latency": {"p50": None, "p99": None}, "slo": {"availability": 0.99, "window": 60.0,
                                                                              "met": False},
            "faults": [{"id": "f", "kind": "server_crash", "blast_radius": {"users": 5}, "downtime_minutes": 1.0}],
        })

    R.events = events
    fig, stats = cascade_figure(R, graph, lambda eid: f"#ev-{eid}")
    assert stats["groups"] == 201 and stats["groups_drawn"] == MAX_GROUPS_PER_ROOT
    points = [t for t in fig.data if t.mode == "markers+text"]
    assert sum(len(t.x) for t in points) == MAX_GROUPS_PER_ROOT
    assert all(str(c).startswith("#ev-") for t in points for c in t.customdata)
    root = next(t for t in points if t.name == "fault")
    assert "~5 users affected" in root.hovertext[0] and "impact: 200 events followed" in root.hovertext[0]


def test_node_states_pair_starts_and_ends():
    events = _events(
        (10, "server_down", "s", None, None),
        (20, "ejected", "s", None, None),
        (30, "server_up", "s", None, None),
        (40, "link_degraded", "a~b", None, None),
        (45, "link_degraded", "a~b", None, None),  # stacked: still one condition
        (50, "link_restored", "a~b", None, None),
        (60, "slo_breach", "europe", None, None),  # never recovers: to the end
        (70, "readmitted", "t", None, None),  # an end without a start: ignored
    )
    assert node_states(events, 100.0) == {
        "s": [(10.0, 30.0, 3), (20.0, 100.0, 2)],
        "a~b": [(40.0, 50.0, 1)],
        "europe": [(60.0, 100.0, 3)],
    }
