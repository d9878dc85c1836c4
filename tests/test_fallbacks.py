"""Fallbacks (``policies.server.fallbacks``): a degraded answer when a dependency fails, counted apart, and
availability reported strict and degraded-inclusive. The mechanism is in ``tests/test_mechanisms.py``
(``fallback.yaml``).
"""

from __future__ import annotations

import pytest

import sim
from sim.errors import ScenarioError
from sim.policies import unsupported_on_flow
from sim.summary import Summary
from tests.conftest import cause_chain, scenario_from

DEPENDENCY = {"topology": {"dependencies": [{"id": "directory", "workers": 4, "service_time": "20ms"}]},
              "workload": {"requests": {"sign_in": {"share": "20%", "dependencies": ["directory"]},
                                        "read": {"share": "80%"}}}}


def test_fallbacks_are_validated_at_load_with_their_line():
    with pytest.raises(ScenarioError) as info:
        scenario_from({**DEPENDENCY, "policies": {"server": {"fallbacks": ["directroy"]}}})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith("policies.server.fallbacks[0]: no dependency 'directroy' (did you mean "
                                 "'directory'?); known: directory")


def test_the_flow_engine_refuses_fallbacks_with_their_line():
    fallbacks = {"policies": {"server": {"fallbacks": ["directory"]}}}
    [(path, message)] = unsupported_on_flow(scenario_from({**DEPENDENCY, **fallbacks}))
    assert path == ("policies", "server", "fallbacks") and message.startswith("a fallback has no fluid view")
    with pytest.raises(ScenarioError) as info:
        scenario_from({**DEPENDENCY, **fallbacks, "engine": "flow"})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:") and str(problem).endswith(f"policies.server.fallbacks: {message}")


@pytest.mark.parametrize("retries", [0, 2])
def test_a_dependency_that_fails_for_good_is_answered_degraded(retries: int):
    """The directory is down for the whole run: every sign-in is answered degraded after its dependency
    calls (1 + retries each), no user request fails, and strict availability leaves the sign-ins out."""
    result = sim.run(scenario_from({
        **DEPENDENCY, "duration": "1m",
        "policies": {"server": {"fallbacks": ["directory"], "dependency_retries": retries}},
        "faults": [{"id": "dir-down", "kind": "dependency_outage", "target": {"ids": ["directory"]}, "at": "0s",
                    "duration": "1m"}],
    }))
    s = result.summary
    counts = s["counts"]
    sign_ins = counts["degraded"]
    assert counts["failed"] == 0 and s["availability"] == 1.0
    assert counts["dep_attempts"] == (1 + retries) * sign_ins and counts["attempts"] == s["requests"]
    assert s["availability_strict"] == pytest.approx(1 - sign_ins / s["requests"])
    assert 0.2 - 0.03 < sign_ins / s["requests"] < 0.2 + 0.03  # the sign-ins' share
    assert sum(r["degraded"] for r in result.timeseries) == sign_ins
    [start, end] = [e for e in result.events if e["kind"].startswith("fallback")]
    assert (start["kind"], end["kind"], start["node"]) == ("fallback_serving", "fallback_ended", "directory")
    assert end["cause"] == start["id"]
    assert cause_chain(result, start) == ["fallback_serving", "dependency_down", "fault_start"]


def test_without_fallbacks_strict_is_the_availability_and_old_summaries_still_load():
    s = sim.run(scenario_from({"duration": "1m"})).summary
    assert s["counts"]["degraded"] == 0 and s["availability_strict"] == s["availability"]
    old = dict(s)
    del old["availability_strict"]
    assert Summary.from_dict(old).availability_strict is None


def test_the_summary_and_the_reports_give_the_strict_availability_beside_it(tmp_path):
    """Where answers were degraded, the run's summary, report.md and report.html give both figures."""
    from sim.cli.text import format_summary

    result = sim.run(scenario_from({
        **DEPENDENCY, "duration": "1m", "policies": {"server": {"fallbacks": ["directory"]}},
        "faults": [{"id": "dir-down", "kind": "dependency_outage", "target": {"ids": ["directory"]}, "at": "0s",
                    "duration": "1m"}],
    }))
    s = result.stats
    degraded = s.counts["degraded"]
    strict = sim.units.format_percent(s.availability_strict)
    assert degraded > 0 and s.availability_strict is not None and s.availability_strict < 0.9
    text = format_summary(s, None)
    assert f"  strict        {strict}  ({degraded:,} answers degraded by a fallback" in text
    result.write_report(tmp_path / "r")
    assert f"strict {strict} ({degraded:,} answers degraded by a fallback left out)" in \
        (tmp_path / "r" / "report.md").read_text()
    assert f"strict {strict} ({degraded:,} degraded answers left out)" in (tmp_path / "r" / "report.html").read_text()
    quiet = format_summary(sim.run(scenario_from({**DEPENDENCY, "duration": "1m"})).stats, None)
    assert "strict" not in quiet  # nothing degraded: one figure
