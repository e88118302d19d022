"""One direction of flow (issue 15): zoo -> cost -> {crosscheck, verify, onnx_graph} -> profiling -> report
-> bench -> commands -> cli. No module imports a package downstream of its own, and nothing outside the
commands imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "archcost"
#: package -> its layer; a module may import its own layer and any lower one. units, errors, files and
#: tables are neutral helpers every layer uses.
LAYER = {
    "units": 0, "errors": 0, "files": 0, "tables": 0, "_lazy": 0,
    "zoo": 1, "models": 1,
    "cost": 2,
    "crosscheck": 3, "verify": 3, "onnx_graph": 3,
    "profiling": 4,
    "predict": 4.5,  # predicted latency: reads cost rows and the profiling timer; report and commands show it
    "report": 5,
    "bench": 6, "testing": 6,
    "commands": 7,
    "cli": 8,
}  # fmt: skip
#: known exceptions, each with its reason
ALLOWED: set[tuple[str, str]] = set()


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archcost."):
            found.append(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found += [a.name.split(".")[1] for a in node.names if a.name.startswith("archcost.")]
    return found


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


MODULES = [p for p in sorted(ROOT.rglob("*.py")) if p != ROOT / "__init__.py"]  # the root: the lazy public API


def test_every_package_has_a_layer():
    assert {_package(p) for p in MODULES} <= set(LAYER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_goes_upstream(path):
    src = _package(path)
    for dst in _imports(path):
        assert dst in LAYER, f"{path}: unknown package archcost.{dst}: place it in LAYER"
        if (src, dst) in ALLOWED:
            continue
        assert LAYER[dst] <= LAYER[src], f"{path} ({src}) imports archcost.{dst}, which is downstream of it"


def _module(path: Path) -> str:
    parts = ["archcost", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_graph() -> dict[str, set[str]]:
    """archcost module -> the archcost modules it imports, late (in-function) imports included and
    ``if TYPE_CHECKING:`` blocks left out. A module's own ancestor packages are not edges: Python imports a
    package before any module in it, so a module naming its package (``zoo._registry`` filling the zoo by
    importing ``archcost.zoo``) adds no cycle."""
    paths = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for stmt in node.body
            for n in ast.walk(stmt)
        }
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                while target not in paths and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in paths and target != name and not name.startswith(target + "."):
                    found.add(target)
        graph[name] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


#: cycles not yet taken apart (issue 29): this list may only shrink. A cycle not listed fails, and so does a
#: listed one that is gone (take it off the list).
KNOWN_CYCLES: set[frozenset[str]] = set()


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset("abc")]


def test_no_import_cycle_between_modules():
    assert set(_cycles(_module_graph())) == KNOWN_CYCLES
