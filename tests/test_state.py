"""Every session key of the app is declared once, in ui/state.py: no page or helper writes one as a literal."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ui import state

ROOT = Path(__file__).resolve().parents[1]
APP_FILES = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])
KEYED_CALLS = {"per_run", "refreshed_every", "cached_for_run"}  # ui.state's per-run caches take a key first


def literal_keys(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal used as a session-state key or a widget key in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        candidates = []
        if isinstance(node, ast.Subscript) and _is_session_state(node.value):
            candidates.append(node.slice)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if isinstance(func, ast.Attribute) and _is_session_state(func.value) and node.args:
                candidates.append(node.args[0])  # session_state.get("x"), .setdefault("x", ...), .pop("x")
            if name in KEYED_CALLS and node.args:
                candidates.append(node.args[0])
            candidates += [keyword.value for keyword in node.keywords if keyword.arg == "key"]
        for candidate in candidates:
            if isinstance(candidate, (ast.Constant, ast.JoinedStr)) and not (
                    isinstance(candidate, ast.Constant) and not isinstance(candidate.value, str)):
                found.append((node.lineno, ast.unparse(candidate)))
    return found


def _is_session_state(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "session_state"


@pytest.mark.parametrize("path", [p for p in APP_FILES if p.name != "state.py"], ids=lambda p: p.name)
def test_no_session_key_is_written_as_a_literal(path):
    assert literal_keys(path) == [], f"declare these keys in ui/state.py: {literal_keys(path)}"


def test_the_scan_finds_literal_keys(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.session_state["a"] = 1\nst.button("b", key=f"x_{1}")\n'
                    'st.session_state.get("c")\nstate.per_run("d", 1, list)\nst.button("e", key=KEY)\n')
    assert [text for _, text in literal_keys(page)] == ["'a'", "f'x_{1}'", "'c'", "'d'"]


def test_no_two_pages_share_a_key():
    keys = []
    for namespace in (state.DataPage, state.ArchitecturePage, state.TrainingPage, state.EvaluationPage,
                      state.DrawPage, state.InsidePage, state.RunsPage, state.SweepsPage):
        for name, value in vars(namespace).items():
            if isinstance(value, str) and not name.startswith("_"):
                keys.append(value)
            elif isinstance(value, state.CanvasKeys):
                keys += list(vars(value).values())
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
