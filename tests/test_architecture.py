"""The package's structure: no import circle, and no module calls another through argv strings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import chromoformer

SRC = Path(chromoformer.__file__).parent


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> chromoformer modules it imports anywhere (top level or inside functions)."""
    mods = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            graph[m] |= {n for n in names if n in mods and n != m and not m.startswith(n + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_import_graph_has_no_circle():
    graph = import_graph()
    assert "chromoformer.train" in graph["chromoformer.compare"]  # the graph sees real edges
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_nothing_imports_the_command_line():
    graph = import_graph()
    assert [m for m, deps in graph.items() if "chromoformer.cli" in deps] == []


def test_no_module_calls_another_through_argv():
    """Library code calls functions with keywords; it never builds argument lists for our own parsers or
    runs our own command in a subprocess (the Snakefile, an adapter, is the one place commands are spelled)."""
    bad = re.compile(r"build_parser\(\)\.parse_args\(|\[\s*\"chromoformer\"\s*,|parse_args\(\s*\[")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert hits == []


def test_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
