"""The start-up shortcut past alembic (storage/schema_head.py) must agree with alembic itself."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from kanban_terminal.storage.db import Database
from kanban_terminal.storage.schema_head import script_head, stored_revision
from kanban_terminal.storage.sqlite_file import alembic_config


def test_the_head_read_from_the_scripts_is_alembics_head() -> None:
    assert script_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_two_heads_or_none_give_no_answer(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "0002"\ndown_revision: str | None = "0001"\n')
    assert script_head(tmp_path) == "0002"
    (tmp_path / "c.py").write_text('revision = "0003"\ndown_revision = "0001"\n')
    assert script_head(tmp_path) is None  # a branch: let alembic decide


def test_a_migrated_database_opens_without_importing_alembic(tmp_path: Path) -> None:
    Database(tmp_path / "t.db").close()  # created and migrated (alembic runs here)
    conn = sqlite3.connect(tmp_path / "t.db")
    assert stored_revision(conn) == script_head()
    conn.close()
    probe = (
        "import sys; from pathlib import Path; from kanban_terminal.storage.db import Database;"
        f"Database(Path({str(tmp_path / 't.db')!r})).close();"
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_new_database_is_still_migrated(tmp_path: Path) -> None:
    db = Database(tmp_path / "new.db")
    db.close()
    conn = sqlite3.connect(tmp_path / "new.db")
    assert stored_revision(conn) == script_head()
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'card'").fetchone() == (1,)
    conn.close()
