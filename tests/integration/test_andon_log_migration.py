"""Migration 0006 on a database the code of 9c36896 wrote (andon facts only in `detail` text):
the facts are backfilled from the `andon` table, every old row keeps its values and its hash,
`verify-log` passes, metrics show the real reason, station and downtime; and from 0006 on the chain
covers the facts, so an edit to them, or a false `backfilled` mark, is named by `verify-log`."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from kanban_terminal.cli import main
from kanban_terminal.config import load_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.reports import build_report
from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage import log_key
from kanban_terminal.storage.backup import chain_report
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.sqlite_file import alembic_config
from tests.support.andon import PIN, TEAM_LEAD, FakeClock

FIXTURES = Path(__file__).parent.parent / "fixtures"
CONFIG = FIXTURES / "terminal_0005.toml"
ORIGINAL = (
    "id", "occurred_at", "recorded_at", "event", "card_id", "loop_id", "from_state", "to_state",
    "request_id", "actor", "source", "detail", "andon_id", "hash",
)  # fmt: skip


def rows(path: Path, columns: tuple[str, ...] = ORIGINAL) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT {', '.join(columns)} FROM card_log ORDER BY id")]
    finally:
        conn.close()


def tamper(path: Path, sql: str) -> None:
    """An edit made behind the database's back: the append-only trigger dropped by hand."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TRIGGER card_log_no_update")
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def migrated(tmp_path: Path) -> tuple[Path, FakeClock]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(FIXTURES / "terminal_0005_andons.db", data_dir / DB_FILENAME)
    return data_dir, FakeClock()


def test_0006_backfills_the_facts_and_old_rows_keep_their_hash(migrated: tuple[Path, FakeClock]) -> None:
    data_dir, clock = migrated
    before = rows(data_dir / DB_FILENAME)
    clock.advance(hours=2)
    terminal = Terminal.open(load_config(CONFIG), data_dir, clock=clock, monotonic=clock.monotonic)
    try:
        assert verify_log(terminal.db).ok
        report = build_report(terminal)
    finally:
        terminal.close()
    assert rows(data_dir / DB_FILENAME) == before  # every original value and hash as it was
    facts = rows(
        data_dir / DB_FILENAME,
        ("event", "andon_kind", "andon_reason", "station", "downtime_s", "backfilled", "andon_id"),
    )
    andon_rows = [
        (r["event"], r["andon_kind"], r["andon_reason"], r["station"], r["downtime_s"])
        for r in facts
        if r["andon_id"]
    ]
    assert andon_rows == [
        ("andon_raised", "stop", "QUAL", "ST20", None),
        ("andon_resolved", "stop", "QUAL", "ST20", 28.0),
        ("andon_raised", "call", "MACH", "ST10", None),
        ("andon_acknowledged", "call", "MACH", "ST10", None),
        ("andon_resolved", "call", "MACH", "ST10", None),
        ("andon_raised", "call", "HELP", "ST30", None),
        ("andon_cancelled", "call", "HELP", "ST30", None),
    ]
    assert all(r["backfilled"] == 1 for r in facts if r["andon_id"])
    assert all(r["backfilled"] is None and r["station"] is None for r in facts if not r["andon_id"])
    stop = next(r for r in report.andons if r.kind == "stop")
    assert (stop.reason, stop.station, stop.downtime_s(report.now)) == ("QUAL", "ST20", 28.0)
    # The automatic backup of the 0005 file, and the migrated file, both verify on their own.
    [backup] = (data_dir / "backups").glob("terminal-rev0005-*.db")
    assert chain_report(backup).ok and chain_report(data_dir / DB_FILENAME).ok
    assert main(["verify-log", "--config", str(CONFIG), "--data-dir", str(data_dir)]) == 0


def test_from_0006_the_chain_covers_the_facts(migrated: tuple[Path, FakeClock], tmp_path: Path) -> None:
    data_dir, clock = migrated
    clock.advance(hours=2)
    terminal = Terminal.open(load_config(CONFIG), data_dir, clock=clock, monotonic=clock.monotonic)
    try:
        state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
        assert not isinstance(state, svc.Rejection)
        auth = AuthSession()
        auth.start(state)
        raised = svc.raise_andon(terminal, AndonKind.STOP, "ST10", "MACH", source="keyboard", auth=auth)
        assert raised.andon is not None
        clock.advance(seconds=95)
        assert svc.resolve_andon(terminal, raised.andon.id, "belt fixed", source="keyboard", auth=auth).ok
        assert verify_log(terminal.db).ok
    finally:
        terminal.close()
    log = rows(data_dir / DB_FILENAME, ("id", "event", "andon_id", "downtime_s"))
    resolved = next(r for r in log if r["andon_id"] == raised.andon.id and r["event"] == "andon_resolved")
    assert resolved["downtime_s"] == 95.0
    scan_row = next(r for r in log if r["andon_id"] is None)
    edits = {
        "downtime edited": f"UPDATE card_log SET downtime_s = 5 WHERE id = {resolved['id']}",
        "station edited": f"UPDATE card_log SET station = 'ST30' WHERE id = {resolved['id']}",
        "new row marked backfilled": f"UPDATE card_log SET backfilled = 1 WHERE id = {resolved['id']}",
        "fact added to a scan row": f"UPDATE card_log SET station = 'ST10' WHERE id = {scan_row['id']}",
        "scan row marked backfilled": f"UPDATE card_log SET backfilled = 1 WHERE id = {scan_row['id']}",
    }
    for name, sql in edits.items():
        copy = tmp_path / name.replace(" ", "_") / DB_FILENAME
        copy.parent.mkdir()
        shutil.copyfile(data_dir / DB_FILENAME, copy)
        tamper(copy, sql)
        db = Database(copy, log_key=log_key.load(data_dir / log_key.KEY_FILENAME))
        try:
            broken = verify_log(db).first_broken_id
        finally:
            db.close()
        expected = scan_row["id"] if "scan row" in name else resolved["id"]
        assert broken == expected, name
        assert (
            chain_report(copy, log_key.load(data_dir / log_key.KEY_FILENAME)).first_broken_id == expected
        ), name


def test_0006_downgrades_to_the_0005_schema(migrated: tuple[Path, FakeClock]) -> None:
    data_dir, clock = migrated
    before = rows(data_dir / DB_FILENAME)
    Terminal.open(load_config(CONFIG), data_dir, clock=clock, monotonic=clock.monotonic).close()
    db = Database(data_dir / DB_FILENAME)
    try:
        cfg = alembic_config()
        with db.write_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
    finally:
        db.close()
    assert rows(data_dir / DB_FILENAME) == before
    conn = sqlite3.connect(data_dir / DB_FILENAME)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(card_log)")}
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE card_log SET detail = 'x' WHERE id = 1")
    finally:
        conn.close()
    assert columns == set(ORIGINAL)
    assert {"card_log_no_update", "card_log_no_delete"} <= triggers


def test_a_backup_with_andons_restores(migrated: tuple[Path, FakeClock], tmp_path: Path) -> None:
    """`restore` checks the backup's chain with `backup.chain_report`, which left `andon_id` out of
    the hash on 9c36896: every backup holding an andon was refused as "does not verify"."""
    data_dir, _ = migrated
    backup = tmp_path / "before-0006.db"
    shutil.copyfile(data_dir / DB_FILENAME, backup)  # an old backup, made before the upgrade
    assert chain_report(backup).ok
    assert main(["restore", str(backup), "--data-dir", str(data_dir)]) == 0
    assert chain_report(data_dir / DB_FILENAME).ok
