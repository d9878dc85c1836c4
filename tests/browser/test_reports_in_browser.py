"""Every kind of generated report (run, replications, compare, sweep, capacity), opened in headless Chromium:
no console errors, every figure drawn, the page no wider than a 1,280-px window, every table within its box,
every time plot tall enough to read, no fault label over another label (tests/browser/layout.py measures
them), the topology's time slider recolours it, names from a hostile scenario shown as text and never run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

import sim
from tests import report_synthetic
from tests.browser.layout import measure, problems
from tests.conftest import BASE, scenario_from

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>'

STATE_COLOURS = """() => {
  const gd = document.getElementById('fig-topology');
  const i = gd.data.findIndex(t => t.meta === 'states');
  const trace = gd.querySelectorAll('.scatterlayer .trace')[i];
  return Array.from(trace.querySelectorAll('path.point')).map(p => p.style.fill);
}"""


@dataclass
class Opened:
    page: object
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    layout: dict = field(default_factory=dict)  # what tests/browser/layout.py measured


def open_report(browser, path: Path, screenshot: Path) -> Opened:
    """Open ``path``, wait until every figure is drawn, check each one, save a screenshot."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    opened = Opened(page)
    page.on(
        "console", lambda m: m.type in ("error", "warning") and opened.console.append(f"{m.type}: {m.text}")
    )
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on("dialog", lambda d: (opened.dialogs.append(d.message), d.dismiss()))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("document.documentElement.getAttribute('data-figures') !== null", timeout=30_000)
    state = page.evaluate("document.documentElement.getAttribute('data-figures')")
    failure = page.evaluate("(document.querySelector('.load-error') || {}).textContent || ''")
    assert state == "ready", failure
    figures = page.evaluate("""() => Array.from(document.querySelectorAll('script[data-figure]')).map(b => {
        const el = document.getElementById(b.getAttribute('data-figure'));
        return {id: b.getAttribute('data-figure'), drawn: !!(el && el._fullLayout && el.data),
                traces: el && el.data ? el.data.length : 0,
                svg: el ? el.querySelectorAll('svg.main-svg').length : 0,
                height: el ? el.getBoundingClientRect().height : 0};
    })""")
    assert figures, "no figures on the page"
    for fig in figures:
        assert fig["drawn"] and fig["traces"] > 0 and fig["svg"] > 0 and fig["height"] > 100, fig
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000
    opened.layout = measure(page)
    assert not problems(opened.layout), problems(opened.layout)
    assert not opened.errors, opened.errors
    assert not [c for c in opened.console if c.startswith("error")], opened.console
    assert not opened.dialogs, opened.dialogs
    return opened


def test_overlapping_faults_are_named_without_overlap(browser, tmp_path):
    """Four faults whose windows overlap and start seconds apart (and one at the very end): each named once
    per figure, in its own lane, no name over another, the page no wider than the window."""
    from tests.test_report_readable import CRASHES

    folder = sim.run(scenario_from(CRASHES), seed=1).write_report(tmp_path / "crowded")
    opened = open_report(browser, folder / "report.html", tmp_path / "crowded.png")
    figures = {f["id"]: f for f in opened.layout["figures"]}
    for fid in ("fig-availability", "fig-latency", "fig-amplification", "fig-traffic", "fig-healthy"):
        assert figures[fid]["faultLabels"] == 4 and not figures[fid]["overlaps"], figures[fid]
        assert figures[fid]["plot"] >= 240
    assert opened.layout["scrollWidth"] <= opened.layout["innerWidth"] == 1280
    opened.page.close()


def test_the_checks_could_fail(browser, tmp_path):
    """The measurements see an overflowing page and overlapping names when there are some."""
    page = browser.new_page(viewport={"width": 1280, "height": 600})
    page.set_content(
        '<div style="width:1500px">wide</div><div class="scroll"><table id="t"><tr><td style="min-width:2000px">x'
        '</td></tr></table></div>'
    )
    m = measure(page)
    assert m["scrollWidth"] > m["innerWidth"] and m["tables"][0]["width"] > m["tables"][0]["box"]
    bad = problems({**m, "figures": [{"id": "f", "time": True, "plot": 90, "faultLabels": 2,
                                       "overlaps": [["a", "b"]]}]})
    assert len(bad) == 4, bad
    page.close()


def move_slider(page, fraction: float) -> None:
    rail = page.locator("#fig-topology .slider-rail-touch-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
    page.wait_for_timeout(200)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    scenario = scenario_from(
        {
            "description": f"{HOSTILE} & friends",
            "duration": "6m",
            "topology": {
                "datacenters": [
                    {
                        "id": "dc-a",
                        "location": HOSTILE,
                        "servers": [{"id": "a", "count": 4, "workers": 4, "service_time": "20ms"}],
                    },
                    {
                        "id": "dc-b",
                        "servers": [{"id": "b", "count": 4, "workers": 4, "service_time": "20ms"}],
                    },
                ]
            },
            "faults": [
                {
                    "id": "crash",
                    "kind": "server_crash",
                    "target": {"ids": ["a-02"]},
                    "at": "2m",
                    "duration": "2m",
                }
            ],
        }
    )
    result = sim.run(scenario, seed=1)
    return result.write_report(tmp_path_factory.mktemp("hostile") / "out")


def test_run_report_draws_every_figure_and_the_slider_recolours_the_topology(browser, hostile_run, tmp_path):
    opened = open_report(browser, hostile_run / "report.html", tmp_path / "run-report.png")
    page = opened.page
    whole_run = page.evaluate(STATE_COLOURS)
    assert len(whole_run) == 8 and len(set(whole_run)) == 2  # one server went down: red among grey
    move_slider(page, 0.12)  # early in the run, before the crash: every server healthy
    assert page.evaluate("document.getElementById('fig-topology').layout.sliders[0].active") > 0
    early = page.evaluate(STATE_COLOURS)
    assert early != whole_run and len(set(early)) == 1
    page.screenshot(path=str(tmp_path / "run-report-slider.png"))
    # The story, the timeline links and the cascade's click-through are there.
    assert page.locator("#story tbody tr").count() >= 3
    target = page.locator("#milestones a").first.get_attribute("href")
    assert target.startswith("#ev-") and page.locator(target).count() == 1
    page.close()


def test_hostile_names_are_shown_as_text_and_never_run(browser, hostile_run, tmp_path):
    opened = open_report(browser, hostile_run / "report.html", tmp_path / "hostile.png")
    page = opened.page
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src=x]").count() == 0
    assert HOSTILE in page.locator("header .description").inner_text()
    topology = page.locator("#fig-topology").inner_text()
    assert "onerror" in topology  # the location, drawn as text in the figure
    assert page.evaluate("window.__pwned") is None
    page.close()


def test_a_day_of_ten_thousand_servers_draws(browser, tmp_path):
    from sim.report.html import render_html

    path = tmp_path / "big.html"
    path.write_text(render_html(report_synthetic.result()), encoding="utf-8")
    opened = open_report(browser, path, tmp_path / "big.png")
    page = opened.page
    counts = ("() => document.getElementById('fig-topology').data"
              ".filter(t => t.name && t.name.startsWith('down')).map(t => JSON.stringify(t.text)).join()")
    before = page.evaluate(counts)
    move_slider(opened.page, 0.03)
    assert page.evaluate(counts) != before  # per-datacenter counts follow the slider
    page.close()


@pytest.fixture(scope="module")
def comparison_page(tmp_path_factory):
    from sim.experiments import InProcess, compare
    from tests.test_experiments_compare import CRASHES, TWO

    one = scenario_from(CRASHES)
    two = scenario_from({**CRASHES, "topology": TWO["topology"]})
    cmp = compare({"one-copy": one, "two-copies": two}, replications=3, executor=InProcess())
    return cmp.write_report(tmp_path_factory.mktemp("compare")) / "report.html"


def test_comparison_report_draws(browser, comparison_page, tmp_path):
    open_report(browser, comparison_page, tmp_path / "compare.png").page.close()


def test_replications_report_draws_and_fits_the_window(browser, tmp_path):
    """The replications report: its finding first, both distributions drawn, the worst runs with their long
    seeds and rerun commands within the 1,280-px window, a hostile description shown as text."""
    from sim.experiments import InProcess, replicate
    from tests.test_experiments_compare import CRASHES

    scenario = scenario_from({**CRASHES, "description": f"{HOSTILE} & friends"})
    folder = replicate(scenario, replications=6, executor=InProcess()).write_report(tmp_path / "replications")
    opened = open_report(browser, folder / "report.html", tmp_path / "replications.png")
    page = opened.page
    assert opened.layout["scrollWidth"] <= opened.layout["innerWidth"] == 1280
    assert {f["id"] for f in opened.layout["figures"]} == {"fig-availability", "fig-downtime-minutes"}
    assert page.locator("#finding").inner_text().startswith("Finding. Over 6 replications, availability was")
    assert page.locator("#worst tbody tr").count() == 5
    assert "--seed" in page.locator("#worst code").first.inner_text()
    assert HOSTILE in page.locator("header .description").inner_text()
    assert page.evaluate("window.__pwned") is None
    page.close()


def test_sweep_report_draws(browser, tmp_path):
    from sim.experiments import InProcess, load_sweep, run_sweep

    sweep = load_sweep(ROOT / "scenarios" / "sweeps" / "retry-storm-metastability.yaml").subset(
        values=2, replications=1
    )
    folder = run_sweep(sweep, executor=InProcess()).write_report(tmp_path / "sweep")
    open_report(browser, folder / "report.html", tmp_path / "sweep.png").page.close()


def test_capacity_report_draws_and_fits_the_window(browser, tmp_path):
    """The capacity report: its finding first, the utilisation heatmap drawn, every table within its box,
    the page no wider than the 1,280-px window (a topology of ten datacenters: 45 pairs, 20 of them shown)."""
    from sim.experiments import capacity
    from sim.experiments.report import write_capacity_report

    dcs = [f"datacenter-{i:02d}" for i in range(10)]
    ten = {
        **BASE,
        "topology": {
            "regions": [{"id": f"region-{i:02d}", "datacenters": {d: f"{10 + abs(i - j)}ms" for j, d in enumerate(dcs)}}
                        for i in range(10)],
            "datacenters": [{"id": d, "servers": [{"id": f"s{j:02d}", "count": 2, "workers": 4,
                                                   "service_time": "20ms"}]} for j, d in enumerate(dcs)],
        },
        "workload": {"regions": {f"region-{i:02d}": {"peak": "300/s"} for i in range(10)}},
    }
    scenario = scenario_from(base=ten)
    for name, report in (("monday", capacity(sim.load_scenario(ROOT / "scenarios" / "monday-morning.yaml"))),
                         ("ten", capacity(scenario))):
        folder = write_capacity_report(report, tmp_path / name)
        opened = open_report(browser, folder / "report.html", tmp_path / f"capacity-{name}.png")
        page = opened.page
        assert opened.layout["scrollWidth"] <= opened.layout["innerWidth"] == 1280
        assert {f["id"] for f in opened.layout["figures"]} == {"fig-utilisation"}
        assert page.locator("#finding").inner_text().startswith("Finding. At the peak")
        assert page.locator("#capacity-datacenters tbody tr").count() == len(report.needed)
        assert page.locator("#capacity-pairs tbody tr").count() == min(20, len(report.pairs))
        page.close()


# Names and values with plotly markup, in every experiment report: drawn as text, never as a link.
SVG_LINKS = "() => document.querySelectorAll('svg a').length"
MARKUP_TEXT = """() => Array.from(document.querySelectorAll('svg text'))
  .filter(t => t.textContent.includes('javascript:alert')).length"""


def check_markup_is_text(opened: Opened, texts: tuple[str, ...]) -> None:
    page = opened.page
    assert page.evaluate(SVG_LINKS) == 0  # plotly made no <a> of a name or a value
    shown = page.locator("main").inner_text()
    for text in texts:
        assert text in shown, text  # drawn as the characters someone wrote
    assert page.evaluate(MARKUP_TEXT) > 0
    page.locator("svg text", has_text="javascript:alert").first.click(force=True)
    page.wait_for_timeout(200)
    assert not opened.dialogs, opened.dialogs


def test_hostile_layout_names_are_text_in_the_comparison_report(browser, tmp_path):
    from tests.hostile.test_report_markup import HOSTILE, comparison_of_hostile_layouts

    folder = comparison_of_hostile_layouts().write_report(tmp_path / "compare")
    opened = open_report(browser, folder / "report.html", tmp_path / "hostile-compare.png")
    check_markup_is_text(opened, HOSTILE)
    opened.page.close()


def test_hostile_sweep_values_are_text_in_the_sweep_report(browser, tmp_path):
    from tests.hostile.test_report_markup import HOSTILE, sweep_of_hostile_values

    (tmp_path / "in").mkdir()
    folder = sweep_of_hostile_values(tmp_path / "in").write_report(tmp_path / "sweep")
    opened = open_report(browser, folder / "report.html", tmp_path / "hostile-sweep.png")
    check_markup_is_text(opened, HOSTILE)
    opened.page.close()
