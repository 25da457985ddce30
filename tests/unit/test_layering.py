"""Packages must not import each other (docs/ARCHITECTURE.md, "Where new code goes", rule 4).

A package is a folder directly under the ``hyperrec`` import root, or a top-level module;
``hyperrec.serving``, ``hyperrec.pipelines`` and ``hyperrec.components`` live in the repository's top-level
folders and are found through pyproject's ``package-dir``. Every ``import`` counts, including those inside
functions: a lazy import only hides a cycle from the interpreter, not from the reader.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = "hyperrec"

#: The one cycle through more than two packages that is left: ``hyperrec.config`` assembles the settings
#: sections of deploy, evaluation, experiments, modeling, monitoring and online, while data, models, privacy,
#: registry, tracking and the packages' CLI options still read the whole config. It may shrink, never grow.
KNOWN_LONG_CYCLE = frozenset({
    "cli_options", "config", "data", "deploy", "evaluation", "experiments", "export", "modeling", "models",
    "monitoring", "online", "privacy", "registry", "tracking",
})


def _package_folders() -> dict[str, Path]:
    """``{subpackage of hyperrec mapped elsewhere: folder}`` plus the import root itself under ``""``."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {"": REPO / setuptools["package-dir"][ROOT]}
    for name, folder in setuptools["package-dir"].items():
        if name.startswith(f"{ROOT}.") and name.count(".") == 1:
            folders[name.split(".")[1]] = REPO / folder
    return folders


def _imported_modules(path: Path, module: list[str]) -> Iterator[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against ``module``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif isinstance(node, ast.ImportFrom):
            base = module[: len(module) - node.level]  # module ends in "__init__" for a package's own file
            yield ".".join(base + ([node.module] if node.module else []))


def package_imports() -> dict[str, dict[str, list[str]]]:
    """``{package: {imported package: [file:line of one import, ...]}}`` over the whole import root."""
    edges: dict[str, dict[str, list[str]]] = {}
    for mapped, folder in _package_folders().items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            module = [ROOT, *([mapped] if mapped else []), *parts]
            package = mapped or (parts[0] if len(parts) > 1 else parts[0])
            for name in _imported_modules(path, module):
                target = name.split(".")
                if target[0] == ROOT and len(target) > 1 and target[1] != package:
                    where = f"{path.relative_to(REPO)} imports {name}"
                    edges.setdefault(package, {}).setdefault(target[1], []).append(where)
    return edges


def strongly_connected(edges: dict[str, dict[str, list[str]]]) -> list[set[str]]:
    """The groups of packages that reach each other through imports (Tarjan), groups of one left out."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_the_scan_sees_the_adapters_and_the_core():
    edges = package_imports()
    assert {"serving", "pipelines", "components", "config", "data", "online"} <= set(edges)
    assert "steps" in edges["components"] and "monitoring" in edges["pipelines"]


def test_no_package_pair_imports_each_other():
    edges = package_imports()
    pairs = [
        f"{a} <-> {b}: {edges[a][b][0]}; {edges[b][a][0]}"
        for a in sorted(edges) for b in sorted(edges[a]) if a < b and a in edges.get(b, {})
    ]
    assert pairs == []


def test_no_package_joins_a_longer_cycle():
    groups = strongly_connected(package_imports())
    grown = [sorted(group) for group in groups if not group <= KNOWN_LONG_CYCLE]
    assert grown == [], "a package joined an import cycle; move the shared piece down a layer"


def test_the_cycle_check_finds_a_cycle_of_three():
    edges = {"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}
    assert strongly_connected(edges) == [{"a", "b", "c"}]
