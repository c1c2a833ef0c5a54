"""The module graph holds its shape by imports, not by lazy-import tricks: no cycles outside the TUI,
and the services cleaned up for the unit of work import no SQL driver (their SQL is in storage/).

Imports are read from the source (every `import` statement, also inside functions), so an import
moved into a function to hide a cycle still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kanban_terminal"
SQL_DRIVERS = ("sqlite3", "sqlalchemy", "sqlmodel")
NO_SQL_SERVICES = (
    "catalog", "log_query", "lost_cards", "maintenance", "outbox", "queries", "relay", "relay_window",
    "scanning", "terminal", "auth", "log_integrity", "doctor", "health", "upstream_status",
    "andon", "andon_log", "andon_views", "escalation", "reports",
)  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(p) if m in modules and m != name} for name, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_outside_the_tui() -> None:
    # The TUI's App <-> screens cycle is issue 14 item 6 (attributes down, messages up).
    cycles = [c for c in _cycles(_graph()) if not all(m.startswith("kanban_terminal.tui") for m in c)]
    assert cycles == []


@pytest.mark.parametrize("name", NO_SQL_SERVICES)
def test_service_imports_no_sql_driver(name: str) -> None:
    imported = _imports(PACKAGE / "services" / f"{name}.py")
    drivers = sorted(m for m in imported if m.split(".")[0] in SQL_DRIVERS)
    assert drivers == [], f"services/{name}.py imports {drivers}: its SQL belongs in storage/"
