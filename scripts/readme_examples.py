"""Write the example outputs in README.md from what the code prints, so they cannot drift.

Each example in README.md sits between two markers, the command first, then its output::

    <!-- example: run-quickstart -->
    ```text
    $ cascadesim run scenarios/quickstart.yaml
    quickstart  (seed 42, 1h simulated, engine requests)
    ...
    ```
    <!-- /example -->

``python scripts/readme_examples.py`` runs each example's command as a person would after cloning (in a
scratch folder holding the shipped ``scenarios/``, with this checkout's code) and rewrites the block between
its markers with the command and what it printed; nothing else in README.md changes. ``--check`` changes
nothing and exits 1 when a block differs from what the code prints now. ``tests/test_readme_examples.py``
runs the same generator and compares.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND = "python scripts/readme_examples.py"

_BLOCK = re.compile(r"(<!-- example: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /example -->)", re.S)


def _monday(folder: Path) -> None:
    """``monday.yaml``: Monday morning with two mistakes, a misspelt field and a misspelt datacenter."""
    text = (ROOT / "scenarios" / "monday-morning.yaml").read_text(encoding="utf-8")
    for old, new in (
        ("{id: mbx-we, count: 8, workers: 4,", "{id: mbx-we, count: 8, worker: 4,"),
        ("    target: {datacenters: [eu-west, eu-north]}\n    rollout:",
         "    target: {datacenters: [eu-wset, eu-north]}\n    rollout:"),
    ):
        if text.count(old) != 1:
            raise SystemExit(f"{COMMAND}: cannot make monday.yaml: {old!r} is not once in monday-morning.yaml")
        text = text.replace(old, new)
    (folder / "monday.yaml").write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class Example:
    """One example: the command's arguments, whether its messages (stderr) are part of what it shows, and
    what the scratch folder needs besides the shipped scenarios.
    """

    args: tuple[str, ...]
    messages: bool = False  # show stderr too (validate's problems); progress lines never are
    setup: Callable[[Path], None] | None = field(default=None, compare=False)

    @property
    def command(self) -> str:
        return "cascadesim " + " ".join(shlex.quote(a) for a in self.args)


EXAMPLES = {
    "run-quickstart": Example(("run", "scenarios/quickstart.yaml")),
    "run-quickstart-flow": Example(("run", "scenarios/quickstart.yaml", "--engine", "flow")),
    "validate-monday": Example(("validate", "monday.yaml"), messages=True, setup=_monday),
    "plan-layouts": Example(("plan", "scenarios/layouts/year/two-copies.yaml",
                             "scenarios/layouts/year/three-copies.yaml", "--years", "50", "-q")),
    "plan-sensitivity": Example(("plan", "scenarios/layouts/year/two-copies.yaml", "--years", "20",
                                 "--sensitivity", "-q")),
    "capacity-years": Example(("capacity", "scenarios/layouts/year/two-copies.yaml", "--years", "20", "-q")),
}
"""The examples README.md shows, by the name in their markers."""


def _run(example: Example, folder: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    env.pop("CASCADESIM_DEBUG", None)
    done = subprocess.run(  # stderr (progress lines, notes) is not shown unless the example's messages are
        [sys.executable, "-P", "-m", "sim", *example.args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if example.messages else subprocess.PIPE,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if done.returncode not in (0, 2, 3):
        raise SystemExit(f"{COMMAND}: '{example.command}' failed ({done.returncode}):\n{done.stderr or ''}")
    return done.stdout


def generate(names: list[str] | None = None) -> dict[str, str]:
    """Run the examples (all, or ``names``) and return each block as README.md should hold it."""
    blocks = {}
    with tempfile.TemporaryDirectory(prefix="cascadesim-readme-") as scratch:
        folder = Path(scratch)
        (folder / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
        for name, example in EXAMPLES.items():
            if names is not None and name not in names:
                continue
            if example.setup is not None:
                example.setup(folder)
            output = _run(example, folder).rstrip("\n")
            blocks[name] = f"```text\n$ {example.command}\n{output}\n```\n"
    return blocks


def readme_blocks(text: str) -> dict[str, str]:
    """The example blocks README.md holds now, by name."""
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def rewrite(text: str, blocks: dict[str, str]) -> str:
    """README.md's text with each named block replaced (every marker must name a known example)."""
    unknown = sorted(set(readme_blocks(text)) - set(EXAMPLES))
    if unknown:
        raise SystemExit(f"{COMMAND}: README.md marks unknown examples: {', '.join(unknown)}")

    def replace(m: re.Match[str]) -> str:
        body = blocks.get(m.group("name"), m.group("body"))
        return m.group(1) + body + m.group(4)

    return _BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md's example blocks (or, with ``--check``, say whether they are current)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if README.md is stale")
    options = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    missing = sorted(set(EXAMPLES) - set(readme_blocks(text)))
    if missing:
        print(f"README.md has no markers for: {', '.join(missing)}", file=sys.stderr)
        return 1
    new = rewrite(text, generate())
    if options.check:
        if new != text:
            print(f"README.md's examples are stale; run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: examples rewritten")
    else:
        print("README.md: examples already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
