"""A first start (or the first after an upgrade) of `serve` migrates in a child process.

runtime/prepare_apart.py: the long-running process must not carry the migration tool (alembic,
mako: ~12 MB) for its life because its data dir was new. Each case runs in a fresh interpreter,
since a module once imported stays in `sys.modules`.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage.db import DatabaseError
from kanban_terminal.storage.schema_head import script_head, stored_revision
from tests.support.mqtt_lines import make_config

ROOT = Path(__file__).resolve().parents[2]

OPEN_AS_SERVE = """
import json, sys
from pathlib import Path
from kanban_terminal.config import load_config
from kanban_terminal.runtime.prepare_apart import prepare_apart
from kanban_terminal.services.terminal import Terminal
config, data = Path(sys.argv[1]), Path(sys.argv[2])
ran = prepare_apart(config, data) if sys.argv[3] == "apart" else None
Terminal.open(load_config(config), data).close()  # what open_runtime does first
print(json.dumps({"child": ran, "alembic": "alembic" in sys.modules}))
"""


def open_as_serve(config: Path, data: Path, how: str = "apart") -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", OPEN_AS_SERVE, str(config), str(data), how],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def revision(data: Path) -> str | None:
    con = sqlite3.connect(data / DB_FILENAME)
    try:
        return stored_revision(con)
    finally:
        con.close()


def set_revision(data: Path, revision: str, *statements: str) -> None:
    """Make the file say it is at `revision` (with `statements` to make it so)."""
    con = sqlite3.connect(data / DB_FILENAME)
    with con:
        con.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        for sql in statements:
            con.execute(sql)
    con.close()


def test_a_first_start_migrates_in_a_child_and_a_restart_spawns_none(tmp_path: Path) -> None:
    _, config = make_config(tmp_path, loops=1, cards=5, sensors=0)
    data = tmp_path / "data"
    assert open_as_serve(config, data, "here") == {"child": None, "alembic": True}  # the old way
    fresh = tmp_path / "fresh"
    assert open_as_serve(config, fresh) == {"child": True, "alembic": False}
    assert revision(fresh) == script_head()
    assert open_as_serve(config, fresh) == {"child": False, "alembic": False}  # the usual start


def test_an_older_database_is_upgraded_by_the_child(tmp_path: Path) -> None:
    _, config = make_config(tmp_path, loops=1, cards=5, sensors=0)
    data = tmp_path / "data"
    open_as_serve(config, data)
    # One step back: 0012 adds the column.
    set_revision(data, "0011", "ALTER TABLE card_log DROP COLUMN elapsed_s")
    assert open_as_serve(config, data) == {"child": True, "alembic": False}
    assert revision(data) == script_head()


def test_a_newer_database_is_refused_as_before(tmp_path: Path) -> None:
    """The child fails; the in-process open that follows refuses with the same words as ever."""
    cfg, config = make_config(tmp_path, loops=1, cards=5, sensors=0)
    data = tmp_path / "data"
    open_as_serve(config, data)
    set_revision(data, "ffff9999")
    from kanban_terminal.runtime.prepare_apart import prepare_apart

    assert prepare_apart(config, data) is True
    with pytest.raises(DatabaseError, match="newer kanban-terminal"):
        Terminal.open(cfg, data)
