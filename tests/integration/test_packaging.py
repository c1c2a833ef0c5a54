"""The wheel carries what an installed terminal needs: demo config, every migration, the version."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kanban_terminal import __version__

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.skipif(
    importlib.util.find_spec("build") is None or importlib.util.find_spec("hatchling") is None,
    reason="needs `pip install build hatchling` (built without isolation, so no network)",
)
def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name == f"kanban_terminal-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "kanban_terminal/storage/migrations").rglob("*")
    }
    migrations = {m for m in migrations if m.endswith((".py", ".mako"))}
    assert {
        "kanban_terminal/_data/demo.toml",
        "kanban_terminal/storage/migrations/env.py",
        "kanban_terminal/storage/migrations/script.py.mako",
        "kanban_terminal/tui/app.tcss",
    } <= names
    assert migrations <= names, migrations - names
    entry_points = zipfile.ZipFile(wheel).read(f"kanban_terminal-{__version__}.dist-info/entry_points.txt")
    assert b"kanban-terminal = kanban_terminal.cli:main" in entry_points
