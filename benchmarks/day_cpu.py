"""CPU time of the global day's ``sim.run`` with the ``sim`` package of another checkout, to time two versions
side by side on a shared machine (run them alternately: old, new, new, old).

    python benchmarks/day_cpu.py /path/to/checkout     # prints: checkout, CPU s, wall s, availability, load
    python benchmarks/scale.py 100000 > /tmp/day-100k.yaml
    python benchmarks/day_cpu.py /path/to/checkout /tmp/day-100k.yaml   # another scenario: the 100,000-server day
"""

from __future__ import annotations

import os
import sys
import time

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, root)
import sim  # noqa: E402

assert sim.__file__.startswith(root), f"sim imported from {sim.__file__}, not {root}"
path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "benchmarks", "scenarios", "global-day.yaml")
scenario = sim.load_scenario(path)
cpu, wall = time.process_time(), time.perf_counter()
result = sim.run(scenario)
print(f"{root}: cpu {time.process_time() - cpu:.2f} s, wall {time.perf_counter() - wall:.2f} s, availability "
      f"{result.summary['availability']!r}, load {os.getloadavg()[0]:.2f}")
