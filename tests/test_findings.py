"""The finding at the top of each report: what the numbers support, in words, from made-up rows.

No simulation: comparisons, replications and sweep results are built from rows written here (sweeps from
a sweep file the loader checks, which runs nothing). Each wording test is paired with the case that must
not say it — a layout "wins" only on a significant verdict.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import sim
from sim.experiments import Comparison, Replications, SweepResult, load_sweep
from sim.experiments.findings import (
    comparison_finding,
    replications_finding,
    rerun_command,
    slo_status,
    sweep_finding,
)
from sim.experiments.metrics import METRICS
from sim.experiments.report import render_comparison, render_replications, render_sweep
from sim.experiments.text import fmt_interval
from sim.topology import EXAMPLE
from tests.conftest import BASE, merge, scenario_from

ROOT = Path(__file__).resolve().parents[1]
AVAILABILITY = METRICS["availability"]
DOWNTIME = METRICS["downtime_minutes"]
SLO_MET = METRICS["slo.met"]
METASTABLE = METRICS["recovery.metastable"]


@pytest.fixture(scope="module")
def example():
    return sim.parse_scenario(EXAMPLE)


def crash(fault_id: str) -> dict:
    return {"id": fault_id, "kind": "server_crash", "target": {"ids": ["a-01"]}, "at": "1m", "duration": "1m"}


def comparison(scenarios, a: list[float], b: list[float]) -> Comparison:
    """Layouts ``a`` and ``b`` with these availabilities by replication (downtime follows them)."""
    rows = [
        {"layout": layout, "replication": i, "seed": 100 + i, "availability": v,
         "downtime_minutes": round((1 - v) * 1000, 6)}
        for layout, values in (("a", a), ("b", b))
        for i, v in enumerate(values)
    ]
    return Comparison(["a", "b"], list(scenarios), [AVAILABILITY, DOWNTIME], rows, 1)


A8 = [0.990, 0.992, 0.985, 0.991, 0.988, 0.993, 0.989, 0.990]


# ------------------------------------------------------------------------------------------ comparison


def test_a_significant_winner_wins_with_its_paired_interval(example):
    lead = [4, 5, 3, 6, 4, 5, 4, 5]  # thousandths
    cmp = comparison([example, example], A8, [x + d / 1000 for x, d in zip(A8, lead, strict=True)])
    win = cmp.winners["availability"]
    assert win.layout == "b" and win.significant and win.verdict.test == "paired t"
    text = comparison_finding(cmp)
    diff = fmt_interval(AVAILABILITY, win.difference, diff=True)
    assert f"b wins on availability: 99.425% against a's 98.98%, a paired difference of {diff} per replication " \
           "(paired t, 8 pairs, significant at 95%)." in text
    assert "b wins on downtime below the SLO" in text


def test_a_difference_that_is_not_significant_names_no_winner(example):
    noise = [0.004, -0.003, 0.002, -0.004, 0.003, -0.002, 0.005, -0.004]
    cmp = comparison([example, example], A8, [x + d for x, d in zip(A8, noise, strict=True)])
    win = cmp.winners["availability"]
    assert win.layout == "b" and win.verdict.status == "not significant"
    text = comparison_finding(cmp)
    diff = fmt_interval(AVAILABILITY, win.difference, diff=True)
    assert "[−" in diff and ", +" in diff  # the interval holds zero
    assert (f"b has the higher mean availability (98.99% against a's 98.98%), but the paired difference, {diff} "
            "(paired t, 8 pairs), is not significant: neither can be said to win on it.") in text
    assert " wins " not in text


def test_too_few_replications_name_no_winner_however_large_the_difference(example):
    cmp = comparison([example, example], A8[:3], [x + 0.005 for x in A8[:3]])
    assert cmp.winners["availability"].verdict.status == "not enough replications"
    text = comparison_finding(cmp)
    assert text.startswith(
        "With 3 replications of each layout, no layout can be said to win on anything: a verdict needs at least "
        "6 paired replications. Means so far, not a ranking: availability a 98.9%, b 99.4%;"
    )
    assert " wins " not in text


@pytest.mark.parametrize("seed", range(12))
def test_wins_is_said_exactly_when_the_verdict_is_significant(example, seed):
    """Random made-up layouts: sometimes a clear lead, sometimes noise, sometimes too few pairs."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([3, 6, 10]))
    a = list(np.clip(rng.normal(0.99, 0.004, n), 0, 1))
    b = list(np.clip(np.array(a) + rng.normal(float(rng.choice([0.0, 0.003])), 0.003, n), 0, 1))
    cmp = comparison([example, example], a, b)
    text = comparison_finding(cmp)
    for metric, title in (("availability", "availability"), ("downtime_minutes", "downtime below the SLO")):
        win = cmp.winners[metric]
        assert (f"{win.layout} wins on {title}:" in text) == win.significant, (text, win)


def test_layouts_that_share_no_fault_say_their_failures_were_not_matched():
    west = scenario_from({"faults": [crash("west-crash")]})
    east = scenario_from({"faults": [crash("east-crash")]})
    text = comparison_finding(comparison([west, east], A8, A8[::-1]))
    assert text.endswith(
        "The layouts share no fault by id, so their failures were drawn independently, not matched replication "
        "by replication (only a has west-crash; only b has east-crash)."
    )


def test_shared_faults_are_named_with_each_layouts_own():
    one = scenario_from({"faults": [crash("crash")]})
    two = scenario_from({"faults": [crash("crash"), {**crash("second"), "at": "3m"}]})
    text = comparison_finding(comparison([one, two], A8, A8[::-1]))
    assert text.endswith(
        "Every layout met the same failures in each replication (1 fault shared by id: crash); only b has second."
    )


def test_the_comparison_page_opens_with_its_finding(example):
    cmp = comparison([example, example], A8, [x + 0.004 for x in A8])
    page = render_comparison(cmp)
    assert page.index('id="finding"') < page.index("<h2>")
    assert "b wins on availability" in page


# ------------------------------------------------------------------------------------------ replications


def replications(example, values: list[tuple[float, float]], metrics=(AVAILABILITY, DOWNTIME, SLO_MET)):
    rows = [
        {"replication": i, "seed": 100 + i, "engine": "requests", "availability": a, "downtime_minutes": d,
         "slo.met": a >= 0.999}
        for i, (a, d) in enumerate(values)
    ]
    return Replications(example, list(metrics), rows, 1)


def test_the_replications_finding_gives_the_interval_the_slo_share_and_the_worst_run(example):
    reps = replications(example, [(0.9, 3.0), (0.95, 2.0), (0.93, 2.0), (0.8, 4.5), (0.91, 3.0)])
    text = replications_finding(reps)
    iv = fmt_interval(AVAILABILITY, reps.interval("availability"), label=True)
    assert text == (
        f"Over 5 replications, availability was {iv}, below the 99.9% objective: the whole interval is under it. "
        "The SLO was met in 0 of 5 runs: 0% of runs [0%, 43%] (95% CI, Wilson). The worst replication is number 3 "
        "(seed 103): availability 80%, downtime below the SLO 4 min 30 s; “cascadesim run SCENARIO --seed 103 "
        "--engine requests” reruns it."
    )


def test_an_interval_across_the_objective_is_said_to_be_undecided(example):
    reps = replications(example, [(0.9999, 0.0), (0.999, 0.0), (1.0, 0.0), (0.995, 1.0), (0.9995, 0.0)])
    text = replications_finding(reps)
    assert "the interval straddles the 99.9% objective, so these runs cannot say on which side of it" in text
    assert "The SLO was met in 4 of 5 runs" in text and "number 3 (seed 103)" in text
    assert "below the 99.9% objective" not in text and "meeting the" not in text


def test_without_slo_met_the_share_comes_from_availability(example):
    reps = replications(example, [(0.9999, 0.0), (0.995, 1.0)], metrics=(AVAILABILITY, DOWNTIME))
    assert "Availability reached the 99.9% objective in 1 of 2 runs." in replications_finding(reps)


def test_the_worst_run_is_the_most_downtime_then_the_lowest_availability(example):
    reps = replications(example, [(0.99, 2.0), (0.95, 2.0), (0.999, 3.0), (0.97, 0.0)])
    assert [r["replication"] for r in reps.worst_runs(3)] == [2, 1, 0]
    assert rerun_command(reps.worst_runs(1)[0]) == "cascadesim run SCENARIO --seed 102 --engine requests"


def test_the_replications_page_opens_with_its_finding_and_lists_the_worst_runs(example):
    reps = replications(example, [(0.9, 3.0), (0.95, 2.0), (0.93, 2.0), (0.8, 4.5), (0.91, 3.0)])
    page = render_replications(reps)
    assert page.index('id="finding"') < page.index("<h2>")
    worst = page[page.index('id="worst"'):]
    found = re.findall(r'<tr><td class="num">(\d+)</td><td class="num">(\d+)</td>', worst)
    assert found == [("3", "103"), ("0", "100"), ("4", "104"), ("2", "102"), ("1", "101")]
    assert "<code>cascadesim run SCENARIO --seed 103 --engine requests</code>" in worst
    assert 'id="fig-availability"' in page and 'id="fig-downtime-minutes"' in page


# ------------------------------------------------------------------------------------------ sweep


def one_parameter_sweep(tmp_path: Path, metrics: list[str]):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(merge(BASE, {"name": "base"}), sort_keys=False))
    spec = {"name": "retries", "base": "base.yaml", "parameters": {"policies.client.retries": [0, 1, 2, 3]},
            "design": "grid", "replications": 4, "seed": 1, "metrics": metrics}
    (tmp_path / "retries.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_sweep(tmp_path / "retries.yaml")


def sweep_result(sweep, availability, metastable=lambda params, i: False) -> SweepResult:
    """Made-up rows of every point: ``availability`` and ``metastable`` from the parameters and the replication,
    the sweep's other metrics a constant (recovered: not metastable)."""
    rows = []
    for pt in sweep.points:
        for i in range(sweep.replications):
            stuck = metastable(pt.params, i)
            made = {"availability": availability(pt.params, i), "recovery.metastable": stuck,
                    "recovery.recovered": not stuck}
            row = {"point": pt.index, "replication": i, "seed": i, **pt.params}
            row.update({m.name: made.get(m.name, 1.0) for m in sweep.metrics})
            rows.append(row)
    return SweepResult(sweep, rows)


def test_a_sweep_says_the_slo_breaks_from_a_parameter_value_on(tmp_path):
    sweep = one_parameter_sweep(tmp_path, ["availability", "recovery.metastable"])

    def availability(params, i):
        return (0.95 if params["policies.client.retries"] >= 2 else 0.9995) + 0.0001 * i

    result = sweep_result(sweep, availability, lambda params, i: params["policies.client.retries"] == 3 and i < 3)
    text = sweep_finding(result)
    lowest = fmt_interval(AVAILABILITY, result.intervals[2]["availability"])
    assert text.startswith(
        "Availability is below the 99.9% objective (its whole 95% interval) wherever client retries is 2 or more "
        f"(2 of 4 points); the lowest is {lowest} at client retries 2. It meets the objective at 2 points."
    )
    assert text.endswith(
        "Most runs did not recover after the last fault ended (metastable) wherever client retries is 3 (the "
        "most swept) (1 of 4 points)."
    )
    page = render_sweep(result)
    assert page.index('id="finding"') < page.index("<h2>")


def test_a_sweep_breaking_below_a_value_and_a_point_too_close_to_call(tmp_path):
    sweep = one_parameter_sweep(tmp_path, ["availability"])
    spread = {0: [0.95, 0.96, 0.95, 0.96], 1: [0.9995, 0.9996, 0.9995, 0.9996], 2: [0.998, 1.0, 0.998, 1.0],
              3: [0.9995, 0.9996, 0.9995, 0.9996]}
    result = sweep_result(sweep, lambda params, i: spread[params["policies.client.retries"]][i])
    assert [slo_status(result, pt) for pt in sweep.points] == ["breaks", "holds", "unclear", "holds"]
    text = sweep_finding(result)
    assert "wherever client retries is 0 (the least swept) (1 of 4 points)" in text
    assert text.endswith("It meets the objective at 2 points and is too close to call at 1.")


def test_a_sweep_where_nothing_breaks_says_so_and_names_the_lowest_point(tmp_path):
    sweep = one_parameter_sweep(tmp_path, ["availability", "recovery.metastable"])
    result = sweep_result(sweep, lambda params, i: 0.9999 - 0.0001 * params["policies.client.retries"] + 1e-5 * i)
    text = sweep_finding(result)
    lowest = fmt_interval(AVAILABILITY, result.intervals[3]["availability"])
    assert text.startswith("No point's availability is below the 99.9% objective (its whole 95% interval) at any of "
                           f"the 4 points; the lowest is {lowest} at client retries 3.")
    assert text.endswith("No run went metastable: every run recovered after the last fault ended, at all 4 points.")


def test_a_region_over_two_parameters_is_named_by_both(tmp_path):
    sweep = load_sweep(ROOT / "scenarios" / "sweeps" / "retry-storm-retries-load.yaml")  # checked, not run

    def storm(params):
        return params["policies.client.retries"] >= 2 and params["workload.regions.users.peak"] >= 10

    result = sweep_result(sweep, lambda params, i: (0.9 if storm(params) else 0.9995) + 0.0001 * i,
                          lambda params, i: storm(params) and params["workload.regions.users.peak"] >= 12)
    text = sweep_finding(result)
    assert "Availability is below the 99% objective (its whole 95% interval) wherever client retries is 2 or more " \
           "and users peak is 10/s or more (6 of 20 points)" in text
    assert "(metastable) wherever client retries is 2 or more and users peak is 12/s or more (4 of 20 points)." in text


def test_a_region_no_threshold_describes_is_listed_by_its_points(tmp_path):
    sweep = one_parameter_sweep(tmp_path, ["availability"])
    result = sweep_result(sweep, lambda params, i: 0.95 + 0.001 * i if params["policies.client.retries"] in (0, 2)
                          else 0.9995)
    assert "below the 99.9% objective (its whole 95% interval) at client retries 0 and client retries 2 (2 of 4 " \
           "points)" in sweep_finding(result)


def test_a_boundary_that_steps_is_named_step_by_step(tmp_path):
    """The retries × load map as it comes out: the SLO breaks from a lower load the more retries there are."""
    sweep = load_sweep(ROOT / "scenarios" / "sweeps" / "retry-storm-retries-load.yaml")
    from_peak = {0: 12, 1: 10, 2: 10, 3: 10}  # below the objective from this load on
    stuck_from = {0: 99, 1: 14, 2: 12, 3: 10}  # metastable from this load on

    def point(params):
        return params["policies.client.retries"], params["workload.regions.users.peak"]

    result = sweep_result(
        sweep,
        lambda params, i: (0.5 if point(params)[1] >= from_peak[point(params)[0]] else 0.9995) + 0.0001 * i,
        lambda params, i: point(params)[1] >= stuck_from[point(params)[0]],
    )
    text = sweep_finding(result)
    assert "below the 99% objective (its whole 95% interval) wherever users peak is 12/s or more with client " \
           "retries 0, or 10/s or more with client retries 1, 2 or 3 (11 of 20 points)" in text
    assert "(metastable) wherever users peak is 14/s (the most swept) with client retries 1, 12/s or more with " \
           "client retries 2, or 10/s or more with client retries 3 (6 of 20 points)." in text
