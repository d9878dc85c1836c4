"""Units as people write them in scenarios (``250ms``, ``5m``, ``30%``, ``2Gbps``, ``500/s``), and as people
read them in reports.

Every parser takes a string (or a bare number in the base unit) and returns a float in the base unit:
seconds, a fraction in [0, 1], bits per second, or events per second. A bad value raises
``ValueError`` whose message reads ``what is wrong (got X, expected Y)``; the scenario loader prefixes
it with ``file:line:col: path``.

>>> parse_duration("250ms"), parse_duration("1h30m"), parse_percent("30%"), parse_rate("2k/min")
(0.25, 5400.0, 0.3, 33.333333333333336)
>>> parse_bandwidth("2Gbps"), format_duration(5400.0), format_duration(0.25)
(2000000000.0, '1h30m', '250ms')

:func:`format_duration` writes a duration the way a scenario does (messages about a scenario use it, and
:func:`parse_duration` reads it back). The reports — the terminal summaries, ``report.md`` and every HTML
page — show each quantity through one formatter, in one style, whatever the page:

========================  ===============================  ==========================================
quantity                  formatter                        examples
========================  ===============================  ==========================================
length of time            :func:`format_span`              ``850 ms``, ``10.6 s``, ``16 min 56 s``
point in time (run time)  :func:`format_clock`             ``0:10:10``, ``1:02:03.5``
share, availability       :func:`format_percent`           ``99.857%``, ``24%``, ``100%``
count                     :func:`format_count`             ``2,101``, ``1 replication``
rate                      :func:`format_rate`              ``1,234/s``, ``0.5/s``
latency                   :func:`format_latency`           ``126 ms``, ``3,156 ms``
ratio                     :func:`format_ratio`             ``1.23×``
nines                     :func:`format_nines`             ``3.30``
bandwidth                 :func:`format_bandwidth`         ``40 Gbit/s``
any other number          :func:`format_number`            ``3.17``, ``-13,570``
========================  ===============================  ==========================================

None of them writes an exponent, a ``.0`` on a whole count, or a number rounded into a better one (an
availability just under 100% never reads ``100%``). ``None`` reads ``—``.

>>> format_span(1015.614), format_clock(610.0), format_percent(0.998571), format_count(2101.0)
('16 min 56 s', '0:10:10', '99.857%', '2,101')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from sim.errors import show_value

__all__ = [
    "parse_duration",
    "parse_percent",
    "parse_bandwidth",
    "parse_rate",
    "parse_size",
    "format_duration",
    "format_span",
    "format_clock",
    "format_percent",
    "format_count",
    "format_rate",
    "format_latency",
    "format_ratio",
    "format_nines",
    "format_bandwidth",
    "format_number",
    "plural",
    "span_unit",
    "NONE",
    "Duration",
    "Percent",
    "Bandwidth",
    "Traffic",
    "Rate",
    "Size",
    "duration_range",
    "MAX_DURATION",
    "MAX_RATE",
    "MAX_BANDWIDTH",
    "MAX_SIZE",
]

MAX_DURATION = 100 * 365 * 86400.0
"""The longest duration a scenario may write anywhere (100y): far beyond any run, and small enough that
sums and products of durations stay finite."""
MAX_RATE = 1e9
"""The highest rate (1G/s): a billion requests or messages a second, more than any mail service sees."""
MAX_BANDWIDTH = 1e15
"""The highest bandwidth (1000Tbps)."""
MAX_SIZE = 1e15
"""The largest size (1000TB)."""

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 365 * 86400.0,
}
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(us|µs|ms|min|s|m|h|d|w|y)")
_BANDWIDTH = re.compile(rf"^\s*([+-]?)\s*({_NUMBER})\s*([kKMGT]?)(bps|bit/s|b/s|Bps|B/s)\s*$")
_RATE = re.compile(rf"^\s*([+-]?)\s*({_NUMBER})\s*([kKM]?)\s*/\s*(s|sec|m|min|h|d)\s*$")
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

_DURATION_EXAMPLES = "a duration such as 250ms, 30s, 5m, 2h or 1h30m"
_PERCENT_EXAMPLES = "a percentage such as 30% or 99.9%, or a fraction between 0 and 1"
_BANDWIDTH_EXAMPLES = "a bandwidth such as 400Mbps or 10Gbps"
_RATE_EXAMPLES = "a rate such as 500/s, 30k/min or 2M/h"


def show(value: Any) -> str:
    """:func:`~sim.errors.show_value`, with a whole number too long to read given by its length.

    >>> show(10**400), show(12)
    ('a 401-digit number', '12')
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 70:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else int(value.bit_length() * 0.30103) + 1
        return f"a {digits}-digit number"
    return show_value(value)


def _bad(what: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{what} (got {show(value)}, expected {expected})")


def _number(value: Any, noun: str, expected: str) -> float | None:
    """Return a bare number as a float, ``None`` for a string (to be parsed); raise for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(f"not {noun}", value, expected)
    if isinstance(value, str):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past 1.8e308
        what = "duration too long" if noun == "a duration" else f"{noun.split()[-1]} too large"
        raise _bad(what, value, f"a finite value: {expected}") from None
    if math.isnan(number) or math.isinf(number):
        raise _bad(f"not {noun}", value, f"a finite value: {expected}")
    return number


def parse_duration(value: Any) -> float:
    """Return seconds for ``"250ms"``, ``"5m"``, ``"2h"``, ``"1h30m"`` or a bare number of seconds.

    >>> parse_duration("1.5s"), parse_duration(90), parse_duration("2h 15m")
    (1.5, 90.0, 8100.0)
    """
    number = _number(value, "a duration", _DURATION_EXAMPLES)
    if number is None:
        text = value.strip()
        sign = 1.0
        if text and text[0] in "+-":
            sign, text = (-1.0 if text[0] == "-" else 1.0), text[1:]
        pos, total = 0, 0.0
        if re.fullmatch(_NUMBER, text.strip()):  # "1e6": YAML 1.1 reads it as a string; seconds
            text = text.strip() + "s"
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if not match:
                raise _bad("not a duration", value, _DURATION_EXAMPLES)
            total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if not text.strip():
            raise _bad("not a duration", value, _DURATION_EXAMPLES)
        number = sign * total
        if math.isinf(number):
            raise _bad("duration too long", value, "a finite duration")
    if number < 0:
        raise _bad("negative duration", value, "0 or more")
    return number


def parse_percent(value: Any) -> float:
    """Return a fraction for ``"30%"`` or ``"99.95%"``; a bare number is already a fraction (0.3).

    >>> parse_percent("99.9%"), parse_percent(0.25)
    (0.9990000000000001, 0.25)
    """
    number = _number(value, "a percentage", _PERCENT_EXAMPLES)
    if number is None:
        text = value.strip()
        try:
            if not text.endswith("%"):
                raise ValueError
            number = float(text[:-1]) / 100.0
        except ValueError:
            raise _bad("not a percentage", value, _PERCENT_EXAMPLES) from None
        if math.isnan(number):
            raise _bad("not a percentage", value, _PERCENT_EXAMPLES)
        if not 0.0 <= number <= 1.0:
            raise _bad("percentage out of range", value, "0% to 100%")
    elif not 0.0 <= number <= 1.0:
        hint = f"; did you mean {value:g}%?" if 1.0 < number <= 100.0 else ""
        raise _bad(
            "fraction out of range", value, f"a number between 0 and 1, or a percentage such as 30%{hint}"
        )
    return number


def parse_bandwidth(value: Any, *, zero: bool = False) -> float:
    """Return bits per second for ``"2Gbps"``, ``"400Mbps"``, ``"10GB/s"`` or a bare number of bit/s; with
    ``zero``, none (``0bps``, ``0``) too: traffic on a link may be nothing, a link's capacity may not.

    >>> parse_bandwidth("400Mbps"), parse_bandwidth("1GB/s")
    (400000000.0, 8000000000.0)
    """
    number = _number(value, "a bandwidth", _BANDWIDTH_EXAMPLES)
    if number is None:
        match = _BANDWIDTH.match(value)
        if not match:
            raise _bad("not a bandwidth", value, _BANDWIDTH_EXAMPLES)
        sign, digits, prefix, unit = match.groups()
        number = (
            float(digits) * _SI[prefix] * (8 if unit in ("Bps", "B/s") else 1) * (-1 if sign == "-" else 1)
        )
        if math.isinf(number):
            raise _bad("bandwidth too large", value, "a finite bandwidth")
    if number < 0 or (number == 0 and not zero):
        raise _bad("bandwidth must be more than 0" if not zero else "bandwidth must not be negative", value,
                   _BANDWIDTH_EXAMPLES)
    return number


def _parse_traffic(value: Any) -> float:
    return parse_bandwidth(value, zero=True)


def parse_rate(value: Any) -> float:
    """Return events per second for ``"500/s"``, ``"30k/min"``, ``"1M/h"`` or a bare number per second.

    >>> parse_rate("500/s"), parse_rate("30k/min"), parse_rate(12)
    (500.0, 500.0, 12.0)
    """
    number = _number(value, "a rate", _RATE_EXAMPLES)
    if number is None:
        match = _RATE.match(value)
        if not match:
            raise _bad("not a rate", value, _RATE_EXAMPLES)
        sign, digits, prefix, per = match.groups()
        number = float(digits) * _SI[prefix] / _PER[per] * (-1 if sign == "-" else 1)
        if math.isinf(number):
            raise _bad("rate too large", value, "a finite rate")
    if number < 0:
        raise _bad("negative rate", value, "0 or more")
    return number


_SIZE = re.compile(rf"^\s*({_NUMBER})\s*([kKMGT]?)(i?)B\s*$")
_SIZE_EXAMPLES = "a size such as 512MB, 16GB or 20kB"


def parse_size(value: Any) -> float:
    """Return bytes for ``"16GB"``, ``"512MB"``, ``"20kB"`` (SI) or ``"4GiB"`` (binary), or a bare number.

    >>> parse_size("16GB"), parse_size("1KiB"), parse_size(10)
    (16000000000.0, 1024.0, 10.0)
    """
    number = _number(value, "a size", _SIZE_EXAMPLES)
    if number is None:
        match = _SIZE.match(value)
        if not match:
            raise _bad("not a size", value, _SIZE_EXAMPLES)
        digits, prefix, binary = match.groups()
        scale = 1024.0 ** " KMGT".index(prefix.upper()) if binary and prefix else _SI[prefix]
        number = float(digits) * scale
        if math.isinf(number):
            raise _bad("size too large", value, "a finite size")
    if number < 0:
        raise _bad("negative size", value, "0 or more")
    return number


def format_duration(seconds: float) -> str:
    """Format seconds the way a person reads them, to the millisecond; :func:`parse_duration` reads it back.

    >>> format_duration(90), format_duration(0.25), format_duration(3725.5), format_duration(0)
    ('1m30s', '250ms', '1h2m5.5s', '0s')
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration (expected a finite number of seconds ≥ 0)")
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.6g}ms"
    millis = round(seconds * 1000)
    parts = []
    rest, ms = divmod(millis, 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if rest or ms:
        parts.append(f"{rest}.{ms:03d}".rstrip("0").rstrip(".") + "s")
    return "".join(parts)


# ------------------------------------------------------------------------------------------ for reports

NONE = "—"
"""What every formatter shows for a value that does not exist (``None``, NaN)."""


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_number(x: float | None, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (all the digits of its whole part), with thousands
    separators and a real minus sign, never in exponent notation.

    >>> format_number(3.14159), format_number(-13570.4), format_number(0.000123456), format_number(2.0)
    ('3.14', '−13,570', '0.000123', '2')
    """
    if _missing(x):
        return NONE
    assert x is not None
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{abs(x):,.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("−" if x < 0 and text.strip("0.,") else "") + text


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``noun`` or its plural (``noun + "s"`` unless given) as ``n`` calls for.

    >>> plural(1, "replication"), plural(3, "replication"), plural(2, "copy", "copies")
    ('replication', 'replications', 'copies')
    """
    return noun if n == 1 else (nouns if nouns is not None else noun + "s")


def format_count(n: float | None, noun: str | None = None, nouns: str | None = None) -> str:
    """A count: whole with thousands separators; a mean of counts below 100 keeps three significant
    digits. With ``noun``, the noun follows in the singular or plural.

    >>> format_count(2101.0), format_count(2100.96), format_count(2.5), format_count(1, "replication")
    ('2,101', '2,101', '2.5', '1 replication')
    >>> format_count(1380881, "request")
    '1,380,881 requests'
    """
    if _missing(n):
        return NONE if noun is None else f"{NONE} {nouns or noun + 's'}"
    assert n is not None
    whole = float(n).is_integer() or abs(n) >= 100
    text = f"{round(n):,}".replace("-", "−") if whole else format_number(n)
    if noun is None:
        return text
    return f"{text} {plural(1 if whole and round(n) == 1 else 2, noun, nouns)}"


def format_percent(fraction: float | None, decimals: int | None = None) -> str:
    """A fraction as a percentage. An availability shows its nines (as many decimals as the distance to
    100% needs, never rounded up to 100%), without trailing zeros; ``decimals`` fixes the decimals.

    >>> format_percent(0.998571), format_percent(0.93186), format_percent(0.999), format_percent(1.0)
    ('99.857%', '93.19%', '99.9%', '100%')
    >>> format_percent(0.24), format_percent(0.9999999), format_percent(0.625, decimals=0)
    ('24%', '99.99999%', '62%')
    """
    if _missing(fraction):
        return NONE
    assert fraction is not None
    if decimals is not None:
        return f"{fraction * 100:.{decimals}f}%".replace("-", "−")
    if not 0.0 <= fraction <= 1.0:
        return format_number(fraction * 100, 4) + "%"
    if fraction == 1.0:
        return "100%"
    places = max(1, min(6, math.ceil(-math.log10(max(1.0 - fraction, 1e-12)))))
    text = f"{fraction * 100:.{places}f}"
    while text.startswith("100") and places < 9:  # never round a failure up to 100%
        places += 1
        text = f"{fraction * 100:.{places}f}"
    return text.rstrip("0").rstrip(".") + "%"


def format_span(seconds: float | None) -> str:
    """A length of time (how long something lasted or took), in the two largest units that matter: below
    a second in milliseconds, below a minute in seconds (three significant digits), then whole units.

    >>> format_span(0.85), format_span(10.614), format_span(610), format_span(1015.614)
    ('850 ms', '10.6 s', '10 min 10 s', '16 min 56 s')
    >>> format_span(0), format_span(7200), format_span(7530), format_span(93784), format_span(59.99)
    ('0 s', '2 h', '2 h 6 min', '1 d 2 h', '1 min')
    """
    if _missing(seconds):
        return NONE
    assert seconds is not None
    if seconds < 0:
        return "−" + format_span(-seconds)
    if math.isinf(seconds):
        return "∞"
    if seconds == 0:
        return "0 s"
    if seconds < 1 and float(f"{seconds * 1000:.3g}") < 1000:
        return f"{format_number(seconds * 1000)} ms"
    if float(f"{seconds:.3g}") < 60:
        return f"{format_number(seconds)} s"
    for size, big, small, limit in ((1, "min", "s", 3600), (60, "h", "min", 86400), (3600, "d", "h", math.inf)):
        whole = round(seconds / size)  # in the smaller unit
        if whole * size < limit:
            per = 60 if small in ("s", "min") else 24
            major, minor = divmod(whole, per)
            return f"{major:,} {big}" + (f" {minor} {small}" if minor else "")
    raise AssertionError("unreachable")  # pragma: no cover


def format_clock(seconds: float | None) -> str:
    """A point in time, as time since the start of the run: ``h:mm:ss``, with tenths when not whole; from
    the fourth day on, days first (``58 d 13:58:48``: a year's hours are hard to read).

    >>> format_clock(610), format_clock(3723.5), format_clock(0), format_clock(90061), format_clock(5061528)
    ('0:10:10', '1:02:03.5', '0:00:00', '25:01:01', '58 d 13:58:48')
    """
    if _missing(seconds):
        return NONE
    assert seconds is not None
    tenths = math.floor(abs(seconds) * 10 + 1e-6)
    whole, tenth = divmod(tenths, 10)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    sign = "−" if seconds < 0 and tenths else ""
    days = f"{h // 24} d " if h >= 72 else ""
    return f"{sign}{days}{h % 24 if days else h}:{m:02d}:{s:02d}" + (f".{tenth}" if tenth else "")


def format_latency(seconds: float | None) -> str:
    """A latency (how long a request took), always in milliseconds so that latencies compare at a glance.

    >>> format_latency(0.126), format_latency(3.156), format_latency(0.00082), format_latency(2.0)
    ('126 ms', '3,156 ms', '0.82 ms', '2,000 ms')
    """
    if _missing(seconds):
        return NONE
    assert seconds is not None
    ms = seconds * 1000
    return f"{format_number(ms) if abs(ms) < 100 else format_number(round(ms), 1)} ms"


def format_rate(per_second: float | None) -> str:
    """Events per second.

    >>> format_rate(1234.4), format_rate(0.5), format_rate(12.345)
    ('1,234/s', '0.5/s', '12.3/s')
    """
    if _missing(per_second):
        return NONE
    return f"{format_number(per_second)}/s"


def format_nines(x: float | None) -> str:
    """Nines of availability (``−log₁₀(1 − availability)``), to two decimals: ``3.30``.

    >>> format_nines(3.3), format_nines(1.1674)
    ('3.30', '1.17')
    """
    if _missing(x):
        return NONE
    return f"{x:.2f}"


def format_ratio(x: float | None) -> str:
    """A ratio, such as attempts per request: ``1.23×`` (two decimals).

    >>> format_ratio(1.2345), format_ratio(1)
    ('1.23×', '1.00×')
    """
    if _missing(x):
        return NONE
    return f"{x:.2f}×".replace("-", "−")


def format_bandwidth(bits: float | None) -> str:
    """Bits per second in the unit that reads best.

    >>> format_bandwidth(4e10), format_bandwidth(2.5e6)
    ('40 Gbit/s', '2.5 Mbit/s')
    """
    if _missing(bits):
        return NONE
    assert bits is not None
    for unit, scale in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if abs(bits) >= scale:
            return f"{format_number(bits / scale)} {unit}"
    return f"{format_number(bits)} bit/s"


def span_unit(largest: float) -> tuple[str, float]:
    """The unit an axis of lengths of time up to ``largest`` seconds reads best in, and its size in seconds.

    >>> span_unit(0.4), span_unit(45), span_unit(600), span_unit(20000)
    (('ms', 0.001), ('s', 1.0), ('min', 60.0), ('h', 3600.0))
    """
    if largest < 1:
        return "ms", 1e-3
    if largest < 120:
        return "s", 1.0
    if largest < 7200:
        return "min", 60.0
    return "h", 3600.0


def _within(
    parser: Callable[[Any], float], low: float, high: float, above: bool, words: tuple[str, str],
    shown: Callable[[float], str],
) -> Callable[[Any], float]:
    """Wrap ``parser`` so that the value must lie in [low, high] (or (low, high] with ``above``)."""

    def parse(value: Any) -> float:
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000 and value > high:
            # past what a float holds: say the range rather than "not a finite value"
            raise _bad(words[1], value, f"at most {shown(high)}")
        number = parser(value)
        if number > high:
            raise _bad(words[1], value, f"at most {shown(high)}")
        if number < low or (above and number == low):
            raise _bad(words[0], value, f"{'more than' if above else 'at least'} {shown(low)}")
        return number

    return parse


def _unit(
    parser: Callable[[Any], float], pattern_doc: str, examples: list[Any], low: float, high: float,
    above: bool = False, words: tuple[str, str] = ("too small", "too large"),
    shown: Callable[[float], str] = lambda x: f"{x:g}",
) -> list[Any]:
    bound = {"exclusiveMinimum" if above else "minimum": low, "maximum": high}
    schema = {
        "anyOf": [{"type": "string", "description": pattern_doc}, {"type": "number", **bound}],
        "examples": examples,
    }
    return [
        BeforeValidator(_within(parser, low, high, above, words, shown)),
        WithJsonSchema(schema),
        PlainSerializer(float, return_type=float),
    ]


def duration_range(low: float = 0.0, high: float = MAX_DURATION, *, above: bool = False) -> list[Any]:
    """What makes a duration field: parse it, then require ``low`` ≤ it ≤ ``high`` seconds (``low`` < it with
    ``above``), said in the person's units; the JSON Schema carries the range for bare numbers. Use it as
    ``Annotated[float, *duration_range(1.0, 3600.0)]``.

    >>> from pydantic import TypeAdapter, ValidationError
    >>> window = TypeAdapter(Annotated[float, *duration_range(1.0, 3600.0)])
    >>> window.validate_python("30s")
    30.0
    >>> try:
    ...     window.validate_python("2h")
    ... except ValidationError as e:
    ...     print(e.errors()[0]["msg"])
    Value error, duration too long (got '2h', expected at most 1h)
    """
    return _unit(parse_duration, "duration: 250ms, 30s, 5m, 2h, 1d", ["30s", "5m"], low, high, above,
                 ("duration too short", "duration too long"), format_duration)


def _rate_text(x: float) -> str:
    return f"{x / 1e9:g}G/s" if x >= 1e9 else f"{x:g}/s"


def _si(unit: str) -> Callable[[float], str]:
    def text(x: float) -> str:
        for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):  # as the parsers read them
            if x >= scale:
                return f"{x / scale:g}{prefix}{unit}"
        return f"{x:g}{unit}"

    return text


Duration = Annotated[float, *duration_range()]
Percent = Annotated[float, *_unit(parse_percent, "percentage: 30%, 99.9%", ["99.9%"], 0.0, 1.0)]
Bandwidth = Annotated[
    float,
    *_unit(parse_bandwidth, "bandwidth: 400Mbps, 10Gbps", ["10Gbps"], 1.0, MAX_BANDWIDTH, False,
           ("bandwidth too small", "bandwidth too large"), _si("bps")),
]
# Traffic on a link, which may be none: a bandwidth of at least 0 (a link's capacity is a Bandwidth, at least 1).
Traffic = Annotated[
    float,
    *_unit(_parse_traffic, "bandwidth: 0bps, 800Mbps", ["800Mbps"], 0.0, MAX_BANDWIDTH, False,
           ("bandwidth too small", "bandwidth too large"), _si("bps")),
]
Rate = Annotated[
    float,
    *_unit(parse_rate, "rate: 500/s, 30k/min, 2M/h", ["500/s"], 0.0, MAX_RATE, False,
           ("rate too low", "rate too large"), _rate_text),
]
Size = Annotated[
    float,
    *_unit(parse_size, "size: 512MB, 16GB, 4GiB", ["16GB"], 0.0, MAX_SIZE, False,
           ("size too small", "size too large"), _si("B")),
]
