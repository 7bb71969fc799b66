"""The code's layout keeps its promises: core never imports Streamlit, no import circle in core, thin pages, and
every core module has its tests at the mirrored path under tests/core/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
CORE_TESTS = ROOT / "tests" / "core"
MAX_PAGE_LINES = 150


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (inside functions and TYPE_CHECKING blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            if node.module == "core":  # from core import limits
                found |= {f"core.{alias.name}" for alias in node.names}
    return found


def core_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in CORE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_core_never_imports_streamlit():
    offenders = {module_name(p): sorted(m for m in imports_of(p) if m.split(".")[0] == "streamlit")
                 for p in CORE.rglob("*.py")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_circle_between_core_modules():
    assert cycles(core_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_pages_stay_thin():
    long = {path.name: n for path in (ROOT / "pages").glob("*.py") if (n := len(path.read_text().splitlines()))
            > MAX_PAGE_LINES}
    assert long == {}, f"pages over {MAX_PAGE_LINES} lines: move their logic to core/ or ui/"


def mirrored_test_module(module: Path) -> Path:
    """core/data/archives.py -> tests/core/data/test_archives.py"""
    relative = module.relative_to(CORE)
    return CORE_TESTS / relative.parent / f"test_{relative.name}"


def test_every_core_module_has_its_test_module_at_the_mirrored_path():
    modules = sorted(p for p in CORE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    missing = [str(mirrored_test_module(p).relative_to(ROOT)) for p in modules if not mirrored_test_module(p).is_file()]
    assert modules and missing == [], f"core modules without a test module at the mirrored path: {missing}"


def test_every_test_module_under_tests_core_mirrors_a_core_module():
    stale = [str(p.relative_to(ROOT)) for p in sorted(CORE_TESTS.rglob("test_*.py"))
             if not (CORE / p.relative_to(CORE_TESTS).parent / p.name.removeprefix("test_")).is_file()]
    assert stale == [], f"test modules under tests/core/ with no core module at the mirrored path: {stale}"
