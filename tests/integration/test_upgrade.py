"""Upgrading a database made by an earlier schema loses nothing, and a newer one is never touched."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlmodel import select

from kanban_terminal.config import load_config
from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage import sqlite_file
from kanban_terminal.storage.card_log import verify_chain
from kanban_terminal.storage.db import Database, DatabaseError
from kanban_terminal.storage.sqlite_file import alembic_config
from kanban_terminal.storage.tables import CardLogRow

FIXTURES = Path(__file__).parent.parent / "fixtures"
TABLES = {"card": "id", "replenishment_request": "id", "card_log": "id", "rejected_input": "id"}


def _rows(path: Path) -> dict[str, dict[object, dict[str, object]]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            table: {r[key]: dict(r) for r in conn.execute(f"SELECT * FROM {table}")}
            for table, key in TABLES.items()
        }
    finally:
        conn.close()


def _head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def test_upgrade_from_schema_0001_keeps_every_row_and_the_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(FIXTURES / "terminal_0001.db", data_dir / DB_FILENAME)
    before = _rows(data_dir / DB_FILENAME)
    assert len(before["card"]) >= 30 and len(before["replenishment_request"]) >= 5
    assert len(before["card_log"]) >= 50 and before["rejected_input"]

    terminal = Terminal.open(load_config(FIXTURES / "terminal_0001.toml"), data_dir)
    try:
        with terminal.db.reading() as session:
            report = verify_chain(iter(session.exec(select(CardLogRow).order_by(CardLogRow.id)).all()))
    finally:
        terminal.close()

    assert report.ok, f"chain broken at row {report.first_broken_id}"
    assert report.rows >= len(before["card_log"])
    after = _rows(data_dir / DB_FILENAME)
    for table, rows in before.items():
        for key, old in rows.items():
            new = after[table].get(key)
            assert new is not None, f"{table} row {key} lost in the upgrade"
            # Later migrations may add columns; every column the old schema had keeps its value.
            assert {c: new[c] for c in old} == old, f"{table} row {key} changed in the upgrade"
    if _head() != "0001":
        backups = list((data_dir / "backups").glob("terminal-rev0001-*.db"))
        assert len(backups) == 1, "an upgrade must leave an automatic backup of the old file"
        assert _rows(backups[0]) == before


def _with_extra_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the real migrations plus a harmless 0099 on top, to exercise a real upgrade."""
    scripts = tmp_path / "migrations"
    shutil.copytree(sqlite_file.MIGRATIONS, scripts)
    head = _head()
    (scripts / "versions" / "0099_test_extra.py").write_text(
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        f"revision = '0099'\ndown_revision = '{head}'\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade() -> None:\n"
        "    op.create_table('test_extra', sa.Column('id', sa.Integer(), primary_key=True))\n"
        "def downgrade() -> None:\n"
        "    op.drop_table('test_extra')\n"
    )
    monkeypatch.setattr(sqlite_file, "MIGRATIONS", scripts)


def test_migration_is_preceded_by_a_private_backup_and_old_ones_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    head = _head()
    Database(data_dir / DB_FILENAME).close()  # at today's head
    before = _rows(data_dir / DB_FILENAME)
    backups = data_dir / "backups"
    backups.mkdir(mode=0o700)
    for n in range(7):  # older automatic backups, and one made by hand that must survive pruning
        (backups / f"terminal-rev{head}-2020010{n}T000000000000Z.db").write_bytes(b"old")
    (backups / "before-line-move.db").write_bytes(b"mine")
    _with_extra_migration(tmp_path, monkeypatch)

    Database(data_dir / DB_FILENAME).close()

    auto = sorted(p.name for p in backups.glob("terminal-rev*.db"))
    assert len(auto) == 5 and (backups / "before-line-move.db").exists()
    fresh = [p for p in backups.glob("terminal-rev*.db") if not p.name.split("-")[2].startswith("2020")]
    assert len(fresh) == 1
    assert fresh[0].stat().st_mode & 0o777 == 0o600 and backups.stat().st_mode & 0o777 == 0o700
    assert _rows(fresh[0]) == before
    conn = sqlite3.connect(data_dir / DB_FILENAME)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0099",)
    conn.close()


def test_a_new_database_is_not_backed_up(tmp_path: Path) -> None:
    Database(tmp_path / DB_FILENAME).close()
    assert not (tmp_path / "backups").exists()


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = 'f00dface0042'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    with pytest.raises(DatabaseError, match="newer kanban-terminal.*f00dface0042.*will not touch"):
        Database(path)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "backups").exists()
