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
    "units": 0, "errors": 0, "files": 0, "tables": 0,
    "zoo": 1, "models": 1,
    "cost": 2,
    "crosscheck": 3, "verify": 3, "onnx_graph": 3,
    "profiling": 4,
    "report": 5,
    "bench": 6, "testing": 6,
    "commands": 7,
    "cli": 8,
}  # fmt: skip
#: known exceptions, each with its reason
ALLOWED = {
    # CostReport.__str__ / _repr_html_ render through report.table on demand (notebooks): a late import
    ("cost", "report"),
}


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
