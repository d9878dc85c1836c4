"""The delay buffer of load-balancer and dependency retries' load (:mod:`sim.engine.flow.delays`): what is
delayed comes back exactly once, in the steps where the delay ends."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
import sim.engine.flow.deferrals as flow_deferrals
from sim.engine.flow.delays import ROWS, Delays, backoff_law
from sim.engine.flow.servers import Servers
from sim.policies import BackoffSums
from sim.scenario import Backoff
from tests.conftest import scenario_from


def math_floor(x: float) -> int:
    return int(np.floor(x + 1e-9))


def _mass(d: Delays, x: float) -> np.ndarray:
    return d.pack(np.full((ROWS, d.n), x), np.full(d.deps, x), np.full(d.deps, 2 * x), np.full(d.links, 3 * x))


def test_a_fixed_delay_comes_due_in_the_slots_it_ends_in() -> None:
    d = Delays(1.0, servers=2, deps=1, links=1)
    stay, slots = d.later(0.0, 1.0, lambda x: (x >= 1.5).astype(float), 1.5)
    assert stay == 0.0 and slots == [(1, 0.5), (2, 0.5)]  # first tries over [0, 1), each back 1.5 s later
    d.put(slots, _mass(d, 4.0))
    assert d.take_due(0.5, 0.5) is None  # (nothing in the slot under way)
    np.testing.assert_allclose(d.take_due(1.0, 0.25), _mass(d, 0.5))  # a quarter of slot 1
    np.testing.assert_allclose(d.take_due(1.25, 0.75), _mass(d, 1.5))  # the rest of it
    np.testing.assert_allclose(d.take_due(2.0, 1.0), _mass(d, 2.0))
    assert d.take_due(3.0, 1.0) is None and not d.slots


def test_a_delay_within_the_step_stays_in_it() -> None:
    d = Delays(1.0, servers=1, deps=0, links=0)
    stay, slots = d.later(0.0, 1.0, lambda x: (x >= 0.25).astype(float), 0.25)
    assert stay == pytest.approx(0.75) and slots == [(1, pytest.approx(0.25))]


@pytest.mark.parametrize("seed", range(5))
def test_what_is_delayed_comes_back_exactly_once(seed: int) -> None:
    """Steps of random lengths (short ones inside a slot, long ones over several), each putting mass with a
    backoff's law: everything put comes due once, none is lost, none twice."""
    rng = np.random.default_rng(seed)
    sums = BackoffSums(Backoff(base=4.0, multiplier=1.0, max=4.0, jitter="equal"), 2, 10.0)
    d = Delays(1.0, servers=3, deps=2, links=1)
    t, put, taken = 0.0, np.zeros(d.size), np.zeros(d.size)
    for _ in range(200):
        h = float(rng.choice([0.3, 0.7, 1.0, 1.0, 3.0]))
        if math_floor(t) != math_floor(t + h - 1e-9) and h < 1.0:
            h = math_floor(t) + 1.0 - t  # (as the engine: a short step never crosses a slot)
        due = d.take_due(t, h)
        if due is not None:
            taken += due
        if t < 150.0:
            law, reach = backoff_law(sums, int(rng.integers(1, 3)), 0.5 * int(rng.integers(0, 2)), 9.0)
            stay, slots = d.later(t, h, law, reach)
            assert stay + sum(s for _, s in slots) == pytest.approx(1.0)
            assert all(i >= int(np.floor((t + h) / 1.0 + 1e-9)) for i, _ in slots)  # never before the step's end
            mass = _mass(d, float(rng.uniform(0.0, 5.0)))
            d.put(slots, mass)
            put += mass * (1.0 - stay)
        t += h
    assert not d.slots
    np.testing.assert_allclose(taken, put, rtol=1e-12)


def test_the_law_of_a_retry_after_backoffs() -> None:
    """``j tt + B_k`` given ``B_k < room``: with one backoff uniform on [2, 4] s and room for 3 s, uniform on
    [2, 3] s after the shift."""
    sums = BackoffSums(Backoff(base=4.0, multiplier=1.0, max=4.0, jitter="equal"), 1, 10.0)
    law, reach = backoff_law(sums, 1, 0.5, 3.0)
    assert reach == 3.5
    np.testing.assert_allclose(law(np.array([2.4, 2.5, 3.0, 3.5, 9.0])), [0.0, 0.0, 0.5, 1.0, 1.0], atol=2e-3)


def test_the_engine_offers_the_retries_load_later_all_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the flow engine, with load-balancer retries backing off 2 to 4 s after a crash: the
    load the delay buffer is given comes back out of it, all of it (but what would come due after the run's
    last step), and the servers get less work in the two seconds after the crash than
    when the retries' load comes at once."""
    scenario = scenario_from({
        "duration": "60s", "engine": "flow",
        "topology": {"regions": [{"id": "users", "datacenters": {"dc": "0s"}}], "links": [],
                     "datacenters": [{"id": "dc", "servers": [{
                         "id": "srv", "count": 8, "workers": 4,
                         "service_time": {"distribution": "exponential", "mean": "100ms"}}]}]},
        "workload": {"regions": {"users": {"peak": "150/s"}}},
        "policies": {"client": {"timeout": "10s", "retries": 0},
                     "load_balancer": {"algorithm": "random", "retries": 2, "try_timeout": "500ms",
                                       "health_check": {"enabled": False},
                                       "backoff": {"base": "4s", "multiplier": 1, "max": "4s", "jitter": "equal"}}},
        "faults": [{"id": "crash", "kind": "server_crash", "target": {"mode": {"count": 2}}, "at": "10s",
                    "duration": "10s"}],
    })
    advance, put_all, take_due = Servers.advance, Delays.put_all, Delays.take_due
    worked: list[tuple[float, float]] = []  # per step: its length, the work done in it
    into: list[float] = []  # what the delay buffer was given
    out: list[float] = []  # what came back out of it
    buffers: list[Delays] = []

    def counting(self, rep, of, loads, h, full):  # type: ignore[no-untyped-def]
        worked.append((h, float(loads[0].sum()) * h))
        return advance(self, rep, of, loads, h, full)

    def putting(self: Delays, each: list[tuple[list[tuple[int, float]], np.ndarray]]) -> None:
        buffers.append(self)
        into.extend(float(mass.sum()) * sum(share for _, share in slots) for slots, mass in each)
        put_all(self, each)

    def taking(self: Delays, t: float, h: float) -> np.ndarray | None:
        due = take_due(self, t, h)
        out.append(0.0 if due is None else float(due.sum()))
        return due

    monkeypatch.setattr(Servers, "advance", counting)
    monkeypatch.setattr(Delays, "put_all", putting)
    monkeypatch.setattr(Delays, "take_due", taking)
    early = {}
    for delayed in (False, True):
        monkeypatch.setattr(flow_deferrals, "SHORT_BACKOFF", 0.1 if delayed else math.inf)
        worked.clear()
        sim.run(scenario)
        ends = np.cumsum([h for h, _ in worked])
        early[delayed] = sum(w for end, (_, w) in zip(ends, worked, strict=True) if 10.0 < end <= 12.0 + 1e-9)
    left = float(buffers[-1].total().sum())  # (what comes due after the run's last step)
    assert sum(into) > 100.0
    assert sum(out) + left == pytest.approx(sum(into), rel=1e-12)
    assert early[True] < early[False] - 1.0  # worker-seconds: the retries' come 2.5 s and more after the crash
