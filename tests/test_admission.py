"""Admission control (``policies.load_balancer.rate_limit``, ``policies.server.concurrency_limit``): the
token bucket and the AIMD limit against their definitions, the YAML fields, the engines.

The bucket's refused share is held to its theory in ``tests/validation/test_token_bucket.py``; both
defences against a surge in ``tests/test_mechanisms.py`` (``rate-limit.yaml``, ``concurrency-limit.yaml``).
"""

from __future__ import annotations

import pytest

import sim
from sim.errors import ScenarioError
from sim.policies import AimdLimit, TokenBucket, unsupported_on_flow
from sim.scenario import ConcurrencyLimitPolicy, RateLimitPolicy
from tests.conftest import scenario_from


def test_the_bucket_admits_its_burst_then_its_rate():
    b = TokenBucket(RateLimitPolicy(rate=10.0, burst=5))
    assert [b.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    # Then one attempt every 0.1 s, however many come: 100 attempts a second for 10 s admit 100 + 0.
    admitted = sum(b.take(k / 100 + 0.005) for k in range(1, 1001))
    assert admitted == 100
    assert b.take(100.0) and b.tokens == 4.0  # a long quiet spell refills the bucket to its burst, no more


def test_the_aimd_limit_grows_by_one_per_fast_answer_and_shrinks_by_its_ratio():
    policy = ConcurrencyLimitPolicy(initial=10, min=4, max=12, timeout=1.0, backoff_ratio=0.5)
    c = AimdLimit(policy)
    for k in range(5):  # five fast answers from a server at least half full: +1 each, up to max
        c.admitted(0.0, 0.1 * (k + 1), 9)
    assert c.allow(1.0, 0) and c.limit == 12
    c.admitted(1.0, 1.5, 1)  # fast, but the server held 2 of 12: too empty to learn more
    assert c.allow(2.0, 0) and c.limit == 12
    c.admitted(2.0, 3.5, 9)  # slow: halved
    assert c.allow(3.4, 0) and c.limit == 12  # not before the answer comes
    assert not c.allow(3.5, 6) and c.limit == 6
    c.admitted(4.0, 6.0, 3)
    assert c.allow(6.0, 3) and c.limit == 4  # halved again, to its min
    c.reset()
    assert c.limit == 10 and not c.samples


def test_admission_control_is_validated_at_load_with_its_line():
    with pytest.raises(ScenarioError) as info:
        scenario_from({"policies": {"server": {"concurrency_limit": {"initial": 50, "max": 20, "timeout": "1s"}}}})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith("policies.server.concurrency_limit: initial is not between min and max (got "
                                 "min 1, initial 50, max 20; expected min <= initial <= max)")
    with pytest.raises(ScenarioError, match=r"policies\.server\.concurrency_limit: missing required field 'timeout'"):
        scenario_from({"policies": {"server": {"concurrency_limit": {"initial": 5}}}})
    with pytest.raises(ScenarioError, match=r"policies\.load_balancer\.rate_limit\.rate: not a rate"):
        scenario_from({"policies": {"load_balancer": {"rate_limit": {"rate": "fast"}}}})
    too_small = r"policies\.load_balancer\.rate_limit\.burst: too small \(got 0, expected at least 1\)"
    with pytest.raises(ScenarioError, match=too_small):
        scenario_from({"policies": {"load_balancer": {"rate_limit": {"rate": "5/s", "burst": 0}}}})


@pytest.mark.parametrize(("changes", "path", "start"), [
    ({"load_balancer": {"rate_limit": {"rate": "50/s"}}}, ("policies", "load_balancer", "rate_limit"),
     "a rate limit has no fluid view"),
    ({"server": {"concurrency_limit": {"timeout": "1s"}}}, ("policies", "server", "concurrency_limit"),
     "a concurrency limit has no fluid view"),
])
def test_the_flow_engine_refuses_admission_control_with_its_line(changes: dict, path: tuple, start: str):
    scenario = scenario_from({"policies": changes})
    [(where, message)] = unsupported_on_flow(scenario)
    assert where == path and message.startswith(start)
    with pytest.raises(ScenarioError) as info:
        scenario_from({"policies": changes, "engine": "flow"})
    [problem] = info.value.problems
    assert str(problem).startswith("test.yaml:")
    assert str(problem).endswith(f"{'.'.join(path)}: {message}")


def _overloaded(changes: dict) -> sim.Result:
    """One server of 2 workers (100 requests a second) offered 150 a second for a minute; no retries."""
    return sim.run(scenario_from({
        "duration": "1m",
        "topology": {"datacenters": [  # users go to dc-a, the nearer
            {"id": "dc-a", "servers": [{"id": "a", "count": 1, "workers": 2, "service_time": "20ms",
                                        "queue_limit": None}]},
            {"id": "dc-b", "servers": [{"id": "b", "count": 1, "workers": 2, "service_time": "20ms"}]}]},
        "workload": {"regions": {"users": {"peak": "150/s"}}},
        "policies": {"client": {"timeout": "30s", "retries": 0},
                     "load_balancer": {"health_check": {"enabled": False}}, **changes},
    }))


@pytest.mark.parametrize("evented", [False, True])
def test_a_concurrency_limit_refuses_at_once_and_keeps_latency_near_its_timeout(evented: bool):
    """Without it the queue grows for the whole minute (the last requests wait about 20 s); with it the
    server refuses the excess at once and what it serves is answered about as fast as ``timeout``."""
    server = {"lifo_when_waiting": "1h"} if evented else {}  # adaptive LIFO that never flips: event stations
    off = _overloaded({"server": server})
    on = _overloaded({"server": {**server, "concurrency_limit": {"initial": 10, "max": 1000, "timeout": "200ms"}}})
    assert off.summary["counts"]["shed"] == 0 and off.summary["latency"]["p99"] > 10
    counts = on.summary["counts"]
    assert counts["shed"] > 0 and counts["errors"] == counts["shed"] == counts["failed"]
    assert 1 / 3 - 0.05 < counts["shed"] / on.summary["requests"] < 1 / 3 + 0.05  # the excess of 150 over 100
    assert on.summary["latency"]["p99"] < 0.5
    [start, end] = [e for e in on.events if e["kind"].startswith("concurrency_limit")]
    assert (start["kind"], end["kind"], start["node"]) == ("concurrency_limited", "concurrency_limit_lifted", "a-01")
    # It ends 10 s after the last refusal, which comes in the last second of arrivals; no harm behind it: the
    # start is a root, and its end names none.
    assert 59 + 10 < end["time"] <= 60 + 10 and start["cause"] is None and end["cause"] is None


def test_a_rate_limit_refuses_the_excess_and_its_episode_is_an_event():
    result = _overloaded({"load_balancer": {"health_check": {"enabled": False},
                                            "rate_limit": {"rate": "90/s", "burst": 10}}})
    s = result.summary
    assert 1 - 90 / 150 - 0.03 < s["counts"]["shed"] / s["requests"] < 1 - 90 / 150 + 0.01
    assert s["latency"]["p99"] < 0.5  # what gets through finds a short queue
    assert [e["kind"] for e in result.events if "rate_limit" in e["kind"]] == ["rate_limited", "rate_limit_lifted"]
