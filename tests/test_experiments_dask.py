"""A real Dask LocalCluster on loopback gives the same rows as the process pool, row for row."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from sim.experiments import Dask, ProcessPool, load_results, load_sweep, replicate, run_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dask_client():
    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_local_cluster_rows_equal_process_pool_rows(dask_client, tmp_path):
    sweep = load_sweep(ROOT / "scenarios" / "sweeps" / "retry-storm-retries-load.yaml").subset(
        values=2, replications=2
    )
    with Dask(client=dask_client) as executor:
        assert executor.workers == 2
        on_dask = run_sweep(sweep, executor=executor, out=tmp_path / "dask" / "runs")
    with ProcessPool(2) as executor:
        on_pool = run_sweep(sweep, executor=executor, out=tmp_path / "pool" / "runs")
    assert len(on_dask.rows) == sweep.runs == 8
    assert on_dask.rows == on_pool.rows
    assert load_results(tmp_path / "dask").equals(load_results(tmp_path / "pool"))


def test_replications_on_dask_match(dask_client):
    from tests.conftest import scenario_from

    scenario = scenario_from({"duration": "1m"})
    with Dask(client=dask_client) as executor:
        here = replicate(scenario, 3, executor="here", metrics=["availability", "requests"])
        there = replicate(scenario, 3, executor=executor, metrics=["availability", "requests"])
    assert here.rows == there.rows


def test_a_dask_worker_that_dies_loses_only_its_run(dask_client, tmp_path):
    import functools

    from sim.experiments import InProcess
    from sim.experiments.runner import MemoryStore, run_experiment
    from tests.conftest import scenario_from
    from tests.test_experiments import TINY, die_once, experiment

    exp = experiment(scenario_from(TINY))
    expected = run_experiment(exp, range(3), MemoryStore(exp), InProcess())
    marker = tmp_path / "died"
    with Dask(client=dask_client) as executor:
        rows = run_experiment(
            exp, range(3), MemoryStore(exp), executor, work=functools.partial(die_once, str(marker))
        )
    assert marker.exists(), "a worker did die"
    assert rows == expected
