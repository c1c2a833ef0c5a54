"""Background WAL checkpoints (storage/checkpointer.py) on a real SQLite file.

What matters: with them on, a commit no longer copies the WAL back itself (that was the slow tail
of every ~40th signal), and the WAL still stays bounded because the checkpointer thread does it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.storage.checkpointer import BACKSTOP_PAGES, EVERY_COMMITS, IDLE_S
from kanban_terminal.storage.db import Database
from tests.support.mqtt_lines import wait_for

PAGE = 4096
ROWS_PER_COMMIT = 50  # of ~3.5 kB each: ~50 WAL pages a commit


def _wal_pages(db: Database) -> int:
    wal = Path(f"{db.path}-wal")
    return wal.stat().st_size // (PAGE + 24) if wal.exists() else 0


def _commit_pages(db: Database) -> None:
    with db.write_connection() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (blob BLOB)")
        conn.exec_driver_sql(
            "INSERT INTO filler SELECT randomblob(3500) FROM "
            f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS_PER_COMMIT}) "
            "SELECT i FROM n)"
        )


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "terminal.db", background_checkpoints=True)
    assert db.checkpointer is not None
    db.checkpointer.start()  # what the runtime does for a long-running terminal
    yield db
    db.close()


def test_a_commit_leaves_the_checkpoint_to_the_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "terminal.db", background_checkpoints=True)
    try:
        assert db.checkpointer is not None
        db.checkpointer.stop()  # nobody copies the WAL back now: only a commit itself could
        for _ in range(60):  # ~3,000 pages, three times SQLite's own threshold
            _commit_pages(db)
        # SQLite's default would have checkpointed and restarted the WAL at ~1,000 pages.
        assert 2_500 < _wal_pages(db) < BACKSTOP_PAGES
    finally:
        db.close()


def test_the_thread_keeps_the_wal_small(background: Database) -> None:
    checkpointer = background.checkpointer
    assert checkpointer is not None and checkpointer.running
    for round_ in range(1, 5):
        before = checkpointer.checkpoints
        for _ in range(EVERY_COMMITS):
            _commit_pages(background)
        wait_for(lambda before=before: checkpointer.checkpoints > before, what=f"checkpoint {round_}")
    _commit_pages(background)  # the first writer after a complete checkpoint restarts the WAL
    # Four rounds wrote ~6,400 pages; a WAL that was never copied back would hold all of them.
    assert _wal_pages(background) < 2 * EVERY_COMMITS * ROWS_PER_COMMIT


def test_a_short_lived_database_checkpoints_as_sqlite_does(tmp_path: Path) -> None:
    db = Database(tmp_path / "terminal.db")
    try:
        assert db.checkpointer is None
        for _ in range(60):
            _commit_pages(db)
        assert _wal_pages(db) < 1_200  # restarted at SQLite's 1,000-page threshold
    finally:
        db.close()


def test_closing_stops_the_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "terminal.db", background_checkpoints=True)
    assert db.checkpointer is not None and not db.checkpointer.running  # the runtime starts it
    db.checkpointer.start()
    assert db.checkpointer.running
    db.close()
    assert not db.checkpointer.running


def test_one_commit_after_a_quiet_spell_is_checkpointed(background: Database) -> None:
    """The thread sleeps untimed while nothing is written (no wake-up a second, issue 19); a single
    commit must still wake it, and its pages be copied back `IDLE_S` later, not at the 32nd commit."""
    checkpointer = background.checkpointer
    assert checkpointer is not None
    _commit_pages(background)
    # start-up's + it, `IDLE_S` after it (a loaded box may take a few seconds more)
    wait_for(lambda: checkpointer.checkpoints >= 2, IDLE_S + 20, "the first commit's checkpoint")
    wait_for(lambda: checkpointer.parked, what="the thread parked")  # nothing more written
    before = checkpointer.checkpoints
    _commit_pages(background)
    wait_for(lambda: checkpointer.checkpoints > before, IDLE_S + 20, "the lone commit's checkpoint")
