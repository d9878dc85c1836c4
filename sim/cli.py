"""The ``cascadesim`` command.

Exit codes: 0 ok; 2 invalid scenario or usage; 3 the run finished but breached the scenario's SLO;
1 anything else.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from sim.errors import ScenarioError, printable
from sim.exits import EXIT_ERROR, EXIT_INVALID, EXIT_OK, EXIT_SLO, fail_invalid
from sim.experiments.commands import (
    capacity_command,
    compare_command,
    executor_options,
    output_folder,
    percent_option,
    run_replications,
    sweep_command,
)

__all__ = ["main", "cli", "format_summary"]


def _percent(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.3f}%"


def _ms(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def format_summary(summary: Any, report: Path | None) -> str:
    """The one-screen summary printed after a run, from its typed summary (``Result.stats``, a
    :class:`sim.summary.Summary`); a JSON-ready one (``Result.summary``) is read through the same model.
    """
    from sim.summary import Summary
    from sim.units import format_duration

    s = summary if isinstance(summary, Summary) else Summary.from_dict(summary)
    m, slo = s.manifest, s.slo
    verdict = "met" if slo.met else "BREACHED"
    objectives = f"availability {_percent(slo.availability)}"
    if slo.latency_p99 is not None:
        objectives += f", p99 ≤ {_ms(slo.latency_p99)}"
    lines = [
        f"{m.scenario}  (seed {m.seed}, {format_duration(m.duration)} simulated, engine {m.engine})",
        f"  availability  {_percent(s.availability)}  "
        + ("(no requests)" if s.nines is None else f"({s.nines:.2f} nines)"),
        f"  SLO           {verdict}  ({objectives})",
        f"  downtime      {s.downtime_minutes:.1f} min below the SLO (per {format_duration(slo.window)} window)",
        f"  latency       p50 {_ms(s.latency.p50)}   p99 {_ms(s.latency.p99)}",
        f"  requests      {s.requests:,}   failed {s.counts['failed']:,}   "
        f"retries {s.counts['retries']:,}   amplification {s.amplification:.2f}x",
    ]
    if s.users and s.users_affected is not None:
        lines.append(f"  users         {s.users_affected:,} of {s.users:,} affected "
                     "(distinct users with a failed request, estimated)")
    worst = s.worst_region
    if worst is not None:
        lines.append(f"  worst region  {worst}  {_percent(s.regions[worst].availability)}")
    f = s.fault(s.worst_fault) if s.worst_fault is not None else None
    if f is not None:
        ttd = f.time_to_detect
        detect = "not detected" if ttd is None else f"detected after {format_duration(ttd)}"
        recover = (
            "not recovered by the end" if not f.recovered
            else f"recovered after {format_duration(f.time_to_recover or 0)}"
        )
        lines.append(
            f"  worst fault   {f.id} ({f.kind}): {f.downtime_minutes:.1f} min below SLO, {detect}, {recover}"
        )
    if report is not None:
        lines.append(f"  report        {printable(report / 'report.html')}")
    return "\n".join(lines)


def _load(path: str, engine: str | None = None) -> Any:
    from sim.loader import load_scenario

    return load_scenario(path, {"engine": engine} if engine else None)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cascadesim", prog_name="cascadesim")
def cli() -> None:
    """Simulate cascading failures in the datacenters of a global email service."""


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's seed.")
@click.option(
    "--out", type=click.Path(file_okay=False), default=None, help="Report folder [default: reports/<name>]."
)
@click.option("--no-report", is_flag=True, help="Print the summary only; write nothing.")
@click.option("--png", is_flag=True, help="Also write figures/*.png (needs the 'png' extra and Chromium).")
@click.option("--replications", "-n", type=click.IntRange(min=1), default=None,
              help="Run N independent replications; report each metric's mean and 95% interval.")
@percent_option("--until-ci", default=None, metavar="WIDTH",
                help="Add replications until the availability interval is ±WIDTH (e.g. 0.05%).")
@click.option("--max-replications", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Cap for --until-ci.")
@click.option("--resume", is_flag=True, help="Replications: keep those already in --out, run the rest.")
@click.option("--engine", type=click.Choice(["requests", "flow", "auto"]), default=None,
              help="How traffic moves: every request, rates per time step, or chosen by size [default: the "
                   "scenario's engine].")
@executor_options
def run(scenario: str, seed: int | None, out: str | None, no_report: bool, png: bool, replications: int | None,
        until_ci: float | None, max_replications: int, resume: bool, engine: str | None, jobs: int | None,
        dask_scheduler: str | None, dask_local: int | None) -> None:
    """Run SCENARIO and write its availability report (or replications of it, with intervals)."""
    from sim.run import run as run_scenario

    try:
        model = _load(scenario, engine)
    except ScenarioError as err:
        fail_invalid(err)
    if replications is not None or until_ci is not None:
        run_replications(model, seed, replications, until_ci, max_replications, out, no_report, resume, jobs,
                         dask_scheduler, dask_local)
        return
    target = None if no_report else Path(out) if out else Path("reports") / model.name
    with output_folder(target, "run"):  # checked and locked before the run: refused now, not after it
        with _progress() as progress:
            result = run_scenario(model, seed=seed, progress=progress)
        folder = None if target is None else _write_run(result, target, png)
    click.echo(format_summary(result.stats, folder))
    sys.exit(EXIT_OK if result.slo_met else EXIT_SLO)


def _write_run(result: Any, target: Path, png: bool) -> Path:
    """Write the run's folder; a failed write (a full disk) is one line and exit 1, the old folder kept."""
    from sim.report import write_report
    from sim.report.folders import OutputError

    try:
        return write_report(result, target, png=png, notify=lambda line: click.echo(printable(line), err=True))
    except OutputError as err:
        click.echo(f"cascadesim: {printable(err)}", err=True)
        sys.exit(EXIT_ERROR)


@cli.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(scenarios: tuple[str, ...]) -> None:
    """Check SCENARIOS without running them; list every problem."""
    bad = 0
    for path in scenarios:
        try:
            _load(path)
        except ScenarioError as err:
            bad += 1
            for problem in err.problems:
                click.echo(str(problem), err=True)
        else:
            click.echo(f"{printable(path)}: ok")
    sys.exit(EXIT_INVALID if bad else EXIT_OK)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    from sim.schema import schema_text

    click.echo(schema_text(), nl=False)


@cli.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option("--png", is_flag=True, help="Also write figures/*.png (needs the 'png' extra and Chromium).")
def report(results: str, png: bool) -> None:
    """Rebuild report.html and report.md of RESULTS (a folder written by 'run') without running again."""
    from sim.report import ResultsError, rebuild_report

    try:
        folder = rebuild_report(results, png=png, notify=lambda line: click.echo(printable(line), err=True))
    except ResultsError as err:
        click.echo(f"cascadesim report: {printable(err)}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(f"report  {printable(folder / 'report.html')}")
    click.echo(f"        {printable(folder / 'report.md')}")


cli.add_command(compare_command)
cli.add_command(sweep_command)
cli.add_command(capacity_command)


class _progress:
    """A progress bar on stderr, only on a terminal and only for runs longer than two seconds."""

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        try:  # a pseudo-terminal may report no size, and tqdm then shows nothing at all
            rows = max(os.get_terminal_size(sys.stderr.fileno()).lines, 2)
        except (OSError, ValueError):
            rows = 24
        self.bar = tqdm(total=100, delay=2.0, unit="%", file=sys.stderr, leave=False, nrows=rows,
                        bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

        def update(now: float, end: float) -> None:
            done = round(100 * now / end) if end else 100
            self.bar.update(done - self.bar.n)  # update() honours the delay; refresh() would not

        return update

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning unexpected errors into exit code 1 with a one-line message.

    The current folder is taken off ``sys.path`` first: the runs' worker processes import with this
    process's path, and a scenario folder must never run code.
    """
    from sim.experiments.executors import forget_working_directory

    forget_working_directory()
    try:
        code = cli.main(args=argv, prog_name="cascadesim", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        # It may quote a file name or an option someone typed. Click types ``message`` Final, yet show()
        # (with a UsageError's usage and hint lines) prints only it: rewriting it is the one way in.
        exc.message = printable(exc.message)  # type: ignore[misc]
        exc.show()
        sys.exit(EXIT_INVALID if isinstance(exc, click.UsageError) else EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted; nothing was written", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # anything else is our bug: say so, briefly
        if os.environ.get("CASCADESIM_DEBUG"):
            traceback.print_exc()
        click.echo(f"cascadesim: internal error: {type(exc).__name__}: {printable(exc)}", err=True)
        click.echo("set CASCADESIM_DEBUG=1 for the traceback", err=True)
        sys.exit(EXIT_ERROR)
