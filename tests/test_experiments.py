"""Experiments: intervals, seeds, replications, the results store, resume, executors and worker deaths."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sim
from sim.experiments import InProcess, ProcessPool, RunFailed, replicate
from sim.experiments.metrics import METRICS, extract, metric_names
from sim.experiments.plan import Experiment, Point, replication_seed
from sim.experiments.runner import MemoryStore, execute, run_experiment
from sim.experiments.stats import mean_interval, paired_interval, t_quantile
from sim.experiments.store import ResultStore, StoreError, atomic_write, load_results
from tests.test_cli import cli

# A tiny scenario: two minutes at 50 requests/s, servers that crash at random (so replications differ).
TINY = {
    "duration": "2m",
    "faults": [{"id": "crashes", "kind": "server_crash", "target": {}, "mtbf": "10m", "mttr": "30s"}],
}


@pytest.fixture(scope="module")
def tiny():
    from tests.conftest import scenario_from

    return scenario_from(TINY)


@pytest.fixture(scope="module")
def pool():
    with ProcessPool(2) as executor:
        yield executor


def experiment(scenario, metrics=("availability", "counts.failed", "recovery.recovered", "worst_fault")):
    known = metric_names(scenario)
    return Experiment("replications", scenario.name, [Point(0, scenario)], [known[m] for m in metrics], 5)


# ------------------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    "p, df, expected",
    [
        (0.975, 1, 12.7062),
        (0.975, 2, 4.3027),
        (0.975, 4, 2.7764),
        (0.975, 9, 2.2622),
        (0.975, 29, 2.0452),
        (0.995, 30, 2.7500),
        (0.975, 1000, 1.9623),
    ],
)
def test_t_quantile_matches_the_table(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-4)


def test_mean_interval_and_paired_difference():
    iv = mean_interval([1.0, 2.0, 3.0, None])
    assert iv.n == 3 and iv.mean == 2.0
    assert iv.half_width == pytest.approx(t_quantile(0.975, 2) * 1.0 / 3**0.5)
    assert mean_interval([5.0]).low is None and mean_interval([]).mean is None
    # Paired: a shared noise cancels, so a constant offset is exact.
    a = [0.90, 0.97, 0.80, 0.99]
    d = paired_interval(a, [x + 0.01 for x in a])
    assert d.mean == pytest.approx(0.01) and d.half_width == pytest.approx(0.0, abs=1e-12)
    assert d.excludes(0.0) and not d.excludes(d.mean)
    assert paired_interval([0.0, 0.0, 0.0], [1.0, 1.1, 0.9]).excludes(0.0)


def test_replication_seeds_depend_only_on_root_and_index():
    seeds = [replication_seed(42, i) for i in range(100)]
    assert len(set(seeds)) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert replication_seed(42, 7) == seeds[7] and replication_seed(43, 7) != seeds[7]


def test_metric_names_cover_what_a_summary_holds(tiny):
    summary = sim.run(tiny, seed=1).summary
    names = metric_names(tiny)
    assert "faults.crashes.time_to_recover" in names and "regions.users.availability" in names
    values = extract(summary, list(names))
    missing = [
        n
        for n, v in values.items()
        if v is None
        and names[n].kind in ("int", "bool", "str")
        and not n.startswith(("faults.", "worst_", "counts."))
        and n != "recovery.time_to_recover"
    ]
    assert missing == []
    assert values["availability"] == summary["availability"]
    assert METRICS["availability"].better == "higher" and METRICS["latency.p99"].better == "lower"


# ------------------------------------------------------------------------------------------ replications


def test_replications_are_the_same_in_any_order_and_any_executor(tiny, pool):
    exp = experiment(tiny)
    forward = run_experiment(exp, range(4), MemoryStore(exp), InProcess())
    tasks = exp.tasks(range(4))
    backward = {t.run_id: execute(t) for t in reversed(tasks)}
    assert [backward[r["run_id"]] for r in forward] == forward
    # Replications 2 and 3 alone are the same runs as in the first four.
    later = run_experiment(exp, [3, 2], MemoryStore(exp), InProcess())
    assert later == forward[2:]
    # And on a process pool.
    assert run_experiment(exp, range(4), MemoryStore(exp), pool) == forward
    assert len({r["seed"] for r in forward}) == 4
    assert len({r["availability"] for r in forward}) > 1, "random crashes make replications differ"


def test_interval_narrows_with_more_replications_and_covers_the_truth(tiny, pool):
    few = replicate(tiny, 3, executor=pool, metrics=["availability", "requests"])
    many = replicate(tiny, 16, executor=pool, metrics=["availability", "requests"])
    assert many.rows[:3] == few.rows
    # Requests are Poisson with mean 50/s x 120 s: the interval narrows like 1/sqrt(n) and holds 6000.
    assert many.interval("requests").half_width < 0.6 * few.interval("requests").half_width
    assert many.interval("requests").low <= 6000 <= many.interval("requests").high
    assert many.interval().low <= many.interval().mean <= many.interval().high


def test_until_ci_stops_when_narrow_enough_or_at_the_cap(tiny, pool):
    wide = replicate(tiny, 3, until_ci=0.5, executor=pool, metrics=["availability"])
    assert wide.n == 3 and "≤" in wide.stopped
    capped = replicate(tiny, 3, until_ci=1e-9, max_replications=7, executor=pool, metrics=["availability"])
    assert capped.n == 7 and "cap of 7" in capped.stopped
    assert capped.rows[:3] == wide.rows


def test_until_ci_takes_no_spread_for_a_narrow_interval():
    """Every replication at 100% gave an interval [1, 1], 'narrow enough' after the first round: it now
    takes 30 agreeing replications (the rule of three: a different one then has under 10% chance) and
    says so."""
    from sim.experiments.replicate import SAME_VALUE_REPLICATIONS
    from tests.conftest import scenario_from

    calm = scenario_from({"duration": "20s"})  # no faults, light load: every replication 100% available
    reps = replicate(calm, 10, until_ci=0.001, executor=InProcess(), metrics=["availability"])
    assert {r["availability"] for r in reps.rows} == {1.0}
    assert reps.n == SAME_VALUE_REPLICATIONS == 30
    assert reps.stopped.startswith("every one of 30 replications gave the same availability")
    capped = replicate(calm, 10, until_ci=0.001, max_replications=12, executor=InProcess(), metrics=["availability"])
    assert capped.n == 12 and "a single value (every replication the same)" in capped.stopped


# ------------------------------------------------------------------------------------------ the store


def test_store_round_trip_and_one_line_dataframe(tiny, tmp_path):
    reps = replicate(tiny, 3, executor="here", out=tmp_path / "runs")
    df = load_results(tmp_path)
    assert len(df) == 3 and list(df["replication"]) == [0, 1, 2]
    assert df["availability"].tolist() == [r["availability"] for r in reps.rows]
    assert set(df.columns) >= {"run_id", "point", "replication", "seed", "availability", "engine", "version"}
    assert (df["engine"] == "requests").all() and (df["version"] == sim.__version__).all()
    manifest = json.loads((tmp_path / "runs" / "manifest.json").read_text())
    assert manifest["kind"] == "replications"
    chunks = sorted((tmp_path / "runs").glob("chunk-*.parquet"))
    assert len(chunks) == 1 and pq.read_table(chunks[0]).num_rows == 3
    assert list((tmp_path / "runs" / "rows").iterdir()) == []


def test_atomic_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "x.parquet"
    atomic_write(target, b"old")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        atomic_write(target, b"new and longer")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_store_never_holds_a_half_written_row(tiny, tmp_path, monkeypatch):
    """A run whose file write fails mid-way leaves no file behind; the runs stored before are intact."""
    import sim.experiments.store as store

    real = store._parquet_bytes
    calls = []

    def failing(table):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if killed while serialising the third row
        return real(table)

    monkeypatch.setattr(store, "_parquet_bytes", failing)
    with pytest.raises(KeyboardInterrupt):
        replicate(tiny, 4, executor="here", out=tmp_path)
    monkeypatch.setattr(store, "_parquet_bytes", real)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")], "no temporary file is left"
    assert len(ResultStore.open(tmp_path).table()) == 2


def counting(work, calls):
    def run(task):
        calls.append(task.replication)
        return work(task)

    return run


class Boom(Exception):
    pass


def test_resume_runs_only_what_is_missing(tiny, tmp_path):
    exp = experiment(tiny)
    whole = run_experiment(exp, range(6), MemoryStore(exp), InProcess())

    calls: list[int] = []

    def dies_after_three(task):
        if len(calls) == 3:
            raise Boom("killed")
        calls.append(task.replication)
        return execute(task)

    store = ResultStore.create(tmp_path, exp)
    with pytest.raises(RunFailed, match="replication 3"):
        run_experiment(exp, range(6), store, InProcess(), work=dies_after_three)
    assert len(ResultStore.open(tmp_path).table()) == 3

    again: list[int] = []
    resumed = run_experiment(
        exp,
        range(6),
        ResultStore.create(tmp_path, exp, resume=True),
        InProcess(),
        work=counting(execute, again),
    )
    assert sorted(again) == [3, 4, 5]
    assert resumed == whole

    # Lose a chunk (as if a disk had): resume re-runs exactly its rows.
    chunks = sorted(tmp_path.glob("chunk-*.parquet"))
    lost = pq.read_table(chunks[0]).column("replication").to_pylist()
    chunks[0].unlink()
    again.clear()
    assert (
        run_experiment(
            exp,
            range(6),
            ResultStore.create(tmp_path, exp, resume=True),
            InProcess(),
            work=counting(execute, again),
        )
        == whole
    )
    assert sorted(again) == sorted(lost)


def test_resume_refuses_another_experiment(tiny, tmp_path):
    replicate(tiny, 2, executor="here", out=tmp_path)
    with pytest.raises(StoreError, match="another experiment"):
        replicate(tiny, 2, seed=99, executor="here", out=tmp_path, resume=True)
    with pytest.raises(StoreError, match="not empty"):
        (tmp_path.parent / "other").mkdir(exist_ok=True)
        (tmp_path.parent / "other" / "precious.txt").write_text("x")
        replicate(tiny, 2, executor="here", out=tmp_path.parent / "other")


def test_a_run_that_raises_stops_the_experiment_and_names_itself(tiny):
    exp = experiment(tiny)

    def broken(task):
        raise ValueError("bad luck")

    with pytest.raises(RunFailed) as err:
        run_experiment(exp, range(2), MemoryStore(exp), InProcess(), work=broken)
    assert "replication 0" in str(err.value) and "ValueError: bad luck" in str(err.value)
    assert f"seed {replication_seed(5, 0)}" in str(err.value)


def die_once(marker: str, task):
    """Kill the worker process the first time replication 1 runs (a worker dying mid-run)."""
    if task.replication == 1 and not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(1)
    return execute(task)


def test_a_worker_that_dies_loses_only_its_run_which_is_retried(tiny, tmp_path, pool):
    exp = experiment(tiny)
    expected = run_experiment(exp, range(4), MemoryStore(exp), InProcess())
    marker = tmp_path / "died"
    rows = run_experiment(
        exp,
        range(4),
        ResultStore.create(tmp_path / "runs", exp),
        pool,
        work=functools.partial(die_once, str(marker)),
    )
    assert marker.exists(), "the worker did die"
    assert rows == expected
    # The pool works again afterwards.
    assert run_experiment(exp, [0], MemoryStore(exp), pool) == expected[:1]


# ------------------------------------------------------------------------------------------ command line


def test_cli_replications_write_intervals_and_results(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "scenarios" / "mechanisms" / "retry-storm.yaml"
    code = cli("run", str(path), "--replications", "2", "-j", "0", "--out", str(tmp_path))
    out = capsys.readouterr().out
    assert code in (0, 3)
    assert "2 replications" in out and "95% interval" in out and "availability" in out
    summary = json.loads((tmp_path / "intervals.json").read_text())
    assert summary["replications"] == 2 and summary["metrics"]["availability"]["n"] == 2
    assert len(load_results(tmp_path)) == 2
    code = cli(
        "run",
        str(path),
        "--until-ci",
        "50%",
        "--replications",
        "2",
        "-j",
        "0",
        "--out",
        str(tmp_path),
        "--resume",
    )
    assert "stopped" in capsys.readouterr().out
    assert cli("run", str(path), "--until-ci", "abc", "-j", "0") == 2
