"""Migration 0011 and the signal's write path (issue 19): a bin signal's commit writes fewer pages,
every read keeps its index, an existing file upgrades (and downgrades) with every dedupe key kept,
and the inbound worker's held write connection is its own and never reused after an error."""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command

from kanban_terminal.services.signals import BinSignal, SignalApplier
from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage import inbound
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.log_reads import LogFilter
from kanban_terminal.storage.sqlite_file import alembic_config
from tests.support.mqtt_lines import make_config

PARTIAL = {"ix_card_log_actor_id", "ix_card_log_andon_id", "ix_request_publish_state_last"}
"""Indexes a bin signal's rows (no actor, no andon, a pending request) must not touch since 0011."""


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = make_config(tmp_path, loops=2, cards=10, sensors=10)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


def signal(n: int, seq: int = 0, boot: str = "b1") -> BinSignal:
    return BinSignal(f"s{n}-{seq}", f"BS{n:05d}", boot, seq, "empty", datetime.now(UTC))


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def plan(path: Path, sql: str, params: dict[str, object] | None = None) -> str:
    con = sqlite3.connect(path)
    try:
        return " ; ".join(str(r[3]) for r in con.execute("EXPLAIN QUERY PLAN " + sql, params or {}))
    finally:
        con.close()


def test_a_signal_commit_writes_no_page_of_the_partial_indexes(terminal: Terminal) -> None:
    path = terminal.db.path
    probe = sqlite3.connect(path, isolation_level=None)
    try:
        applier = SignalApplier(terminal)
        applier.apply([signal(1)])  # warm: the first group of a file also writes its schema pages
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        results = applier.apply([signal(2)])
        assert [r.outcome.kind.value for r in results if r.outcome] == ["request_raised"]
        page_size = probe.execute("PRAGMA page_size").fetchone()[0]
        wal = Path(f"{path}-wal").read_bytes()
        pages = {struct.unpack(">I", wal[off : off + 4])[0] for off in range(32, len(wal), 24 + page_size)}
        names = dict(probe.execute("SELECT pageno, name FROM dbstat"))
    finally:
        probe.close()
    touched = {names[p] for p in pages if p in names}
    assert {"inbound_signal", "replenishment_request", "card_log", "card"} <= touched  # the write happened
    assert not touched & PARTIAL
    assert "sqlite_autoindex_inbound_signal_1" not in touched  # WITHOUT ROWID: the key is the table


def test_the_reads_keep_their_indexes(terminal: Terminal) -> None:
    path = terminal.db.path
    actor, params, _ = LogFilter(actor="B-17").where()
    assert "ix_card_log_actor_id" in plan(
        path, f"SELECT id FROM card_log WHERE {actor} ORDER BY id DESC LIMIT 9", params
    )
    card, params, _ = LogFilter(card="C00001").where()
    assert "ix_card_log_card_id" in plan(
        path, f"SELECT id FROM card_log WHERE {card} ORDER BY id DESC LIMIT 9", params
    )
    andons = plan(
        path,
        "SELECT andon_id FROM card_log WHERE andon_id IN "
        "(SELECT andon_id FROM card_log WHERE event = 'andon_raised' AND occurred_at >= '2026')",
    )
    assert "ix_card_log_andon_id" in andons
    stale = plan(
        path,
        "SELECT id FROM replenishment_request WHERE publish_state = 'published' "
        "AND last_published_at < '2026' AND closed_at IS NULL ORDER BY rowid LIMIT 5",
    )
    assert "ix_request_publish_state_last" in stale
    pending = plan(
        path,
        "SELECT id FROM replenishment_request WHERE publish_state = 'pending' AND closed_at IS NULL "
        "ORDER BY rowid LIMIT 5",
    )
    assert (
        "ix_request_publish_state " in pending + " " and "TEMP B-TREE" not in pending
    )  # rowid order, no sort
    dedupe = plan(path, "SELECT 1 FROM inbound_signal WHERE device = 'a' AND boot = 'b' AND seq = 1")
    assert "PRIMARY KEY" in dedupe
    group = plan(path, inbound.SEEN.format("('a', 'b', 1), ('c', 'd', 2)"))  # a group's keys
    assert "PRIMARY KEY (device=? AND boot=? AND seq=?)" in group and "SCAN s" not in group
    prune = plan(path, "DELETE FROM inbound_signal WHERE received_at < '2026'")
    assert "ix_inbound_signal_received_at" in prune


def _migrate(path: Path, target: str) -> None:
    db = Database(path)
    try:
        cfg = alembic_config()
        with db.write_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, target)
    finally:
        db.close()


def _inbound_sql(path: Path) -> str:
    return str(query(path, "SELECT sql FROM sqlite_master WHERE name = 'inbound_signal'")[0][0])


def _keys(path: Path) -> list[tuple[object, ...]]:
    return query(path, "SELECT device, boot, seq, received_at, outcome FROM inbound_signal ORDER BY device")


def test_an_existing_file_upgrades_with_its_keys_and_a_redelivery_is_still_dropped(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path, loops=1, cards=5, sensors=3)
    data = tmp_path / "data"
    path = data / DB_FILENAME
    t = Terminal.open(config, data)
    SignalApplier(t).apply([signal(1), signal(2, seq=7)])
    t.close()
    keys = _keys(path)
    assert [k[4] for k in keys] == ["request_raised", "request_raised"]

    _migrate(path, "0009")  # the file as the version before 0011 left it
    assert "WITHOUT ROWID" not in _inbound_sql(path)
    assert query(path, "SELECT version_num FROM alembic_version") == [("0009",)]
    assert _keys(path) == keys
    indexes = {r[0] for r in query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_card_log_card_occurred", "sqlite_autoindex_inbound_signal_1"} <= indexes
    assert "WHERE" not in str(
        query(path, "SELECT sql FROM sqlite_master WHERE name = 'ix_card_log_actor_id'")
    )

    t = Terminal.open(config, data)  # upgrades the existing file to 0011
    try:
        assert "WITHOUT ROWID" in _inbound_sql(path)
        assert _keys(path) == keys
        assert list((data / "backups").glob("terminal-rev0009-*.db"))  # backed up before it changed
        again = SignalApplier(t).apply([signal(1), signal(2, seq=7), signal(3)])
        assert [r.duplicate for r in again] == [True, True, False]
        assert query(path, "SELECT count(*) FROM replenishment_request") == [(3,)]
    finally:
        t.close()


def test_one_write_a_key_with_its_outcome_and_duplicates_in_a_group(terminal: Terminal) -> None:
    path = terminal.db.path
    applier = SignalApplier(terminal)
    results = applier.apply([signal(1), signal(1), signal(1, boot="b2"), signal(2)])
    assert [r.duplicate for r in results] == [False, True, False, False]
    rows = query(path, "SELECT device, boot, seq, outcome FROM inbound_signal ORDER BY device, boot")
    assert rows == [
        ("BS00001", "b1", 0, "request_raised"),
        ("BS00001", "b2", 0, "already_requested"),
        ("BS00002", "b1", 0, "request_raised"),
    ]


def test_the_held_connection_is_the_worker_threads_own_and_is_dropped_after_an_error(
    terminal: Terminal,
) -> None:
    db = terminal.db
    with db.unit_of_work(held=True) as uow:
        first = uow.sql
    with db.unit_of_work(held=True) as uow:
        assert uow.sql is first  # no pool checkout between units
    other: list[object] = []

    def elsewhere() -> None:
        with db.unit_of_work(held=True) as uow:
            other.append(uow.sql)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert other and other[0] is not first  # another thread never shares it
    with pytest.raises(sqlite3.OperationalError), db.unit_of_work(held=True) as uow:
        uow.sql.execute("INSERT INTO no_such_table VALUES (1)")
    with db.unit_of_work(held=True) as uow:
        assert uow.sql is not first  # a connection in doubt is not reused
        uow.sql.execute("SELECT 1")
