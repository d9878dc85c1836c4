"""The flow engine's health checks remember: consecutive checks of a server are as alike as a queue's.

:class:`sim.engine.flow.checks.HealthMemory` keeps each server's rank and when it was last asked;
:func:`sim.queueing.check_persistence` says how much of it the queue remembers. Here: the share of checks
that fail is the chance ``p`` whatever the memory (the mass check), ``P(fail | failed)`` is ``p + (1 - p) r``,
and the memory is forgotten or pinned when the server's state says so. Against the request engine:
``tests/validation/test_flow_probes.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.engine.flow import FlowEngine
from sim.engine.flow.checks import HealthMemory
from sim.queueing import check_persistence
from tests.conftest import scenario_from

SERVERS = 4000


def ask(memory: HealthMemory, now: float, p: float | np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
    """One check of every server at chance ``p`` with persistence ``r``: which fail."""
    fail = np.broadcast_to(np.asarray(p, dtype=float), memory.rank.shape).copy()
    return ~memory.answer(now, fail, np.zeros(fail.size, dtype=np.int64), lambda of, lag: r, rng)


def within(hits: np.ndarray, tries: np.ndarray, expected: float) -> None:
    """The pooled share ``sum(hits) / sum(tries)`` (per server, servers independent) is ``expected`` within 4
    standard errors (the ratio estimator's, over servers), and the standard error is small enough that a
    tenth of the way to 0 or 1 would be told apart."""
    share = float(hits.sum() / tries.sum())
    se = float(np.sqrt(((hits - share * tries) ** 2).sum() * hits.size / (hits.size - 1)) / tries.sum())
    assert abs(share - expected) <= 4 * se, f"{share:.4f} ± {se:.4f}, expected {expected:.4f}"
    assert 4 * se < 0.1 * min(expected, 1 - expected), f"too few checks to tell: SE {se:.4f}"


@pytest.mark.parametrize("r", [0.0, 0.4, 0.9])
def test_the_share_of_failed_checks_is_p_and_a_failure_persists_as_r_says(r: float) -> None:
    p, checks = 0.3, 60
    memory, rng = HealthMemory(SERVERS, 5.0), np.random.default_rng(5)
    fails = np.array([ask(memory, 5.0 * k, p, r, rng) for k in range(checks)])  # [check, server]
    within(fails.sum(axis=0), np.full(SERVERS, checks), p)  # the mass check: no failures moved in or out
    before, after = fails[:-1], fails[1:]
    within((before & after).sum(axis=0), before.sum(axis=0), p + (1 - p) * r)
    within((~before & after).sum(axis=0), (~before).sum(axis=0), p * (1 - r))


def test_when_p_changes_each_check_still_fails_with_its_own_p_and_a_long_queue_stays_long() -> None:
    memory, rng = HealthMemory(SERVERS, 5.0), np.random.default_rng(6)
    ps = [0.2, 0.6, 0.1, 0.45]
    first = ask(memory, 0.0, ps[0], 0.8, rng)
    fails = [first]
    for k, p in enumerate(ps[1:], start=1):
        fails.append(ask(memory, 5.0 * k, p, 0.8, rng))
    for p, f in zip(ps, fails, strict=True):
        share, se = f.mean(), math.sqrt(p * (1 - p) / SERVERS)
        assert abs(share - p) <= 4 * se, f"p {p}: {share:.4f} ± {se:.4f}"
    # a server that failed at 0.2 and kept its rank fails at 0.6: P(fail at 0.6 | failed at 0.2) = 0.8 + 0.2 x 0.6
    again = fails[1][first].mean()
    se = math.sqrt(0.92 * 0.08 / first.sum())
    assert abs(again - 0.92) <= 4 * se, f"{again:.4f} ± {se:.4f}"


def test_certain_answers_pin_the_rank_and_a_forgotten_server_answers_afresh() -> None:
    memory, rng = HealthMemory(SERVERS, 5.0), np.random.default_rng(7)
    half = SERVERS // 2
    fail = np.where(np.arange(SERVERS) < half, 1.0, 0.0)  # fails for sure (a backlog), passes for sure (idle)
    ask(memory, 0.0, fail, 1.0, rng)
    assert memory.rank[:half].tolist() == [0.0] * half and memory.rank[half:].tolist() == [1.0] * half
    # Fully remembered (r = 1): the long queues fail again, the short ones pass, whatever p in between.
    again = ask(memory, 5.0, 0.5, 1.0, rng)
    assert again[:half].all() and not again[half:].any()
    for server in range(0, SERVERS, 2):  # (stopped, started or a new version: HealthMemory.forget)
        memory.forget(server)
    fresh = ask(memory, 10.0, 0.5, 1.0, rng)
    forgot, kept = fresh[::2], fresh[1::2]
    se = math.sqrt(0.25 / forgot.size)
    assert abs(forgot[: half // 2].mean() - 0.5) <= 4 * se and abs(forgot[half // 2:].mean() - 0.5) <= 4 * se
    assert kept[: half // 2].all() and not kept[half // 2:].any()


def test_a_certain_answer_holds_over_sweeps_the_health_checks_skipped() -> None:
    """Quiet sweeps skip the checks while every answer is certain: a pinned rank is kept as if the server
    had been asked one interval ago (as sweeping every interval would have), not forgotten over the gap."""
    memory, rng = HealthMemory(SERVERS, 5.0), np.random.default_rng(9)
    fail = np.zeros(SERVERS)
    memory.answer(0.0, fail, np.zeros(SERVERS, dtype=np.int64), None, rng)  # idle: passes for sure
    lags: list[float] = []

    def persist(of: int, lag: float) -> float:
        lags.append(lag)
        return math.exp(-lag / 5.0)

    failed = ~memory.answer(500.0, np.full(SERVERS, 0.5), np.zeros(SERVERS, dtype=np.int64), persist, rng)
    assert lags == [5.0]
    expected, se = 0.5 * (1 - math.exp(-1.0)), math.sqrt(0.2 / SERVERS)
    assert abs(failed.mean() - expected) <= 4 * se, f"{failed.mean():.4f}, expected {expected:.4f} ± {se:.4f}"


def test_asked_twice_at_one_instant_a_server_answers_the_same() -> None:
    memory, rng = HealthMemory(SERVERS, 5.0), np.random.default_rng(8)
    first = ask(memory, 3.0, 0.4, 0.0, rng)  # r = 0: at a later time the answers would be independent
    assert (ask(memory, 3.0, 0.4, 0.0, rng) == first).all()


def test_persistence_falls_with_the_lag_and_rises_with_the_utilisation() -> None:
    lags = [1.0, 5.0, 20.0, 50.0, 200.0, 2000.0]
    for rho in (0.6, 0.8, 0.9, 0.95):
        rs = [check_persistence(4, 4 * rho, 0.3, lag) for lag in lags]
        assert all(0.0 <= r <= 1.0 for r in rs)
        assert all(a >= b for a, b in zip(rs, rs[1:], strict=False)), (rho, rs)
    at = [check_persistence(4, 4 * rho, 0.3, 50.0) for rho in (0.8, 0.85, 0.9, 0.95)]
    assert at == sorted(at) and at[0] < at[-1]
    assert check_persistence(4, 3.6, 0.0, 50.0) == check_persistence(4, 3.6, 1.0, 50.0) == 0.0  # no draw then
    assert check_persistence(4, 0.0, 0.3, 50.0) == 0.0


def test_a_waiting_room_forgets_faster_near_saturation_and_still_remembers_in_overload() -> None:
    """With a queue limit the chain is M/M/c/K: near saturation its queue cannot wander as far as an
    unlimited one's, so it forgets sooner; offered more than its workers it still remembers over a short lag
    (the test against the request engine: ``tests/validation/test_flow_probes.py``)."""
    assert check_persistence(4, 3.92, 0.3, 50.0, 80) < check_persistence(4, 3.92, 0.3, 50.0) - 0.1
    assert check_persistence(4, 4.12, 0.4, 20.0, 80) > 0.2
    assert check_persistence(4, 4.12, 0.4, 20.0, 80) > check_persistence(4, 4.12, 0.4, 50.0, 80)
    assert check_persistence(4, 3.6, 0.3, 20.0, 1000) == check_persistence(4, 3.6, 0.3, 20.0)  # long: as none


def test_a_check_late_all_but_for_certain_keeps_no_answer_in_time() -> None:
    """A server readmitted empty at 150% of its capacity (M/M/4 with room for 100) is full 5 s (50 services)
    later: its check is late with a chance just below 1, and its answer in time before the readmission says
    nothing then. ``p`` rounded to 1 made ``r`` 1 at some utilisations, so that answer was kept and the check
    passed (human-error: the flow engine's server stayed in rotation 20 s a time, the request engine's 15 s)."""
    for p in (0.995, 0.999, 0.99999):
        assert check_persistence(4, 6.02, p, 50.0, 100) < 0.05, p
        assert 0.0 <= check_persistence(4, 4.4, p, 50.0, 100) < 1.0, p


def test_persistence_decays_at_morses_relaxation_time_far_out_and_faster_before() -> None:
    """The correlation is a mixture of exponentials whose slowest rate is the spectral gap, about
    ``c mu (1 - sqrt(rho))^2`` (Morse's relaxation time T for M/M/1, here on M/M/4): far out one T more
    takes it down by ``e^-1`` times the ``(t / (t + T))^(3/2)`` of a continuous spectrum's edge (Abate &
    Whitt), and never by less than ``e^-1``; at a few mean waits it falls much faster than ``exp(-t / T)``."""
    c, rho, p = 4, 0.9, 0.3
    relax = 1.0 / (c * (1.0 - math.sqrt(rho)) ** 2)  # in mean services: 95
    for k in (3, 4, 5):
        ratio = check_persistence(c, c * rho, p, (k + 1) * relax) / check_persistence(c, c * rho, p, k * relax)
        assert math.exp(-1.0) * (k / (k + 1)) ** 1.5 * 0.8 <= ratio <= math.exp(-1.0) * 1.05, (k, ratio)
    assert check_persistence(c, c * rho, p, 20.0) < 0.6 * math.exp(-20.0 / relax)


def test_the_engine_forgets_a_server_that_stops_starts_or_changes_version() -> None:
    scenario = scenario_from({"engine": "flow", "duration": "60s"})
    built: list[FlowEngine] = []
    start = FlowEngine.start
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FlowEngine, "start", lambda self: (built.append(self), start(self))[1])
        sim.run(scenario, seed=1)
    engine = built[0]
    memory = engine.health_memory
    memory.asked[:] = 50.0
    engine.server_down(0)
    engine.server_up(1)
    assert memory.asked[0] == memory.asked[1] == -math.inf
    assert np.isfinite(memory.asked[2:]).all()
