"""The flow engine reads a link's state at each request type's size, as the request engine does per crossing.

``scenarios/mechanisms/lossy-link.yaml`` without client retries: a link loses 15% of its packets for ten of
the run's twenty minutes, and the two request types cross it at 50 kB (reads) and 200 kB (sends). A larger
crossing has more packets to lose and to wait for (:func:`sim.network.packet_loss`), so the sends lose far
more than the reads, and arrive later. When the flow engine read every type at the first type's size it lost
0.85% of the run's requests against the request engine's 1.33%, and its successes took 324 ms on average
against 356 ms.

The request engine runs over ``SEEDS`` seeds; the flow engine is deterministic, so one run is its answer and
the standard error of the difference is the request engine's. Each figure must agree within 4 standard
errors, and 4 standard errors must stay below a fifth of the old gap (``RESOLVES``), so that reading one
size for every type would fail it.
"""

from __future__ import annotations

import math
import statistics
from functools import cache
from pathlib import Path

import pytest
import yaml

import sim

pytestmark = pytest.mark.slow  # 4 request-engine runs of 20 simulated minutes at 100 requests/s: ~15 s

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "mechanisms" / "lossy-link.yaml"
SEEDS = (11, 12, 13, 14)
# flow − requests when the flow engine read one size for every type: percentage points, milliseconds
OLD_GAP = {"lost requests": 0.48, "mean latency": 32.0}


@cache
def figures(engine: str, seed: int) -> dict[str, float]:
    """The share of the run's requests lost (1 − availability, in percent) and the mean latency of the
    successes (milliseconds)."""
    data = yaml.safe_load(SCENARIO.read_text())
    data["policies"]["client"]["retries"] = 0
    result = sim.run(sim.parse_scenario(yaml.safe_dump({**data, "engine": engine, "seed": seed})))
    return {"lost requests": 100 * (1 - result.summary["availability"]),
            "mean latency": 1000 * result.summary["latency"]["mean"]}


@pytest.mark.parametrize("figure", list(OLD_GAP))
def test_each_request_type_crosses_at_its_own_size(figure: str) -> None:
    requests = [figures("requests", seed)[figure] for seed in SEEDS]
    mean, se = statistics.mean(requests), statistics.stdev(requests) / math.sqrt(len(SEEDS))
    flow = figures("flow", SEEDS[0])[figure]
    assert 4 * se < OLD_GAP[figure] / 5, f"{figure}: the request engine's SE {se:.4f} cannot resolve the old gap"
    assert abs(flow - mean) <= 4 * se, (
        f"{figure}: flow {flow:.4f} against the request engine's {mean:.4f} (SE {se:.4f}) over seeds {SEEDS}")
