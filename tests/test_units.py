"""Units as people write them: parsing, formatting, round trips and every rejection."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.units import format_duration, parse_bandwidth, parse_duration, parse_percent, parse_rate

# ------------------------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("5min", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("2h 15m", 8100.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("1e3ms", 1.0),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("+5s", 5.0),
        ("0s", 0.0),
        (" 10s ", 10.0),
        (90, 90.0),
        (0.25, 0.25),
        (0, 0.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1 hour", "not a duration (got '1 hour', expected a duration such as 250ms"),
        ("1e", "not a duration (got '1e'"),
        ("", "not a duration (got ''"),
        ("ms", "not a duration (got 'ms'"),
        ("5x", "not a duration (got '5x'"),
        ("-5s", "negative duration (got '-5s', expected 0 or more)"),
        (-1, "negative duration (got -1, expected 0 or more)"),
        (True, "not a duration (got true"),
        (None, "not a duration (got null"),
        ([1], "not a duration (got a list"),
        (float("nan"), "not a duration (got nan"),
        (float("inf"), "not a duration (got inf"),
        ("1e400s", "duration too long (got '1e400s'"),
    ],
)
def test_parse_duration_rejects(value, message):
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.25, "250ms"),
        (0.0005, "0.5ms"),
        (1, "1s"),
        (90, "1m30s"),
        (3600, "1h"),
        (3725.5, "1h2m5.5s"),
        (86400 + 60, "1d1m"),
        (59.9996, "1m"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_format_duration_rejects(bad):
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(bad)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_duration_round_trip(seconds):
    back = parse_duration(format_duration(seconds))
    # Formatted to the millisecond at and above one second; six significant digits below it.
    assert math.isclose(back, seconds, rel_tol=1e-5, abs_tol=5e-4)


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_scales(number, unit):
    factor = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}[unit]
    assert parse_duration(f"{number!r}{unit}") == pytest.approx(number * factor)


# ------------------------------------------------------------------------------------------ percentages


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("30%", 0.3), ("99.9%", 0.999), ("0%", 0.0), ("100%", 1.0), ("5 %", 0.05), (0.25, 0.25), (1, 1.0)],
)
def test_parse_percent(text, fraction):
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30", "not a percentage (got '30', expected a percentage such as 30%"),
        ("abc%", "not a percentage (got 'abc%'"),
        ("nan%", "not a percentage (got 'nan%'"),
        ("101%", "percentage out of range (got '101%', expected 0% to 100%)"),
        ("-1%", "percentage out of range (got '-1%'"),
        (
            30,
            "fraction out of range (got 30, expected a number between 0 and 1, or a percentage such as 30%; "
            "did you mean 30%?)",
        ),
        (-0.5, "fraction out of range (got -0.5"),
        (False, "not a percentage (got false"),
    ],
)
def test_parse_percent_rejects(value, message):
    with pytest.raises(ValueError) as info:
        parse_percent(value)
    assert str(info.value).startswith(message)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_percent_round_trip(fraction):
    assert parse_percent(f"{fraction * 100!r}%") == pytest.approx(fraction, abs=1e-12)
    assert parse_percent(fraction) == fraction


# ------------------------------------------------------------------------------------ bandwidth and rates


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("2Gbps", 2e9),
        ("400Mbps", 4e8),
        ("10kbps", 1e4),
        ("10Kbps", 1e4),
        ("1Tbps", 1e12),
        ("100bps", 100.0),
        ("1GB/s", 8e9),
        ("1GBps", 8e9),
        ("5 Mbit/s", 5e6),
        ("5Mb/s", 5e6),
        (1e9, 1e9),
    ],
)
def test_parse_bandwidth(text, bits):
    assert parse_bandwidth(text) == pytest.approx(bits)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-40Gbps", "bandwidth must be more than 0 (got '-40Gbps'"),
        ("0Gbps", "bandwidth must be more than 0 (got '0Gbps'"),
        (0, "bandwidth must be more than 0 (got 0"),
        ("2 gigabits", "not a bandwidth (got '2 gigabits', expected a bandwidth such as 400Mbps or 10Gbps)"),
        ("2Gbs", "not a bandwidth (got '2Gbs'"),
        ("2Xbps", "not a bandwidth (got '2Xbps'"),
        (None, "not a bandwidth (got null"),
    ],
)
def test_parse_bandwidth_rejects(value, message):
    with pytest.raises(ValueError) as info:
        parse_bandwidth(value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("500/s", 500.0),
        ("500/sec", 500.0),
        ("30k/min", 500.0),
        ("60/m", 1.0),
        ("3600/h", 1.0),
        ("2M/h", 2e6 / 3600),
        ("86400/d", 1.0),
        ("1.5k / s", 1500.0),
        ("0/s", 0.0),
        (12, 12.0),
    ],
)
def test_parse_rate(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("500", "not a rate (got '500', expected a rate such as 500/s, 30k/min or 2M/h)"),
        ("500 per second", "not a rate (got '500 per second'"),
        ("500/y", "not a rate (got '500/y'"),
        ("-5/s", "negative rate (got '-5/s', expected 0 or more)"),
        (-5, "negative rate (got -5"),
        (float("nan"), "not a rate (got nan"),
        ({"a": 1}, "not a rate (got a mapping"),
    ],
)
def test_parse_rate_rejects(value, message):
    with pytest.raises(ValueError) as info:
        parse_rate(value)
    assert str(info.value).startswith(message)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
    st.sampled_from([("s", 1.0), ("min", 60.0), ("h", 3600.0), ("d", 86400.0)]),
    st.sampled_from([("", 1.0), ("k", 1e3), ("M", 1e6)]),
)
def test_rate_round_trip(number, per, prefix):
    text = f"{number!r}{prefix[0]}/{per[0]}"
    assert parse_rate(text) == pytest.approx(number * prefix[1] / per[1], rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.booleans(), st.none()))
def test_parsers_raise_only_value_error(value):
    for parser in (parse_duration, parse_percent, parse_bandwidth, parse_rate):
        try:
            result = parser(value)
        except ValueError as exc:
            assert "(got " in str(exc)
        else:
            assert math.isfinite(result) and result >= 0


def test_a_number_written_as_text_is_seconds_like_a_bare_number():
    # YAML 1.1 reads `timeout: 1e6` as the string "1e6"; a user means a million seconds.
    assert parse_duration("1e6") == 1e6
    assert parse_duration(" 10 ") == 10.0
