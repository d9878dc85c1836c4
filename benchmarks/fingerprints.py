"""Fingerprints of every shipped flow-engine scenario (and the global day with ``--day``) for the ``sim`` package of
a checkout, to show that a speed change leaves the answers as they were.

    python benchmarks/fingerprints.py /path/to/old/checkout --day > old.txt
    python benchmarks/fingerprints.py /path/to/new/checkout --day > new.txt
    diff old.txt new.txt    # nothing: the same availability and the same event log everywhere

Each line: the scenario, its availability (``repr``: every digit) and a hash of its event log.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--")
                       else os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, root)
import sim  # noqa: E402
from tests.shipped import FLOW_SHIPPED  # noqa: E402

assert sim.__file__.startswith(root), f"sim imported from {sim.__file__}, not {root}"
paths = list(FLOW_SHIPPED)
if "--day" in sys.argv:
    paths.append(Path(root) / "benchmarks" / "scenarios" / "global-day.yaml")
for path in paths:
    result = sim.run(sim.load_scenario(str(path), {"engine": "flow"}))
    events = hashlib.sha256(json.dumps(result.events, sort_keys=True, default=str).encode()).hexdigest()[:12]
    print(f"{Path(path).relative_to(root)}\t{result.summary['availability']!r}\tevents {events}", flush=True)
