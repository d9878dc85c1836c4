"""README.md's example outputs are what the code prints: ``scripts/readme_examples.py`` writes them, and
this runs the same generator and compares (the quickstart's run takes a few seconds).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_examples", ROOT / "scripts" / "readme_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def test_readme_examples_are_what_the_code_prints():
    script = _script()
    held = script.readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert sorted(held) == sorted(script.EXAMPLES), "README.md's example markers and the script's examples differ"
    printed = script.generate()
    stale = [name for name in script.EXAMPLES if held[name] != printed[name]]
    assert stale == [], f"README.md's examples {', '.join(stale)} are stale; run {script.COMMAND}"


def test_rewrite_replaces_only_the_marked_blocks():
    script = _script()
    text = (
        "intro\n<!-- example: run-quickstart -->\n```text\nold\n```\n<!-- /example -->\nmiddle ```text\nkept\n```\n"
    )
    new = script.rewrite(text, {"run-quickstart": "```text\nnew\n```\n"})
    assert new == (
        "intro\n<!-- example: run-quickstart -->\n```text\nnew\n```\n<!-- /example -->\nmiddle ```text\nkept\n```\n"
    )
    assert script.readme_blocks(new) == {"run-quickstart": "```text\nnew\n```\n"}
