"""The shape of the code, checked: small modules, a domain that reads no clock, the import contracts.

The layer and cycle contracts themselves live in pyproject.toml ([tool.importlinter]) and run in
`.ci/run` as `lint-imports`; the test here runs them too, so a local `pytest` catches a broken
layer before CI does. What import-linter cannot see (a call of `datetime.now()` inside `domain/`,
a module grown past 400 lines) is checked by walking the source.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kanban_terminal", "firmware_bridge")
MAX_LINES = 400
# Alembic revisions are generated once and never edited; the rule is for code people maintain.
NOT_COUNTED = ("kanban_terminal/storage/migrations/",)

# Everything that reads the wall clock, a monotonic clock, randomness or the environment.
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "time_ns"),
    ("time", "monotonic_ns"),
    ("uuid", "uuid4"),
    ("os", "getenv"),
}


def _modules() -> list[Path]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(NOT_COUNTED):
                out.append(path)
    return out


def test_every_module_is_under_400_lines() -> None:
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_LINES
    }
    assert long == {}, f"split these modules (lines): {long}"


def _clock_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}()")
    return found


def test_domain_reads_no_clock() -> None:
    """Time and ids come into the domain as arguments (STYLE.md principle 1)."""
    offenders = {
        p.name: calls
        for p in sorted((ROOT / "kanban_terminal" / "domain").glob("*.py"))
        if (calls := _clock_calls(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_clock_check_sees_a_clock_read() -> None:
    assert _clock_calls("from datetime import datetime\nx = datetime.now()\n") == ["line 2: datetime.now()"]


def test_import_contracts_hold() -> None:
    # The console script beside this interpreter (the venv's), else the one on PATH.
    exe = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(exe) if exe.exists() else str(shutil.which("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
