"""A single repairable server: availability = MTBF / (MTBF + MTTR).

``server_crash`` with ``mtbf: 100s, mttr: 10s`` is an alternating renewal process with exponential up
and down times, so the server is up 100/110 = 0.90909 of the time. Measured two ways:

- the time-average up fraction, from the ``server_down`` / ``server_up`` events;
- the request availability: with a 1 ms service time and no retries, a request fails exactly when it
  arrives while the server is down (a crash catching one in service has probability ~1e-5), and
  Poisson arrivals see time averages (PASTA).

Pilot (8 seeds x 1,000,000 s, 9,000 failures and 100,000 requests per seed): per-seed SD of the up
fraction 0.0010 and of the request availability 0.0014, so 4 SE is 0.0015 and 0.0020, below a 5%
error in the unavailability (0.0045, e.g. an MTTR drawn 5% too long).
"""

from functools import cache

import pytest
from queue_runs import repairable_scenario, run_plain, up_fraction
from queueing import across_seeds, availability

MTBF, MTTR = 100.0, 10.0
LAM = 0.1
DURATION = 1_000_000.0
SEEDS = range(501, 509)
THEORY = availability(MTBF, MTTR)
UNAVAILABILITY = 1 - THEORY


@cache
def measured(seed: int) -> dict[str, float]:
    m, result = run_plain(repairable_scenario(MTBF, MTTR, LAM, DURATION), seed)
    events = [e for e in result.events if e["kind"] in ("server_down", "server_up") and e["time"] <= DURATION]
    times = [e["time"] for e in events]
    assert [e["kind"] for e in events[:2]] == ["server_down", "server_up"]
    ups = [times[0]] + [b - a for a, b in zip(times[1::2], times[2::2], strict=False)]
    downs = [b - a for a, b in zip(times[0::2], times[1::2], strict=False)]
    counts = result.summary["counts"]
    return {
        "up_fraction": up_fraction(result.events, "srv-01", DURATION),
        "availability": result.availability,
        "mean_up": sum(ups) / len(ups),
        "mean_down": sum(downs) / len(downs),
        "requests": m.requests,
        "failed": counts["failed"],
        "timeouts": counts["timeouts"],
        "errors": counts["errors"],
        "traffic_shift": counts["traffic_shift"],
    }


def runs() -> list[dict[str, float]]:
    return [measured(seed) for seed in SEEDS]


@pytest.mark.parametrize("seed", SEEDS)
def test_requests_fail_only_by_timing_out_on_the_down_server(seed: int) -> None:
    m = measured(seed)
    assert m["failed"] == m["timeouts"] > 0
    assert m["errors"] == 0 and m["traffic_shift"] == 0


def test_up_and_down_times_have_the_configured_means() -> None:
    across_seeds([m["mean_up"] for m in runs()]).check(MTBF, floor=0.01 * MTBF, resolves=0.05 * MTBF)
    across_seeds([m["mean_down"] for m in runs()]).check(MTTR, floor=0.01 * MTTR, resolves=0.05 * MTTR)


def test_time_average_availability() -> None:
    est = across_seeds([m["up_fraction"] for m in runs()])
    est.check(THEORY, floor=0.002 * UNAVAILABILITY, resolves=0.05 * UNAVAILABILITY)


def test_request_availability() -> None:
    est = across_seeds([m["availability"] for m in runs()])
    est.check(THEORY, floor=0.002 * UNAVAILABILITY, resolves=0.05 * UNAVAILABILITY)


def test_requests_see_time_averages() -> None:
    """PASTA, run by run: the request availability and the up fraction of the same path agree."""
    est = across_seeds([m["availability"] - m["up_fraction"] for m in runs()])
    est.check(0.0, floor=0.002 * UNAVAILABILITY, resolves=0.05 * UNAVAILABILITY)
