"""Static images (--png): drawn by kaleido in the system's Chromium; one clear line when unavailable."""

from __future__ import annotations

import shutil
import sys

import pytest

import sim
from sim.report.files import report_files
from sim.report.png import PngUnavailable, render_pngs
from tests.conftest import scenario_from
from tests.test_cli import cli, small, write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():
    return sim.run(scenario_from({"duration": "2m"}), seed=1)


def test_missing_kaleido_is_one_clear_line(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido now raises ImportError
    with pytest.raises(
        PngUnavailable, match=r"kaleido is not installed; install the extra: pip install 'cascadesim\[png\]'"
    ):
        render_pngs({"fig": {"data": [], "layout": {}}})
    lines: list[str] = []
    files = report_files(result, png=True, notify=lines.append)
    assert lines == [
        "png: skipped: kaleido is not installed; install the extra: pip install 'cascadesim[png]'"
    ]
    assert set(files) == {"report.html", "report.md"}


def test_missing_browser_is_one_clear_line(result, monkeypatch):
    pytest.importorskip("kaleido")
    import kaleido
    from kaleido.errors import ChromeNotFoundError

    def no_browser(*args, **kwargs):
        raise ChromeNotFoundError("Browser not found.")

    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", no_browser)
    with pytest.raises(PngUnavailable, match="no Chromium or Chrome found for kaleido"):
        render_pngs({"fig": {"data": [], "layout": {}}})


def test_cli_run_png_without_kaleido_keeps_the_exit_code(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)
    dark = [{"kind": "datacenter_outage", "target": {"datacenters": ["dc-a"]}, "at": "10s"}]
    path = write(tmp_path, small(faults=dark))  # the SLO is breached: exit 3, neither 0 nor an error's 1
    code = cli("run", str(path), "--out", str(tmp_path / "out"), "--png")
    assert code == 3
    err = capsys.readouterr().err
    assert err.count("png: skipped: kaleido is not installed") == 1
    assert (tmp_path / "out" / "report.html").is_file() and not (tmp_path / "out" / "figures").exists()
    # The same run without --png exits the same way.
    assert cli("run", str(path), "--out", str(tmp_path / "again")) == code


@pytest.mark.skipif(
    shutil.which("chromium") is None and shutil.which("google-chrome") is None,
    reason="no Chromium or Chrome installed",
)
def test_real_png_with_the_system_chromium(result, tmp_path):
    pytest.importorskip("kaleido")
    files = report_files(result, png=True, notify=pytest.fail)
    images = {k: v for k, v in files.items() if k.startswith("figures/")}
    assert "figures/fig-availability.png" in images and "figures/fig-topology.png" in images
    assert all(v.startswith(PNG_MAGIC) and len(v) > 5_000 for v in images.values())
