"""``cascadesim plan``: many years of a layout (or several, paired) from the planner, in seconds a year."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from sim.cli.options import executor_from_options, executor_options, quiet_option
from sim.cli.output import fail_error, runs_progress
from sim.errors import ScenarioError, printable
from sim.exits import EXIT_OK, EXIT_SLO, fail_invalid

__all__ = ["plan_command", "format_years"]


@click.command("plan")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--years", "-n", type=click.IntRange(min=1), default=100, show_default=True,
              help="Years to plan (runs of the scenario's duration, year i with replication i's seed).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Root seed [default: the first scenario's].")
@click.option("--json", "as_json", is_flag=True, help="Print the full answer as JSON.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also write the full answer (every year) to this JSON file, atomically.")
@quiet_option
@executor_options
def plan_command(scenarios: tuple[str, ...], years: int, seed: int | None, as_json: bool, out: str | None,
                 quiet: bool, jobs: int | None, dask_scheduler: str | None, dask_local: int | None) -> None:
    """Plan SCENARIOS' years: availability and downtime a year with intervals, the P95 year, the share of
    years over the downtime budget, where the loss comes from; with several layouts, each against the
    first, year by year (the same failures where they share servers).

    The planner does not simulate traffic: it replays the outages (server crashes, datacenter outages) and
    failovers and prices each state with overload curves the flow engine measures once per server group
    (cached in ~/.cache/cascadesim, or $CASCADESIM_CACHE). Exit 3 when a layout's mean availability is
    below its objective.
    """
    from sim.loader import load_scenario
    from sim.planner import refusals
    from sim.planner.years import YearsSummary, paired, plan_years
    from sim.report.files import atomic_file, to_json

    models = []
    for path in scenarios:
        try:
            models.append(load_scenario(path, checks=refusals))
        except ScenarioError as err:
            fail_invalid(err)
    root = models[0].seed if seed is None else seed
    executor = executor_from_options(jobs, dask_scheduler, dask_local)
    summaries = []
    with executor:
        for model in models:
            with runs_progress(f"{model.name}: years", quiet) as progress:
                rows = plan_years(model, years, seed=root, executor=executor, progress=progress)
            summaries.append(YearsSummary.of(model, rows))
    comparisons = [paired(summaries[0], s) for s in summaries[1:]]
    answer: dict[str, Any] = {"seed": root, "layouts": [s.as_dict() for s in summaries],
                              "compared_with_first": [_plain(c) for c in comparisons]}
    if out is not None:
        try:
            atomic_file(Path(out), to_json(answer).encode())
        except OSError as exc:
            fail_error(exc)
    if as_json:
        answer_short = dict(answer, layouts=[{k: v for k, v in s.items() if k != "rows"} for s in answer["layouts"]])
        click.echo(to_json(answer_short), nl=False)
    else:
        click.echo(format_years(summaries, comparisons))
        if out is not None:
            click.echo(f"  every year    {printable(out)}")
    met = all(s.availability.mean is not None and s.availability.mean >= s.slo_availability for s in summaries)
    sys.exit(EXIT_OK if met else EXIT_SLO)


def _plain(x: Any) -> Any:
    if hasattr(x, "as_dict"):
        return x.as_dict()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def format_years(summaries: list[Any], comparisons: list[dict[str, Any]]) -> str:
    """What ``cascadesim plan`` prints: per layout, its years; then each layout against the first."""
    from sim.units import format_count, format_percent, format_span

    lines: list[str] = []
    for s in summaries:
        a, d, p = s.availability, s.downtime, s.downtime_percentiles
        span = format_span(s.duration)
        what = "years" if s.duration >= _YEAR_LIKE else "runs"  # a scenario's duration is its "year"
        lines += [
            f"{s.scenario}  ({s.years:,} {what} of {span}, planned)",
            f"  availability  {format_percent(a.mean)}  (95% interval {_between(a, format_percent)})",
            f"  downtime      {_minutes(d.mean)} a {what[:-1]} (95% interval {_between(d, _minutes)}); "
            f"P50 {_minutes(p['p50'])}, P95 {_minutes(p['p95'])}, P99 {_minutes(p['p99'])}, worst {_minutes(p['max'])}",
            f"  budget        {_minutes(s.budget_minutes)} a {what[:-1]} ({format_percent(s.slo_availability)} of "
            f"{span}): {format_percent(s.over_budget.mean)} of {what} over it",
            f"  worst region  {s.worst_region()}  {format_percent(s.regions[s.worst_region()]['availability'].mean)}",
            "  lost requests " + ", ".join(f"{name.replace('_', ' ')} {share:.1%}" for name, _, share in s.pareto())
            + f"  ({format_count(sum(s.lost_by_mechanism.values()))} a {what[:-1]})",
        ]
    for s, c in zip(summaries[1:], comparisons, strict=True):
        av, dt = c["availability"], c["downtime_minutes"]
        per = "year" if s.duration >= _YEAR_LIKE else "run"
        lines.append(f"{s.scenario} − {summaries[0].scenario}  ({per} by {per}, the same failures)")
        lines.append(f"  availability  {_signed_pp(av['difference'].mean)} "
                     f"({_between(av['difference'], _signed_pp)}): {av['verdict']}")
        lines.append(f"  downtime      {_signed_minutes(dt['difference'].mean)} a {per} "
                     f"({_between(dt['difference'], _signed_minutes)}): {dt['verdict']}")
    return "\n".join(lines)


def _between(interval: Any, fmt: Any) -> str:
    if interval.low is None or interval.high is None:
        return "unknown: one year"
    return f"{fmt(interval.low)} to {fmt(interval.high)}"


_YEAR_LIKE = 360 * 86400.0  # from this duration on, a planned run is called a year


def _minutes(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.1f} min" if abs(x) >= 10 or x == 0 else f"{x:.2g} min"


def _signed_minutes(x: float | None) -> str:
    return "—" if x is None else f"{x:+,.1f} min"


def _signed_pp(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.4f} pp"
