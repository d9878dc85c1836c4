"""``cascadesim plan``: many years of a layout (or several, paired) from the planner, in seconds a year."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from sim.cli.options import executor_from_options, executor_options, quiet_option
from sim.cli.output import output_folder, reported, runs_progress
from sim.errors import ScenarioError, printable
from sim.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_SLO, fail_invalid

__all__ = ["plan_command", "plan_layouts", "format_years"]


@click.command("plan")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--years", "-n", type=click.IntRange(min=1), default=100, show_default=True,
              help="Years to plan (runs of the scenario's duration, year i with replication i's seed).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Root seed [default: the first scenario's].")
@click.option("--json", "as_json", is_flag=True, help="Print the full answer as JSON.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Results folder: each chunk of years as it is planned, then plan.json with every year "
                   "(new, empty, or an earlier plan's).")
@click.option("--resume", is_flag=True, help="Keep the years already in --out; plan only the missing ones.")
@click.option("--sensitivity", is_flag=True,
              help="Also plan each layout with one assumption changed at a time (time between failures and to "
                   "repair ×0.5 and ×2, one copy fewer and more, failover delay ×0.5 and ×2, servers ×0.8 and "
                   "×1.25) over the same years: ten times the years (kept in --out as they are planned).")
@quiet_option
@executor_options
def plan_command(scenarios: tuple[str, ...], years: int, seed: int | None, as_json: bool, out: str | None,
                 resume: bool, sensitivity: bool, quiet: bool, jobs: int | None, dask_scheduler: str | None,
                 dask_local: int | None) -> None:
    """Plan SCENARIOS' years: availability and downtime a year with intervals, the P95 year, the share of
    years over the downtime budget, where the loss comes from; with several layouts, each against the
    first, year by year (the same failures where they share servers).

    The planner does not simulate traffic: it replays the outages (server crashes, datacenter outages) and
    failovers and prices each state with overload curves the flow engine measures once per server group
    (cached in ~/.cache/cascadesim, or $CASCADESIM_CACHE). With --out, each chunk of years is kept as it
    is planned: a plan that was stopped goes on with --resume, and report.html shows the years side by
    side, where the loss comes from and, with --sensitivity, what moves it. Exit 3 when a layout's mean
    availability is below its objective.
    """
    from sim.experiments.compare import layout_names
    from sim.loader import load_scenario
    from sim.planner import refusals

    models = []
    for path in scenarios:
        try:
            models.append(load_scenario(path, checks=refusals))
        except ScenarioError as err:
            fail_invalid(err)
    names = layout_names([m.name for m in models])
    plan_layouts(dict(zip(names, models, strict=True)), years, seed, Path(out) if out else None, resume,
                 as_json, quiet, executor_from_options(jobs, dask_scheduler, dask_local), sensitivity=sensitivity)


def plan_layouts(layouts: dict[str, Any], years: int, seed: int | None, folder: Path | None, resume: bool,
                 as_json: bool, quiet: bool, executor: Any, *, sensitivity: bool = False) -> NoReturn:
    """Plan ``years`` of each layout (name → scenario), print them (each against the first, year by year)
    and exit as ``cascadesim plan`` does; ``cascadesim compare --engine planner`` too.

    With ``folder`` (a plan folder, :mod:`sim.planner.store`, held from before anything runs) each chunk
    of years is kept as it is planned, ``plan.json`` and ``report.html`` written at the end; ``resume``
    plans only the years missing there. With ``sensitivity`` each layout's variants
    (:mod:`sim.planner.sensitivity`) are planned too, over the same years (kept chunk by chunk as well).
    """
    from sim.experiments.report.planner import render_plan
    from sim.planner.sensitivity import Sensitivity
    from sim.planner.sensitivity import sensitivity as sweep
    from sim.planner.store import YearsStore
    from sim.planner.years import YearsSummary, paired, plan_years
    from sim.report.files import to_json

    if resume and folder is None:
        raise click.UsageError("--resume needs the results folder: give --out")
    models = list(layouts.values())
    root = models[0].seed if seed is None else seed
    summaries = []
    with output_folder(folder, "plan"), reported(folder):
        store = YearsStore.create(folder, layouts, root, resume=resume) if folder is not None else None
        try:
            with executor:
                for name, model in layouts.items():
                    with runs_progress(f"{name}: years", quiet) as progress:
                        rows = plan_years(model, years, seed=root, executor=executor, progress=progress,
                                          store=store, layout=name)
                    summaries.append(YearsSummary.of(model, rows))
                sensitivities: list[Sensitivity | None] = [None] * len(summaries)
                if sensitivity:
                    for i, (name, model) in enumerate(layouts.items()):
                        with runs_progress(f"{name}: sensitivity", quiet) as progress:
                            sensitivities[i] = sweep(model, summaries[i], years, seed=root, executor=executor,
                                                     progress=progress, store=store, layout=name)
        except KeyboardInterrupt:
            if folder is None:
                raise
            click.echo(f"interrupted; the years planned so far are kept in {printable(folder)}: run again with "
                       "--resume to go on", err=True)
            sys.exit(EXIT_INTERRUPTED)
        comparisons = [paired(summaries[0], s) for s in summaries[1:]]
        answer: dict[str, Any] = {"seed": root, "layouts": [s.as_dict() for s in summaries],
                                  "compared_with_first": [_plain(c) for c in comparisons],
                                  "sensitivity": [None if x is None else x.as_dict() for x in sensitivities]}
        if store is not None:
            store.write_answer(answer)
            store.write_report(render_plan(summaries, comparisons, sensitivities, root))
    if as_json:
        answer_short = dict(answer, layouts=[{k: v for k, v in s.items() if k != "rows"} for s in answer["layouts"]])
        click.echo(to_json(answer_short), nl=False)
    else:
        click.echo(format_years(summaries, comparisons, sensitivities))
        if folder is not None:
            click.echo(f"  every year    {printable(folder / 'plan.json')}")
            click.echo(f"  report        {printable(folder / 'report.html')}")
    met = all(s.availability.mean is not None and s.availability.mean >= s.slo_availability for s in summaries)
    sys.exit(EXIT_OK if met else EXIT_SLO)


def _plain(x: Any) -> Any:
    if hasattr(x, "as_dict"):
        return x.as_dict()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def format_years(summaries: list[Any], comparisons: list[dict[str, Any]],
                 sensitivities: list[Any] | None = None) -> str:
    """What ``cascadesim plan`` prints: per layout, its years (and what moves them, with their
    ``sensitivities``); then each layout against the first.
    """
    from sim.experiments.report.planner import minutes
    from sim.units import format_count, format_percent, format_span

    lines: list[str] = []
    for i, s in enumerate(summaries):
        a, d, p = s.availability, s.downtime, s.downtime_percentiles
        span = format_span(s.duration)
        what = s.unit + "s"  # a scenario's duration is its "year"
        lines += [
            f"{s.scenario}  ({s.years:,} {what} of {span}, planned)",
            f"  availability  {format_percent(a.mean)}  (95% interval {_between(a, format_percent)})",
            f"  downtime      {minutes(d.mean)} a {what[:-1]} (95% interval {_between(d, minutes)}); "
            f"P50 {minutes(p['p50'])}, P95 {minutes(p['p95'])}, P99 {minutes(p['p99'])}, worst {minutes(p['max'])}",
            f"  budget        {minutes(s.budget_minutes)} a {what[:-1]} ({format_percent(s.slo_availability)} of "
            f"{span}): {format_percent(s.over_budget.mean)} of {what} over it",
            f"  worst region  {s.worst_region()}  {format_percent(s.regions[s.worst_region()]['availability'].mean)}",
            "  lost requests " + ", ".join(f"{name.replace('_', ' ')} {share:.1%}" for name, _, share in s.pareto())
            + f"  ({format_count(sum(s.lost_by_mechanism.values()))} a {what[:-1]})",
            f"  copies alone  {minutes(s.structure_worst())} a {what[:-1]} in the worst region: every copy of a "
            "database down (structure-only bound: no overload, no failover delay)",
        ]
        sens = sensitivities[i] if sensitivities else None
        if sens is not None:
            lines.append(f"  what moves it (downtime a {what[:-1]}, paired over the same {what}; largest first)")
            for sw in sens.swings:
                sides = [f"{label} {_signed_minutes(iv.mean)}" if iv is not None else f"{label}: {sw.why_not[side]}"
                         for side, label, iv in (("low", sw.factor.low, sw.low_change),
                                                 ("high", sw.factor.high, sw.high_change))]
                lines.append(f"    {sw.factor.label:<30} " + ", ".join(sides))
    for s, c in zip(summaries[1:], comparisons, strict=True):
        av, dt = c["availability"], c["downtime_minutes"]
        per = s.unit
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


def _signed_minutes(x: float | None) -> str:
    return "—" if x is None else f"{x:+,.1f} min"


def _signed_pp(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.4f} pp"
