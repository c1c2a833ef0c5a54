"""The unit of work on a real SQLite file: commit or nothing, events and hooks only after the outcome.

A group of bin signals is one unit of work with many `record_scan` calls in it: nothing of it is
visible, announced or acknowledged before its commit, and a rollback leaves no trace.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from kanban_terminal.domain.scans import Intent, OutcomeKind
from kanban_terminal.services.events import RequestRaised, ScanRecorded
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.signals import BinSignal, SignalApplier, SignalResult
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.card_log import LogEntry
from kanban_terminal.storage.rejected_inputs import RejectedInputs
from kanban_terminal.storage.tables import CardLogRow, RejectedInputRow
from kanban_terminal.storage.unit_of_work import UnitOfWork
from tests.support.mqtt_lines import make_config
from tests.support.terminals import Clock, open_terminal

CARD = "B1001Z"


class Boom(Exception):
    pass


def count(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


def test_events_wait_for_the_commit_and_hooks_run_after_it(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    seen: list[str] = []
    released: list[object] = []
    with terminal.db.unit_of_work(release=released.append) as uow:
        outcome = record_scan(terminal, CARD, source="keyboard", uow=uow)
        uow.after_commit(lambda: seen.append(f"committed, {len(released)} released"))
        uow.after_rollback(lambda: seen.append("rolled back"))
        assert released == [] and seen == []
        assert count(terminal.db.path, "replenishment_request") == 0  # not even flushed yet
    assert outcome.kind is OutcomeKind.REQUEST_RAISED
    assert seen == ["committed, 0 released"]  # hooks first, then the events
    assert [type(e) for e in released][0] is ScanRecorded
    assert any(isinstance(e, RequestRaised) for e in released)
    assert count(terminal.db.path, "replenishment_request") == 1
    terminal.close()


@pytest.mark.parametrize("held", [False, True])
def test_a_rollback_drops_rows_events_and_runs_the_rollback_hooks(tmp_path: Path, held: bool) -> None:
    terminal = open_terminal(tmp_path, Clock())
    log_rows = count(terminal.db.path, "card_log")
    seen: list[str] = []
    released: list[object] = []
    with pytest.raises(Boom), terminal.db.unit_of_work(release=released.append, held=held) as uow:
        record_scan(terminal, CARD, source="keyboard", uow=uow)
        record_scan(terminal, "NOSUCH1", source="keyboard", uow=uow)  # a refused input, kept in uow
        uow.after_commit(lambda: seen.append("committed"))
        uow.after_rollback(lambda: seen.append("rolled back"))
        uow.flush()  # written, but not committed
        raise Boom
    assert seen == ["rolled back"] and released == []
    assert count(terminal.db.path, "replenishment_request") == 0
    assert count(terminal.db.path, "rejected_input") == 0
    assert count(terminal.db.path, "card_log") == log_rows
    terminal.close()


@pytest.mark.parametrize("held", [False, True])
def test_the_orm_session_sees_the_rows_still_waiting_in_memory(tmp_path: Path, held: bool) -> None:
    terminal = open_terminal(tmp_path, Clock())
    with terminal.db.unit_of_work(held=held) as uow:
        record_scan(terminal, "NOSUCH1", source="keyboard", uow=uow)
        kept = uow.session.exec(select(RejectedInputRow)).all()
        assert [r.source for r in kept] == ["keyboard"]
    terminal.close()


def test_a_held_unit_commits_and_rolls_back_what_its_orm_session_wrote(tmp_path: Path) -> None:
    """A signal group's unit begins on sqlite3 itself; an ORM session taken in it (an andon signal)
    joins that transaction: its rows commit with the unit and roll back with it."""
    terminal = open_terminal(tmp_path, Clock())
    rejected = count(terminal.db.path, "rejected_input")
    with terminal.db.unit_of_work(held=True) as uow:
        record_scan(terminal, CARD, source="keyboard", uow=uow)
        uow.session.add(RejectedInputRow(at=Clock()(), source="orm", input="x", reason="test"))
    assert count(terminal.db.path, "rejected_input") == rejected + 1
    assert count(terminal.db.path, "replenishment_request") == 1
    with pytest.raises(Boom), terminal.db.unit_of_work(held=True) as uow:
        record_scan(terminal, "B1002X", source="keyboard", uow=uow)
        uow.session.add(RejectedInputRow(at=Clock()(), source="orm", input="y", reason="test"))
        uow.session.flush()
        raise Boom
    assert count(terminal.db.path, "rejected_input") == rejected + 1
    assert count(terminal.db.path, "replenishment_request") == 1
    with terminal.db.unit_of_work(held=True) as uow:  # a fresh held connection, nothing left open
        record_scan(terminal, "B1002X", source="keyboard", uow=uow)
    assert count(terminal.db.path, "replenishment_request") == 2
    terminal.close()


def test_the_log_chain_holds_across_scans_and_relay_marks_in_one_unit(tmp_path: Path) -> None:
    from kanban_terminal.services.log_integrity import verify_log

    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    with terminal.db.unit_of_work() as uow:
        record_scan(terminal, CARD, source="keyboard", uow=uow)
        uow.flush()
        uow.log.append(LogEntry(clock(), clock(), "note", "test", card_id=CARD, detail="after a flush"))
        record_scan(terminal, "B1002X", source="keyboard", uow=uow)
    assert verify_log(terminal.db).ok
    terminal.close()


def test_a_write_without_fsync_is_set_back_to_full_for_the_next_unit(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    with terminal.db.unit_of_work(fsync=False) as uow:
        assert uow.sql.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with terminal.db.unit_of_work() as uow:
        assert uow.sql.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    terminal.close()


def test_a_signal_group_is_one_unit_of_work_whose_events_follow_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    config, _ = make_config(tmp_path, loops=1, cards=5, sensors=3)
    terminal = Terminal.open(config, tmp_path / "data", clock=clock)
    released: list[object] = []
    terminal.bus.subscribe(released.append)
    opened: list[dict[str, object]] = []
    real = terminal.db.unit_of_work

    def counting(**kwargs: Any) -> Any:
        opened.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(terminal.db, "unit_of_work", counting)
    signals = [BinSignal(f"s{i}", f"BS0000{i}", "b1", 0, "empty", clock()) for i in (1, 2, 3)]

    def before_commit(uow: UnitOfWork, results: list[SignalResult]) -> None:
        assert released == []  # nothing announced from inside the group
        assert count(terminal.db.path, "replenishment_request") == 0

    results = SignalApplier(terminal).apply(signals, before_commit)
    assert len(opened) == 1
    assert [r.outcome.kind for r in results if r.outcome] == [OutcomeKind.REQUEST_RAISED] * 3
    assert sum(isinstance(e, RequestRaised) for e in released) == 3
    terminal.close()


def test_a_scan_alone_still_reports_a_refusal_when_keeping_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = open_terminal(tmp_path, Clock())
    released: list[object] = []
    terminal.bus.subscribe(released.append)

    def full(self: RejectedInputs) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(RejectedInputs, "flush", full)
    outcome = record_scan(terminal, "NOSUCH1", source="keyboard", intent=Intent.AUTO)
    assert outcome.kind in (OutcomeKind.UNKNOWN_CARD, OutcomeKind.MISREAD)
    assert [type(e) for e in released] == [ScanRecorded]
    # A scan that changes a card is another matter: nothing is saved, and it says so.
    monkeypatch.undo()
    monkeypatch.setattr(RejectedInputs, "flush", full)
    failed = record_scan(terminal, CARD, source="keyboard")
    assert failed.kind is OutcomeKind.FAILED and "disk full" in failed.message
    assert count(terminal.db.path, "replenishment_request") == 0
    terminal.close()


def test_the_scan_store_says_which_requests_and_cards_still_wait_in_memory(tmp_path: Path) -> None:
    """A PUBACK mark flushes first only when the rows it reads wait in memory (`ScanStore.holds`)."""
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    with terminal.db.unit_of_work() as uow:
        raised = record_scan(terminal, CARD, source="keyboard", uow=uow).request_id
        assert raised is not None
        assert uow.scans.holds([], [CARD]) and uow.scans.holds([raised], [])
        assert not uow.scans.holds(["other"], ["B1002X"])
        uow.flush()
        assert not uow.scans.holds([raised], [CARD])
        uow.scans.close_request(raised, status="delivered", at=clock(), lead_time_s=None)
        assert uow.scans.holds([raised], []) and not uow.scans.holds(["other"], [CARD])
        uow.flush()
        assert not uow.scans.holds([raised], [CARD])
    terminal.close()


@pytest.mark.parametrize("held", [False, True])
def test_the_log_watchers_hear_every_commit_that_appended_log_rows_and_no_other(
    tmp_path: Path, held: bool
) -> None:
    """A unit that writes a log row and announces nothing (a clock step, a badge log-in, a runway
    warning with material calls off) still tells `Database.log_watchers`: the log's anchor follows
    them. A unit without log rows, and one rolled back, tell nothing."""
    terminal = open_terminal(tmp_path, Clock())
    heard: list[str] = []
    terminal.db.log_watchers.append(lambda: heard.append("moved"))
    now = terminal.clock()

    def row(detail: str) -> CardLogRow:
        return CardLogRow(occurred_at=now, recorded_at=now, event="note", source="system", detail=detail)

    with terminal.db.unit_of_work(held=held) as uow:  # the ORM path, no event, no release
        uow.andons.log(row("x"))
    assert heard == ["moved"]
    with terminal.db.unit_of_work(held=held) as uow:  # the scan store's log
        uow.log.append(LogEntry(occurred_at=now, recorded_at=now, event="note", source="system", detail="y"))
    assert heard == ["moved", "moved"]
    with terminal.db.unit_of_work(held=held) as uow:  # no log row
        uow.collect("something else")
    with pytest.raises(Boom), terminal.db.unit_of_work(held=held) as uow:
        uow.andons.log(row("z"))
        raise Boom
    assert heard == ["moved", "moved"]
    assert count(terminal.db.path, "card_log") >= 2


def test_a_held_connection_is_dropped_after_an_error_and_belongs_to_one_living_thread(tmp_path: Path) -> None:
    import threading

    terminal = open_terminal(tmp_path, Clock())
    db = terminal.db
    with db.unit_of_work(held=True) as uow:
        first = uow.conn
    assert db._held is first  # kept for the next unit of this thread
    with pytest.raises(Boom), db.unit_of_work(held=True) as uow:
        assert uow.conn is first
        uow.rejected.add(at=terminal.clock(), source="t", shown="x", reason="r")
        raise Boom
    assert db._held is None and first.closed  # a connection in doubt is never reused
    with db.unit_of_work(held=True) as uow:
        uow.rejected.add(at=terminal.clock(), source="t", shown="y", reason="r")
        second = uow.conn
    assert second is not first and db._held is second
    assert count(db.path, "rejected_input") == 1

    # Another thread asking while the owner lives gets a pooled connection, not the held one.
    other: list[Any] = []

    def unit() -> None:
        with db.unit_of_work(held=True) as uow:
            other.append(uow.conn)

    worker = threading.Thread(target=unit)
    worker.start()
    worker.join()
    assert other[0] is not second and db._held is second
    with db.unit_of_work(held=True) as uow:  # and the owner keeps its own
        assert uow.conn is second
    terminal.close()


def test_the_held_connection_keeps_its_owners_busy_timeout_and_no_pooled_one_gets_the_short_one(
    tmp_path: Path,
) -> None:
    """paho's thread writes under `short_waits`: its held connection stays at the short busy timeout
    between groups (not set and restored around each), a unit outside `short_waits` gets the full
    one back, and a held connection dropped after an error never reaches the pool with the short one."""
    from kanban_terminal.storage.db import SHORT_WAIT_MS
    from kanban_terminal.storage.sqlite_file import BUSY_TIMEOUT_MS

    terminal = open_terminal(tmp_path, Clock())
    db = terminal.db

    def timeout_of(uow: UnitOfWork) -> int:
        return int(uow.sql.execute("PRAGMA busy_timeout").fetchone()[0])

    statements: list[str] = []
    with db.short_waits():
        with db.unit_of_work(held=True) as uow:
            assert timeout_of(uow) == SHORT_WAIT_MS
            uow.sql.set_trace_callback(statements.append)
        with db.unit_of_work(held=True) as uow:
            assert timeout_of(uow) == SHORT_WAIT_MS
        assert not [s for s in statements if "busy_timeout=" in s]  # set once, not per unit
    with db.unit_of_work(held=True) as uow:  # the same connection, outside `short_waits`
        assert timeout_of(uow) == BUSY_TIMEOUT_MS
    with db.unit_of_work() as uow:  # a pooled one
        assert timeout_of(uow) == BUSY_TIMEOUT_MS
    with db.short_waits():  # a pooled one under `short_waits`: set for the unit, then restored
        with db.unit_of_work() as uow:
            assert timeout_of(uow) == SHORT_WAIT_MS
            pooled = uow.sql
        assert int(pooled.execute("PRAGMA busy_timeout").fetchone()[0]) == BUSY_TIMEOUT_MS

    with db.short_waits(), pytest.raises(Boom), db.unit_of_work(held=True) as uow:
        dropped = uow.sql
        raise Boom
    assert db._held is None
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not handed to the pool
        dropped.execute("SELECT 1")
    for _ in range(3):  # whatever the pool hands out next has the full timeout
        with db.unit_of_work() as uow:
            assert timeout_of(uow) == BUSY_TIMEOUT_MS
    terminal.close()
