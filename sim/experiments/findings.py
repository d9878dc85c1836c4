"""What an experiment's numbers support, in one paragraph: the finding at the top of each report.

Pure functions of the result objects — :func:`comparison_finding`, :func:`sweep_finding`,
:func:`replications_finding`, :func:`capacity_finding` — returning plain text (the reports escape it), so
each can be tested on made-up rows without running anything or reading HTML. A finding states only what the
numbers support:

- a layout *wins* on a metric only when its lead over the runner-up is significant
  (:attr:`~sim.experiments.compare.Winner.significant`); otherwise the finding gives the means and says the
  difference is not significant, or that there are too few replications for a verdict;
- a sweep point *breaks* the availability objective when its whole interval lies below it, *holds* when
  its whole interval lies at or above it, and is *too close to call* otherwise (with one run per point,
  the run's value decides, and the finding says there is no interval); a point goes *metastable* when most
  of its runs did not recover after the last fault ended;
- a replication is the *worst* when it had the most downtime (then the lowest availability), and the
  command that reruns it is the one its row was made with (:func:`rerun_command`);
- a datacenter is the *weakest* when the worst single datacenter loss leaves it the most utilised (then
  by name); its *headroom* is the utilisation limit minus that.

How a sweep parameter reads — its words, unit and values (:class:`Axis`) — lives here too: the findings
name parameter regions with it, and the reports' axes, tables and headings use the same.

>>> rerun_command({"seed": 42, "engine": "flow"})
'cascadesim run SCENARIO --seed 42 --engine flow'
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, WithJsonSchema

from sim.experiments.metrics import Metric
from sim.experiments.stats import Interval, min_replications
from sim.experiments.text import fmt, fmt_interval, metric_title
from sim.units import (
    format_bandwidth,
    format_clock,
    format_count,
    format_number,
    format_percent,
    format_rate,
    format_span,
    span_unit,
)

if TYPE_CHECKING:
    from sim.experiments.capacity import CapacityReport
    from sim.experiments.compare import Comparison, Winner
    from sim.experiments.plan import Point
    from sim.experiments.replicate import Replications
    from sim.experiments.sweep import Parameter, SweepResult
    from sim.planner.headroom import Headroom

__all__ = [
    "comparison_finding",
    "sweep_finding",
    "capacity_finding",
    "weakest_datacenter",
    "replications_finding",
    "rerun_command",
    "worst_runs",
    "shared_faults_sentence",
    "slo_status",
    "Axis",
    "parameter_unit",
    "parameter_words",
]

HEADLINE = ("availability", "downtime_minutes")
"""The metrics a comparison's finding speaks of one by one (the others are grouped)."""

MAX_NAMED = 5  # fault ids, points or metrics named in a list before "and N more"
MAX_BINS = 8  # a parameter with more values than this is no staircase's steps (sampled designs)


# ------------------------------------------------------------------------------------------ words


def _listed(items: Sequence[str], limit: int = MAX_NAMED, *, last: str = "and", sep: str = ", ") -> str:
    """``a``, ``a and b``, ``a, b and c``, ``a, b, c and 4 more`` (``last`` joins the last two, ``sep`` the rest).

    >>> _listed(["a"]), _listed(["a", "b", "c"]), _listed(list("abcdefg"), 3), _listed(["x", "y"], last="or")
    ('a', 'a, b and c', 'a, b, c and 4 more', 'x or y')
    """
    items = list(items)
    if len(items) > limit:
        return f"{sep.join(items[:limit])} and {len(items) - limit} more"
    if len(items) <= 1:
        return "".join(items)
    return f"{sep.join(items[:-1])} {last} {items[-1]}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def rerun_command(row: dict[str, Any]) -> str:
    """The command that reruns the replication of ``row``: its own seed (not the root seed), and the engine it
    ran on, so the run is the same whatever the file's ``engine`` or a ``--engine`` given to the experiment.
    """
    engine = row.get("engine")
    return f"cascadesim run SCENARIO --seed {row['seed']}" + (f" --engine {engine}" if engine else "")


def worst_runs(rows: Iterable[dict[str, Any]], k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` rows with the most downtime, then the lowest availability (a run without requests, whose
    availability is ``None``, after those with one), then the lowest replication number.

    >>> [r["replication"] for r in worst_runs([
    ...     {"replication": 0, "downtime_minutes": 0.0, "availability": 0.999},
    ...     {"replication": 1, "downtime_minutes": 3.0, "availability": 0.99},
    ...     {"replication": 2, "downtime_minutes": 0.0, "availability": 0.98}], k=2)]
    [1, 2]
    """
    def key(r: dict[str, Any]) -> tuple[float, float, int]:
        availability = r.get("availability")
        return (-(r.get("downtime_minutes") or 0.0), 2.0 if availability is None else availability,
                r["replication"])

    return sorted(rows, key=key)[:k]


# ------------------------------------------------------------------------------------------ comparison


def _means(cmp: Comparison, m: Metric, names: Iterable[str]) -> str:
    return ", ".join(f"{name} {fmt(m, cmp.intervals[name][m.name].mean)}" for name in names)


def _direction(m: Metric) -> str:
    return "higher" if m.better == "higher" else "lower"


def _winner_sentence(cmp: Comparison, m: Metric, w: Winner) -> str:
    """One metric's verdict in a sentence: who wins and how surely, or why no one can be said to."""
    title = metric_title(m)
    if w.layout is None:
        if w.difference is not None:
            return f"On {title} the best layouts tie: every replication gave them the same value."
        return f"No layout has a value of {title}."
    if w.runner_up is None or w.verdict is None or w.difference is None:
        return f"Only {w.layout} has a value of {title}."
    v = w.verdict
    lead = cmp.intervals[w.layout][m.name].mean
    other = cmp.intervals[w.runner_up][m.name].mean
    means = f"{fmt(m, lead)} against {w.runner_up}'s {fmt(m, other)}"
    diff = fmt_interval(m, w.difference, diff=True)
    pairs = format_count(v.n, "pair")
    if v.significant:
        return (f"{w.layout} wins on {title}: {means}, a paired difference of {diff} per replication "
                f"({v.test}, {pairs}, significant at {format_percent(cmp.confidence)}).")
    lead_text = (f"{w.layout} and {w.runner_up} have the same mean {title} ({fmt(m, lead)})"
                 if w.difference.mean == 0 else f"{w.layout} has the {_direction(m)} mean {title} ({means})")
    if v.status == "not enough replications":
        return (f"{lead_text}, but only {pairs} of replications have a value in both, and a verdict needs "
                f"{v.needed}: neither can be said to win on it.")
    return (f"{lead_text}, but the paired difference, {diff} ({v.test}, {pairs}), is not significant: neither "
            "can be said to win on it.")


def shared_faults_sentence(cmp: Comparison) -> str:
    """Whether the layouts met the same failures: the faults they share by id, and each one's own."""
    common, own = cmp.shared_faults()
    alone = "; ".join(f"only {name} has {_listed(ids)}" for name, ids in own.items() if ids)
    if not common:
        if not alone:
            return "No layout has a fault."
        return (f"The layouts share no fault by id, so their failures were drawn independently, not matched "
                f"replication by replication ({alone}).")
    text = (f"Every layout met the same failures in each replication ({format_count(len(common), 'fault')} "
            f"shared by id: {_listed(common)})")
    return text + (f"; {alone}." if alone else ".")


def comparison_finding(cmp: Comparison) -> str:
    """Which layout wins what, and how surely: availability and downtime one by one, the other metrics
    grouped (significant wins by layout; no significant difference; too few replications), then whether the
    layouts met the same failures.
    """
    judged = [m for m in cmp.metrics if m.domain is not None and m.better is not None]
    needed = min_replications(cmp.confidence)
    n = cmp.replications
    parts: list[str] = []
    if n < needed:
        parts.append(
            f"With {format_count(n, 'replication')} of each layout, no layout can be said to win on anything: a "
            f"verdict needs at least {needed} paired replications."
        )
        shown = [m for m in judged if m.name in HEADLINE]
        if shown:
            parts.append("Means so far, not a ranking: " + "; ".join(
                f"{metric_title(m)} {_means(cmp, m, cmp.layouts)}" for m in shown) + ".")
    else:
        parts += [_winner_sentence(cmp, m, cmp.winners[m.name]) for m in judged if m.name in HEADLINE]
        parts += _other_metrics(cmp, [m for m in judged if m.name not in HEADLINE])
    parts.append(shared_faults_sentence(cmp))
    return " ".join(parts)


def _other_metrics(cmp: Comparison, metrics: list[Metric]) -> list[str]:
    """The metrics past the headline, grouped: who wins which (significantly), which show no significant
    difference, which have too few values to judge, which tie.
    """
    wins: dict[str, list[str]] = {}
    unsure: list[str] = []
    few: list[str] = []
    ties: list[str] = []
    for m in metrics:
        w = cmp.winners[m.name]
        title = metric_title(m)
        if w.layout is None or w.verdict is None:
            (ties if w.difference is not None else few).append(title)
        elif w.significant:
            wins.setdefault(w.layout, []).append(title)
        elif w.verdict.status == "not enough replications":
            few.append(title)
        else:
            unsure.append(title)
    out = []
    if wins:
        out.append("Among the other metrics, " + "; ".join(
            f"{name} wins on {_listed(titles, 8)}" for name, titles in wins.items()) + " (significant).")
    if unsure:
        out.append(f"No significant difference in {_listed(unsure, 8)}.")
    if few:
        out.append(f"Too few replications with a value to judge {_listed(few, 8)}.")
    if ties:
        out.append(f"Tied in every replication: {_listed(ties, 8)}.")
    return out


# ------------------------------------------------------------------------------------------ replications


def replications_finding(reps: Replications) -> str:
    """The availability with its interval against the objective, the share of runs meeting the SLO, and the
    worst replication with the command that reruns it.
    """
    objective = reps.scenario.slo.availability
    by_name = {m.name: m for m in reps.metrics}
    parts = []
    runs = format_count(reps.n, "replication")
    if "availability" in reps.intervals:
        m, iv = by_name["availability"], reps.intervals["availability"]
        if iv.mean is None:
            parts.append(f"None of the {runs} had a user request, so there is no availability.")
        else:
            parts.append(f"Over {runs}, availability was {fmt_interval(m, iv, label=True)}"
                         f"{_against(iv, objective)}.")
    else:
        parts.append(f"{_sentence(runs)} ran.")
    parts.append(_slo_share(reps, by_name, objective))
    if reps.rows:
        worst = worst_runs(reps.rows, 1)[0]
        what = [f"{metric_title(by_name[k])} {fmt(by_name[k], worst.get(k))}" for k in HEADLINE if k in by_name]
        parts.append(
            f"The worst replication is number {worst['replication']} (seed {worst['seed']})"
            + (f": {', '.join(what)}" if what else "")
            + f"; “{rerun_command(worst)}” reruns it."
        )
    return " ".join(p for p in parts if p)


def _against(iv: Interval, objective: float) -> str:
    """Where an availability interval lies against the objective, as far as it can say."""
    target = format_percent(objective)
    if iv.mean is None:
        return ""
    if iv.low is None or iv.high is None:
        side = "below" if iv.mean < objective else "at or above"
        return f", {side} the {target} objective in its one run (no interval)"
    if iv.high < objective:
        return f", below the {target} objective: the whole interval is under it"
    if iv.low >= objective:
        return f", meeting the {target} objective: the whole interval is at or above it"
    return f"; the interval straddles the {target} objective, so these runs cannot say on which side of it the " \
        "availability lies"


def _slo_share(reps: Replications, by_name: dict[str, Metric], objective: float) -> str:
    """How many runs met the SLO (``slo.met``), or, when it was not kept, the availability objective."""
    if "slo.met" in reps.intervals:
        known = [r["slo.met"] for r in reps.rows if r.get("slo.met") is not None]
        iv = reps.intervals["slo.met"]
        shown = "" if iv.low is None else f": {fmt_interval(by_name['slo.met'], iv, label=True)}"
        return f"The SLO was met in {sum(bool(v) for v in known)} of {format_count(len(known), 'run')}{shown}."
    known = [r["availability"] for r in reps.rows if r.get("availability") is not None]
    if not known:
        return ""
    met = sum(a >= objective for a in known)
    runs = format_count(len(known), "run")
    return f"Availability reached the {format_percent(objective)} objective in {met} of {runs}."


# ------------------------------------------------------------------------------------------ sweep


def slo_status(result: SweepResult, point: Point) -> str | None:
    """Whether a sweep point breaks the SLO: ``breaks``, ``holds``, ``unclear`` (the availability interval
    straddles the objective), or ``None`` (nothing to judge by). By availability against the point's own
    objective when the sweep kept it (the whole interval below: breaks; one run each: that run's value), else
    by ``slo.met``: breaks where most runs missed the SLO.
    """
    ivs = result.intervals[point.index]
    if "availability" in ivs:
        iv = ivs["availability"]
        objective = point.scenario.slo.availability
        if iv.mean is None:
            return None
        if iv.low is None or iv.high is None:
            return "breaks" if iv.mean < objective else "holds"
        return "breaks" if iv.high < objective else "holds" if iv.low >= objective else "unclear"
    if "slo.met" in ivs:
        iv = ivs["slo.met"]
        return None if iv.mean is None else "breaks" if iv.mean < 0.5 else "holds"
    return None


def sweep_finding(result: SweepResult) -> str:
    """Which region of the parameters breaks the SLO, and which goes metastable, in words with the
    parameters' values (a threshold on one parameter or two when one describes the region exactly, else the
    points themselves).
    """
    sweep = result.sweep
    points = sweep.points
    axes = {p.path: Axis(p, sweep.base, (pt.params[p.path] for pt in points)) for p in sweep.parameters}
    parts = [_slo_part(result, axes), _metastable_part(result, axes)]
    parts = [p for p in parts if p]
    return " ".join(parts) or (
        f"The sweep kept neither availability, the SLO nor metastability, so this finding cannot say where "
        f"the service breaks; the {format_count(len(points), 'point')} are below."
    )


def _label(point: Point, axes: dict[str, Axis]) -> str:
    return ", ".join(f"{a.words} {a.text(point.params[path])}" for path, a in axes.items())


def _condition(p: Parameter, axis: Axis, points: list[Point], inside: set[int]) -> list[tuple[str, set[int]]]:
    """Conditions on one parameter that hold for every point ``inside``: (words, the points they hold for)."""
    values = {pt.index: pt.params[p.path] for pt in points}
    chosen = [values[i] for i in inside]
    out = []
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values())
    if p.numeric and numbers:
        low, high = min(chosen), max(chosen)
        top, bottom = max(values.values()), min(values.values())
        # A threshold at the end of the swept range says no more than the values swept.
        above = f"{axis.text(low)} (the most swept)" if low == top else f"{axis.text(low)} or more"
        below = f"{axis.text(high)} (the least swept)" if high == bottom else f"{axis.text(high)} or less"
        out.append((f"{axis.words} is {above}", {i for i, v in values.items() if v >= low}))
        out.append((f"{axis.words} is {below}", {i for i, v in values.items() if v <= high}))
    else:
        kinds = {str(v) for v in chosen}
        shown = _listed([axis.text(v) for v in dict.fromkeys(chosen)], 8, last="or")
        out.append((f"{axis.words} is {shown}", {i for i, v in values.items() if str(v) in kinds}))
    everything = set(values)
    return [(words, held) for words, held in out if held != everything]


def _region(sweep_params: list[Parameter], axes: dict[str, Axis], points: list[Point], inside: set[int]) -> str:
    """The points ``inside`` in words: ``wherever A is 2 or more``, ``... and B is 10/s or more``, a boundary
    that steps (:func:`_staircase`), or, when none of these picks exactly them, the points by their values.
    """
    options = [_condition(p, axes[p.path], points, inside) for p in sweep_params]
    for conditions in options:
        for words, held in conditions:
            if held == inside:
                return f"wherever {words}"
    for a, b in itertools.combinations(options, 2):
        for (wa, ha), (wb, hb) in itertools.product(a, b):
            if ha & hb == inside:
                return f"wherever {wa} and {wb}"
    stairs = _staircase(sweep_params, axes, points, inside)
    if stairs is not None:
        return stairs
    return "at " + _listed([_label(pt, axes) for pt in points if pt.index in inside], 4, sep="; ")


MAX_STEPS = 4  # a boundary described in more steps than this is listed by its points instead


def _staircase(params: list[Parameter], axes: dict[str, Axis], points: list[Point], inside: set[int]) -> str | None:
    """A boundary that steps: for each value of one parameter, a threshold on another (``users peak is 12/s or
    more with client retries 0, or 10/s or more with client retries 1, 2 or 3``) — what a metastability map or
    a retries × load grid usually shows. The description with the fewest steps, or ``None`` when no pair of
    parameters gives one of at most :data:`MAX_STEPS`.
    """
    best: list[str] | None = None
    for p, q in itertools.permutations(params, 2):
        qv = {pt.index: pt.params[q.path] for pt in points}
        if not q.numeric or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in qv.values()):
            continue
        slices: dict[Any, list[Point]] = {}
        for pt in points:
            slices.setdefault(pt.params[p.path], []).append(pt)
        if len(slices) > MAX_BINS:
            continue
        for above in (True, False):
            steps = _steps(slices, qv, inside, above)
            if steps is None:
                continue
            p_axis, q_axis = axes[p.path], axes[q.path]
            phrases = []
            for kind, values in steps.items():
                where = f"with {p_axis.words} {_listed([p_axis.text(v) for v in values], 8, last='or')}"
                if kind is None:
                    phrases.append(f"any {q_axis.words} swept {where}")
                else:
                    t, end = kind
                    edge = ("(the most swept)" if above else "(the least swept)") if end else (
                        "or more" if above else "or less")
                    phrases.append(f"{q_axis.text(t)} {edge} {where}")
            if not phrases or phrases[0].startswith("any ") or len(phrases) > MAX_STEPS:
                continue
            phrases[0] = f"{q_axis.words} is {phrases[0]}"
            if best is None or len(phrases) < len(best):
                best = phrases
    if best is None:
        return None
    return "wherever " + (best[0] if len(best) == 1 else ", ".join(best[:-1]) + ", or " + best[-1])


def _steps(
    slices: dict[Any, list[Point]], qv: dict[int, Any], inside: set[int], above: bool
) -> dict[tuple[Any, bool] | None, list[Any]] | None:
    """Per slice (one value of the slicing parameter) the threshold on ``qv`` that picks exactly its points
    ``inside`` — ``(threshold, at the end of the slice's values)``, ``None`` for all of them — grouped by
    threshold (thresholds first, "all" last; slices with none inside left out); ``None`` when some slice has
    no such threshold.
    """
    found: dict[tuple[Any, bool] | None, list[Any]] = {}
    for value, pts in slices.items():
        chosen = [qv[pt.index] for pt in pts if pt.index in inside]
        if not chosen:
            continue
        t = min(chosen) if above else max(chosen)
        held = {pt.index for pt in pts if (qv[pt.index] >= t if above else qv[pt.index] <= t)}
        if held != {pt.index for pt in pts if pt.index in inside}:
            return None
        values = [qv[pt.index] for pt in pts]
        kind = None if len(held) == len(pts) else (t, t == (max(values) if above else min(values)))
        found.setdefault(kind, []).append(value)
    return dict(sorted(found.items(), key=lambda item: item[0] is None))


def _slo_part(result: SweepResult, axes: dict[str, Axis]) -> str:
    sweep = result.sweep
    points = sweep.points
    status = {pt.index: slo_status(result, pt) for pt in points}
    judged = [pt for pt in points if status[pt.index] is not None]
    if not judged:
        return ""
    by_availability = "availability" in result.intervals[points[0].index]
    objectives = {pt.scenario.slo.availability for pt in points}
    target = f"the {format_percent(objectives.pop())} objective" if len(objectives) == 1 else "each point's objective"
    breaks = {pt.index for pt in judged if status[pt.index] == "breaks"}
    unclear = [pt for pt in judged if status[pt.index] == "unclear"]
    holds = [pt for pt in judged if status[pt.index] == "holds"]
    single = all(result.intervals[pt.index]["availability"].low is None for pt in judged) if by_availability else False
    total = format_count(len(judged), "point")
    if by_availability:
        m = next(m for m in sweep.metrics if m.name == "availability")
        rule = "its one run" if single else f"its whole {format_percent(result.confidence)} interval"
        if not breaks:
            lowest = min(judged, key=lambda pt: result.intervals[pt.index]["availability"].mean or 0.0)
            iv = result.intervals[lowest.index]["availability"]
            text = (f"No point's availability is below {target} ({rule}) at any of the {total}; the lowest is "
                    f"{fmt_interval(m, iv)} at {_label(lowest, axes)}.")
        else:
            where = "at every one of the " + total if len(breaks) == len(judged) else (
                f"{_region(sweep.parameters, axes, judged, breaks)} ({len(breaks)} of {total})")
            worst = min((pt for pt in judged if pt.index in breaks),
                        key=lambda pt: result.intervals[pt.index]["availability"].mean or 0.0)
            iv = result.intervals[worst.index]["availability"]
            text = (f"Availability is below {target} ({rule}) {where}; the lowest is {fmt_interval(m, iv)} at "
                    f"{_label(worst, axes)}.")
        if single:
            text += " One run per point: no interval, so these are single runs, not estimates."
        elif breaks and (holds or unclear):
            text += f" It meets the objective at {format_count(len(holds), 'point')}"
            text += f" and is too close to call at {len(unclear)}." if unclear else "."
        elif unclear:
            text += f" At {format_count(len(unclear), 'point')} the interval straddles the objective."
        return text
    if not breaks:
        return f"Most runs met the SLO at every one of the {total}."
    if len(breaks) == len(judged):
        return f"Most runs missed the SLO at every one of the {total}."
    return f"Most runs missed the SLO {_region(sweep.parameters, axes, judged, breaks)} ({len(breaks)} of {total})."


def _metastable_part(result: SweepResult, axes: dict[str, Axis]) -> str:
    sweep = result.sweep
    if not any(m.name == "recovery.metastable" for m in sweep.metrics):
        return ""
    shares = {pt.index: result.intervals[pt.index]["recovery.metastable"].mean for pt in sweep.points}
    judged = [pt for pt in sweep.points if shares[pt.index] is not None]
    if not judged:
        return ""
    most = {pt.index for pt in judged if (shares[pt.index] or 0.0) >= 0.5}
    some = [pt for pt in judged if (shares[pt.index] or 0.0) > 0]
    total = format_count(len(judged), "point")
    what = "did not recover after the last fault ended (metastable)"
    if not some:
        return f"No run went metastable: every run recovered after the last fault ended, at all {total}."
    if not most:
        return (f"Some runs {what} at {format_count(len(some), 'point')} "
                f"({_listed([_label(pt, axes) for pt in some], 3, sep='; ')}), but never most of a "
                "point's runs.")
    where = f"at every one of the {total}" if len(most) == len(judged) else (
        f"{_region(sweep.parameters, axes, judged, most)} ({len(most)} of {total})")
    return f"Most runs {what} {where}."


# ------------------------------------------------------------------------------------------ parameters

# The unit of a scenario field, from the JSON Schema sim.units gives each unit type ("duration: 250ms, ...").
_UNIT_WORDS = {"duration": "duration", "percentage": "percent", "rate": "rate", "bandwidth": "bandwidth",
               "size": "size"}
# Section and list names a parameter's words leave out ("workload.regions.users.peak" is "users peak").
_SECTIONS = {"workload", "policies", "topology", "control", "faults", "slo", "flow"}
_LISTS = {"regions", "datacenters", "servers", "databases", "dependencies", "links", "load_balancers"}


def _unit_in(annotation: Any) -> str | None:
    """The unit a field's annotation (or its metadata) is written in, if it is one of sim.units' types."""
    if isinstance(annotation, WithJsonSchema):
        schema = annotation.json_schema or {}
        for option in schema.get("anyOf", []):
            word = str(option.get("description", "")).split(":")[0]
            if word in _UNIT_WORDS:
                return _UNIT_WORDS[word]
        return None
    for part in (*getattr(annotation, "__metadata__", ()), *typing.get_args(annotation)):
        found = _unit_in(part)
        if found is not None:
            return found
    return None


def _inner(annotation: Any) -> Any:
    """The item type of a list or the value type of a mapping (through ``| None`` and ``Annotated``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _inner(args[0])
    if origin in (list, tuple, set, frozenset):
        return args[0] if args else None
    if origin is dict:
        return args[1] if len(args) == 2 else None
    for member in args:  # a union: the member that holds items
        found = _inner(member) if member is not type(None) else None
        if found is not None:
            return found
    return None


def parameter_unit(scenario: Any, parts: Sequence[Any]) -> str | None:
    """The unit of the scenario field a sweep parameter's path leads to (``duration``, ``rate``,
    ``percent``, ``bandwidth``, ``size``), read from the field's type in the base scenario; ``None`` for a
    plain number, a word, or a path the scenario does not hold.
    """
    node: Any = scenario
    annotation: Any = None
    for part in parts:
        if isinstance(node, BaseModel):
            fields = type(node).model_fields
            if not isinstance(part, str) or part not in fields:
                return None
            info = fields[part]
            annotation = typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            node = getattr(node, part)
        elif isinstance(node, list | tuple):
            if isinstance(part, int):
                node = node[part] if 0 <= part < len(node) else None
            else:
                node = next((x for x in node if part == "*" or getattr(x, "id", None) == part
                             or getattr(x, "datacenter", None) == part), None)
            annotation = _inner(annotation)
        elif isinstance(node, dict):
            node, annotation = node.get(part), _inner(annotation)
        else:
            return None
    return _unit_in(annotation)


def parameter_words(path: str, parts: Sequence[Any]) -> str:
    """A parameter's path as words: ``workload.regions.users.peak`` → ``users peak``."""
    words = [str(p) for p in parts]
    if len(words) > 1 and words[0] in _SECTIONS:
        words = words[1:]
    kept = [w for i, w in enumerate(words) if not (w in _LISTS and i + 1 < len(words)) and w != "*"]
    return " ".join(kept).replace("_", " ") or path


class Axis:
    """How a sweep parameter reads on an axis, in a table, a heading and a finding: words, a unit, its values."""

    def __init__(self, p: Parameter, scenario: Any, values: Iterable[Any] = ()):
        self.path = p.path
        self.numeric = p.numeric
        self.unit = parameter_unit(scenario, p.parts) if p.numeric else None
        self.words = parameter_words(p.path, p.parts)
        numbers = [abs(float(v)) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        largest = max(numbers, default=0.0)
        self.factor, unit = 1.0, ""
        if self.unit == "duration":
            unit, size = span_unit(largest)
            self.factor = 1.0 / size
        elif self.unit == "percent":
            self.factor, unit = 100.0, "%"
        elif self.unit == "rate":
            unit = "per second"
        elif self.unit == "bandwidth":
            self.factor, unit = 1e-9, "Gbit/s"
        elif self.unit == "size":
            self.factor, unit = 1e-9, "GB"
        self.title = self.words + (f" ({unit})" if unit else "")

    def text(self, value: Any) -> str:
        """One value, through the formatter of its unit (``1 min 20 s``, ``12/s``, ``30%``)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return str(value)
        formatter: dict[str | None, Callable[[float], str]] = {
            "duration": format_span, "percent": format_percent, "rate": format_rate, "bandwidth": format_bandwidth,
        }
        return formatter[self.unit](value) if self.unit in formatter else format_number(value, 4)


# ------------------------------------------------------------------------------------------ capacity


def weakest_datacenter(report: CapacityReport) -> tuple[str, str | None, float] | None:
    """The datacenter the worst single datacenter loss leaves the most utilised: (it, the datacenter whose
    loss does it — ``None``: none does worse than the normal state —, its utilisation then). ``None``
    when no datacenter survives any loss (a topology of one).
    """
    best: tuple[str, str | None, float] | None = None
    for loss in [report.normal, *report.losses]:  # the normal state first: a loss must do worse to be named
        for dc, u in sorted(loss.utilisation.items()):
            if best is None or u > best[2] or (u == best[2] and dc < best[0]):
                best = (dc, loss.lost[0] if loss.lost else None, u)
    return best


def capacity_finding(report: CapacityReport) -> str:
    """Which datacenter is the weakest at the peak, what headroom it has left (or what it lacks), whether
    N+1 and N+2 hold, and what the figures leave out.
    """
    limit = format_percent(report.max_utilisation, decimals=0)
    surges = [f"{name} ×{f:g}" for name, f in report.surges.items() if f != 1.0]
    counted = (f"the {_listed(surges)} surge{'s' if len(surges) > 1 else ''} and " if surges else "") + \
        "the client retries the availability objective allows"
    parts = [f"At the peak ({format_clock(report.at)} into the run, {format_rate(sum(report.load.values()))} "
             f"offered, counting {counted}),"]
    weakest = weakest_datacenter(report)
    if weakest is None:
        parts[0] += " no datacenter survives the loss of another."
    else:
        dc, cause, u = weakest
        when = f"if {cause} fails it runs at" if cause else "it runs at"
        head = report.max_utilisation - u
        parts[0] += (f" {dc} is the weakest datacenter: {when} {format_percent(u, decimals=1)} of its capacity, "
                     + (f"leaving {_points(head)} of headroom under the {limit} limit."
                        if head >= 0 else f"{_points(-head)} over the {limit} limit"))
        extra = report.needed[dc]["n_plus_1"]["extra_servers"]
        if head < 0:
            parts[0] += f", and needs {format_count(extra, 'more server')} to absorb it." if extra else "."
    parts.append(_n_plus(report, 1))
    if report.pairs:
        parts.append(_n_plus(report, 2))
    parts.append("Not counted: the retries of an overload, which multiply the load once a survivor tips over; "
                 "only the simulation (cascadesim run) shows them.")
    if report.planned is not None:
        parts.append(_planned_finding(report.planned))
    return " ".join(parts)


def _planned_finding(planned: Headroom) -> str:
    """Today's planned downtime a year against the budget, and the smallest fleet size within it."""
    from sim.experiments.report.planner import minutes

    today = planned.today
    d = today.years.downtime
    between = "" if d.low is None or d.high is None else f" ({minutes(d.low)} to {minutes(d.high)})"
    per = today.years.unit
    text = (f"Planned over {format_count(today.years.years, per)}, today's {format_count(today.servers, 'server')} "
            f"have {minutes(d.mean)} of downtime a {per}{between} against a budget of "
            f"{minutes(planned.budget_minutes)}")
    fit = planned.enough("mean")
    if fit is None:
        return text + f"; none of the sizes planned (up to ×{planned.sizes[-1].scale:g}) is within it."
    if fit.scale == 1.0:
        return text + ": within it."
    return text + f"; {format_count(fit.servers, 'server')} (×{fit.scale:g}) are the fewest planned within it."


def _points(share: float) -> str:
    """A difference of utilisations, in percentage points: ``22.7 points``."""
    return f"{format_number(round(share * 100, 1))} points"


def _n_plus(report: CapacityReport, n: int) -> str:
    """Whether every loss of ``n`` datacenters is absorbed, and if not, which are not and what it takes."""
    cases = report.losses if n == 1 else report.pairs
    if all(c.absorbed for c in cases):
        return f"N+{n} holds: the loss of any {'one datacenter' if n == 1 else 'two datacenters'} is absorbed."
    failing = [" + ".join(c.lost) for c in cases if not c.absorbed]
    head = report.headroom(n)
    if head is None:
        return (f"N+{n} is impossible with this topology: losing {_listed(failing, last='or')} leaves some region "
                "without a datacenter or some database without a copy.")
    return (f"N+{n} does not hold: the loss of {_listed(failing, last='or')} is not absorbed; the busiest survivor "
            f"needs {format_percent(head, decimals=0)} more capacity.")
