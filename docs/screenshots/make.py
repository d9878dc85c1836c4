"""Screenshots of every kind of report, as a new user sees them in a 1,280-px window.

Runs the Monday-morning scenario (seed 7), 20 replications of the two-copies layout, a comparison of the two
shipped layouts (3 replications) and the two retry-storm sweeps, checks Monday morning's capacity, writes
their reports into a scratch folder,
opens each in headless Chromium (the system's, through Playwright, as ``tests/browser/`` does), measures it
with ``tests/browser/layout.py`` (page width, tables in their boxes, plot heights, fault labels that overlap)
and saves the pictures here.
About two minutes on two cores::

    python docs/screenshots/make.py                    # from the repository's root
    python docs/screenshots/make.py --keep /tmp/shots  # and keep the reports
    python docs/screenshots/make.py --only capacity    # only the pictures of these kinds of report

It exits with status 1 when a measurement finds a problem. ``docs/report-screenshot.png`` (the README's
picture) is the run report's first screen.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
from sim.experiments import ProcessPool, capacity, compare, replicate, run_sweep  # noqa: E402
from sim.experiments.report import write_capacity_report  # noqa: E402
from tests.browser.layout import measure, problems, summary  # noqa: E402

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CASCADESIM_CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 900


KINDS = ("run", "replications", "compare", "sweep", "metastability", "capacity")


def reports(work: Path, workers: int, kinds: tuple[str, ...] = KINDS) -> dict[str, Path]:
    """Run what the pictures of ``kinds`` show; return each report's page by kind."""
    pool = ProcessPool(workers)
    monday = ROOT / "scenarios" / "monday-morning.yaml"
    layouts = ROOT / "scenarios" / "layouts"
    sweeps = ROOT / "scenarios" / "sweeps"
    build = {
        "run": lambda: sim.run(sim.load_scenario(monday), seed=7).write_report(work / "run"),
        "replications": lambda: replicate(sim.load_scenario(layouts / "two-copies.yaml"), replications=20,
                                          executor=pool).write_report(work / "replications"),
        "compare": lambda: compare(
            {name: sim.load_scenario(layouts / f"{name}.yaml") for name in ("two-copies", "three-copies")},
            replications=3,
            executor=pool,
        ).write_report(work / "compare"),
        "sweep": lambda: run_sweep(sweeps / "retry-storm-retries-load.yaml", executor=pool).write_report(
            work / "sweep"),
        "metastability": lambda: run_sweep(sweeps / "retry-storm-metastability.yaml", executor=pool).write_report(
            work / "metastability"),
        "capacity": lambda: write_capacity_report(capacity(sim.load_scenario(monday)), work / "capacity"),
    }
    return {kind: build[kind]() / "report.html" for kind in kinds}


# (file, report, what: None for the first screen, else a CSS selector of the section to picture)
SHOTS = [
    ("run-report.png", "run", None),
    ("run-availability.png", "run", "section:has(#fig-availability)"),
    ("run-latency.png", "run", "section:has(#fig-latency)"),
    ("run-faults.png", "run", "section:has(#faults)"),
    ("replications-report.png", "replications", None),
    ("replications-worst.png", "replications", "section:has(#worst)"),
    ("compare-report.png", "compare", None),
    ("sweep-report.png", "sweep", None),
    ("sweep-heatmap.png", "sweep", "section:has(#fig-heat-recovery-time-to-recover-policies-client-retries-"
                                   "workload-regions-users-peak)"),
    ("sweep-metastability.png", "metastability", "section:has(#fig-metastability)"),
    ("capacity-report.png", "capacity", None),
]


def pictures(pages: dict[str, Path]) -> list[str]:
    """Open each report, measure it, save its pictures; return the problems found."""
    from playwright.sync_api import sync_playwright

    found: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        opened = {}
        for kind, path in pages.items():
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(path.resolve().as_uri())
            page.wait_for_function("document.documentElement.getAttribute('data-figures') === 'ready'",
                                   timeout=120_000)
            m = measure(page)
            print(f"{kind:14} {summary(m)}")
            found += [f"{kind}: {p}" for p in problems(m)]
            opened[kind] = page
        for name, kind, selector in SHOTS:
            if kind not in opened:
                continue
            page = opened[kind]
            if selector is None:
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(HERE / name))
            else:
                page.locator(selector).first.screenshot(path=str(HERE / name))
            print(f"wrote docs/screenshots/{name}")
        if "run" in opened:
            opened["run"].evaluate("window.scrollTo(0, 0)")
            opened["run"].screenshot(path=str(HERE.parent / "report-screenshot.png"))
            print("wrote docs/report-screenshot.png")
        browser.close()
    return found


def main() -> int:
    """Run, draw, measure, picture; 1 when a measurement finds a problem."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the reports here and keep them (default: a scratch folder)")
    parser.add_argument("-j", "--workers", type=int, default=2, help="processes for the experiments (default 2)")
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS),
                        help="draw only these kinds of report (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cascadesim-shots-") as scratch:
        work = args.keep or Path(scratch)
        found = pictures(reports(work, args.workers, tuple(args.only)))
    for problem in found:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
