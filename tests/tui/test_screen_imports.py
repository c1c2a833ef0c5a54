"""Attributes down, messages up (issue 14): screens and widgets never import the App back.

Read from the source with `ast`, so an import inside a function or under TYPE_CHECKING counts too:
those were how the 8-module cycle through tui/app.py hid from the import system.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kanban_terminal

PACKAGE = Path(kanban_terminal.__file__).parent
APP_MODULES = {"kanban_terminal.tui.app", "kanban_terminal.tui.andon_app"}


def imports_in(source: str, package: str) -> set[str]:
    """Every module `source` imports, relative imports resolved against `package` (its package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imported_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    return imports_in(path.read_text(encoding="utf-8"), package)


def test_the_check_sees_imports_hidden_in_functions_and_relative_ones() -> None:
    screens = "kanban_terminal.tui.screens"
    hidden = "def f():\n    if TYPE_CHECKING:\n        from kanban_terminal.tui.app import KanbanApp\n"
    assert "kanban_terminal.tui.app" in imports_in(hidden, screens)
    assert "kanban_terminal.tui.app" in imports_in("from ..app import KanbanApp\n", screens)
    assert "kanban_terminal.tui.app" in imports_in("from .. import app\n", screens)
    assert "kanban_terminal.tui.app" in imports_in("import kanban_terminal.tui.app\n", screens)


def test_no_screen_or_widget_imports_the_app() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(imported_modules(path) & APP_MODULES)
        for folder in ("screens", "widgets")
        for path in sorted((PACKAGE / "tui" / folder).glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_product_never_imports_the_bench_tools() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if any(m == "bench" or m.startswith("bench.") for m in imported_modules(path))
    ]
    assert offenders == []
