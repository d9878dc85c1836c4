"""The event vocabulary is one table (sim/events.py): the recorders name its constants, the readers ask it.

That every kind a shipped scenario's run records is in the table is checked on the runs themselves in
``tests/test_scenarios.py`` (``test_every_recorded_kind_is_in_the_event_table``, which reuses its runs).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from sim import events
from sim.events import KINDS, EventKind, badge_css, categories, conditions, names, register
from sim.report import story, style
from sim.report.html import cascade as html_cascade
from sim.report.html import timeline, topology

ROOT = Path(__file__).resolve().parents[1]
# A fault kind's own module (sim/fault_*.py) registers its event kinds and exports their constants.
REGISTRARS = [events] + [importlib.import_module(f"sim.{p.stem}") for p in sorted((ROOT / "sim").glob("fault_*.py"))]
CONSTANTS = {n: getattr(m, n) for m in REGISTRARS for n in getattr(m, "__all__", ())
             if n.isupper() and n not in ("KINDS", "CATEGORY_COLORS", "TONES")}


def _kind_args(tree: ast.AST) -> list[ast.expr]:
    """The ``kind`` argument of every ``….record(time, kind, …)`` call in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"
                and len(node.args) >= 2):
            out.append(node.args[1])
    return out


def _leaves(expr: ast.expr) -> list[ast.expr]:
    if isinstance(expr, ast.IfExp):
        return _leaves(expr.body) + _leaves(expr.orelse)
    return [expr]


def test_every_constant_names_a_registered_kind():
    for name, value in CONSTANTS.items():
        assert value in KINDS, name
    assert set(CONSTANTS.values()) == set(KINDS)  # and every shipped kind has one


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "sim").rglob("*.py") if p.name != "events.py"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_events_are_recorded_with_the_tables_names(path: Path):
    """No string literal names a kind where an event is recorded: a constant of sim.events, or a local."""
    for arg in _kind_args(ast.parse(path.read_text())):
        for leaf in _leaves(arg):
            where = f"{path.relative_to(ROOT)}:{leaf.lineno}"
            literal = isinstance(leaf, ast.Constant) and isinstance(leaf.value, str)
            assert not literal, f"{where}: records a kind as a string"
            if isinstance(leaf, ast.Name) and leaf.id.isupper():
                assert leaf.id in CONSTANTS, f"{where}: {leaf.id} is not a kind"
    source = path.read_text()
    for kind in KINDS:  # a local 'kind = ...' picks between constants, never between strings
        assert f'kind = "{kind}"' not in source and f'else "{kind}"' not in source, (path, kind)


def test_the_readers_lists_are_gone():
    """The lists each reader kept are gone: they ask the table."""
    import sim.cascade
    import sim.metrics

    assert not hasattr(sim.cascade, "HARM")
    assert not hasattr(sim.metrics, "_REACTIONS")
    for name in ("SYMPTOMS", "FAILURES", "_REACTIONS", "_MITIGATIONS"):
        assert not hasattr(story, name), name
    assert not hasattr(html_cascade, "CATEGORIES") and not hasattr(html_cascade, "RECOVERY")
    assert not hasattr(topology, "CONDITIONS") and not hasattr(timeline, "MAJOR_KINDS")


def test_derived_views_match_the_table():
    assert names("harm") == {k.name for k in KINDS.values() if k.harm}
    assert names("symptom") <= set(KINDS)
    assert {"ejected", "failover", "traffic_shift"} == names("reaction")
    assert names("detects") == names("reaction") | {"alert"}
    assert conditions()["ejected"] == ("readmitted", 2)
    assert all(end in KINDS for end, _ in conditions().values())  # every condition ends with a known kind
    assert categories()["slo_breach"] == ("users affected", "#a40e26")
    assert badge_css() in style.CSS
    for kind in KINDS.values():
        if kind.tone:
            assert f"tr.k-{kind.name} .kind" in style.CSS


def test_a_table_change_reaches_the_readers(monkeypatch):
    """Registering a kind changes what the readers see, with no edit to them."""
    monkeypatch.setattr(events, "_KINDS", dict(events._KINDS))
    monkeypatch.setattr(events, "KINDS", events.MappingProxyType(events._KINDS))
    monkeypatch.setattr(events, "_cache", {})
    register(EventKind("lb_test_down", "a test kind", harm=True, symptom=True, category="failure", tone="bad",
                       ends="lb_test_up", severity=3, label="test down"))
    register(EventKind("lb_test_up", "a test kind ends", category="recovery"))
    assert "lb_test_down" in names("harm") and "lb_test_down" in names("symptom")
    assert conditions()["lb_test_down"] == ("lb_test_up", 3)
    assert categories()["lb_test_down"][0] == "failure"
    assert "tr.k-lb_test_down .kind" in badge_css()
    ev = [{"time": 1.0, "kind": "lb_test_down", "node": "dc"}, {"time": 5.0, "kind": "lb_test_up", "node": "dc"}]
    assert topology.node_states(ev, 10.0) == {"dc": [(1.0, 5.0, 3)]}


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="event kind 'ejected' is already registered"):
        register(EventKind("ejected", "again"))
    assert KINDS["ejected"].meaning == "health checks take a server out of rotation"


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({"category": "nope"}, "category 'nope' is not one of fault, failure"),
        ({"tone": "loud"}, "tone 'loud' is not one of bad, warn, good"),
        ({"ends": "x_up"}, "a condition has both an end kind and a severity"),
        ({"severity": 2}, "a condition has both an end kind and a severity"),
    ],
)
def test_a_bad_kind_is_refused_with_its_reason(how, message):
    with pytest.raises(ValueError, match=message):
        EventKind("x_down", "bad", **how)
    assert "x_down" not in KINDS


def test_names_refuses_an_unknown_flag():
    with pytest.raises(ValueError, match="'harmful' is not a flag of EventKind"):
        names("harmful")
