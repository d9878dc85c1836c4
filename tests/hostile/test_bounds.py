"""Unbounded work: what a scenario file asks for is bounded before anything runs.

Each item was a failure on main: a read without end, an internal error (OverflowError, MemoryError,
IndexError) or a run that does not end. Now the file is refused with ``file:line:col: path: what is
wrong (got X, expected Y)``, or, where it is valid, the run is bounded. A few tests guard what must keep
working (a scenario piped into stdin, the largest values allowed running quickly, the manifest).

- reading: at most ``MAX_FILE_BYTES + 1`` bytes, whatever ``stat()`` says; devices are refused, pipes
  read (a FIFO with no writer does not block);
- numbers: every field has a range, and sizes (servers × workers) feed ``limits``;
- the drain after the end: ``limits.max_drain``; the flow engine's retry ring is sized by what can be
  pending;
- the SLO window and the flow step have minimums;
- the request limit counts traffic surges and retries; ``engine: auto`` is resolved at the edge, before
  the limits, so the manifest and result rows name the engine that ran.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import sim
from sim.errors import ScenarioError
from sim.loader import MAX_FILE_BYTES, load_scenario, parse_scenario
from sim.scenario import ClientPolicy
from tests import test_loader
from tests.conftest import BASE, merge
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"

# Line numbers matter: the messages below point at them.
TEXT = """\
name: bounds
duration: 1h
topology:
  regions:
    - id: europe
      datacenters: {eu-west: 10ms}
  datacenters:
    - id: eu-west
      servers:
        - {id: mbx, count: 4, workers: 8, service_time: 20ms}
workload:
  regions:
    europe: {peak: 50/s}
policies:
  client: {timeout: 2s, retries: 2, backoff: {base: 100ms, max: 5s}}
slo: {window: 1m}
"""


def edit(*changes: tuple[str, str], text: str = TEXT) -> str:
    return test_loader.edit(*changes, text=text)


def problems(text: str) -> list[str]:
    return test_loader.problems(text, "b.yaml")


def only_problem(text: str) -> str:
    return test_loader.only_problem(text, "b.yaml")


def quickstart(**changes: object) -> dict:
    return merge(yaml.safe_load(QUICKSTART.read_text(encoding="utf-8")), changes)


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------- reading


def _limited() -> None:
    """In the child: at most 1.5 GB of address space, so that reading without end fails fast."""
    resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))


def validate_in_child(
    path: str, stdin: object = subprocess.DEVNULL, timeout: float = 60
) -> subprocess.CompletedProcess:
    """``cascadesim validate path`` in a child process with little memory and a time limit."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from sim.cli import main; main(sys.argv[1:])", "validate", path],
        cwd=ROOT, stdin=stdin, capture_output=True, text=True, timeout=timeout, preexec_fn=_limited, env=env,
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_without_reading_it(device):
    done = validate_in_child(device)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"{device}:1:1: not a scenario file (got a character device, expected a regular file or a pipe)"
    )


def test_a_fifo_with_no_writer_does_not_block(tmp_path):
    fifo = tmp_path / "scenario.fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    done = validate_in_child(str(fifo), timeout=30)
    assert time.monotonic() - start < 30
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == f"{fifo}:1:1: the file is empty; expected a mapping of scenario fields"


def test_an_endless_pipe_is_read_up_to_the_limit_only():
    writer = subprocess.Popen(["yes", "name: x"], stdout=subprocess.PIPE)
    try:
        done = validate_in_child("/dev/stdin", stdin=writer.stdout)
    finally:
        writer.kill()
        writer.wait()
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"/dev/stdin:1:1: file too large (got more than {MAX_FILE_BYTES:,} bytes, expected at most "
        f"{MAX_FILE_BYTES:,})"
    )


def test_a_scenario_piped_into_stdin_is_read():
    with QUICKSTART.open("rb") as scenario:
        done = validate_in_child("/dev/stdin", stdin=scenario)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "/dev/stdin: ok\n"


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}:1:1: not a scenario file (got a directory, expected a regular file or a pipe)"
    )


# ------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("duration: 1h", "duration: " + "9" * 400),
            "b.yaml:2:11: duration: duration too long (got a 400-digit number, expected at most 365d)",
        ),
        (
            ("slo: {window: 1m}", "slo: {window: 1m, latency_p99: " + "9" * 400 + "}"),
            "b.yaml:16:32: slo.latency_p99: duration too long (got a 400-digit number, expected at most 1h)",
        ),
        (
            ("workers: 8,", "workers: 1000000000,"),
            "b.yaml:10:40: topology.datacenters[0].servers[0].workers: too large (got 1000000000, expected at "
            "most 10000)",
        ),
        (
            ("workers: 8,", f"workers: {2**64},"),
            "b.yaml:10:40: topology.datacenters[0].servers[0].workers: too large (got 18446744073709551616, "
            "expected at most 10000)",
        ),
        (
            ("count: 4,", f"count: {2**64},"),
            "b.yaml:10:28: topology.datacenters[0].servers[0].count: too large (got 18446744073709551616, "
            "expected at most 1000000000)",
        ),
        (
            ("{peak: 50/s}", "{peak: " + "9" * 400 + "}"),
            "b.yaml:13:20: workload.regions.europe.peak: rate too large (got a 400-digit number, expected at "
            "most 1G/s)",
        ),
        (
            ("max: 5s}", "max: 5s, multiplier: 1.0e+300}"),
            "b.yaml:15:81: policies.client.backoff.multiplier: too large (got 1e+300, expected at most 100.0)",
        ),
        (
            ("name: bounds", f"name: bounds\nseed: {2**64}"),
            "b.yaml:2:7: seed: too large (got 18446744073709551616, expected at most 9223372036854775807)",
        ),
        (
            ("service_time: 20ms}", "service_time: 1.0e-300}"),
            "b.yaml:10:57: topology.datacenters[0].servers[0].service_time: duration too short (got 1e-300, "
            "expected at least 0.001ms)",
        ),
        (
            ("service_time: 20ms}", "service_time: 2h}"),
            "b.yaml:10:57: topology.datacenters[0].servers[0].service_time: duration too long (got '2h', "
            "expected at most 1h)",
        ),
    ],
)
def test_numbers_too_large_for_the_model_are_refused_with_their_place(change, expected):
    assert only_problem(edit(change)) == expected


def test_a_number_too_large_for_python_is_refused_not_an_internal_error(tmp_path, capsys):
    data = quickstart(duration=int("9" * 400))
    assert cli("validate", str(write(tmp_path, data))) == 2
    err = capsys.readouterr().err
    assert "duration: duration too long (got a 400-digit number, expected at most 365d)" in err
    assert "internal error" not in err


def test_workers_times_servers_feed_the_limits():
    text = edit(("count: 4, workers: 8,", "count: 20000, workers: 1000,"))
    assert only_problem(text) == (
        "b.yaml:8:5: topology.datacenters: too many workers for the request engine (got 20,000,000 over all "
        "servers and dependencies, expected at most limits.max_workers = 10,000,000); use engine: flow or "
        "fewer workers"
    )
    assert parse_scenario(edit(("count: 4, workers: 8,", "count: 20000, workers: 1000,"),
                               ("duration: 1h", "duration: 1h\nengine: flow"))).engine == "flow"


def test_the_most_workers_allowed_run_quickly_on_the_flow_engine(tmp_path, capsys):
    data = merge(BASE, {"duration": "2m", "engine": "flow"})
    data["topology"]["datacenters"][0]["servers"][0]["workers"] = 10_000
    start = time.perf_counter()
    assert cli("run", "--no-report", str(write(tmp_path, data))) == 0
    assert time.perf_counter() - start < 20


def test_random_faults_that_start_and_end_too_often_are_refused():
    text = edit(("slo: {window: 1m}", "slo: {window: 1m}\nfaults:\n  - {kind: server_crash, mtbf: 1ms, mttr: 1ms}"))
    assert only_problem(text) == (
        "b.yaml:18:32: faults[0].mtbf: random faults start and end too often for one run (got about 1.44e+07 "
        "times over 1h, 1.44e+07 of them this fault's; expected at most limits.max_fault_events = 2e+05); use "
        "a longer mtbf or mttr, or fewer targets"
    )


# ------------------------------------------------------------------------------------------- the drain


def test_a_drain_past_the_limit_is_refused_at_the_backoff():
    assert only_problem(edit(("max: 5s}", "max: 12h}"))) == (
        "b.yaml:15:65: policies.client.backoff.max: requests could be under way for too long after the run "
        "(got 1d12h7s: (retries + 1) × (timeout + backoff.max) + 1s = 3 × (2s + 12h) + 1s; expected at most "
        "limits.max_drain = 1h); lower the client's backoff.max, timeout or retries"
    )


def test_a_backoff_of_a_thousand_days_is_refused():
    assert only_problem(edit(("max: 5s}", "max: 1000d}"))) == (
        "b.yaml:15:65: policies.client.backoff.max: duration too long (got '1000d', expected at most 1d)"
    )


def test_the_drain_limit_can_be_raised():
    text = edit(("max: 5s}", "max: 12h}"), ("slo: {window: 1m}", "slo: {window: 1m}\nlimits: {max_drain: 2d}"))
    assert parse_scenario(text).policies.client.drain_time() == 3 * (2 + 12 * 3600) + 1


def test_both_engines_drain_what_the_limit_checks():
    scenario = sim.load_scenario(QUICKSTART)
    for name, engine in sim.engine.ENGINES.items():
        assert engine.drain_time.__doc__ and "max_drain" in engine.drain_time.__doc__, name
    assert scenario.policies.client.drain_time() == 3 * (2 + 5) + 1


def test_the_flow_ring_is_sized_by_what_can_be_pending():
    from sim.engine.flow import retry_ring

    # backoff.max is never reached: 100 ms doubling twice is 200 ms at most.
    client = ClientPolicy(timeout=2.0, retries=2, backoff={"base": 0.1, "max": 15 * 60})
    slots, origins = retry_ring(client, 1.0, 30.0, 60.0)
    assert slots <= math.ceil(2 + 0.2 + 2 * 30 + 30 + 0.2 + 2) + 2  # what a retry can reach, in 1-s slots
    assert slots < 100 and origins <= math.ceil(3 * (2 + 1.5 * 900 + 1) / 60) + 2
    # Where backoff.max is reached, the earlier size (by backoff.max) is kept: nothing changes for it.
    client = ClientPolicy(timeout=2.0, retries=2, backoff={"base": 0.2, "max": 0.4})
    assert retry_ring(client, 1.0, 30.0, 60.0)[0] == math.ceil(2 + 0.4 * 1.5 + 1 + 30) + 2


def test_a_flow_run_whose_retries_would_not_fit_the_ring_is_refused():
    text = edit(
        ("duration: 1h", "duration: 1h\nengine: flow\nflow: {step: 10ms}"),
        ("backoff: {base: 100ms, max: 5s}", "backoff: {base: 10m, max: 10m}"),
        ("slo: {window: 1m}", "slo: {window: 1s}"),
    )
    message = only_problem(text)
    assert message.startswith("b.yaml:17:46: policies.client.backoff: the flow engine cannot hold the client ")
    assert message.endswith("expected at most 10,000,000); use a shorter backoff, or a longer flow.step or slo.window")


def test_a_long_backoff_max_that_is_never_reached_runs_quickly_on_the_flow_engine(tmp_path, capsys):
    data = merge(BASE, {"duration": "1m", "engine": "flow",
                        "policies": {"client": {"backoff": {"base": "100ms", "max": "15m"}}}})
    start = time.perf_counter()
    assert cli("run", "--no-report", str(write(tmp_path, data))) == 0
    assert time.perf_counter() - start < 20


# ------------------------------------------------------------------------------------------- steps and windows


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("slo: {window: 1m}", "slo: {window: 1ms}"),
            "b.yaml:16:15: slo.window: duration too short (got '1ms', expected at least 1s)",
        ),
        (
            ("duration: 1h", "duration: 1h\nengine: flow\nflow: {step: 1us}"),
            "b.yaml:4:14: flow.step: duration too short (got '1us', expected at least 1ms)",
        ),
    ],
)
def test_windows_and_steps_have_a_minimum(change, expected):
    assert only_problem(edit(change)) == expected


def test_health_checks_have_a_minimum_interval():
    text = edit(("  client: {timeout: 2s", "  load_balancer: {health_check: {interval: 1ms}}\n  client: {timeout: 2s"))
    assert only_problem(text) == (
        "b.yaml:15:44: policies.load_balancer.health_check.interval: duration too short (got '1ms', expected at "
        "least 100ms)"
    )


# ------------------------------------------------------------------------------------------- surges, retries, auto


SURGE = "slo: {window: 1m}\nfaults:\n  - {id: ddos, kind: traffic_surge, at: 0s, multiplier: 1000}"


def test_a_surge_past_the_request_limit_is_refused_and_named():
    assert only_problem(edit(("slo: {window: 1m}", SURGE))) == (
        "b.yaml:18:57: faults[0].multiplier: the traffic surge 'ddos' makes too many requests to simulate in "
        "memory (got about 5.4e+08 tries: 1.8e+08 user requests over 1h, 1.8e+08 of them from this surge, each "
        "tried up to 3 times; expected at most limits.max_requests = 5e+07); use engine: flow, a smaller "
        "multiplier or a shorter surge"
    )


def test_a_thousandfold_surge_on_quickstart_is_refused(tmp_path, capsys):
    data = quickstart()
    data["faults"].append({"id": "ddos", "kind": "traffic_surge", "at": "0s", "multiplier": 1000})
    assert cli("validate", str(write(tmp_path, data))) == 2
    assert "faults[1].multiplier: the traffic surge 'ddos' makes too many requests" in capsys.readouterr().err


def test_the_expected_load_counts_surges_over_their_duration_and_retries_at_their_most():
    from sim.sizing import expected_load

    text = edit(("slo: {window: 1m}", "slo: {window: 1m}\nfaults:\n"
                 "  - {id: a, kind: traffic_surge, at: 10m, duration: 10m, multiplier: 4}\n"
                 "  - {id: b, kind: traffic_surge, at: 15m, duration: 10m, multiplier: 2}"))
    load = expected_load(parse_scenario(text))
    assert load.base == pytest.approx(50 * 3600)
    # 0-10 m x1, 10-15 m x4, 15-20 m x8 (the two overlap and multiply), 20-25 m x2, 25-60 m x1.
    assert load.users == pytest.approx(50 * (600 + 300 * 4 + 300 * 8 + 300 * 2 + 2100))
    assert load.surges == pytest.approx({0: 50 * 600 * 3, 1: 50 * 600 * 1})
    assert load.amplification == pytest.approx(3)


def test_retries_count_against_the_request_limit():
    # 5.4e6 user requests fit under a 1e7 limit; tried up to three times each, they do not.
    text = edit(
        ("{peak: 50/s}", "{peak: 1500/s}"), ("slo: {window: 1m}", "slo: {window: 1m}\nlimits: {max_requests: 1e7}")
    )
    assert only_problem(text) == (
        "b.yaml:12:3: workload: too many requests to simulate in memory (got about 1.62e+07 tries: 5.4e+06 user "
        "requests over 1h, each tried up to 3 times; expected at most limits.max_requests = 1e+07); use engine: "
        "flow, shorten duration or lower the peak"
    )


def test_auto_is_resolved_at_the_edge_and_the_limits_see_the_engine():
    assert load_scenario(QUICKSTART, {"engine": "auto"}).engine == "requests"
    assert load_scenario(QUICKSTART, {"engine": "auto", "duration": "24h"}).engine == "flow"
    surged = edit(("slo: {window: 1m}", SURGE), ("duration: 1h", "duration: 1h\nengine: auto"))
    assert parse_scenario(surged).engine == "flow"  # the request engine's limit would refuse it
    model = sim.Scenario.model_validate(yaml.safe_load(edit(("duration: 1h", "duration: 1h\nengine: auto"))))
    assert model.engine == "requests"
    assert sim.Scenario.model_validate_json(model.model_dump_json()) == model


def test_the_manifest_and_the_stored_scenario_name_the_engine_that_ran(tmp_path, capsys):
    out = tmp_path / "report"
    data = merge(BASE, {"duration": "1m", "engine": "auto"})
    assert cli("run", str(write(tmp_path, data)), "--out", str(out)) == 0
    assert json.loads((out / "summary.json").read_text())["manifest"]["engine"] == "requests"
    assert json.loads((out / "scenario.json").read_text())["engine"] == "requests"


def test_sweep_rows_name_the_engine_that_ran(tmp_path):
    from sim.experiments import run_sweep

    write(tmp_path, merge(BASE, {"duration": "1m", "engine": "auto"}), "base.yaml")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "engines", "base": "base.yaml", "design": "grid", "replications": 1, "seed": 1,
        "parameters": {"workload.regions.users.peak": [10, 20]}, "metrics": ["availability"],
    }, sort_keys=False))
    rows = run_sweep(sweep, executor="here").rows
    assert [row["engine"] for row in rows] == ["requests", "requests"]
