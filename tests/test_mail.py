"""Mail delivery: store-and-forward, the senders' retry queues, losses, and the backlog on recovery.

The base case: all of the region's mail goes to one database, whose only copy is on a-01; a-01 is down
from 2m to 7m and the database is active again 30 s later (7m30s). Mail arrives at 20/s.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

import sim
from sim.errors import ScenarioError
from sim.mail import retry_delay
from sim.scenario import MailRetry
from tests.conftest import cause_chain, merge, scenario_from
from tests.shipped import group, run_cached

OUTAGE = (120.0, 420.0)
BACK = 450.0  # the database's copy is active again (database_delay 30 s after the server returns)
MECHANISMS = Path(__file__).resolve().parents[1] / "scenarios" / "mechanisms"


def mail_scenario(mail: dict | None = None, **changes: object) -> sim.Scenario:
    base = {
        "duration": "12m",
        "topology": {"databases": [{"id": "db", "count": 1, "placement": [{"datacenter": "dc-a"}]}]},
        "workload": {"mail": merge({"regions": {"users": {"rate": "20/s"}},
                                    "retry": {"first": "1m", "multiplier": 2, "max": "30m"}}, mail or {})},
        "policies": {"failover": {"database_delay": "30s"}},
        "faults": [{"id": "down", "kind": "server_crash", "target": {"ids": ["a-01"]},
                    "at": "2m", "duration": "5m"}],
    }
    return scenario_from(merge(base, changes))




def of_kind(result: sim.Result, kind: str) -> list[dict]:
    return [e for e in result.events if e["kind"] == kind]


def delays(result: sim.Result) -> np.ndarray:
    return np.frombuffer(result.recorder.mail.delays, dtype=np.float64)


def assert_conserved(mail: dict) -> None:
    lost = mail["lost"]["queue_full"] + mail["lost"]["expired"]
    assert mail["delivered"] + lost + mail["undelivered_at_end"] == mail["messages"]
    assert mail["undelivered_at_end"] >= mail["backlog"]["at_end"] >= 0


@pytest.fixture(scope="module")
def outage() -> sim.Result:
    return sim.run(mail_scenario())


def test_retry_schedule_grows_to_its_max():
    retry = MailRetry(first=60, multiplier=2, max=1800)
    assert [retry_delay(retry, k) for k in range(1, 8)] == [60, 120, 240, 480, 960, 1800, 1800]


def test_mail_during_an_outage_is_delayed_not_lost_and_delivered_after_recovery(outage):
    mail = outage.summary["mail"]
    assert_conserved(mail)
    assert mail["lost"] == {"queue_full": 0, "expired": 0}
    assert mail["undelivered_at_end"] == 0 and mail["backlog"]["at_end"] == 0
    arrived_unavailable = 20 * (BACK - OUTAGE[0])
    assert mail["delayed"] == pytest.approx(arrived_unavailable, rel=0.1)
    assert mail["counted_in_availability"] is False
    # The longest wait is the schedule's: 1m + 2m + 4m (plus 30 s for the few on a-01 when it crashed).
    assert 420 <= mail["delay"]["max"] <= 60 + 120 + 240 + 30 + 1
    assert mail["delay"]["p50"] < 1.0  # most mail is not delayed at all
    assert mail["backlog"]["peak"] == pytest.approx(arrived_unavailable, rel=0.1)
    assert OUTAGE[0] < mail["backlog"]["at"] <= BACK + 1


def test_the_backlog_is_in_the_event_log_with_its_cause(outage):
    onset = of_kind(outage, "mail_backlog")
    assert len(onset) == 1 and onset[0]["node"] == "users"
    assert onset[0]["time"] == pytest.approx(OUTAGE[0], abs=1)
    assert cause_chain(outage, onset[0]) == ["mail_backlog", "server_down", "fault_start"]
    assert onset[0]["fault"] == "down"
    (draining,) = of_kind(outage, "mail_backlog_draining")
    assert draining["node"] == "a-01" and draining["time"] == pytest.approx(BACK, abs=1)
    assert draining["cause"] == onset[0]["id"]
    (cleared,) = of_kind(outage, "mail_backlog_cleared")
    # The last message to wait 7 minutes arrived 3 minutes before the database came back.
    assert cleared["cause"] == onset[0]["id"] and cleared["time"] == pytest.approx(BACK - 180 + 420, abs=1)
    assert not of_kind(outage, "mail_lost")


def test_delays_cluster_at_the_points_of_the_retry_schedule(outage):
    late = delays(outage)[delays(outage) > 1.0]
    points = np.array([60.0, 180.0, 420.0])  # 1m, 1m + 2m, 1m + 2m + 4m
    nearest = np.abs(late[:, None] - points[None, :]).argmin(axis=1)
    on_point = np.abs(late - points[nearest]) < 1.0
    assert on_point.mean() > 0.99  # the rest were on a-01 when it crashed: 30 s timeout first
    # Which point a message lands on depends on when it arrived: [390, 450) s -> 1m, [270, 390) -> 3m,
    # [120, 270) -> 7m: shares 60 : 120 : 150 of the 330 s.
    shares = np.bincount(nearest[on_point], minlength=3) / on_point.sum()
    assert shares == pytest.approx(np.array([60, 120, 150]) / 330, abs=0.03)


def test_the_backlog_lands_on_the_server_when_it_comes_back(outage):
    rows = outage.mail_series
    steady = np.mean([r["delivered"] for r in rows if r["time"] < OUTAGE[0]])
    assert all(r["delivered"] < 0.85 * steady for r in rows if OUTAGE[0] <= r["time"] < OUTAGE[1])
    # The minute after the database is back (8m-9m): the steady flow, the 1-minute retries of the last
    # minute's messages and half of the 3-minute ones: about 2.5 times the steady rate, on a-01 alone.
    after = next(r for r in rows if r["time"] == 480)
    assert after["delivered"] > 2 * steady
    assert outage.summary["mail"]["delivery_rate"]["peak"] > 2 * steady / 60
    assert outage.summary["mail"]["delivery_rate"]["at"] in (480, 540)  # 540: the 3- and 7-minute retries
    backlog = [r["backlog"] for r in rows]
    assert backlog[1] == 0 and max(backlog) == backlog[6] and backlog[-1] == 0  # grows, then drains


def test_a_small_sender_queue_overflows_and_loses_mail():
    result = sim.run(mail_scenario({"queue_limit": 100}))
    mail = result.summary["mail"]
    assert_conserved(mail)
    assert mail["lost"]["queue_full"] > 5000 and mail["lost"]["expired"] == 0
    assert mail["backlog"]["peak"] == 100
    assert mail["delayed"] == pytest.approx(100, abs=5)  # those that got a slot, and a few at the crash
    lost = of_kind(result, "mail_lost")
    assert 5 <= len(lost) <= 6  # one per minute with losses, summed
    assert all("senders' queue full (100 messages)" in e["detail"] for e in lost)
    assert all(cause_chain(result, e)[-3:] == ["mail_backlog", "server_down", "fault_start"] for e in lost)
    assert sum(int(e["detail"].split()[0].replace(",", "")) for e in lost) == mail["lost"]["queue_full"]


def test_a_retry_window_shorter_than_the_outage_expires_mail():
    result = sim.run(mail_scenario({"give_up": "2m"}))
    mail = result.summary["mail"]
    assert_conserved(mail)
    assert mail["lost"]["expired"] > 3000 and mail["lost"]["queue_full"] == 0
    assert mail["delay"]["max"] <= 120 + 1  # nothing is tried after its window
    assert mail["delayed"] > 0  # the last minute's messages still made it, on their 1-minute retry
    lost = of_kind(result, "mail_lost")
    assert lost and all("expired (retried for up to 2m)" in e["detail"] for e in lost)
    rows = result.mail_series
    assert sum(r["lost_expired"] for r in rows) == mail["lost"]["expired"]


def test_mail_is_real_load_but_not_counted_in_availability(make_scenario):
    quiet = sim.run(make_scenario({"duration": "3m"})).summary
    busy = sim.run(make_scenario({"duration": "3m", "topology": {"databases": [
        {"id": "db", "count": 4, "placement": [{"datacenter": "dc-a"}]}]},
        "workload": {"mail": {"regions": {"users": {"rate": "500/s"}}, "work": 0.5}}})).summary
    assert busy["requests"] == quiet["requests"] and busy["availability"] == quiet["availability"] == 1.0
    assert busy["mail"]["delivered"] > 80_000
    assert busy["counts"]["queued"] > 2 * quiet["counts"]["queued"]  # user requests wait behind the mail
    # At 37% utilisation the queueing shows in the mean; the p99 is mostly service time either way.
    assert busy["latency"]["mean"] > quiet["latency"]["mean"]


def test_no_mail_configured_means_no_mail_section(make_scenario, tmp_path):
    result = sim.run(make_scenario({"duration": "2m"}))
    assert "mail" not in result.summary
    assert result.mail_series == [] and result.records("mail") == []
    assert not of_kind(result, "mail_backlog")
    folder = result.write_report(tmp_path / "plain")
    assert not (folder / "mail.csv").exists()


def test_mail_csv_is_written_per_window_and_region(tmp_path):
    result = sim.run(mail_scenario(duration="4m"))
    folder = result.write_report(tmp_path / "mail")
    rows = list(csv.DictReader((folder / "mail.csv").open()))
    assert len(rows) == 4 and rows[0]["region"] == "users"
    assert set(rows[0]) >= {"time", "arrived", "attempts", "delivered", "delayed", "lost_queue_full",
                            "lost_expired", "backlog", "backlog_peak", "delay_p50", "delay_max"}
    assert int(rows[3]["backlog"]) > 0  # still in the outage at the end


def test_same_seed_same_mail_numbers():
    first, again = sim.run(mail_scenario(duration="5m")), sim.run(mail_scenario(duration="5m"))
    assert first.summary["mail"] == again.summary["mail"]
    assert first.mail_series == again.mail_series
    assert [e for e in first.events] == [e for e in again.events]
    other = sim.run(mail_scenario(duration="5m"), seed=2)
    assert other.summary["mail"]["messages"] != first.summary["mail"]["messages"]


@pytest.mark.parametrize(
    ("mail", "message"),
    [
        ({"regions": {"userz": {"rate": "5/s"}}},
         "workload.mail.regions.userz: no region 'userz' (did you mean 'users'?)"),
        ({"regions": {"users": {"rate": "5/s"}}, "retry": {"first": "5m", "max": "1m"}},
         "workload.mail.retry: max is shorter than first (got max 1m, first 5m; expected max >= first)"),
        ({"regions": {"users": {"rate": "5/s"}}},
         "workload.mail.regions.users: no mailbox database holds the users"),
        ({"regions": {"users": {"rate": "1M/s"}}}, "too many mail messages to simulate in memory"),
    ],
    ids=["unknown-region", "retry-max", "no-database", "too-many"],
)
def test_mail_configuration_errors_name_the_field(mail, message):
    with pytest.raises(ScenarioError) as info:
        scenario_from({"workload": {"mail": mail}})
    assert message in str(info.value)


# ------------------------------------------------------------------------------------------- shipped


def shipped(changes: dict | None = None) -> sim.Scenario:
    path = MECHANISMS / "mail-backlog.yaml"
    data = merge(yaml.safe_load(path.read_text()), changes or {})
    return sim.parse_scenario(yaml.safe_dump(data, sort_keys=False), str(path))


@group(MECHANISMS / "mail-backlog.yaml")
def test_mail_backlog_scenario_overloads_the_returning_server_until_the_herd_passes():
    result = run_cached(shipped())  # the file as it is: shared with the other modules (tests/shipped.py)
    mail = result.summary["mail"]
    assert_conserved(mail)
    assert mail["lost"] == {"queue_full": 0, "expired": 0}
    assert mail["delayed"] > 4000 and mail["backlog"]["peak"] > 4000
    assert mail["delivery_rate"]["peak"] > 1.5 * mail["delivery_rate"]["mean"]
    overloaded = [e for e in of_kind(result, "overloaded") if e["node"] == "mbx-03"]
    assert overloaded and overloaded[0]["time"] > 12 * 60
    assert cause_chain(result, overloaded[0]) == [
        "overloaded", "mail_backlog_draining", "mail_backlog", "server_down", "fault_start"]
    assert any(e["node"] == "mbx-03" for e in of_kind(result, "overload_cleared"))
    assert result.summary["recovery"]["recovered"]
    # Without mail the returning server is not overloaded: it was the herd.
    quiet = sim.run(shipped({"workload": {"mail": None}}))
    assert "mail" not in quiet.summary
    assert not [e for e in of_kind(quiet, "overloaded") if e["node"] == "mbx-03"]
    # Without deadline propagation, the clients' retries keep mbx-03 overloaded after the herd passes.
    stuck = sim.run(shipped({"policies": {"server": {"cancellation": False}}}))
    assert stuck.summary["recovery"]["metastable"]
    assert [e["node"] for e in of_kind(stuck, "overloaded")] == ["mbx-03"]
    assert not of_kind(stuck, "overload_cleared")
