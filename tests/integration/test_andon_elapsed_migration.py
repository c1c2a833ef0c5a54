"""Migration 0012 (`card_log.elapsed_s`) on a log written before it: every old row keeps its values
and its hash, `verify-log` passes, and the old andons' response times are the wall difference, as
before. Rows written after it carry the figure, inside the chain: an edit to it, or a figure slipped
into an old row, is named by `verify-log`. The downgrade drops the column and keeps the triggers."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from kanban_terminal.config import load_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.reports import read_andon_records
from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage import log_key
from kanban_terminal.storage.backup import chain_report
from kanban_terminal.storage.sqlite_file import alembic_config
from tests.integration.test_andon_log_migration import CONFIG, FIXTURES, rows, tamper
from tests.support.andon import FakeClock

WITH_FACTS = (
    "id", "occurred_at", "recorded_at", "event", "card_id", "loop_id", "from_state", "to_state",
    "request_id", "actor", "source", "detail", "andon_id", "andon_kind", "andon_reason", "station",
    "downtime_s", "backfilled", "hash",
)  # fmt: skip


def alembic(path: Path, action: str, revision: str) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


@pytest.fixture
def at_0011(tmp_path: Path) -> Path:
    """The terminal of tests/fixtures (andons written by old code), migrated up to 0011 only."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(FIXTURES / "terminal_0005_andons.db", data_dir / DB_FILENAME)
    alembic(data_dir / DB_FILENAME, "upgrade", "0011")
    return data_dir


def open_at(data_dir: Path, clock: FakeClock) -> Terminal:
    return Terminal.open(load_config(CONFIG), data_dir, clock=clock, monotonic=clock.monotonic)


def test_old_rows_keep_their_hash_and_count_the_wall_difference(at_0011: Path) -> None:
    path = at_0011 / DB_FILENAME
    before = rows(path, WITH_FACTS)
    clock = FakeClock()
    terminal = open_at(at_0011, clock)  # migrates to 0012
    try:
        assert verify_log(terminal.db).ok
        records = read_andon_records(terminal, clock.now - timedelta(days=3650))
    finally:
        terminal.close()
    assert rows(path, WITH_FACTS) == before
    assert {r["elapsed_s"] for r in rows(path, ("elapsed_s",))} == {None}
    call = next(r for r in records if r.reason == "MACH")  # raised, acknowledged, resolved by old code
    assert call.acknowledged_at is not None and call.resolved_at is not None
    assert (call.acknowledged_s, call.ended_s) == (None, None)
    assert call.to_acknowledge_s() == (call.acknowledged_at - call.raised_at).total_seconds()
    assert call.to_end_s() == (call.resolved_at - call.raised_at).total_seconds()


def test_from_0012_the_chain_covers_the_elapsed_figure(at_0011: Path) -> None:
    clock = FakeClock()
    terminal = open_at(at_0011, clock)
    try:
        raised = svc.raise_andon(terminal, AndonKind.CALL, "ST10", "MACH", source="keyboard")
        assert raised.andon is not None, raised.message
        EscalationRunner(terminal).tick()
        clock.advance(minutes=1)
        clock.step_wall(hours=1)
        clock.advance(minutes=1)
        assert svc.acknowledge_andon(terminal, raised.andon.id, "E2001", source="keyboard").ok
        assert verify_log(terminal.db).ok
    finally:
        terminal.close()
    path = at_0011 / DB_FILENAME
    figures = {r["event"]: (r["id"], r["elapsed_s"]) for r in rows(path, ("id", "event", "elapsed_s"))}
    row_id, figure = figures["andon_acknowledged"]
    assert figure == 120.0
    assert figures["andon_escalated"][1] == 0.0  # tier 0, fired at the raise: its figure is hashed too
    first_old = rows(path, ("id",))[0]["id"]
    for sql, broken in (
        (f"UPDATE card_log SET elapsed_s = 3720.0 WHERE id = {row_id}", row_id),  # the response bent back
        (f"UPDATE card_log SET elapsed_s = 5.0 WHERE id = {first_old}", first_old),  # an old row given one
    ):
        copy = path.with_name(f"tampered-{broken}.db")
        shutil.copyfile(path, copy)
        tamper(copy, sql)
        key = log_key.load(at_0011 / log_key.KEY_FILENAME)
        assert chain_report(copy, key).first_broken_id == broken, sql


def test_0012_downgrades_to_the_0011_schema(at_0011: Path) -> None:
    path = at_0011 / DB_FILENAME
    before = rows(path, WITH_FACTS)
    open_at(at_0011, FakeClock()).close()
    alembic(path, "downgrade", "0011")
    assert rows(path, WITH_FACTS) == before
    conn = sqlite3.connect(path)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(card_log)")}
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE card_log SET detail = 'x' WHERE id = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM card_log WHERE id = 1")
    finally:
        conn.close()
    assert columns == set(WITH_FACTS)
