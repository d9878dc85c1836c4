"""Network faults (``kind: network_fault``): packet loss with TCP's retransmissions, extra latency and one-way
partitions on a link, on both engines; the formula against a direct simulation of packets, the request
engine's losses against the formula, and the mechanism scenario's contrast (client retries mask the loss).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.errors import ScenarioError
from sim.fault_network import LINK_IMPAIRED, LINK_REPAIRED
from sim.network import PACKET_BITS, packet_loss
from sim.result import Result
from tests.shipped import SCENARIOS

LOSSY = SCENARIOS / "mechanisms" / "lossy-link.yaml"
FAULT = (300.0, 900.0)  # the flapping optic, from 5 to 15 minutes


def _text(retries: int = 2, fault: str = "packet_loss: 15%}") -> str:
    text = LOSSY.read_text()
    assert text.count("retries: 2,") == 1 and text.count("packet_loss: 15%}") == 1
    return text.replace("retries: 2,", f"retries: {retries},").replace("packet_loss: 15%}", fault)


def _run(text: str, engine: str = "requests", seed: int = 1) -> Result:
    return sim.run(sim.parse_scenario(text, "lossy-link.yaml").model_copy(update={"engine": engine}), seed=seed)


def _during(result: Result) -> tuple[float, float]:
    """Requests and failed requests of the windows inside the fault (one-minute windows)."""
    rec = result.recorder
    first, last = int(FAULT[0] // 60), int(FAULT[1] // 60)
    return (float(sum(rec.requests[0][first:last])), float(sum(rec.failed[0][first:last])))


@pytest.mark.parametrize(("p", "packets", "retransmissions"), [(0.15, 34, 3), (0.3, 5, 2), (0.05, 134, 1)])
def test_packet_loss_is_what_packets_do(p: float, packets: int, retransmissions: int) -> None:
    """Each packet lost at every send with ``p``; the crossing waits for its slowest packet, whose ``j``-th
    retransmission comes ``rto·(2^j − 1)`` after the first send; past ``retransmissions`` it is lost. The
    formula's loss and mean delay lie within 4 standard errors of 200,000 simulated crossings.
    """
    rng = np.random.default_rng(7)
    n, rto = 200_000, 0.2
    sends = rng.geometric(1.0 - p, size=(n, packets)) - 1  # retransmissions each packet needed
    worst = sends.max(axis=1)
    lost = worst > retransmissions
    late = rto * (2.0 ** worst[~lost] - 1.0)
    delay, loss = packet_loss(p, packets, rto, retransmissions)
    assert abs(lost.mean() - loss) <= 4 * math.sqrt(loss * (1 - loss) / n) + 1e-12
    assert abs(late.mean() - delay) <= 4 * late.std() / math.sqrt(late.size) + 1e-12


def test_the_request_engine_loses_what_the_formula_says() -> None:
    """Without retries a request fails exactly when its crossing is lost: the failed share in the fault's
    windows is the mix of the two request types' losses (reads of 50 kB, sends of 200 kB), within 4
    binomial standard errors (about 60,000 requests; the delays, at most 1.4 s, stay within the 2 s
    timeout, so nothing else fails).
    """
    result = _run(_text(retries=0))
    requests, failed = _during(result)
    expected = sum(share * packet_loss(0.15, math.ceil(size * 8 / PACKET_BITS), 0.2, 3)[1]
                   for share, size in ((0.8, 50_000), (0.2, 200_000)))
    se = math.sqrt(expected * (1 - expected) / requests)
    assert abs(failed / requests - expected) <= 4 * se
    assert expected == pytest.approx(0.027, abs=0.001)  # 1.7% of the reads, 6.6% of the sends


@pytest.mark.parametrize("engine", ["requests", "flow"])
def test_client_retries_mask_the_loss_and_without_them_the_objective_breaks(engine: str) -> None:
    masked, bare = _run(_text(retries=2), engine), _run(_text(retries=0), engine)
    _, failed_masked = _during(masked)
    requests, failed_bare = _during(bare)
    assert failed_bare / requests > 0.005  # over 0.5% lost: the 99.9% objective breaks in every window
    assert bare.summary["downtime_minutes"] == 10.0  # the fault's ten one-minute windows
    assert failed_masked <= failed_bare / 50 and masked.summary["downtime_minutes"] == 0.0
    kinds = [(e["kind"], round(e["time"])) for e in bare.events if e["kind"] in (LINK_IMPAIRED, LINK_REPAIRED)]
    assert kinds == [(LINK_IMPAIRED, 300), (LINK_REPAIRED, 900)]


@pytest.mark.parametrize("engine", ["requests", "flow"])
def test_a_one_way_partition_loses_every_crossing(engine: str) -> None:
    """A request needs its answer: with eu-north's packets to eu-west dropped, no crossing succeeds, and
    every request of the fault's windows fails, retries or not (every copy's requests cross)."""
    result = _run(_text(fault="one_way: eu-north}"), engine)
    requests, failed = _during(result)
    assert failed / requests > 0.99
    impaired = next(e for e in result.events if e["kind"] == LINK_IMPAIRED)
    assert "one-way partition: packets from eu-north to eu-west dropped" in impaired["detail"]


def test_extra_latency_slows_every_crossing_by_that_much() -> None:
    """300 ms more per crossing for 10 of the 20 minutes: the mean latency rises by 300 ms times the share
    of the successes that crossed then (the same draws: a latency takes none, and holds no worker).
    """
    quiet, slow = _run(_text(fault="extra_latency: 1ms}")), _run(_text(fault="extra_latency: 301ms}"))
    assert slow.summary["requests"] == slow.summary["succeeded"] == quiet.summary["succeeded"]
    requests, _ = _during(slow)
    share = requests / slow.summary["requests"]
    assert slow.stats.latency.mean - quiet.stats.latency.mean == pytest.approx(0.3 * share, abs=0.005)


@pytest.mark.parametrize(("fault", "message"), [
    ("one_way: eu-south}", "one_way names 'eu-south', which is not an end of the link (expected one of eu-west, "
                           "eu-north)"),
    ("packet_loss: 0%}", "a network_fault needs packet_loss, extra_latency or one_way"),
    ("packet_loss: 100%}", "packet_loss"),
])
def test_a_bad_network_fault_is_refused_with_its_line(fault: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        sim.parse_scenario(_text(fault=fault), "lossy-link.yaml")
    text = str(err.value)
    assert "lossy-link.yaml:" in text and message in text
