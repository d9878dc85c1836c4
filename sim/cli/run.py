"""The commands of one scenario: ``run``, ``validate``, ``schema``, ``report``, ``new`` and ``examples``.

``run --replications`` / ``--until-ci`` hands over to :func:`sim.cli.experiments.run_replications`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from sim.cli.experiments import run_replications
from sim.cli.options import executor_options, percent_option, quiet_option
from sim.cli.output import fail_error, fail_refused, output_folder, run_progress
from sim.cli.text import format_summary
from sim.errors import ScenarioError, printable
from sim.exits import EXIT_INVALID, EXIT_OK, EXIT_SLO, fail_invalid

__all__ = ["run", "validate", "schema", "report", "new", "examples"]


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
@quiet_option
@executor_options
def run(scenario: str, seed: int | None, out: str | None, no_report: bool, png: bool, replications: int | None,
        until_ci: float | None, max_replications: int, resume: bool, engine: str | None, quiet: bool,
        jobs: int | None, dask_scheduler: str | None, dask_local: int | None) -> None:
    """Run SCENARIO and write its availability report (or replications of it, with intervals)."""
    from sim.run import run as run_scenario

    try:
        model = _load(scenario, engine)
    except ScenarioError as err:
        fail_invalid(err)
    if replications is not None or until_ci is not None:
        run_replications(model, seed, replications, until_ci, max_replications, out, no_report, resume, jobs,
                         dask_scheduler, dask_local, quiet)
        return
    target = None if no_report else Path(out) if out else Path("reports") / model.name
    with output_folder(target, "run"):  # checked and locked before the run: refused now, not after it
        with run_progress(model.name, quiet) as progress:
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
    """Check SCENARIOS (scenario or sweep files) without running them; list every problem."""
    bad = 0
    for path in scenarios:
        try:
            verdict = _validate_one(path)
        except ScenarioError as err:
            bad += 1
            for problem in err.problems:
                click.echo(str(problem), err=True)
        else:
            click.echo(f"{printable(path)}: ok{verdict}")
    sys.exit(EXIT_INVALID if bad else EXIT_OK)


def _validate_one(path: str) -> str:
    """Validate a scenario file, or a sweep file and its base scenario; say what a sweep asks for."""
    from sim.experiments.sweep import is_sweep, load_sweep
    from sim.loader import scenario_data

    try:
        sweep = is_sweep(scenario_data(path))
    except ScenarioError:  # unreadable: the scenario loader says why, at its line
        sweep = False
    if not sweep:
        _load(path)
        return ""
    found = load_sweep(path)
    return f" (a sweep: {found.runs:,} runs of {printable(found.base_file.name)}, which is valid too)"


@click.command()
@click.option("--reference", is_flag=True,
              help="Print the field reference (Markdown: docs/scenario-reference.md) instead.")
def schema(reference: bool) -> None:
    """Print the JSON Schema of scenario files (every field with its unit, default and meaning)."""
    from sim.schema import reference_text, schema_text

    click.echo(reference_text() if reference else schema_text(), nl=False)


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


# ------------------------------------------------------------------------------------- shipped examples


def _examples_folder() -> Path:
    """The shipped scenarios: beside the package when it is installed with them, else the source's
    ``scenarios/`` folder (a checkout, an editable install).
    """
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "scenarios", package.parent / "scenarios"):
        if (folder / "quickstart.yaml").is_file():
            return folder
    raise click.ClickException(
        "the example scenarios are not installed with this copy of cascadesim (they are in the scenarios/ "
        "folder of its source)"
    )


def _shipped_examples() -> dict[str, Path]:
    """The shipped example scenarios by name (their file's stem): quickstart and monday-morning first,
    then the mechanisms and the layouts; sweeps are not scenarios and are left out.
    """
    folder = _examples_folder()
    top = sorted(folder.glob("*.yaml"), key=lambda p: (p.stem != "quickstart", p.stem))
    files = top + sorted((folder / "mechanisms").glob("*.yaml")) + sorted((folder / "layouts").glob("*.yaml"))
    return {p.stem: p for p in files}


def _first_sentence(text: str) -> str:
    text = " ".join(str(text).split())
    match = re.search(r"(?<=\.)\s", text)
    return (text[: match.start()] if match else text).rstrip(".")


@click.command()
def examples() -> None:
    """List the shipped example scenarios, one line each; start your own with 'cascadesim new'."""
    from sim.loader import scenario_data

    found = _shipped_examples()
    width = max(len(name) for name in found)
    for name, path in found.items():
        data = scenario_data(path)
        about = _first_sentence(data.get("description", "")) if isinstance(data, dict) else ""
        click.echo(f"{name:<{width}}  {printable(about)}")
    click.echo("\nstart from one:  cascadesim new NAME --from " + next(iter(found)))


def _example_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import difflib

    known = _shipped_examples()
    if value not in known:
        close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise click.BadParameter(f"no example '{printable(value)}'{hint}; 'cascadesim examples' lists them")
    return value


@click.command()
@click.argument("name")
@click.option("--from", "origin", default="quickstart", show_default=True, callback=_example_name,
              metavar="EXAMPLE", help="The shipped example to start from ('cascadesim examples' lists them).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="The file to write [default: NAME.yaml]; an existing file is never overwritten.")
def new(name: str, origin: str, out: str | None) -> None:
    """Write a new scenario named NAME, copied from a shipped example, to start from."""
    from sim.experiments.sweep import NAME_RULE, valid_name
    from sim.loader import parse_scenario

    if not valid_name(name):
        raise click.BadParameter(f"not a valid scenario name (got '{printable(name)}', expected {NAME_RULE})",
                                 param_hint="NAME")
    source = _shipped_examples()[origin]
    target = Path(out) if out else Path(f"{name}.yaml")
    text = _renamed(source.read_text(encoding="utf-8"), source, name, target)
    try:
        parse_scenario(text, str(target))  # what is written is valid, as its example was
    except ScenarioError as err:  # pragma: no cover - every shipped example is valid (tested)
        raise click.ClickException(f"the example {origin} does not validate: {err}") from None
    try:
        with open(target, "x", encoding="utf-8") as f:  # "x": never overwrite
            f.write(text)
    except FileExistsError:
        fail_refused(FileExistsError(f"{target} exists; nothing was written (give another NAME or --out)"))
    except OSError as exc:
        fail_refused(OSError(f"cannot write {target}: {exc.strerror or exc}"))
    click.echo(f"wrote {printable(target)}, scenario '{name}' from the example {origin}")
    click.echo(f"  run it:       cascadesim run {printable(target)}")
    if not (target.parent / "scenario.schema.json").exists():
        click.echo(f"  editor help:  cascadesim schema > {printable(target.parent / 'scenario.schema.json')}")


def _renamed(text: str, source: Path, name: str, target: Path) -> str:
    """The example's text with its name set to ``name``: comments, layout and everything else kept. The
    editor line points at a schema beside the new file; commands in comments name the new file.
    """
    import json

    from sim.loader import parse_scenario

    def named(value: str) -> str:
        return re.sub(r"(?m)^name:[^\n]*$", lambda _: f"name: {value}", text, count=1)

    out = named(name)
    try:
        ok = parse_scenario(out, str(target)).name == name
    except ScenarioError:
        ok = False
    if not ok:  # a name YAML reads as a number or true/false: quote it
        out = named(json.dumps(name))
    out = re.sub(r"(?m)^(# yaml-language-server: \$schema=)\S*", r"\1scenario.schema.json", out, count=1)
    for spelled in (f"scenarios/{source.parent.name}/{source.name}", f"scenarios/{source.name}"):
        out = out.replace(spelled, str(target))
    return out
