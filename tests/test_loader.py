"""The scenario loader: YAML in, a typed Scenario out, or every problem with its line, column and path."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.errors import Problem, ScenarioError, format_path
from sim.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, load_scenario, parse_scenario, scenario_hash
from sim.scenario import Scenario

# Line numbers matter: the tests below point at them.
BASE = """\
name: demo
duration: 1h
topology:
  regions:
    - id: europe
      datacenters: {eu-west: 10ms, eu-north: 30ms}
  datacenters:
    - id: eu-west
      servers:
        - {id: mbx-we, count: 4, workers: 8, service_time: 20ms}
    - id: eu-north
      servers:
        - {id: mbx-no, count: 4, workers: 8, service_time: 20ms}
  links:
    - {between: [eu-west, eu-north], capacity: 10Gbps, latency: 25ms}
  databases:
    - id: db-eu
      count: 8
      placement: [{datacenter: eu-west}, {datacenter: eu-north}]
workload:
  regions:
    europe: {peak: 50/s}
  requests:
    read: {share: 80%}
    send: {share: 20%}
faults:
  - kind: server_crash
    target: {ids: [mbx-we-01]}
    at: 10m
    duration: 5m
  - kind: datacenter_outage
    target:
      datacenters: [eu-north]
    at: 20m
"""


def edit(*changes: tuple[str, str], text: str = BASE) -> str:
    """``BASE`` with each ``(old, new)`` replaced; ``old`` must occur exactly once."""
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def problems(text: str, name: str = "t.yaml") -> list[str]:
    """The problems ``parse_scenario`` reports, as printed (``t.yaml:line:col: path: message``)."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, name)
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    return [str(p) for p in info.value.problems]


def only_problem(text: str, name: str = "t.yaml") -> str:
    found = problems(text, name)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------------------- valid files


def test_base_loads_with_units_and_defaults():
    s = parse_scenario(BASE, "t.yaml")
    assert isinstance(s, Scenario)
    assert s.duration == 3600.0
    assert s.topology.regions[0].datacenters == {"eu-west": 0.01, "eu-north": 0.03}
    group = s.topology.datacenters[0].servers[0]
    assert (group.count, group.workers, group.service_time.mean, group.service_time.distribution) == (
        4,
        8,
        0.02,
        "exponential",
    )
    assert group.queue_limit == 100  # default
    assert s.topology.links[0].capacity == 10e9
    assert s.workload.regions["europe"].peak == 50.0
    assert s.workload.requests["read"].share == pytest.approx(0.8)
    assert s.faults[0].at == 600.0 and s.faults[0].duration == 300.0
    assert s.faults[1].target.mode.kind == "all"
    assert s.policies.client.retries == 2 and s.slo.availability == 0.999  # defaults filled
    assert s.fault_id(0) == "server_crash-0"


def test_models_are_immutable():
    s = parse_scenario(BASE)
    with pytest.raises(Exception, match="frozen"):
        s.seed = 3  # type: ignore[misc]


def test_load_scenario_reads_a_file(tmp_path):
    path = tmp_path / "monday.yaml"
    path.write_text(BASE)
    assert load_scenario(path) == parse_scenario(BASE)
    assert sim.load_scenario(str(path)).name == "demo"


def test_scenario_hash_is_stable_and_sensitive():
    a, b = parse_scenario(BASE), parse_scenario(BASE)
    assert scenario_hash(a) == scenario_hash(b)
    assert len(scenario_hash(a)) == 64
    assert scenario_hash(parse_scenario(edit(("name: demo", "name: other")))) != scenario_hash(a)


def test_aliases_and_merge_keys_are_plain_data():
    text = edit(
        (
            "        - {id: mbx-we, count: 4, workers: 8, service_time: 20ms}",
            "        - &group {id: mbx-we, count: 4, workers: 8, service_time: 20ms}",
        ),
        (
            "        - {id: mbx-no, count: 4, workers: 8, service_time: 20ms}",
            "        - {<<: *group, id: mbx-no}",
        ),
    )
    s = parse_scenario(text)
    assert s.topology.datacenters[1].servers[0].id == "mbx-no"
    assert s.topology.datacenters[1].servers[0].workers == 8


@pytest.mark.parametrize(
    ("mode", "kind", "value"),
    [
        ("all", "all", 0.0),
        ("one", "one", 0.0),
        ("{count: 2}", "count", 2.0),
        ("{percent: 50%}", "percent", 0.5),
    ],
)
def test_fault_modes(mode, kind, value):
    s = parse_scenario(edit(("target: {ids: [mbx-we-01]}", f"target: {{groups: [mbx-we], mode: {mode}}}")))
    assert (s.faults[0].target.mode.kind, s.faults[0].target.mode.value) == (kind, value)


def test_random_fault_timing():
    s = parse_scenario(edit(("    at: 10m\n    duration: 5m\n", "    mtbf: 2h\n    mttr: 10m\n")))
    assert (s.faults[0].mtbf, s.faults[0].mttr, s.faults[0].at) == (7200.0, 600.0, None)


# ------------------------------------------------------------------------------------ each kind of problem


def test_malformed_yaml():
    assert only_problem(edit(("name: demo", "name: [demo"))) == (
        "t.yaml:2:9: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 1, column 7)"
    )


TABS = "invalid YAML: tabs are not allowed for indentation in YAML; use spaces"


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("duration: 1h", "\tduration: 1h", "2:1"),  # a whole indentation of tabs
        ("      count: 8\n", "    \tcount: 8\n", "18:5"),  # spaces, then a tab
        ("      datacenters: [eu-north]\n", "\t  datacenters: [eu-north]\n", "33:1"),  # a tab, then spaces
    ],
)
def test_tab_indentation_says_so(old, new, where):
    assert only_problem(edit((old, new))) == f"t.yaml:{where}: {TABS}"


def test_a_tab_between_a_key_and_its_value_is_fine():
    assert parse_scenario(edit(("      count: 8\n", "      count:\t8\n"))).topology.databases[0].count == 8


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (  # a key of a list item moved left to the list's dashes: YAML stops there
            "    at: 20m\n",
            "  at: 20m\n",
            "t.yaml:34:3: invalid YAML: did not find expected '-' indicator (while parsing a block collection at "
            "line 27, column 3); check the indentation: 'at' is left of line 33 above it; to keep it in the list "
            "item of line 31, indent it to column 5",
        ),
        (  # moved left by one space, between the dashes and the item's keys
            "      datacenters: {eu-west: 10ms, eu-north: 30ms}",
            "     datacenters: {eu-west: 10ms, eu-north: 30ms}",
            "t.yaml:6:6: invalid YAML: did not find expected '-' indicator (while parsing a block collection at "
            "line 5, column 5); check the indentation: 'datacenters' is left of line 5 above it; to keep it in the "
            "list item of line 5, indent it to column 7",
        ),
        (  # a key of a mapping between two levels
            "    send: {share: 20%}\n",
            "   send: {share: 20%}\n",
            "t.yaml:25:4: invalid YAML: did not find expected key (while parsing a block mapping at line 21, "
            "column 3); check the indentation: 'send' is left of line 24 above it; to line it up with that line, "
            "indent it to column 5",
        ),
    ],
)
def test_a_key_moved_left_gets_an_indentation_hint(old, new, expected):
    assert only_problem(edit((old, new))) == expected


def test_a_key_moved_left_into_the_mapping_above_says_where_it_belongs():
    # Valid YAML, but the key lands in the mapping that holds its own: the entry above (its last lines) is
    # where it belongs.
    found = only_problem(edit(("  requests:\n", "requests:\n")))
    assert found.startswith("t.yaml:23:1: requests: unknown field 'requests' (allowed: name, ")
    assert found.endswith(
        "); indented too little? 'requests' is a field of workload, which ends on line 22 above: indent it to "
        "column 3"
    )
    assert problems(edit(("    at: 20m\n", "at: 20m\n")))[-1].endswith(
        "indented too little? 'at' is a field of faults[1], which ends on line 33 above: indent it to column 5"
    )
    # The entry above was left without a value: the key was meant to go under it.
    assert problems(edit(("    europe: {peak: 50/s}\n", "  europe: {peak: 50/s}\n"))) == [
        "t.yaml:21:11: workload.regions: wrong type (got null, expected a mapping)",
        "t.yaml:22:3: workload.europe: unknown field 'europe' (allowed: regions, requests, mail); indented too "
        "little? 'regions' on line 21 above has no value: indent 'europe' further to put it under 'regions'",
    ]


def test_an_unknown_key_with_nothing_above_it_that_fits_gets_no_indentation_hint():
    found = only_problem(edit(("{id: mbx-we, count: 4, workers: 8,", "{id: mbx-we, count: 4, worker: 8,")))
    assert "indent" not in found


def test_unknown_key_near_miss_suggests_the_field():
    text = edit(("{id: mbx-we, count: 4, workers: 8,", "{id: mbx-we, count: 4, worker: 8,"))
    assert only_problem(text) == (
        "t.yaml:10:34: topology.datacenters[0].servers[0].worker: unknown field 'worker' (did you mean "
        "'workers'? allowed: id, count, workers, service_time, frontend_time, queue_limit, labels, memory, "
        "restart_time, warmup, autoscale)"
    )


def test_unknown_top_level_key():
    assert only_problem(edit(("duration: 1h\n", "duration: 1h\nsed: 4\n"))) == (
        "t.yaml:3:1: sed: unknown field 'sed' (did you mean 'seed'? allowed: name, description, seed, "
        "duration, engine, flow, topology, workload, policies, faults, slo, impact, limits)"
    )


def test_unknown_key_far_from_any_field_lists_them():
    message = only_problem(edit(("    at: 20m\n", "    at: 20m\n    colour: blue\n")))
    assert message == (
        "t.yaml:35:5: faults[1].colour: unknown field 'colour' "
        "(allowed: kind, id, target, at, duration, mtbf, mttr, repair)"
    )


def test_wrong_type():
    assert only_problem(edit(("count: 8", "count: lots"))) == (
        "t.yaml:18:14: topology.databases[0].count: not a whole number (got 'lots', expected an integer)"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "count: 8",
            "count: 2.5",
            "t.yaml:18:14: topology.databases[0].count: not a whole number (got 2.5, expected an integer)",
        ),
        (
            "  regions:\n    europe: {peak: 50/s}\n",
            "  regions: [europe]\n",
            "t.yaml:21:12: workload.regions: wrong type (got a list, expected a mapping)",
        ),
        ("name: demo", "name: [demo]", "t.yaml:1:7: name: not a string (got a list, expected a string)"),
        (
            "name: demo",
            "name: no",
            "t.yaml:1:7: name: not a string (got false, expected a string; YAML reads "
            "yes/no/on/off as true/false: put the name in quotes)",
        ),
        (
            "name: demo",
            "name: 'demo dc'",
            "t.yaml:1:7: name: not a valid id (got 'demo dc', expected letters, "
            "digits and _ . : - (starting with a letter or digit, at most 64))",
        ),
        ("name: demo", "name: ''", "t.yaml:1:7: name: empty (got '', expected at least one character)"),
        (
            "name: demo",
            "name: " + "x" * 65,
            "t.yaml:1:7: name: too long (got 65 characters, expected at most 64)",
        ),
        (
            "duration: 1h",
            "duration: 1h\nseed: -1",
            "t.yaml:3:7: seed: too small (got -1, expected at least 0)",
        ),
        (
            "duration: 1h",
            "duration: 1h\nseed: null",
            "t.yaml:3:7: seed: not a whole number (got null, expected an integer)",
        ),
        (
            "duration: 1h",
            "duration: 1h\nengine: fluid",
            "t.yaml:3:9: engine: unknown value (got 'fluid', expected one of 'requests', 'flow', 'auto')",
        ),
        (
            "duration: 1h",
            "duration: 1h\npolicies: {client: {retries: 50}}",
            "t.yaml:3:30: policies.client.retries: too large (got 50, expected at most 20)",
        ),
        (
            "duration: 1h",
            "duration: 1h\npolicies: {client: {backoff: {multiplier: .nan}}}",
            "t.yaml:3:43: policies.client.backoff.multiplier: not a finite number (got nan, expected a "
            "finite number)",
        ),
        (
            "duration: 1h",
            "duration: 1h\npolicies: {load_balancer: {health_check: {enabled: maybe}}}",
            "t.yaml:3:52: policies.load_balancer.health_check.enabled: not true or false (got 'maybe', "
            "expected true "
            "or false)",
        ),
        (
            "count: 4, workers: 8, service_time: 20ms}\n    - id: eu-north",
            "count: 4, workers: 0, service_time: 20ms}\n    - id: eu-north",
            "t.yaml:10:43: topology.datacenters[0].servers[0].workers: too small (got 0, expected at least "
            "1)",
        ),
        (
            "      servers:\n        - {id: mbx-no, count: 4, workers: 8, service_time: 20ms}\n",
            "      servers: []\n",
            "t.yaml:12:16: topology.datacenters[1].servers: too few items (got 0, expected at least 1)",
        ),
        (
            "datacenters: {eu-west: 10ms, eu-north: 30ms}",
            "datacenters: {}",
            "t.yaml:6:20: topology.regions[0].datacenters: too few entries (got 0, expected at least 1)",
        ),
        (
            "between: [eu-west, eu-north]",
            "between: [eu-west]",
            "t.yaml:15:17: topology.links[0].between: too few items (got 1, expected 2)",
        ),
        (
            "between: [eu-west, eu-north]",
            "between: [eu-west, eu-north, eu-west]",
            "t.yaml:15:17: topology.links[0].between: too many items (got 3, expected at most 2)",
        ),
        (
            "service_time: 20ms}\n    - id: eu-north",
            "service_time: fast}\n    - id: eu-north",
            "t.yaml:10:60: topology.datacenters[0].servers[0].service_time: not a duration (got 'fast', "
            "expected "
            "a duration such as 250ms, 30s, 5m, 2h or 1h30m)",
        ),
        (
            "service_time: 20ms}\n    - id: eu-north",
            "service_time: {mean: 20ms, dist: lognormal}}\n    - id: eu-north",
            "t.yaml:10:73: topology.datacenters[0].servers[0].service_time.dist: unknown field 'dist' "
            "(allowed: distribution, mean, cv)",
        ),
    ],
)
def test_type_and_range_errors(old, new, expected):
    assert only_problem(edit((old, new))) == expected


def test_dangling_reference_suggests_the_name():
    assert only_problem(edit(("datacenters: [eu-north]", "datacenters: [eu-wset]"))) == (
        "t.yaml:33:21: faults[1].target.datacenters[0]: no datacenter 'eu-wset' (did you mean 'eu-west'?); "
        "known: eu-north, eu-west"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "{eu-west: 10ms,",
            "{eu-wset: 10ms,",
            "t.yaml:6:21: topology.regions[0].datacenters.eu-wset: no "
            "datacenter 'eu-wset' (did you mean 'eu-west'?); known: eu-north, eu-west",
        ),
        (
            "    europe: {peak",
            "    eurpoe: {peak",
            "t.yaml:22:5: workload.regions.eurpoe: no region 'eurpoe' "
            "(did you mean 'europe'?); known: europe",
        ),
        (
            "[{datacenter: eu-west},",
            "[{datacenter: us-east},",
            "t.yaml:19:32: topology.databases[0].placement[0].datacenter: no datacenter 'us-east'; known: "
            "eu-north, "
            "eu-west",
        ),
        (
            "between: [eu-west, eu-north]",
            "between: [eu-west, eu-nrth]",
            "t.yaml:15:27: topology.links[0].between[1]: no datacenter 'eu-nrth' (did you mean 'eu-north'?); "
            "known: eu-north, eu-west",
        ),
        (
            "target: {ids: [mbx-we-01]}",
            "target: {ids: [mbx-we-05]}",
            "t.yaml:28:20: faults[0].target.ids[0]: no server 'mbx-we-05' (group 'mbx-we' has mbx-we-01 to "
            "mbx-we-04)",
        ),
        (
            "target: {ids: [mbx-we-01]}",
            "target: {ids: [mbx-we-1]}",
            "t.yaml:28:20: faults[0].target.ids[0]: no server 'mbx-we-1' (did you mean 'mbx-we-01'?)",
        ),
        (
            "target: {ids: [mbx-we-01]}",
            "target: {ids: [mbx-ew-01]}",
            "t.yaml:28:20: faults[0].target.ids[0]: no server 'mbx-ew-01' (did you mean 'mbx-we-01'?); "
            "known: "
            "mbx-no-01, mbx-no-02, mbx-no-03, mbx-no-04, mbx-we-01, mbx-we-02, mbx-we-03, mbx-we-04",
        ),
        (
            "target: {ids: [mbx-we-01]}",
            "target: {groups: [mbx-ew]}",
            "t.yaml:28:23: faults[0].target.groups[0]: no server group 'mbx-ew' (did you mean 'mbx-we'?); "
            "known: "
            "mbx-no, mbx-we",
        ),
        (
            "kind: server_crash",
            "kind: server_crsh",
            "t.yaml:27:11: faults[0].kind: no fault kind 'server_crsh' (did you mean 'server_crash'?); "
            "known: ",
        ),
        (
            "duration: 1h",
            "duration: 1h\npolicies: {load_balancer: {algorithm: roundrobin}}",
            "t.yaml:3:39: policies.load_balancer.algorithm: no load-balancer algorithm 'roundrobin' (did you "
            "mean "
            "'round_robin'?)",
        ),
        (
            "    at: 20m",
            "    at: 2h",
            "t.yaml:34:9: faults[1].at: starts after the run ends (got 2h, expected less "
            "than the scenario's duration, 1h)",
        ),
    ],
)
def test_references(old, new, expected):
    assert only_problem(edit((old, new))).startswith(expected)


def test_negative_capacity():
    assert only_problem(edit(("capacity: 10Gbps", "capacity: -10Gbps"))) == (
        "t.yaml:15:48: topology.links[0].capacity: bandwidth must be more than 0 (got '-10Gbps', expected a "
        "bandwidth such as 400Mbps or 10Gbps)"
    )


def test_bad_unit():
    assert only_problem(edit(("duration: 1h", "duration: 1 hour"))) == (
        "t.yaml:2:11: duration: not a duration (got '1 hour', expected a duration such as 250ms, 30s, 5m, 2h "
        "or 1h30m)"
    )


def test_bad_rate_and_percent():
    found = problems(edit(("{peak: 50/s}", "{peak: 50 per second}"), ("{share: 80%}", "{share: 80}")))
    assert found == [
        "t.yaml:22:20: workload.regions.europe.peak: not a rate (got '50 per second', expected a rate such "
        "as "
        "500/s, 30k/min or 2M/h)",
        "t.yaml:24:19: workload.requests.read.share: fraction out of range (got 80, expected a number "
        "between 0 "
        "and 1, or a percentage such as 30%; did you mean 80%?)",
    ]


def test_missing_required_field():
    assert only_problem(edit((", service_time: 20ms}\n    - id: eu-north", "}\n    - id: eu-north"))) == (
        "t.yaml:10:11: topology.datacenters[0].servers[0]: missing required field 'service_time'"
    )


def test_missing_top_level_fields():
    assert problems("name: x\n") == [
        "t.yaml:1:1: missing required field 'duration'",
        "t.yaml:1:1: missing required field 'topology'",
        "t.yaml:1:1: missing required field 'workload'",
    ]


def test_duplicate_key():
    assert only_problem(edit(("duration: 1h\n", "duration: 1h\nduration: 2h\n"))) == (
        "t.yaml:3:1: duration: duplicate key 'duration' (first on line 2; a key may appear once in a mapping)"
    )


def test_duplicate_key_nested_and_in_flow_mapping():
    found = problems(edit(("{id: mbx-we, count: 4,", "{id: mbx-we, count: 4, count: 5,")))
    assert found == [
        "t.yaml:10:34: topology.datacenters[0].servers[0].count: duplicate key 'count' (first on line 10; a "
        "key "
        "may appear once in a mapping)"
    ]


def test_duplicate_ids():
    found = problems(edit(("    - id: eu-north\n", "    - id: eu-west\n")))
    assert (
        "t.yaml:11:11: topology.datacenters[1].id: duplicate datacenter id 'eu-west' (already used by "
        "topology.datacenters[0])" in found
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "{id: mbx-no,",
            "{id: mbx-we,",
            "t.yaml:13:16: topology.datacenters[1].servers[0].id: duplicate server "
            "group id 'mbx-we' (already used by topology.datacenters[0].servers[0])",
        ),
        (
            "    - id: europe",
            "    - id: eu-west",
            "t.yaml:8:11: topology.datacenters[0].id: id 'eu-west' is already "
            "the region topology.regions[0] (regions, datacenters, server groups, "
            "database groups and dependencies need distinct ids)",
        ),
        (
            "    - id: db-eu",
            "    - id: mbx-we",
            "t.yaml:17:11: topology.databases[0].id: id 'mbx-we' is already "
            "the server group topology.datacenters[0].servers[0]",
        ),
        (
            "    - id: europe",
            "    - id: mbx-we-02",
            "t.yaml:5:11: topology.regions[0].id: id 'mbx-we-02' is "
            "already the name of a server of group 'mbx-we'",
        ),
        (
            "  - kind: datacenter_outage\n",
            "  - kind: datacenter_outage\n    id: server_crash-0\n",
            "t.yaml:32:9: faults[1].id: duplicate fault id 'server_crash-0' (already used by faults[0])",
        ),
        (
            "  links:\n",
            "  links:\n    - {between: [eu-north, eu-west], capacity: 1Gbps}\n",
            "t.yaml:16:17: topology.links[1].between: 'eu-west' and 'eu-north' are already linked by "
            "topology.links[0]",
        ),
        (
            "between: [eu-west, eu-north]",
            "between: [eu-west, eu-west]",
            "t.yaml:15:17: topology.links[0].between: a link joins two different datacenters (got 'eu-west' "
            "twice)",
        ),
        (
            "{datacenter: eu-north}]",
            "{datacenter: eu-west}]",
            "t.yaml:19:55: topology.databases[0].placement[1].datacenter: datacenter 'eu-west' listed twice",
        ),
        (
            "placement: [{datacenter: eu-west},",
            "placement: [{datacenter: eu-west, copies: 5},",
            "t.yaml:19:49: topology.databases[0].placement[0].copies: 5 copies do not fit on the 4 servers "
            "of "
            "'eu-west' (at most one copy of a database per server)",
        ),
    ],
)
def test_ids_and_layout(old, new, expected):
    found = problems(edit((old, new)))
    assert any(p.startswith(expected) for p in found), found


def test_shares_must_sum_to_100_percent():
    assert only_problem(edit(("{share: 20%}", "{share: 30%}"))) == (
        "t.yaml:24:5: workload.requests: request shares add up to 110% (expected 100%)"
    )


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        (
            "    at: 10m\n    mtbf: 1h\n    mttr: 5m\n",
            "faults[0]: two kinds of timing (got at, mtbf, mttr; expected either at (+ duration) or mtbf + "
            "mttr)",
        ),
        ("", "faults[0]: no start time (got none; expected at (+ duration) or mtbf + mttr)"),
        (
            "    duration: 5m\n",
            "faults[0]: no start time (got only duration; expected at (+ duration) or mtbf + mttr)",
        ),
        (
            "    mtbf: 1h\n",
            "faults[0]: a random fault needs both mtbf and mttr, each more than 0 (got mtbf 3600s, "
            "mttr missing)",
        ),
        (
            "    mtbf: 0s\n    mttr: 1m\n",
            "faults[0]: a random fault needs both mtbf and mttr, each more than 0",
        ),
        ("    mtbf: 1h\n    mttr: 1m\n    duration: 5m\n", "faults[0]: duration goes with at"),
    ],
)
def test_fault_timing(timing, expected):
    message = only_problem(edit(("    at: 10m\n    duration: 5m\n", timing)))
    assert message.startswith("t.yaml:27:5: " + expected)


def test_fault_mode_errors():
    assert only_problem(
        edit(("target: {ids: [mbx-we-01]}", "target: {ids: [mbx-we-01], mode: {count: 0}}"))
    ) == (
        "t.yaml:28:38: faults[0].target.mode: not a mode (got {count: 0}, expected all, one, {count: N} with "
        "N ≥ 1, or {percent: P%})"
    )
    assert "got 'some'" in only_problem(edit(("target: {ids: [mbx-we-01]}", "target: {mode: some}")))


def test_union_errors_are_folded_with_a_suggestion():
    assert only_problem(edit(("{peak: 50/s}", "{peak: 50/s, profile: flatt}"))) == (
        "t.yaml:22:35: workload.regions.europe.profile: not a valid value (got 'flatt', expected one of "
        "'flat', "
        "'diurnal', 'monday_morning' or a list; did you mean 'flat'?)"
    )


def test_union_errors_in_a_list_point_at_the_item():
    assert only_problem(edit(("{peak: 50/s}", "{peak: 50/s, profile: [[0s, 1], [12h, x]]}"))) == (
        "t.yaml:22:51: workload.regions.europe.profile[1][1]: not a number (got 'x', expected a number)"
    )
    assert only_problem(edit(("{peak: 50/s}", "{peak: 50/s, profile: []}"))) == (
        "t.yaml:22:35: workload.regions.europe.profile: too few items (got 0, expected at least 1)"
    )


def test_keys_that_yaml_reads_as_numbers_or_booleans():
    found = problems(
        edit(("    read: {share: 80%}", "    1: {share: 80%}"), ("    europe: {peak", "    no: {peak"))
    )
    assert (
        "t.yaml:22:5: workload.regions.no: not a name (got false, expected a string; YAML reads "
        "yes/no/on/off "
        "as true/false: put the name in quotes)" in found
    )
    assert (
        "t.yaml:24:5: workload.requests.1: not a name (got 1, expected a string; put quotes around a name "
        "made of digits)" in found
    )


def test_every_problem_in_a_file_is_reported_in_file_order():
    text = edit(
        ("duration: 1h", "duration: soon"),
        ("{id: mbx-we, count: 4, workers: 8,", "{id: mbx-we, count: 4, worker: 8,"),
        ("count: 8", "count: -8"),
        ("{share: 20%}", "{share: 20%, weight: 2}"),
    )
    found = problems(text)
    assert [p.split(": ")[0] + ": " + p.split(": ")[1] for p in found] == [
        "t.yaml:2:11: duration",
        "t.yaml:10:34: topology.datacenters[0].servers[0].worker",
        "t.yaml:18:14: topology.databases[0].count",
        "t.yaml:25:24: workload.requests.send.weight",
    ]


def test_references_are_checked_alongside_other_problems():
    # The unknown field and the bad mode are taken out, the rest is checked for references.
    text = edit(
        ("{id: mbx-we, count: 4, workers: 8,", "{id: mbx-we, count: 4, worker: 8,"),
        ("datacenters: [eu-north]", "datacenters: [eu-wset]"),
        ("target: {ids: [mbx-we-01]}", "target: {ids: [mbx-we-01], mode: some}"),
        ("{share: 20%}", "{share: 20%, weight: 1}"),
    )
    assert [p.split(": ")[1] for p in problems(text)] == [
        "topology.datacenters[0].servers[0].worker",
        "workload.requests.send.weight",
        "faults[0].target.mode",
        "faults[1].target.datacenters[0]",
    ]


def test_references_wait_for_a_sound_structure():
    # A datacenter whose server count is not a number cannot be taken out without changing the
    # positions of the others, so references are checked once it is fixed.
    text = edit(
        ("{id: mbx-we, count: 4,", "{id: mbx-we, count: four,"),
        ("datacenters: [eu-north]", "datacenters: [eu-wset]"),
    )
    assert [p.split(": ")[1] for p in problems(text)] == ["topology.datacenters[0].servers[0].count"]
    # Nor is a list of things that others refer to by name.
    text = edit(
        ("  databases:\n", "  dependencies: [{id: directory}]\n  databases:\n"),
        ("datacenters: [eu-north]", "datacenters: [eu-wset]"),
    )
    assert [p.split(": ")[1] for p in problems(text)] == ["topology.dependencies[0]"]
    # Nor is anything under limits, or the sizes would be judged against other limits than the file's.
    text = edit(
        ("duration: 1h", "duration: 1h\nlimits: {max_servers: lots}"),
        ("datacenters: [eu-north]", "datacenters: [eu-wset]"),
    )
    assert [p.split(": ")[1] for p in problems(text)] == ["limits.max_servers"]


def test_references_are_all_reported_together():
    text = edit(
        ("{eu-west: 10ms,", "{eu-wset: 10ms,"),
        ("target: {ids: [mbx-we-01]}", "target: {ids: [mbx-we-1]}"),
        ("datacenters: [eu-north]", "datacenters: [eu-nord]"),
    )
    found = problems(text)
    assert [p.split(": ")[1] for p in found] == [
        "topology.regions[0].datacenters.eu-wset",
        "faults[0].target.ids[0]",
        "faults[1].target.datacenters[0]",
    ]


def test_duplicate_keys_are_reported_with_validation_errors():
    found = problems(edit(("duration: 1h\n", "duration: 1h\nname: again\n"), ("count: 8", "count: x")))
    assert [p.split(": ")[1] for p in found] == ["name", "topology.databases[0].count"]


def test_problem_formatting():
    problem = Problem("monday.yaml", 41, 9, "faults[2].target.datacenters[0]", "no datacenter 'eu-wset'")
    assert str(problem) == "monday.yaml:41:9: faults[2].target.datacenters[0]: no datacenter 'eu-wset'"
    assert str(Problem("a.yaml", 1, 1, "", "the file is empty")) == "a.yaml:1:1: the file is empty"
    assert format_path(("topology", "regions", 0, "datacenters", "eu.west")) == (
        "topology.regions[0].datacenters['eu.west']"
    )
    error = ScenarioError([Problem("a", 2, 1, "", "second"), Problem("a", 1, 5, "", "first")])
    assert str(error) == "a:1:5: first\na:2:1: second"


# ----------------------------------------------------------------------------------- safe and bounded


def test_python_object_tag_is_refused():
    text = edit(("duration: 1h", "duration: !!python/object/apply:os.system ['echo hacked']"))
    assert only_problem(text) == (
        "t.yaml:2:11: duration: tag !!python/object/apply:os.system is not allowed (scenarios hold plain "
        "data: "
        "mappings, lists, strings, numbers, true/false and null)"
    )


@pytest.mark.parametrize("tag", ["!!python/name:os.system", "!custom", "!!set", "!!binary"])
def test_other_tags_are_refused(tag):
    assert f"tag {tag} is not allowed" in only_problem(edit(("name: demo", f"name: {tag} x")))


def test_explicit_core_tag_that_does_not_fit():
    assert only_problem(edit(("duration: 1h", "duration: 1h\nseed: !!int abc"))) == (
        "t.yaml:3:7: not a valid !!int (got 'abc')"
    )


def test_billion_laughs_fails_fast():
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    message = only_problem("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 1.0
    assert message == (
        f"t.yaml:1:1: too many YAML nodes once aliases are expanded (more than {MAX_NODES:,}, "
        "or an alias used inside itself)"
    )


def test_too_many_nodes_fails_before_building_the_tree():
    text = BASE + "padding:\n" + "".join(f"  - [{i}, {i}, {i}]\n" for i in range(MAX_NODES // 4 + 10))
    start = time.perf_counter()
    message = only_problem(text)
    assert time.perf_counter() - start < 1.0
    assert f"too many YAML nodes (more than {MAX_NODES:,})" in message


def test_deep_nesting_fails_fast():
    depth = 100_000  # enough to crash a recursive parser
    start = time.perf_counter()
    message = only_problem("a: " + "[" * depth + "]" * depth + "\n")
    assert time.perf_counter() - start < 1.0
    # Our own streaming check says so at level 50; a libyaml with its own depth limit (PyYAML 6.0.4's
    # bundled one stops at 1000 while scanning ahead) may say so first. Either way: line 1, no crash.
    assert message in (
        f"t.yaml:1:{MAX_DEPTH + 3}: nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)",
        "t.yaml:1:1003: invalid YAML: exceeded maximum nesting depth (while increasing flow level at line 1, "
        "column 1003)",
    ), message


def test_file_too_large(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "#" * MAX_FILE_BYTES)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == (
        f"{path}:1:1: file too large (got {path.stat().st_size:,} bytes, expected at most {MAX_FILE_BYTES:,})"
    )
    assert "file too large" in only_problem(BASE + "#" * MAX_FILE_BYTES)


def test_unreadable_files(tmp_path):
    with pytest.raises(ScenarioError, match=r"missing\.yaml:1:1: cannot read the file: No such file"):
        load_scenario(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "t.yaml:1:1: the file is empty; expected a mapping of scenario fields"),
        ("# just a comment\n", "t.yaml:1:1: the file is empty; expected a mapping of scenario fields"),
        ("- a\n- b\n", "t.yaml:1:1: expected a mapping of scenario fields (got a list)"),
        ("hello\n", "t.yaml:1:1: expected a mapping of scenario fields (got 'hello')"),
        ("a: 1\n---\nb: 2\n", "t.yaml:2:1: invalid YAML: but found another document"),
        ("? [a, b]\n: 1\n", "t.yaml:1:3: a key must be a name (got a list as a key)"),
        (
            "name: x\nb: caf\u00e9\x07\n",
            "t.yaml:2:8: invalid YAML: character #x0007 is not allowed in a YAML file",
        ),
        ("a: \ud800\n", "t.yaml:1:4: invalid YAML: character #xd800 is not allowed in a YAML file"),
        (
            "&a [*a]\n",
            "t.yaml:1:1: too many YAML nodes once aliases are expanded (more than 50,000, or an alias",
        ),
    ],
)
def test_not_a_scenario(text, expected):
    assert only_problem(text).startswith(expected)


def test_huge_topology_fails_fast_without_allocating():
    text = edit(("{id: mbx-we, count: 4,", "{id: mbx-we, count: 100000000,"))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        message = only_problem(text)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024
    assert message == (
        "t.yaml:8:5: topology.datacenters: too many servers for one run (got 100,000,004, expected at most "
        "limits.max_servers = 200,000)"
    )


def test_huge_fault_target_checks_ids_without_listing_them():
    text = edit(
        ("{id: mbx-we, count: 4,", "{id: mbx-we, count: 150000,"),
        ("target: {ids: [mbx-we-01]}", "target: {ids: [mbx-we-149999, mbx-we-150001, mbx-ew-01]}"),
    )
    start = time.perf_counter()
    found = problems(text)
    assert time.perf_counter() - start < 1.0
    assert [p.split(": ", 2)[1:] for p in found] == [
        [
            "faults[0].target.ids[1]",
            "no server 'mbx-we-150001' (group 'mbx-we' has mbx-we-01 to mbx-we-150000)",
        ],
        [
            "faults[0].target.ids[2]",
            "no server 'mbx-ew-01' (did you mean a server of group 'mbx-we'?); server ids "
            "are <group>-01, <group>-02, ... for groups: mbx-we, mbx-no",
        ],
    ]


def test_too_many_databases_and_requests():
    text = edit(
        ("count: 8", "count: 3000000"), ("{peak: 50/s}", "{peak: 50k/s}"), ("duration: 1h", "duration: 1y")
    )
    start = time.perf_counter()
    found = problems(text)
    assert time.perf_counter() - start < 1.0
    assert found == [
        "t.yaml:17:5: topology.databases: too many databases for one run (got 3,000,000, expected at most "
        "limits.max_databases = 2,000,000)",
        "t.yaml:21:3: workload: too many requests to simulate in memory (got about 4.73e+12 tries: 1.58e+12 "
        "user requests over 365d, each tried up to 3 times; expected at most limits.max_requests = 5e+07); "
        "use engine: flow, shorten duration or lower the peak",
    ]


def test_limits_can_be_raised_or_lowered_by_the_scenario():
    text = edit(("duration: 1h", "duration: 1h\nlimits: {max_servers: 7}"))
    assert "too many servers for one run (got 8, expected at most limits.max_servers = 7)" in only_problem(
        text
    )
    big = edit(
        ("count: 8", "count: 3000000"), ("duration: 1h", "duration: 1h\nlimits: {max_databases: 5000000}")
    )
    assert parse_scenario(big).topology.databases[0].count == 3_000_000


def test_shipped_scenarios_load_and_their_stored_form_reads_back_the_same():
    """Every shipped scenario (subfolders too); what a report stores (scenario.json) is the same model."""
    from tests.shipped import SHIPPED

    assert len(SHIPPED) >= 15
    for path in SHIPPED:
        scenario = load_scenario(path)
        assert Scenario.model_validate_json(scenario.model_dump_json()) == scenario, path


# ---------------------------------------------------------------------------------------- properties

ID_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ids = st.text(alphabet=ID_FIRST + "_.:-", min_size=1, max_size=10).filter(lambda s: s[0] in ID_FIRST)


def _distinct(draw: Any, n: int, used: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        name = draw(ids)
        if name not in used and not any(name.startswith(u + "-") for u in used):
            used.add(name)
            out.append(name)
    return out


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    """A small valid scenario as YAML data, with units written in random but valid ways."""
    used: set[str] = set()
    n_dc = draw(st.integers(1, 3))
    dcs = _distinct(draw, n_dc, used)
    regions = _distinct(draw, draw(st.integers(1, 2)), used)
    groups = _distinct(draw, n_dc, used)
    duration = draw(st.sampled_from(["30m", "1h", "2h", 7200, "90m", "1h30m"]))
    latency = st.sampled_from(["5ms", "10ms", 0.02, "1.5ms", "100us"])
    datacenters = []
    counts = {}
    for dc, group in zip(dcs, groups, strict=True):
        count = draw(st.integers(1, 5))
        counts[dc] = count
        datacenters.append(
            {
                "id": dc,
                "servers": [
                    {
                        "id": group,
                        "count": count,
                        "workers": draw(st.integers(1, 16)),
                        "service_time": draw(
                            st.sampled_from(
                                ["20ms", 0.05, {"distribution": "lognormal", "mean": "30ms", "cv": 0.5}]
                            )
                        ),
                    }
                ],
                "labels": draw(
                    st.dictionaries(st.sampled_from(["zone", "tier"]), st.sampled_from(["a", "b"]))
                ),
            }
        )
    data: dict[str, Any] = {
        "name": draw(ids),
        "seed": draw(st.integers(0, 2**32)),
        "duration": duration,
        "topology": {
            "regions": [
                {
                    "id": r,
                    "users": draw(st.integers(0, 10**6)),
                    "datacenters": {d: draw(latency) for d in dcs},
                }
                for r in regions
            ],
            "datacenters": datacenters,
        },
        "workload": {
            "regions": {r: {"peak": draw(st.sampled_from(["10/s", "600/min", 5, "1k/h"]))} for r in regions},
            "requests": draw(
                st.sampled_from(
                    [
                        {"read": {"share": "100%"}},
                        {"read": {"share": "75%"}, "send": {"share": 0.25, "work": 2}},
                    ]
                )
            ),
        },
    }
    if n_dc > 1:
        data["topology"]["links"] = [
            {
                "between": [dcs[0], dcs[1]],
                "capacity": draw(st.sampled_from(["10Gbps", "400Mbps", 1e9, "1GB/s"])),
            }
        ]
    db_dc = draw(st.sampled_from(dcs))
    data["topology"]["databases"] = [
        {
            "id": _distinct(draw, 1, used)[0],
            "count": draw(st.integers(1, 20)),
            "placement": [{"datacenter": db_dc, "copies": draw(st.integers(1, counts[db_dc]))}],
        }
    ]
    mode = draw(st.sampled_from(["all", "one", {"count": 2}, {"percent": "50%"}]))
    timing = draw(
        st.sampled_from([{"at": "10m", "duration": "5m"}, {"at": 60}, {"mtbf": "1h", "mttr": "5m"}])
    )
    data["faults"] = [{"kind": "server_crash", "target": {"datacenters": [dcs[0]], "mode": mode}, **timing}]
    return data


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(scenarios())
def test_generated_scenarios_load_and_round_trip(data):
    scenario = parse_scenario(yaml.safe_dump(data, sort_keys=False), "gen.yaml")
    dumped = yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
    again = parse_scenario(dumped, "dumped.yaml")
    assert again == scenario
    assert scenario_hash(again) == scenario_hash(scenario)


def _paths(data: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*path, i))
    return out


def _mutate(data: Any, path: tuple, action: str, junk: Any) -> Any:
    if not path:
        return junk if action == "replace" else data
    *parents, last = path
    target = data
    for part in parents:
        target = target[part]
    if action == "delete" and isinstance(target, dict):
        del target[last]
    elif action == "insert" and isinstance(target, dict):
        target[f"{last}x"] = junk
    elif action == "insert" and isinstance(target, list):
        target.insert(last, junk)
    elif action == "delete" and isinstance(target, list):
        del target[last]
    else:
        target[last] = junk
    return data


junk_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(scenarios(), st.data(), st.sampled_from(["delete", "insert", "replace"]), junk_values)
def test_mutations_raise_only_scenario_errors_with_locations(data, pick, action, junk):
    path = pick.draw(st.sampled_from(_paths(data)))
    mutated = _mutate(data, path, action, junk)
    text = yaml.safe_dump(mutated, sort_keys=False)
    try:
        parse_scenario(text, "m.yaml")
    except ScenarioError as exc:
        lines = text.count("\n") + 1
        assert exc.problems
        for problem in exc.problems:
            assert 1 <= problem.line <= lines and problem.column >= 1, problem
            assert problem.message and "Traceback" not in problem.message


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, len(BASE)),
    st.integers(0, 30),
    st.text(alphabet="ab:-[]{}&*!%,#'\" \n\t01|>?", max_size=6),
)
def test_text_edits_raise_only_scenario_errors_with_locations(position, length, inserted):
    text = BASE[:position] + inserted + BASE[position + length :]
    try:
        parse_scenario(text, "e.yaml")
    except ScenarioError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.column >= 1, problem


def test_command_line_prints_problems_without_a_traceback(tmp_path):
    from click.testing import CliRunner

    import sim.cli as cli

    path = tmp_path / "monday.yaml"
    path.write_text(
        edit(("datacenters: [eu-north]", "datacenters: [eu-wset]"), ("{share: 20%}", "{share: 30%}"))
    )
    result = CliRunner().invoke(cli.cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.splitlines() == [
        f"{path}:24:5: workload.requests: request shares add up to 110% (expected 100%)",
        f"{path}:33:21: faults[1].target.datacenters[0]: no datacenter 'eu-wset' (did you mean 'eu-west'?); "
        "known: eu-north, eu-west",
    ]
    path.write_text(
        edit(("datacenters: [eu-north]", "datacenters: [eu-wset]"), ("{eu-west: 10ms,", "{eu-wst: 10ms,"))
    )
    result = CliRunner().invoke(cli.cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{path}:6:21: topology.regions[0].datacenters.eu-wst: no datacenter 'eu-wst' (did you mean "
        "'eu-west'?); "
        "known: eu-north, eu-west",
        f"{path}:33:21: faults[1].target.datacenters[0]: no datacenter 'eu-wset' (did you mean 'eu-west'?); "
        "known: eu-north, eu-west",
    ]
