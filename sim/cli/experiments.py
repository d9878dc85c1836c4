"""The experiment commands: replications (``run --replications``), ``compare``, ``sweep`` and ``capacity``.

Each checks its input before anything runs, holds its output folder (:mod:`sim.cli.output`) while the runs
go, shows the runs' progress on stderr (unless ``--quiet``), and exits with the codes of :mod:`sim.exits`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from sim.cli.options import executor_from_options, executor_options, percent_option, quiet_option
from sim.cli.output import fail_error, output_folder, reported, runs_progress
from sim.errors import Problem, ScenarioError, printable, show_value
from sim.exits import EXIT_OK, EXIT_SLO, fail_invalid

__all__ = ["run_replications", "compare_command", "sweep_command", "capacity_command"]


def _results_line(folder: Path) -> str:
    runs, where = printable(folder / "runs"), printable(folder)
    return f'  results       {runs}  (sim.load_results("{where}") gives a DataFrame)'


def run_replications(
    model: Any,
    seed: int | None,
    replications: int | None,
    until_ci: float | None,
    max_replications: int,
    out: str | None,
    no_report: bool,
    resume: bool,
    jobs: int | None,
    dask_scheduler: str | None,
    dask_local: int | None,
    quiet: bool = False,
) -> None:
    """``cascadesim run SCENARIO --replications N [--until-ci W]``: intervals over replications.

    Into the folder (``--out``, default ``reports/<name>-replications``): the results store ``runs/``, then
    ``intervals.json``, ``replications.json`` and ``report.html`` together, all or nothing.
    """
    from sim.experiments.replicate import replicate
    from sim.experiments.text import format_replications

    n = replications or (10 if until_ci is not None else 30)
    folder = None if no_report else Path(out) if out else Path("reports") / f"{model.name}-replications"
    if resume and folder is None:
        raise click.UsageError("--resume needs the results folder; drop --no-report")
    with output_folder(folder, "replications"):
        runner = executor_from_options(jobs, dask_scheduler, dask_local)
        with reported(folder):
            with runner, runs_progress(f"{model.name} replications", quiet) as progress:
                reps = replicate(
                    model,
                    n,
                    seed=seed,
                    until_ci=until_ci,
                    max_replications=max_replications,
                    executor=runner,
                    out=folder / "runs" if folder else None,
                    resume=resume,
                    progress=progress,
                )
            if folder is not None:
                reps.write_report(folder)
    click.echo(format_replications(reps, runner.description))
    if folder is not None:
        click.echo(_results_line(folder))
        click.echo(f"  report        {printable(folder / 'report.html')}")
    iv = reps.intervals.get("availability")
    below = iv is not None and iv.high is not None and iv.high < model.slo.availability
    sys.exit(EXIT_SLO if below else EXIT_OK)


@click.command("compare")
@click.argument("layouts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--replications",
    "-n",
    type=click.IntRange(min=2),
    default=30,
    show_default=True,
    help="Replications of every layout (replication i of each sees the same failures).",
)
@click.option(
    "--engine",
    type=click.Choice(["requests", "flow", "auto", "planner"]),
    default=None,
    help="Run every layout on this engine [default: each layout's own]; planner: plan --years of each "
    "instead, paired year by year (as cascadesim plan).",
)
@click.option(
    "--years",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With --engine planner: the years to plan [default: 100].",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Root seed [default: the first layout's]."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Results and report folder [default: reports/compare-<A>-vs-<B>, with --engine planner "
    "reports/compare-<A>-vs-<B>-planner].",
)
@click.option("--resume", is_flag=True, help="Keep the runs already in --out; run only the missing ones.")
@click.option("--no-report", is_flag=True, help="Print the verdicts only; write nothing.")
@percent_option(
    "--max-utilisation",
    default="100%",
    show_default=True,
    help="Capacity check: the most a surviving datacenter may be utilised.",
)
@quiet_option
@executor_options
@click.pass_context
def compare_command(
    ctx: click.Context,
    layouts: tuple[str, ...],
    replications: int,
    engine: str | None,
    years: int | None,
    seed: int | None,
    out: str | None,
    resume: bool,
    no_report: bool,
    max_utilisation: float,
    quiet: bool,
    jobs: int | None,
    dask_scheduler: str | None,
    dask_local: int | None,
) -> None:
    """Compare LAYOUTS (scenario files) under the same failures: paired differences, winners, capacity.

    With --engine planner the layouts are planned (cascadesim plan), not run: --years of each, paired
    year by year; exit 3 when a layout's mean availability is below its objective.
    """
    from sim.experiments.compare import compare, layout_names
    from sim.experiments.sweep import NAME_RULE, valid_name
    from sim.experiments.text import format_comparison
    from sim.loader import load_scenario
    from sim.report.folders import OutputError

    if len(layouts) < 2:
        raise click.UsageError("compare needs at least two layout files")
    planner = engine == "planner"
    given = {name for name in ("replications", "max_utilisation")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    if planner and given:
        flags = " and ".join(f"--{name.replace('_', '-')}" for name in sorted(given))
        raise click.UsageError(f"{flags} {'is' if len(given) == 1 else 'are'} for the engines' runs; with "
                               "--engine planner give --years")
    if years is not None and not planner:
        raise click.UsageError("--years is for --engine planner; the engines' runs take --replications")
    if planner:
        from sim.planner import refusals
    models, problems = [], []
    for path in layouts:
        try:
            if planner:
                models.append(load_scenario(path, checks=refusals))
            else:
                models.append(load_scenario(path, {"engine": engine} if engine else None))
        except ScenarioError as err:
            problems += err.problems
        stem = Path(path).stem
        if not valid_name(stem):  # a layout is named after its file: its folder, results and report
            name = f"not a valid layout name (got {show_value(stem)} from the file name, expected {NAME_RULE})"
            problems.append(Problem(path, 1, 1, "", f"{name}; rename the file"))
    if problems:
        fail_invalid(ScenarioError(problems))
    names = layout_names([Path(p).stem for p in layouts])
    default = Path("reports") / f"compare-{'-vs-'.join(names)}{'-planner' if planner else ''}"
    folder = None if no_report else Path(out) if out else default
    if resume and folder is None:
        raise click.UsageError("--resume needs the results folder; drop --no-report")
    if planner:
        from sim.cli.plan import plan_layouts

        plan_layouts(dict(zip(names, models, strict=True)), years or 100, seed, folder, resume, False, quiet,
                     executor_from_options(jobs, dask_scheduler, dask_local))
    with output_folder(folder, "compare"):
        runner = executor_from_options(jobs, dask_scheduler, dask_local)
        with reported(folder):
            with runner, runs_progress(f"compare {' vs '.join(names)}", quiet) as progress:
                result = compare(
                    dict(zip(names, models, strict=True)),
                    replications,
                    seed=seed,
                    executor=runner,
                    out=folder / "runs" if folder else None,
                    resume=resume,
                    progress=progress,
                    max_utilisation=max_utilisation,
                )
        click.echo(format_comparison(result))
        if folder is not None:
            try:
                result.write_report(folder)
            except OutputError as exc:
                fail_error(exc, folder)
            click.echo(f"  report        {printable(folder / 'report.html')}")
    sys.exit(EXIT_OK)


@click.command("sweep")
@click.argument("sweep_file", metavar="SWEEP", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Results and report folder [default: reports/<sweep name>].",
)
@click.option("--resume", is_flag=True, help="Keep the runs already in --out; run only the missing ones.")
@click.option("--no-report", is_flag=True, help="Store the results but write no report.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the sweep file, say how many runs it asks for and how long they should take (from pilot "
    "runs of a few seconds); run nothing else.",
)
@click.option(
    "--replications",
    "-n",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Override the file's replications.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, metavar="N", help="Override the file's root seed."
)
@click.option(
    "--engine",
    type=click.Choice(["requests", "flow", "auto"]),
    default=None,
    help="Run every point on this engine [default: the base scenario's].",
)
@quiet_option
@executor_options
def sweep_command(
    sweep_file: str,
    out: str | None,
    resume: bool,
    no_report: bool,
    dry_run: bool,
    replications: int | None,
    seed: int | None,
    engine: str | None,
    quiet: bool,
    jobs: int | None,
    dask_scheduler: str | None,
    dask_local: int | None,
) -> None:
    """Run the parameter sweep described in SWEEP; every run is stored as it finishes (Parquet).

    --replications, --seed and --engine change the sweep without editing its file (a smaller one to try).
    """
    from sim.experiments.sweep import load_sweep, run_sweep
    from sim.experiments.text import format_sweep
    from sim.report.folders import OutputError

    try:
        sweep = load_sweep(sweep_file, replications=replications, seed=seed, engine=engine)
    except ScenarioError as err:
        fail_invalid(err)
    if dry_run:
        click.echo(format_sweep(None, sweep))
        workers = None if (dask_scheduler or dask_local) else (max(1, jobs) if jobs is not None else os.cpu_count())
        click.echo(_estimate_lines(sweep, workers, quiet))
        sys.exit(EXIT_OK)
    folder = Path(out) if out else Path("reports") / sweep.name
    with output_folder(folder, "sweep"):
        runner = executor_from_options(jobs, dask_scheduler, dask_local)
        with reported(folder / "runs"), runner, runs_progress(f"sweep {sweep.name}", quiet) as progress:
            result = run_sweep(sweep, executor=runner, out=folder / "runs", resume=resume, progress=progress)
        click.echo(format_sweep(result, sweep))
        click.echo(_results_line(folder))
        if not no_report:
            try:
                result.write_report(folder)
            except OutputError as exc:
                fail_error(exc, folder / "runs")
            click.echo(f"  report        {printable(folder / 'report.html')}")
    sys.exit(EXIT_OK)


PILOT_SECONDS = 3.0
"""A dry run's pilot runs one point for at most this many seconds of wall time, then extrapolates."""


class _Enough(Exception):
    """Raised from a pilot run's progress callback when it has run long enough to time it."""

    def __init__(self, share: float):
        self.share = share


def _pilot(scenario: Any) -> tuple[float, float]:
    """Time one run of ``scenario``: (seconds for the whole run, share of it actually run). The run stops
    after :data:`PILOT_SECONDS` and its time is extrapolated from the simulated time it reached.
    """
    from sim.run import run as run_scenario

    began = time.perf_counter()

    def check(now: float, end: float) -> None:
        if time.perf_counter() - began > PILOT_SECONDS and 0 < now < end:
            raise _Enough(now / end)

    try:
        run_scenario(scenario, progress=check)
    except _Enough as enough:
        return (time.perf_counter() - began) / enough.share, enough.share
    return time.perf_counter() - began, 1.0


def _estimate_lines(sweep: Any, workers: int | None, quiet: bool) -> str:
    """The dry run's time estimate: a pilot of one point per engine, scaled to every point by its size."""
    from sim.experiments.sweep import estimate_sweep
    from sim.units import format_duration

    if not quiet:
        click.echo(f"timing pilot runs (at most {PILOT_SECONDS:g} s each) ...", err=True)
    est = estimate_sweep(sweep, _pilot)

    def wall(seconds: float) -> str:
        return format_duration(round(seconds, 1) if seconds < 10 else round(seconds))

    each = est.seconds / sweep.runs if sweep.runs else 0.0
    lines = [f"  estimate      about {wall(est.seconds)} of run time ({sweep.runs:,} runs, {wall(each)} each on "
             "average)"]
    if workers:
        parallel = est.seconds / min(workers, max(1, sweep.runs))
        lines[0] += f"; about {wall(parallel)} on {workers} worker{'s' if workers > 1 else ''}"
    for pilot in est.pilots:
        share = "all of it" if pilot.share >= 1 else f"{pilot.share:.0%} of it, extrapolated"
        lines.append(f"  pilot         point {pilot.point} on the {pilot.engine} engine: {wall(pilot.seconds)} "
                     f"a run ({share})")
    return "\n".join(lines)


@click.command("capacity")
@click.argument("scenario", type=click.Path(dir_okay=False))
@percent_option(
    "--max-utilisation",
    default="100%",
    show_default=True,
    help="The most a surviving datacenter may be utilised.",
)
@click.option(
    "--years",
    "-n",
    type=click.IntRange(min=2),
    default=None,
    help="Also plan this many years (the planner, as cascadesim plan) at several fleet sizes (×0.8 to ×2 the "
    "servers of every group) and name the smallest that keeps the downtime within the objective's budget.",
)
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="With --years: root seed of the years [default: the scenario's].")
@click.option("--json", "as_json", is_flag=True, help="Print the full answer as JSON.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write report.html and capacity.json into this folder (new, empty, or an earlier capacity report).",
)
@quiet_option
@executor_options
def capacity_command(scenario: str, max_utilisation: float, years: int | None, seed: int | None, as_json: bool,
                     out: str | None, quiet: bool, jobs: int | None, dask_scheduler: str | None,
                     dask_local: int | None) -> None:
    """Can the other datacenters absorb each one's users at the peak? Headroom for N+1 and N+2.

    With --years, also how many servers keep a year's downtime within the availability objective's budget:
    the scenario's faults planned over the same years at each fleet size (cascadesim plan's method). Exit 3
    when N+1 is not absorbed, or (with --years) when today's fleet's mean downtime may exceed the budget.
    """
    from sim.experiments.capacity import capacity, format_capacity
    from sim.experiments.report import write_capacity_report
    from sim.loader import load_scenario
    from sim.report.files import to_json
    from sim.report.folders import OutputError

    if years is None and seed is not None:
        raise click.UsageError("--seed is for the planned years: give --years")
    try:
        if years is None:
            model = load_scenario(scenario)
        else:
            from sim.planner import refusals

            model = load_scenario(scenario, checks=refusals)
    except ScenarioError as err:
        fail_invalid(err)
    folder = Path(out) if out else None
    with output_folder(folder, "capacity"):
        try:
            report = capacity(model, max_utilisation)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-utilisation") from None
        if years is not None:
            from sim.planner.headroom import headroom

            with executor_from_options(jobs, dask_scheduler, dask_local) as executor, \
                    runs_progress("fleet sizes: years", quiet) as progress:
                report.planned = headroom(model, years, seed=seed, executor=executor, progress=progress)
        if folder is not None:
            try:
                write_capacity_report(report, folder)
            except OutputError as exc:
                fail_error(exc)
    click.echo(to_json(report.as_dict()) if as_json else format_capacity(report), nl=not as_json)
    if folder is not None and not as_json:
        click.echo(f"  report        {printable(folder / 'report.html')}")
    ok = report.n_plus_1 and (report.planned is None or report.planned.today.meets("mean"))
    sys.exit(EXIT_OK if ok else EXIT_SLO)
