"""Anomaly detectors on synthetic series: the threshold rule and the EWMA band."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.detect import EwmaBand, ThresholdRule


def test_threshold_rule_compares_with_the_mean_of_its_history():
    rule = ThresholdRule(rise=0.02, history=[0.01, 0.03])
    assert rule.baseline == pytest.approx(0.02)
    assert rule.limit == pytest.approx(0.04)
    assert not rule.observe(0.039)
    assert rule.observe(0.041)


def test_threshold_rule_without_history_has_a_zero_baseline():
    rule = ThresholdRule(rise=0.01)
    assert rule.baseline == 0.0
    assert not rule.observe(0.01) and rule.observe(0.011)


def test_threshold_rule_does_not_adapt_so_a_slow_drift_fires_it():
    rule = ThresholdRule(rise=1.0, history=[10.0] * 5)
    band = EwmaBand(alpha=0.3, k=4.0, floor=1.0, history=[10.0] * 5)
    drift = [10.0 + 0.1 * i for i in range(1, 60)]  # +0.1 per interval, up to 15.9
    assert any(rule.observe(v) for v in drift)
    assert not any(band.observe(v) for v in drift)  # the moving average follows it


def test_ewma_band_is_quiet_on_noise_and_fires_on_a_step():
    rng = np.random.default_rng(1)
    noise = (100 + 5 * rng.standard_normal(2000)).tolist()
    band = EwmaBand(alpha=0.1, k=4.0, history=noise[:50])
    false_alarms = sum(band.observe(v) for v in noise[50:])
    assert false_alarms <= 0.01 * len(noise)
    assert band.baseline == pytest.approx(100, abs=5)
    assert band.observe(160.0)  # twelve standard deviations up


def test_ewma_band_does_not_learn_what_fires_it():
    band = EwmaBand(alpha=0.5, k=3.0, floor=1.0, history=[10.0, 10.5, 9.5, 10.0])
    before = band.baseline
    assert all(band.observe(50.0) for _ in range(20))  # a sustained anomaly keeps firing
    assert band.baseline == before


def test_ewma_band_floor_keeps_a_flat_series_from_firing_on_noise():
    flat = EwmaBand(alpha=0.3, k=4.0, floor=0.01, history=[0.0] * 10)
    assert flat.limit == pytest.approx(0.01)
    assert not flat.observe(0.005)
    assert flat.observe(0.02)
    bare = EwmaBand(alpha=0.3, k=4.0, history=[0.0] * 10)
    assert bare.observe(1e-9)  # without a floor, zero variance makes any rise an anomaly


def test_ewma_band_waits_for_its_warmup():
    band = EwmaBand(alpha=0.3, k=3.0, warmup=3)
    assert not band.observe(1.0) and not band.observe(100.0) and not band.observe(1.0)
    assert band.n == 3


def test_ewma_band_matches_the_recursive_definition():
    values = [3.0, 5.0, 4.0, 8.0]
    band = EwmaBand(alpha=0.25, k=2.0, history=values)
    mean, var = values[0], 0.0
    for x in values[1:]:
        diff = x - mean
        mean += 0.25 * diff
        var = 0.75 * (var + 0.25 * diff * diff)
    assert band.baseline == pytest.approx(mean)
    assert band.limit == pytest.approx(mean + 2.0 * var**0.5)


@given(st.floats(-1e6, 1e6), st.integers(1, 30), st.floats(0, 10))
def test_a_constant_series_never_fires(level, n, floor):
    band = EwmaBand(alpha=0.3, k=3.0, floor=floor, history=[level] * n)
    rule = ThresholdRule(rise=floor, history=[level] * n)
    assert not band.observe(level) and not rule.observe(level)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EwmaBand(alpha=0.0, k=3.0), "alpha 0.0"),
        (lambda: EwmaBand(alpha=0.3, k=0.0), "k 0.0"),
        (lambda: ThresholdRule(rise=-1.0), "-1.0"),
    ],
)
def test_bad_parameters_say_which(make, message):
    with pytest.raises(ValueError, match=message):
        make()
