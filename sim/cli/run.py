"""The commands of one scenario: ``run``, ``validate``, ``schema`` and ``report``, and a run's progress bar.

``run --replications`` / ``--until-ci`` hands over to :func:`sim.cli.experiments.run_replications`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from sim.cli.experiments import run_replications
from sim.cli.options import executor_options, percent_option
from sim.cli.output import fail_error, output_folder
from sim.cli.text import format_summary
from sim.errors import ScenarioError, printable
from sim.exits import EXIT_INVALID, EXIT_OK, EXIT_SLO, fail_invalid

__all__ = ["run", "validate", "schema", "report"]


def _load(path: str, engine: str | None = None) -> Any:
    from sim.loader import load_scenario

    return load_scenario(path, {"engine": engine} if engine else None)


@click.command()
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
        fail_error(err)


@click.command()
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


@click.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    from sim.schema import schema_text

    click.echo(schema_text(), nl=False)


@click.command()
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
