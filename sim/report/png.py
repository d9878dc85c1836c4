"""Static images of a report's figures (``--png``), drawn by kaleido in the system's Chromium.

Optional: ``pip install 'cascadesim[png]'`` brings kaleido; kaleido drives an installed Chromium or
Chrome (on Debian: ``apt-get install chromium``) and never downloads one here. When either is missing,
:func:`render_pngs` raises :class:`PngUnavailable` with one line that says what to install, and the
caller carries on without images.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.report.page import figure_json

__all__ = ["render_pngs", "PngUnavailable", "PNG_WIDTH"]

PNG_WIDTH = 1200


class PngUnavailable(RuntimeError):
    """Static images cannot be drawn here: kaleido or a browser is missing (the message says which)."""


def _kaleido() -> Any:
    try:
        import kaleido
    except ImportError as err:
        raise PngUnavailable(
            "kaleido is not installed; install the extra: pip install 'cascadesim[png]'"
        ) from err
    return kaleido


def render_pngs(figures: Mapping[str, Any], width: int = PNG_WIDTH, scale: float = 1.0) -> dict[str, bytes]:
    """Draw each figure (id → figure) as PNG; return ``{"<id>.png": bytes}``, in the order given.

    One browser session draws them all. Raises :class:`PngUnavailable` when kaleido or a browser is
    missing; any other failure is raised as it is.
    """
    kaleido = _kaleido()
    from kaleido.errors import ChromeNotFoundError

    with tempfile.TemporaryDirectory(prefix="cascadesim-png-") as tmp:
        specs = []
        for fid, fig in figures.items():
            spec = json.loads(figure_json(fig))
            layout = spec.get("layout", {})
            height = int(layout.get("height") or 500)
            specs.append(
                {
                    "fig": spec,
                    "path": str(Path(tmp) / f"{fid}.png"),
                    "opts": {"format": "png", "width": width, "height": height, "scale": scale},
                }
            )
        try:
            kaleido.write_fig_from_object_sync(specs)
        except ChromeNotFoundError as err:
            raise PngUnavailable(
                "no Chromium or Chrome found for kaleido; install one (Debian: apt-get install chromium) "
                "or set BROWSER_PATH"
            ) from err
        return {f"{fid}.png": (Path(tmp) / f"{fid}.png").read_bytes() for fid in figures}
