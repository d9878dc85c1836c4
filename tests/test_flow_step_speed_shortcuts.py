"""The flow engine step's shortcuts give the long way round's answers, bit for bit.

A step sums the request types' quantities in one bincount (``Tries._sums``), hands the live pairs' loads to
their servers by a gather when every server has one pair (``_one_each``), tells whether small arrays hold
anything by counting (``some``), and moves the dependencies' queues on in floats, one dependency at a time
(``Dependencies.advance``, :func:`sim.queueing.allen_cunneen_one`). These tests hold each to the numpy
formula it stands for.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.flow.arrays import TINY, some
from sim.engine.flow.dependencies import Dependencies
from sim.engine.flow.tries import Tries, _one_each
from sim.queueing import allen_cunneen, allen_cunneen_one, erlang, mirrored


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same values, bit for bit (NaNs where the other has them)."""
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint64), np.asarray(b, dtype=float).view(np.uint64)))


def test_some_is_any():
    for x in (np.zeros(5), np.array([0.0, -0.0]), np.array([0.0, 1e-300]), np.array([np.nan]), np.zeros(0),
              np.array([False, True]), np.zeros((3, 4)), np.eye(3)):
        assert some(x) == bool(x.any())


def test_sums_of_every_row_are_each_rows_bincount():
    rng = np.random.default_rng(7)
    sums = Tries.__new__(Tries)
    sums._bins = {}
    index = rng.integers(0, 5, 40)
    for rows in (1, 3, 8):
        weights = rng.standard_normal((rows, 40)) * 10.0 ** rng.integers(-8, 8, (rows, 40))
        for _ in range(2):  # (the second time from the kept bins)
            got = sums._sums(index, weights, 6)
            for r in range(rows):
                assert _same(got[r], np.bincount(index, weights=weights[r], minlength=6))
    assert _same(sums._sums(index, weights[0], 6), np.bincount(index, weights=weights[0], minlength=6))


def test_one_each_is_the_servers_pair_when_every_server_has_one():
    rng = np.random.default_rng(3)
    servers = rng.permutation(12)
    place = _one_each(servers, 12)
    assert place is not None and np.array_equal(servers[place], np.arange(12))
    values = rng.random((3, 12))
    gathered = values.take(place, axis=1) + 0.0
    for q in range(3):
        assert _same(gathered[q], np.bincount(servers, weights=values[q], minlength=12))
    assert _one_each(servers[:11], 12) is None  # a server without a pair
    assert _one_each(np.concatenate([servers[:11], servers[:1]]), 12) is None  # a server with two


@pytest.mark.parametrize("workers", [1, 4, 64, 4000])
def test_allen_cunneen_of_one_queue_is_the_arrays(workers):
    rng = np.random.default_rng(workers)
    loads = np.concatenate([[0.0, workers * 0.98, workers * 1.5], rng.random(30) * workers * 1.2])
    for load in loads.tolist():
        for per_try in (0.0, 0.005, float(rng.random())):
            for ca2, cs2 in ((1.0, 1.0), (0.0, 0.0), (0.25, 2.0)):
                p, theta = allen_cunneen(np.array([load]), np.array([float(workers)]), np.array([workers]),
                                         np.array([per_try]), np.array([ca2]), np.array([cs2]))
                p1, theta1 = allen_cunneen_one(load, float(workers), workers, per_try, ca2, cs2)
                assert _same(np.array([p1, theta1]), np.array([p[0], theta[0]]))
    # Erlang B of a few queues (the plain-Python recursion) as the arrays have it.
    b, _ = erlang(np.array([1, 8, 4000]), np.array([0.5, 7.9, 3900.0]))
    assert np.all(b >= 0.0) and np.all(b <= 1.0)


class _Deps(Dependencies):
    """Dependencies without a scenario: ``n`` of them with the given parameters."""

    def __init__(self, workers: list[int], service: list[float], limit: list[float]):
        self.n = len(workers)
        self.workers = np.array(workers, dtype=float)
        self.iworkers = np.array(workers, dtype=np.int64)
        self.service = np.array(service)
        self.limit = np.array(limit)
        self.backlog, self.load, self.shed = np.zeros(self.n), np.zeros(self.n), np.zeros(self.n)
        self.down = np.zeros(self.n, dtype=bool)
        self.factor = np.ones(self.n)
        self.step = 1.0
        self._unbounded, self._none = np.full(self.n, np.inf), np.zeros(self.n)
        self._state(np.zeros(self.n))


def _advance_as_arrays(deps: _Deps, calls: np.ndarray, work: np.ndarray, h: float) -> dict[str, np.ndarray]:
    """The queue update as numpy arrays (the formulas ``Dependencies.advance`` follows in floats)."""
    dcap = np.where(deps.down, 0.0, deps.workers)
    dback = np.maximum(0.0, deps.backlog + work * h - dcap * h)
    dper = np.where(calls > 0, work / np.maximum(calls, TINY), deps.service)
    droom = deps.limit * dper
    with np.errstate(invalid="ignore", divide="ignore"):
        dadm = np.maximum(droom - deps.backlog, 0.0) + dcap * h
        shed = np.minimum(np.maximum(np.where(work * h > dadm, 1.0 - dadm / np.maximum(work * h, TINY), 0.0), 0.0),
                          1.0)
    backlog = np.where(deps.down, 0.0, np.minimum(dback, np.maximum(droom, 0.0)))
    cap = np.where(deps.down, 0.0, deps.workers)
    per = np.where(calls > 0, work / np.maximum(calls, TINY), deps.service * deps.factor)
    poisson = np.ones(deps.n)
    wait_p, theta = allen_cunneen(mirrored(work, deps.workers), deps.workers, deps.iworkers, per, poisson, poisson)
    fluid = np.where(cap > 0, backlog / np.maximum(cap, TINY), 0.0)
    return {"shed": shed, "backlog": backlog, "wait_p": wait_p, "theta": theta, "wait": fluid + wait_p / theta}


def test_dependencies_move_on_as_the_arrays_would():
    rng = np.random.default_rng(11)
    deps = _Deps([4000, 4, 64], [0.005, 0.02, 0.1], [20000.0, np.inf, 10.0])
    for step in range(60):
        deps.down = rng.random(deps.n) < 0.1
        deps.factor = np.where(rng.random(deps.n) < 0.2, 3.0, 1.0)
        calls = np.where(rng.random(deps.n) < 0.2, 0.0, rng.random(deps.n) * 1e6)
        work = calls * deps.service * rng.random(deps.n) * 2.0
        h = float(rng.choice([0.1, 1.0, 30.0]))
        expected = _advance_as_arrays(deps, calls, work, h)
        deps.advance(calls, work, h)
        # Where a queue limit's room cuts the waits, they are M/M/c/K's and its refusals join the fluid's
        # (queueing.waiting_room: checked against the textbook and the request engine elsewhere); the
        # arrays follow the unlimited queue's, so those entries are compared on the fluid alone.
        cut = np.isfinite(deps.bound)
        expected["shed"] = np.maximum(expected["shed"], deps.refused)
        for name, values in expected.items():
            if name == "wait":  # (the fluid wait and the stationary mean wait, kept apart)
                with np.errstate(divide="ignore", invalid="ignore"):
                    got = deps.fluid + deps.wait_p / deps.theta
            else:
                got = getattr(deps, name)
            if name in ("wait_p", "theta", "wait"):
                got, values = got[~cut], values[~cut]
            assert _same(got, values), (step, name)
        assert not cut[1]  # (the dependency without a queue limit is always compared whole)


def test_several_quantities_of_a_few_servers_read_as_each_alone(monkeypatch):
    from tests.test_flow_speed_state import MECHANISMS, STATE, _servers_after

    servers = _servers_after(MECHANISMS / "failover-overload.yaml", monkeypatch)
    few = np.array([0, servers.n - 1, servers.n // 2, 1])
    names = tuple(STATE)
    for got, name in zip(servers.at_each(names, few), names, strict=True):
        assert _same(got, servers.at(name, few)), name
    servers.whole("shed")  # (one read whole, the others still per class)
    for got, name in zip(servers.at_each(names, few), names, strict=True):
        assert _same(got, servers.at(name, few)), name
