"""The import graph of ``sim/``: no cycles, and no module reaches into another's private names.

The graph is read from the source with :mod:`ast`, so a lazy import inside a function counts as much as
one at the top: hiding an import in a function does not remove the dependency, it only hides the cycle.
Imports under ``if TYPE_CHECKING:`` are left out (they never run). ``import sim.x`` and
``from sim import x`` (``x`` a module) are edges to ``sim.x``; ``from sim import name`` (not a module) is
an edge to the package ``sim`` itself, whose ``__init__`` defines or re-exports the name.

Run it as a script to print the graph's cycles and private imports: ``python tests/test_imports.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sim"


@dataclass(frozen=True)
class Import:
    """One import statement's target, as seen from the module that runs it."""

    source: str  # the importing module, e.g. "sim.faults"
    target: str  # the module imported from, e.g. "sim.rollout"
    name: str | None  # the name taken from it (None for "import x" or when the name is a module)
    where: str  # "sim/faults.py:42"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sim_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree, at any depth, except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(modules: dict[str, Path]) -> list[Import]:
    """The imports between modules of ``sim`` (imports of other packages are left out)."""
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(ROOT).as_posix()
        for node in _import_nodes(tree):
            where = f"{rel}:{node.lineno}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        found.append(Import(module, alias.name, None, where))
                continue
            origin = _absolute(node, module, path.name == "__init__.py")
            if origin not in modules:
                continue
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                if submodule in modules:
                    found.append(Import(module, submodule, None, where))
                else:
                    found.append(Import(module, origin, alias.name, where))
    return found


def import_graph(found: list[Import]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for imp in found:
        if imp.source != imp.target:
            graph.add_edge(imp.source, imp.target, where=imp.where)
    return graph


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """One shortest cycle per strongly connected component of more than one module (largest first)."""
    found = []
    components = sorted((c for c in nx.strongly_connected_components(graph) if len(c) > 1), key=len, reverse=True)
    for component in components:
        sub = graph.subgraph(component)
        best: list[str] | None = None
        for start in sorted(component):
            for pred in sub.predecessors(start):
                path = nx.shortest_path(sub, start, pred)
                if best is None or len(path) < len(best):
                    best = path
        assert best is not None
        found.append((sorted(component), best))
    return found


def describe(graph: nx.DiGraph, component: list[str], cycle: list[str]) -> str:
    pairs = zip(cycle, cycle[1:] + cycle[:1], strict=True)
    steps = [f"    {a} -> {b}  ({graph.edges[a, b]['where']})" for a, b in pairs]
    return f"  {len(component)} modules: {', '.join(component)}\n  for example:\n" + "\n".join(steps)


def private_imports(found: list[Import]) -> list[Import]:
    """Names with a leading underscore (dunders too) taken from another module of ``sim``."""
    return [imp for imp in found if imp.name is not None and imp.name.startswith("_") and imp.source != imp.target]


def test_the_graph_sees_lazy_imports_and_skips_type_checking():
    tree = ast.parse(
        "import sim.a\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sim.b import B\nelse:\n    from sim.c import C\n"
        "def f():\n    from sim import d, name\n    from . import e\n"
    )
    names = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.ImportFrom):
            names.append((_absolute(node, "sim.x", False), [a.name for a in node.names]))
        else:
            names.append(([a.name for a in node.names], None))
    assert ("sim.b", ["B"]) not in names
    assert ("sim.c", ["C"]) in names and ("sim", ["d", "name"]) in names and ("sim", ["e"]) in names
    assert (["sim.a"], None) in names


def test_the_graph_covers_every_module():
    modules = sim_modules()
    graph = import_graph(imports(modules))
    assert {"sim", "sim.scenario", "sim.faults", "sim.cli", "sim.report", "sim.experiments.sweep"} <= set(modules)
    assert graph.has_edge("sim.run", "sim.cluster")  # a sanity check: the test could fail


def test_no_import_cycles_in_sim():
    graph = import_graph(imports(sim_modules()))
    found = cycles(graph)
    report = "\n".join(describe(graph, component, cycle) for component, cycle in found)
    if found:
        print(f"{len(found)} import cycle(s) in sim/:\n{report}")
    assert not found, f"{len(found)} import cycle(s) in sim/:\n{report}"


def test_no_module_imports_another_modules_private_names():
    bad = private_imports(imports(sim_modules()))
    lines = [f"  {imp.where}: {imp.source} imports {imp.name} from {imp.target}" for imp in bad]
    if bad:
        print("private names imported across modules:\n" + "\n".join(lines))
    assert not bad, "private names imported across modules:\n" + "\n".join(lines)


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_scenario_models_import_nothing_a_run_is_made_of():
    """The models are data: what a run builds from them (cluster, engines, policies...) comes after."""
    graph = import_graph(imports(sim_modules()))
    later = ("sim.cluster", "sim.control", "sim.network", "sim.workload", "sim.topology", "sim.policies",
             "sim.engine", "sim.metrics", "sim.run", "sim.loader", "sim.validate", "sim.report", "sim.experiments")
    reached = sorted(m for m in nx.descendants(graph, "sim.scenario") if _under(m, later))
    assert not reached, f"sim.scenario imports, directly or not: {', '.join(reached)}"


def test_the_model_never_imports_the_presentation():
    graph = import_graph(imports(sim_modules()))
    presentation = ("sim.report", "sim.experiments", "sim.cli")
    for model in ("sim.run", "sim.result"):
        reached = sorted(m for m in nx.descendants(graph, model) if _under(m, presentation))
        assert not reached, f"{model} imports, directly or not: {', '.join(reached)}"


if __name__ == "__main__":
    _graph = import_graph(imports(sim_modules()))
    for _component, _cycle in cycles(_graph):
        print(describe(_graph, _component, _cycle))
    for _imp in private_imports(imports(sim_modules())):
        print(f"{_imp.where}: {_imp.source} imports {_imp.name} from {_imp.target}")
